// One generated kernel for a chain of elementwise primitives (engine/webgpu/fusion.ts records
// the chain; this file turns its straight-line program into WGSL).
//
// The program is a list of steps in evaluation order; step k defines `vk` from earlier steps or
// from leaves (input buffers). Each primitive's expression is the same text the single-op
// kernels use (shaders/elementwise.ts), so fused and unfused results agree bit for bit. The
// expression is spliced into a block that binds its operand names (`x`, or `a`/`b`), not called
// as a function: SwiftShader's Subzero does not inline WGSL functions.
//
// A leaf is read either at the output's flat index (its size equals the output's: no
// broadcasting on its way to the output) or through its own strides (0 along broadcast axes),
// found by walking the output's coordinates, unrolled for the output's rank.
// Uniforms: [0] element count, [1] invocations, [2 .. 2+rank) output shape, then `rank` strides per strided leaf,
// then the constants (one-element host uploads, e.g. the 2 in mul(x, 2)), as f32 bits.
// Shapes and strides are uniforms, so only the program's structure is in the WGSL text.
import { BINARY_EXPR, UNARY_EXPR, powJs } from './elementwise.ts';
import { mathLib } from './math.ts';
import { flatIndex, launchArgs, paramsBlock, U } from './params.ts';

export type FusedStep =
  | { op: 'unary'; prim: string; x: string }
  | { op: 'binary'; prim: string; a: string; b: string }
  | { op: 'select'; c: string; a: string; b: string };

export interface FusedProgram {
  rank: number;
  /** Per leaf (binding 2 + j, read as `lj`): flat-indexed, or strided. */
  leafFlat: boolean[];
  /** Constants read from the uniform block (as `cj`), after the strides. */
  scalars: number;
  /** Elements per invocation, `threads` ([1]) apart so that neighbouring invocations read
   * neighbouring elements. CPU adapters pay a lot per invocation (lavapipe: a 2-op chain over
   * 1.2M floats took ~4x less CPU time at 16 per invocation than at 1). */
  perThread: number;
  steps: FusedStep[];
  /** The variable that holds the result (a step's `vk`, or a leaf's `lj`). */
  result: string;
}

/** Uniform word where strided leaf number `s` (counting strided leaves only) keeps its strides. */
export const fusedStrideBase = (rank: number, s: number) => 2 + rank + s * rank;

/** The most leaves (input buffers) one fused kernel reads: 7 storage bindings plus the output fit
 * WebGPU's default limit of 8 per stage; 6 keeps the uniform block (64 words) big enough for
 * rank-8 strides of every leaf. */
export const FUSED_MAX_LEAVES = 6;
/** Constants per kernel: 2 + rank + rank * leaves + constants <= 64 words, for rank 8. */
export const FUSED_MAX_SCALARS = 6;

function stepCode(s: FusedStep, k: number): string {
  switch (s.op) {
    case 'unary':
      return `  var v${k}: f32; { let x = ${s.x}; v${k} = ${UNARY_EXPR[s.prim]}; }`;
    case 'binary':
      return `  var v${k}: f32; { let a = ${s.a}; let b = ${s.b}; v${k} = ${BINARY_EXPR[s.prim]}; }`;
    case 'select':
      // cond != 0 holds for NaN too: test the bits, as SwiftShader's float != is false for NaN.
      return `  let v${k} = select(${s.b}, ${s.a}, (bitcast<u32>(${s.c}) & 0x7fffffffu) != 0u);`;
  }
}

export function fusedShader(p: FusedProgram): string {
  const usesPow = p.steps.some((s) => s.op === 'binary' && BINARY_EXPR[s.prim].includes('pow_js'));
  const bindings = p.leafFlat.map((_, j) => `@group(0) @binding(${2 + j}) var<storage, read> in${j}: array<f32>;`).join('\n');
  const strided = p.leafFlat.map((f, j) => (f ? -1 : j)).filter((j) => j >= 0);
  let walk = '';
  if (strided.length > 0) {
    walk = `\n  var rem = i;${strided.map((j) => ` var s${j} = 0u;`).join('')}`;
    // The host merges axes and pads with leading size-1 axes (engine/webgpu/fusion.ts,
    // mergeAxes): a size-1 axis is skipped by a uniform branch, the outermost needs no division,
    // and the others divide once (c = rem - q * n).
    for (let k = p.rank - 1; k >= 0; k--) {
      const adds = strided.map((j, s) => `s${j} += c * ${U(fusedStrideBase(p.rank, s) + k)};`).join(' ');
      walk += k === 0
        ? `\n  { let c = rem; ${adds} }`
        : `\n  { let n = ${U(2 + k)}; if (n != 1u) { let q = rem / n; let c = rem - q * n; rem = q; ${adds} } }`;
    }
  }
  const scalarBase = fusedStrideBase(p.rank, strided.length);
  const loads = [
    ...p.leafFlat.map((f, j) => `  let l${j} = in${j}[${f ? 'i' : `s${j}`}];`),
    ...Array.from({ length: p.scalars }, (_, j) => `  let c${j} = bitcast<f32>(${U(scalarBase + j)});`),
  ].join('\n');
  return /* wgsl */ `${paramsBlock}${flatIndex}${mathLib}${usesPow ? powJs : ''}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
${bindings}
override WG: u32 = 64u;
// A fused elementwise chain of ${p.steps.length} step(s) over ${p.leafFlat.length} input(s).
@compute @workgroup_size(WG)
fn main(${launchArgs}) {
  let t = flat_index(wid, nwg, lid, WG);
  for (var e = 0u; e < ${p.perThread}u; e++) {
  let i = t + e * ${U(1)};
  if (i >= ${U(0)}) { return; }${walk}
${loads}
${p.steps.map(stepCode).join('\n')}
  out[i] = ${p.result};
  }
}
`;
}

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
// Uniforms (fusedUniforms, one schema per program structure): the element count, the
// invocations, the constants (one-element host uploads, e.g. the 2 in mul(x, 2)), then the
// output shape and one strides array (`rank` words per strided leaf). Shapes and strides are uniforms,
// so only the program's structure is in the WGSL text.
import { BINARY_EXPR, UNARY_EXPR, powJs } from './elementwise.ts';
import { mathLib } from './math.ts';
import { flatIndex, launchArgs } from './params.ts';
import { type Fields, type UniformSchema, uniforms } from './uniforms.ts';

export type FusedStep =
  | { op: 'unary'; prim: string; x: string }
  | { op: 'binary'; prim: string; a: string; b: string }
  | { op: 'select'; c: string; a: string; b: string };

export interface FusedProgram {
  rank: number;
  /** Per leaf (binding 2 + j, read as `lj`): flat-indexed, or strided. */
  leafFlat: boolean[];
  /** Constants read from the uniform block (as `cj`). */
  scalars: number;
  /** Elements per invocation, `threads` (a uniform) apart so that neighbouring invocations read
   * neighbouring elements. CPU adapters pay a lot per invocation (lavapipe: a 2-op chain over
   * 1.2M floats took ~4x less CPU time at 16 per invocation than at 1). */
  perThread: number;
  steps: FusedStep[];
  /** The variable that holds the result (a step's `vk`, or a leaf's `lj`). */
  result: string;
  /**
   * Four neighbouring elements per step of the loop, loaded and stored as vec4 (perThread/4
   * groups per invocation), where the host found it exact: the count a multiple of 4 and, for
   * each strided leaf, the output's innermost (merged) axis a multiple of 4 along which the leaf
   * is either broadcast (`splat[j]`: one scalar load per group) or contiguous with every other
   * stride a multiple of 4 (one aligned vec4 load). The chain itself runs per component, as
   * scalar code. CPU adapters pay per load instruction and per walk: lavapipe ran a flat add over
   * 8.4M floats ~1.8x faster this way. Absent: one element per step.
   */
  vec4?: { splat: boolean[] };
  /**
   * Epilogues only: per leaf, read at the producer's channel `ch` (an argument of the epilogue
   * function, which the producer knows for each element it writes) instead of through the index
   * walk: a bias or BatchNorm's per-channel values. The walk divides once per axis per element,
   * which CPU adapters scalarise (lavapipe: a conv + bias on [1024,8,32,32] took 2.4x the conv).
   */
  leafChannel?: boolean[];
}

/** The most leaves (input buffers) one fused kernel reads: 7 storage bindings plus the output fit
 * WebGPU's default limit of 8 per stage; 6 keeps the uniform block (64 words) big enough for
 * rank-8 strides of every leaf. */
export const FUSED_MAX_LEAVES = 6;
/** Constants per kernel. The scalars (count, invocations, constants) come first and take at
 * most 8 words (with the padding before the first array), the shape at most 8 (rank 8), the
 * strides at most 6 * 8: 64 words, the whole slot. */
export const FUSED_MAX_SCALARS = 6;

/** The uniform schema of one program's structure (rank, strided leaves, constants), as
 * structure-only as its WGSL text (the host caches the two together): `c0..` the constants;
 * `shape` and `strides` (strided leaves only, `rank` each, leaf after leaf) only where some leaf
 * is strided. One strides array for all leaves, so that no leaf pads to 4 words of its own. */
export function fusedUniforms(p: Pick<FusedProgram, 'rank' | 'leafFlat' | 'scalars'>): UniformSchema<Fields> {
  const strided = p.leafFlat.filter((f) => !f).length;
  const fields: Record<string, Fields[string]> = { count: 'u32', threads: 'u32' };
  for (let j = 0; j < p.scalars; j++) fields[`c${j}`] = 'f32';
  if (strided > 0 && p.rank > 0) {
    fields.shape = ['u32', p.rank];
    fields.strides = ['u32', p.rank * strided];
  }
  return uniforms(fields);
}

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

/** How a chain's body names what it reads: leaf j's buffer, the output shape and the strides of
 * strided leaf s (shaders/epilogue.ts reuses the body inside a producer's kernel). */
export interface ChainRefs {
  buffer: (j: number) => string;
  shape: (k: number) => string;
  stride: (s: number, k: number) => string;
  constant: (j: number) => string;
}

/** WGSL statements computing a chain's value at flat output index `i` (a u32 in scope): the walk
 * for strided leaves, the loads, the steps. The result is in `p.result`. */
export function chainBody(p: Pick<FusedProgram, 'rank' | 'leafFlat' | 'scalars' | 'steps' | 'leafChannel'>, refs: ChainRefs): string {
  const loads = [
    ...p.leafFlat.map((f, j) => `  let l${j} = ${refs.buffer(j)}[${f ? 'i' : p.leafChannel?.[j] ? 'ch' : `s${j}`}];`),
    ...Array.from({ length: p.scalars }, (_, j) => `  let c${j} = ${refs.constant(j)};`),
  ].join('\n');
  return `${walkCode(p, refs)}\n${loads}\n${p.steps.map(stepCode).join('\n')}`;
}

/** The walk from flat index `i` to each strided leaf's offset `sj` (channel leaves need none). */
function walkCode(p: Pick<FusedProgram, 'rank' | 'leafFlat' | 'leafChannel'>, refs: ChainRefs): string {
  const strided = p.leafFlat.map((f, j) => (f || p.leafChannel?.[j] ? -1 : j)).filter((j) => j >= 0);
  let walk = '';
  if (strided.length > 0) {
    walk = `\n  var rem = i;${strided.map((j) => ` var s${j} = 0u;`).join('')}`;
    // The host merges axes and pads with leading size-1 axes (engine/webgpu/fusion.ts,
    // mergeAxes): a size-1 axis is skipped by a uniform branch, the outermost needs no division,
    // and the others divide once (c = rem - q * n).
    for (let k = p.rank - 1; k >= 0; k--) {
      const adds = strided.map((j, s) => `s${j} += c * ${refs.stride(s, k)};`).join(' ');
      walk += k === 0
        ? `\n  { let c = rem; ${adds} }`
        : `\n  { let n = ${refs.shape(k)}; if (n != 1u) { let q = rem / n; let c = rem - q * n; rem = q; ${adds} } }`;
    }
  }
  return walk;
}

/** The vec4 form's loop body (FusedProgram.vec4): group `i4`, first element `i`. */
function vec4Body(p: FusedProgram, refs: ChainRefs, splat: boolean[]): string {
  const loads = [
    ...p.leafFlat.map((f, j) => `  let L${j} = ${refs.buffer(j)}[${f ? 'i4' : splat[j] ? `s${j}` : `s${j} / 4u`}];`),
    ...Array.from({ length: p.scalars }, (_, j) => `  let c${j} = ${refs.constant(j)};`),
  ].join('\n');
  const lanes = ['x', 'y', 'z', 'w'].map((lane) => {
    const own = p.leafFlat.map((f, j) => `let l${j} = ${!f && splat[j] ? `L${j}` : `L${j}.${lane}`};`).join(' ');
    return `  {\n  ${own}\n${p.steps.map(stepCode).join('\n')}\n  res.${lane} = ${p.result};\n  }`;
  });
  return `${walkCode(p, refs)}\n${loads}\n  var res: vec4<f32>;\n${lanes.join('\n')}`;
}

/** Whether a chain's steps need pow_js (shaders/elementwise.ts). */
export const chainUsesPow = (p: Pick<FusedProgram, 'steps'>) => p.steps.some((s) => s.op === 'binary' && BINARY_EXPR[s.prim].includes('pow_js'));

export function fusedShader(p: FusedProgram, P: UniformSchema<Fields> = fusedUniforms(p)): string {
  if (p.vec4) return fusedVec4Shader(p, P, p.vec4.splat);
  const usesPow = chainUsesPow(p);
  const bindings = p.leafFlat.map((_, j) => `@group(0) @binding(${2 + j}) var<storage, read> in${j}: array<f32>;`).join('\n');
  const body = chainBody(p, {
    buffer: (j) => `in${j}`,
    shape: (k) => P.ref('shape', k),
    stride: (s, k) => P.ref('strides', s * p.rank + k),
    constant: (j) => P.ref(`c${j}`),
  });
  return /* wgsl */ `${P.wgsl}${flatIndex}${mathLib}${usesPow ? powJs : ''}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
${bindings}
override WG: u32 = 64u;
// A fused elementwise chain of ${p.steps.length} step(s) over ${p.leafFlat.length} input(s).
@compute @workgroup_size(WG)
fn main(${launchArgs}) {
  let t = flat_index(wid, nwg, lid, WG);
  for (var e = 0u; e < ${p.perThread}u; e++) {
  let i = t + e * ${P.ref('threads')};
  if (i >= ${P.ref('count')}) { return; }${body}
  out[i] = ${p.result};
  }
}
`;
}

function fusedVec4Shader(p: FusedProgram, P: UniformSchema<Fields>, splat: boolean[]): string {
  if (p.perThread % 4 !== 0) throw new Error(`backlight internal: a vec4 chain needs perThread a multiple of 4, got ${p.perThread}`);
  const bindings = p.leafFlat
    .map((f, j) => `@group(0) @binding(${2 + j}) var<storage, read> in${j}: array<${!f && splat[j] ? 'f32' : 'vec4<f32>'}>;`)
    .join('\n');
  const body = vec4Body(p, {
    buffer: (j) => `in${j}`,
    shape: (k) => P.ref('shape', k),
    stride: (s, k) => P.ref('strides', s * p.rank + k),
    constant: (j) => P.ref(`c${j}`),
  }, splat);
  return /* wgsl */ `${P.wgsl}${flatIndex}${mathLib}${chainUsesPow(p) ? powJs : ''}
@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;
${bindings}
override WG: u32 = 64u;
// A fused elementwise chain of ${p.steps.length} step(s) over ${p.leafFlat.length} input(s), four elements at a time.
@compute @workgroup_size(WG)
fn main(${launchArgs}) {
  let t = flat_index(wid, nwg, lid, WG);
  for (var e = 0u; e < ${p.perThread / 4}u; e++) {
  let i4 = t + e * ${P.ref('threads')};
  if (i4 >= ${P.ref('count')} / 4u) { return; }
  let i = i4 * 4u;${body}
  out[i4] = res;
  }
}
`;
}

// Reductions over the last axis of a [rows, R] view (the backend first moves the reduced axes to
// the end). Two shapes of kernel: one invocation per row when there are many rows, and one
// workgroup per row with a tree in workgroup memory when rows are few and long.
import { mathLib } from './math.ts';
import { flatIndex, launchArgs } from './params.ts';
import { uniforms } from './uniforms.ts';

export type ReduceKind = 'sum' | 'max' | 'argmax';

// Identity, combine step and result for each kind. max and argmax order values with NaN below
// every number (engine/primitives.ts): `beats(v, best)` is v > best, or best is NaN and v is not.
// Strictness keeps the first maximum. The running best starts as NaN, the identity of that
// order, so a row of NaNs gives NaN (max) and index 0 (argmax), and -inf is a number like any
// other. (Starting from -inf instead made max of an all-NaN row -inf.) NaN is tested on the bits
// (shaders/math.ts): SwiftShader's float compares ignore NaN.
const kinds: Record<ReduceKind, { init: string; step: string; result: string }> = {
  sum: { init: 'var acc = 0.0;', step: 'acc += v;', result: 'acc' },
  max: { init: 'var acc = f_nan();', step: 'if (beats(v, acc)) { acc = v; }', result: 'acc' },
  argmax: { init: 'var acc = f_nan(); var arg = 0u;', step: 'if (beats(v, acc)) { acc = v; arg = r; }', result: 'f32(arg)' },
};

const helpers = /* wgsl */ `${mathLib}
fn beats(v: f32, best: f32) -> bool { return v > best || (is_nan(best) && !is_nan(v)); }
`;

/** Both kernels reduce a [rows, R] view. */
export const reduceUniforms = uniforms({ rows: 'u32', R: 'u32' });
const P = reduceUniforms;

export function reduceRowsShader(kind: ReduceKind): string {
  const k = kinds[kind];
  return /* wgsl */ `${P.wgsl}${flatIndex}${helpers}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> inp: array<f32>;
override WG: u32 = 64u;
@compute @workgroup_size(WG)
fn main(${launchArgs}) {
  let row = flat_index(wid, nwg, lid, WG);
  if (row >= ${P.ref('rows')}) { return; }
  let n = ${P.ref('R')};
  let base = row * n;
  ${k.init}
  for (var r = 0u; r < n; r++) {
    let v = inp[base + r];
    ${k.step}
  }
  out[row] = ${k.result};
}
`;
}

/** One workgroup of WG (a power of two) invocations per row. */
export function reduceWorkgroupShader(kind: ReduceKind): string {
  const k = kinds[kind];
  const isArg = kind === 'argmax';
  const combine =
    kind === 'sum'
      ? 'vals[lid] = vals[lid] + vals[lid + s];'
      : kind === 'max'
        ? 'if (beats(vals[lid + s], vals[lid])) { vals[lid] = vals[lid + s]; }'
        : // Keep the earlier index on ties (lanes hold interleaved indices, so compare them); a lane
          // that saw only NaN (or nothing) holds NaN and loses to any number.
          'let o = vals[lid + s]; let oi = idxs[lid + s]; if (beats(o, vals[lid]) || ((o == vals[lid] || (is_nan(o) && is_nan(vals[lid]))) && oi < idxs[lid])) { vals[lid] = o; idxs[lid] = oi; }';
  return /* wgsl */ `${P.wgsl}${helpers}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> inp: array<f32>;
override WG: u32 = 256u;
var<workgroup> vals: array<f32, WG>;
${isArg ? 'var<workgroup> idxs: array<u32, WG>;' : ''}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * nwg.x;
  let n = ${P.ref('R')};
  let base = row * n;
  ${k.init}
  if (row < ${P.ref('rows')}) {
    for (var r = lid; r < n; r += WG) {
      let v = inp[base + r];
      ${k.step}
    }
  }
  vals[lid] = acc;
  ${isArg ? 'idxs[lid] = arg;' : ''}
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (lid < s) { ${combine} }
    workgroupBarrier();
  }
  if (lid == 0u && row < ${P.ref('rows')}) { out[row] = ${isArg ? 'f32(idxs[0])' : 'vals[0]'}; }
}
`;
}

// gather along one axis (numpy's take) and its adjoint scatterAdd, without atomics: each output
// of scatterAdd sums the updates whose index names it.
import { flatIndex, launchArgs } from './params.ts';
import { uniforms } from './uniforms.ts';

/** J: number of indices, P: elements after the axis, X: the axis's size in x. */
export const gatherUniforms = uniforms({ count: 'u32', J: 'u32', P: 'u32', X: 'u32' });
/** J: number of indices, P: elements after the axis, S: the axis's size in the output. */
export const scatterAddUniforms = uniforms({ count: 'u32', J: 'u32', P: 'u32', S: 'u32' });
const G = gatherUniforms, SA = scatterAddUniforms;

export const gatherShader = /* wgsl */ `${G.wgsl}${flatIndex}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> indices: array<f32>;
override WG: u32 = 64u;
@compute @workgroup_size(WG)
fn main(${launchArgs}) {
  let o = flat_index(wid, nwg, lid, WG);
  if (o >= ${G.ref('count')}) { return; }
  let J = ${G.ref('J')}; let P = ${G.ref('P')}; let X = ${G.ref('X')};
  let post = o % P; let j = (o / P) % J; let pre = o / (P * J);
  // Indices truncate toward zero (as the CPU backend); out of range (or NaN) reads 0.
  let k = trunc(indices[j]);
  let ok = k >= 0.0 && k < f32(X);
  out[o] = select(0.0, x[(pre * X + u32(max(k, 0.0))) * P + post], ok);
}
`;

export const scatterAddShader = /* wgsl */ `${SA.wgsl}${flatIndex}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> updates: array<f32>;
@group(0) @binding(3) var<storage, read> indices: array<f32>;
override WG: u32 = 64u;
@compute @workgroup_size(WG)
fn main(${launchArgs}) {
  let o = flat_index(wid, nwg, lid, WG);
  if (o >= ${SA.ref('count')}) { return; }
  let J = ${SA.ref('J')}; let P = ${SA.ref('P')}; let S = ${SA.ref('S')};
  let post = o % P; let k = f32((o / P) % S); let pre = o / (P * S);
  var acc = 0.0;
  for (var j = 0u; j < J; j++) {
    if (trunc(indices[j]) == k) { acc += updates[(pre * J + j) * P + post]; }
  }
  out[o] = acc;
}
`;

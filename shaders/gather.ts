// gather along one axis (numpy's take) and its adjoint scatterAdd, without atomics: each output
// of scatterAdd sums the updates whose index names it.
import { flatIndex, launchArgs, paramsBlock, U } from './params.ts';

// params: [0] count, [1] J (number of indices), [2] P (elements after the axis), [3] X (axis size).
export const gatherShader = /* wgsl */ `${paramsBlock}${flatIndex}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> indices: array<f32>;
override WG: u32 = 64u;
@compute @workgroup_size(WG)
fn main(${launchArgs}) {
  let o = flat_index(wid, nwg, lid, WG);
  if (o >= ${U(0)}) { return; }
  let J = ${U(1)}; let P = ${U(2)}; let X = ${U(3)};
  let post = o % P; let j = (o / P) % J; let pre = o / (P * J);
  // Indices truncate toward zero (as the CPU backend); out of range (or NaN) reads 0.
  let k = trunc(indices[j]);
  let ok = k >= 0.0 && k < f32(X);
  out[o] = select(0.0, x[(pre * X + u32(max(k, 0.0))) * P + post], ok);
}
`;

// params: [0] count, [1] J, [2] P, [3] size (axis size of the output).
export const scatterAddShader = /* wgsl */ `${paramsBlock}${flatIndex}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> updates: array<f32>;
@group(0) @binding(3) var<storage, read> indices: array<f32>;
override WG: u32 = 64u;
@compute @workgroup_size(WG)
fn main(${launchArgs}) {
  let o = flat_index(wid, nwg, lid, WG);
  if (o >= ${U(0)}) { return; }
  let J = ${U(1)}; let P = ${U(2)}; let S = ${U(3)};
  let post = o % P; let k = f32((o / P) % S); let pre = o / (P * S);
  var acc = 0.0;
  for (var j = 0u; j < J; j++) {
    if (trunc(indices[j]) == k) { acc += updates[(pre * J + j) * P + post]; }
  }
  out[o] = acc;
}
`;

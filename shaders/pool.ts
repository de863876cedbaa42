// 2-D pooling (NCHW) and the adjoints the backward pass needs. Planes = N*C are independent.
// Max pooling is two primitives: gather(x, src) reads src at each window's argmax of x, and
// scatter(x, dy) adds dy at those argmaxes; the argmax is the same function in both.
import { mathLib } from './math.ts';
import { flatIndex, launchArgs, paramsBlock } from './params.ts';

// params: [0] count, [1] planes, [2] H, [3] W, [4] OH, [5] OW, [6] KH, [7] KW, [8] stride h,
//   [9] stride w, [10] pad top, [11] pad left, [12] dilation h, [13] dilation w,
//   [14] count_include_pad (average pooling).
const common = /* wgsl */ `${paramsBlock}${flatIndex}${mathLib}
override WG: u32 = 64u;
// Flat in-plane position of the first maximum of window (i, j) of plane base, or -1 if none.
fn window_argmax(base: u32, i: u32, j: u32) -> i32 {
  let H = i32(pu(2u)); let W = i32(pu(3u));
  let h0 = i32(i * pu(8u)) - pi(10u); let w0 = i32(j * pu(9u)) - pi(11u);
  var best = -f_inf(); var arg = -1i;
  for (var p = 0u; p < pu(6u); p++) {
    let h = h0 + i32(p * pu(12u));
    if (h < 0 || h >= H) { continue; }
    for (var q = 0u; q < pu(7u); q++) {
      let w = w0 + i32(q * pu(13u));
      if (w < 0 || w >= W) { continue; }
      let v = xin[base + u32(h * W + w)];
      // NaN is below every number (as argmax): a NaN first tap must not block later numbers.
      if (arg < 0 || v > best || (is_nan(best) && !is_nan(v))) { best = v; arg = h * W + w; }
    }
  }
  return arg;
}
`;

/** in: x, src [planes,H,W]; out [planes,OH,OW]. */
export const maxPoolGatherShader = /* wgsl */ `
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> xin: array<f32>;
@group(0) @binding(3) var<storage, read> src: array<f32>;
${common}
@compute @workgroup_size(WG)
fn main(${launchArgs}) {
  let idx = flat_index(wid, nwg, lid, WG);
  if (idx >= pu(0u)) { return; }
  let OH = pu(4u); let OW = pu(5u);
  let j = idx % OW; let i = (idx / OW) % OH; let plane = idx / (OW * OH);
  let base = plane * pu(2u) * pu(3u);
  let a = window_argmax(base, i, j);
  out[idx] = select(0.0, src[base + u32(max(a, 0i))], a >= 0i);
}
`;

/** in: x [planes,H,W], dy [planes,OH,OW]; out dx [planes,H,W]. */
export const maxPoolScatterShader = /* wgsl */ `
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> xin: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
${common}
@compute @workgroup_size(WG)
fn main(${launchArgs}) {
  let idx = flat_index(wid, nwg, lid, WG);
  if (idx >= pu(0u)) { return; }
  let H = pu(2u); let W = pu(3u); let OH = i32(pu(4u)); let OW = i32(pu(5u));
  let w = idx % W; let h = (idx / W) % H; let plane = idx / (W * H);
  let base = plane * H * W;
  let me = i32(h * W + w);
  var acc = 0.0;
  // Every window (i, j) that covers (h, w) through some kernel tap (p, q).
  for (var p = 0u; p < pu(6u); p++) {
    let ti = i32(h) + pi(10u) - i32(p * pu(12u));
    if (ti < 0 || ti % i32(pu(8u)) != 0) { continue; }
    let i = ti / i32(pu(8u));
    if (i >= OH) { continue; }
    for (var q = 0u; q < pu(7u); q++) {
      let tj = i32(w) + pi(11u) - i32(q * pu(13u));
      if (tj < 0 || tj % i32(pu(9u)) != 0) { continue; }
      let j = tj / i32(pu(9u));
      if (j >= OW) { continue; }
      if (window_argmax(base, u32(i), u32(j)) == me) {
        acc += dy[(plane * u32(OH) + u32(i)) * u32(OW) + u32(j)];
      }
    }
  }
  out[idx] = acc;
}
`;

const avgDivisor = /* wgsl */ `
fn divisor(i: u32, j: u32) -> f32 {
  if (pu(14u) != 0u) { return f32(pu(6u) * pu(7u)); }
  let H = i32(pu(2u)); let W = i32(pu(3u));
  let h0 = i32(i * pu(8u)) - pi(10u); let w0 = i32(j * pu(9u)) - pi(11u);
  let hn = min(h0 + i32(pu(6u)), H) - max(h0, 0i);
  let wn = min(w0 + i32(pu(7u)), W) - max(w0, 0i);
  return f32(max(hn, 0i) * max(wn, 0i));
}
`;

/** in: x [planes,H,W]; out [planes,OH,OW]. */
export const avgPoolShader = /* wgsl */ `
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> xin: array<f32>;
${paramsBlock}${flatIndex}${avgDivisor}
override WG: u32 = 64u;
@compute @workgroup_size(WG)
fn main(${launchArgs}) {
  let idx = flat_index(wid, nwg, lid, WG);
  if (idx >= pu(0u)) { return; }
  let H = i32(pu(2u)); let W = i32(pu(3u)); let OH = pu(4u); let OW = pu(5u);
  let j = idx % OW; let i = (idx / OW) % OH; let plane = idx / (OW * OH);
  let base = plane * u32(H * W);
  let h0 = i32(i * pu(8u)) - pi(10u); let w0 = i32(j * pu(9u)) - pi(11u);
  var acc = 0.0;
  for (var h = max(h0, 0i); h < min(h0 + i32(pu(6u)), H); h++) {
    for (var w = max(w0, 0i); w < min(w0 + i32(pu(7u)), W); w++) {
      acc += xin[base + u32(h * W + w)];
    }
  }
  out[idx] = acc / divisor(i, j);
}
`;

/** in: dy [planes,OH,OW]; out dx [planes,H,W]. */
export const avgPoolBackpropShader = /* wgsl */ `
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
${paramsBlock}${flatIndex}${avgDivisor}
override WG: u32 = 64u;
@compute @workgroup_size(WG)
fn main(${launchArgs}) {
  let idx = flat_index(wid, nwg, lid, WG);
  if (idx >= pu(0u)) { return; }
  let H = pu(2u); let W = pu(3u); let OH = i32(pu(4u)); let OW = i32(pu(5u));
  let w = idx % W; let h = (idx / W) % H; let plane = idx / (W * H);
  var acc = 0.0;
  for (var p = 0u; p < pu(6u); p++) {
    let ti = i32(h) + pi(10u) - i32(p);
    if (ti < 0 || ti % i32(pu(8u)) != 0) { continue; }
    let i = ti / i32(pu(8u));
    if (i >= OH) { continue; }
    for (var q = 0u; q < pu(7u); q++) {
      let tj = i32(w) + pi(11u) - i32(q);
      if (tj < 0 || tj % i32(pu(9u)) != 0) { continue; }
      let j = tj / i32(pu(9u));
      if (j >= OW) { continue; }
      acc += dy[(plane * u32(OH) + u32(i)) * u32(OW) + u32(j)] / divisor(u32(i), u32(j));
    }
  }
  out[idx] = acc;
}
`;

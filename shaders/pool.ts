// 2-D pooling (NCHW) and the adjoints the backward pass needs. Planes = N*C are independent.
// Max pooling is two primitives: gather(x, src) reads src at each window's argmax of x, and
// scatter(x, dy) adds dy at those argmaxes; the argmax is the same function in both.
import { mathLib } from './math.ts';
import { flatIndex, I, launchArgs, paramsBlock, U } from './params.ts';

// params: [0] count, [1] planes, [2] H, [3] W, [4] OH, [5] OW, [6] KH, [7] KW, [8] stride h,
//   [9] stride w, [10] pad top, [11] pad left, [12] dilation h, [13] dilation w,
//   [14] count_include_pad (average pooling).
const common = /* wgsl */ `${paramsBlock}${flatIndex}${mathLib}
override WG: u32 = 64u;
// Flat in-plane position of the first maximum of window (i, j) of plane base, or -1 if none.
fn window_argmax(base: u32, i: u32, j: u32) -> i32 {
  let H = i32(${U(2)}); let W = i32(${U(3)});
  let h0 = i32(i * ${U(8)}) - ${I(10)}; let w0 = i32(j * ${U(9)}) - ${I(11)};
  var best = -f_inf(); var arg = -1i;
  for (var p = 0u; p < ${U(6)}; p++) {
    let h = h0 + i32(p * ${U(12)});
    if (h < 0 || h >= H) { continue; }
    for (var q = 0u; q < ${U(7)}; q++) {
      let w = w0 + i32(q * ${U(13)});
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
  if (idx >= ${U(0)}) { return; }
  let OH = ${U(4)}; let OW = ${U(5)};
  let j = idx % OW; let i = (idx / OW) % OH; let plane = idx / (OW * OH);
  let base = plane * ${U(2)} * ${U(3)};
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
  if (idx >= ${U(0)}) { return; }
  let H = ${U(2)}; let W = ${U(3)}; let OH = i32(${U(4)}); let OW = i32(${U(5)});
  let w = idx % W; let h = (idx / W) % H; let plane = idx / (W * H);
  let base = plane * H * W;
  let me = i32(h * W + w);
  var acc = 0.0;
  // Every window (i, j) that covers (h, w) through some kernel tap (p, q).
  for (var p = 0u; p < ${U(6)}; p++) {
    let ti = i32(h) + ${I(10)} - i32(p * ${U(12)});
    if (ti < 0 || ti % i32(${U(8)}) != 0) { continue; }
    let i = ti / i32(${U(8)});
    if (i >= OH) { continue; }
    for (var q = 0u; q < ${U(7)}; q++) {
      let tj = i32(w) + ${I(11)} - i32(q * ${U(13)});
      if (tj < 0 || tj % i32(${U(9)}) != 0) { continue; }
      let j = tj / i32(${U(9)});
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
  if (${U(14)} != 0u) { return f32(${U(6)} * ${U(7)}); }
  let H = i32(${U(2)}); let W = i32(${U(3)});
  let h0 = i32(i * ${U(8)}) - ${I(10)}; let w0 = i32(j * ${U(9)}) - ${I(11)};
  let hn = min(h0 + i32(${U(6)}), H) - max(h0, 0i);
  let wn = min(w0 + i32(${U(7)}), W) - max(w0, 0i);
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
  if (idx >= ${U(0)}) { return; }
  let H = i32(${U(2)}); let W = i32(${U(3)}); let OH = ${U(4)}; let OW = ${U(5)};
  let j = idx % OW; let i = (idx / OW) % OH; let plane = idx / (OW * OH);
  let base = plane * u32(H * W);
  let h0 = i32(i * ${U(8)}) - ${I(10)}; let w0 = i32(j * ${U(9)}) - ${I(11)};
  var acc = 0.0;
  for (var h = max(h0, 0i); h < min(h0 + i32(${U(6)}), H); h++) {
    for (var w = max(w0, 0i); w < min(w0 + i32(${U(7)}), W); w++) {
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
  if (idx >= ${U(0)}) { return; }
  let H = ${U(2)}; let W = ${U(3)}; let OH = i32(${U(4)}); let OW = i32(${U(5)});
  let w = idx % W; let h = (idx / W) % H; let plane = idx / (W * H);
  var acc = 0.0;
  for (var p = 0u; p < ${U(6)}; p++) {
    let ti = i32(h) + ${I(10)} - i32(p);
    if (ti < 0 || ti % i32(${U(8)}) != 0) { continue; }
    let i = ti / i32(${U(8)});
    if (i >= OH) { continue; }
    for (var q = 0u; q < ${U(7)}; q++) {
      let tj = i32(w) + ${I(11)} - i32(q);
      if (tj < 0 || tj % i32(${U(9)}) != 0) { continue; }
      let j = tj / i32(${U(9)});
      if (j >= OW) { continue; }
      acc += dy[(plane * u32(OH) + u32(i)) * u32(OW) + u32(j)] / divisor(u32(i), u32(j));
    }
  }
  out[idx] = acc;
}
`;

// Direct 2-D convolution (NCHW, cross-correlation as PyTorch/ONNX) and its two adjoints.
// One invocation per output element; the adjoints gather (never scatter), so no atomics.
import { flatIndex, I, launchArgs, paramsBlock, U } from './params.ts';

// params: [0] count, [1] N, [2] C, [3] H, [4] W, [5] O, [6] OH, [7] OW, [8] KH, [9] KW,
//   [10] stride h, [11] stride w, [12] pad top, [13] pad left, [14] dilation h, [15] dilation w,
//   [16] groups.
const header = /* wgsl */ `${paramsBlock}${flatIndex}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> in0: array<f32>;
@group(0) @binding(3) var<storage, read> in1: array<f32>;
override WG: u32 = 64u;
`;

/** in0 = x [N,C,H,W], in1 = w [O,C/g,KH,KW]; out = y [N,O,OH,OW]. */
export const conv2dShader = /* wgsl */ `${header}
@compute @workgroup_size(WG)
fn main(${launchArgs}) {
  let idx = flat_index(wid, nwg, lid, WG);
  if (idx >= ${U(0)}) { return; }
  let C = ${U(2)}; let H = i32(${U(3)}); let W = i32(${U(4)}); let O = ${U(5)};
  let OH = ${U(6)}; let OW = ${U(7)}; let KH = ${U(8)}; let KW = ${U(9)};
  let Cg = C / ${U(16)}; let Og = O / ${U(16)};
  let j = idx % OW; let i = (idx / OW) % OH; let o = (idx / (OW * OH)) % O; let n = idx / (OW * OH * O);
  let c0 = (o / Og) * Cg;
  let h0 = i32(i * ${U(10)}) - ${I(12)}; let w0 = i32(j * ${U(11)}) - ${I(13)};
  let dh = i32(${U(14)}); let dw = i32(${U(15)});
  var acc = 0.0;
  for (var c = 0u; c < Cg; c++) {
    let xPlane = (n * C + c0 + c) * u32(H * W);
    let wPlane = (o * Cg + c) * KH * KW;
    for (var p = 0u; p < KH; p++) {
      let h = h0 + i32(p) * dh;
      if (h < 0 || h >= H) { continue; }
      for (var q = 0u; q < KW; q++) {
        let w = w0 + i32(q) * dw;
        if (w < 0 || w >= W) { continue; }
        acc += in0[xPlane + u32(h * W + w)] * in1[wPlane + p * KW + q];
      }
    }
  }
  out[idx] = acc;
}
`;

/** in0 = dy [N,O,OH,OW], in1 = w; out = dx [N,C,H,W]. */
export const conv2dBackpropInputShader = /* wgsl */ `${header}
@compute @workgroup_size(WG)
fn main(${launchArgs}) {
  let idx = flat_index(wid, nwg, lid, WG);
  if (idx >= ${U(0)}) { return; }
  let C = ${U(2)}; let H = ${U(3)}; let W = ${U(4)}; let O = ${U(5)};
  let OH = i32(${U(6)}); let OW = i32(${U(7)}); let KH = ${U(8)}; let KW = ${U(9)};
  let sh = i32(${U(10)}); let sw = i32(${U(11)}); let dh = i32(${U(14)}); let dw = i32(${U(15)});
  let Cg = C / ${U(16)}; let Og = O / ${U(16)};
  let w = idx % W; let h = (idx / W) % H; let c = (idx / (W * H)) % C; let n = idx / (W * H * C);
  let g = c / Cg; let cc = c % Cg;
  var acc = 0.0;
  for (var p = 0u; p < KH; p++) {
    let ti = i32(h) + ${I(12)} - i32(p) * dh;
    if (ti < 0 || ti % sh != 0) { continue; }
    let i = ti / sh;
    if (i >= OH) { continue; }
    for (var q = 0u; q < KW; q++) {
      let tj = i32(w) + ${I(13)} - i32(q) * dw;
      if (tj < 0 || tj % sw != 0) { continue; }
      let j = tj / sw;
      if (j >= OW) { continue; }
      for (var oo = 0u; oo < Og; oo++) {
        let o = g * Og + oo;
        acc += in0[((n * O + o) * u32(OH) + u32(i)) * u32(OW) + u32(j)] * in1[((o * Cg + cc) * KH + p) * KW + q];
      }
    }
  }
  out[idx] = acc;
}
`;

/** in0 = x [N,C,H,W], in1 = dy [N,O,OH,OW]; out = dw [O,C/g,KH,KW]. */
export const conv2dBackpropFilterShader = /* wgsl */ `${header}
@compute @workgroup_size(WG)
fn main(${launchArgs}) {
  let idx = flat_index(wid, nwg, lid, WG);
  if (idx >= ${U(0)}) { return; }
  let N = ${U(1)}; let C = ${U(2)}; let H = i32(${U(3)}); let W = i32(${U(4)}); let O = ${U(5)};
  let OH = ${U(6)}; let OW = ${U(7)}; let KH = ${U(8)}; let KW = ${U(9)};
  let Cg = C / ${U(16)}; let Og = O / ${U(16)};
  let q = idx % KW; let p = (idx / KW) % KH; let cc = (idx / (KW * KH)) % Cg; let o = idx / (KW * KH * Cg);
  let c = (o / Og) * Cg + cc;
  let hOff = i32(p * ${U(14)}) - ${I(12)}; let wOff = i32(q * ${U(15)}) - ${I(13)};
  let sh = ${U(10)}; let sw = ${U(11)};
  var acc = 0.0;
  for (var n = 0u; n < N; n++) {
    let xPlane = (n * C + c) * u32(H * W);
    let yPlane = (n * O + o) * OH * OW;
    for (var i = 0u; i < OH; i++) {
      let h = i32(i * sh) + hOff;
      if (h < 0 || h >= H) { continue; }
      for (var j = 0u; j < OW; j++) {
        let w = i32(j * sw) + wOff;
        if (w < 0 || w >= W) { continue; }
        acc += in1[yPlane + i * OW + j] * in0[xPlane + u32(h * W + w)];
      }
    }
  }
  out[idx] = acc;
}
`;

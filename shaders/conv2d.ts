// Direct 2-D convolution (NCHW, cross-correlation as PyTorch/ONNX) and its two adjoints.
// One invocation per output element; the adjoints gather (never scatter), so no atomics.
import { flatIndex, launchArgs } from './params.ts';
import { uniforms } from './uniforms.ts';

/** The sizes of a convolution, x [N,C,H,W] * w [O,C/groups,KH,KW] -> y [N,O,OH,OW], whichever of
 * x, w, y the kernel computes; `count` is its number of invocations. Shared with
 * shaders/conv2d-tiled.ts, whose kernels add fields of their own. */
export const convFields = {
  count: 'u32',
  N: 'u32',
  C: 'u32',
  H: 'u32',
  W: 'u32',
  O: 'u32',
  OH: 'u32',
  OW: 'u32',
  KH: 'u32',
  KW: 'u32',
  strideH: 'u32',
  strideW: 'u32',
  padTop: 'i32',
  padLeft: 'i32',
  dilationH: 'u32',
  dilationW: 'u32',
  groups: 'u32',
} as const;
export const convUniforms = uniforms(convFields);
const P = convUniforms;

const header = /* wgsl */ `${P.wgsl}${flatIndex}
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
  if (idx >= ${P.ref('count')}) { return; }
  let C = ${P.ref('C')}; let H = i32(${P.ref('H')}); let W = i32(${P.ref('W')}); let O = ${P.ref('O')};
  let OH = ${P.ref('OH')}; let OW = ${P.ref('OW')}; let KH = ${P.ref('KH')}; let KW = ${P.ref('KW')};
  let Cg = C / ${P.ref('groups')}; let Og = O / ${P.ref('groups')};
  let j = idx % OW; let i = (idx / OW) % OH; let o = (idx / (OW * OH)) % O; let n = idx / (OW * OH * O);
  let c0 = (o / Og) * Cg;
  let h0 = i32(i * ${P.ref('strideH')}) - ${P.ref('padTop')}; let w0 = i32(j * ${P.ref('strideW')}) - ${P.ref('padLeft')};
  let dh = i32(${P.ref('dilationH')}); let dw = i32(${P.ref('dilationW')});
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
  if (idx >= ${P.ref('count')}) { return; }
  let C = ${P.ref('C')}; let H = ${P.ref('H')}; let W = ${P.ref('W')}; let O = ${P.ref('O')};
  let OH = i32(${P.ref('OH')}); let OW = i32(${P.ref('OW')}); let KH = ${P.ref('KH')}; let KW = ${P.ref('KW')};
  let sh = i32(${P.ref('strideH')}); let sw = i32(${P.ref('strideW')}); let dh = i32(${P.ref('dilationH')}); let dw = i32(${P.ref('dilationW')});
  let Cg = C / ${P.ref('groups')}; let Og = O / ${P.ref('groups')};
  let w = idx % W; let h = (idx / W) % H; let c = (idx / (W * H)) % C; let n = idx / (W * H * C);
  let g = c / Cg; let cc = c % Cg;
  var acc = 0.0;
  for (var p = 0u; p < KH; p++) {
    let ti = i32(h) + ${P.ref('padTop')} - i32(p) * dh;
    if (ti < 0 || ti % sh != 0) { continue; }
    let i = ti / sh;
    if (i >= OH) { continue; }
    for (var q = 0u; q < KW; q++) {
      let tj = i32(w) + ${P.ref('padLeft')} - i32(q) * dw;
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
  if (idx >= ${P.ref('count')}) { return; }
  let N = ${P.ref('N')}; let C = ${P.ref('C')}; let H = i32(${P.ref('H')}); let W = i32(${P.ref('W')}); let O = ${P.ref('O')};
  let OH = ${P.ref('OH')}; let OW = ${P.ref('OW')}; let KH = ${P.ref('KH')}; let KW = ${P.ref('KW')};
  let Cg = C / ${P.ref('groups')}; let Og = O / ${P.ref('groups')};
  let q = idx % KW; let p = (idx / KW) % KH; let cc = (idx / (KW * KH)) % Cg; let o = idx / (KW * KH * Cg);
  let c = (o / Og) * Cg + cc;
  let hOff = i32(p * ${P.ref('dilationH')}) - ${P.ref('padTop')}; let wOff = i32(q * ${P.ref('dilationW')}) - ${P.ref('padLeft')};
  let sh = ${P.ref('strideH')}; let sw = ${P.ref('strideW')};
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

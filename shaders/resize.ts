// Bilinear resize (NCHW) as PyTorch's F.interpolate(mode='bilinear'), and its adjoint.
import { flatIndex, launchArgs } from './params.ts';
import { uniforms } from './uniforms.ts';

/** Both kernels: `planes` = N*C, each [H,W] in and [OH,OW] out; alignCorners 0 or 1. */
export const resizeUniforms = uniforms({ count: 'u32', planes: 'u32', H: 'u32', W: 'u32', OH: 'u32', OW: 'u32', alignCorners: 'u32' });
const P = resizeUniforms;
const taps = /* wgsl */ `
struct Taps { i0: u32, i1: u32, l1: f32 }
// The two source rows (or columns) of output coordinate o along an axis of in -> out samples.
fn taps(o: u32, inSize: u32, outSize: u32) -> Taps {
  var s: f32;
  if (${P.ref('alignCorners')} != 0u) {
    s = select(0.0, f32(o) * f32(inSize - 1u) / f32(outSize - 1u), outSize > 1u);
  } else {
    s = max(0.0, (f32(o) + 0.5) * f32(inSize) / f32(outSize) - 0.5);
  }
  let i0 = min(u32(floor(s)), inSize - 1u);
  let i1 = min(i0 + 1u, inSize - 1u);
  return Taps(i0, i1, s - f32(i0));
}
`;

export const resizeBilinearShader = /* wgsl */ `${P.wgsl}${flatIndex}${taps}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> inp: array<f32>;
override WG: u32 = 64u;
@compute @workgroup_size(WG)
fn main(${launchArgs}) {
  let idx = flat_index(wid, nwg, lid, WG);
  if (idx >= ${P.ref('count')}) { return; }
  let H = ${P.ref('H')}; let W = ${P.ref('W')}; let OH = ${P.ref('OH')}; let OW = ${P.ref('OW')};
  let j = idx % OW; let i = (idx / OW) % OH; let plane = idx / (OW * OH);
  let ty = taps(i, H, OH); let tx = taps(j, W, OW);
  let b = plane * H * W;
  let top = (1.0 - tx.l1) * inp[b + ty.i0 * W + tx.i0] + tx.l1 * inp[b + ty.i0 * W + tx.i1];
  let bot = (1.0 - tx.l1) * inp[b + ty.i1 * W + tx.i0] + tx.l1 * inp[b + ty.i1 * W + tx.i1];
  out[idx] = (1.0 - ty.l1) * top + ty.l1 * bot;
}
`;

/**
 * The adjoint: input position (h, w) gathers from every output whose taps include it. The source
 * coordinate is monotonic in the output index, so only outputs within a couple of steps of
 * h * OH / H (h * (OH-1) / (H-1) with aligned corners) can reach h; the loop covers that range with a margin and tests each candidate exactly.
 */
export const resizeBilinearBackpropShader = /* wgsl */ `${P.wgsl}${flatIndex}${taps}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
override WG: u32 = 64u;
fn weight(t: Taps, at: u32) -> f32 {
  return select(0.0, 1.0 - t.l1, t.i0 == at) + select(0.0, t.l1, t.i1 == at);
}
// Outputs per input step along an axis, in the mode's own mapping.
fn ratio(inSize: u32, outSize: u32) -> f32 {
  if (${P.ref('alignCorners')} != 0u) { return f32(outSize - 1u) / f32(max(inSize - 1u, 1u)); }
  return f32(outSize) / f32(inSize);
}
fn range_lo(at: u32, inSize: u32, outSize: u32) -> u32 {
  if (inSize <= 1u) { return 0u; }
  return u32(max(0.0, (f32(at) - 1.0) * ratio(inSize, outSize) - 2.0));
}
fn range_hi(at: u32, inSize: u32, outSize: u32) -> u32 {
  if (inSize <= 1u) { return outSize; }
  return min(outSize, u32((f32(at) + 2.0) * ratio(inSize, outSize) + 3.0));
}
@compute @workgroup_size(WG)
fn main(${launchArgs}) {
  let idx = flat_index(wid, nwg, lid, WG);
  if (idx >= ${P.ref('count')}) { return; }
  let H = ${P.ref('H')}; let W = ${P.ref('W')}; let OH = ${P.ref('OH')}; let OW = ${P.ref('OW')};
  let w = idx % W; let h = (idx / W) % H; let plane = idx / (W * H);
  var acc = 0.0;
  for (var i = range_lo(h, H, OH); i < range_hi(h, H, OH); i++) {
    let wy = weight(taps(i, H, OH), h);
    if (wy == 0.0) { continue; }
    for (var j = range_lo(w, W, OW); j < range_hi(w, W, OW); j++) {
      let wx = weight(taps(j, W, OW), w);
      if (wx == 0.0) { continue; }
      acc += wy * wx * dy[(plane * OH + i) * OW + j];
    }
  }
  out[idx] = acc;
}
`;

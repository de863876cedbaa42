// 2-D pooling (NCHW) and the adjoints the backward pass needs. Planes = N*C are independent.
// Max pooling is two primitives: gather(x, src) reads src at each window's argmax of x, and
// scatter(x, dy) adds dy at those argmaxes; the argmax is the same function in both.
import { mathLib } from './math.ts';
import { flatIndex, launchArgs } from './params.ts';
import { uniforms } from './uniforms.ts';

/** Every pooling kernel: `planes` = N*C, each [H,W] in and [OH,OW] out; countIncludePad (0 or 1)
 * is read by average pooling only. */
export const poolUniforms = uniforms({
  count: 'u32',
  planes: 'u32',
  H: 'u32',
  W: 'u32',
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
  countIncludePad: 'u32',
});
const P = poolUniforms;

const common = /* wgsl */ `${P.wgsl}${flatIndex}${mathLib}
override WG: u32 = 64u;
// Flat in-plane position of the first maximum of window (i, j) of plane base, or -1 if none.
fn window_argmax(base: u32, i: u32, j: u32) -> i32 {
  let H = i32(${P.ref('H')}); let W = i32(${P.ref('W')});
  let h0 = i32(i * ${P.ref('strideH')}) - ${P.ref('padTop')}; let w0 = i32(j * ${P.ref('strideW')}) - ${P.ref('padLeft')};
  var best = -f_inf(); var arg = -1i;
  for (var p = 0u; p < ${P.ref('KH')}; p++) {
    let h = h0 + i32(p * ${P.ref('dilationH')});
    if (h < 0 || h >= H) { continue; }
    for (var q = 0u; q < ${P.ref('KW')}; q++) {
      let w = w0 + i32(q * ${P.ref('dilationW')});
      if (w < 0 || w >= W) { continue; }
      let v = xin[base + u32(h * W + w)];
      // NaN is below every number (as argmax): a NaN first tap must not block later numbers.
      if (arg < 0 || v > best || (is_nan(best) && !is_nan(v))) { best = v; arg = h * W + w; }
    }
  }
  return arg;
}
`;

/** Outputs (gather) or cells (scatter) of one row per invocation (maxPoolRowGroups). */
export const ROW = 4;
/** Invocations for `planes` x `rows` rows of `cols` outputs or cells, ROW of a row each. */
export const maxPoolRowGroups = (planes: number, rows: number, cols: number): number => planes * rows * Math.ceil(cols / ROW);

/** in: x, src [planes,H,W]; out [planes,OH,OW]. count = maxPoolRowGroups(planes, OH, OW). */
export const maxPoolGatherShader = /* wgsl */ `
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> xin: array<f32>;
@group(0) @binding(3) var<storage, read> src: array<f32>;
${common}
@compute @workgroup_size(WG)
fn main(${launchArgs}) {
  let idx = flat_index(wid, nwg, lid, WG);
  if (idx >= ${P.ref('count')}) { return; }
  // ${ROW} neighbouring outputs of a row per invocation: the divisions once for all of them
  let OH = ${P.ref('OH')}; let OW = ${P.ref('OW')}; let OWq = (OW + ${ROW - 1}u) / ${ROW}u;
  let jq = idx % OWq; let i = (idx / OWq) % OH; let plane = idx / (OWq * OH);
  let base = plane * ${P.ref('H')} * ${P.ref('W')};
  let o = (plane * OH + i) * OW;
  for (var j = jq * ${ROW}u; j < min(jq * ${ROW}u + ${ROW}u, OW); j++) {
    let a = window_argmax(base, i, j);
    out[o + j] = select(0.0, src[base + u32(max(a, 0i))], a >= 0i);
  }
}
`;

/** The scatter kernels' bindings and the start of main (one invocation per idx < count). */
const scatterHead = /* wgsl */ `
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> xin: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
${common}
@compute @workgroup_size(WG)
fn main(${launchArgs}) {
  let idx = flat_index(wid, nwg, lid, WG);
  if (idx >= ${P.ref('count')}) { return; }
`;

/** in: x [planes,H,W], dy [planes,OH,OW]; out dx [planes,H,W]. */
export const maxPoolScatterShader = /* wgsl */ `${scatterHead}  let H = ${P.ref('H')}; let W = ${P.ref('W')}; let OH = i32(${P.ref('OH')}); let OW = i32(${P.ref('OW')});
  let w = idx % W; let h = (idx / W) % H; let plane = idx / (W * H);
  let base = plane * H * W;
  let me = i32(h * W + w);
  var acc = 0.0;
  // Every window (i, j) that covers (h, w) through some kernel tap (p, q).
  for (var p = 0u; p < ${P.ref('KH')}; p++) {
    let ti = i32(h) + ${P.ref('padTop')} - i32(p * ${P.ref('dilationH')});
    if (ti < 0 || ti % i32(${P.ref('strideH')}) != 0) { continue; }
    let i = ti / i32(${P.ref('strideH')});
    if (i >= OH) { continue; }
    for (var q = 0u; q < ${P.ref('KW')}; q++) {
      let tj = i32(w) + ${P.ref('padLeft')} - i32(q * ${P.ref('dilationW')});
      if (tj < 0 || tj % i32(${P.ref('strideW')}) != 0) { continue; }
      let j = tj / i32(${P.ref('strideW')});
      if (j >= OW) { continue; }
      if (window_argmax(base, u32(i), u32(j)) == me) {
        acc += dy[(plane * u32(OH) + u32(i)) * u32(OW) + u32(j)];
      }
    }
  }
  out[idx] = acc;
}
`;

/**
 * Max pooling's scatter when windows do not overlap (each input pixel lies in at most one window:
 * (K - 1) * dilation + 1 <= stride on both axes, the usual 2x2 stride-2 pool). One invocation per
 * stride-sized cell of the input, cell (i, j) starting at (i * strideH - padTop, j * strideW -
 * padLeft) and holding window (i, j) if there is one: it finds the window's argmax once and writes
 * the whole cell (dy there, 0 elsewhere). The general kernel finds, for every input pixel, every
 * window over it and each window's argmax: an integer division per tap and KH*KW argmaxes per
 * pixel, which CPU adapters scalarise (lavapipe: ~10x slower on [1024,8,32,32]). Same argmax
 * function, so the two kernels agree bit for bit. count = maxPoolRowGroups(planes, cellsH, cellsW).
 * in: x [planes,H,W], dy [planes,OH,OW]; out dx [planes,H,W].
 */
export const maxPoolScatterCellsShader = /* wgsl */ `${scatterHead}  let H = ${P.ref('H')}; let W = ${P.ref('W')}; let OH = ${P.ref('OH')}; let OW = ${P.ref('OW')};
  let sH = ${P.ref('strideH')}; let sW = ${P.ref('strideW')};
  let padTop = u32(${P.ref('padTop')}); let padLeft = u32(${P.ref('padLeft')});
  let cellsW = (W + padLeft + sW - 1u) / sW; let cellsH = (H + padTop + sH - 1u) / sH;
  // ${ROW} neighbouring cells of a row per invocation: the divisions once for all of them
  let cellsWq = (cellsW + ${ROW - 1}u) / ${ROW}u;
  let jq = idx % cellsWq; let i = (idx / cellsWq) % cellsH; let plane = idx / (cellsWq * cellsH);
  let base = plane * H * W;
  // the cells' rows inside the image (a cell may start in the padding)
  let h0 = i32(i * sH) - i32(padTop); let h1 = min(h0 + i32(sH), i32(H));
  for (var j = jq * ${ROW}u; j < min(jq * ${ROW}u + ${ROW}u, cellsW); j++) {
    var a = -1i; var d = 0.0;
    if (i < OH && j < OW) {
      a = window_argmax(base, i, j);
      d = dy[(plane * OH + i) * OW + j];
    }
    let w0 = i32(j * sW) - i32(padLeft); let w1 = min(w0 + i32(sW), i32(W));
    for (var h = max(h0, 0i); h < h1; h++) {
      for (var w = max(w0, 0i); w < w1; w++) {
        let me = h * i32(W) + w;
        out[base + u32(me)] = select(0.0, d, me == a);
      }
    }
  }
}
`;

const avgDivisor = /* wgsl */ `
fn divisor(i: u32, j: u32) -> f32 {
  if (${P.ref('countIncludePad')} != 0u) { return f32(${P.ref('KH')} * ${P.ref('KW')}); }
  let H = i32(${P.ref('H')}); let W = i32(${P.ref('W')});
  let h0 = i32(i * ${P.ref('strideH')}) - ${P.ref('padTop')}; let w0 = i32(j * ${P.ref('strideW')}) - ${P.ref('padLeft')};
  let hn = min(h0 + i32(${P.ref('KH')}), H) - max(h0, 0i);
  let wn = min(w0 + i32(${P.ref('KW')}), W) - max(w0, 0i);
  return f32(max(hn, 0i) * max(wn, 0i));
}
`;

/** in: x [planes,H,W]; out [planes,OH,OW]. */
export const avgPoolShader = /* wgsl */ `
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> xin: array<f32>;
${P.wgsl}${flatIndex}${avgDivisor}
override WG: u32 = 64u;
@compute @workgroup_size(WG)
fn main(${launchArgs}) {
  let idx = flat_index(wid, nwg, lid, WG);
  if (idx >= ${P.ref('count')}) { return; }
  let H = i32(${P.ref('H')}); let W = i32(${P.ref('W')}); let OH = ${P.ref('OH')}; let OW = ${P.ref('OW')};
  let j = idx % OW; let i = (idx / OW) % OH; let plane = idx / (OW * OH);
  let base = plane * u32(H * W);
  let h0 = i32(i * ${P.ref('strideH')}) - ${P.ref('padTop')}; let w0 = i32(j * ${P.ref('strideW')}) - ${P.ref('padLeft')};
  var acc = 0.0;
  for (var h = max(h0, 0i); h < min(h0 + i32(${P.ref('KH')}), H); h++) {
    for (var w = max(w0, 0i); w < min(w0 + i32(${P.ref('KW')}), W); w++) {
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
${P.wgsl}${flatIndex}${avgDivisor}
override WG: u32 = 64u;
@compute @workgroup_size(WG)
fn main(${launchArgs}) {
  let idx = flat_index(wid, nwg, lid, WG);
  if (idx >= ${P.ref('count')}) { return; }
  let H = ${P.ref('H')}; let W = ${P.ref('W')}; let OH = i32(${P.ref('OH')}); let OW = i32(${P.ref('OW')});
  let w = idx % W; let h = (idx / W) % H; let plane = idx / (W * H);
  var acc = 0.0;
  for (var p = 0u; p < ${P.ref('KH')}; p++) {
    let ti = i32(h) + ${P.ref('padTop')} - i32(p);
    if (ti < 0 || ti % i32(${P.ref('strideH')}) != 0) { continue; }
    let i = ti / i32(${P.ref('strideH')});
    if (i >= OH) { continue; }
    for (var q = 0u; q < ${P.ref('KW')}; q++) {
      let tj = i32(w) + ${P.ref('padLeft')} - i32(q);
      if (tj < 0 || tj % i32(${P.ref('strideW')}) != 0) { continue; }
      let j = tj / i32(${P.ref('strideW')});
      if (j >= OW) { continue; }
      acc += dy[(plane * u32(OH) + u32(i)) * u32(OW) + u32(j)] / divisor(u32(i), u32(j));
    }
  }
  out[idx] = acc;
}
`;

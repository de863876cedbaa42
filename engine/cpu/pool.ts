// 2-D pooling over NCHW: max pooling as gather/scatter through the window argmax, average
// pooling and its adjoint. Window (i, j) covers rows i*sh - pt + p*dh (p < KH) and columns
// j*sw - pl + q*dw (q < KW); OH/OW come from the output (or dy) shape.
import type { PrimImpl } from '../backend.ts';
import type { Pool2dParams, Shape } from '../primitives.ts';
import { sizeOf, wrap, type CpuStorage } from './strides.ts';

interface PoolGeometry {
  planes: number; // N * C
  H: number; W: number; OH: number; OW: number;
  KH: number; KW: number; sh: number; sw: number; pt: number; pl: number; dh: number; dw: number;
}

function geometry(p: Pool2dParams, xShape: Shape, yShape: Shape): PoolGeometry {
  return {
    planes: xShape[0] * xShape[1], H: xShape[2], W: xShape[3], OH: yShape[2], OW: yShape[3],
    KH: p.kernel[0], KW: p.kernel[1], sh: p.stride[0], sw: p.stride[1],
    pt: p.padding[0], pl: p.padding[2], dh: p.dilation[0], dw: p.dilation[1],
  };
}

/**
 * For each output element, the flat offset in x of its window's maximum, or -1 when the window
 * has no in-range position. Padded positions never win; ties keep the first position in
 * row-major window order; NaN counts as smaller than every number (as in argmax).
 */
function windowArgmax(g: PoolGeometry, x: Float64Array): Int32Array {
  const { planes, H, W, OH, OW, KH, KW, sh, sw, pt, pl, dh, dw } = g;
  const arg = new Int32Array(planes * OH * OW).fill(-1);
  let o = 0;
  for (let plane = 0; plane < planes; plane++) {
    const base = plane * H * W;
    for (let i = 0; i < OH; i++) {
      for (let j = 0; j < OW; j++, o++) {
        let bestAt = -1;
        let best = 0;
        for (let p = 0; p < KH; p++) {
          const y = i * sh - pt + p * dh;
          if (y < 0 || y >= H) continue;
          for (let q = 0; q < KW; q++) {
            const xx = j * sw - pl + q * dw;
            if (xx < 0 || xx >= W) continue;
            const at = base + y * W + xx;
            const v = x[at];
            if (bestAt < 0 || v > best || (best !== best && v === v)) {
              bestAt = at;
              best = v;
            }
          }
        }
        arg[o] = bestAt;
      }
    }
  }
  return arg;
}

const maxPoolGather: PrimImpl<CpuStorage, 'maxPoolGather'> = (params, [x, src], outShape) => {
  const arg = windowArgmax(geometry(params, x.shape, outShape), x.storage.data);
  const s = src.storage.data;
  const out = new Float64Array(arg.length);
  for (let o = 0; o < arg.length; o++) out[o] = arg[o] >= 0 ? s[arg[o]] : 0;
  return wrap(out);
};

const maxPoolScatter: PrimImpl<CpuStorage, 'maxPoolScatter'> = (params, [x, dy], outShape) => {
  const arg = windowArgmax(geometry(params, x.shape, dy.shape), x.storage.data);
  const d = dy.storage.data;
  const out = new Float64Array(sizeOf(outShape));
  for (let o = 0; o < arg.length; o++) if (arg[o] >= 0) out[arg[o]] += d[o];
  return wrap(out);
};

/**
 * Calls `visit(outIndex, inOffsets, count, divisor)` per window, with `inOffsets[0..count)` the
 * flat x offsets of its in-range positions. divisor = KH*KW with countIncludePad, else count.
 */
function forEachAvgWindow(
  g: PoolGeometry,
  countIncludePad: boolean,
  visit: (o: number, inOffsets: Int32Array, count: number, divisor: number) => void,
): void {
  const { planes, H, W, OH, OW, KH, KW, sh, sw, pt, pl, dh, dw } = g;
  const offs = new Int32Array(KH * KW);
  let o = 0;
  for (let plane = 0; plane < planes; plane++) {
    const base = plane * H * W;
    for (let i = 0; i < OH; i++) {
      for (let j = 0; j < OW; j++, o++) {
        let count = 0;
        for (let p = 0; p < KH; p++) {
          const y = i * sh - pt + p * dh;
          if (y < 0 || y >= H) continue;
          for (let q = 0; q < KW; q++) {
            const xx = j * sw - pl + q * dw;
            if (xx < 0 || xx >= W) continue;
            offs[count++] = base + y * W + xx;
          }
        }
        visit(o, offs, count, countIncludePad ? KH * KW : count);
      }
    }
  }
}

const avgPool2d: PrimImpl<CpuStorage, 'avgPool2d'> = (params, [x], outShape) => {
  const xs = x.storage.data;
  const out = new Float64Array(sizeOf(outShape));
  forEachAvgWindow(geometry(params, x.shape, outShape), params.countIncludePad, (o, offs, count, divisor) => {
    if (divisor === 0) return; // a window entirely in padding (countIncludePad false): 0
    let s = 0;
    for (let t = 0; t < count; t++) s += xs[offs[t]];
    out[o] = s / divisor;
  });
  return wrap(out);
};

const avgPool2dBackprop: PrimImpl<CpuStorage, 'avgPool2dBackprop'> = (params, [dy], outShape) => {
  const d = dy.storage.data;
  const out = new Float64Array(sizeOf(outShape));
  forEachAvgWindow(geometry(params, params.inputShape, dy.shape), params.countIncludePad, (o, offs, count, divisor) => {
    if (divisor === 0) return;
    const share = d[o] / divisor;
    for (let t = 0; t < count; t++) out[offs[t]] += share;
  });
  return wrap(out);
};

export const poolImpls = { maxPoolGather, maxPoolScatter, avgPool2d, avgPool2dBackprop };

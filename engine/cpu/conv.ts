// 2-D convolution (cross-correlation, NCHW / OIHW, as PyTorch and ONNX) and its two adjoints.
//
//   y[n,o,i,j] = sum_{c < Cg, p < KH, q < KW} x[n, g*Cg + c, i*sh - pt + p*dh, j*sw - pl + q*dw] * w[o,c,p,q]
//
// with g = floor(o / (O/groups)), Cg = C/groups, and out-of-range x reading as 0.
// All three primitives walk the same (n, o, i, j, c, p, q) index space; they differ only in
// which of the three tensors is written:
//   conv2d                y  += x * w
//   conv2dBackpropInput   dx += dy * w   (scatter; the adjoint w.r.t. x)
//   conv2dBackpropFilter  dw += x * dy   (the adjoint w.r.t. w)
import type { PrimImpl } from '../backend.ts';
import type { Conv2dParams, Shape } from '../primitives.ts';
import { sizeOf, wrap, type CpuStorage } from './strides.ts';

interface ConvGeometry {
  N: number; C: number; H: number; W: number;
  O: number; Cg: number; Og: number; KH: number; KW: number;
  OH: number; OW: number;
  sh: number; sw: number; pt: number; pl: number; dh: number; dw: number;
}

function geometry(p: Conv2dParams, xShape: Shape, wShape: Shape, yShape: Shape): ConvGeometry {
  const [N, C, H, W] = xShape;
  const [O, Cg, KH, KW] = wShape;
  return {
    N, C, H, W, O, Cg, Og: O / p.groups, KH, KW,
    OH: yShape[2], OW: yShape[3],
    sh: p.stride[0], sw: p.stride[1], pt: p.padding[0], pl: p.padding[2],
    dh: p.dilation[0], dw: p.dilation[1],
  };
}

/**
 * The one loop nest, shared by the three primitives. `tap(xi, wi, yi)` is called for every
 * in-range (x, w, y) element triple with their flat offsets; `xi` is always in range.
 */
function forEachTap(g: ConvGeometry, tap: (xi: number, wi: number, yi: number) => void): void {
  const { N, C, H, W, O, Cg, Og, KH, KW, OH, OW, sh, sw, pt, pl, dh, dw } = g;
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      const c0 = Math.floor(o / Og) * Cg; // first input channel of o's group
      for (let i = 0; i < OH; i++) {
        for (let j = 0; j < OW; j++) {
          const yi = ((n * O + o) * OH + i) * OW + j;
          for (let c = 0; c < Cg; c++) {
            const xPlane = (n * C + c0 + c) * H * W;
            const wPlane = (o * Cg + c) * KH * KW;
            for (let p = 0; p < KH; p++) {
              const y = i * sh - pt + p * dh;
              if (y < 0 || y >= H) continue;
              for (let q = 0; q < KW; q++) {
                const x = j * sw - pl + q * dw;
                if (x < 0 || x >= W) continue;
                tap(xPlane + y * W + x, wPlane + p * KW + q, yi);
              }
            }
          }
        }
      }
    }
  }
}

const conv2d: PrimImpl<CpuStorage, 'conv2d'> = (params, [x, w], outShape) => {
  const g = geometry(params, x.shape, w.shape, outShape);
  const dx = x.storage.data;
  const dwt = w.storage.data;
  const out = new Float64Array(sizeOf(outShape));
  forEachTap(g, (xi, wi, yi) => {
    out[yi] += dx[xi] * dwt[wi];
  });
  return wrap(out);
};

const conv2dBackpropInput: PrimImpl<CpuStorage, 'conv2dBackpropInput'> = (params, [dy, w], outShape) => {
  const g = geometry(params, params.inputShape, w.shape, dy.shape);
  const ddy = dy.storage.data;
  const dwt = w.storage.data;
  const out = new Float64Array(sizeOf(outShape));
  forEachTap(g, (xi, wi, yi) => {
    out[xi] += ddy[yi] * dwt[wi];
  });
  return wrap(out);
};

const conv2dBackpropFilter: PrimImpl<CpuStorage, 'conv2dBackpropFilter'> = (params, [x, dy], outShape) => {
  const g = geometry(params, x.shape, params.filterShape, dy.shape);
  const dx = x.storage.data;
  const ddy = dy.storage.data;
  const out = new Float64Array(sizeOf(outShape));
  forEachTap(g, (xi, wi, yi) => {
    out[wi] += dx[xi] * ddy[yi];
  });
  return wrap(out);
};

export const convImpls = { conv2d, conv2dBackpropInput, conv2dBackpropFilter };

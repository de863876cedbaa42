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
 * The one loop nest, shared by the three primitives: `kind` picks which tensor the innermost
 * statement accumulates into. The branch is on a constant per call, so V8 keeps the loop tight
 * (a callback per multiply, as this once was, made training several times slower).
 * 0: y[yi] += x[xi] * w[wi];  1: x[xi] += y[yi] * w[wi];  2: w[wi] += x[xi] * y[yi].
 */
function convLoop(g: ConvGeometry, kind: 0 | 1 | 2, X: Float64Array, Wt: Float64Array, Y: Float64Array): void {
  const { N, C, H, W, O, Cg, Og, KH, KW, OH, OW, sh, sw, pt, pl, dh, dw } = g;
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      const c0 = Math.floor(o / Og) * Cg; // first input channel of o's group
      for (let i = 0; i < OH; i++) {
        for (let j = 0; j < OW; j++) {
          const yi = ((n * O + o) * OH + i) * OW + j;
          let acc = 0;
          const yv = Y[yi];
          for (let c = 0; c < Cg; c++) {
            const xPlane = (n * C + c0 + c) * H * W;
            const wPlane = (o * Cg + c) * KH * KW;
            for (let p = 0; p < KH; p++) {
              const y = i * sh - pt + p * dh;
              if (y < 0 || y >= H) continue;
              for (let q = 0; q < KW; q++) {
                const x = j * sw - pl + q * dw;
                if (x < 0 || x >= W) continue;
                const xi = xPlane + y * W + x, wi = wPlane + p * KW + q;
                if (kind === 0) acc += X[xi] * Wt[wi];
                else if (kind === 1) X[xi] += yv * Wt[wi];
                else Wt[wi] += X[xi] * yv;
              }
            }
          }
          if (kind === 0) Y[yi] = acc;
        }
      }
    }
  }
}

const conv2d: PrimImpl<CpuStorage, 'conv2d'> = (params, [x, w], outShape) => {
  const out = new Float64Array(sizeOf(outShape));
  convLoop(geometry(params, x.shape, w.shape, outShape), 0, x.storage.data, w.storage.data, out);
  return wrap(out);
};

const conv2dBackpropInput: PrimImpl<CpuStorage, 'conv2dBackpropInput'> = (params, [dy, w], outShape) => {
  const out = new Float64Array(sizeOf(outShape));
  convLoop(geometry(params, params.inputShape, w.shape, dy.shape), 1, out, w.storage.data, dy.storage.data);
  return wrap(out);
};

const conv2dBackpropFilter: PrimImpl<CpuStorage, 'conv2dBackpropFilter'> = (params, [x, dy], outShape) => {
  const out = new Float64Array(sizeOf(outShape));
  convLoop(geometry(params, x.shape, params.filterShape, dy.shape), 2, x.storage.data, out, dy.storage.data);
  return wrap(out);
};

export const convImpls = { conv2d, conv2dBackpropInput, conv2dBackpropFilter };

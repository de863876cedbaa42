// Bilinear resize over NCHW (PyTorch F.interpolate(mode='bilinear', align_corners=...),
// size given, no scale_factor) and its adjoint.
//
// Source coordinate of output row i (columns alike), for an input of H rows and OH output rows:
//   alignCorners:  s = i*(H-1)/(OH-1)  (s = 0 when OH == 1)
//   otherwise:     s = max(0, (i+0.5)*H/OH - 0.5)
// neighbours i0 = floor(s), i1 = min(i0+1, H-1); weights 1-l and l with l = s - i0.
import type { PrimImpl } from '../backend.ts';
import { sizeOf, wrap, type CpuStorage } from './strides.ts';

interface Axis {
  i0: Int32Array;
  i1: Int32Array;
  l: Float64Array; // weight of i1; i0 gets 1 - l
}

/** Per-output-index neighbours and weights along one axis of `inSize` resized to `outSize`. */
export function bilinearAxis(inSize: number, outSize: number, alignCorners: boolean): Axis {
  const i0 = new Int32Array(outSize);
  const i1 = new Int32Array(outSize);
  const l = new Float64Array(outSize);
  for (let i = 0; i < outSize; i++) {
    let s: number;
    if (alignCorners) s = outSize === 1 ? 0 : (i * (inSize - 1)) / (outSize - 1);
    else s = Math.max(0, ((i + 0.5) * inSize) / outSize - 0.5);
    const f = Math.min(Math.floor(s), inSize - 1);
    i0[i] = f;
    i1[i] = Math.min(f + 1, inSize - 1);
    l[i] = s - f;
  }
  return { i0, i1, l };
}

/**
 * Visits every (output element, input element, weight) triple of the bilinear interpolation:
 * four per output element (some may coincide at the border, each carrying its own weight).
 */
function forEachWeight(
  planes: number, H: number, W: number, OH: number, OW: number, alignCorners: boolean,
  visit: (o: number, x00: number, x01: number, x10: number, x11: number,
          w00: number, w01: number, w10: number, w11: number) => void,
): void {
  const ys = bilinearAxis(H, OH, alignCorners);
  const xs = bilinearAxis(W, OW, alignCorners);
  let o = 0;
  for (let plane = 0; plane < planes; plane++) {
    const base = plane * H * W;
    for (let i = 0; i < OH; i++) {
      const r0 = base + ys.i0[i] * W;
      const r1 = base + ys.i1[i] * W;
      const ly = ys.l[i];
      for (let j = 0; j < OW; j++, o++) {
        const c0 = xs.i0[j];
        const c1 = xs.i1[j];
        const lx = xs.l[j];
        visit(o, r0 + c0, r0 + c1, r1 + c0, r1 + c1,
          (1 - ly) * (1 - lx), (1 - ly) * lx, ly * (1 - lx), ly * lx);
      }
    }
  }
}

const resizeBilinear: PrimImpl<CpuStorage, 'resizeBilinear'> = ({ alignCorners }, [x], outShape) => {
  const [N, C, H, W] = x.shape;
  const src = x.storage.data;
  const out = new Float64Array(sizeOf(outShape));
  forEachWeight(N * C, H, W, outShape[2], outShape[3], alignCorners, (o, a, b, c, d, wa, wb, wc, wd) => {
    out[o] = wa * src[a] + wb * src[b] + wc * src[c] + wd * src[d];
  });
  return wrap(out);
};

const resizeBilinearBackprop: PrimImpl<CpuStorage, 'resizeBilinearBackprop'> = ({ size, alignCorners }, [dy], outShape) => {
  const [N, C, OH, OW] = dy.shape;
  const [H, W] = size;
  const g = dy.storage.data;
  const out = new Float64Array(sizeOf(outShape));
  forEachWeight(N * C, H, W, OH, OW, alignCorners, (o, a, b, c, d, wa, wb, wc, wd) => {
    const v = g[o];
    out[a] += wa * v;
    out[b] += wb * v;
    out[c] += wc * v;
    out[d] += wd * v;
  });
  return wrap(out);
};

export const resizeImpls = { resizeBilinear, resizeBilinearBackprop };

// Reductions: sum, max over a set of axes, argmax over one axis. All keep the reduced axes
// with size 1, so the output shape is the input shape with reduced axes set to 1.
//
// Each input element (visited in row-major order) is mapped to the offset of the output element
// it reduces into: the output's dense strides with 0 along the reduced axes. Visiting in
// row-major order means that, for each output element, the reduced elements arrive in
// increasing (row-major) order of the reduced coordinates, which is what "first maximum" needs.
import type { PrimImpl } from '../backend.ts';
import { sizeOf, stridesOf, viewOffsets, wrap, type CpuStorage } from './strides.ts';
import type { Shape } from '../primitives.ts';

/** Output offset for each input element when reducing `inShape` to `outShape` (keepdims). */
function reduceOffsets(inShape: Shape, outShape: Shape): Int32Array {
  const outStrides = stridesOf(outShape);
  const strides = inShape.map((d, k) => (outShape[k] === 1 && d !== 1 ? 0 : outStrides[k]));
  return viewOffsets(inShape, strides);
}

/**
 * The ordering used by max and argmax: NaN is smaller than every number (including -Infinity),
 * so `v` replaces the running best only if it is strictly greater, or the best is NaN and `v`
 * is not. Strictness makes ties keep the first.
 */
function beats(v: number, best: number): boolean {
  return v > best || (best !== best && v === v);
}

const sum: PrimImpl<CpuStorage, 'sum'> = (_params, [x], outShape) => {
  const src = x.storage.data;
  const out = new Float64Array(sizeOf(outShape));
  const off = reduceOffsets(x.shape, outShape);
  for (let i = 0; i < off.length; i++) out[off[i]] += src[i];
  return wrap(out);
};

// max(x) == x[argmax(x)]: NaN is ignored unless every reduced element is NaN.
const max: PrimImpl<CpuStorage, 'max'> = (_params, [x], outShape) => {
  const src = x.storage.data;
  const m = sizeOf(outShape);
  const out = new Float64Array(m);
  const seen = new Uint8Array(m);
  const off = reduceOffsets(x.shape, outShape);
  for (let i = 0; i < off.length; i++) {
    const o = off[i];
    const v = src[i];
    if (!seen[o]) {
      seen[o] = 1;
      out[o] = v;
    } else if (beats(v, out[o])) {
      out[o] = v;
    }
  }
  return wrap(out);
};

const argmax: PrimImpl<CpuStorage, 'argmax'> = ({ axis }, [x], outShape) => {
  const src = x.storage.data;
  const m = sizeOf(outShape);
  const best = new Float64Array(m);
  const out = new Float64Array(m);
  const seen = new Uint8Array(m);
  const off = reduceOffsets(x.shape, outShape);
  const axisStride = stridesOf(x.shape)[axis];
  const axisSize = x.shape[axis];
  for (let i = 0; i < off.length; i++) {
    const o = off[i];
    const v = src[i];
    if (!seen[o] || beats(v, best[o])) {
      seen[o] = 1;
      best[o] = v;
      out[o] = Math.floor(i / axisStride) % axisSize;
    }
  }
  return wrap(out);
};

export const reduceImpls = { sum, max, argmax };

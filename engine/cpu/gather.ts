// gather along one axis and its adjoint scatterAdd.
//
// Both view the big tensor as [P, A, Q] (P = prod(pre), A = size along the axis,
// Q = prod(post)) and the indices as a flat list of J entries:
//   gather:      out[p, j, q] = x[p, indices[j], q]         (0 when indices[j] is out of range)
//   scatterAdd:  out[p, k, q] = sum_{j : indices[j] == k} updates[p, j, q]   (out-of-range dropped)
import type { PrimImpl } from '../backend.ts';
import { prod, sizeOf, wrap, type CpuStorage } from './strides.ts';

/**
 * An index value as an integer position along an axis of `size`, or -1 when it is out of
 * [0, size). Indices are stored as floats holding integers; a non-integer is truncated toward
 * zero (as a float -> i32 conversion does), NaN is out of range.
 */
function position(v: number, size: number): number {
  const k = Math.trunc(v);
  return k >= 0 && k < size ? k : -1; // NaN fails both comparisons
}

const gather: PrimImpl<CpuStorage, 'gather'> = ({ axis }, [x, indices], outShape) => {
  const P = prod(x.shape, 0, axis);
  const A = x.shape[axis];
  const Q = prod(x.shape, axis + 1);
  const idx = indices.storage.data;
  const J = sizeOf(indices.shape);
  const src = x.storage.data;
  const out = new Float64Array(sizeOf(outShape));
  for (let j = 0; j < J; j++) {
    const k = position(idx[j], A);
    if (k < 0) continue; // stays 0
    for (let p = 0; p < P; p++) {
      const from = (p * A + k) * Q;
      const to = (p * J + j) * Q;
      for (let q = 0; q < Q; q++) out[to + q] = src[from + q];
    }
  }
  return wrap(out);
};

const scatterAdd: PrimImpl<CpuStorage, 'scatterAdd'> = ({ axis, size }, [updates, indices], outShape) => {
  const idx = indices.storage.data;
  const J = sizeOf(indices.shape);
  const P = prod(updates.shape, 0, axis);
  const Q = prod(updates.shape, axis + indices.shape.length);
  const src = updates.storage.data;
  const out = new Float64Array(sizeOf(outShape));
  for (let j = 0; j < J; j++) {
    const k = position(idx[j], size);
    if (k < 0) continue; // dropped
    for (let p = 0; p < P; p++) {
      const from = (p * J + j) * Q;
      const to = (p * size + k) * Q;
      for (let q = 0; q < Q; q++) out[to + q] += src[from + q];
    }
  }
  return wrap(out);
};

export const gatherImpls = { gather, scatterAdd };

// Shape/stride helpers shared by the CPU reference backend.
//
// Everything in engine/cpu works on dense row-major Float64Arrays. Movement and broadcasting
// are expressed as *strided views*: a (shape, strides, offset) triple that says where element
// [i0, i1, ...] of the view lives in a dense buffer (offset + sum_k i_k * strides[k]).
// `viewOffsets` turns a view into the flat offset of each of its elements, in row-major order,
// which makes permute/expand/slice/flip/broadcasting a plain gather.
import type { Shape } from '../primitives.ts';
import type { Operand } from '../primitives.ts';

export interface CpuStorage {
  data: Float64Array;
}

export type CpuOperand = Operand<CpuStorage>;

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export { broadcastStrides, stridesOf } from '../shape.ts';
import { broadcastStrides, stridesOf } from '../shape.ts';

/**
 * numpy broadcast of several shapes (right-aligned; each axis must be equal or 1).
 */
export function broadcastShapes(...shapes: Shape[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    const lead = rank - s.length;
    for (let k = 0; k < s.length; k++) {
      const d = s[k];
      if (d !== 1) out[lead + k] = d;
    }
  }
  return out;
}

/**
 * Strides with which a dense tensor of `inShape` is read when broadcast to `outShape`
 * (right-aligned; 0 along axes where the input is missing or has size 1).
 */

/**
 * Flat offset of each element of the strided view (shape, strides, offset), in row-major order
 * of the view. One allocation per call; the inner loop is an odometer over the axes.
 */
export function viewOffsets(shape: Shape, strides: readonly number[], offset = 0): Int32Array {
  const n = sizeOf(shape);
  const out = new Int32Array(n);
  const rank = shape.length;
  if (n === 0) return out;
  if (rank === 0) {
    out[0] = offset;
    return out;
  }
  const idx = new Array<number>(rank).fill(0);
  const last = rank - 1;
  const lastSize = shape[last];
  const lastStride = strides[last];
  let base = offset; // offset of [idx[0], ..., idx[last-1], 0]
  let o = 0;
  while (o < n) {
    // Inner axis, unrolled out of the odometer.
    let p = base;
    for (let j = 0; j < lastSize; j++) {
      out[o++] = p;
      p += lastStride;
    }
    // Carry into the outer axes.
    let k = last - 1;
    while (k >= 0) {
      idx[k]++;
      base += strides[k];
      if (idx[k] < shape[k]) break;
      base -= strides[k] * shape[k];
      idx[k] = 0;
      k--;
    }
    if (k < 0) break;
  }
  return out;
}

/** Offsets of a dense `inShape` tensor read broadcast to `outShape`, or null if no broadcast is needed. */
export function broadcastOffsets(inShape: Shape, outShape: Shape): Int32Array | null {
  if (sameShape(inShape, outShape)) return null;
  return viewOffsets(outShape, broadcastStrides(inShape, outShape));
}

export { sameShape } from '../shape.ts';
import { sameShape } from '../shape.ts';

/** Product of shape[from..to). */
export function prod(shape: Shape, from = 0, to = shape.length): number {
  let n = 1;
  for (let k = from; k < to; k++) n *= shape[k];
  return n;
}

/** Wrap a new Float64Array as a storage. */
export function wrap(data: Float64Array): CpuStorage {
  return { data };
}

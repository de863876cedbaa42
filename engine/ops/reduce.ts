// Reductions: sum, max and argmax are primitives (keeping reduced axes as size 1); the
// frontend drops those axes unless keepDims.
import { apply } from '../context.ts';
import { normalizeAxes, normalizeAxis } from '../shape.ts';
import type { Tensor } from '../tensor.ts';
import { full } from './creation.ts';

export interface ReduceOptions {
  keepDims?: boolean;
}

function reduceShape(shape: readonly number[], axes: number[], keepDims: boolean): number[] {
  return keepDims ? shape.map((d, i) => (axes.includes(i) ? 1 : d)) : shape.filter((_, i) => !axes.includes(i));
}

function reduction(prim: 'sum' | 'max') {
  return (x: Tensor, axes?: number | readonly number[], opts: ReduceOptions = {}): Tensor => {
    const ax = normalizeAxes(prim, axes, x.rank);
    const out = reduceShape(x.shape, ax, !!opts.keepDims);
    if (ax.length === 0) return apply('reshape', { shape: out }, [x], out);
    if (ax.some((a) => x.shape[a] === 0)) {
      if (prim === 'max') throw new Error(`max: cannot reduce over an empty axis of shape [${x.shape.join(', ')}]`);
      return full(out, 0, x.backend);
    }
    const kept = x.shape.map((d, i) => (ax.includes(i) ? 1 : d));
    const r = apply(prim, { axes: ax }, [x], kept);
    if (opts.keepDims) return r;
    const s = apply('reshape', { shape: out }, [r], out);
    r.dispose();
    return s;
  };
}

/** Sum over `axes` (all axes when omitted). */
export const sum = reduction('sum');
/** Maximum over `axes` (all axes when omitted). */
export const max = reduction('max');

/** Index of the first maximum along `axis`, as float values. */
export function argmax(x: Tensor, axis = -1, opts: ReduceOptions = {}): Tensor {
  const a = normalizeAxis('argmax', axis, x.rank);
  if (x.shape[a] === 0) throw new Error(`argmax: axis ${axis} of shape [${x.shape.join(', ')}] is empty`);
  const kept = x.shape.map((d, i) => (i === a ? 1 : d));
  const r = apply('argmax', { axis: a }, [x], kept);
  if (opts.keepDims) return r;
  const out = x.shape.filter((_, i) => i !== a);
  const s = apply('reshape', { shape: out }, [r], out);
  r.dispose();
  return s;
}

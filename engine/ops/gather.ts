// Indexing: gather (numpy's take along one axis), its adjoint scatterAdd, and oneHot.
import { apply } from '../context.ts';
import { checkInt, fmtShape, normalizeAxis } from '../shape.ts';
import { Tensor } from '../tensor.ts';
import { arange } from './creation.ts';
import { equal } from './elementwise.ts';
import { reshape } from './movement.ts';

/** out = x.shape[:axis] ++ indices.shape ++ x.shape[axis+1:]; out-of-range indices read 0. */
export function gather(x: Tensor, indices: Tensor, axis = 0): Tensor {
  if (!(x instanceof Tensor) || !(indices instanceof Tensor)) throw new Error('gather: expected Tensors');
  const a = normalizeAxis('gather', axis, x.rank);
  const out = [...x.shape.slice(0, a), ...indices.shape, ...x.shape.slice(a + 1)];
  return apply('gather', { axis: a }, [x, indices], out);
}

/** The adjoint of gather: sums `updates` into an axis of length `size` at `indices`. */
export function scatterAdd(updates: Tensor, indices: Tensor, axis: number, size: number): Tensor {
  if (!(updates instanceof Tensor) || !(indices instanceof Tensor)) throw new Error('scatterAdd: expected Tensors');
  checkInt('scatterAdd', 'size', size, 0);
  // axis is used to slice shapes below: a non-integer would silently truncate.
  checkInt('scatterAdd', 'axis', axis, 0);
  const k = indices.rank;
  const pre = updates.shape.slice(0, axis);
  const mid = updates.shape.slice(axis, axis + k);
  if (axis < 0 || axis + k > updates.rank || mid.some((d, i) => d !== indices.shape[i])) {
    throw new Error(`scatterAdd: updates ${fmtShape(updates.shape)} do not hold indices ${fmtShape(indices.shape)} at axis ${axis}`);
  }
  const out = [...pre, size, ...updates.shape.slice(axis + k)];
  return apply('scatterAdd', { axis, size }, [updates, indices], out);
}

/** [..., depth] with 1 at each index (indices as float values). */
export function oneHot(indices: Tensor, depth: number): Tensor {
  checkInt('oneHot', 'depth', depth, 1);
  const r = arange(0, depth, 1, indices.backend);
  const i = reshape(indices, [...indices.shape, 1]);
  const out = equal(i, r);
  r.dispose();
  i.dispose();
  return out;
}

// Matrix products. 1-D operands are lifted to matrices and the lifted axis removed again
// (numpy's matmul rules); leading batch axes broadcast.
import { apply } from '../context.ts';
import { broadcastShapes, fmtShape } from '../shape.ts';
import { Tensor } from '../tensor.ts';
import { reshape } from './movement.ts';

export function matmul(a: Tensor, b: Tensor): Tensor {
  if (!(a instanceof Tensor) || !(b instanceof Tensor)) throw new Error('matmul: expected two Tensors');
  if (a.rank === 0 || b.rank === 0) throw new Error(`matmul: operands must have rank >= 1, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
  const a2 = a.rank === 1 ? reshape(a, [1, a.shape[0]]) : a;
  const b2 = b.rank === 1 ? reshape(b, [b.shape[0], 1]) : b;
  const K = a2.shape[a2.rank - 1];
  if (b2.shape[b2.rank - 2] !== K) {
    throw new Error(`matmul: inner dimensions differ: ${fmtShape(a.shape)} @ ${fmtShape(b.shape)} (${K} vs ${b2.shape[b2.rank - 2]})`);
  }
  if (K === 0) throw new Error(`matmul: inner dimension is 0 in ${fmtShape(a.shape)} @ ${fmtShape(b.shape)}`);
  const batch = broadcastShapes('matmul', a2.shape.slice(0, -2), b2.shape.slice(0, -2));
  const M = a2.shape[a2.rank - 2];
  const N = b2.shape[b2.rank - 1];
  let r = apply('matmul', {}, [a2, b2], [...batch, M, N]);
  if (a2 !== a) a2.dispose();
  if (b2 !== b) b2.dispose();
  if (a.rank === 1 || b.rank === 1) {
    const s = [...batch, ...(a.rank === 1 ? [] : [M]), ...(b.rank === 1 ? [] : [N])];
    const r2 = reshape(r, s);
    r.dispose();
    r = r2;
  }
  return r;
}

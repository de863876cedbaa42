// Matrix products. 1-D operands are lifted to matrices and the lifted axis removed again
// (numpy's matmul rules); leading batch axes broadcast.
import { apply, backendOf } from '../context.ts';
import { broadcastShapes, fmtShape } from '../shape.ts';
import { Tensor } from '../tensor.ts';
import { reshape } from './movement.ts';

export function matmul(a: Tensor, b: Tensor): Tensor {
  if (!(a instanceof Tensor) || !(b instanceof Tensor)) throw new Error('matmul: expected two Tensors');
  if (a.rank === 0 || b.rank === 0) throw new Error(`matmul: operands must have rank >= 1, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
  // Every check before the 1-D operands are reshaped: a throw must not leave a reshaped view
  // holding the operand's storage, and a disposed or foreign operand is reported as matmul's.
  backendOf('matmul', [a, b]);
  const sa = a.rank === 1 ? [1, a.shape[0]] : a.shape;
  const sb = b.rank === 1 ? [b.shape[0], 1] : b.shape;
  const K = sa[sa.length - 1];
  if (sb[sb.length - 2] !== K) {
    throw new Error(`matmul: inner dimensions differ: ${fmtShape(a.shape)} @ ${fmtShape(b.shape)} (${K} vs ${sb[sb.length - 2]})`);
  }
  if (K === 0) throw new Error(`matmul: inner dimension is 0 in ${fmtShape(a.shape)} @ ${fmtShape(b.shape)}`);
  const batch = broadcastShapes('matmul', sa.slice(0, -2), sb.slice(0, -2));
  const M = sa[sa.length - 2];
  const N = sb[sb.length - 1];
  const a2 = a.rank === 1 ? reshape(a, sa) : a;
  const b2 = b.rank === 1 ? reshape(b, sb) : b;
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

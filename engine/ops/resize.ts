// Bilinear resizing of NCHW maps (PyTorch's F.interpolate(mode='bilinear')).
import { apply } from '../context.ts';
import { checkInt, fmtShape } from '../shape.ts';
import { Tensor } from '../tensor.ts';

export function resizeBilinear(x: Tensor, size: readonly [number, number], opts: { alignCorners?: boolean } = {}): Tensor {
  if (!(x instanceof Tensor)) throw new Error('resizeBilinear: expected a Tensor');
  if (x.rank !== 4) throw new Error(`resizeBilinear: input must be NCHW (rank 4), got ${fmtShape(x.shape)}`);
  if (!Array.isArray(size) || size.length !== 2) throw new Error(`resizeBilinear: size must be [height, width], got ${JSON.stringify(size)}`);
  const oh = checkInt('resizeBilinear', 'size[0]', size[0], 1);
  const ow = checkInt('resizeBilinear', 'size[1]', size[1], 1);
  if (x.shape[2] < 1 || x.shape[3] < 1) throw new Error(`resizeBilinear: input ${fmtShape(x.shape)} has an empty spatial axis`);
  return apply('resizeBilinear', { size: [oh, ow], alignCorners: !!opts.alignCorners }, [x], [x.shape[0], x.shape[1], oh, ow]);
}

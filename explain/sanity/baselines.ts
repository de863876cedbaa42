// Input-only "explanations" that ignore the model: the controls of a sanity check. Adebayo et al.
// 2018 ("Sanity checks for saliency maps", Fig. 1) show that an edge detector produces maps that
// look like many saliency methods' output; since it never reads the model, randomising the model
// leaves it unchanged (similarity exactly 1), which is what a method that fails the check does.
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { fmtShape } from '../../engine/shape.ts';

/**
 * The Sobel gradient magnitude of each channel of x [N, C, H, W], sqrt(gx^2 + gy^2), with zero
 * padding (shaped like x). The `_model` argument is ignored: it has the explainer's signature so
 * that it can be passed wherever an explainer is.
 */
export async function edgeDetector(_model: unknown, x: Tensor): Promise<Tensor> {
  if (!(x instanceof bl.Tensor) || x.rank !== 4) throw new Error(`edgeDetector: expected an image batch [N, C, H, W], got ${x instanceof bl.Tensor ? fmtShape(x.shape) : typeof x}`);
  const c = x.shape[1];
  // Sobel kernels (cross-correlation, as conv2d computes): gx responds to horizontal change, gy to vertical.
  const kx = [-1, 0, 1, -2, 0, 2, -1, 0, 1];
  const ky = [-1, -2, -1, 0, 0, 0, 1, 2, 1];
  const r = bl.tidy(() => {
    const wx = bl.tensor(Array.from({ length: c }, () => kx).flat(), [c, 1, 3, 3], x.backend);
    const wy = bl.tensor(Array.from({ length: c }, () => ky).flat(), [c, 1, 3, 3], x.backend);
    const gx = bl.conv2d(x, wx, { padding: 1, groups: c });
    const gy = bl.conv2d(x, wy, { padding: 1, groups: c });
    return bl.sqrt(bl.add(bl.mul(gx, gx), bl.mul(gy, gy)));
  });
  await r.backend.sync();
  return r;
}

// Image priors for activation maximisation, as penalties subtracted from the objective (per item,
// means over pixels so that weights do not depend on the image size):
// - L2 (Erhan et al. 2009 bound the input's norm; Simonyan et al. 2014 penalise lambda ||x||^2):
//   mean(x^2), which pulls pixels towards 0 (the digits' background).
// - Total variation (Mahendran & Vedaldi 2016, "Visualizing deep convolutional neural networks
//   using natural pre-images", the V^beta regulariser): mean over pixels of
//   ((x[i, j+1] - x[i, j])^2 + (x[i+1, j] - x[i, j])^2)^(beta / 2), over the (H-1) x (W-1) pixels
//   that have both neighbours. beta = 2 (the default) is the smooth quadratic form; beta = 1 is
//   the classical TV (a small epsilon keeps its gradient finite where the image is flat).
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';

/** mean(x^2) per item of x [N, ...] -> [N]. */
export function l2Penalty(x: Tensor): Tensor {
  return bl.tidy(() => bl.mean(bl.mul(x, x), x.shape.map((_, i) => i).slice(1)));
}

/** The V^beta total variation of x [N, C, H, W] per item -> [N] (mean over C and the (H-1) x (W-1) pixels). */
export function totalVariation(x: Tensor, beta = 2): Tensor {
  if (x.rank !== 4) throw new Error(`totalVariation: expected NCHW, got rank ${x.rank}`);
  if (!(beta >= 1) || !Number.isFinite(beta)) throw new Error(`totalVariation: beta must be >= 1, got ${beta}`);
  const [N, C, H, W] = x.shape;
  if (H < 2 || W < 2) throw new Error(`totalVariation: needs at least 2 x 2 pixels, got ${H} x ${W}`);
  return bl.tidy(() => {
    const base = bl.slice(x, [0, 0, 0, 0], [N, C, H - 1, W - 1]);
    const right = bl.slice(x, [0, 0, 0, 1], [N, C, H - 1, W - 1]);
    const down = bl.slice(x, [0, 0, 1, 0], [N, C, H - 1, W - 1]);
    const dx = bl.sub(right, base), dy = bl.sub(down, base);
    const sq = bl.add(bl.mul(dx, dx), bl.mul(dy, dy));
    const v = beta === 2 ? sq : bl.pow(bl.add(sq, 1e-8), beta / 2);
    return bl.mean(v, [1, 2, 3]);
  });
}

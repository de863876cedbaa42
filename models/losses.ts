// Losses, as compositions of engine ops (so they differentiate to any order).
import * as bl from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import { fmtShape } from '../engine/shape.ts';

export type Reduction = 'mean' | 'sum' | 'none';

function reduce(t: Tensor, r: Reduction): Tensor {
  return r === 'none' ? t : r === 'sum' ? bl.sum(t) : bl.mean(t);
}

/**
 * Softmax cross-entropy of logits [N, C] against class indices [N] (float values) or
 * probability targets [N, C] (e.g. one-hot).
 */
export function crossEntropy(logits: Tensor, target: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  if (logits.rank !== 2) throw new Error(`crossEntropy: logits must be [N, C], got ${fmtShape(logits.shape)}`);
  const [n, c] = logits.shape;
  return bl.tidy(() => {
    let probs: Tensor;
    if (target.rank === 1) {
      if (target.shape[0] !== n) throw new Error(`crossEntropy: ${n} logits rows but ${target.shape[0]} labels`);
      probs = bl.oneHot(target, c);
    } else if (target.rank === 2 && target.shape[0] === n && target.shape[1] === c) {
      probs = target;
    } else {
      throw new Error(`crossEntropy: target must be [${n}] class indices or [${n}, ${c}] probabilities, got ${fmtShape(target.shape)}`);
    }
    const nll = bl.neg(bl.sum(bl.mul(probs, bl.logSoftmax(logits, 1)), 1));
    return reduce(nll, opts.reduction ?? 'mean');
  });
}

/** Mean squared error (mean over all elements by default). */
export function mse(pred: Tensor, target: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  if (pred.shape.join() !== target.shape.join()) throw new Error(`mse: prediction ${fmtShape(pred.shape)} and target ${fmtShape(target.shape)} differ`);
  return bl.tidy(() => {
    const d = bl.sub(pred, target);
    return reduce(bl.mul(d, d), opts.reduction ?? 'mean');
  });
}

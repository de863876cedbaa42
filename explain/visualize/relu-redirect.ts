// ReLU gradient redirection (Lucid, the code of Olah et al. 2017 "Feature Visualization":
// `redirected_relu_grad`, on by default in its render_vis). A unit behind a ReLU that is inactive
// for the start image has a zero gradient, so plain ascent never moves it (a grey start leaves
// many post-ReLU neurons dead). Where a batch item's ReLU gradient is zero everywhere, the rule
// passes the cotangent through instead, except where it would push an already negative input
// lower; elsewhere it is the exact ReLU gradient. Cotangents here are dJ/dy of the objective being
// maximised, so "pushing lower" is x < 0 with a negative cotangent.
import * as bl from '../../engine/index.ts';
import type { Rule } from '../../engine/index.ts';

export const redirectedRelu: Rule = (ct, { inputs: [x] }) => {
  const exact = bl.mul(ct, bl.step(x));
  const lower = bl.mul(bl.less(x, 0), bl.less(ct, 0));
  const redirected = bl.where(lower, 0, ct);
  const axes = x.shape.map((_, i) => i).slice(1);
  const alive = x.rank > 1 ? bl.greater(bl.sum(bl.abs(exact), axes, { keepDims: true }), 0) : bl.greater(bl.abs(exact), 0);
  return [bl.where(alive, exact, redirected)];
};

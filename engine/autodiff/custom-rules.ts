// Backward rules that explainers swap in with withRules. Each is a value (a function of the
// cotangent and the recorded op) written in differentiable ops.
import { apply } from '../context.ts';
import { abs, add, div, greater, maximum, mul, step, sub, where } from '../ops/elementwise.ts';
import { concat, slice } from '../ops/movement.ts';
import type { Tensor } from '../tensor.ts';
import type { Rule } from './types.ts';
import type { Pool2dParams } from '../primitives.ts';

/**
 * Guided backpropagation (Springenberg et al. 2015) for relu: pass the cotangent only where the
 * forward input and the cotangent are both positive.
 */
export const guidedRelu: Rule = (ct, { inputs: [x] }) => [mul(maximum(ct, 0), step(x))];

/** Deconvnet (Zeiler & Fergus 2014) for relu: rectify the cotangent, ignore the forward input. */
export const deconvRelu: Rule = (ct) => [maximum(ct, 0)];

/** Pass the cotangent through unchanged (to the first input), as if the op were the identity. */
export const passRule: Rule = (ct, { inputs }) => inputs.map((_, i) => (i === 0 ? ct : null));

/** The local derivative of the elementwise nonlinearities the rescale rule knows, at x (output y). */
function localDerivative(name: string, x: Tensor, y: Tensor): Tensor {
  switch (name) {
    case 'relu':
      return step(x);
    case 'sigmoid':
      return mul(y, sub(1, y));
    case 'tanh':
      return sub(1, mul(y, y));
    default:
      throw new Error(`deepLiftRescale: no local derivative for '${name}' (supported: relu, sigmoid, tanh)`);
  }
}

/**
 * DeepLIFT's rescale rule (Shrikumar et al. 2017) for relu, sigmoid and tanh. The batch must hold
 * the inputs followed by their references (axis 0: [x_1..x_n, r_1..r_n]), as DeepLIFT runs them
 * together. The multiplier (f(x) - f(r)) / (x - r) replaces the derivative for both halves; where
 * |x - r| <= eps it falls back to the local derivative f'(x) (as Captum does).
 */
export function deepLiftRescale(eps = 1e-10): Rule {
  return (ct, { inputs: [x], output: y, name }) => {
    const n = x.shape[0];
    if (x.rank === 0 || n % 2 !== 0) {
      throw new Error(`deepLiftRescale (${name}): the batch must hold inputs then references (an even axis 0), got shape [${x.shape.join(', ')}]`);
    }
    const h = n / 2;
    const xi = slice(x, [0], [h]), xr = slice(x, [h], [h]);
    const yi = slice(y, [0], [h]), yr = slice(y, [h], [h]);
    const dx = sub(xi, xr);
    const big = greater(abs(dx), eps);
    const m = where(big, div(sub(yi, yr), where(big, dx, 1)), localDerivative(name, xi, yi));
    const mm = concat([m, m], 0);
    return [mul(ct, mm)];
  };
}

/**
 * DeepLIFT's rule for max pooling (the one Captum uses), for maxPoolGather(x, x) on a batch of
 * inputs followed by references. With o, o' the pooled input and reference and m = max(o, o'), the
 * output differences (m - o', o - m) are routed back to each half's own argmax positions, the two
 * halves' routes are added, and divided by x - r: the multiplier that makes the attributions
 * through the pool sum to o - o' exactly. Where |x - r| <= eps it keeps the gradient.
 */
export function deepLiftMaxPool(eps = 1e-10): Rule<Pool2dParams> {
  return (ct, { inputs: [x], output: y, params, name }) => {
    if (name !== 'maxPoolGather') throw new Error(`deepLiftMaxPool: attached to '${name}'; it is the rule for maxPoolGather`);
    const n = x.shape[0];
    if (n % 2 !== 0) throw new Error(`deepLiftMaxPool: the batch must hold inputs then references (an even axis 0), got shape [${x.shape.join(', ')}]`);
    const h = n / 2;
    const o = slice(y, [0], [h]), oRef = slice(y, [h], [h]);
    const m = maximum(o, oRef);
    const deltaOut = concat([sub(m, oRef), sub(o, m)], 0);
    const routed = apply('maxPoolScatter', params, [x, mul(ct, deltaOut)], x.shape);
    const both = add(slice(routed, [0], [h]), slice(routed, [h], [h]));
    const deltaIn = sub(slice(x, [0], [h]), slice(x, [h], [h]));
    const dIn = concat([deltaIn, deltaIn], 0);
    const sumRouted = concat([both, both], 0);
    const grad = apply('maxPoolScatter', params, [x, ct], x.shape);
    const big = greater(abs(dIn), eps);
    return [null, where(big, div(sumRouted, where(big, dIn, 1)), grad)];
  };
}

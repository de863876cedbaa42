// Integrated Gradients (Sundararajan et al. 2017): (x - x') * integral_0^1 grad F(x' + a (x - x')) da,
// by quadrature, with all steps batched and chunked to a bounded batch.
import * as bl from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import { type Model, type Target, type TargetOptions, accumulate, baselineFor, checkInput, completenessDelta, forwardOf, optionalBool, positiveInt, repeatEach, resolveTarget, scores, checkedInput, checkFinite } from './common.ts';
import { checkOptions, optionKeys } from './options.ts';
import { type IntegrationMethod, quadrature } from './quadrature.ts';

export interface IntegratedGradientsOptions extends TargetOptions {
  /** A number, a tensor like the input, or one sample broadcast over the batch. Default 0. */
  baseline?: number | Tensor;
  steps?: number;
  method?: IntegrationMethod;
  /** At most this many rows per forward/backward pass (default: all steps of the batch at once). */
  internalBatchSize?: number;
}

export interface AttributionWithDelta {
  attributions: Tensor;
  /** Per item: sum(attributions) - (F(x) - F(baseline)), the completeness error. */
  delta: Tensor;
}

/**
 * The quadrature sum of gradients along straight paths from `start` to `end` (both [N, ...]):
 * sum_k w_k * grad(point_k), where `gradAt(points, k)` returns the gradient at a batch of N*k
 * points laid out item-major (k consecutive points per item).
 */
export function pathGradientSum(
  start: Tensor,
  end: Tensor,
  alphas: number[],
  weights: number[],
  chunk: number,
  gradAt: (points: Tensor, k: number) => Tensor,
): Tensor {
  const n = start.shape[0];
  const rest = start.shape.slice(1);
  const ones = rest.map(() => 1);
  let total: Tensor | null = null;
  for (let s = 0; s < alphas.length; s += chunk) {
    const a = alphas.slice(s, s + chunk);
    const w = weights.slice(s, s + chunk);
    const k = a.length;
    const part = bl.tidy(() => {
      const alpha = bl.tensor(Array.from({ length: n }, () => a).flat(), [n * k, ...ones], start.backend);
      const st = repeatEach(start, k);
      const pts = bl.add(st, bl.mul(alpha, bl.sub(repeatEach(end, k), st)));
      const g = gradAt(pts, k);
      const wt = bl.tensor(Array.from({ length: n }, () => w).flat(), [n * k, ...ones], start.backend);
      return bl.sum(bl.reshape(bl.mul(g, wt), [n, k, ...rest]), 1);
    });
    total = accumulate(total, part);
  }
  return total!;
}

/** Quadrature nodes, weights and the steps per chunk for a batch of n (IG and layer IG). */
export function pathSetup(op: string, n: number, opts: { steps?: number; method?: IntegrationMethod; internalBatchSize?: number }) {
  const steps = positiveInt(op, 'steps', opts.steps, 50);
  const { alphas, weights } = quadrature(opts.method ?? 'gausslegendre', steps);
  const chunk = Math.max(1, Math.floor(positiveInt(op, 'internalBatchSize', opts.internalBatchSize, n * steps) / n));
  return { alphas, weights, chunk };
}

const IG_KEYS = optionKeys<IntegratedGradientsOptions & { returnDelta?: boolean }>()(['target', 'rules', 'baseline', 'steps', 'method', 'internalBatchSize', 'returnDelta']);

export function integratedGradients(model: Model, input: Tensor, opts: IntegratedGradientsOptions & { returnDelta: true }): Promise<AttributionWithDelta>;
export function integratedGradients(model: Model, input: Tensor, opts?: IntegratedGradientsOptions & { returnDelta?: false }): Promise<Tensor>;
export async function integratedGradients(model: Model, input: Tensor, opts: IntegratedGradientsOptions & { returnDelta?: boolean } = {}): Promise<Tensor | AttributionWithDelta> {
  const op = 'integratedGradients';
  checkOptions(op, opts, IG_KEYS);
  const returnDelta = optionalBool(op, 'returnDelta', opts.returnDelta);
  const x = await checkedInput(op, input);
  if (opts.baseline instanceof bl.Tensor) await checkFinite(op, opts.baseline, 'baseline');
  const n = x.shape[0];
  const { alphas, weights, chunk } = pathSetup(op, n, opts);
  const f = forwardOf(model, opts.rules);
  const result = bl.tidy(() => {
    const target: Target | undefined = resolveTarget(op, f, x, opts.target);
    const base = baselineFor(op, x, opts.baseline);
    const avg = pathGradientSum(base, x, alphas, weights, chunk, (pts, k) => bl.grad((p: Tensor) => bl.sum(scores(op, f(p), target, n, k)))(pts));
    const attributions = bl.mul(bl.sub(x, base), avg);
    if (!returnDelta) return { attributions };
    return { attributions, delta: completenessDelta(op, f, attributions, x, base, target) };
  });
  await result.attributions.backend.sync();
  return returnDelta ? (result as AttributionWithDelta) : result.attributions;
}

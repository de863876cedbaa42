// DeepLIFT (Shrikumar et al. 2017, rescale rule), DeepLIFT-SHAP and GradientSHAP (expected
// gradients, Lundberg & Lee 2017; Erion et al. 2021).
import * as bl from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import { fmtShape } from '../engine/shape.ts';
import {
  type Model, type Target, type TargetOptions, baselineFor, checkInput, completenessDelta, forwardOf, hostRandom, optionalBool, positiveInt, repeatEach, repeatTarget, resolveTarget, scores, checkedInput, checkFinite,
} from './common.ts';
import { checkOptions, optionKeys } from './options.ts';
import type { AttributionWithDelta } from './integrated-gradients.ts';

export interface DeepLiftOptions extends TargetOptions {
  /** Reference input: a number, a tensor like the input, or one sample. Default 0. */
  baseline?: number | Tensor;
  /** Below this |x - r| the rescale multiplier falls back to the local derivative. */
  eps?: number;
}

/**
 * Rescale-rule DeepLIFT: the input and its reference run as one batch [x; r]; relu, sigmoid and
 * tanh use the multiplier (f(x) - f(r)) / (x - r) instead of their derivative; attributions are
 * (x - r) times the resulting multipliers and sum to F(x) - F(r) for networks of linear layers and
 * those nonlinearities, and through max pools with DeepLIFT's max-pool rule (as Captum). Average
 * pooling and batch norm (inference) are linear and need no rule.
 */
const DEEPLIFT_KEYS = optionKeys<DeepLiftOptions & { returnDelta?: boolean }>()(['target', 'rules', 'baseline', 'eps', 'returnDelta']);

export async function deepLift(model: Model, input: Tensor, opts: DeepLiftOptions & { returnDelta: true }): Promise<AttributionWithDelta>;
export async function deepLift(model: Model, input: Tensor, opts?: DeepLiftOptions & { returnDelta?: false }): Promise<Tensor>;
export async function deepLift(model: Model, input: Tensor, opts: DeepLiftOptions & { returnDelta?: boolean } = {}): Promise<Tensor | AttributionWithDelta> {
  const op = 'deepLift';
  checkOptions(op, opts, DEEPLIFT_KEYS);
  const returnDelta = optionalBool(op, 'returnDelta', opts.returnDelta);
  const x = await checkedInput(op, input);
  if (opts.baseline instanceof bl.Tensor) await checkFinite(op, opts.baseline, 'baseline');
  const f = forwardOf(model, opts.rules);
  const n = x.shape[0];
  const r = bl.tidy(() => {
    const base = baselineFor(op, x, opts.baseline);
    const target = resolveTarget(op, f, x, opts.target);
    const attributions = deepLiftSync(op, f, x, base, target, opts.eps);
    if (!returnDelta) return { attributions };
    // Summation-to-delta (Captum's convergence delta): sum(attributions) - (F(x) - F(r)) per item.
    return { attributions, delta: completenessDelta(op, f, attributions, x, base, target) };
  });
  await r.attributions.backend.sync();
  return returnDelta ? (r as AttributionWithDelta) : r.attributions;
}

function deepLiftSync(op: string, f: (x: Tensor) => Tensor, x: Tensor, base: Tensor, target: Target | undefined, eps = 1e-10): Tensor {
  const n = x.shape[0];
  const rule = bl.deepLiftRescale(eps);
  const both = bl.concat([x, base], 0);
  // Targets for [x; r]: the items twice over.
  const t2: Target | undefined =
    target === undefined || typeof target === 'number' || typeof target === 'function'
      ? target
      : target instanceof bl.Tensor
        ? bl.concat([target, target], 0)
        : Array.isArray(target)
          ? [...target, ...target]
          : target;
  // The model may lack some of these nonlinearities: the rule set is meant for any model.
  const g = bl.withRules(
    { relu: rule, sigmoid: rule, tanh: rule, maxPoolGather: bl.deepLiftMaxPool(eps) },
    () => bl.grad((t: Tensor) => bl.sum(scores(op, f(t), t2, 2 * n)))(both),
    { unused: 'ignore' },
  );
  return bl.mul(bl.sub(x, base), bl.slice(g, [0], [n]));
}

export interface DeepLiftShapOptions extends TargetOptions {
  /** A distribution of references [B, ...sample shape]; attributions average over them. */
  baselines: Tensor;
  eps?: number;
}

/** Per (input, reference) pair, item-major (pair (i, j) at row i * B + j), as Captum's DeepLiftShap and GradientShap deltas. */
export interface ShapAttributionWithDelta {
  attributions: Tensor;
  /** [N * B] (DeepLIFT-SHAP) or [N * samples] (GradientSHAP): sum of that pair's attributions - (F(x_i) - F(b_j)). */
  delta: Tensor;
}

const DEEPLIFT_SHAP_KEYS = optionKeys<DeepLiftShapOptions & { returnDelta?: boolean }>()(['target', 'rules', 'baselines', 'eps', 'returnDelta']);

/**
 * DeepLIFT averaged over a distribution of references (Captum's DeepLiftShap). With returnDelta,
 * the completeness error of each (item, reference) pair's DeepLIFT attribution (the average's
 * own error is their mean).
 */
export async function deepLiftShap(model: Model, input: Tensor, opts: DeepLiftShapOptions & { returnDelta: true }): Promise<ShapAttributionWithDelta>;
export async function deepLiftShap(model: Model, input: Tensor, opts: DeepLiftShapOptions & { returnDelta?: false }): Promise<Tensor>;
export async function deepLiftShap(model: Model, input: Tensor, opts: DeepLiftShapOptions & { returnDelta?: boolean }): Promise<Tensor | ShapAttributionWithDelta> {
  const op = 'deepLiftShap';
  checkOptions(op, opts, DEEPLIFT_SHAP_KEYS);
  const returnDelta = optionalBool(op, 'returnDelta', opts?.returnDelta);
  const x = await checkedInput(op, input);
  if (opts?.baselines instanceof bl.Tensor) await checkFinite(op, opts.baselines, 'baselines');
  const base = checkBaselines(op, x, opts?.baselines);
  const n = x.shape[0], b = base.shape[0];
  const f = forwardOf(model, opts.rules);
  const r = bl.tidy(() => {
    const target = resolveTarget(op, f, x, opts.target);
    // Every item against every reference: [n*b] pairs, item-major.
    const xs = repeatEach(x, b);
    const bs = bl.reshape(bl.broadcastTo(bl.expandDims(base, 0), [n, b, ...x.shape.slice(1)]), [n * b, ...x.shape.slice(1)]);
    const t = repeatTarget(target, n, b);
    const a = deepLiftSync(op, f, xs, bs, t, opts.eps);
    const attributions = bl.mean(bl.reshape(a, [n, b, ...x.shape.slice(1)]), 1);
    return returnDelta ? { attributions, delta: completenessDelta(op, f, a, xs, bs, t) } : { attributions };
  });
  await r.attributions.backend.sync();
  return returnDelta ? (r as ShapAttributionWithDelta) : r.attributions;
}

function checkBaselines(op: string, x: Tensor, baselines: unknown): Tensor {
  if (!(baselines instanceof bl.Tensor)) throw new Error(`${op}: the baselines option (a tensor [B, ...sample shape]) is required`);
  if (baselines.rank !== x.rank || baselines.shape.slice(1).join() !== x.shape.slice(1).join() || baselines.shape[0] < 1) {
    throw new Error(`${op}: baselines ${fmtShape(baselines.shape)} must be [B, ${x.shape.slice(1).join(', ')}] to match the input ${fmtShape(x.shape)}`);
  }
  return baselines;
}

export interface GradientShapOptions extends TargetOptions {
  baselines: Tensor;
  /** Random (baseline, alpha) draws per input. Default 20. */
  samples?: number;
  /** Gaussian noise added to the input for each draw. Default 0. */
  stdev?: number;
  seed?: number;
}

const GRADIENT_SHAP_KEYS = optionKeys<GradientShapOptions & { returnDelta?: boolean }>()(['target', 'rules', 'baselines', 'samples', 'stdev', 'seed', 'returnDelta']);

/**
 * GradientSHAP / expected gradients: E over baselines b ~ B, alpha ~ U(0, 1), noise e of
 * grad F(b + alpha (x + e - b)) * (x + e - b).
 */
export async function gradientShap(model: Model, input: Tensor, opts: GradientShapOptions & { returnDelta: true }): Promise<ShapAttributionWithDelta>;
export async function gradientShap(model: Model, input: Tensor, opts: GradientShapOptions & { returnDelta?: false }): Promise<Tensor>;
export async function gradientShap(model: Model, input: Tensor, opts: GradientShapOptions & { returnDelta?: boolean }): Promise<Tensor | ShapAttributionWithDelta> {
  const op = 'gradientShap';
  checkOptions(op, opts, GRADIENT_SHAP_KEYS);
  const returnDelta = optionalBool(op, 'returnDelta', opts?.returnDelta);
  const x = await checkedInput(op, input);
  if (opts?.baselines instanceof bl.Tensor) await checkFinite(op, opts.baselines, 'baselines');
  const base = checkBaselines(op, x, opts?.baselines);
  const n = x.shape[0], nb = base.shape[0];
  const k = positiveInt(op, 'samples', opts.samples, 20);
  const stdev = opts.stdev ?? 0;
  if (!(stdev >= 0)) throw new Error(`${op}: stdev must be >= 0, got ${stdev}`);
  const rnd = hostRandom(opts.seed ?? 0);
  const picks = Array.from({ length: n * k }, () => Math.floor(rnd() * nb));
  const alphas = Array.from({ length: n * k }, () => rnd());
  const f = forwardOf(model, opts.rules);
  const rest = x.shape.slice(1);
  const r = bl.tidy(() => {
    const target = resolveTarget(op, f, x, opts.target);
    let xs = repeatEach(x, k);
    if (stdev > 0) xs = bl.add(xs, bl.mul(bl.randn(xs.shape, { seed: (opts.seed ?? 0) * 31 + 7, backend: x.backend }), stdev));
    const bs = bl.gather(base, bl.tensor(picks, [n * k], x.backend), 0);
    const al = bl.tensor(alphas, [n * k, ...rest.map(() => 1)], x.backend);
    const delta = bl.sub(xs, bs);
    const pts = bl.add(bs, bl.mul(al, delta));
    const g = bl.grad((p: Tensor) => bl.sum(scores(op, f(p), target, n, k)))(pts);
    const perSample = bl.mul(g, delta);
    const attributions = bl.mean(bl.reshape(perSample, [n, k, ...rest]), 1);
    // Each draw's completeness error, as Captum: sum(grad * (x + e - b)) - (F(x + e) - F(b)).
    return returnDelta ? { attributions, delta: completenessDelta(op, f, perSample, xs, bs, repeatTarget(target, n, k)) } : { attributions };
  });
  await r.attributions.backend.sync();
  return returnDelta ? (r as ShapAttributionWithDelta) : r.attributions;
}


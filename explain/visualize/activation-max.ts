// Activation maximisation: the input that most excites a unit, found by gradient ascent on the
// input through the model's differentiable graph (Erhan et al. 2009, "Visualizing higher-layer
// features of a deep network"; Olah et al. 2017, "Feature Visualization", Distill), for a neuron,
// a channel or a whole layer (DeepDream's objective, Mordvintsev et al. 2015).
//
// Each step: decode the parameters into an image (pixels, or Olah et al.'s decorrelated Fourier
// basis), squash it into the valid range, draw a random jitter/rotation/scale (affine matrices
// from wgpu-matrix, bilinear resampling by gather: affine.ts), run the model to the layer, and
// ascend objective - l2 * mean(x^2) - tv * TV(x) (regularizers.ts) with Adam on the parameters
// (ReLU gradients redirected while they are all zero, as Lucid does: relu-redirect.ts).
//
// Valid range (`range`, default [0, 1]): with `squash: 'sigmoid'` (the default, as Lucid's) the
// image is lo + (hi - lo) * sigmoid(z) for the decoded z, always inside (lo, hi); a start image
// `from` is mapped through the inverse (logit, its values clipped to 1e-4 of the ends, where the
// sigmoid's slope is ~1e-4: saturated pixels of a start image move slowly). With 'clip' the
// image is clamp(z, lo, hi) and, for pixel parameters, z is projected back into the range after
// every step (projected gradient ascent).
import * as bl from '../../engine/index.ts';
import { Module } from '../../models/module.ts';
import type { Tensor } from '../../engine/index.ts';
import { fmtShape } from '../../engine/shape.ts';
import { mulberry32 } from '../../models/data/random.ts';
import { type Model, forwardOf } from '../common.ts';
import { type Padding, affineResample, randomAffine } from './affine.ts';
import { fourierCoefficients, fourierImage, halfWidth } from './fourier.ts';
import { l2Penalty, totalVariation } from './regularizers.ts';
import { redirectedRelu } from './relu-redirect.ts';
import { type UnitOptions, type VisObjective, checkUnit, forwardWithActivation, resolveUnit, unitScores } from './units.ts';
import { checkOptions, optionKeys } from '../options.ts';

export type { VisObjective } from './units.ts';

export interface VisRegularizers {
  /** Weight of mean(x^2) (default 0). */
  l2?: number;
  /** Weight of the total variation V^beta (default 0). */
  tv?: number;
  /** The exponent beta of the total variation (default 2; >= 1). */
  tvBeta?: number;
  /** Random shift per step of up to +-jitter pixels (an integer; default 0). */
  jitter?: number;
  /** Random rotation per step, uniform in +-rotate degrees (default 0). */
  rotate?: number;
  /** Random isotropic scale per step, uniform in [lo, hi] (default none). */
  scale?: readonly [number, number];
  /** What the transforms read outside the image: 'edge' (repeat the border; default) or 'zeros'. */
  padding?: Padding;
}

export interface StepInfo {
  step: number;
  /** The objective (mean over the batch) at this step, before its update. */
  objective: number;
}

export interface ActivationMaxOptions extends UnitOptions {
  /** One sample's shape [C, H, W], or a batch's [N, C, H, W] (default: the shape of `from`). */
  inputShape?: readonly number[];
  steps?: number;
  /** Adam's step size on the parameters (default 0.05). */
  lr?: number;
  /** Seeds the start noise and the random transforms (default 0). */
  seed?: number;
  /** Start image [N, C, H, W] (or [C, H, W]) inside the range; default small noise. */
  from?: Tensor;
  regularizers?: VisRegularizers;
  /** 'pixel' (default) or 'fourier' (Olah et al.'s 1/f-scaled Fourier basis). */
  parameterization?: 'pixel' | 'fourier';
  /** The Fourier scaling's exponent (default 1: 1/f). */
  decay?: number;
  /** The valid pixel range (default [0, 1]). */
  range?: readonly [number, number];
  /** How the image is kept in the range: 'sigmoid' (default) or 'clip'. */
  squash?: 'sigmoid' | 'clip';
  /** 'adam' (default) or 'sgd' (plain gradient ascent, param += lr * gradient). */
  optimizer?: 'adam' | 'sgd';
  /**
   * ReLU gradient redirection while an item's ReLU gradients are all zero (Lucid's default; lets
   * units that are dead for the start image come alive; default true). relu-redirect.ts.
   */
  reluRedirect?: boolean;
  /** Called after every step (reading the objective back each step: a device round trip per step). */
  onStep?: (info: StepInfo) => void;
}

export interface ActivationMaxResult {
  /** The optimised images [N, C, H, W], inside the range. */
  image: Tensor;
  /** The objective per step (mean over the batch; with transforms, of the transformed image), before each update. */
  history: number[];
  /** The objective of each returned image, untransformed and without penalties. */
  final: number[];
  /** The channel each item targeted (empty for the 'layer' objective). */
  channels: number[];
}

function nonNeg(op: string, name: string, v: unknown, dflt: number): number {
  const x = v === undefined ? dflt : v;
  if (typeof x !== 'number' || !Number.isFinite(x) || x < 0) throw new Error(`${op}: ${name} must be a finite number >= 0, got ${String(v)}`);
  return x;
}

const ACTIVATION_MAX_KEYS = optionKeys<ActivationMaxOptions>()([
  'layer', 'channel', 'neuron', 'objective', 'inputShape', 'steps', 'lr', 'seed', 'from', 'regularizers',
  'parameterization', 'decay', 'range', 'squash', 'optimizer', 'reluRedirect', 'onStep',
]);

function resolveOptions(op: string, o: ActivationMaxOptions) {
  if (!o || typeof o !== 'object') throw new Error(`${op}: options are required ({ layer, inputShape, ... })`);
  checkOptions(op, o, ACTIVATION_MAX_KEYS);
  const steps = o.steps ?? 256;
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`${op}: steps must be a positive integer, got ${String(o.steps)}`);
  const lr = o.lr ?? 0.05;
  if (typeof lr !== 'number' || !Number.isFinite(lr) || lr <= 0) throw new Error(`${op}: lr must be a finite number > 0, got ${String(o.lr)}`);
  const seed = o.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`${op}: seed must be a non-negative integer, got ${String(o.seed)}`);
  const param = o.parameterization ?? 'pixel';
  if (param !== 'pixel' && param !== 'fourier') throw new Error(`${op}: parameterization must be 'pixel' or 'fourier', got '${String(param)}'`);
  const squash = o.squash ?? 'sigmoid';
  if (squash !== 'sigmoid' && squash !== 'clip') throw new Error(`${op}: squash must be 'sigmoid' or 'clip', got '${String(squash)}'`);
  const optimizer = o.optimizer ?? 'adam';
  if (optimizer !== 'adam' && optimizer !== 'sgd') throw new Error(`${op}: optimizer must be 'adam' or 'sgd', got '${String(optimizer)}'`);
  const range = o.range ?? [0, 1];
  if (!Array.isArray(range) || range.length !== 2 || !range.every(Number.isFinite) || !(range[0] < range[1])) throw new Error(`${op}: range must be [lo, hi] with lo < hi, got ${JSON.stringify(o.range)}`);
  const decay = nonNeg(op, 'decay', o.decay, 1);
  const r = o.regularizers ?? {};
  if (typeof r !== 'object' || r === null || Array.isArray(r)) throw new Error(`${op}: regularizers must be an object, got ${r === null ? 'null' : Array.isArray(r) ? 'an array' : typeof r}`);
  const known = ['l2', 'tv', 'tvBeta', 'jitter', 'rotate', 'scale', 'padding'];
  for (const k of Object.keys(r)) if (!known.includes(k)) throw new Error(`${op}: unknown regularizer '${k}' (known: ${known.join(', ')})`);
  const l2 = nonNeg(op, 'regularizers.l2', r.l2, 0);
  const tv = nonNeg(op, 'regularizers.tv', r.tv, 0);
  const tvBeta = r.tvBeta ?? 2;
  if (typeof tvBeta !== 'number' || !(tvBeta >= 1) || !Number.isFinite(tvBeta)) throw new Error(`${op}: regularizers.tvBeta must be >= 1, got ${String(r.tvBeta)}`);
  const jitter = r.jitter ?? 0;
  if (!Number.isInteger(jitter) || jitter < 0) throw new Error(`${op}: regularizers.jitter must be a non-negative integer (pixels), got ${String(r.jitter)}`);
  const rotate = nonNeg(op, 'regularizers.rotate', r.rotate, 0);
  if (r.scale !== undefined && (!Array.isArray(r.scale) || r.scale.length !== 2 || !r.scale.every((s) => Number.isFinite(s) && s > 0) || r.scale[0] > r.scale[1])) {
    throw new Error(`${op}: regularizers.scale must be [lo, hi] with 0 < lo <= hi, got ${JSON.stringify(r.scale)}`);
  }
  const padding = r.padding ?? 'edge';
  if (padding !== 'edge' && padding !== 'zeros') throw new Error(`${op}: regularizers.padding must be 'edge' or 'zeros', got '${String(padding)}'`);
  if (o.onStep !== undefined && typeof o.onStep !== 'function') throw new Error(`${op}: onStep must be a function`);
  return { steps, lr, seed, param, squash, optimizer, range: [range[0], range[1]] as [number, number], decay, l2, tv, tvBeta, jitter, rotate, scale: r.scale, padding };
}

function batchShape(op: string, o: ActivationMaxOptions, channels: number): number[] {
  let s: number[] | undefined;
  if (o.from !== undefined) {
    if (!(o.from instanceof bl.Tensor)) throw new Error(`${op}: from must be a Tensor, got ${typeof o.from}`);
    o.from.storageFor(op);
    s = o.from.rank === 3 ? [1, ...o.from.shape] : [...o.from.shape];
  }
  if (o.inputShape !== undefined) {
    const is = o.inputShape;
    if (!Array.isArray(is) || (is.length !== 3 && is.length !== 4) || is.some((d) => !Number.isInteger(d) || d < 1)) {
      throw new Error(`${op}: inputShape must be [C, H, W] or [N, C, H, W] of positive integers, got ${JSON.stringify(is)}`);
    }
    const full = is.length === 3 ? [s?.[0] ?? Math.max(1, channels), ...is] : [...is];
    if (s && full.join() !== s.join()) throw new Error(`${op}: from has shape ${fmtShape(o.from!.shape)}, inputShape says ${fmtShape(is)}`);
    s = full;
  }
  if (!s) throw new Error(`${op}: inputShape ([C, H, W]) is required when no start image (from) is given`);
  if (s.length !== 4) throw new Error(`${op}: from must be [N, C, H, W] or [C, H, W], got ${fmtShape(o.from!.shape)}`);
  if (channels > 1 && s[0] !== channels) throw new Error(`${op}: ${channels} channels need a batch of ${channels} images, inputShape gives ${s[0]}`);
  return s;
}

/**
 * Optimise an input to maximise a unit of `layer`. Returns the images, the objective per step and
 * the final objective per item. Deterministic for a seed (the start noise is Philox, the same on
 * every backend; the transforms come from a seeded host generator).
 */
export async function activationMaximization(model: Model, opts: ActivationMaxOptions): Promise<ActivationMaxResult> {
  const op = 'activationMaximization';
  const c = resolveOptions(op, opts);
  const unitSpec = checkUnit(op, opts);
  const [N, C, H, W] = batchShape(op, opts, unitSpec.channels.length);
  const f = forwardOf(model);
  const [lo, hi] = c.range;
  const mid = (lo + hi) / 2;
  // The image lives where the model does (its parameters' backend), not on the default one.
  const on = opts.from?.backend ?? (model instanceof Module ? model.parameters()[0]?.backend : undefined) ?? bl.getBackend();

  // The layer's shape, from one forward of a mid-grey batch; checks the unit against it.
  const unit = bl.tidy(() => {
    const { A } = forwardWithActivation(op, model, f, bl.full([N, C, H, W], mid, on), unitSpec.layer);
    return resolveUnit(op, unitSpec, A.shape, N);
  });

  // image = squash(decode(param))
  const decode = (p: Tensor): Tensor => (c.param === 'fourier' ? fourierImage(p, W, { decay: c.decay }) : p);
  const squash = (z: Tensor): Tensor => (c.squash === 'sigmoid' ? bl.add(bl.mul(bl.sigmoid(z), hi - lo), lo) : bl.minimum(bl.maximum(z, lo), hi));
  const image = (p: Tensor): Tensor => bl.tidy(() => squash(decode(p)));

  // Start parameters.
  let param = bl.tidy(() => {
    let z: Tensor;
    if (opts.from !== undefined) {
      const x0 = opts.from.rank === 3 ? bl.reshape(opts.from, [1, C, H, W]) : opts.from;
      if (c.squash === 'sigmoid') {
        const e = 1e-4;
        const u = bl.minimum(bl.maximum(bl.div(bl.sub(x0, lo), hi - lo), e), 1 - e);
        z = bl.log(bl.div(u, bl.sub(1, u))); // logit
      } else {
        z = bl.minimum(bl.maximum(x0, lo), hi);
      }
      return c.param === 'fourier' ? fourierCoefficients(z, { decay: c.decay }) : bl.add(z, 0);
    }
    if (c.param === 'fourier') {
      // Lucid's start: coefficients ~ N(0, 0.01^2) (a faint 1/f noise image around the middle).
      const coeffs = bl.mul(bl.randn([2, N, C, H, halfWidth(W)], { seed: c.seed, backend: on }), 0.01);
      return c.squash === 'sigmoid' ? coeffs : bl.add(coeffs, fourierCoefficients(bl.full([N, C, H, W], mid, on)));
    }
    const noise = bl.mul(bl.randn([N, C, H, W], { seed: c.seed, backend: on }), 0.01);
    return c.squash === 'sigmoid' ? noise : bl.add(bl.mul(noise, hi - lo), mid);
  });

  const redirect = opts.reluRedirect ?? true;
  if (typeof redirect !== 'boolean') throw new Error(`${op}: reluRedirect must be true or false, got ${String(opts.reluRedirect)}`);
  const next = mulberry32(c.seed + 0x7f4a7c15);
  const transforming = c.jitter > 0 || c.rotate > 0 || c.scale !== undefined;
  const history: Tensor[] = [];
  let m: Tensor | null = null, v: Tensor | null = null;
  const [b1, b2, eps] = [0.9, 0.999, 1e-8];
  try {
    for (let step = 0; step < c.steps; step++) {
      const ts = transforming ? Array.from({ length: N }, () => randomAffine([H, W], { jitter: c.jitter, rotate: c.rotate, scale: c.scale }, next)) : null;
      let obj: Tensor | null = null;
      const g = bl.tidy(() => {
        const [, [grad]] = bl.valueAndGrad((p: Tensor) => {
          const x = image(p);
          const xin = ts ? affineResample(x, ts, { padding: c.padding }) : x;
          const { A } = redirect
            ? bl.withRules({ relu: redirectedRelu }, () => forwardWithActivation(op, model, f, xin, unit.layer), { unused: 'ignore' })
            : forwardWithActivation(op, model, f, xin, unit.layer);
          const s = unitScores(A, unit);
          obj = bl.keep(bl.mean(bl.stopGradient(s)));
          let total = bl.sum(s);
          if (c.l2 > 0) total = bl.sub(total, bl.mul(bl.sum(l2Penalty(x)), c.l2));
          if (c.tv > 0) total = bl.sub(total, bl.mul(bl.sum(totalVariation(x, c.tvBeta)), c.tv));
          return total;
        })(param);
        return grad;
      });
      history.push(obj as unknown as Tensor);
      const old = param;
      if (c.optimizer === 'sgd') {
        param = bl.tidy(() => bl.add(old, bl.mul(g, c.lr)));
      } else {
        const t = step + 1;
        const m0: Tensor | null = m, v0: Tensor | null = v;
        const [mm, vv]: Tensor[] = bl.tidy((): Tensor[] => [
          bl.keep(m0 ? bl.add(bl.mul(m0, b1), bl.mul(g, 1 - b1)) : bl.mul(g, 1 - b1)),
          bl.keep(v0 ? bl.add(bl.mul(v0, b2), bl.mul(bl.mul(g, g), 1 - b2)) : bl.mul(bl.mul(g, g), 1 - b2)),
        ]);
        m0?.dispose();
        v0?.dispose();
        [m, v] = [mm, vv];
        const c1 = 1 - b1 ** t, c2 = 1 - b2 ** t;
        param = bl.tidy(() => bl.add(old, bl.mul(bl.div(bl.div(mm, c1), bl.add(bl.sqrt(bl.div(vv, c2)), eps)), c.lr)));
      }
      if (c.squash === 'clip' && c.param === 'pixel') {
        const p = param;
        param = bl.tidy(() => bl.minimum(bl.maximum(p, lo), hi));
        p.dispose();
      }
      old.dispose();
      g.dispose();
      // Submit the step: emits the pending elementwise chains (the parameters and Adam's moments),
      // so the next step's fused kernels start from buffers instead of inlining every earlier step
      // (a longer chain, hence a new pipeline, per step). No read-back.
      param.backend.flush();
      if (opts.onStep) opts.onStep({ step, objective: await (obj as unknown as Tensor).item() });
      else if (step % 16 === 15) await param.backend.sync();
    }
    const img = image(param);
    const [hist, fin] = bl.tidy(() => {
      const { A } = forwardWithActivation(op, model, f, img, unit.layer);
      return [bl.stack(history, 0), bl.stopGradient(unitScores(A, unit))];
    });
    const [hv, fv] = [await hist.data(), await fin.data()];
    hist.dispose();
    fin.dispose();
    return { image: img, history: Array.from(hv), final: Array.from(fv), channels: unit.channels };
  } finally {
    param.dispose();
    m?.dispose();
    v?.dispose();
    for (const h of history) h.dispose();
  }
}

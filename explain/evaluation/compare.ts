// Every explainer on the same inputs, scored by every metric: the evidence a user needs to pick a
// method (Hedstrom et al. 2023, "Quantus"). Metrics are named, say whether higher is better, and
// say what they need (ground-truth masks, a Module to randomise); the caller's explainers are
// functions of (model, x, target). Results: the mean over items per (method, metric), with the
// per-item values and the deletion/insertion curves for plots.
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { Module } from '../../models/module.ts';
import { type Model, forwardOf } from '../common.ts';
import { type ArrayInput, mean } from '../metrics/common.ts';
import { complexity, sparseness } from '../metrics/complexity.ts';
import { deletion, faithfulnessCorrelation, insertion, regionPerturbation } from '../metrics/faithfulness.ts';
import { pointingGame, relevanceMass, relevanceRank, topKIntersection } from '../metrics/localisation.ts';
import { infidelity, sensitivityMax } from '../metrics/robustness.ts';
import { modelRandomisation } from '../sanity/randomisation.ts';
import { checkOptions, optionKeys } from '../options.ts';

/** An explainer as the comparison calls it: attributions shaped like x (layer maps upsampled). */
export type ComparedExplainer = (model: Model, x: Tensor, target: number[]) => Promise<Tensor>;

export interface MetricContext {
  model: Model;
  x: Tensor;
  attributions: Tensor;
  target: number[];
  masks?: ArrayInput;
  explain: ComparedExplainer;
  seed: number;
  /** Set by deletion/insertion for the report's curve plots. */
  curves?: number[];
  /** Set by randomisation: its rows per layer (for the sanity-check plot). */
  rows?: { layer: string; spearman: number; spearmanAbs: number; ssim: number }[];
}

export interface MetricSpec {
  higherIsBetter: boolean;
  /** Needs ground-truth masks (localisation). */
  masks?: boolean;
  /** Needs a Module whose parameters can be randomised. */
  module?: boolean;
  /** One line for reports: what the number is. */
  description: string;
  run(c: MetricContext): Promise<Float64Array>;
}

const meanCurve = (curves: Float64Array[]) => curves[0].map((_, k) => mean(curves.map((c) => c[k])));

/** The metrics by name (the command line's --metrics). */
export const METRICS: Record<string, MetricSpec> = {
  deletion: {
    higherIsBetter: false,
    description: 'area under the predicted-class probability as pixels are deleted most relevant first (to 0; 20 steps)',
    async run(c) {
      const r = await deletion(c.model, c.x, c.attributions, { target: c.target });
      c.curves = Array.from(meanCurve(r.curves));
      return r.auc;
    },
  },
  insertion: {
    higherIsBetter: true,
    description: 'area under the probability as pixels are inserted most relevant first into a blurred image (20 steps)',
    async run(c) {
      const r = await insertion(c.model, c.x, c.attributions, { target: c.target });
      c.curves = Array.from(meanCurve(r.curves));
      return r.auc;
    },
  },
  'deletion-road': {
    higherIsBetter: false,
    description: 'deletion with ROAD noisy linear imputation instead of a constant (less shape leakage)',
    run: async (c) => (await deletion(c.model, c.x, c.attributions, { target: c.target, imputation: 'road', seed: c.seed })).auc,
  },
  'region-perturbation': {
    higherIsBetter: true,
    description: 'AOPC: mean drop of the logit as 2x2 regions are replaced by uniform noise, most relevant first',
    run: async (c) => (await regionPerturbation(c.model, c.x, c.attributions, { target: c.target, regionSize: 2, seed: c.seed })).aopc,
  },
  'faithfulness-correlation': {
    higherIsBetter: true,
    description: 'Pearson correlation of attribution sums and logit drops over random 10% feature subsets set to 0',
    run: (c) => faithfulnessCorrelation(c.model, c.x, c.attributions, { target: c.target, seed: c.seed, samples: 50 }),
  },
  infidelity: {
    higherIsBetter: false,
    description: 'expected squared error of I . a against f(x) - f(x - I), I ~ N(0, 0.1^2), attributions rescaled optimally',
    run: (c) => infidelity(c.model, c.x, c.attributions, { target: c.target, seed: c.seed, normalize: true }),
  },
  'sensitivity-max': {
    higherIsBetter: false,
    description: 'largest relative change of the explanation within an L-inf ball of radius 0.02 (5 samples)',
    run: (c) => sensitivityMax((x, t) => c.explain(c.model, x, t), c.x, { target: c.target, samples: 5, seed: c.seed }),
  },
  'pointing-game': {
    higherIsBetter: true,
    masks: true,
    description: 'share of items whose most relevant pixel lies on the object',
    run: (c) => pointingGame(c.attributions, c.x.shape, c.masks!),
  },
  'relevance-mass': {
    higherIsBetter: true,
    masks: true,
    description: 'share of the positive relevance that falls on the object',
    run: (c) => relevanceMass(c.attributions, c.x.shape, c.masks!),
  },
  'relevance-rank': {
    higherIsBetter: true,
    masks: true,
    description: "share of the top-|object| pixels that lie on the object",
    run: (c) => relevanceRank(c.attributions, c.x.shape, c.masks!),
  },
  'top-k-intersection': {
    higherIsBetter: true,
    masks: true,
    description: 'share of the top 10% pixels that lie on the object',
    run: (c) => topKIntersection(c.attributions, c.x.shape, c.masks!),
  },
  sparseness: {
    higherIsBetter: true,
    description: 'Gini index of |attribution| (0 uniform, 1 one pixel)',
    run: (c) => sparseness(c.attributions, c.x.shape),
  },
  complexity: {
    higherIsBetter: false,
    description: 'entropy of the |attribution| distribution over pixels',
    run: (c) => complexity(c.attributions, c.x.shape),
  },
  randomisation: {
    higherIsBetter: false,
    module: true,
    description: "Spearman correlation of |attribution| before and after randomising all layers (cascading; a method that ignores the model scores 1)",
    async run(c) {
      const rows = await modelRandomisation(c.model as Module, c.x, (m, x) => c.explain(m, x, c.target), { mode: 'cascading', seed: c.seed, ssim: c.x.rank === 4 ? undefined : false });
      c.rows = rows.map((r) => ({ layer: r.layer, spearman: r.spearman, spearmanAbs: r.spearmanAbs, ssim: r.ssim }));
      return Float64Array.from(rows[rows.length - 1].perItem.spearmanAbs);
    },
  },
};

export interface CompareOptions {
  /** The explainers by name. */
  methods: Record<string, ComparedExplainer>;
  /** Metric names (default: every one that applies: masks given, a Module for randomisation). */
  metrics?: readonly string[];
  /** Classes explained per item (default: the predicted ones). */
  target?: readonly number[];
  /** Ground-truth masks [N, H, W] for the localisation metrics. */
  masks?: ArrayInput;
  seed?: number;
  /** Called after each (method, metric). */
  onProgress?: (p: { method: string; metric: string; done: number; total: number }) => void;
}

export interface Comparison {
  target: number[];
  metrics: string[];
  /** Mean over items, per method then metric. */
  methods: Record<string, Record<string, number>>;
  perItem: Record<string, Record<string, number[]>>;
  /** Mean deletion / insertion curves per method (for plots). */
  curves: Record<string, Record<string, number[]>>;
  /** The cascading randomisation's similarity per layer, per method (when that metric ran). */
  randomisation: Record<string, { layer: string; spearman: number; spearmanAbs: number; ssim: number }[]>;
  higherIsBetter: Record<string, boolean>;
  /** Seconds each method's explanation took. */
  seconds: Record<string, number>;
}

/** Which metrics apply to this model and data (those needing masks or a Module drop out). */
export function applicableMetrics(model: Model, hasMasks: boolean): string[] {
  return Object.entries(METRICS).filter(([, m]) => (!m.masks || hasMasks) && (!m.module || model instanceof Module)).map(([k]) => k);
}

const COMPARE_KEYS = optionKeys<CompareOptions>()(['methods', 'metrics', 'target', 'masks', 'seed', 'onProgress']);

/** Run every method on x and score it with every metric. */
export async function compareExplainers(model: Model, x: Tensor, opts: CompareOptions): Promise<Comparison> {
  const op = 'compareExplainers';
  if (!(x instanceof bl.Tensor)) throw new Error(`${op}: input must be a Tensor`);
  checkOptions(op, opts, COMPARE_KEYS);
  if (opts?.methods !== undefined && (typeof opts.methods !== 'object' || opts.methods === null)) throw new Error(`${op}: option 'methods' must be an object of explainers by name, got ${String(opts.methods)}`);
  for (const [name, f] of Object.entries(opts?.methods ?? {})) {
    if (typeof f !== 'function') throw new Error(`${op}: method '${name}' must be a function (model, x, target) => Promise<Tensor>, got ${typeof f}`);
  }
  if (opts?.metrics !== undefined && !Array.isArray(opts.metrics)) throw new Error(`${op}: option 'metrics' must be an array of metric names, got ${typeof opts.metrics}`);
  if (opts?.seed !== undefined && !(Number.isInteger(opts.seed) && opts.seed >= 0)) throw new Error(`${op}: option 'seed' must be a non-negative integer, got ${String(opts.seed)}`);
  if (opts?.onProgress !== undefined && typeof opts.onProgress !== 'function') throw new Error(`${op}: option 'onProgress' must be a function, got ${typeof opts.onProgress}`);
  const names = Object.keys(opts?.methods ?? {});
  if (!names.length) throw new Error(`${op}: option 'methods' must name at least one explainer`);
  const metrics = [...(opts.metrics ?? applicableMetrics(model, opts.masks !== undefined))];
  for (const m of metrics) {
    const spec = Object.hasOwn(METRICS, m) ? METRICS[m] : undefined;
    if (!spec) throw new Error(`${op}: unknown metric '${m}'; metrics: ${Object.keys(METRICS).join(', ')}`);
    if (spec.masks && opts.masks === undefined) throw new Error(`${op}: metric '${m}' needs ground-truth masks (a data set with masks, such as shapes or spurious)`);
    if (spec.module && !(model instanceof Module)) throw new Error(`${op}: metric '${m}' randomises a backlight Module's parameters; this model is a function`);
  }
  const n = x.shape[0];
  let target: number[];
  if (opts.target) {
    if (opts.target.length !== n) throw new Error(`${op}: ${opts.target.length} targets for ${n} items`);
    target = [...opts.target];
  } else {
    const am = bl.tidy(() => bl.argmax(bl.reshape(forwardOf(model)(x), [n, -1]), 1));
    target = Array.from(await am.data());
    am.dispose();
  }
  const out: Comparison = { target, metrics, methods: {}, perItem: {}, curves: {}, randomisation: {}, higherIsBetter: Object.fromEntries(metrics.map((m) => [m, METRICS[m].higherIsBetter])), seconds: {} };
  const total = names.length * metrics.length;
  let done = 0;
  for (const name of names) {
    const explain = opts.methods[name];
    const t0 = performance.now();
    const a = await explain(model, x, target);
    out.seconds[name] = (performance.now() - t0) / 1000;
    out.methods[name] = {};
    out.perItem[name] = {};
    out.curves[name] = {};
    try {
      for (const metric of metrics) {
        const ctx: MetricContext = { model, x, attributions: a, target, masks: opts.masks, explain, seed: opts.seed ?? 0 };
        const v = await METRICS[metric].run(ctx);
        // A non-finite item (e.g. a rank correlation of a constant map) makes the mean NaN rather
        // than being dropped, which would flatter the method on exactly its worst items.
        out.methods[name][metric] = Array.from(v).every(Number.isFinite) ? mean(v) : NaN;
        out.perItem[name][metric] = Array.from(v);
        if (ctx.curves) out.curves[name][metric] = ctx.curves;
        if (ctx.rows) out.randomisation[name] = ctx.rows;
        opts.onProgress?.({ method: name, metric, done: ++done, total });
      }
    } finally {
      a.dispose();
    }
  }
  return out;
}

/**
 * A uniform random attribution: the baseline every method should beat. It is a fixed function of
 * the input's shape (the same seed every call), so like any method that ignores the model it
 * scores 1 on the randomisation check.
 */
export function randomExplainer(seed = 0): ComparedExplainer {
  return async (_m, x) => bl.rand(x.shape, { seed, backend: x.backend });
}

// Faithfulness: does removing what the attribution calls important change the prediction? Each
// metric perturbs the input in the order or subsets the attribution gives and measures the model,
// every perturbed input of an item built and evaluated in batches on the device by the
// perturbation engine (explain/perturbation/engine.ts): keep masks over the features, a reference
// the removed features take, chunks sized from a memory budget.
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { fmtShape } from '../../engine/shape.ts';
import { forwardOf, scores, type Model, type Target } from '../common.ts';
import { PerturbationRunner, isBlackBox, readF64, rowsPerModelCall, type EngineOptions, type PerturbationModel, type Perturbations } from '../perturbation/engine.ts';
import { gaussianBlur } from '../perturbation/meaningful.ts';
import { mulberry32 } from '../../models/data/random.ts';
import { pearson } from './similarity.ts';
import { type ArrayInput, type FeatureScores, aucTrapezoid, featureScores, intOption, numberOption, orderDescending, row } from './common.ts';
import { checkOptions, optionKeys } from '../options.ts';

/** What the removed features become: a number, 'blur' (a Gaussian-blurred copy), or a tensor like x or one item. */
export type Reference = number | 'blur' | Tensor;

export interface CurveOptions extends EngineOptions {
  /** Perturbation steps (the curve has steps + 1 points, the first unperturbed). Default 20 (fewer if there are fewer features). */
  steps?: number;
  /** The score: the target's softmax probability (default; as RISE) or its raw logit. */
  score?: 'probability' | 'logit';
  /** Most relevant first (default; 'morf') or least relevant first ('lerf'). */
  order?: 'morf' | 'lerf';
  /**
   * How removed features are filled: by `reference` (default), or 'road': noisy linear imputation
   * from their neighbours (Rong et al. 2022, "A consistent and efficient evaluation strategy for
   * attribution methods"), which leaks less of the removed shape to the model. Images only.
   */
  imputation?: 'reference' | 'road';
  /** Noise (standard deviation) added to ROAD's imputed values. Default 0.01. */
  roadNoise?: number;
  seed?: number;
}

export interface CurveResult {
  /** Area under each item's curve (trapezoid over the fraction of features perturbed, 0..1). */
  auc: Float64Array;
  /** Each item's scores at steps 0..steps. */
  curves: Float64Array[];
  /** Fraction of features perturbed at each step. */
  fractions: number[];
}

const softmaxLast = (t: Tensor) => bl.softmax(bl.reshape(t, [t.shape[0], -1]), -1);

function referenceTensor(op: string, x: Tensor, ref: Reference | undefined, dflt: Reference): number | Tensor {
  const r = ref ?? dflt;
  if (r === 'blur') {
    if (x.rank !== 4) throw new Error(`${op}: the 'blur' reference needs NCHW images, got ${fmtShape(x.shape)}`);
    return gaussianBlur(x, Math.max(1, Math.min(x.shape[2], x.shape[3]) / 8));
  }
  if (typeof r === 'number' || r instanceof bl.Tensor) return r;
  throw new Error(`${op}: option 'reference' must be a number, 'blur' or a Tensor, got ${String(r)}`);
}

/** Keep masks [n, P] over all elements from feature masks (1 keep) of `count` perturbations. */
function featurePerturbations(s: FeatureScores, channels: number, count: number, keepFeature: (c: number, f: Uint8Array) => void, backend: bl.Backend): Perturbations {
  const F = s.features;
  return {
    count,
    keep(start, n) {
      const out = new Float32Array(n * channels * F);
      const f = new Uint8Array(F);
      for (let c = 0; c < n; c++) {
        keepFeature(start + c, f);
        for (let ch = 0; ch < channels; ch++) for (let j = 0; j < F; j++) out[(c * channels + ch) * F + j] = f[j];
      }
      return bl.tensor(out, [n, channels * F], backend);
    },
  };
}

/**
 * Evaluate `pertOf(i)` (`count` perturbations) for each item i of n, one item at a time, and read
 * the scores back once for all items (contract 5: no read-back inside the loop): [n][count].
 */
async function evaluateEach(runner: PerturbationRunner, n: number, count: number, pertOf: (i: number) => Perturbations): Promise<Float64Array[]> {
  const parts: Tensor[] = [];
  try {
    for (let i = 0; i < n; i++) parts.push(await runner.evaluate(i, 1, pertOf(i))); // [1, count]
    return rowsOf(await readAll(parts), n, count);
  } finally {
    for (const t of parts) if (!t.disposed) t.dispose();
  }
}

/** Read device tensors back in one read (concatenated along the first axis). */
async function readAll(parts: Tensor[]): Promise<Float64Array> {
  const v = parts.length === 1 ? parts[0] : bl.concat(parts, 0);
  try {
    return await readF64(v);
  } finally {
    if (v !== parts[0]) v.dispose();
  }
}

const rowsOf = (all: Float64Array, n: number, count: number) => Array.from({ length: n }, (_, i) => all.slice(i * count, (i + 1) * count));

function channelsOf(x: Tensor, s: FeatureScores): number {
  return s.spatial ? x.shape[1] : 1;
}

async function curve(op: string, model: PerturbationModel, x: Tensor, attributions: ArrayInput, opts: CurveOptions, mode: 'deletion' | 'insertion', dflt: Reference, reference?: Reference): Promise<CurveResult> {
  if (!(x instanceof bl.Tensor)) throw new Error(`${op}: input must be a Tensor`);
  const s = await featureScores(op, attributions, x.shape);
  const F = s.features;
  const steps = Math.min(intOption(op, 'steps', opts.steps, 20), F);
  if (Array.isArray(opts.target) && opts.target.length !== s.n) throw new Error(`${op}: ${opts.target.length} targets for ${s.n} items`);
  const order = opts.order ?? 'morf';
  if (order !== 'morf' && order !== 'lerf') throw new Error(`${op}: option 'order' must be 'morf' or 'lerf', got ${String(order)}`);
  const score = opts.score ?? 'probability';
  if (score !== 'probability' && score !== 'logit') throw new Error(`${op}: option 'score' must be 'probability' or 'logit', got ${String(score)}`);
  const imputation = opts.imputation ?? 'reference';
  if (imputation !== 'reference' && imputation !== 'road') throw new Error(`${op}: option 'imputation' must be 'reference' or 'road', got ${String(imputation)}`);
  intOption(op, 'seed', opts.seed, 0, 0); // only ROAD's noise draws from it, but a bad one is an error on every path
  const fractions = Array.from({ length: steps + 1 }, (_, k) => k / steps);
  const counts = fractions.map((f) => Math.round(f * F));
  const orders = Array.from({ length: s.n }, (_, i) => {
    const o = orderDescending(row(s.values, i, F));
    return order === 'morf' ? o : o.reverse();
  });
  // step k of item i: the first counts[k] features of its order are removed (deletion) or shown (insertion)
  const stepMask = (i: number, k: number, f: Uint8Array) => {
    f.fill(mode === 'deletion' ? 1 : 0);
    for (let r = 0; r < counts[k]; r++) f[orders[i][r]] = mode === 'deletion' ? 0 : 1;
  };
  if (imputation === 'road') return roadCurve(op, model, x, s, stepMask, steps, score, opts, fractions);
  const ref = referenceTensor(op, x, reference, dflt);
  let runner: PerturbationRunner | undefined;
  try {
    runner = await PerturbationRunner.create(op, model, x, { baseline: ref }, { ...opts, target: opts.target ?? 'predicted' });
    if (score === 'probability') runner.outputTransform = softmaxLast;
    runner.plan(s.n, steps + 1);
    const curves = await evaluateEach(runner, s.n, steps + 1, (i) => featurePerturbations(s, channelsOf(x, s), steps + 1, (k, f) => stepMask(i, k, f), x.backend));
    return { auc: Float64Array.from(curves, aucTrapezoid), curves, fractions };
  } finally {
    runner?.dispose();
    if (ref instanceof bl.Tensor && ref !== reference) ref.dispose();
  }
}

export interface DeletionOptions extends CurveOptions {
  /** What deleted features become. Default 0. */
  reference?: Reference;
}

const CURVE_KEYS = ['target', 'batchSize', 'memoryBudget', 'onProgress', 'steps', 'score', 'order', 'imputation', 'roadNoise', 'seed', 'reference'] as const;
const DELETION_KEYS = optionKeys<DeletionOptions>()(CURVE_KEYS);
const INSERTION_KEYS = optionKeys<InsertionOptions>()(CURVE_KEYS);

/**
 * Deletion (Petsiuk et al. 2018, RISE): remove features most relevant first, in `steps` equal
 * steps, and record the target's score; the area under the curve is lower for a faithful
 * attribution. Images: a pixel (all its channels) is one feature, ranked by the channel sum.
 */
export async function deletion(model: PerturbationModel, x: Tensor, attributions: ArrayInput, opts: DeletionOptions = {}): Promise<CurveResult> {
  checkOptions('deletion', opts, DELETION_KEYS);
  return curve('deletion', model, x, attributions, opts, 'deletion', 0, opts.reference);
}

export interface InsertionOptions extends CurveOptions {
  /** The start image that features are inserted into. Default 'blur' (as RISE). */
  reference?: Reference;
}

/** Insertion (Petsiuk et al. 2018): reveal features most relevant first; a higher AUC is better. */
export async function insertion(model: PerturbationModel, x: Tensor, attributions: ArrayInput, opts: InsertionOptions = {}): Promise<CurveResult> {
  checkOptions('insertion', opts, INSERTION_KEYS);
  return curve('insertion', model, x, attributions, opts, 'insertion', 'blur', opts.reference);
}

/**
 * Noisy linear imputation (ROAD): each removed pixel takes the weighted mean of its 8 neighbours
 * (1/6 for the 4 direct ones, 1/12 for the diagonals, renormalised at borders), solved jointly
 * for all removed pixels by Gauss-Seidel iteration with the kept pixels fixed, plus N(0, noise^2).
 */
export function roadImpute(img: Float32Array, h: number, w: number, channels: number, removed: Uint8Array, noise: number, rand: () => number): Float32Array {
  const out = Float32Array.from(img);
  const nb: [number, number, number][] = [[-1, 0, 1 / 6], [1, 0, 1 / 6], [0, -1, 1 / 6], [0, 1, 1 / 6], [-1, -1, 1 / 12], [-1, 1, 1 / 12], [1, -1, 1 / 12], [1, 1, 1 / 12]];
  const idx: number[] = [];
  for (let j = 0; j < h * w; j++) if (removed[j]) idx.push(j);
  if (!idx.length) return out;
  for (let c = 0; c < channels; c++) {
    const o = c * h * w;
    // start from the mean of the kept pixels
    let sum = 0, cnt = 0;
    for (let j = 0; j < h * w; j++) if (!removed[j]) (sum += img[o + j]), cnt++;
    for (const j of idx) out[o + j] = cnt ? sum / cnt : 0;
    for (let it = 0; it < 500; it++) {
      let change = 0;
      for (const j of idx) {
        const y = Math.floor(j / w), x = j % w;
        let acc = 0, wt = 0;
        for (const [dy, dx, q] of nb) {
          const yy = y + dy, xx = x + dx;
          if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
          acc += q * out[o + yy * w + xx];
          wt += q;
        }
        const v = acc / wt;
        change = Math.max(change, Math.abs(v - out[o + j]));
        out[o + j] = v;
      }
      if (change < 1e-6) break;
    }
    if (noise > 0) {
      for (const j of idx) {
        // Box-Muller from the seeded generator
        const u1 = Math.max(rand(), 1e-12), u2 = rand();
        out[o + j] += noise * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
      }
    }
  }
  return out;
}

async function roadCurve(
  op: string, model: PerturbationModel, x: Tensor, s: FeatureScores, stepMask: (i: number, k: number, f: Uint8Array) => void,
  steps: number, score: 'probability' | 'logit', opts: CurveOptions, fractions: number[],
): Promise<CurveResult> {
  if (!s.spatial) throw new Error(`${op}: ROAD imputation needs NCHW images, got ${fmtShape(x.shape)}`);
  if (isBlackBox(model)) throw new Error(`${op}: ROAD imputation runs engine models only (the imputed batch is built on the host); use imputation: 'reference' for black boxes`);
  const noise = numberOption(op, 'roadNoise', opts.roadNoise, 0.01, (v) => v >= 0 && Number.isFinite(v), 'a non-negative number');
  const [h, w] = s.spatial;
  const c = x.shape[1], P = c * h * w;
  // An item's steps + 1 imputed copies go through the model in calls of at most this many rows.
  const rows = rowsPerModelCall(op, opts, P);
  const f = forwardOf(model as Model);
  const xs = Float32Array.from(await x.data());
  const target = opts.target ?? 'predicted';
  let fixed: Target;
  if (target === 'predicted') {
    const am = bl.tidy(() => bl.argmax(bl.reshape(f(x), [s.n, -1]), 1));
    fixed = Array.from(await am.data());
    am.dispose();
  } else fixed = target instanceof bl.Tensor ? Array.from(await target.data()) : target;
  const rand = mulberry32(opts.seed ?? 0);
  const removed = new Uint8Array(h * w);
  // Each item's scores stay on the device until all are done: one read-back for the call.
  const parts: Tensor[] = [];
  try {
    for (let i = 0; i < s.n; i++) {
      const batch = new Float32Array((steps + 1) * P);
      for (let k = 0; k <= steps; k++) {
        stepMask(i, k, removed); // 1 = keep for deletion
        for (let j = 0; j < h * w; j++) removed[j] = removed[j] ? 0 : 1;
        batch.set(roadImpute(xs.subarray(i * P, (i + 1) * P), h, w, c, removed, noise, rand), k * P);
      }
      const tItem: Target = typeof fixed === 'number' || typeof fixed === 'function' ? fixed : Array.isArray(fixed) ? [fixed[i]] : fixed;
      const chunks: Tensor[] = [];
      for (let r0 = 0; r0 <= steps; r0 += rows) {
        const r1 = Math.min(steps + 1, r0 + rows);
        chunks.push(bl.tidy(() => {
          const out = f(bl.tensor(batch.subarray(r0 * P, r1 * P), [r1 - r0, c, h, w], x.backend));
          return bl.reshape(scores(op, score === 'probability' ? softmaxLast(out) : out, tItem, 1, r1 - r0), [r1 - r0]);
        }));
      }
      parts.push(chunks.length === 1 ? chunks[0] : bl.concat(chunks, 0)); // [steps + 1]
      if (chunks.length > 1) chunks.forEach((q) => q.dispose());
    }
    const curves = rowsOf(await readAll(parts), s.n, steps + 1);
    return { auc: Float64Array.from(curves, aucTrapezoid), curves, fractions };
  } finally {
    for (const t of parts) if (!t.disposed) t.dispose();
  }
}

export interface RegionPerturbationOptions extends EngineOptions {
  /** Side of the square regions (non-overlapping cells) perturbed together. Default 1 (pixel flipping). */
  regionSize?: number;
  /** Steps L: step k has perturbed the k most relevant regions (as Samek et al.). Default min(100, regions). */
  steps?: number;
  /** Perturbed regions take values drawn uniformly from [low, high] (default [0, 1]) or a reference. */
  reference?: Reference | 'uniform';
  low?: number;
  high?: number;
  seed?: number;
}

export interface AopcResult {
  /** Area over the perturbation curve per item: mean over steps 0..L of f(x) - f(x^(k)); higher is better. */
  aopc: Float64Array;
  curves: Float64Array[];
}

const REGION_KEYS = optionKeys<RegionPerturbationOptions>()(['target', 'batchSize', 'memoryBudget', 'onProgress', 'regionSize', 'steps', 'reference', 'low', 'high', 'seed']);
const PIXELFLIPPING_KEYS = optionKeys<Omit<RegionPerturbationOptions, 'regionSize'>>()(['target', 'batchSize', 'memoryBudget', 'onProgress', 'steps', 'reference', 'low', 'high', 'seed']);

/**
 * Region perturbation (Samek et al. 2017, "Evaluating the visualization of what a deep neural
 * network has learned"): regions of regionSize x regionSize pixels, ranked by their summed
 * relevance, are replaced most relevant first by uniform noise; AOPC averages the score drop.
 * regionSize 1 is pixel flipping (Bach et al. 2015). Scores are the target's logits.
 */
export async function regionPerturbation(model: PerturbationModel, x: Tensor, attributions: ArrayInput, opts: RegionPerturbationOptions = {}): Promise<AopcResult> {
  checkOptions('regionPerturbation', opts, REGION_KEYS);
  return aopcCurve('regionPerturbation', model, x, attributions, opts);
}

async function aopcCurve(op: string, model: PerturbationModel, x: Tensor, attributions: ArrayInput, opts: RegionPerturbationOptions): Promise<AopcResult> {
  if (!(x instanceof bl.Tensor)) throw new Error(`${op}: input must be a Tensor`);
  const s = await featureScores(op, attributions, x.shape);
  const r = intOption(op, 'regionSize', opts.regionSize, 1);
  // features -> regions: an image's r x r cells, else single features
  const [h, w] = s.spatial ?? [1, s.features];
  if (s.spatial && (r > h || r > w)) throw new Error(`${op}: option 'regionSize' (${r}) exceeds the image ${h}x${w}`);
  const rh = Math.ceil(h / r), rw = Math.ceil(w / r), regions = s.spatial ? rh * rw : s.features;
  const regionOf = (j: number) => (s.spatial ? Math.floor(Math.floor(j / w) / r) * rw + Math.floor((j % w) / r) : j);
  const steps = Math.min(intOption(op, 'steps', opts.steps, Math.min(100, regions)), regions);
  const seed = intOption(op, 'seed', opts.seed, 0, 0);
  const low = opts.low ?? 0, high = opts.high ?? 1;
  if (!(Number.isFinite(low) && Number.isFinite(high) && low <= high)) throw new Error(`${op}: options 'low' and 'high' must be finite with low <= high, got ${low}, ${high}`);
  let ref: number | Tensor;
  if (opts.reference === undefined || opts.reference === 'uniform') {
    ref = bl.tidy(() => bl.add(bl.mul(bl.rand(x.shape, { seed, backend: x.backend }), high - low), low));
  } else ref = referenceTensor(op, x, opts.reference, 0);
  let runner: PerturbationRunner | undefined;
  try {
    runner = await PerturbationRunner.create(op, model, x, { baseline: ref }, { ...opts, target: opts.target ?? 'predicted' });
    runner.plan(s.n, steps + 1);
    const curves = await evaluateEach(runner, s.n, steps + 1, (i) => {
      const rel = new Float64Array(regions);
      for (let j = 0; j < s.features; j++) rel[regionOf(j)] += s.values[i * s.features + j];
      const order = orderDescending(rel);
      const rank = new Int32Array(regions);
      order.forEach((g, k) => (rank[g] = k));
      const counts = Array.from({ length: steps + 1 }, (_, k) => k); // step k: the k most relevant regions
      return featurePerturbations(s, channelsOf(x, s), steps + 1, (k, f) => {
        for (let j = 0; j < s.features; j++) f[j] = rank[regionOf(j)] < counts[k] ? 0 : 1;
      }, x.backend);
    });
    const aopc = Float64Array.from(curves, (c) => {
      let acc = 0;
      for (let k = 0; k < c.length; k++) acc += c[0] - c[k];
      return acc / c.length;
    });
    return { aopc, curves };
  } finally {
    runner?.dispose();
    if (ref instanceof bl.Tensor && ref !== opts.reference) ref.dispose();
  }
}

/** Pixel flipping (Bach et al. 2015): region perturbation with one-pixel regions. */
export async function pixelFlipping(model: PerturbationModel, x: Tensor, attributions: ArrayInput, opts: Omit<RegionPerturbationOptions, 'regionSize'> = {}): Promise<AopcResult> {
  // regionSize is fixed at 1 here: a caller's regionSize is an error, not silently overridden.
  checkOptions('pixelFlipping', opts, PIXELFLIPPING_KEYS);
  return aopcCurve('pixelFlipping', model, x, attributions, { ...opts, regionSize: 1 });
}

export interface FaithfulnessCorrelationOptions extends EngineOptions {
  /** Random subsets per item. Default 100. */
  samples?: number;
  /** Features per subset. Default 10% of the features (at least 1). */
  subsetSize?: number;
  /** What the subset's features become. Default 0. */
  reference?: Reference;
  seed?: number;
}

const FAITHFULNESS_KEYS = optionKeys<FaithfulnessCorrelationOptions>()(['target', 'batchSize', 'memoryBudget', 'onProgress', 'samples', 'subsetSize', 'reference', 'seed']);

/**
 * Faithfulness correlation (Bhatt et al. 2020): the Pearson correlation, over random feature
 * subsets S, between the attribution's sum over S and the drop of the target's score (logit) when
 * S is replaced by the reference. Higher is better; 0 when either side is constant.
 */
export async function faithfulnessCorrelation(model: PerturbationModel, x: Tensor, attributions: ArrayInput, opts: FaithfulnessCorrelationOptions = {}): Promise<Float64Array> {
  const op = 'faithfulnessCorrelation';
  checkOptions(op, opts, FAITHFULNESS_KEYS);
  if (!(x instanceof bl.Tensor)) throw new Error(`${op}: input must be a Tensor`);
  const s = await featureScores(op, attributions, x.shape);
  const samples = intOption(op, 'samples', opts.samples, 100, 2);
  const size = intOption(op, 'subsetSize', opts.subsetSize, Math.max(1, Math.round(0.1 * s.features)));
  if (size > s.features) throw new Error(`${op}: option 'subsetSize' (${size}) exceeds the ${s.features} features per item`);
  const seed = intOption(op, 'seed', opts.seed, 0, 0);
  const ref = referenceTensor(op, x, opts.reference, 0);
  let runner: PerturbationRunner | undefined;
  try {
    runner = await PerturbationRunner.create(op, model, x, { baseline: ref }, { ...opts, target: opts.target ?? 'predicted' });
    const out = new Float64Array(s.n);
    runner.plan(s.n, samples + 1);
    const subsetsOf: Int32Array[][] = [];
    const values = await evaluateEach(runner, s.n, samples + 1, (i) => {
      const rand = mulberry32(seed * 1000003 + i);
      const subsets: Int32Array[] = [];
      for (let k = 0; k < samples; k++) {
        // a uniform random subset of `size` features (partial Fisher-Yates)
        const perm = Int32Array.from({ length: s.features }, (_, j) => j);
        for (let j = 0; j < size; j++) {
          const t = j + Math.floor(rand() * (s.features - j));
          [perm[j], perm[t]] = [perm[t], perm[j]];
        }
        subsets.push(perm.slice(0, size));
      }
      subsetsOf.push(subsets);
      // perturbation 0: nothing removed (f(x)); 1..samples: the subsets
      return featurePerturbations(s, channelsOf(x, s), samples + 1, (k, f) => {
        f.fill(1);
        if (k > 0) for (const j of subsets[k - 1]) f[j] = 0;
      }, x.backend);
    });
    for (let i = 0; i < s.n; i++) {
      const subsets = subsetsOf[i], v = values[i];
      const a = row(s.values, i, s.features);
      const sa = subsets.map((sub) => sub.reduce((acc, j) => acc + a[j], 0));
      const drop = subsets.map((_, k) => v[0] - v[k + 1]);
      const r = pearson(sa, drop);
      out[i] = Number.isNaN(r) ? 0 : r; // a constant side (e.g. an all-zero map) correlates with nothing
    }
    return out;
  } finally {
    runner?.dispose();
    if (ref instanceof bl.Tensor && ref !== opts.reference) ref.dispose();
  }
}

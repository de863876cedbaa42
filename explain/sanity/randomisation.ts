// Sanity checks for explanations (Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim 2018, "Sanity
// checks for saliency maps", NeurIPS). An explanation that is meant to say what the model learned
// must change when what the model learned is destroyed:
// - model parameter randomisation: re-initialise the weights of the layers, from the top (logits)
//   down, either cumulatively ('cascading', the paper's Fig. 2) or one layer at a time
//   ('independent', its Fig. 5), and compare each explanation with the original one;
// - data (label) randomisation: train the same architecture on permuted labels, so that it can
//   only memorise, and compare its explanations with those of a model trained on the true labels.
// Similarity is reported as the paper does: Spearman rank correlation of the signed maps and of
// their absolute values, and SSIM of the maps normalised to [0, 1] (explain/metrics/similarity.ts).
// Methods whose explanations stay similar (the paper found guided backprop and, in part,
// gradient x input; an edge detector trivially) do not depend on the model's parameters.
//
// Browser-safe: no Node built-ins (the caller brings the data set for label randomisation).
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { fmtShape } from '../../engine/shape.ts';
import { Module } from '../../models/module.ts';
import { Rng } from '../../models/data/random.ts';
import { Adam } from '../../models/optim.ts';
import { fit, shuffled, type Dataset } from '../../models/train.ts';
import { spearman, ssim, type SsimOptions } from '../metrics/similarity.ts';
import { checkOptions, optionKeys } from '../options.ts';

/** An explainer as the checks call it: the model (original or randomised) and the input batch. */
export type ExplainFn = (model: Module, x: Tensor) => Promise<Tensor>;

/** Similarity between two explanations, means over the batch's items. */
export interface Similarity {
  /** Spearman rank correlation of the signed maps. */
  spearman: number;
  /** Spearman rank correlation of the absolute maps. */
  spearmanAbs: number;
  /** SSIM of the maps normalised to [0, 1] (|v| / max|v| per map). */
  ssim: number;
}

/** The same measures per batch item (NaN where a map is constant, e.g. an all-zero gradient). */
export interface SimilarityPerItem {
  spearman: number[];
  spearmanAbs: number[];
  ssim: number[];
}

export interface Comparison extends Similarity {
  perItem: SimilarityPerItem;
}

export interface RandomisationResult extends Comparison {
  /** The layer (module path) randomised at this step: with 'cascading', it and every layer before it in the list. */
  layer: string;
  /** The parameters this step re-initialised (full names, 'features.5.weight'). */
  parameters: string[];
}

/** How to compare maps: SSIM options (window, sigma, ...) or false to skip SSIM (reported NaN). */
export interface CompareOptions {
  ssim?: Partial<Omit<SsimOptions, 'h' | 'w'>> | false;
}

/**
 * New values for a parameter: `original` holds its values (float64), `rng` is seeded by the
 * check's seed and the parameter's full name. Must return `original.length` numbers.
 */
export type ReinitFn = (name: string, original: Float64Array, shape: readonly number[], rng: Rng) => ArrayLike<number>;

export interface ModelRandomisationOptions extends CompareOptions {
  /** 'cascading' (default): layers randomised cumulatively from the top; 'independent': one layer at a time, the rest original. */
  mode?: 'cascading' | 'independent';
  /** Seed of the new weights (default 0). A parameter gets the same values in both modes. */
  seed?: number;
  /**
   * The layers (module paths), in the order they are randomised. Default: every module that
   * owns parameters, from the top (logits) down, i.e. in the reverse of the order the modules are
   * registered (the forward order for Sequential models).
   */
  layers?: string[];
  /**
   * 'normal' (default): each parameter <- N(0, s^2) with s the standard deviation of its original
   * values, so the randomised layer keeps the scale of the trained one (where the original is
   * constant, s is its root mean square: unit BatchNorm scales become N(0, 1), zero biases stay
   * zero). Or a function giving new values. Buffers (BatchNorm running statistics) are kept.
   */
  init?: 'normal' | ReinitFn;
}

/** Stable 32-bit FNV-1a of a string, for per-parameter seeds. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

const normalInit: ReinitFn = (_name, original, _shape, rng) => {
  const n = original.length;
  let mean = 0;
  for (const v of original) mean += v;
  mean /= n;
  let ss = 0, sq = 0;
  for (const v of original) {
    ss += (v - mean) ** 2;
    sq += v * v;
  }
  const s = ss > 0 ? Math.sqrt(ss / n) : Math.sqrt(sq / n);
  return Float64Array.from({ length: n }, () => s * rng.normal());
};

/** The parameters a module owns itself (not its children's), by local name. */
function ownParameters(m: Module): [string, Tensor][] {
  const pre = m.path ? `${m.path}.` : '';
  return m.namedParameters()
    .filter(([n]) => n.startsWith(pre) && !n.slice(pre.length).includes('.'))
    .map(([n, t]) => [n.slice(pre.length), t]);
}

/** Every module that owns parameters, from the top (logits) down. */
export function randomisableLayers(model: Module): string[] {
  return model.namedModules().filter(([, m]) => ownParameters(m).length > 0).map(([p]) => p).reverse();
}

/**
 * Mean of the finite values (items whose similarity is undefined, such as a constant map, are left
 * out); NaN when none is finite.
 */
function finiteMean(v: readonly number[]): number {
  let s = 0, k = 0;
  for (const x of v) if (Number.isFinite(x)) {
    s += x;
    k++;
  }
  return k ? s / k : NaN;
}

/** The explanation's batch size and per-item 2-D map size, with the channel count to reduce. */
function mapLayout(shape: readonly number[]): { n: number; c: number; h: number; w: number } {
  if (shape.length === 4) return { n: shape[0], c: shape[1], h: shape[2], w: shape[3] };
  if (shape.length === 3) return { n: shape[0], c: 1, h: shape[1], w: shape[2] };
  if (shape.length === 2) return { n: shape[0], c: 1, h: 1, w: shape[1] };
  throw new Error(`sanity checks: expected explanations shaped [N, C, H, W], [N, H, W] or [N, F], got ${fmtShape(shape)}`);
}

const COMPARE_KEYS = optionKeys<CompareOptions>()(['ssim']);
// h and w come from the maps' shape, so they are not the caller's to give.
const SSIM_KEYS = optionKeys<NonNullable<Exclude<CompareOptions['ssim'], false>>>()(['window', 'sigma', 'normalize', 'dataRange', 'k1', 'k2']);
const MODEL_RANDOMISATION_KEYS = optionKeys<ModelRandomisationOptions>()(['ssim', 'mode', 'seed', 'layers', 'init']);
const LABEL_RANDOMISATION_KEYS = optionKeys<LabelRandomisationOptions>()(['ssim', 'build', 'train', 'reference', 'epochs', 'batchSize', 'lr', 'seed', 'progress', 'returnModels']);

/** The `ssim` option of the comparisons: false, or SSIM's own options other than h and w. */
function checkSsimOption(op: string, v: CompareOptions['ssim']): void {
  if (v === undefined || v === false) return;
  checkOptions(`${op}: option 'ssim'`, v, SSIM_KEYS);
}

/**
 * Compare two batches of explanations of the same shape, item by item. For images [N, C, H, W]
 * the channels are reduced first, as the paper visualises its maps: summed for the signed map
 * (Spearman), absolute values summed for the absolute map (Spearman of |.|, SSIM). [N, H, W] maps
 * are used as they are; [N, F] ones as 1 x F maps (SSIM needs `ssim: false` or `ssim: { window: 1 }` there).
 */
export function compareExplanations(a: ArrayLike<number>, b: ArrayLike<number>, shape: readonly number[], opts: CompareOptions = {}): Comparison {
  checkOptions('compareExplanations', opts, COMPARE_KEYS);
  checkSsimOption('compareExplanations', opts.ssim);
  return compareMaps(a, b, shape, opts.ssim);
}

function compareMaps(a: ArrayLike<number>, b: ArrayLike<number>, shape: readonly number[], ssimOpts: CompareOptions['ssim']): Comparison {
  const { n, c, h, w } = mapLayout(shape);
  const per = c * h * w, hw = h * w;
  if (a.length !== n * per || b.length !== n * per) throw new Error(`compareExplanations: shape ${fmtShape(shape)} holds ${n * per} values, got ${a.length} and ${b.length}`);
  const out: SimilarityPerItem = { spearman: [], spearmanAbs: [], ssim: [] };
  const signedA = new Float64Array(hw), signedB = new Float64Array(hw), absA = new Float64Array(hw), absB = new Float64Array(hw);
  for (let k = 0; k < n; k++) {
    signedA.fill(0);
    signedB.fill(0);
    absA.fill(0);
    absB.fill(0);
    for (let ch = 0; ch < c; ch++) {
      const o = k * per + ch * hw;
      for (let i = 0; i < hw; i++) {
        signedA[i] += a[o + i];
        signedB[i] += b[o + i];
        absA[i] += Math.abs(a[o + i]);
        absB[i] += Math.abs(b[o + i]);
      }
    }
    out.spearman.push(spearman(signedA, signedB));
    out.spearmanAbs.push(spearman(absA, absB));
    out.ssim.push(ssimOpts === false ? NaN : ssim(absA, absB, { ...ssimOpts, h, w }));
  }
  return { spearman: finiteMean(out.spearman), spearmanAbs: finiteMean(out.spearmanAbs), ssim: finiteMean(out.ssim), perItem: out };
}

/** Run the explainer, read its result to the host and dispose the tensor. */
async function explainToHost(explain: ExplainFn, model: Module, x: Tensor): Promise<{ values: Float64Array; shape: number[] }> {
  const t = await explain(model, x);
  if (!(t instanceof bl.Tensor)) throw new Error(`sanity checks: the explainer must resolve to a Tensor, got ${t === null ? 'null' : typeof t}`);
  try {
    return { values: Float64Array.from(await t.data()), shape: [...t.shape] };
  } finally {
    t.dispose();
  }
}

/**
 * Re-initialise every parameter of `layer`, swapped in with Module.swapTensor: each undo handle
 * (pushed onto `undos` as soon as its swap is made) puts the very same tensor object back and
 * disposes the new one. Returns the parameters' full names.
 */
async function randomiseLayer(model: Module, layer: string, seed: number, init: ReinitFn, undos: (() => void)[]): Promise<string[]> {
  const m = model.module(layer);
  const names: string[] = [];
  for (const [local, t] of ownParameters(m)) {
    const full = m.path ? `${m.path}.${local}` : local;
    const original = Float64Array.from(await t.data());
    const rng = new Rng((fnv1a(full) ^ Math.imul(seed, 0x9e3779b1)) >>> 0);
    const values = init(full, original, t.shape, rng);
    if (values.length !== original.length) throw new Error(`modelRandomisation: init returned ${values.length} values for '${full}' ${fmtShape(t.shape)}, expected ${original.length}`);
    undos.push(m.swapTensor(local, bl.tensor(values, t.shape, t.backend)));
    names.push(full);
  }
  return names;
}

/**
 * Model parameter randomisation test (Adebayo et al. 2018, Sec. 3.1). Explains `x` with the
 * model as it is, then re-initialises the layers in `layers` (default: every layer with
 * parameters, from the logits down) and explains again after each step, comparing with the
 * original explanation. 'cascading' keeps earlier layers randomised; 'independent' restores each
 * layer before the next. The model's parameters are restored afterwards, bit-identical and as the
 * same tensor objects, also when the explainer throws. The tensors `explain` returns are disposed.
 *
 *   const rows = await modelRandomisation(model, x, (m, x) => ex.saliency(m, x, { target: 'predicted' }));
 *   // [{ layer: 'classifier', spearman, spearmanAbs, ssim, perItem, parameters }, ...]
 */
export async function modelRandomisation(model: Module, x: Tensor, explain: ExplainFn, opts: ModelRandomisationOptions = {}): Promise<RandomisationResult[]> {
  if (!(model instanceof Module)) throw new Error('modelRandomisation: model must be a backlight Module (its parameters are re-initialised)');
  if (!(x instanceof bl.Tensor)) throw new Error('modelRandomisation: x must be a Tensor');
  checkOptions('modelRandomisation', opts, MODEL_RANDOMISATION_KEYS);
  checkSsimOption('modelRandomisation', opts.ssim);
  const mode = opts.mode ?? 'cascading';
  if (mode !== 'cascading' && mode !== 'independent') throw new Error(`modelRandomisation: mode must be 'cascading' or 'independent', got '${String(mode)}'`);
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed)) throw new Error(`modelRandomisation: seed must be an integer, got ${String(opts.seed)}`);
  if (opts.layers !== undefined && (!Array.isArray(opts.layers) || opts.layers.some((l) => typeof l !== 'string'))) {
    throw new Error(`modelRandomisation: layers must be an array of layer names, got ${JSON.stringify(opts.layers)}`);
  }
  const init = opts.init === undefined || opts.init === 'normal' ? normalInit : opts.init;
  if (typeof init !== 'function') throw new Error(`modelRandomisation: init must be 'normal' or a function, got '${String(opts.init)}'`);
  const candidates = randomisableLayers(model);
  const layers = opts.layers ?? candidates;
  if (layers.length === 0) throw new Error(opts.layers ? 'modelRandomisation: layers is empty' : 'modelRandomisation: the model has no parameters to randomise');
  for (const l of layers) {
    if (!candidates.includes(l)) throw new Error(`modelRandomisation: '${l}' is not a layer with parameters; layers with parameters (top down): ${candidates.join(', ')}`);
  }
  if (new Set(layers).size !== layers.length) throw new Error(`modelRandomisation: layers lists a layer twice: ${layers.join(', ')}`);

  const original = await explainToHost(explain, model, x);
  const compare = (b: { values: Float64Array; shape: number[] }) => {
    if (b.shape.join() !== original.shape.join()) throw new Error(`modelRandomisation: the explanation of the randomised model has shape ${fmtShape(b.shape)}, the original ${fmtShape(original.shape)}`);
    return compareMaps(original.values, b.values, original.shape, opts.ssim);
  };
  // Fail on a map the SSIM window does not fit before any randomisation.
  compareMaps(original.values, original.values, original.shape, opts.ssim);

  const results: RandomisationResult[] = [];
  const undos: (() => void)[] = [];
  const restore = () => {
    while (undos.length) undos.pop()!();
  };
  try {
    for (const layer of layers) {
      const parameters = await randomiseLayer(model, layer, seed, init, undos);
      const e = await explainToHost(explain, model, x);
      results.push({ layer, parameters, ...compare(e) });
      if (mode === 'independent') restore();
    }
  } finally {
    restore();
  }
  return results;
}

export interface LabelRandomisationOptions extends CompareOptions {
  /** The architecture: a fresh, seeded model (e.g. `digitsCnn` of models/zoo/architectures.ts). */
  build: (seed: number) => Module;
  /** The training set; its labels are permuted for the randomised model. */
  train: Dataset;
  /**
   * The model trained on the true labels. Default: trained here with the same recipe (build(seed),
   * the same epochs, optimiser and shuffle), so that the two differ only in the labels.
   */
  reference?: Module;
  /** Training recipe for both models: Adam, default 5 epochs, batch 32, learning rate 0.01. */
  epochs?: number;
  batchSize?: number;
  lr?: number;
  /** Seed of the label permutation, the initial weights and the shuffle (default 0). */
  seed?: number;
  /** fit's progress lines (default false). */
  progress?: boolean | 'epoch';
  /** Return the trained models (the caller then disposes them); default false: they are disposed. */
  returnModels?: boolean;
}

export interface LabelRandomisationResult extends Comparison {
  /** Fraction of training labels the permutation changed. */
  labelsChanged: number;
  /** Training accuracy at the last epoch: the true-label model (null when `reference` was given) and the permuted-label one (what it memorised). */
  trainAccuracy: { reference: number | null; randomLabels: number };
  models?: { reference: Module; randomLabels: Module };
}

async function trainOn(opts: LabelRandomisationOptions, data: Dataset): Promise<{ model: Module; accuracy: number }> {
  const seed = opts.seed ?? 0;
  const model = opts.build(seed);
  const optimizer = new Adam({ lr: opts.lr ?? 0.01 });
  try {
    const logs = await fit(model, data, { epochs: opts.epochs ?? 5, batchSize: opts.batchSize ?? 32, optimizer, seed, progress: opts.progress ?? false });
    return { model, accuracy: logs[logs.length - 1].accuracy };
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    optimizer.dispose();
  }
}

/**
 * Data randomisation test (Adebayo et al. 2018, Sec. 3.2): train the architecture on the training
 * set with its labels randomly permuted, and compare its explanations of `x` with those of a model
 * trained on the true labels. The paper trains until the permuted labels are memorised (over 95%
 * training accuracy); this runs the project's `fit` for a few epochs (default 5), which is enough
 * for the true-label model to learn and keeps the check cheap, while the permuted-label model stays
 * near chance: a model that has learned nothing transferable. Its training accuracy is reported so
 * that a caller can ask for more epochs.
 */
export async function labelRandomisation(x: Tensor, explain: ExplainFn, opts: LabelRandomisationOptions): Promise<LabelRandomisationResult> {
  if (!(x instanceof bl.Tensor)) throw new Error('labelRandomisation: x must be a Tensor');
  checkOptions('labelRandomisation', opts, LABEL_RANDOMISATION_KEYS);
  if (typeof opts?.build !== 'function') throw new Error('labelRandomisation: build (seed) => Module is required');
  checkSsimOption('labelRandomisation', opts.ssim);
  // Checked here, before two trainings, rather than by fit at the first epoch.
  for (const [k, v] of [['epochs', opts.epochs], ['batchSize', opts.batchSize]] as const) {
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 1)) throw new Error(`labelRandomisation: ${k} must be a positive integer, got ${String(v)}`);
  }
  if (opts.lr !== undefined && !(typeof opts.lr === 'number' && opts.lr > 0 && Number.isFinite(opts.lr))) throw new Error(`labelRandomisation: lr must be a finite number > 0, got ${String(opts.lr)}`);
  if (opts.seed !== undefined && !(Number.isInteger(opts.seed) && opts.seed >= 0)) throw new Error(`labelRandomisation: seed must be a non-negative integer, got ${String(opts.seed)}`);
  const d = opts.train;
  if (!d || !(d.y instanceof Float32Array) || d.n < 2) throw new Error('labelRandomisation: train must be a Dataset with at least 2 samples');
  const seed = opts.seed ?? 0;
  const perm = shuffled(d.n, seed * 7919 + 17);
  const y = Float32Array.from({ length: d.n }, (_, i) => d.y[perm[i]]);
  let changed = 0;
  for (let i = 0; i < d.n; i++) if (y[i] !== d.y[i]) changed++;
  const permuted: Dataset = { ...d, y };

  const trained: Module[] = [];
  try {
    let reference = opts.reference, refAccuracy: number | null = null;
    if (!reference) {
      const r = await trainOn(opts, d);
      trained.push(r.model);
      reference = r.model;
      refAccuracy = r.accuracy;
    }
    const rnd = await trainOn(opts, permuted);
    trained.push(rnd.model);
    const a = await explainToHost(explain, reference, x);
    const b = await explainToHost(explain, rnd.model, x);
    if (a.shape.join() !== b.shape.join()) throw new Error(`labelRandomisation: explanations differ in shape (${fmtShape(a.shape)} vs ${fmtShape(b.shape)})`);
    const cmp = compareMaps(a.values, b.values, a.shape, opts.ssim);
    const result: LabelRandomisationResult = { ...cmp, labelsChanged: changed / d.n, trainAccuracy: { reference: refAccuracy, randomLabels: rnd.accuracy } };
    if (opts.returnModels) {
      result.models = { reference, randomLabels: rnd.model };
      trained.length = 0; // the caller owns them now
    }
    return result;
  } finally {
    for (const m of trained) m.dispose();
  }
}


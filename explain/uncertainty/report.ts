// The calibration and uncertainty sections of an evaluation report (`backlight evaluate`):
// calibrationReport fits a temperature on a validation split and measures ECE on a test split
// before and after (Guo et al. 2017); uncertaintyReport compares MC dropout's uncertainty
// (Gal & Ghahramani 2016) on in-distribution inputs with out-of-distribution ones.
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { Module } from '../../models/module.ts';
import type { Dataset } from '../../models/train.ts';
import { checkInput, positiveInt } from '../common.ts';
import { checkOptions, optionKeys } from '../options.ts';
import { binConfidences, fitTemperatureDetails, nllAtTemperature, softmaxHost, type ReliabilityBin } from './calibration.ts';
import { dropoutLayers, describeLayers, mcDropout } from './mc-dropout.ts';
import { ensemble } from './ensemble.ts';
import { reconstructionError } from './autoencoder.ts';
import type { PredictiveUncertainty } from './predictive.ts';
import { checkLabels, hostValues } from './util.ts';

/** Labelled inputs: tensors ({ x: [N, ...], y: [N] class indices }) or a models/train.ts Dataset. */
export type LabelledData = { x: Tensor; y: Tensor | ArrayLike<number> } | Dataset;

/** Logits of a model (eval mode, restored) on labelled data, in batches, on the host as float64. */
export async function predictLogits(op: string, model: Module | ((x: Tensor) => Tensor), data: LabelledData, batchSize = 256): Promise<{ logits: Float64Array; labels: Float64Array; n: number; c: number }> {
  const isDataset = (d: LabelledData): d is Dataset => d.x instanceof Float32Array;
  let n: number, item: number[], rowsOf: (s: number, k: number) => Tensor;
  let labels: Float64Array;
  if (isDataset(data)) {
    n = data.n;
    item = data.sampleShape;
    const per = item.reduce((a, b) => a * b, 1);
    // On the model's backend (its parameters'), else the default one.
    const backend = model instanceof Module ? model.parameters()[0]?.backend : undefined;
    rowsOf = (s, k) => bl.tensor(data.x.subarray(s * per, (s + k) * per), [k, ...item], backend);
    labels = Float64Array.from(data.y);
  } else {
    if (!data || typeof data !== 'object') throw new Error(`${op}: data must be { x, y } or a Dataset, got ${data === null ? 'null' : typeof data}`);
    const x = checkInput(op, data.x);
    n = x.shape[0];
    item = x.shape.slice(1);
    rowsOf = (s, k) => bl.slice(x, [s, ...item.map(() => 0)], [k, ...item]);
    labels = await hostValues(op, 'y', data.y);
  }
  if (labels.length !== n) throw new Error(`${op}: ${n} inputs but ${labels.length} labels`);
  const isModule = model instanceof Module;
  const was = isModule ? model.namedModules().map(([, m]) => [m, m.training] as const) : [];
  if (isModule) model.eval();
  const chunks: Float64Array[] = [];
  let c = -1;
  try {
    for (let s = 0; s < n; s += batchSize) {
      const k = Math.min(batchSize, n - s);
      const out = bl.tidy(() => {
        const o = isModule ? model.call(rowsOf(s, k)) : model(rowsOf(s, k));
        if (o.rank !== 2 || o.shape[0] !== k || o.shape[1] < 2) throw new Error(`${op}: expected the model to return class logits [${k}, C] with C >= 2, got [${o.shape.join(', ')}]`);
        return o;
      });
      c = out.shape[1];
      chunks.push(Float64Array.from(await out.data()));
      out.dispose();
    }
  } finally {
    for (const [m, t] of was) m.training = t;
  }
  const logits = new Float64Array(n * c);
  let o = 0;
  for (const ch of chunks) {
    logits.set(ch, o);
    o += ch.length;
  }
  for (let i = 0; i < logits.length; i++) {
    if (!Number.isFinite(logits[i])) throw new Error(`${op}: the model returned a non-finite logit (${logits[i]}) for item ${Math.floor(i / c)}`);
  }
  checkLabels(op, labels, c);
  return { logits, labels, n, c };
}

export interface CalibrationReport {
  /** ECE on the test split at T = 1 (the model as it is). */
  ece: number;
  /** ECE on the test split after dividing the logits by the temperature fitted on the validation split. */
  ece_after_temperature: number;
  temperature: number;
  mce: number;
  mce_after_temperature: number;
  /** Mean test NLL before and after temperature scaling. */
  nll: number;
  nll_after_temperature: number;
  /** Test accuracy (temperature scaling leaves it unchanged). */
  accuracy: number;
  /** True when the fitted temperature sits at an end of the search range (see fitTemperature). */
  temperature_at_bound: boolean;
  bins_before: ReliabilityBin[];
  bins_after: ReliabilityBin[];
  n_val: number;
  n_test: number;
}

export interface CalibrationReportOptions {
  /** Confidence bins (default 15). */
  bins?: number;
  /** Items per model call (default 256). */
  batchSize?: number;
}

const CALIBRATION_KEYS = optionKeys<CalibrationReportOptions>()(['bins', 'batchSize']);
const UNCERTAINTY_KEYS = optionKeys<UncertaintyReportOptions>()(['samples', 'seed', 'batchSize', 'members', 'autoencoder']);

/** Temperature scaling fitted on `val`, evaluated on `test`: ECE, MCE, NLL and bins before and after. */
export async function calibrationReport(model: Module | ((x: Tensor) => Tensor), val: LabelledData, test: LabelledData, opts: CalibrationReportOptions = {}): Promise<CalibrationReport> {
  const op = 'calibrationReport';
  checkOptions(op, opts, CALIBRATION_KEYS);
  const bs = positiveInt(op, 'batchSize', opts.batchSize, 256);
  const bins = positiveInt(op, 'bins', opts.bins, 15);
  const v = await predictLogits(`${op} (val)`, model, val, bs);
  const t = await predictLogits(`${op} (test)`, model, test, bs);
  if (v.c !== t.c) throw new Error(`${op}: the model gives ${v.c} classes on val but ${t.c} on test`);
  const fit = await fitTemperatureDetails(v.logits, v.labels);
  const T = fit.temperature;
  const atT = (temp: number) => {
    const p = softmaxHost(t.logits, t.n, t.c, temp);
    const conf = new Float64Array(t.n), correct = new Uint8Array(t.n);
    let nll = 0;
    for (let i = 0; i < t.n; i++) {
      let best = 0;
      for (let j = 1; j < t.c; j++) if (p[i * t.c + j] > p[i * t.c + best]) best = j;
      conf[i] = p[i * t.c + best];
      correct[i] = best === t.labels[i] ? 1 : 0;
    }
    // the exact log-sum-exp NLL the temperature fit minimises (no underflow at confident mistakes)
    return { ...binConfidences(conf, correct, bins), nll: nllAtTemperature(t.logits, t.labels, t.c, temp) };
  };
  const before = atT(1), after = atT(T);
  return {
    ece: before.ece,
    ece_after_temperature: after.ece,
    temperature: T,
    mce: before.mce,
    mce_after_temperature: after.mce,
    nll: before.nll,
    nll_after_temperature: after.nll,
    accuracy: before.accuracy,
    temperature_at_bound: fit.atBound,
    bins_before: before.bins,
    bins_after: after.bins,
    n_val: v.n,
    n_test: t.n,
  };
}

/**
 * Area under the ROC curve of a score separating `ood` (positives) from `inDist` (negatives):
 * P(score_ood > score_in) + P(equal) / 2, the Mann-Whitney statistic, with ties at average ranks.
 * 0.5 is chance; 1 means every out-of-distribution item scores above every in-distribution one
 * (the usual OOD-detection figure, Hendrycks & Gimpel 2017).
 */
export function auroc(inDist: ArrayLike<number>, ood: ArrayLike<number>): number {
  const n = inDist.length, m = ood.length;
  if (n < 1 || m < 1) throw new Error(`auroc: needs at least one score on each side, got ${n} in-distribution and ${m} out-of-distribution`);
  const all: [number, number][] = [];
  for (let i = 0; i < n; i++) all.push([inDist[i], 0]);
  for (let i = 0; i < m; i++) all.push([ood[i], 1]);
  for (const [v] of all) if (Number.isNaN(v)) throw new Error('auroc: a score is NaN');
  all.sort((a, b) => a[0] - b[0]);
  let rankSum = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j + 1 < all.length && all[j + 1][0] === all[i][0]) j++;
    const r = (i + j) / 2 + 1; // average rank of the tie group (1-based)
    for (let k = i; k <= j; k++) if (all[k][1] === 1) rankSum += r;
    i = j + 1;
  }
  return (rankSum - (m * (m + 1)) / 2) / (n * m);
}

/** Predictive statistics of in- vs out-of-distribution inputs (MC dropout, or an ensemble). */
export interface PredictiveSummary {
  in_mean_entropy: number;
  ood_mean_entropy: number;
  in_mean_mi: number;
  ood_mean_mi: number;
  /** Mean over items and classes of the std of the class probabilities. */
  in_mean_std: number;
  ood_mean_std: number;
  /** AUROC of predictive entropy / mutual information as a detector of the ood inputs (0.5 = chance). */
  auroc_entropy: number;
  auroc_mi: number;
  samples: number;
  n_in: number;
  n_ood: number;
}

/** MC dropout's section of the report. */
export type McDropoutSummary = PredictiveSummary;

export interface ReconstructionSummary {
  in_mean_error: number;
  ood_mean_error: number;
  /** AUROC of the reconstruction error as a detector of the ood inputs. */
  auroc: number;
}

export interface UncertaintyReport {
  /** MC dropout statistics, or null when the model has no (active) Dropout layer (then `reason` says why). */
  mc_dropout: McDropoutSummary | null;
  reason?: string;
  /** With `members`: the deep ensemble's statistics. */
  ensemble?: PredictiveSummary;
  /** With `autoencoder`: its reconstruction error (the unfamiliar-input score). */
  reconstruction?: ReconstructionSummary;
}

export interface UncertaintyReportOptions {
  /** MC dropout samples (default 32). */
  samples?: number;
  seed?: number;
  batchSize?: number;
  /** Ensemble members to compare as well (e.g. from trainEnsemble). */
  members?: readonly (Module | ((x: Tensor) => Tensor))[];
  /** An autoencoder (e.g. from trainAutoencoder) whose reconstruction error to compare as well. */
  autoencoder?: Module | ((x: Tensor) => Tensor);
}

async function summarise(run: (x: Tensor) => Promise<PredictiveUncertainty>, inDist: Tensor, ood: Tensor): Promise<PredictiveSummary> {
  const one = async (x: Tensor) => {
    const r = await run(x);
    try {
      return { h: await r.entropy.data(), mi: await r.mutualInformation.data(), std: mean(await r.std.data()), samples: r.samples };
    } finally {
      [r.mean, r.std, r.entropy, r.mutualInformation].forEach((t) => t.dispose());
    }
  };
  const a = await one(inDist), b = await one(ood);
  return {
    in_mean_entropy: mean(a.h),
    ood_mean_entropy: mean(b.h),
    in_mean_mi: mean(a.mi),
    ood_mean_mi: mean(b.mi),
    in_mean_std: a.std,
    ood_mean_std: b.std,
    auroc_entropy: auroc(a.h, b.h),
    auroc_mi: auroc(a.mi, b.mi),
    samples: a.samples,
    n_in: inDist.shape[0],
    n_ood: ood.shape[0],
  };
}

const mean = (d: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < d.length; i++) s += d[i];
  return s / d.length;
};

/**
 * Uncertainty on in-distribution inputs vs out-of-distribution ones (noise, another data set;
 * see `oodInputs`): MC dropout's mean predictive entropy, mutual information and probability std
 * of each, and the AUROC of entropy / MI as an OOD detector; the same for an ensemble (`members`)
 * and an autoencoder's reconstruction error (`autoencoder`) when given. A model without Dropout
 * gives `{ mc_dropout: null, reason }` instead of an error.
 */
export async function uncertaintyReport(model: Module | ((x: Tensor) => Tensor), inDist: Tensor, ood: Tensor, opts: UncertaintyReportOptions = {}): Promise<UncertaintyReport> {
  const op = 'uncertaintyReport';
  checkOptions(op, opts, UNCERTAINTY_KEYS);
  // Checked here, not only by mcDropout: a model without Dropout skips it, and its numbers
  // would otherwise go unchecked (samples: 0 accepted silently).
  positiveInt(op, 'samples', opts.samples, 32);
  positiveInt(op, 'batchSize', opts.batchSize, 256);
  if (opts.seed !== undefined && !(Number.isInteger(opts.seed) && opts.seed >= 0)) throw new Error(`${op}: seed must be a non-negative integer, got ${String(opts.seed)}`);
  if (opts.members !== undefined && !Array.isArray(opts.members)) throw new Error(`${op}: members must be an array of models, got ${typeof opts.members}`);
  checkInput(`${op} (inDist)`, inDist);
  checkInput(`${op} (ood)`, ood);
  if (inDist.shape.slice(1).join() !== ood.shape.slice(1).join()) throw new Error(`${op}: inDist items are [${inDist.shape.slice(1)}] but ood items are [${ood.shape.slice(1)}]`);
  const out: UncertaintyReport = { mc_dropout: null };
  const drops = model instanceof Module ? dropoutLayers(model) : [];
  if (!(model instanceof Module)) out.reason = 'the model is not a backlight Module (MC dropout needs Dropout layers to switch on)';
  else if (drops.length === 0) out.reason = `the model has no Dropout layer (layers: ${describeLayers(model)})`;
  else if (drops.every(([, d]) => d.p === 0)) out.reason = `every Dropout layer has p = 0 (${drops.map(([p]) => p).join(', ')})`;
  else {
    const o = { samples: opts.samples, seed: opts.seed, batchSize: opts.batchSize };
    out.mc_dropout = await summarise((x) => mcDropout(model, x, o), inDist, ood);
  }
  if (opts.members) out.ensemble = await summarise((x) => ensemble(opts.members!, x, { batchSize: opts.batchSize }), inDist, ood);
  if (opts.autoencoder) {
    const err = async (x: Tensor) => {
      const e = await reconstructionError(opts.autoencoder!, x, { batchSize: opts.batchSize });
      try {
        return await e.data();
      } finally {
        e.dispose();
      }
    };
    const a = await err(inDist), b = await err(ood);
    out.reconstruction = { in_mean_error: mean(a), ood_mean_error: mean(b), auroc: auroc(a, b) };
  }
  return out;
}

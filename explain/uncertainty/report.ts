// The calibration and uncertainty sections of an evaluation report (`backlight evaluate`):
// calibrationReport fits a temperature on a validation split and measures ECE on a test split
// before and after (Guo et al. 2017); uncertaintyReport compares MC dropout's uncertainty
// (Gal & Ghahramani 2016) on in-distribution inputs with out-of-distribution ones.
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { Module } from '../../models/module.ts';
import type { Dataset } from '../../models/train.ts';
import { checkInput, positiveInt } from '../common.ts';
import { binConfidences, fitTemperatureDetails, softmaxHost, type ReliabilityBin } from './calibration.ts';
import { dropoutLayers, describeLayers, mcDropout } from './mc-dropout.ts';
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

/** Temperature scaling fitted on `val`, evaluated on `test`: ECE, MCE, NLL and bins before and after. */
export async function calibrationReport(model: Module | ((x: Tensor) => Tensor), val: LabelledData, test: LabelledData, opts: CalibrationReportOptions = {}): Promise<CalibrationReport> {
  const op = 'calibrationReport';
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
      nll -= Math.log(Math.max(p[i * t.c + t.labels[i]], Number.MIN_VALUE));
    }
    return { ...binConfidences(conf, correct, bins), nll: nll / t.n };
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

export interface McDropoutSummary {
  in_mean_entropy: number;
  ood_mean_entropy: number;
  in_mean_mi: number;
  ood_mean_mi: number;
  /** Mean over items and classes of the std of the class probabilities. */
  in_mean_std: number;
  ood_mean_std: number;
  samples: number;
  n_in: number;
  n_ood: number;
}

export interface UncertaintyReport {
  /** MC dropout statistics, or null when the model has no (active) Dropout layer (then `reason` says why). */
  mc_dropout: McDropoutSummary | null;
  reason?: string;
}

export interface UncertaintyReportOptions {
  samples?: number;
  seed?: number;
  batchSize?: number;
}

const meanOf = async (t: Tensor) => {
  const d = await t.data();
  let s = 0;
  for (const v of d) s += v;
  return s / d.length;
};

/**
 * MC dropout uncertainty on in-distribution inputs vs out-of-distribution ones (noise, another
 * data set): mean predictive entropy, mutual information and probability std of each. A model
 * without Dropout gives `{ mc_dropout: null, reason }` instead of an error.
 */
export async function uncertaintyReport(model: Module, inDist: Tensor, ood: Tensor, opts: UncertaintyReportOptions = {}): Promise<UncertaintyReport> {
  const op = 'uncertaintyReport';
  if (!(model instanceof Module)) return { mc_dropout: null, reason: 'the model is not a backlight Module (MC dropout needs Dropout layers to switch on)' };
  checkInput(`${op} (inDist)`, inDist);
  checkInput(`${op} (ood)`, ood);
  if (inDist.shape.slice(1).join() !== ood.shape.slice(1).join()) throw new Error(`${op}: inDist items are [${inDist.shape.slice(1)}] but ood items are [${ood.shape.slice(1)}]`);
  const drops = dropoutLayers(model);
  if (drops.length === 0) return { mc_dropout: null, reason: `the model has no Dropout layer (layers: ${describeLayers(model)})` };
  if (drops.every(([, d]) => d.p === 0)) return { mc_dropout: null, reason: `every Dropout layer has p = 0 (${drops.map(([p]) => p).join(', ')})` };
  const o = { samples: opts.samples, seed: opts.seed, batchSize: opts.batchSize };
  const summarise = async (x: Tensor) => {
    const r = await mcDropout(model, x, o);
    try {
      return { h: await meanOf(r.entropy), mi: await meanOf(r.mutualInformation), std: await meanOf(r.std), samples: r.samples };
    } finally {
      [r.mean, r.std, r.entropy, r.mutualInformation].forEach((t) => t.dispose());
    }
  };
  const a = await summarise(inDist), b = await summarise(ood);
  return {
    mc_dropout: {
      in_mean_entropy: a.h,
      ood_mean_entropy: b.h,
      in_mean_mi: a.mi,
      ood_mean_mi: b.mi,
      in_mean_std: a.std,
      ood_mean_std: b.std,
      samples: a.samples,
      n_in: inDist.shape[0],
      n_ood: ood.shape[0],
    },
  };
}

// Monte Carlo dropout (Gal & Ghahramani 2016, "Dropout as a Bayesian approximation: representing
// model uncertainty in deep learning", ICML): keep dropout on at test time and treat K stochastic
// forward passes as samples from an approximate posterior predictive. The K passes run batched:
// each item is repeated K times along the batch axis (repeatEach), so one model call evaluates K
// different dropout masks per item, chunked so that no call exceeds `batchSize` rows.
//
// Masks. `bl.dropout` draws one Philox uniform per element of the whole [rows, ...] activation
// (the counter is the element's index), so every row, i.e. every (item, sample) pair, gets its
// own mask. `Dropout` itself seeds each call with `seed + 1000003 * calls`, which depends on how
// often the layer ran before; for reproducible samples, mcDropout gives every Dropout layer a seed
// derived from (the `seed` option, the layer's position, the model call) for the duration of the
// call (an instance-level forward, removed afterwards, also when the model throws), and sets
// `mcDropout = true` as the layer's own flag for inference-time dropout. The result is the same for
// the same seed and batchSize on a backend; another batchSize regroups rows and draws other masks.
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { Module } from '../../models/module.ts';
import { Dropout } from '../../models/layers.ts';
import { checkInput, positiveInt, repeatEach } from '../common.ts';
import { checkOptions, optionKeys } from '../options.ts';
import { probabilitiesOf, type PredictiveUncertainty } from './predictive.ts';
import { sampledPredictive } from './sampled-predictive.ts';
import { checkFinite, chunkPlan } from './util.ts';

export interface McDropoutOptions {
  /** Stochastic forward passes per item (default 32). */
  samples?: number;
  /** Seed of the dropout masks (default 0). */
  seed?: number;
  /** Most rows (items x samples) per model call (default 1024). */
  batchSize?: number;
  /** What the model returns: class scores to softmax ('logits', default) or probabilities ('probs'). */
  outputs?: 'logits' | 'probs';
}

/** The Dropout layers of a model, with their paths. */
export function dropoutLayers(model: Module): [string, Dropout][] {
  return model.namedModules().filter((e): e is [string, Dropout] => e[1] instanceof Dropout);
}

/** A layer listing for error messages: 'standardize (Standardize), features.0 (Linear), ...'. */
export function describeLayers(model: Module): string {
  const ls = model.namedModules().filter(([p]) => p).map(([p, m]) => `${p} (${m.kind})`);
  return ls.length ? ls.join(', ') : `none (the model is a single ${model.kind})`;
}

/** A Philox seed for (seed, layer, call): a 32-bit hash of the three, plus the seed's low 20 bits above it. */
export function dropoutSeed(seed: number, layer: number, call: number): number {
  let h = Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(layer + 0x632be5ab, 0xc2b2ae35) ^ Math.imul(call + 0x27d4eb2f, 0x165667b1);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return ((h ^ (h >>> 16)) >>> 0) + (seed % 2 ** 20) * 2 ** 32;
}

const MC_DROPOUT_KEYS = optionKeys<McDropoutOptions>()(['samples', 'seed', 'batchSize', 'outputs']);

/**
 * MC dropout predictive uncertainty of a classifier: mean and std of the softmax probabilities
 * over `samples` dropout masks [N, C], predictive entropy H[mean p] [N] and mutual information
 * H[mean p] - mean H[p] (BALD) [N], in nats. The model must contain at least one Dropout layer;
 * it runs in eval mode otherwise (BatchNorm uses its running statistics), and its modes and
 * Dropout flags are restored afterwards. The returned tensors are the caller's; x is not disposed.
 */
export async function mcDropout(model: Module, x: Tensor, opts: McDropoutOptions = {}): Promise<PredictiveUncertainty> {
  const op = 'mcDropout';
  if (!(model instanceof Module)) throw new Error(`${op}: model must be a backlight Module with Dropout layers, got ${typeof model === 'function' ? 'a function' : typeof model}`);
  checkOptions(op, opts, MC_DROPOUT_KEYS);
  checkInput(op, x);
  const K = positiveInt(op, 'samples', opts.samples, 32);
  const rows = positiveInt(op, 'batchSize', opts.batchSize, 1024);
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`${op}: seed must be a non-negative integer, got ${String(opts.seed)}`);
  const outputs = opts.outputs ?? 'logits';
  if (outputs !== 'logits' && outputs !== 'probs') throw new Error(`${op}: outputs must be 'logits' or 'probs', got ${String(opts.outputs)}`);
  const drops = dropoutLayers(model);
  if (drops.length === 0) throw new Error(`${op}: the model has no Dropout layer, so MC dropout has nothing to sample (layers: ${describeLayers(model)}); use ensemble() or a Bayesian layer (models/bayes.ts) instead`);
  const active = drops.filter(([, d]) => d.p > 0);
  if (active.length === 0) throw new Error(`${op}: every Dropout layer has p = 0 (${drops.map(([p]) => p).join(', ')}), so all samples would be identical`);

  const N = x.shape[0];
  const wasTraining = model.namedModules().map(([, m]) => [m, m.training] as const);
  const flags = drops.map(([, d]) => d.mcDropout);
  let call = 0;
  model.eval();
  drops.forEach(([, d], j) => {
    d.mcDropout = true;
    // Instance-level forward: the same op as Dropout.forward, with a seed of our own (see the header).
    (d as { forward: (t: Tensor) => Tensor }).forward = (t: Tensor) => bl.dropout(t, { p: d.p, active: true, seed: dropoutSeed(seed, j, call) });
  });
  let r: PredictiveUncertainty;
  try {
    r = sampledPredictive(chunkPlan(N, K, rows), K, (start, count, kb) => {
      const xs = bl.slice(x, [start, ...x.shape.slice(1).map(() => 0)], [count, ...x.shape.slice(1)]);
      let out: Tensor;
      try {
        out = model.call(repeatEach(bl.stopGradient(xs), kb));
      } catch (e) {
        throw new Error(`${op}: the model failed on a batch of ${count} item(s) x ${kb} samples (${count * kb} rows): ${(e as Error).message}`, { cause: e });
      }
      call++;
      const p = probabilitiesOf(op, out, count * kb, outputs);
      return bl.reshape(p, [count, kb, p.shape[1]]);
    });
  } finally {
    drops.forEach(([, d], j) => {
      delete (d as { forward?: unknown }).forward;
      d.mcDropout = flags[j];
    });
    for (const [m, t] of wasTraining) m.training = t;
  }
  await checkFinite(op, r);
  return r;
}

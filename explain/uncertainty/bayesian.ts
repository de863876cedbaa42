// The posterior predictive of a Bayes-by-backprop network (models/bayes.ts; Blundell et al. 2015):
// S weight samples from the variational posterior, each one network evaluated on every item,
// averaged in probability space; the same statistics as MC dropout and ensembles.
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { Module } from '../../models/module.ts';
import { bayesLayers } from '../../models/bayes.ts';
import { checkInput, positiveInt } from '../common.ts';
import { checkOptions, optionKeys } from '../options.ts';
import { describeLayers, dropoutSeed } from './mc-dropout.ts';
import { probabilitiesOf, type PredictiveUncertainty } from './predictive.ts';
import { itemChunks, sampledPredictive } from './sampled-predictive.ts';
import { checkFinite } from './util.ts';

export interface BayesPredictiveOptions {
  /** Weight samples (default 16). */
  samples?: number;
  /** Seed of the weight samples (default 0): sample s uses the same weights for every item and chunk. */
  seed?: number;
  /** Items per model call (default 256). */
  batchSize?: number;
}

const BAYES_KEYS = optionKeys<BayesPredictiveOptions>()(['samples', 'seed', 'batchSize']);

/**
 * Mean / std of the class probabilities over `samples` weight draws [N, C], predictive entropy and
 * mutual information [N]. Every Bayesian layer is switched to sampling with a fixed noise seed per
 * draw (restored afterwards, also on throw), so draw s is one network, the same for all items.
 */
export async function bayesPredictive(model: Module, x: Tensor, opts: BayesPredictiveOptions = {}): Promise<PredictiveUncertainty> {
  const op = 'bayesPredictive';
  if (!(model instanceof Module)) throw new Error(`${op}: model must be a backlight Module with BayesLinear/BayesConv2d layers`);
  checkOptions(op, opts, BAYES_KEYS);
  checkInput(op, x);
  const S = positiveInt(op, 'samples', opts.samples, 16);
  const bs = positiveInt(op, 'batchSize', opts.batchSize, 256);
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`${op}: seed must be a non-negative integer, got ${String(opts.seed)}`);
  const layers = bayesLayers(model);
  if (layers.length === 0) throw new Error(`${op}: the model has no BayesLinear or BayesConv2d layer (layers: ${describeLayers(model)})`);
  const saved = layers.map(([, l]) => [l.sampling, l.noiseSeed] as const);
  const modes = model.namedModules().map(([, m]) => [m, m.training] as const);
  model.eval();
  const item = x.shape.slice(1);
  let r: PredictiveUncertainty;
  try {
    r = sampledPredictive(itemChunks(x.shape[0], bs, S), S, (s0, count) => {
      const xs = bl.stopGradient(bl.slice(x, [s0, ...item.map(() => 0)], [count, ...item]));
      const ps: Tensor[] = [];
      for (let s = 0; s < S; s++) {
        layers.forEach(([, l], j) => {
          l.sampling = true;
          l.noiseSeed = dropoutSeed(seed, j, s);
        });
        ps.push(probabilitiesOf(op, model.call(xs), count, 'logits'));
      }
      return bl.stack(ps, 1);
    });
  } finally {
    layers.forEach(([, l], j) => {
      l.sampling = saved[j][0];
      l.noiseSeed = saved[j][1];
    });
    for (const [m, t] of modes) m.training = t;
  }
  await checkFinite(op, r);
  return r;
}

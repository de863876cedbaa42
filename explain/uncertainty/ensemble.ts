// Deep ensembles (Lakshminarayanan, Pritzel & Blundell 2017, "Simple and scalable predictive
// uncertainty estimation using deep ensembles", NeurIPS): M networks trained from different random
// initialisations (and data orders); the mixture of their softmax outputs is the prediction, and
// their disagreement (mutual information, the std of the class probabilities) the epistemic
// uncertainty. `ensemble` evaluates given members; `trainEnsemble` trains members of a bundled
// architecture (a ZooSpec: its builder, data preparation and recipe) with the project's own loop
// (models/train.ts fit, Adam/SGD, the recipe's cosine learning-rate decay as models/zoo/train.ts).
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { Module } from '../../models/module.ts';
import { Adam, SGD, type Optimizer } from '../../models/optim.ts';
import { fit, type Dataset, type EpochLog } from '../../models/train.ts';
import type { TrainRecipe, ZooSpec } from '../../models/zoo/index.ts';
import { checkInput, positiveInt } from '../common.ts';
import { checkOptions, optionKeys } from '../options.ts';
import { probabilitiesOf, type PredictiveUncertainty } from './predictive.ts';
import { itemChunks, sampledPredictive } from './sampled-predictive.ts';
import { checkFinite } from './util.ts';

export interface EnsembleOptions {
  /** Items per model call (default 256). */
  batchSize?: number;
  /** What the members return: class scores to softmax ('logits', default) or probabilities ('probs'). */
  outputs?: 'logits' | 'probs';
}

const ENSEMBLE_KEYS = optionKeys<EnsembleOptions>()(['batchSize', 'outputs']);

/**
 * The predictive statistics of an ensemble on x: mean and std (over members, ddof 0) of the class
 * probabilities [N, C], predictive entropy and mutual information [N]. Members run in eval mode
 * (restored afterwards) and must agree on the number of classes. The result is the caller's.
 */
export async function ensemble(models: readonly (Module | ((x: Tensor) => Tensor))[], x: Tensor, opts: EnsembleOptions = {}): Promise<PredictiveUncertainty> {
  const op = 'ensemble';
  checkOptions(op, opts, ENSEMBLE_KEYS);
  if (!Array.isArray(models) || models.length === 0) throw new Error(`${op}: models must be a non-empty array of members, got ${Array.isArray(models) ? 'an empty array' : typeof models}`);
  models.forEach((m, i) => {
    if (!(m instanceof Module) && typeof m !== 'function') throw new Error(`${op}: member ${i} is not a backlight Module or a function (got ${m === null ? 'null' : typeof m})`);
  });
  if (models.length === 1) console.warn(`${op}: a single member has no disagreement (std and mutual information are 0)`);
  checkInput(op, x);
  const bs = positiveInt(op, 'batchSize', opts.batchSize, 256);
  const outputs = opts.outputs ?? 'logits';
  if (outputs !== 'logits' && outputs !== 'probs') throw new Error(`${op}: outputs must be 'logits' or 'probs', got ${String(opts.outputs)}`);
  const modules = models.filter((m): m is Module => m instanceof Module);
  const modes = modules.flatMap((m) => m.namedModules().map(([, s]) => [s, s.training] as const));
  modules.forEach((m) => m.eval());
  const item = x.shape.slice(1);
  let r: PredictiveUncertainty;
  try {
    r = sampledPredictive(itemChunks(x.shape[0], bs, models.length), models.length, (s, count) => {
      const xs = bl.stopGradient(bl.slice(x, [s, ...item.map(() => 0)], [count, ...item]));
      const ps = models.map((m, i) => {
        let out: Tensor;
        try {
          out = m instanceof Module ? m.call(xs) : m(xs);
        } catch (e) {
          throw new Error(`${op}: member ${i} failed: ${(e as Error).message}`, { cause: e });
        }
        return probabilitiesOf(`${op}: member ${i}`, out, count, outputs);
      });
      const C = ps[0].shape[1];
      ps.forEach((p, i) => {
        if (p.shape[1] !== C) throw new Error(`${op}: member ${i} returns ${p.shape[1]} classes, member 0 returns ${C}`);
      });
      return bl.stack(ps, 1); // [count, M, C]
    });
  } finally {
    for (const [m, t] of modes) m.training = t;
  }
  await checkFinite(op, r);
  return r;
}

/** What trainEnsemble needs of a bundled model's specification (a models/zoo ZooSpec fits). */
export type EnsembleSpec = Pick<ZooSpec, 'build' | 'recipe'> & Partial<Pick<ZooSpec, 'prepare' | 'name'>>;

export interface TrainEnsembleOptions {
  /** Number of members (default 5). */
  members?: number;
  /** One seed per member (default recipe.seed, recipe.seed + 1, ...: member 0 is then the bundled model's own run). */
  seeds?: number[];
  /** Override the recipe's epochs (e.g. fewer, for a quick ensemble). */
  epochs?: number;
  /** Validation data for fit's per-epoch report (optional). */
  validation?: Dataset;
  /** fit's progress lines (default false). */
  progress?: boolean | 'epoch';
  /** Called after each member is trained. */
  onMember?: (index: number, seed: number, history: EpochLog[]) => void;
}

/** The recipe's learning rate at an epoch: cosine decay to lr * finalLrFraction (as models/zoo/train.ts). */
export function recipeLearningRate(r: TrainRecipe, epoch: number): number {
  const f = r.finalLrFraction ?? 1;
  const t = r.epochs > 1 ? (epoch - 1) / (r.epochs - 1) : 0;
  return r.lr * (f + (1 - f) * 0.5 * (1 + Math.cos(Math.PI * t)));
}

const TRAIN_ENSEMBLE_KEYS = optionKeys<TrainEnsembleOptions>()(['members', 'seeds', 'epochs', 'validation', 'progress', 'onMember']);

/**
 * Train deep-ensemble members: for each seed, a fresh model from `spec.build(seed)` (seeded
 * initialisation), `spec.prepare` on the training data, and `fit` with the recipe (optimizer,
 * learning rate and its cosine decay, batch size, epochs) and that seed (data order, dropout).
 * With a bundled spec and the default seeds, member 0 reproduces the bundled weights.
 *   const members = await trainEnsemble(zooSpec('breast-cancer-mlp'), datasetSplits('breast-cancer').train);
 *   const u = await ensemble(members, x);
 * Returns the members in eval mode; the caller disposes them.
 */
export async function trainEnsemble(spec: EnsembleSpec, train: Dataset, opts: TrainEnsembleOptions = {}): Promise<Module[]> {
  const op = 'trainEnsemble';
  checkOptions(op, opts, TRAIN_ENSEMBLE_KEYS);
  if (opts.seeds !== undefined && !Array.isArray(opts.seeds)) throw new Error(`${op}: seeds must be an array of non-negative integers, got ${typeof opts.seeds}`);
  if (opts.onMember !== undefined && typeof opts.onMember !== 'function') throw new Error(`${op}: onMember must be a function, got ${typeof opts.onMember}`);
  if (!spec || typeof spec.build !== 'function' || !spec.recipe) throw new Error(`${op}: spec must have build(seed) and a training recipe (a models/zoo ZooSpec)`);
  const members = positiveInt(op, 'members', opts.members ?? opts.seeds?.length, 5);
  const seeds = opts.seeds ?? Array.from({ length: members }, (_, i) => spec.recipe.seed + i);
  if (seeds.length !== members) throw new Error(`${op}: ${seeds.length} seeds for ${members} members`);
  if (new Set(seeds).size !== seeds.length) throw new Error(`${op}: seeds must differ between members, got [${seeds.join(', ')}]`);
  seeds.forEach((s) => {
    if (!Number.isInteger(s) || s < 0) throw new Error(`${op}: seeds must be non-negative integers, got ${s}`);
  });
  const recipe: TrainRecipe = { ...spec.recipe, ...(opts.epochs !== undefined ? { epochs: positiveInt(op, 'epochs', opts.epochs, 1) } : {}) };
  const out: Module[] = [];
  let current = 0; // the member being built or trained, for the error
  try {
    for (let i = 0; i < members; i++) {
      current = i;
      const seed = seeds[i];
      const model = spec.build(seed);
      out.push(model);
      spec.prepare?.(model, train);
      const optimizer: Optimizer = recipe.optimizer === 'adam'
        ? new Adam({ lr: recipe.lr, weightDecay: recipe.weightDecay })
        : new SGD({ lr: recipe.lr, momentum: recipe.momentum, weightDecay: recipe.weightDecay });
      const setLr = (lr: number) => ((optimizer as Adam | SGD).opts.lr = lr);
      setLr(recipeLearningRate(recipe, 1));
      try {
        const history = await fit(model, train, {
          epochs: recipe.epochs,
          batchSize: recipe.batchSize,
          optimizer,
          seed,
          validation: opts.validation,
          progress: opts.progress ?? false,
          onEpoch: (e) => setLr(recipeLearningRate(recipe, e.epoch + 1)),
        });
        opts.onMember?.(i, seed, history);
      } finally {
        optimizer.dispose();
      }
      model.eval();
    }
  } catch (e) {
    out.forEach((m) => m.dispose());
    throw new Error(`${op}${spec.name ? ` (${spec.name})` : ''}: training member ${current} failed: ${(e as Error).message}`, { cause: e });
  }
  return out;
}

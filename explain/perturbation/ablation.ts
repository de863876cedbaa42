// Feature ablation and feature permutation: one perturbation per feature.
//
// featureAblation (Captum's FeatureAblation): attribution of feature j = f(x) - f(x with feature j
// replaced by the baseline (or averaged over a background set)). Each feature's value is written
// to every element of the feature (Captum's convention).
//
// featurePermutation (Captum's FeaturePermutation; Breiman 2001's permutation importance, per
// item): attribution of feature j for item n = f(x_n) - f(x_n with feature j's values taken from
// item perm(n)), perm a seeded permutation of the batch that is not the identity. Captum draws a
// new permutation per feature; here one permutation serves every feature of a call so that all
// features' perturbed inputs batch together (the estimate has the same expectation).
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { hostRandom, checkFinite } from '../common.ts';
import { checkPerturbInput, concatItems, forEachGroup, PerturbationRunner, type EngineOptions, type PerturbationModel } from './engine.ts';
import { coalitionPerturbations, featureGroupsFor, type FeatureGroups, type Features } from './maskers.ts';
import { checkOptions, optionKeys } from '../options.ts';

export interface FeatureAblationOptions extends EngineOptions {
  /** Feature mask or masker (grid(), slic(), columns()); default: every element its own feature. */
  features?: Features;
  /** The value ablated features take: a number (default 0) or a tensor like x or one item. */
  baseline?: number | Tensor;
  /** Instead of one baseline, average the ablated model over these rows [B, ...item]. */
  background?: Tensor;
}

/** The coalitions "all features but j" for j = 0..m-1, row-major [m, m]. */
function leaveOneOut(m: number): Float32Array {
  const z = new Float32Array(m * m).fill(1);
  for (let j = 0; j < m; j++) z[j * m + j] = 0;
  return z;
}

/** f(x) - f(x without feature j), per item and feature, written to the feature's elements. */
async function ablate(runner: PerturbationRunner, groups: FeatureGroups[], x: Tensor): Promise<Tensor> {
  const n = x.shape[0], p = runner.p;
  for (const g of groups) runner.plan(groups.length === 1 ? n : 1, g.m);
  const parts = await forEachGroup(groups, n, async (gi, i0, k) => {
    const g = groups[gi];
    const pert = coalitionPerturbations(g, leaveOneOut(g.m), g.m, x.backend);
    try {
      const v = await runner.evaluate(i0, k, pert); // [k, m]
      try {
        const fx = await runner.scoresAt(i0, k);
        try {
          return bl.tidy(() => {
            const d = bl.sub(bl.reshape(fx, [k, 1]), v);
            return bl.gather(d, bl.tensor(g.labels, [p], x.backend), 1); // [k, P]
          });
        } finally {
          fx.dispose();
        }
      } finally {
        v.dispose();
      }
    } finally {
      pert.dispose();
    }
  });
  const flat = concatItems(parts);
  const out = bl.reshape(flat, x.shape);
  flat.dispose();
  return out;
}

const FEATUREABLATION_KEYS = optionKeys<FeatureAblationOptions>()(['target', 'batchSize', 'memoryBudget', 'onProgress', 'features', 'baseline', 'background']);
const FEATUREPERMUTATION_KEYS = optionKeys<FeaturePermutationOptions>()(['target', 'batchSize', 'memoryBudget', 'onProgress', 'features', 'seed']);

export async function featureAblation(model: PerturbationModel, input: Tensor, opts: FeatureAblationOptions = {}): Promise<Tensor> {
  const op = 'featureAblation';
  checkOptions(op, opts, FEATUREABLATION_KEYS);
  const x = checkPerturbInput(op, input);
  await checkFinite(op, x);
  const groups = await featureGroupsFor(op, opts.features, x);
  const runner = await PerturbationRunner.create(op, model, x, { baseline: opts.baseline, background: opts.background }, opts);
  try {
    return await ablate(runner, groups, x);
  } finally {
    runner.dispose();
  }
}

export interface FeaturePermutationOptions extends EngineOptions {
  features?: Features;
  /** Seed of the batch permutation (default 0). */
  seed?: number;
}

/** A seeded permutation of 0..n-1 that is not the identity (n >= 2). */
export function batchPermutation(n: number, seed: number): number[] {
  const r = hostRandom(seed);
  for (;;) {
    const perm = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(r() * (i + 1));
      [perm[i], perm[j]] = [perm[j], perm[i]];
    }
    if (perm.some((v, i) => v !== i)) return perm;
  }
}

export async function featurePermutation(model: PerturbationModel, input: Tensor, opts: FeaturePermutationOptions = {}): Promise<Tensor> {
  const op = 'featurePermutation';
  checkOptions(op, opts, FEATUREPERMUTATION_KEYS);
  const x = checkPerturbInput(op, input);
  await checkFinite(op, x);
  const n = x.shape[0];
  if (n < 2) throw new Error(`${op}: needs a batch of at least 2 items to permute features across, got ${n}`);
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`${op}: option 'seed' must be a non-negative integer, got ${String(opts.seed)}`);
  const groups = await featureGroupsFor(op, opts.features, x);
  const perm = batchPermutation(n, seed);
  const permuted = bl.tidy(() => bl.gather(x, bl.tensor(perm, [n], x.backend), 0));
  try {
    const runner = await PerturbationRunner.create(op, model, x, { baseline: permuted }, opts);
    try {
      return await ablate(runner, groups, x);
    } finally {
      runner.dispose();
    }
  } finally {
    permuted.dispose();
  }
}

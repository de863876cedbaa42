// Shapley values by permutation sampling and by exact enumeration.
//
// shapleySampling (Strumbelj & Kononenko 2014, "Explaining prediction models and individual
// predictions with feature contributions"; Captum's ShapleyValueSampling): for random orderings
// of the features, add the features one at a time and credit each with the change of the score.
// Orderings come in antithetic pairs (an ordering and its reverse; negatively correlated
// marginal contributions, so the pair mean has a lower variance): the standard error of each
// value is the standard deviation of the pair means over sqrt(pairs). Every ordering's
// contributions add up to f(x) - f(reference), so the values do too, exactly.
//
// shapleyExact: phi_i = sum over S not containing i of |S|! (M - |S| - 1)! / M! (v(S + i) - v(S)),
// all 2^M coalitions evaluated (M <= 16), reduced by one matrix product on the device.
//
// Both write a feature's value to every element of it (Captum's convention).
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { hostRandom, optionalBool, checkFinite } from '../common.ts';
import { checkOptions, optionKeys } from '../options.ts';
import { evaluateCoalitions, shapleyResult, type CoalitionOptions, type EfficiencyOption } from './coalitions.ts';
import { checkPerturbInput, forEachGroup, PerturbationRunner, type PerturbationModel } from './engine.ts';
import type { ShapleyDetails, ShapleyWithDelta } from './kernel-shap.ts';
import { featureGroupsFor } from './maskers.ts';

export { shapleyResult } from './coalitions.ts';

export interface ShapleySamplingOptions extends CoalitionOptions, EfficiencyOption {
  /** Orderings of the features (default 32; rounded up to an even number: antithetic pairs). */
  samples?: number;
  seed?: number;
}

const SHAPLEYSAMPLING_KEYS = optionKeys<ShapleySamplingOptions>()(['target', 'batchSize', 'memoryBudget', 'onProgress', 'features', 'baseline', 'background', 'returnDetails', 'returnDelta', 'samples', 'seed']);

export async function shapleySampling(model: PerturbationModel, input: Tensor, opts: ShapleySamplingOptions & { returnDetails: true }): Promise<ShapleyDetails>;
export async function shapleySampling(model: PerturbationModel, input: Tensor, opts: ShapleySamplingOptions & { returnDelta: true; returnDetails?: false }): Promise<ShapleyWithDelta>;
export async function shapleySampling(model: PerturbationModel, input: Tensor, opts?: ShapleySamplingOptions & { returnDelta?: false; returnDetails?: false }): Promise<Tensor>;
export async function shapleySampling(model: PerturbationModel, input: Tensor, opts: ShapleySamplingOptions = {}): Promise<Tensor | ShapleyDetails | ShapleyWithDelta> {
  const op = 'shapleySampling';
  checkOptions(op, opts, SHAPLEYSAMPLING_KEYS);
  const returnDelta = optionalBool(op, 'returnDelta', opts.returnDelta);
  const x = checkPerturbInput(op, input);
  await checkFinite(op, x);
  const n = x.shape[0];
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`${op}: option 'seed' must be a non-negative integer, got ${String(opts.seed)}`);
  const s = opts.samples ?? 32;
  if (!Number.isInteger(s) || s < 1) throw new Error(`${op}: option 'samples' (orderings) must be a positive integer, got ${String(opts.samples)}`);
  const perms = s + (s % 2);
  const pairs = perms / 2;
  const groups = await featureGroupsFor(op, opts.features, x);
  const runner = await PerturbationRunner.create(op, model, x, { baseline: opts.baseline, background: opts.background }, opts);
  const p = runner.p;
  const values: Float64Array[] = [], se: Float64Array[] = [], pred: number[] = [], base: number[] = [];
  const rng = hostRandom(seed);
  // The orderings: one set for all items (and for each per-item partition of the same size).
  const orderings = (m: number) => {
    const out: number[][] = [];
    for (let q = 0; q < pairs; q++) {
      const o = Array.from({ length: m }, (_, i) => i);
      for (let i = m - 1; i > 0; i--) {
        const j = Math.floor(rng() * (i + 1));
        [o[i], o[j]] = [o[j], o[i]];
      }
      out.push(o, [...o].reverse());
    }
    return out;
  };
  for (const g of groups) runner.plan(groups.length === 1 ? n : 1, 2 + perms * Math.max(0, g.m - 1));
  let evaluations = 0;
  try {
    await forEachGroup(groups, n, async (gi, i0, k) => {
      const g = groups[gi], m = g.m;
      const ord = orderings(m);
      // Coalitions: the full one, the empty one, then each ordering's prefixes of 1..m-1 features.
      const count = 2 + perms * (m - 1);
      evaluations = count * runner.backgroundRows;
      const z = new Float32Array(count * m);
      z.fill(1, 0, m);
      for (let q = 0; q < perms; q++) {
        for (let t = 1; t < m; t++) {
          const row = (2 + q * (m - 1) + (t - 1)) * m;
          for (let u = 0; u < t; u++) z[row + ord[q][u]] = 1;
        }
      }
      // Where each feature sits in each ordering, to gather contributions back to feature order.
      const idx = new Float32Array(perms * m);
      for (let q = 0; q < perms; q++) for (let t = 0; t < m; t++) idx[q * m + ord[q][t]] = q * m + t;
      // v: the scores [k, count], centred on f(x).
      const host = await evaluateCoalitions(runner, i0, k, g, z, count, undefined, (v, center) => {
        const c = bl.reshape(center, [k, 1]);
        const fxc = bl.slice(v, [0, 0], [k, 1]);
        const f0c = bl.slice(v, [0, 1], [k, 1]);
        const fx = bl.add(fxc, c);
        const f0 = bl.add(f0c, c);
        const parts = [bl.broadcastTo(bl.reshape(f0c, [k, 1, 1]), [k, perms, 1])];
        if (m > 1) parts.push(bl.reshape(bl.slice(v, [0, 2], [k, count - 2]), [k, perms, m - 1]));
        parts.push(bl.broadcastTo(bl.reshape(fxc, [k, 1, 1]), [k, perms, 1]));
        const chain = bl.concat(parts, 2); // [k, perms, m + 1]: v(prefix of t features)
        const diffs = bl.sub(bl.slice(chain, [0, 0, 1], [k, perms, m]), bl.slice(chain, [0, 0, 0], [k, perms, m]));
        const byFeature = bl.reshape(bl.gather(bl.reshape(diffs, [k, perms * m]), bl.tensor(idx, [perms * m], x.backend), 1), [k, pairs, 2, m]);
        const pairMeans = bl.mean(byFeature, 2); // [k, pairs, m]
        const phi = bl.mean(pairMeans, 1); // [k, m]
        const dev = bl.sub(pairMeans, bl.reshape(phi, [k, 1, m]));
        const errs = pairs > 1 ? bl.sqrt(bl.div(bl.sum(bl.mul(dev, dev), 1), pairs * (pairs - 1))) : bl.fullLike(phi, NaN);
        return bl.concat([phi, errs, fx, f0], 1); // [k, 2m + 2]
      });
      const w = 2 * m + 2;
      for (let i = 0; i < k; i++) {
        values.push(host.slice(i * w, i * w + m));
        se.push(host.slice(i * w + m, i * w + 2 * m));
        pred.push(host[i * w + 2 * m]);
        base.push(host[i * w + 2 * m + 1]);
      }
    });
  } finally {
    runner.dispose();
  }
  return shapleyResult(x, groups, values, se, pred, base, false, evaluations, opts.returnDetails, returnDelta);
}

export interface ShapleyExactOptions extends CoalitionOptions, EfficiencyOption {
  /** Refuse more features than this (default 16: 65,536 coalitions per item). */
  maxFeatures?: number;
}

/** |S|! (M - |S| - 1)! / M! for |S| = 0..M-1. */
export function shapleyWeights(m: number): Float64Array {
  const w = new Float64Array(m);
  // w(s) = 1 / (M * C(M-1, s)), computed without factorials.
  for (let s = 0; s < m; s++) {
    let c = 1;
    for (let i = 1; i <= s; i++) c = (c * (m - 1 - s + i)) / i;
    w[s] = 1 / (m * c);
  }
  return w;
}

const SHAPLEYEXACT_KEYS = optionKeys<ShapleyExactOptions>()(['target', 'batchSize', 'memoryBudget', 'onProgress', 'features', 'baseline', 'background', 'returnDetails', 'returnDelta', 'maxFeatures']);

export async function shapleyExact(model: PerturbationModel, input: Tensor, opts: ShapleyExactOptions & { returnDetails: true }): Promise<ShapleyDetails>;
export async function shapleyExact(model: PerturbationModel, input: Tensor, opts: ShapleyExactOptions & { returnDelta: true; returnDetails?: false }): Promise<ShapleyWithDelta>;
export async function shapleyExact(model: PerturbationModel, input: Tensor, opts?: ShapleyExactOptions & { returnDelta?: false; returnDetails?: false }): Promise<Tensor>;
export async function shapleyExact(model: PerturbationModel, input: Tensor, opts: ShapleyExactOptions = {}): Promise<Tensor | ShapleyDetails | ShapleyWithDelta> {
  const op = 'shapleyExact';
  checkOptions(op, opts, SHAPLEYEXACT_KEYS);
  const returnDelta = optionalBool(op, 'returnDelta', opts.returnDelta);
  const x = checkPerturbInput(op, input);
  await checkFinite(op, x);
  const n = x.shape[0];
  const max = opts.maxFeatures ?? 16;
  const groups = await featureGroupsFor(op, opts.features, x);
  for (const g of groups) {
    if (g.m > max) throw new Error(`${op}: ${g.m} features need 2^${g.m} model evaluations per item; at most ${max} (option 'maxFeatures'); group features (features: grid(N), a mask) or use kernelShap / shapleySampling`);
  }
  const runner = await PerturbationRunner.create(op, model, x, { baseline: opts.baseline, background: opts.background }, opts);
  const p = runner.p;
  for (const g of groups) runner.plan(groups.length === 1 ? n : 1, 2 ** g.m);
  const values: Float64Array[] = [], pred: number[] = [], base: number[] = [];
  let evaluations = 0;
  try {
    await forEachGroup(groups, n, async (gi, i0, k) => {
      const g = groups[gi], m = g.m, count = 2 ** m;
      evaluations = count * runner.backgroundRows;
      // Coalition c is the bit pattern of c (bit i: feature i present).
      const z = new Float32Array(count * m);
      for (let c = 0; c < count; c++) for (let i = 0; i < m; i++) z[c * m + i] = (c >> i) & 1;
      const w = shapleyWeights(m);
      const K = m + 2;
      // Centred on f(x) (appended as the last column): each phi_i's weights sum to 0, so only
      // f(x) and f(empty) need it back.
      const host = await evaluateCoalitions(runner, i0, k, g, z, count, {
        columns: K,
        rows: (s0, nr) => {
          const r = new Float64Array(nr * K);
          for (let u = 0; u < nr; u++) {
            const c = s0 + u;
            let size = 0;
            for (let i = 0; i < m; i++) size += (c >> i) & 1;
            // v(S) enters phi_i with +w(|S| - 1) when i is in S (as S' + i), -w(|S|) otherwise.
            for (let i = 0; i < m; i++) r[u * K + i] = (c >> i) & 1 ? w[size - 1] : size < m ? -w[size] : 0;
            if (c === count - 1) r[u * K + m] = 1;
            if (c === 0) r[u * K + m + 1] = 1;
          }
          return r;
        },
      });
      const W = K + 1;
      for (let i = 0; i < k; i++) {
        values.push(host.slice(i * W, i * W + m));
        pred.push(host[i * W + m] + host[i * W + K]);
        base.push(host[i * W + m + 1] + host[i * W + K]);
      }
    });
  } finally {
    runner.dispose();
  }
  return shapleyResult(x, groups, values, values.map((v) => new Float64Array(v.length)), pred, base, true, evaluations, opts.returnDetails, returnDelta);
}

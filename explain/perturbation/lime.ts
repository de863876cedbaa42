// LIME (Ribeiro, Singh & Guestrin 2016, "Why should I trust you?"): fit an interpretable linear
// surrogate g(z) = b + sum_j beta_j z_j to the model on coalitions z near the input, weighted by
// their proximity pi(z) = exp(-D(z, 1)^2 / (2 width^2)); the coefficients are the attributions.
//
// Choices, after Captum's Lime where it has them: coalitions sample each feature present with
// probability 1/2 (Captum's default perturbation); the distance is measured between the binary
// coalition and the all-present vector, in the interpretable space (the lime package's
// convention for images: cosine with width 0.25; 'euclidean' with width 0.75 sqrt(M), lime's
// tabular default). Surrogate: weighted ridge (sklearn's Ridge objective, sum w r^2 + alpha |beta|^2,
// alpha default 1, the lime package's) or lasso (sklearn's Lasso, (1 / 2 sum w) sum w r^2 +
// alpha |beta|_1, Captum's default surrogate with alpha 0.01), intercept unpenalised. The weighted R^2
// of the fit is reported (returnDetails).
//
// On the device the model evaluations reduce to X'Wv, sum wv and sum wv^2 per item; the host fits
// the M x M system. The same coalitions (one seed) serve every item of the batch.
import { hostRandom, checkFinite } from '../common.ts';
import type { Tensor } from '../../engine/index.ts';
import * as bl from '../../engine/index.ts';
import { checkMaxFeatures, coalitionAttributions, evaluateCoalitions, type CoalitionOptions } from './coalitions.ts';
import { checkPerturbInput, forEachGroup, PerturbationRunner, type PerturbationModel } from './engine.ts';
import { lassoGram, solveSymmetric } from './linalg.ts';
import { featureGroupsFor, type FeatureGroups } from './maskers.ts';
import { checkOptions, optionKeys } from '../options.ts';

export interface LimeOptions extends CoalitionOptions {
  /** Coalitions sampled per item (default 1000, the lime package's). */
  samples?: number;
  seed?: number;
  distance?: 'cosine' | 'euclidean';
  /** Kernel width (default 0.25 for cosine, 0.75 sqrt(M) for euclidean). */
  kernelWidth?: number;
  regression?: 'ridge' | 'lasso';
  /** Refuse more features than this (default 1024: the fit is an M x M system on the host). */
  maxFeatures?: number;
  /** Penalty (default 1 for ridge, 0.01 for lasso). */
  alpha?: number;
}

export interface LimeDetails {
  attributions: Tensor;
  /** Per item: the surrogate's coefficients (one per feature), intercept and weighted R^2. */
  coefficients: Float64Array[];
  intercept: number[];
  r2: number[];
  features: FeatureGroups[];
}

const LIME_KEYS = optionKeys<LimeOptions>()(['target', 'batchSize', 'memoryBudget', 'onProgress', 'features', 'baseline', 'background', 'returnDetails', 'samples', 'seed', 'distance', 'kernelWidth', 'regression', 'maxFeatures', 'alpha']);

export async function lime(model: PerturbationModel, input: Tensor, opts: LimeOptions & { returnDetails: true }): Promise<LimeDetails>;
export async function lime(model: PerturbationModel, input: Tensor, opts?: LimeOptions): Promise<Tensor>;
export async function lime(model: PerturbationModel, input: Tensor, opts: LimeOptions = {}): Promise<Tensor | LimeDetails> {
  const op = 'lime';
  checkOptions(op, opts, LIME_KEYS);
  const x = checkPerturbInput(op, input);
  await checkFinite(op, x);
  const n = x.shape[0];
  const samples = opts.samples ?? 1000;
  if (!Number.isInteger(samples) || samples < 2) throw new Error(`${op}: option 'samples' must be an integer >= 2, got ${String(opts.samples)}`);
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`${op}: option 'seed' must be a non-negative integer, got ${String(opts.seed)}`);
  const distance = opts.distance ?? 'cosine';
  if (distance !== 'cosine' && distance !== 'euclidean') throw new Error(`${op}: option 'distance' must be 'cosine' or 'euclidean', got '${String(distance)}'`);
  const regression = opts.regression ?? 'ridge';
  if (regression !== 'ridge' && regression !== 'lasso') throw new Error(`${op}: option 'regression' must be 'ridge' or 'lasso', got '${String(regression)}'`);
  const alpha = opts.alpha ?? (regression === 'ridge' ? 1 : 0.01);
  if (!(alpha >= 0)) throw new Error(`${op}: option 'alpha' must be a non-negative number, got ${String(opts.alpha)}`);
  const groups = await featureGroupsFor(op, opts.features, x);
  checkMaxFeatures(op, groups, opts.maxFeatures ?? 1024);
  const runner = await PerturbationRunner.create(op, model, x, { baseline: opts.baseline, background: opts.background }, opts);
  for (const _ of groups) runner.plan(groups.length === 1 ? n : 1, samples);
  const coefs: Float64Array[] = [], icpt: number[] = [], r2s: number[] = [];
  try {
    await forEachGroup(groups, n, async (gi, i0, k) => {
      const g = groups[gi], m = g.m;
      const width = opts.kernelWidth ?? (distance === 'cosine' ? 0.25 : 0.75 * Math.sqrt(m));
      if (!(width > 0)) throw new Error(`${op}: option 'kernelWidth' must be positive, got ${String(opts.kernelWidth)}`);
      const rng = hostRandom(seed + gi);
      const z = new Float32Array(samples * m);
      const w = new Float64Array(samples);
      for (let c = 0; c < samples; c++) {
        let on = 0;
        for (let j = 0; j < m; j++) {
          const b = rng() < 0.5 ? 1 : 0;
          z[c * m + j] = b;
          on += b;
        }
        // Distance from the all-present coalition: cosine 1 - on / sqrt(on * M), euclidean sqrt(M - on).
        const d = distance === 'cosine' ? (on === 0 ? 1 : 1 - Math.sqrt(on / m)) : Math.sqrt(m - on);
        w[c] = Math.exp(-(d * d) / (2 * width * width)); // lime's sqrt(exp(-d^2/w^2)), Captum's exp(-d^2/(2 w^2))
      }
      // Weighted means and the centred Gram matrix of the design (host).
      const sw = w.reduce((a, b) => a + b, 0);
      const xbar = new Float64Array(m);
      for (let c = 0; c < samples; c++) for (let j = 0; j < m; j++) xbar[j] += (w[c] * z[c * m + j]) / sw;
      const G = new Float64Array(m * m);
      for (let c = 0; c < samples; c++) {
        for (let j = 0; j < m; j++) {
          const aj = z[c * m + j] - xbar[j];
          if (aj === 0) continue;
          for (let l = 0; l < m; l++) G[j * m + l] += w[c] * aj * (z[c * m + l] - xbar[l]);
        }
      }
      const K = m + 1;
      // Scores centred on f(x) (float32 sums; the fit is shift-invariant but for the intercept),
      // f(x) itself in the last column.
      const host = await evaluateCoalitions(runner, i0, k, g, z, samples, {
        columns: K,
        // R = [w z | w], built on the device from the coalition rows.
        rows: (s0, nr) =>
          bl.tidy(() => {
            const wc = bl.tensor(w.subarray(s0, s0 + nr), [nr, 1], x.backend);
            return bl.concat([bl.mul(bl.tensor(z.subarray(s0 * m, (s0 + nr) * m), [nr, m], x.backend), wc), wc], 1);
          }),
        squaredColumns: 1,
        squaredRows: (s0, nr) => w.subarray(s0, s0 + nr),
      });
      for (let i = 0; i < k; i++) {
        const row = host.subarray(i * (K + 2), (i + 1) * (K + 2));
        const swy = row[m], swy2 = row[m + 1];
        const ybar = swy / sw;
        // Centred X'Wy: sum w (z - zbar) (y - ybar) = X'Wy - zbar sum(wy).
        const gv = Float64Array.from({ length: m }, (_, j) => row[j] - xbar[j] * swy);
        let beta: Float64Array;
        if (regression === 'ridge') {
          const a = Float64Array.from(G);
          for (let j = 0; j < m; j++) a[j * m + j] += alpha;
          beta = solveSymmetric(a, gv, m);
        } else {
          beta = lassoGram(G.map((v) => v / sw), gv.map((v) => v / sw), m, alpha);
        }
        const tss = swy2 - sw * ybar * ybar;
        let bg = 0, bgb = 0;
        for (let j = 0; j < m; j++) {
          bg += beta[j] * gv[j];
          for (let l = 0; l < m; l++) bgb += beta[j] * G[j * m + l] * beta[l];
        }
        const rss = Math.max(0, tss - 2 * bg + bgb);
        coefs.push(beta);
        icpt.push(row[m + 2] + ybar - beta.reduce((s, b, j) => s + b * xbar[j], 0));
        r2s.push(tss > 0 ? 1 - rss / tss : 1);
      }
    });
  } finally {
    runner.dispose();
  }
  const attributions = coalitionAttributions(x, groups, coefs);
  if (!opts.returnDetails) return attributions;
  return { attributions, coefficients: coefs, intercept: icpt, r2: r2s, features: groups };
}

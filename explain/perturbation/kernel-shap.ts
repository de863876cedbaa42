// KernelSHAP (Lundberg & Lee 2017, "A unified approach to interpreting model predictions"):
// Shapley values as the solution of a weighted linear regression over coalitions z in {0,1}^M,
// weighted by the Shapley kernel pi(z) = (M - 1) / (C(M, |z|) |z| (M - |z|)), constrained so that
// the values add up to f(x) - f(reference) (efficiency).
//
// Coalitions follow SHAP's KernelExplainer: subset sizes are enumerated completely, smallest
// (and their complements) first, while the budget covers a size's whole kernel mass; the rest is
// sampled by size from the remaining kernel mass, each sample paired with its complement. With
// 2^M - 2 <= samples every coalition is enumerated and the result is the exact Shapley value (the
// regression's solution then equals the Shapley formula). Unlike SHAP, repeated samples are not
// merged (they cost a model evaluation each but leave the fit unbiased).
//
// Sampling error: the sampled pairs are dealt round-robin into G = min(8, pairs) groups; each
// group with the enumerated part gives its own estimate (its samples' weights scaled by G), and
// the standard error is sd(group estimates) / sqrt(G) (batch means). Exact enumeration reports 0.
//
// On the device: every model evaluation is reduced at once to X'W v for the full fit and for
// each group (X' = z without its last feature, minus that feature: the constraint eliminates
// it, as SHAP does), plus f(x) and f(empty); the host solves (M-1) x (M-1) systems.
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { hostRandom, optionalBool, checkFinite } from '../common.ts';
import { checkMaxFeatures, evaluateCoalitions, shapleyResult, type CoalitionOptions, type EfficiencyOption } from './coalitions.ts';
import { checkOptions, optionKeys } from '../options.ts';
import { checkPerturbInput, forEachGroup, PerturbationRunner, type PerturbationModel } from './engine.ts';
import { binom, solveSymmetric } from './linalg.ts';
import { featureGroupsFor, type FeatureGroups } from './maskers.ts';

export interface KernelShapOptions extends CoalitionOptions, EfficiencyOption {
  /** Model evaluations per item (default 2M + 2048, SHAP's 'auto'). */
  samples?: number;
  seed?: number;
  /**
   * Refuse more features than this (default 1024): the fit solves (M - 1) x (M - 1) systems on
   * the host. Group elements instead (features: grid(N), slic(N), a mask).
   */
  maxFeatures?: number;
}

/** What `returnDetails` adds; host arrays, one entry per item. */
export interface ShapleyDetails {
  attributions: Tensor;
  /** Per item, one value per feature (features in ascending order of their mask label). */
  values: Float64Array[];
  /** Per item and feature: the sampling standard error (0 when exact). */
  standardError: Float64Array[];
  /** f(x) and f(reference) (the mean over the background) per item: values sum to their difference. */
  prediction: number[];
  baseValue: number[];
  /** The feature partition used (per item, or one shared). */
  features: FeatureGroups[];
  /** Whether every coalition was enumerated. */
  exact: boolean;
  /** Model evaluations per item (coalitions x background rows). */
  evaluations: number;
  /** With returnDelta: [N], sum(values) - (prediction - baseValue) per item. */
  delta?: Tensor;
}

/** The attributions and the efficiency error per item (returnDelta without returnDetails). */
export interface ShapleyWithDelta {
  attributions: Tensor;
  delta: Tensor;
}

interface Design {
  /** Coalitions, row-major [C, M]: rows 0 and 1 are the full and the empty coalition. */
  z: Float32Array;
  count: number;
  w: Float64Array;
  /** -1: enumerated; 0..G-1: the sampled group. */
  group: Int32Array;
  groups: number;
  exact: boolean;
}

/** SHAP KernelExplainer's coalition plan (see the header). */
export function kernelShapCoalitions(m: number, samples: number, seed: number): Design {
  const rows: { z: Uint8Array; w: number; g: number }[] = [];
  const full = new Uint8Array(m).fill(1);
  rows.push({ z: full, w: 0, g: -1 }, { z: new Uint8Array(m), w: 0, g: -1 });
  let exact = true;
  let groups = 0;
  if (m >= 2) {
    const budget = Math.min(samples, 2 ** Math.min(m, 52) - 2);
    const nSizes = Math.ceil((m - 1) / 2), nPaired = Math.floor((m - 1) / 2);
    const wv = Array.from({ length: nSizes }, (_, i) => (m - 1) / ((i + 1) * (m - i - 1)));
    for (let i = 0; i < nPaired; i++) wv[i] *= 2;
    const tot = wv.reduce((a, b) => a + b, 0);
    for (let i = 0; i < nSizes; i++) wv[i] /= tot;
    let left = budget, nFull = 0;
    const rem = [...wv];
    for (let s = 1; s <= nSizes; s++) {
      const paired = s <= nPaired;
      const nSub = binom(m, s) * (paired ? 2 : 1);
      if ((left * rem[s - 1]) / nSub < 1 - 1e-8) break;
      nFull++;
      left -= nSub;
      if (rem[s - 1] < 1) {
        const d = 1 - rem[s - 1];
        for (let i = 0; i < nSizes; i++) rem[i] /= d;
      }
      const w = wv[s - 1] / binom(m, s) / (paired ? 2 : 1);
      forEachSubset(m, s, (z) => {
        rows.push({ z: z.slice(), w, g: -1 });
        if (paired) rows.push({ z: z.map((v) => 1 - v), w, g: -1 });
      });
    }
    if (nFull < nSizes && left > 0) {
      exact = false;
      const rw = wv.map((v, i) => (i < nPaired ? v / 2 : v)).slice(nFull);
      const rs = rw.reduce((a, b) => a + b, 0);
      const cdf: number[] = [];
      let acc = 0;
      for (const v of rw) cdf.push((acc += v / rs));
      const rng = hostRandom(seed);
      const sampled: { z: Uint8Array; unit: number }[] = [];
      let unit = 0;
      const perm = Array.from({ length: m }, (_, i) => i);
      while (left > 0) {
        const u = rng();
        let k = cdf.findIndex((c) => u < c);
        if (k < 0) k = cdf.length - 1;
        const s = k + nFull + 1;
        // The first s entries of a partial Fisher-Yates shuffle.
        for (let i = 0; i < s; i++) {
          const j = i + Math.floor(rng() * (m - i));
          [perm[i], perm[j]] = [perm[j], perm[i]];
        }
        const z = new Uint8Array(m);
        for (let i = 0; i < s; i++) z[perm[i]] = 1;
        sampled.push({ z, unit });
        left--;
        if (left > 0 && s <= nPaired) {
          sampled.push({ z: z.map((v) => 1 - v), unit });
          left--;
        }
        unit++;
      }
      groups = Math.min(8, unit);
      const weightLeft = wv.slice(nFull).reduce((a, b) => a + b, 0);
      const w = weightLeft / sampled.length;
      for (const s of sampled) rows.push({ z: s.z, w, g: groups >= 2 ? s.unit % groups : -2 });
    }
  }
  const count = rows.length;
  const z = new Float32Array(count * m);
  const w = new Float64Array(count);
  const group = new Int32Array(count);
  rows.forEach((r, c) => {
    z.set(r.z, c * m);
    w[c] = r.w;
    group[c] = r.g;
  });
  return { z, count, w, group, groups: groups >= 2 ? groups : 0, exact };
}

/** Every subset of {0..m-1} of size s, as 0/1 vectors (lexicographic). */
function forEachSubset(m: number, s: number, fn: (z: Uint8Array) => void): void {
  const idx = Array.from({ length: s }, (_, i) => i);
  const z = new Uint8Array(m);
  for (;;) {
    z.fill(0);
    for (const i of idx) z[i] = 1;
    fn(z);
    let i = s - 1;
    while (i >= 0 && idx[i] === m - s + i) i--;
    if (i < 0) return;
    idx[i]++;
    for (let j = i + 1; j < s; j++) idx[j] = idx[j - 1] + 1;
  }
}

const KERNEL_SHAP_KEYS = optionKeys<KernelShapOptions>()(['target', 'batchSize', 'memoryBudget', 'onProgress', 'features', 'baseline', 'background', 'returnDetails', 'returnDelta', 'samples', 'seed', 'maxFeatures']);

export async function kernelShap(model: PerturbationModel, input: Tensor, opts: KernelShapOptions & { returnDetails: true }): Promise<ShapleyDetails>;
export async function kernelShap(model: PerturbationModel, input: Tensor, opts: KernelShapOptions & { returnDelta: true; returnDetails?: false }): Promise<ShapleyWithDelta>;
export async function kernelShap(model: PerturbationModel, input: Tensor, opts?: KernelShapOptions & { returnDelta?: false; returnDetails?: false }): Promise<Tensor>;
export async function kernelShap(model: PerturbationModel, input: Tensor, opts: KernelShapOptions = {}): Promise<Tensor | ShapleyDetails | ShapleyWithDelta> {
  const op = 'kernelShap';
  checkOptions(op, opts, KERNEL_SHAP_KEYS);
  const returnDelta = optionalBool(op, 'returnDelta', opts.returnDelta);
  const x = checkPerturbInput(op, input);
  await checkFinite(op, x);
  const n = x.shape[0];
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`${op}: option 'seed' must be a non-negative integer, got ${String(opts.seed)}`);
  if (opts.samples !== undefined && (!Number.isInteger(opts.samples) || opts.samples < 2)) throw new Error(`${op}: option 'samples' must be an integer >= 2, got ${String(opts.samples)}`);
  const groups = await featureGroupsFor(op, opts.features, x);
  checkMaxFeatures(op, groups, opts.maxFeatures ?? 1024);
  const runner = await PerturbationRunner.create(op, model, x, { baseline: opts.baseline, background: opts.background }, opts);
  const designs = groups.map((g) => kernelShapCoalitions(g.m, opts.samples ?? 2 * g.m + 2048, seed));
  designs.forEach((d) => runner.plan(groups.length === 1 ? n : 1, d.count));
  const values: Float64Array[] = [], se: Float64Array[] = [], pred: number[] = [], base: number[] = [];
  try {
    await forEachGroup(groups, n, async (gi, i0, k) => {
      const g = groups[gi], d = designs[gi], m = g.m, q = m - 1;
      const parts = 1 + d.groups; // enumerated part, then each sampled group
      const K = parts * q + 2;
      const partOf = (c: number) => (d.group[c] === -1 ? 0 : d.group[c] >= 0 ? 1 + d.group[c] : 0);
      // Host sides of the normal equations, per part: A = sum w X'X'^T, u1 = sum w X', uM = sum w X' z_M.
      const A = Array.from({ length: parts }, () => new Float64Array(q * q));
      const u1 = Array.from({ length: parts }, () => new Float64Array(q));
      const uM = Array.from({ length: parts }, () => new Float64Array(q));
      const xr = new Float64Array(q);
      for (let c = 2; c < d.count; c++) {
        const w = d.w[c], pt = partOf(c), zm = d.z[c * m + q];
        for (let j = 0; j < q; j++) xr[j] = d.z[c * m + j] - zm;
        for (let j = 0; j < q; j++) {
          u1[pt][j] += w * xr[j];
          uM[pt][j] += w * xr[j] * zm;
          for (let l = 0; l < q; l++) A[pt][j * q + l] += w * xr[j] * xr[l];
        }
      }
      // R = [W X' placed in its part's block | full | empty], built on the device from the
      // coalition rows (what the host uploads per chunk: z, w and part ids, not K columns).
      const part = Float64Array.from({ length: d.count }, (_, c) => partOf(c));
      const ind = new Float64Array(d.count * 2);
      ind[0 * 2 + 0] = 1;
      ind[1 * 2 + 1] = 1;
      const be = x.backend;
      // The scores are centred on f(x), appended as the last column to add back to the f(x) and
      // f(empty) columns (the regression's right-hand side does not change with a constant shift).
      const red = await evaluateCoalitions(runner, i0, k, g, d.z, d.count, {
        columns: K,
        rows: (s0, nr) =>
          bl.tidy(() => {
            const flags = bl.tensor(ind.subarray(s0 * 2, (s0 + nr) * 2), [nr, 2], be);
            if (q === 0) return flags;
            const zc = bl.tensor(d.z.subarray(s0 * m, (s0 + nr) * m), [nr, m], be);
            const xr = bl.sub(bl.slice(zc, [0, 0], [nr, q]), bl.slice(zc, [0, q], [nr, 1]));
            const wx = bl.mul(xr, bl.tensor(d.w.subarray(s0, s0 + nr), [nr, 1], be));
            const blocks = parts === 1 ? wx : bl.reshape(bl.mul(bl.reshape(bl.oneHot(bl.tensor(part.subarray(s0, s0 + nr), [nr], be), parts), [nr, parts, 1]), bl.reshape(wx, [nr, 1, q])), [nr, parts * q]);
            return bl.concat([blocks, flags], 1);
          }),
      });
      for (let i = 0; i < k; i++) {
        const row = red.subarray(i * (K + 1), (i + 1) * (K + 1));
        const c0 = row[K];
        // Centred values: f0 here is f(empty) - f(x); delta and the fit are shift-invariant.
        const fx = row[K - 2], f0 = row[K - 1], delta = fx - f0;
        pred.push(fx + c0);
        base.push(f0 + c0);
        const rhs = (pt: number) => Float64Array.from({ length: q }, (_, j) => row[pt * q + j] - u1[pt][j] * f0 - uM[pt][j] * delta);
        const fit = (mats: { a: Float64Array; b: Float64Array; s: number }[]) => {
          const a = new Float64Array(q * q), b = new Float64Array(q);
          for (const { a: ai, b: bi, s } of mats) {
            for (let j = 0; j < q * q; j++) a[j] += s * ai[j];
            for (let j = 0; j < q; j++) b[j] += s * bi[j];
          }
          const phi = new Float64Array(m);
          if (q > 0) phi.set(solveSymmetric(a, b, q));
          phi[q] = delta - phi.subarray(0, q).reduce((s, v) => s + v, 0);
          return phi;
        };
        const rh = Array.from({ length: parts }, (_, pt) => rhs(pt));
        const phi = fit(rh.map((b, pt) => ({ a: A[pt], b, s: 1 })));
        const err = new Float64Array(m);
        if (d.groups >= 2) {
          const ests = Array.from({ length: d.groups }, (_, gg) => fit([{ a: A[0], b: rh[0], s: 1 }, { a: A[1 + gg], b: rh[1 + gg], s: d.groups }]));
          for (let j = 0; j < m; j++) {
            const mean = ests.reduce((s, e) => s + e[j], 0) / d.groups;
            const v = ests.reduce((s, e) => s + (e[j] - mean) ** 2, 0) / (d.groups - 1);
            err[j] = Math.sqrt(v / d.groups);
          }
        } else if (!d.exact) err.fill(NaN);
        values.push(phi);
        se.push(err);
      }
    });
  } finally {
    runner.dispose();
  }
  return shapleyResult(x, groups, values, se, pred, base, designs.every((d) => d.exact), designs[0].count * runner.backgroundRows, opts.returnDetails, returnDelta);
}

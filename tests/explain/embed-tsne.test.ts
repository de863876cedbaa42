// t-SNE: the perplexity calibration (entropies recomputed here from the betas), the device gradient
// against a plain double loop and against central differences of KL(P || Q) written here,
// determinism for a seed, and the check: t-SNE separates the digits classes (k-NN accuracy
// in 2-D above 90% on the 359 test digits, raw pixels, float64 CPU backend).
import { beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import * as ex from '../../explain/index.ts';
import { datasetSplits } from '../../models/data/index.ts';
import { loadBundled } from '../../models/zoo/index.ts';
import { expectClose, rng } from '../helpers.ts';

beforeAll(async () => {
  await bl.init({ backend: 'cpu' });
});

function sqDist(x: ArrayLike<number>, N: number, D: number): Float64Array {
  const d = new Float64Array(N * N);
  for (let i = 0; i < N; i++) for (let j = 0; j < N; j++) {
    let s = 0;
    for (let k = 0; k < D; k++) s += (x[i * D + k] - x[j * D + k]) ** 2;
    d[i * N + j] = s;
  }
  return d;
}

/** KL(P || Q) of layout y (N x k), written out directly (test reference). */
function klHost(P: Float64Array, y: Float64Array, N: number, k: number): number {
  const d = sqDist(y, N, k);
  let Z = 0;
  for (let i = 0; i < N; i++) for (let j = 0; j < N; j++) if (i !== j) Z += 1 / (1 + d[i * N + j]);
  let kl = 0;
  for (let i = 0; i < N; i++) for (let j = 0; j < N; j++) if (i !== j && P[i * N + j] > 0) kl += P[i * N + j] * Math.log(P[i * N + j] / (1 / (1 + d[i * N + j]) / Z));
  return kl;
}

/** The paper's gradient as a double loop: 4 sum_j (p_ij - q_ij)(y_i - y_j) / (1 + |y_i - y_j|^2). */
function gradHost(P: Float64Array, y: Float64Array, N: number, k: number, e = 1): Float64Array {
  const d = sqDist(y, N, k);
  let Z = 0;
  for (let i = 0; i < N; i++) for (let j = 0; j < N; j++) if (i !== j) Z += 1 / (1 + d[i * N + j]);
  const g = new Float64Array(N * k);
  for (let i = 0; i < N; i++) for (let j = 0; j < N; j++) {
    if (i === j) continue;
    const w = 1 / (1 + d[i * N + j]);
    for (let a = 0; a < k; a++) g[i * k + a] += 4 * (e * P[i * N + j] - w / Z) * w * (y[i * k + a] - y[j * k + a]);
  }
  return g;
}

function cloud(N: number, D: number, seed: number): Float64Array {
  const r = rng(seed);
  // Three loose clusters.
  return Float64Array.from({ length: N * D }, (_, t) => Math.fround((Math.floor(t / D) % 3) * 2 + (r() - 0.5)));
}

describe('t-SNE affinities', () => {
  it('each point\'s conditional distribution has entropy log(perplexity); P is symmetric and sums to 1', () => {
    const N = 40, D = 5, perp = 8;
    const x = cloud(N, D, 1);
    const d2 = sqDist(x, N, D);
    const { P, betas } = ex.tsneAffinities(d2, N, perp);
    let total = 0;
    for (let i = 0; i < N; i++) {
      expect(P[i * N + i]).toBe(0);
      for (let j = 0; j < N; j++) {
        total += P[i * N + j];
        expect(P[i * N + j]).toBe(P[j * N + i]);
      }
      // Recompute p_{j|i} from beta_i and check its entropy.
      const p = Array.from({ length: N }, (_, j) => (j === i ? 0 : Math.exp(-betas[i] * d2[i * N + j])));
      const s = p.reduce((a, b) => a + b, 0);
      const H = -p.reduce((a, v) => (v > 0 ? a + (v / s) * Math.log(v / s) : a), 0);
      expect(Math.abs(H - Math.log(perp))).toBeLessThan(1e-4);
    }
    // Sums to 1 up to the 1e-12 floor on each of the N^2 - N entries.
    expect(Math.abs(total - 1)).toBeLessThan(N * N * 1e-12 + 1e-12);
  });
});

describe('t-SNE gradient (engine ops)', () => {
  const N = 23, k = 2;
  const x = cloud(N, 4, 2);
  const { P } = ex.tsneAffinities(sqDist(x, N, 4), N, 5);
  const r = rng(3);
  const y = Float64Array.from({ length: N * k }, () => r() * 4 - 2);

  it('equals the double-loop formula, with and without exaggeration', async () => {
    for (const e of [1, 12]) {
      const g = ex.tsneGradient(bl.tensor(P, [N, N]), bl.tensor(y, [N, k]), e);
      expectClose(await g.data(), gradHost(P, y, N, k, e), 1e-12, 1e-12, `exaggeration ${e}`);
    }
  });

  it('is the derivative of KL(P || Q): central differences of the KL written here', async () => {
    const g = await ex.tsneGradient(bl.tensor(P, [N, N]), bl.tensor(y, [N, k])).data();
    const h = 1e-5;
    const fd = Array.from({ length: N * k }, (_, t) => {
      const yp = Float64Array.from(y), ym = Float64Array.from(y);
      yp[t] += h;
      ym[t] -= h;
      return (klHost(P, yp, N, k) - klHost(P, ym, N, k)) / (2 * h);
    });
    expectClose(g, fd, 1e-6, 1e-8, 'gradient vs finite differences');
    // tsneKl agrees with the KL written here.
    expect(Math.abs((await ex.tsneKl(bl.tensor(P, [N, N]), bl.tensor(y, [N, k]))) - klHost(P, y, N, k))).toBeLessThan(1e-12);
  });
});

describe('t-SNE optimisation', () => {
  it('the same seed gives identical coordinates; another seed does not', async () => {
    const N = 45, D = 6;
    const x = bl.tensor(cloud(N, D, 4), [N, D]);
    const opts = { iterations: 80, perplexity: 10, exaggerationIterations: 30, momentumSwitch: 30 };
    const a = await (await ex.tsne(x, { ...opts, seed: 7 })).coords.data();
    const b = await (await ex.tsne(x, { ...opts, seed: 7 })).coords.data();
    const c = await (await ex.tsne(x, { ...opts, seed: 8 })).coords.data();
    expect(a.length).toBe(N * 2);
    expectClose(b, a, 0, 0, 'same seed');
    expect(Array.from(c).some((v, i) => Math.abs(v - a[i]) > 1e-3)).toBe(true);
    // The layout is centred (re-centred each step).
    for (let k = 0; k < 2; k++) expect(Math.abs(Array.from({ length: N }, (_, i) => a[i * 2 + k]).reduce((s, v) => s + v, 0) / N)).toBeLessThan(1e-9);
  });

  it('separates the digits classes: 5-NN accuracy in 2-D above 90% (359 test digits, raw pixels)', async () => {
    const d = datasetSplits('digits').test;
    const x = bl.tensor(d.x, [d.n, 64]);
    const t0 = performance.now();
    const r = await ex.tsne(x, { iterations: 350, seed: 0 });
    const c = await r.coords.data();
    const acc5 = ex.knnAccuracy(c, d.y, 5), acc10 = ex.knnAccuracy(c, d.y, 10);
    // Against the linear baseline: PCA's 2-D layout does not separate them.
    const pcaAcc = ex.knnAccuracy(await (await ex.pca(x)).coords.data(), d.y, 5);
    console.log(`t-SNE digits (N=${d.n}, 350 iterations, CPU float64): 5-NN ${(acc5 * 100).toFixed(1)}%, 10-NN ${(acc10 * 100).toFixed(1)}%, KL ${r.klDivergence.toFixed(3)}, ${((performance.now() - t0) / 1000).toFixed(1)} s; PCA 5-NN ${(pcaAcc * 100).toFixed(1)}%`);
    expect(acc5).toBeGreaterThan(0.9);
    expect(acc10).toBeGreaterThan(0.9);
    expect(pcaAcc).toBeLessThan(0.8);
  });

  it('embeds a model layer: digits-cnn pool activations', async () => {
    const d = datasetSplits('digits').test;
    const N = 200;
    const m = await loadBundled('digits-cnn');
    const a = await ex.layerActivations(m, bl.tensor(d.x.subarray(0, N * 64), [N, 1, 8, 8]), { batchSize: 64 });
    expect(a.shape).toEqual([N, 32]);
    expect(ex.defaultEmbeddingLayer(m)).toBe('pool');
    const r = await ex.tsne(a, { iterations: 400, seed: 1, perplexity: 10 });
    const acc = ex.knnAccuracy(await r.coords.data(), d.y.subarray(0, N), 5);
    console.log(`t-SNE of digits-cnn 'pool' (N=${N}): 5-NN ${(acc * 100).toFixed(1)}%`);
    expect(acc).toBeGreaterThan(0.9);
    m.dispose();
  });

  it('Barnes-Hut: theta = 0 equals the exact gradient on the same sparse P; theta = 0.5 within 3%', async () => {
    const d = datasetSplits('digits').test;
    const N = 120, D = 64;
    const x = Float64Array.from(d.x.subarray(0, N * D));
    const P = ex.sparseAffinities(x, N, D, 10);
    const dense = new Float64Array(N * N);
    let total = 0;
    for (let i = 0; i < N; i++) for (let t = P.rowStart[i]; t < P.rowStart[i + 1]; t++) {
      dense[i * N + P.cols[t]] = P.vals[t];
      total += P.vals[t];
    }
    expect(Math.abs(total - 1)).toBeLessThan(1e-12);
    for (let i = 0; i < N; i++) for (let j = 0; j < N; j++) expect(dense[i * N + j]).toBe(dense[j * N + i]);
    const r = rng(9);
    const y = Float64Array.from({ length: 2 * N }, () => r() * 20 - 10);
    const exact = gradHost(dense, y, N, 2, 12);
    expectClose(ex.barnesHutGradient(P, y, 0, 12), exact, 1e-10, 1e-12, 'theta 0');
    const g = ex.barnesHutGradient(P, y, 0.5, 12);
    const err = Math.hypot(...g.map((v, i) => v - exact[i])) / Math.hypot(...exact);
    expect(err).toBeLessThan(0.03);
    expect(err).toBeGreaterThan(0); // it did approximate
  });

  it('Barnes-Hut separates the digits too (359 test digits, 1000 iterations, host float64)', async () => {
    const d = datasetSplits('digits').test;
    const t0 = performance.now();
    const r = await ex.tsne(bl.tensor(d.x, [d.n, 64]), { method: 'barnes-hut', seed: 0 });
    const acc = ex.knnAccuracy(await r.coords.data(), d.y, 5);
    console.log(`Barnes-Hut t-SNE digits (N=${d.n}, 1000 iterations, theta 0.5): 5-NN ${(acc * 100).toFixed(1)}%, KL ${r.klDivergence.toFixed(3)}, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    expect(acc).toBeGreaterThan(0.9);
    await expect(ex.tsne(bl.tensor(d.x.subarray(0, 640), [10, 64]), { method: 'barnes-hut', components: 3, perplexity: 3 })).rejects.toThrow(/2-D only/);
  });

  it('rejects bad options', async () => {
    const x = bl.tensor(cloud(10, 3, 5), [10, 3]);
    await expect(ex.tsne(x)).rejects.toThrow(/perplexity 30 must be below N - 1 = 9/);
    await expect(ex.tsne(x, { perplexity: 0.5 })).rejects.toThrow(/perplexity' must be a number of at least 1/);
    await expect(ex.tsne(x, { perplexity: 3, iterations: 0 })).rejects.toThrow(/iterations' must be a positive integer/);
    await expect(ex.tsne(x, { perplexity: 3, learningRate: -1 })).rejects.toThrow(/learningRate' must be positive or 'auto'/);
    await expect(ex.tsne(x, { perplexity: 3, seed: -2 })).rejects.toThrow(/seed' must be a non-negative integer/);
    await expect(ex.tsne(bl.zeros([3, 2]))).rejects.toThrow(/at least 4 points/);
    await expect(ex.tsne(x, { perplexity: 3, method: 'umap' as 'exact' })).rejects.toThrow(/'method' must be 'exact' or 'barnes-hut'/);
    await expect(ex.tsne(x, { perplexity: 3, method: 'barnes-hut', theta: -1 })).rejects.toThrow(/theta' must be non-negative/);
    expect(() => ex.tsneGradient(bl.zeros([3, 3]), bl.zeros([4, 2]))).toThrow(/P must be \[N, N\] and Y \[N, k\]/);
  });
});

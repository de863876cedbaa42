// Perturbation explainers against truths computed independently in the test: brute-force
// Shapley enumeration, the bill-splitting game solved by hand, linear models (KernelSHAP recovers
// w_i (x_i - E[x_i]); LIME recovers w_i x_i), occlusion / ablation / permutation / prediction
// difference against plain loops over model calls. On the float64 CPU backend (exact to 1e-9);
// tests/explain/perturbation-webgpu.test.ts compares WebGPU with it.
import { beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import * as ex from '../../explain/index.ts';
import { batchPermutation } from '../../explain/perturbation/ablation.ts';
import { Linear, Sequential, Tanh, setInitSeed } from '../../models/index.ts';
import { expectClose, randArray, rng } from '../helpers.ts';

beforeAll(async () => {
  await bl.init({ backend: 'cpu' });
});

const read = async (t: Tensor) => Float64Array.from(await t.data());
const fact = (k: number): number => (k <= 1 ? 1 : k * fact(k - 1));

/** Evaluate a model on host rows (one call), as the tests' independent oracle. */
async function evalRows(model: (x: Tensor) => Tensor, rows: Float64Array[], itemShape: number[]): Promise<Float64Array> {
  const p = itemShape.reduce((a, b) => a * b, 1);
  const flat = new Float64Array(rows.length * p);
  rows.forEach((r, i) => flat.set(r, i * p));
  return read(bl.tidy(() => model(bl.tensor(flat, [rows.length, ...itemShape]))));
}

/** A score function: one output per row. */
const scoreOf = (m: Sequential, cls: number) => (x: Tensor) => bl.reshape(bl.slice(m.call(x), [0, cls], [x.shape[0], 1]), [x.shape[0]]);

function mlp(inputs: number, seed = 3) {
  setInitSeed(seed);
  return new Sequential(new Linear(inputs, 6), new Tanh(), new Linear(6, 3));
}

// ---- the bill-splitting game ----

// Alice, Bob and Carol share a taxi: alone they would pay 400, 560, 720; pairs 740 (A+B),
// 780 (A+C), 980 (B+C); all three 1000. By hand, over the 6 orders of arrival:
//   Alice: (400 + 400 + (740 - 560) + (780 - 720) + (1000 - 980) * 2) / 6 = 1080 / 6 = 180
//   Bob:   (560 + 560 + (740 - 400) + (980 - 720) + (1000 - 780) * 2) / 6 = 2160 / 6 = 360
//   Carol: (720 + 720 + (780 - 400) + (980 - 560) + (1000 - 740) * 2) / 6 = 2760 / 6 = 460
const BILL: Record<string, number> = { '000': 0, '100': 400, '010': 560, '001': 720, '110': 740, '101': 780, '011': 980, '111': 1000 };
const SPLIT = [180, 360, 460];
/** The game as a black-box model: a row's nonzero entries are the players present. */
const billModel = ex.blackBox(async (batch, shape) => {
  const out = new Float32Array(shape[0]);
  for (let r = 0; r < shape[0]; r++) out[r] = BILL[[0, 1, 2].map((i) => (batch[r * 3 + i] !== 0 ? '1' : '0')).join('')];
  return out;
});

describe('the bill-splitting game (black-box set function)', () => {
  const x = () => bl.tensor([1, 1, 1], [1, 3]);
  it('exact Shapley values are the hand-computed split', async () => {
    const r = await ex.shapleyExact(billModel, x(), { returnDetails: true });
    expectClose(r.values[0], SPLIT, 1e-12);
    expectClose(await read(r.attributions), SPLIT, 1e-12);
    expect(r.prediction[0]).toBe(1000);
    expect(r.baseValue[0]).toBe(0);
  });
  it('KernelSHAP enumerates all coalitions of 3 players and gets the same split', async () => {
    const r = await ex.kernelShap(billModel, x(), { returnDetails: true });
    expect(r.exact).toBe(true);
    expectClose(r.values[0], SPLIT, 1e-9);
  });
  it('permutation sampling: efficiency is exact, the values within 4 standard errors', async () => {
    // 5 antithetic pairs drawn from the 3 distinct pairs of orders of 3 players.
    const r = await ex.shapleySampling(billModel, x(), { samples: 10, seed: 4, returnDetails: true }); // seed 4 draws all three pair types
    for (const e of r.standardError[0]) expect(e).toBeGreaterThan(0);
    const v = r.values[0];
    expect(v.reduce((a, b) => a + b, 0)).toBeCloseTo(1000, 9);
    for (let i = 0; i < 3; i++) expect(Math.abs(v[i] - SPLIT[i])).toBeLessThanOrEqual(4 * r.standardError[0][i] + 1e-9);
    // A sample of orders, not all of them: the estimate is not the exact split (the test could fail).
    expect(v.some((a, i) => Math.abs(a - SPLIT[i]) > 1)).toBe(true);
  });
});

// ---- brute force ----

/** Shapley values by the formula over all coalitions, with the model called once per coalition. */
async function bruteShapley(f: (x: Tensor) => Tensor, x: Float64Array, base: Float64Array, labels: number[], m: number): Promise<Float64Array> {
  const rows: Float64Array[] = [];
  for (let c = 0; c < 2 ** m; c++) rows.push(x.map((v, p) => ((c >> labels[p]) & 1 ? v : base[p])));
  const v = await evalRows(f, rows, [x.length]);
  const phi = new Float64Array(m);
  for (let i = 0; i < m; i++) {
    for (let c = 0; c < 2 ** m; c++) {
      if ((c >> i) & 1) continue;
      let s = 0;
      for (let j = 0; j < m; j++) s += (c >> j) & 1;
      phi[i] += ((fact(s) * fact(m - s - 1)) / fact(m)) * (v[c | (1 << i)] - v[c]);
    }
  }
  return phi;
}

describe('Shapley values of a nonlinear model against brute-force enumeration', () => {
  let m: Sequential;
  beforeAll(() => {
    m = mlp(7);
  });
  const xd = Float64Array.from(randArray(rng(1), 2 * 7, -1, 1));
  const bd = Float64Array.from(randArray(rng(2), 7, -0.5, 0.5));
  // Features: 7 columns in 5 groups (two pairs move together), one label list for both items.
  const labels = [0, 1, 1, 2, 3, 4, 3];
  const features = { data: labels.map((l) => 10 * l + 3), shape: [7] }; // non-dense labels, remapped in order
  it('shapleyExact and KernelSHAP (all 30 coalitions) equal the formula; per-item targets', async () => {
    const x = bl.tensor(xd, [2, 7]);
    const base = bl.tensor(bd, [7]);
    const want = [await bruteShapley(scoreOf(m, 2), xd.slice(0, 7), bd, labels, 5), await bruteShapley(scoreOf(m, 0), xd.slice(7), bd, labels, 5)];
    const exact = await ex.shapleyExact(m, x, { target: [2, 0], baseline: base, features, returnDetails: true });
    const ks = await ex.kernelShap(m, x, { target: [2, 0], baseline: base, features, returnDetails: true });
    expect(ks.exact).toBe(true);
    for (let i = 0; i < 2; i++) {
      expectClose(exact.values[i], want[i], 1e-10, 1e-12, `exact item ${i}`);
      expectClose(ks.values[i], want[i], 1e-9, 1e-11, `kernelShap item ${i}`);
      // Efficiency: the values add up to f(x) - f(baseline).
      expect(exact.values[i].reduce((a, b) => a + b, 0)).toBeCloseTo(exact.prediction[i] - exact.baseValue[i], 10);
    }
    // Each feature's value is written to each of its columns.
    const a = await read(exact.attributions);
    for (let i = 0; i < 2; i++) for (let p = 0; p < 7; p++) expect(a[i * 7 + p]).toBe(exact.values[i][labels[p]]);
    // The caller's tensors are untouched.
    expect(x.disposed || base.disposed).toBe(false);
  });

  it('KernelSHAP and permutation sampling estimates are within a few reported standard errors', async () => {
    const m12 = mlp(12, 5);
    const xd12 = Float64Array.from(randArray(rng(3), 12, -1, 1));
    const x = bl.tensor(xd12, [1, 12]);
    const exact = await ex.shapleyExact(m12, x, { target: 1, returnDetails: true });
    const ks = await ex.kernelShap(m12, x, { target: 1, samples: 300, seed: 2, returnDetails: true });
    const sv = await ex.shapleySampling(m12, x, { target: 1, samples: 40, seed: 2, returnDetails: true });
    expect(ks.exact).toBe(false);
    for (const [name, r] of [['kernelShap', ks], ['shapleySampling', sv]] as const) {
      const v = r.values[0], se = r.standardError[0];
      expect(v.reduce((a, b) => a + b, 0)).toBeCloseTo(exact.prediction[0] - exact.baseValue[0], 9);
      let worst = 0;
      for (let j = 0; j < 12; j++) {
        expect(se[j], `${name} se ${j}`).toBeGreaterThan(0);
        worst = Math.max(worst, Math.abs(v[j] - exact.values[0][j]) / se[j]);
      }
      // 12 features; a z-score past 5 has probability ~1e-6 each (the batch-means error of
      // KernelSHAP has 7 degrees of freedom: t_7 past 5 is ~0.2% per feature).
      expect(worst, name).toBeLessThan(5);
      // And they are estimates, not the exact values.
      expect(Math.max(...v.map((a, j) => Math.abs(a - exact.values[0][j])))).toBeGreaterThan(1e-6);
    }
  });
});

describe('KernelSHAP on a linear model with a background set', () => {
  it('recovers w_i (x_i - E[x_i]) by sampling (M = 12, 200 samples)', async () => {
    const w = randArray(rng(4), 12, -2, 2);
    const f = (x: Tensor) => bl.add(bl.reshape(bl.matmul(x, bl.tensor(w, [12, 1])), [x.shape[0]]), 0.7);
    const xd = randArray(rng(5), 3 * 12, -1, 1);
    const bgd = randArray(rng(6), 9 * 12, -1, 1);
    const r = await ex.kernelShap(f, bl.tensor(xd, [3, 12]), { background: bl.tensor(bgd, [9, 12]), samples: 200, seed: 1, features: ex.columns(), returnDetails: true });
    expect(r.exact).toBe(false);
    for (let i = 0; i < 3; i++) {
      const want = Array.from({ length: 12 }, (_, j) => {
        let mean = 0;
        for (let b = 0; b < 9; b++) mean += bgd[b * 12 + j] / 9;
        return w[j] * (xd[i * 12 + j] - mean);
      });
      expectClose(r.values[i], want, 1e-9, 1e-10, `item ${i}`);
    }
  });
});

describe('LIME', () => {
  const w = [1.5, -2, 0, 0.5, 3, -1];
  const lin = (x: Tensor) => bl.add(bl.reshape(bl.matmul(x, bl.tensor(w, [6, 1])), [x.shape[0]]), -0.25);
  const xd = randArray(rng(7), 2 * 6, 0.5, 1.5);
  it('recovers the coefficients w_i x_i of a linear model (unpenalised ridge), R^2 = 1', async () => {
    const r = await ex.lime(lin, bl.tensor(xd, [2, 6]), { samples: 200, alpha: 0, returnDetails: true });
    for (let i = 0; i < 2; i++) {
      expectClose(r.coefficients[i], w.map((v, j) => v * xd[i * 6 + j]), 1e-9, 1e-10);
      expect(r.intercept[i]).toBeCloseTo(-0.25, 9);
      expect(r.r2[i]).toBeCloseTo(1, 9);
    }
  });
  it('ridge shrinks, lasso zeroes the unused feature; a nonlinear model has R^2 < 1', async () => {
    const x = bl.tensor(xd, [2, 6]);
    const ridge = await ex.lime(lin, x, { samples: 200, alpha: 5, returnDetails: true });
    const lasso = await ex.lime(lin, x, { samples: 200, regression: 'lasso', alpha: 0.01, returnDetails: true });
    for (let j = 0; j < 6; j++) if (w[j] !== 0) expect(Math.abs(ridge.coefficients[0][j])).toBeLessThan(Math.abs(w[j] * xd[j]));
    expect(lasso.coefficients[0][2]).toBe(0);
    expect(lasso.coefficients[1][2]).toBe(0);
    const m = mlp(6);
    const nl = await ex.lime(m, x, { target: 0, samples: 200, returnDetails: true });
    for (const r2 of nl.r2) {
      expect(r2).toBeLessThan(1);
      expect(r2).toBeGreaterThan(0);
    }
  });
});

// ---- loops ----

describe('occlusion, ablation, permutation and prediction difference against loops', () => {
  // A smooth model on [N, 2, 5, 6] images: per-item scores of a few pixels' products.
  const model = (x: Tensor) => {
    const n = x.shape[0];
    const f = bl.reshape(x, [n, 60]);
    const wv = bl.tensor(randArray(rng(8), 60 * 3, -1, 1), [60, 3]);
    const h = bl.matmul(f, wv);
    return bl.add(h, bl.mul(bl.tanh(h), bl.slice(h, [0, 0], [n, 1])));
  };
  const shape = [2, 2, 5, 6];
  const xd = Float64Array.from(randArray(rng(9), 120, 0, 1));
  const item = [2, 5, 6];

  it('occlusion: the mean over covering windows of f(x) - f(occluded); uncovered elements 0', async () => {
    const win = [2, 2, 3], str = [1, 2, 2];
    const a = await read(await ex.occlusion(model, bl.tensor(xd, shape), { window: win, stride: str, baseline: 0.5, target: [1, 2] }));
    const targets = [1, 2];
    for (let n = 0; n < 2; n++) {
      const xi = xd.slice(n * 60, (n + 1) * 60);
      const rows: Float64Array[] = [xi];
      const wins: number[][] = [];
      for (let c = 0; c + win[0] <= 2; c += str[0]) for (let h = 0; h + win[1] <= 5; h += str[1]) for (let w = 0; w + win[2] <= 6; w += str[2]) {
        wins.push([c, h, w]);
        rows.push(xi.map((v, p) => {
          const [pc, ph, pw] = [Math.floor(p / 30), Math.floor(p / 6) % 5, p % 6];
          return pc >= c && pc < c + win[0] && ph >= h && ph < h + win[1] && pw >= w && pw < w + win[2] ? 0.5 : v;
        }));
      }
      const out = await evalRows(model, rows, item);
      const s = (r: number) => out[r * 3 + targets[n]];
      const sum = new Float64Array(60), cnt = new Float64Array(60);
      wins.forEach(([c, h, w], k) => {
        for (let p = 0; p < 60; p++) {
          const [pc, ph, pw] = [Math.floor(p / 30), Math.floor(p / 6) % 5, p % 6];
          if (pc >= c && pc < c + win[0] && ph >= h && ph < h + win[1] && pw >= w && pw < w + win[2]) {
            sum[p] += s(0) - s(k + 1);
            cnt[p]++;
          }
        }
      });
      const want = sum.map((v, p) => (cnt[p] ? v / cnt[p] : 0));
      expect(cnt.some((c) => c === 0)).toBe(true); // the stride skips the last row/column
      expectClose(a.slice(n * 60, (n + 1) * 60), want, 1e-10, 1e-12, `item ${n}`);
    }
  });

  it('feature ablation with per-item masks (shared over channels) and a per-item baseline; grid masker', async () => {
    const maskData = Array.from({ length: 2 * 30 }, (_, i) => (i < 30 ? Math.floor((i % 6) / 2) : (Math.floor(i / 6) % 5) > 2 ? 7 : 1));
    const bd = Float64Array.from(randArray(rng(10), 120, -1, 0));
    const x = bl.tensor(xd, shape);
    const a = await read(await ex.featureAblation(model, x, { features: { data: maskData, shape: [2, 1, 5, 6] }, baseline: bl.tensor(bd, shape), target: 0 }));
    for (let n = 0; n < 2; n++) {
      const lab = (p: number) => maskData[n * 30 + (p % 30)];
      const ids = [...new Set(Array.from({ length: 60 }, (_, p) => lab(p)))];
      const xi = xd.slice(n * 60, (n + 1) * 60), bi = bd.slice(n * 60, (n + 1) * 60);
      const out = await evalRows(model, [xi, ...ids.map((id) => xi.map((v, p) => (lab(p) === id ? bi[p] : v)))], item);
      const want = Array.from({ length: 60 }, (_, p) => out[0] - out[(1 + ids.indexOf(lab(p))) * 3]);
      expectClose(a.slice(n * 60, (n + 1) * 60), want, 1e-10, 1e-12, `item ${n}`);
    }
    // grid(3): 3x3 cells over 5x6, edges cut short: 2 x 2 cells; equal to the same mask by hand.
    const g = await read(await ex.featureAblation(model, x, { features: ex.grid(3), target: 1 }));
    const hand = { data: Array.from({ length: 30 }, (_, p) => Math.floor(Math.floor(p / 6) / 3) * 2 + Math.floor((p % 6) / 3)), shape: [5, 6] };
    const h = await read(await ex.featureAblation(model, x, { features: hand, target: 1 }));
    expect(Array.from(g)).toEqual(Array.from(h));
  });

  it('feature permutation: f(x) - f(x with the feature from another item of the batch)', async () => {
    const n = 4;
    const xs = Float64Array.from(randArray(rng(11), n * 60, 0, 1));
    const mask = { data: Array.from({ length: 60 }, (_, p) => Math.floor(p / 20)), shape: [2, 5, 6] };
    const a = await read(await ex.featurePermutation(model, bl.tensor(xs, [n, 2, 5, 6]), { features: mask, seed: 3, target: 2 }));
    const perm = batchPermutation(n, 3);
    expect(perm.some((v, i) => v !== i)).toBe(true);
    for (let i = 0; i < n; i++) {
      const xi = xs.slice(i * 60, (i + 1) * 60), xo = xs.slice(perm[i] * 60, (perm[i] + 1) * 60);
      const out = await evalRows(model, [xi, ...[0, 1, 2].map((f) => xi.map((v, p) => (Math.floor(p / 20) === f ? xo[p] : v)))], item);
      expectClose(a.slice(i * 60, (i + 1) * 60), Array.from({ length: 60 }, (_, p) => out[2] - out[(1 + Math.floor(p / 20)) * 3 + 2]), 1e-10, 1e-12);
    }
  });

  it('prediction difference: weight of evidence of each window, marginalised over background rows', async () => {
    const bgd = Float64Array.from(randArray(rng(12), 3 * 60, 0, 1));
    const a = await read(await ex.predictionDifference(model, bl.tensor(xd, shape), { background: bl.tensor(bgd, [3, 2, 5, 6]), samples: 3, window: 3, stride: 2, target: 1 }));
    const softmax = (o: Float64Array, r: number) => {
      const e = [0, 1, 2].map((k) => Math.exp(o[r * 3 + k]));
      return e[1] / (e[0] + e[1] + e[2]);
    };
    const lo = (p: number) => Math.log2(p / (1 - p));
    const xi = xd.slice(0, 60);
    const rows: Float64Array[] = [xi];
    const wins: number[][] = [];
    for (let h = 0; h + 3 <= 5; h += 2) for (let w = 0; w + 3 <= 6; w += 2) {
      wins.push([h, w]);
      for (let b = 0; b < 3; b++) rows.push(xi.map((v, p) => (Math.floor(p / 6) % 5 >= h && Math.floor(p / 6) % 5 < h + 3 && p % 6 >= w && p % 6 < w + 3 ? bgd[b * 60 + p] : v)));
    }
    const out = await evalRows(model, rows, item);
    const sum = new Float64Array(60), cnt = new Float64Array(60);
    wins.forEach(([h, w], k) => {
      const pm = (softmax(out, 1 + 3 * k) + softmax(out, 2 + 3 * k) + softmax(out, 3 + 3 * k)) / 3;
      for (let p = 0; p < 60; p++) {
        if (Math.floor(p / 6) % 5 >= h && Math.floor(p / 6) % 5 < h + 3 && p % 6 >= w && p % 6 < w + 3) {
          sum[p] += lo(softmax(out, 0)) - lo(pm);
          cnt[p]++;
        }
      }
    });
    expectClose(a.slice(0, 60), sum.map((v, p) => (cnt[p] ? v / cnt[p] : 0)), 1e-9, 1e-11);
  });
});

describe('engine: chunks, progress, seeds, black boxes, bad input', () => {
  let m: Sequential;
  beforeAll(() => {
    m = mlp(8, 9);
  });
  const xd = randArray(rng(13), 3 * 8, -1, 1);
  it('any chunk size gives the same values; progress reaches the total; black box = engine model', async () => {
    const x = bl.tensor(xd, [3, 8]);
    const big = await read(await ex.kernelShap(m, x, { target: 'predicted', samples: 60, seed: 4 }));
    const seen: ex.Progress[] = [];
    const small = await read(await ex.kernelShap(m, x, { target: 'predicted', samples: 60, seed: 4, batchSize: 7, onProgress: (p) => seen.push(p) }));
    expectClose(small, big, 1e-12);
    expect(seen.length).toBeGreaterThan(10);
    expect(seen.at(-1)!.done).toBe(seen.at(-1)!.total);
    expect(seen.every((p, i) => i === 0 || p.done > seen[i - 1].done)).toBe(true);
    const box = ex.blackBox(async (batch, shape) => Float32Array.from(await m.call(bl.tensor(batch, shape)).data()));
    const viaBox = await read(await ex.kernelShap(box, x, { target: 'predicted', samples: 60, seed: 4, batchSize: 13 }));
    // The black box sees float32 inputs and returns float32 outputs: equal to float32 precision.
    expectClose(viaBox, big, 1e-5);
  });

  it('the same seed gives bit-identical results; another seed does not', async () => {
    const x = bl.tensor(xd, [3, 8]);
    for (const run of [
      (s: number) => ex.kernelShap(m, x, { target: 1, samples: 50, seed: s }),
      (s: number) => ex.shapleySampling(m, x, { target: 1, samples: 6, seed: s }),
      (s: number) => ex.lime(m, x, { target: 1, samples: 50, seed: s }),
    ]) {
      const a = await read(await run(5)), b = await read(await run(5)), c = await read(await run(6));
      expectClose(a, b, 0, 0);
      expect(Array.from(a)).not.toEqual(Array.from(c));
    }
  });

  it('bad input names the function, the option, what it expected and what it got', async () => {
    const x = bl.tensor(xd, [3, 8]);
    await expect(ex.kernelShap(m, 'x' as unknown as Tensor)).rejects.toThrow(/kernelShap: input must be a Tensor, got string/);
    await expect(ex.occlusion(m, x, { window: [9], target: 0 })).rejects.toThrow(/occlusion: window \[9\] is larger than the item \[8\] on axis 1/);
    await expect(ex.occlusion(m, x, { window: [2, 2], target: 0 })).rejects.toThrow(/occlusion: option 'window' must be a positive integer or one per item axis \(1 for items \[8\]\), got \[2,2\]/);
    await expect(ex.featureAblation(m, x, { baseline: bl.zeros([2, 8]), target: 0 })).rejects.toThrow(/featureAblation: option 'baseline' has shape \[2, 8\]; expected the input's \[3, 8\]/);
    await expect(ex.kernelShap(m, x, { background: bl.zeros([4, 7]), target: 0 })).rejects.toThrow(/kernelShap: option 'background' must have shape \[B, 8\].*got \[4, 7\]/);
    await expect(ex.shapleyExact(m, x, { target: 0, maxFeatures: 4 })).rejects.toThrow(/shapleyExact: 8 features need 2\^8 model evaluations per item; at most 4/);
    await expect(ex.featureAblation(m, x, { features: { data: [0, 1], shape: [2] }, target: 0 })).rejects.toThrow(/featureAblation: feature mask shape \[2\] does not broadcast to the item shape \[8\]/);
    await expect(ex.featurePermutation(m, bl.slice(x, [0, 0], [1, 8]), { target: 0 })).rejects.toThrow(/featurePermutation: needs a batch of at least 2 items/);
    await expect(ex.lime(m, x, { target: 0, samples: 1 })).rejects.toThrow(/lime: option 'samples' must be an integer >= 2, got 1/);
    await expect(ex.kernelShap(m, x, { target: 0, maxFeatures: 5 })).rejects.toThrow(/kernelShap: 8 features \(every element of an item, unless grouped\) exceed maxFeatures 5: group them/);
    await expect(ex.lime(m, x, { target: 0, maxFeatures: 5 })).rejects.toThrow(/lime: 8 features .* exceed maxFeatures 5/);
    await expect(ex.kernelShap(m, x)).rejects.toThrow(/kernelShap: the model has 3 outputs per item: give a target/);
    await expect(ex.kernelShap(ex.blackBox(async () => new Float32Array(5)), x, { target: 0 })).rejects.toThrow(/kernelShap: the black-box model returned 5 values for a batch of 3 rows/);
    await expect(ex.kernelShap((async () => 1) as unknown as ex.Model, x, { target: 0 })).rejects.toThrow(/kernelShap: the model returned a Promise: wrap a host-array model as blackBox\(fn\)/);
    expect(x.disposed).toBe(false);
    // Failures leave nothing behind: a model error mid-stream, a bad target, a bad baseline.
    const before = bl.memory().liveBuffers;
    let calls = 0;
    const failing = ex.blackBox(async (b, s) => {
      if (++calls === 3) throw new Error('the server went away');
      return new Float32Array(s[0] * 3);
    });
    await expect(ex.kernelShap(failing, x, { target: 0, samples: 40, batchSize: 8 })).rejects.toThrow(/the server went away/);
    await expect(ex.lime(m, x, { target: 7, samples: 10 })).rejects.toThrow(/lime: target 7 is out of range for 3 outputs/);
    await expect(ex.occlusion(m, x, { target: 0, baseline: Number.NaN })).rejects.toThrow(/occlusion: option 'baseline' must be finite, got NaN/);
    expect(bl.memory().liveBuffers).toBe(before);
  });
});

describe('SLIC superpixels and meaningful perturbation', () => {
  it('SLIC finds four flat quadrants exactly; every segment is 4-connected; one mask per item', async () => {
    const h = 12, w = 12;
    const r = rng(14);
    const img = new Float64Array(2 * 3 * h * w);
    for (let n = 0; n < 2; n++) for (let c = 0; c < 3; c++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const q = (y < 6 ? 0 : 2) + (x < (n === 0 ? 6 : 4) ? 0 : 1);
      img[((n * 3 + c) * h + y) * w + x] = [0.1, 0.4, 0.7, 0.95][(q + c) % 4] + 0.01 * r();
    }
    const groups = ex.slic({ segments: 4, compactness: 0.05 }).masks(img, [2, 3, h, w]);
    expect(groups.length).toBe(2);
    for (let n = 0; n < 2; n++) {
      const g = groups[n];
      expect(g.m).toBe(4);
      const split = n === 0 ? 6 : 4;
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
        // Same label exactly when in the same quadrant; channels share it.
        const same = (y < 6) === (0 < 6) && (x < split) === (0 < split);
        expect(g.labels[y * w + x] === g.labels[0], `item ${n} (${y}, ${x})`).toBe(same);
        for (let c = 1; c < 3; c++) expect(g.labels[(c * h + y) * w + x]).toBe(g.labels[y * w + x]);
      }
    }
    // Connectivity on a noisy image: flood fill from each segment's first pixel reaches all of it.
    const noisy = Float64Array.from(randArray(rng(15), 16 * 16, 0, 1));
    const g = ex.slic(6).masks(noisy, [1, 16, 16])[0];
    for (let l = 0; l < g.m; l++) {
      const members = [...g.labels.keys()].filter((p) => g.labels[p] === l);
      const seen = new Set([members[0]]), stack = [members[0]];
      while (stack.length) {
        const p = stack.pop()!;
        for (const q of [p - 16, p + 16, p % 16 ? p - 1 : -1, p % 16 < 15 ? p + 1 : -1]) if (q >= 0 && q < 256 && g.labels[q] === l && !seen.has(q)) (seen.add(q), stack.push(q));
      }
      expect(seen.size, `segment ${l}`).toBe(members.length);
    }
  });

  it('KernelSHAP with SLIC features explains each item on its own superpixels (= feature ablation of the same mask for 1 feature pairs)', async () => {
    // An additive model over pixels: Shapley value of a segment = sum over its pixels of w (x - 0).
    const wd = randArray(rng(16), 64, -1, 1);
    const f = (x: Tensor) => bl.reshape(bl.matmul(bl.reshape(x, [x.shape[0], 64]), bl.tensor(wd, [64, 1])), [x.shape[0]]);
    const xd = Float64Array.from(randArray(rng(17), 2 * 64, 0, 1));
    const x = bl.tensor(xd, [2, 1, 8, 8]);
    const masker = ex.slic(5);
    const r = await ex.kernelShap(f, x, { features: masker, returnDetails: true });
    const groups = masker.masks(xd, [2, 1, 8, 8]);
    for (let n = 0; n < 2; n++) {
      const want = new Float64Array(groups[n].m);
      for (let p = 0; p < 64; p++) want[groups[n].labels[p]] += wd[p] * xd[n * 64 + p];
      expectClose(r.values[n], want, 1e-9, 1e-11);
    }
  });

  it('meaningful perturbation deletes where the evidence is', async () => {
    // Two classes; class 1's logit reads only the top-left 4x4 quadrant of an 8x8 image.
    const wq = new Float64Array(64);
    for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) wq[y * 8 + x] = 0.5;
    const f = (x: Tensor) => {
      const s = bl.matmul(bl.reshape(x, [x.shape[0], 64]), bl.tensor(wq, [64, 1]));
      return bl.concat([bl.zerosLike(s), bl.sub(s, 5)], 1); // p(class 1) about 0.8, not saturated
    };
    const x = bl.tensor(randArray(rng(18), 64, 0.6, 1), [1, 1, 8, 8]);
    const sal = await read(await ex.meaningfulPerturbation(f, x, { target: 1, baseline: 0, steps: 150, maskSize: [4, 4] }));
    // The smooth (total-variation) mask spills over the quadrant's edge; the far quadrant is kept.
    const inQ = (p: number) => Math.floor(p / 8) < 4 && p % 8 < 4;
    const far = (p: number) => Math.floor(p / 8) >= 4 && p % 8 >= 4;
    const mean = (pred: (p: number) => boolean) => [...sal.keys()].filter(pred).reduce((a, p) => a + sal[p], 0) / 16;
    expect(mean(inQ)).toBeGreaterThan(0.75);
    expect(mean(far)).toBeLessThan(0.15);
    const minIn = Math.min(...[...sal.keys()].filter(inQ).map((p) => sal[p]));
    const maxFar = Math.max(...[...sal.keys()].filter(far).map((p) => sal[p]));
    expect(minIn).toBeGreaterThan(maxFar);
  });
});

describe('explainDataset', () => {
  it('streams blocks of a range of items; values equal one call on the whole range', async () => {
    const m = mlp(5, 4);
    const data = Float32Array.from(randArray(rng(19), 5 * 5, -1, 1));
    const got: [number, number, number[]][] = [];
    const progress: number[] = [];
    await ex.explainDataset((x, a, b, onProgress) => ex.kernelShap(m, x, { target: [0, 1, 2, 0, 1].slice(a, b), onProgress }), data, [5, 5], {
      block: 2, start: 1, onBlock: (v, a, b) => void got.push([a, b, Array.from(v)]), onProgress: (d) => progress.push(d),
    });
    expect(got.map(([a, b]) => [a, b])).toEqual([[1, 3], [3, 5]]);
    const whole = await ex.kernelShap(m, bl.tensor(data.subarray(5), [4, 5]), { target: [1, 2, 0, 1] });
    expectClose(got.flatMap(([, , v]) => v), await whole.data(), 1e-12);
    expect(progress.at(-1)).toBe(4);
    expect(progress.every((p, i) => i === 0 || p >= progress[i - 1])).toBe(true);
    await expect(ex.explainDataset(async (x) => bl.sum(x, 1), data, [5, 5], { onBlock: () => {} })).rejects.toThrow(/explainDataset: the explainer returned \[5\] for a block of 5 items \[5, 5\]/);
  });
});

describe('odd shapes', () => {
  it('occlusion on tabular rows [N, F] (window 3, stride 2) against a loop', async () => {
    const w = randArray(rng(20), 7 * 2, -1, 1);
    const f = (x: Tensor) => bl.tanh(bl.matmul(x, bl.tensor(w, [7, 2])));
    const xd = Float64Array.from(randArray(rng(21), 3 * 7, -1, 1));
    const a = await read(await ex.occlusion(f, bl.tensor(xd, [3, 7]), { window: 3, stride: 2, baseline: 0.25, target: [1, 0, 1] }));
    for (let n = 0; n < 3; n++) {
      const xi = xd.slice(n * 7, (n + 1) * 7);
      const starts = [0, 2, 4];
      const out = await evalRows(f, [xi, ...starts.map((s) => xi.map((v, p) => (p >= s && p < s + 3 ? 0.25 : v)))], [7]);
      const t = [1, 0, 1][n];
      const want = Array.from({ length: 7 }, (_, p) => {
        const cover = starts.map((s, k) => (p >= s && p < s + 3 ? k : -1)).filter((k) => k >= 0);
        return cover.reduce((acc, k) => acc + out[t] - out[(k + 1) * 2 + t], 0) / cover.length;
      });
      expectClose(a.slice(n * 7, (n + 1) * 7), want, 1e-10, 1e-12);
    }
  });

  it('items [H, W] without a channel axis: grid features, KernelSHAP (exact) = shapleyExact; odd sizes', async () => {
    const w = randArray(rng(22), 5 * 7 * 3, -1, 1);
    const f = (x: Tensor) => bl.softplus(bl.matmul(bl.reshape(x, [x.shape[0], 35]), bl.tensor(w, [35, 3])));
    const x = bl.tensor(randArray(rng(23), 2 * 35, 0, 1), [2, 5, 7]);
    const ks = await ex.kernelShap(f, x, { features: ex.grid([3, 4]), target: 'predicted', returnDetails: true });
    const se = await ex.shapleyExact(f, x, { features: ex.grid([3, 4]), target: 'predicted', returnDetails: true });
    expect(ks.features[0].m).toBe(4); // rows 0-2 / 3-4, columns 0-3 / 4-6
    expect(ks.exact).toBe(true);
    for (let i = 0; i < 2; i++) expectClose(ks.values[i], se.values[i], 1e-9, 1e-11);
    expect(ks.attributions.shape).toEqual([2, 5, 7]);
  });
});

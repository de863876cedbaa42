// Influence functions: the parameter-vector helper's HVPs against finite differences and an
// independent host Hessian; CG on a known SPD system; on L2-regularised logistic regression
// (iris, versicolor vs virginica) the influence estimates against leave-one-out retraining
// (Newton to convergence, on the host), Koh & Liang's check; LiSSA against CG; TracIn against a
// hand-computed sum of dot products; helpful/harmful ranking.
import { beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { Linear, Sequential, Tanh } from '../../models/index.ts';
import { crossEntropy } from '../../models/losses.ts';
import { datasetSplits } from '../../models/data/index.ts';
import {
  conjugateGradient, empiricalRiskHvp, helpfulHarmful, influence, leaveOneOut, parameterVector, tracIn,
} from '../../explain/index.ts';
import { spearman } from '../../explain/metrics/similarity.ts';
import { expectClose } from '../helpers.ts';

beforeAll(async () => {
  await bl.init({ backend: 'cpu' });
});

// ---- the data: iris versicolor (0) vs virginica (1), standardised, 40 train / 8 test ----

function irisTwoClass() {
  const s = datasetSplits('iris');
  const take = (d: typeof s.train, max: number) => {
    const xs: number[][] = [], ys: number[] = [];
    for (let i = 0; i < d.n && xs.length < max; i++) {
      if (d.y[i] === 0) continue;
      xs.push(Array.from(d.x.subarray(i * 4, i * 4 + 4)));
      ys.push(d.y[i] - 1);
    }
    return { xs, ys };
  };
  const tr = take(s.train, 40), te = take(s.test, 8);
  const mu = [0, 1, 2, 3].map((j) => tr.xs.reduce((a, r) => a + r[j], 0) / tr.xs.length);
  const sd = [0, 1, 2, 3].map((j) => Math.sqrt(tr.xs.reduce((a, r) => a + (r[j] - mu[j]) ** 2, 0) / tr.xs.length));
  const z = (r: number[]) => r.map((v, j) => (v - mu[j]) / sd[j]);
  return { train: { xs: tr.xs.map(z), ys: tr.ys }, test: { xs: te.xs.map(z), ys: te.ys } };
}

const F = 4, C = 2, P = C * F + C;
const L2 = 0.01;

/** Softmax probabilities of θ = [W (C x F row-major), b (C)] (Linear's parameter order). */
function probs(theta: ArrayLike<number>, x: number[]): number[] {
  const z = Array.from({ length: C }, (_, c) => theta[C * F + c] + x.reduce((a, v, j) => a + theta[c * F + j] * v, 0));
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/** Gradient and Hessian of R(θ) = mean CE + (l2/2)||θ||², on the host (independent of the engine). */
function riskDerivatives(theta: ArrayLike<number>, xs: number[][], ys: number[], l2: number) {
  const g = new Float64Array(P), H = Array.from({ length: P }, () => new Float64Array(P));
  const n = xs.length;
  for (let i = 0; i < n; i++) {
    const p = probs(theta, xs[i]);
    const xt = [...xs[i], 1];
    const idx = (c: number, a: number) => (a < F ? c * F + a : C * F + c);
    for (let c = 0; c < C; c++) {
      const r = p[c] - (ys[i] === c ? 1 : 0);
      for (let a = 0; a <= F; a++) g[idx(c, a)] += (r * xt[a]) / n;
      for (let d = 0; d < C; d++) {
        const w = p[c] * ((c === d ? 1 : 0) - p[d]);
        for (let a = 0; a <= F; a++) for (let b = 0; b <= F; b++) H[idx(c, a)][idx(d, b)] += (w * xt[a] * xt[b]) / n;
      }
    }
  }
  for (let k = 0; k < P; k++) (g[k] += l2 * theta[k], (H[k][k] += l2));
  return { g, H };
}

function solve(A: Float64Array[], b: ArrayLike<number>): Float64Array {
  const n = b.length;
  const M = A.map((r, i) => [...r, b[i]]);
  for (let c = 0; c < n; c++) {
    let piv = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r][c]) > Math.abs(M[piv][c])) piv = r;
    [M[c], M[piv]] = [M[piv], M[c]];
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = M[r][c] / M[c][c];
      for (let k = c; k <= n; k++) M[r][k] -= f * M[c][k];
    }
  }
  return Float64Array.from({ length: n }, (_, i) => M[i][n] / M[i][i]);
}

/** Newton's method to convergence (||∇R|| < 1e-13): the exact regularised minimiser. */
function newton(xs: number[][], ys: number[], l2 = L2): Float64Array {
  let theta = new Float64Array(P);
  for (let it = 0; it < 100; it++) {
    const { g, H } = riskDerivatives(theta, xs, ys, l2);
    if (Math.hypot(...g) < 1e-13) break;
    const step = solve(H, g);
    theta = theta.map((v, k) => v - step[k]);
  }
  return theta;
}

function linearModel(theta: ArrayLike<number>): Sequential {
  const m = new Sequential(['classifier', new Linear(F, C)]);
  parameterVector(m).assign(theta);
  return m.eval();
}

const tensors = (d: { xs: number[][]; ys: number[] }) => ({ x: bl.tensor(d.xs.flat(), [d.xs.length, F]), y: bl.tensor(d.ys, [d.ys.length]) });
const rows = (d: { xs: number[][]; ys: number[] }, idx: number[]) => ({ xs: idx.map((i) => d.xs[i]), ys: idx.map((i) => d.ys[i]) });

describe('parameter vector', () => {
  it('flattens in namedParameters order, selects by layer path, assigns back', async () => {
    const m = new Sequential(['features', new Linear(3, 4)], ['act', new Tanh()], ['classifier', new Linear(4, 2)]);
    const pv = parameterVector(m);
    expect(pv.names).toEqual(['features.weight', 'features.bias', 'classifier.weight', 'classifier.bias']);
    expect(pv.size).toBe(12 + 4 + 8 + 2);
    const head = parameterVector(m, ['classifier']);
    expect(head.names).toEqual(['classifier.weight', 'classifier.bias']);
    expect(head.offsets).toEqual([0, 8]);
    const w = await m.module('classifier').param('weight').data();
    expect(Array.from((await head.values()).subarray(0, 8))).toEqual(Array.from(w));
    head.assign(Float64Array.from({ length: 10 }, (_, i) => i));
    expect(Array.from(await m.module('classifier').param('bias').data())).toEqual([8, 9]);
    expect(() => parameterVector(m, ['nope'])).toThrow(/'nope' names no parameter/);
  });

  it('HVPs through the model match central finite differences of the gradient (tanh MLP, all parameters)', async () => {
    const m = new Sequential(['features', new Linear(3, 5)], ['act', new Tanh()], ['classifier', new Linear(5, 3)]);
    const x = bl.tensor(Array.from({ length: 6 * 3 }, (_, i) => Math.sin(i * 1.7)), [6, 3]);
    const y = bl.tensor([0, 1, 2, 1, 0, 2], [6]);
    const pv = parameterVector(m);
    const theta = bl.keep(pv.flatten());
    const v = Float64Array.from({ length: pv.size }, (_, i) => Math.cos(i * 0.37));
    const hv = await empiricalRiskHvp(m, pv, theta, { x, y })(v);
    const f = (t: Tensor) => pv.call(t, () => crossEntropy(m.call(x), y));
    const gradAt = async (eps: number) => {
      const t = bl.tidy(() => bl.add(theta, bl.mul(bl.tensor(v, [pv.size]), eps)));
      const g = bl.grad(f)(t);
      const d = Float64Array.from(await g.data());
      g.dispose();
      t.dispose();
      return d;
    };
    const h = 1e-5;
    const [gp, gm] = [await gradAt(h), await gradAt(-h)];
    const fd = gp.map((a, i) => (a - gm[i]) / (2 * h));
    expectClose(hv, fd, 1e-6, 1e-8, 'HVP vs finite differences');
    expect(Math.hypot(...hv)).toBeGreaterThan(1e-3);
    theta.dispose();
  });

  it('HVPs of the logistic risk equal the host Hessian times v (with l2 and damping)', async () => {
    const { train } = irisTwoClass();
    const theta0 = newton(train.xs, train.ys);
    const m = linearModel(theta0.map((t, i) => t + 0.1 * Math.sin(i)));
    const pv = parameterVector(m);
    const th = await pv.values();
    const { H } = riskDerivatives(th, train.xs, train.ys, L2);
    const v = Float64Array.from({ length: P }, (_, i) => 1 - 0.3 * i);
    const theta = bl.keep(pv.flatten());
    const d = tensors(train);
    const hv = await empiricalRiskHvp(m, pv, theta, d, { l2: L2, damping: 0.5, batchSize: 7 })(v);
    const expected = H.map((r, k) => r.reduce((a, h, j) => a + h * v[j], 0) + 0.5 * v[k]);
    expectClose(hv, expected, 1e-10, 1e-12, 'HVP vs host Hessian');
    theta.dispose();
  });
});

describe('conjugate gradient', () => {
  it('solves a known SPD system exactly in n steps', async () => {
    // A = B^T B + I for a fixed B; x* chosen, b = A x*.
    const n = 7;
    const B = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => Math.sin(i * 3 + j * 1.3)));
    const A = Array.from({ length: n }, (_, i) => Float64Array.from({ length: n }, (_, j) => B.reduce((a, r) => a + r[i] * r[j], 0) + (i === j ? 1 : 0)));
    const xStar = Float64Array.from({ length: n }, (_, i) => i - 3);
    const mv = (v: Float64Array) => Float64Array.from(A.map((r) => r.reduce((a, aij, j) => a + aij * v[j], 0)));
    const r = await conjugateGradient(mv, mv(xStar), { tol: 1e-12 });
    expect(r.converged).toBe(true);
    expect(r.iterations).toBeLessThanOrEqual(n + 1);
    expectClose(r.x, xStar, 1e-9, 1e-9, 'CG solution');
    // An indefinite matrix is reported.
    const ind = await conjugateGradient((v) => Float64Array.from(v, (x, i) => (i === 0 ? -x : x)), [1, 0, 0]);
    expect(ind.indefinite).toBe(true);
  });
});

describe('influence on L2-regularised logistic regression (iris, 2 classes)', () => {
  const data = irisTwoClass();
  const n = data.train.xs.length;

  it('correlates with leave-one-out retraining (Spearman > 0.8; Koh & Liang 2017, Fig. 2)', async () => {
    const theta = newton(data.train.xs, data.train.ys);
    const model = linearModel(theta);
    const tr = tensors(data.train), te = tensors(data.test);
    // The test point with the largest loss (the most to learn from).
    const pTest = data.test.xs.map((x, j) => probs(theta, x)[data.test.ys[j]]);
    const j = pTest.indexOf(Math.min(...pTest));
    const one = tensors(rows(data.test, [j]));
    const infos: { iterations: number; residual: number }[] = [];
    const [scores] = await influence(model, tr, one, { solver: 'cg', damping: 0, l2: L2, cg: { tol: 1e-10 }, onSolve: (i) => infos.push(i) });
    expect(scores.length).toBe(n);
    expect(infos[0].residual).toBeLessThan(1e-9);
    // Exact closed form on the host: -∇L_test^T H^{-1} ∇L_i.
    const { H } = riskDerivatives(theta, data.train.xs, data.train.ys, L2);
    const gTest = riskDerivatives(theta, [data.test.xs[j]], [data.test.ys[j]], 0).g;
    const s = solve(H, gTest);
    const exact = data.train.xs.map((x, i) => -riskDerivatives(theta, [x], [data.train.ys[i]], 0).g.reduce((a, g, k) => a + g * s[k], 0));
    expectClose(scores, exact, 1e-7, 1e-9, 'influence vs host closed form');

    // Leave-one-out: retrain (Newton) without each point.
    const all = Array.from({ length: n }, (_, i) => i);
    const loo = await leaveOneOut((d, removed) => {
      const keep = all.filter((i) => i !== removed);
      return linearModel(newton(keep.map((i) => data.train.xs[i]), keep.map((i) => data.train.ys[i])));
    }, tr, one, all);
    const actual = loo.deltas[0];
    const predicted = Float64Array.from(scores, (v) => -v / n);
    const rho = spearman(predicted, actual);
    console.log(`influence vs leave-one-out (iris, n=${n}, l2=${L2}, test row ${j}, p(y)=${pTest[j].toFixed(3)}): Spearman ${rho.toFixed(4)}; CG ${infos[0].iterations} iterations`);
    expect(rho).toBeGreaterThan(0.8);
    // Magnitudes agree too (first-order approximation): the biggest actual change is predicted within 30%.
    const kMax = actual.reduce((b, v, i) => (Math.abs(v) > Math.abs(actual[b]) ? i : b), 0);
    expect(Math.abs(predicted[kMax] - actual[kMax])).toBeLessThan(0.3 * Math.abs(actual[kMax]));
    // helpful/harmful: the most harmful point's removal lowers the test loss the most.
    const hh = helpfulHarmful(scores, 3);
    expect(hh.harmful[0].score).toBe(Math.max(...scores));
    expect(hh.helpful[0].score).toBe(Math.min(...scores));
    expect(actual[hh.harmful[0].index]).toBeLessThan(0);
    expect(actual[hh.helpful[0].index]).toBeGreaterThan(0);

    // LiSSA (full batch, depth enough for this conditioning) agrees with CG.
    const [lissaScores] = await influence(model, tr, one, { solver: 'lissa', damping: 0, l2: L2, lissa: { depth: 3000, batchSize: n } });
    expectClose(lissaScores, scores, 1e-3, 1e-3 * Math.max(...scores.map(Math.abs)), 'LiSSA vs CG');
    // Stochastic LiSSA (mini-batches of 10 rows) ranks the training points like CG.
    const [lissaMb] = await influence(model, tr, one, { solver: 'lissa', damping: 0, l2: L2, lissa: { depth: 800, batchSize: 10, seed: 1 } });
    const rhoMb = spearman(lissaMb, scores);
    console.log(`mini-batch LiSSA (10 rows, depth 800) vs CG: Spearman ${rhoMb.toFixed(4)}`);
    expect(rhoMb).toBeGreaterThan(0.9);
    // Several test rows at once: one score vector each, the same as one at a time.
    const both = await influence(model, tr, tensors(rows(data.test, [j, (j + 1) % data.test.xs.length])), { damping: 0, l2: L2, cg: { tol: 1e-10 } });
    expect(both).toHaveLength(2);
    expectClose(both[0], scores, 1e-9, 1e-12, 'batched test rows');
    // Restricting to a parameter subset: only the weight, bias held fixed.
    const [wOnly] = await influence(model, tr, one, { params: ['classifier.weight'], damping: 0, l2: L2, cg: { tol: 1e-10 } });
    expect(wOnly.length).toBe(n);
    expect(spearman(wOnly, scores)).toBeGreaterThan(0.5);
    expect(Array.from(wOnly)).not.toEqual(Array.from(scores));
    for (const t of [tr.x, tr.y, te.x, te.y, one.x, one.y]) t.dispose();
  }, 120_000);
});

describe('TracIn', () => {
  it('equals the hand-computed sum over two checkpoints of lr * dot products of per-example gradients', async () => {
    const data = irisTwoClass();
    const sub = rows(data.train, [0, 5, 11, 20, 33]);
    const t1 = newton(data.train.xs, data.train.ys, 1);
    const t2 = newton(data.train.xs, data.train.ys, 0.05);
    const lrs = [0.5, 0.1];
    const test = rows(data.test, [2]);
    const expected = sub.xs.map((x, i) => [t1, t2].reduce((acc, th, k) => {
      const gi = riskDerivatives(th, [x], [sub.ys[i]], 0).g;
      const gt = riskDerivatives(th, test.xs, test.ys, 0).g;
      return acc + lrs[k] * gi.reduce((a, g, q) => a + g * gt[q], 0);
    }, 0));
    const m1 = linearModel(t1), m2 = linearModel(t2);
    const [got] = await tracIn([m1, m2], lrs, tensors(sub), tensors(test));
    expectClose(got, expected, 1e-10, 1e-12, 'TracIn (modules)');
    // Weight maps loaded into one architecture give the same, and leave its weights as they were.
    const host = linearModel(new Float64Array(P));
    const before = await parameterVector(host).values();
    const [fromMaps] = await tracIn([m1.stateDict(), Object.fromEntries(m2.stateDict())], lrs, tensors(sub), tensors(test), { model: host });
    expectClose(fromMaps, expected, 1e-10, 1e-12, 'TracIn (weight maps)');
    expect(Array.from(await parameterVector(host).values())).toEqual(Array.from(before));
    expect(() => helpfulHarmful(got, 2, { higherIsHelpful: true })).not.toThrow();
    expect(helpfulHarmful(got, 1, { higherIsHelpful: true }).helpful[0].score).toBe(Math.max(...got));
    await expect(tracIn([m1], [1, 2], tensors(sub), tensors(test))).rejects.toThrow(/1 checkpoints but 2/);
  });
});

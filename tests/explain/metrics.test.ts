// Explanation metrics against values computed by hand on tiny cases (linear models, whose
// perturbation effects are known in closed form), and the qualitative finding that a gradient
// method beats a random attribution on deletion. Float64 CPU backend.
import { beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import * as ex from '../../explain/index.ts';
import * as M from '../../explain/metrics/index.ts';
import { loadBundled } from '../../models/zoo/index.ts';
import { datasetSplits } from '../../models/data/index.ts';
import { expectClose } from '../helpers.ts';
import { randArray } from '../engine/grad-cases.ts';

beforeAll(async () => {
  await bl.init({ backend: 'cpu' });
});

const h = (data: number[], shape: number[]) => ({ data, shape });
/** f(x) = w . x (one output), for items [N, 4]. */
const linear = (w: number[]) => (x: Tensor) => bl.matmul(x, bl.tensor(w, [w.length, 1], x.backend));

describe('complexity', () => {
  it('sparseness is the Gini index of |a|: 0.75 for one feature of four, 0 for a uniform map', async () => {
    expectClose(await M.sparseness(h([0, 0, 0, 1, 1, 1, 1, 1, 0, -3, 1, 0], [3, 4]), [3, 4]), [0.75, 0, 10 / 16], 1e-12);
  });

  it('complexity is the entropy of |a| / sum |a|', async () => {
    expectClose(await M.complexity(h([1, -1, 0, 0, 0, 0, 0, 2], [2, 4]), [2, 4]), [Math.log(2), 0], 1e-12);
  });

  it('image attributions are summed over channels into pixels', async () => {
    // two channels that cancel in pixel 0 and add in pixel 1
    const s = await M.featureScores('t', h([1, 2, 0, 0, -1, 2, 0, 0], [1, 2, 2, 2]), [1, 2, 2, 2]);
    expect(Array.from(s.values)).toEqual([0, 4, 0, 0]);
    await expect(M.sparseness(h([1, 2, 3], [1, 3]), [1, 4])).rejects.toThrow(/attributions \[1, 3\] must have the input's shape \[1, 4\]/);
    await expect(M.sparseness(h([1, NaN], [1, 2]), [1, 2])).rejects.toThrow(/item 0 is not finite/);
  });
});

describe('localisation', () => {
  const attr = h([2, -1, 1, 1, 0, 5, 0, 1], [2, 1, 2, 2]);
  const masks = h([1, 0, 0, 1, 0, 0, 1, 1], [2, 2, 2]);
  const shape = [2, 1, 2, 2];
  it('pointing game: the maximum in the mask (1) or not (0); a tolerance reaches neighbouring mask pixels', async () => {
    expect(Array.from(await M.pointingGame(attr, shape, masks))).toEqual([1, 0]);
    expect(Array.from(await M.pointingGame(attr, shape, masks, { tolerance: 1 }))).toEqual([1, 1]);
  });
  it('relevance mass: the positive relevance inside the mask over all positive relevance', async () => {
    expectClose(await M.relevanceMass(attr, shape, masks), [3 / 4, 1 / 6], 1e-12);
  });
  it('relevance rank: the share of the top-|mask| features inside the mask (ties: lower index first)', async () => {
    // item 0 order [0, 2, 3, 1]: top 2 = {0, 2}, one inside; item 1 order [1, 3, 0, 2]: {1, 3}, one inside
    expectClose(await M.relevanceRank(attr, shape, masks), [0.5, 0.5], 1e-12);
    expectClose(await M.topKIntersection(attr, shape, masks, { k: 1 }), [1, 0], 1e-12);
    expectClose(await M.topKIntersection(attr, shape, masks, { k: 3 }), [2 / 3, 1 / 3], 1e-12);
  });
  it('bad masks are errors that say what was expected', async () => {
    await expect(M.relevanceMass(attr, shape, h([1, 0, 0, 0], [1, 2, 2]))).rejects.toThrow(/masks \[1, 2, 2\] must hold one value per feature of each of the 2 items/);
    await expect(M.relevanceMass(attr, shape, h([1, 0, 0, 0, 0, 0, 0, 0], [2, 2, 2]))).rejects.toThrow(/mask of item 1 is empty/);
  });
});

describe('faithfulness on a linear model (closed forms)', () => {
  const x = () => bl.tensor([[1, 2, 3, 4]]);
  const f = linear([1, 1, 1, 1]);
  const a = () => bl.tensor([[1, 2, 3, 4]]); // gradient x input

  it('deletion: most relevant first gives 10, 6, 3, 1, 0 (AUC 3.75); least relevant first 6.25', async () => {
    const r = await M.deletion(f, x(), a(), { steps: 4, score: 'logit' });
    expectClose(r.curves[0], [10, 6, 3, 1, 0], 1e-12);
    expectClose(r.auc, [3.75], 1e-12);
    expect(r.fractions).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expectClose((await M.deletion(f, x(), a(), { steps: 4, score: 'logit', order: 'lerf' })).auc, [6.25], 1e-12);
  });

  it('insertion from a reference of 0: 0, 4, 7, 9, 10 (AUC 6.25); a reference of 1 shifts it', async () => {
    const r = await M.insertion(f, x(), a(), { steps: 4, score: 'logit', reference: 0 });
    expectClose(r.curves[0], [0, 4, 7, 9, 10], 1e-12);
    expectClose(r.auc, [6.25], 1e-12);
    expectClose((await M.insertion(f, x(), a(), { steps: 4, score: 'logit', reference: 1 })).curves[0], [4, 7, 9, 10, 10], 1e-12);
  });

  it("score 'probability' is the target's softmax", async () => {
    const f2 = (t: Tensor) => bl.concat([linear([1, 1, 1, 1])(t), bl.mul(linear([1, 1, 1, 1])(t), -1)], 1); // logits [s, -s]
    const r = await M.deletion(f2, x(), a(), { steps: 4, target: 0 });
    expectClose(r.curves[0], [10, 6, 3, 1, 0].map((s) => 1 / (1 + Math.exp(-2 * s))), 1e-12);
  });

  it('pixel flipping / region perturbation: AOPC = mean of f(x) - f(x^(k)) = 6 here', async () => {
    const r = await M.pixelFlipping(f, x(), a(), { reference: 0, steps: 4 });
    expectClose(r.curves[0], [10, 6, 3, 1, 0], 1e-12);
    expectClose(r.aopc, [6], 1e-12);
  });

  it('region perturbation ranks 2x2 regions by summed relevance', async () => {
    // a 4x4 image of ones, relevance only in the bottom-right region (value 1) and top-left (2)
    const img = bl.ones([1, 1, 4, 4]);
    const rel = new Array(16).fill(0);
    for (const j of [0, 1, 4, 5]) rel[j] = 2;
    for (const j of [10, 11, 14, 15]) rel[j] = 1;
    const g = (t: Tensor) => bl.reshape(bl.sum(bl.mul(t, bl.tensor(Array.from({ length: 16 }, (_, j) => j), [1, 1, 4, 4])), [1, 2, 3]), [-1, 1]);
    const r = await M.regionPerturbation(g, img, h(rel, [1, 1, 4, 4]), { regionSize: 2, reference: 0, steps: 4 });
    // removes the top-left cell (0+1+4+5 = 10), then the bottom-right (10+11+14+15 = 50), then the rest in index order
    const total = 120;
    expectClose(r.curves[0], [total, total - 10, total - 60, total - 60 - (2 + 3 + 6 + 7), 0], 1e-12);
  });

  it('faithfulness correlation is 1 for gradient x input of a linear model, lower for a shuffled map', async () => {
    const xs = bl.tensor([[1, -2, 3, 0.5, -1, 2]]);
    const w = [0.5, 1, -1, 2, 0.3, -0.7];
    const g = linear(w);
    const exact = bl.tensor([[0.5, -2, -3, 1, -0.3, -1.4]]);
    expectClose(await M.faithfulnessCorrelation(g, xs, exact, { samples: 40, subsetSize: 2 }), [1], 1e-12);
    const shuffled = bl.tensor([[-1.4, 1, 0.5, -3, -2, -0.3]]);
    expect((await M.faithfulnessCorrelation(g, xs, shuffled, { samples: 40, subsetSize: 2 }))[0]).toBeLessThan(0.9);
  });
});

describe('ROAD imputation', () => {
  it("fills a removed pixel with its neighbours' weighted mean (1/6 direct, 1/12 diagonal)", () => {
    const img = Float32Array.from([1, 2, 3, 4, 0, 6, 7, 8, 9]);
    const removed = Uint8Array.from([0, 0, 0, 0, 1, 0, 0, 0, 0]);
    const out = M.roadImpute(img, 3, 3, 1, removed, 0, () => 0.5);
    const want = ((2 + 4 + 6 + 8) / 6 + (1 + 3 + 7 + 9) / 12) / (4 / 6 + 4 / 12);
    expectClose([out[4]], [want], 1e-6);
    expect(Array.from(out).filter((_, j) => j !== 4)).toEqual([1, 2, 3, 4, 6, 7, 8, 9]);
  });

  it('deletion with ROAD imputation runs on images and differs from the zero reference', async () => {
    const m = await loadBundled('digits-cnn');
    const d = datasetSplits('digits').test;
    const x = bl.tensor(d.x.slice(0, 2 * 64), [2, 1, 8, 8]);
    const attr = await ex.saliency(m, x, { target: 'predicted' });
    const road = await M.deletion(m, x, attr, { imputation: 'road', steps: 8 });
    const zero = await M.deletion(m, x, attr, { steps: 8 });
    expect(road.curves[0][0]).toBeCloseTo(zero.curves[0][0], 10); // the same unperturbed point
    expect(road.auc.some((v, i) => Math.abs(v - zero.auc[i]) > 1e-3)).toBe(true);
  });

  it('ROAD honours batchSize: the same curves in calls of at most batchSize rows', async () => {
    const m = await loadBundled('digits-cnn');
    const d = datasetSplits('digits').test;
    const x = bl.tensor(d.x.slice(0, 2 * 64), [2, 1, 8, 8]);
    const attr = await ex.saliency(m, x, { target: 'predicted' });
    const rows: number[] = [];
    const counting = (t: bl.Tensor) => {
      rows.push(t.shape[0]);
      return m.call(t);
    };
    const whole = await M.deletion(counting, x, attr, { imputation: 'road', steps: 8, target: [1, 2] });
    const wholeRows = rows.splice(0);
    const chunked = await M.deletion(counting, x, attr, { imputation: 'road', steps: 8, batchSize: 4, target: [1, 2] });
    expect(wholeRows).toEqual([9, 9]); // one call of steps + 1 rows per item
    expect(rows).toEqual([4, 4, 1, 4, 4, 1]);
    for (let i = 0; i < 2; i++) expectClose(chunked.curves[i], whole.curves[i], 1e-6);
    await expect(M.deletion(counting, x, attr, { imputation: 'road', batchSize: 0 })).rejects.toThrow(/option 'batchSize' must be a positive integer/);
  });
});

describe('robustness (Yeh et al. 2019)', () => {
  it('infidelity is 0 for the exact attribution of a linear model; doubling it is only fixed by normalize', async () => {
    const w = [0.5, 1, -1, 2];
    const f = linear(w);
    const x = bl.tensor([[1, 2, 3, 4], [0, -1, 2, 1]]);
    const exact = bl.tensor([w, w]);
    const z = await M.infidelity(f, x, exact, { samples: 16 });
    for (const v of z) expect(v).toBeLessThan(1e-20);
    const doubled = bl.mul(exact, 2);
    const d = await M.infidelity(f, x, doubled, { samples: 16 });
    for (const v of d) expect(v).toBeGreaterThan(1e-3);
    for (const v of await M.infidelity(f, x, doubled, { samples: 16, normalize: true })) expect(v).toBeLessThan(1e-20);
  });

  it("infidelity: the caller's target tensor survives; values do not depend on the chunk size; the effect is f(x) - f(x - I)", async () => {
    // a quadratic, two-output model: with a = grad f at x the error is second order, not zero,
    // and it differs between f(x) - f(x - I) and f(x + I) - f(x)
    const f = (t: Tensor) => bl.concat([bl.sum(bl.mul(t, t), 1, { keepDims: true }), bl.sum(t, 1, { keepDims: true })], 1);
    const x = bl.tensor([[1, 2, 3], [0.5, -1, 2], [2, 0, -1]]);
    const target = bl.tensor([0, 1, 0]);
    const a = bl.tensor([[2, 4, 6], [1, 1, 1], [4, 0, -2]]); // the exact gradients of the targets
    const big = await M.infidelity(f, x, a, { target, samples: 8, seed: 3 });
    expect(target.disposed).toBe(false);
    const small = await M.infidelity(f, x, a, { target, samples: 8, seed: 3, batchSize: 8 });
    expectClose(small, big, 1e-12, 1e-15, 'chunked');
    // item 1 (the linear output) is exact: 0; items 0 and 2 have E[(I.I)^2] = sigma^4 (d^2 + 2d) > 0
    expect(big[1]).toBeLessThan(1e-20);
    for (const i of [0, 2]) expect(big[i]).toBeGreaterThan(1e-5);
  });

  it('metrics leave no tensors behind when the explainer or the model fails', async () => {
    const x = bl.tensor([[1, 2, 3, 4]]);
    const before = bl.memory().liveBuffers;
    await expect(M.sensitivityMax(async (t: Tensor) => bl.zeros([t.shape[0] + 1, 4]), x, { target: 0 })).rejects.toThrow(/explain returned/);
    const box = ex.blackBox(async () => {
      throw new Error('served model down');
    });
    await expect(M.deletion(box, bl.tensor(randArray(2 * 16, 9), [1, 2, 4, 4]), bl.ones([1, 2, 4, 4]), { reference: 'blur', target: 0 })).rejects.toThrow(/served model down/);
    await expect(M.regionPerturbation(box, x, bl.ones([1, 4]), { target: 0 })).rejects.toThrow(/served model down/);
    expect(bl.memory().liveBuffers - before).toBeLessThanOrEqual(3); // x and the two inputs made here
  });

  it('sensitivity-max: 0 for a constant explanation; for e(x) = x it is at most r sqrt(d) / |x|', async () => {
    const x = bl.tensor([[1, 2, 3, 4]]);
    const constant = async (t: Tensor) => bl.onesLike(t);
    expect(Array.from(await M.sensitivityMax(constant, x, { target: 0 }))).toEqual([0]);
    const identity = async (t: Tensor) => bl.mul(t, 1);
    const s = (await M.sensitivityMax(identity, x, { target: 0, radius: 0.05 }))[0];
    expect(s).toBeGreaterThan(0);
    expect(s).toBeLessThanOrEqual((0.05 * 2) / Math.sqrt(30));
    await expect(M.sensitivityMax(identity, x, { target: [0, 1] })).rejects.toThrow(/'target' must be a class index or one per item \(1\)/);
  });
});

describe('on the bundled digits CNN', () => {
  it('deletion: integrated gradients beat a random attribution, averaged over 50 test images', async () => {
    const m = await loadBundled('digits-cnn');
    const d = datasetSplits('digits').test;
    const n = 50;
    const x = bl.tensor(d.x.slice(0, n * 64), [n, 1, 8, 8]);
    const ig = await ex.integratedGradients(m, x, { target: 'predicted', steps: 16 });
    const random = bl.tensor(randArray(n * 64, 77, 0, 1), [n, 1, 8, 8]);
    const dIg = await M.deletion(m, x, ig);
    const dRand = await M.deletion(m, x, random);
    const mean = (v: Float64Array) => v.reduce((s, t) => s + t, 0) / v.length;
    console.log(`deletion AUC (probability of the predicted class, 20 steps, reference 0), digits-cnn, ${n} test images: IG ${mean(dIg.auc).toFixed(4)}, random ${mean(dRand.auc).toFixed(4)}`);
    expect(mean(dIg.auc)).toBeLessThan(mean(dRand.auc));
    const iIg = await M.insertion(m, x, ig);
    const iRand = await M.insertion(m, x, random);
    console.log(`insertion AUC (from a blurred image): IG ${mean(iIg.auc).toFixed(4)}, random ${mean(iRand.auc).toFixed(4)}`);
    expect(mean(iIg.auc)).toBeGreaterThan(mean(iRand.auc));
  });
});

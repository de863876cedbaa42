// Deep ensembles (Lakshminarayanan et al. 2017): ensemble() against hand-made member outputs,
// and trainEnsemble() on the bundled breast-cancer-mlp's recipe: member 0 (the recipe's seed)
// follows trainBundled's run epoch by epoch, the others differ, the ensemble is accurate, and its
// members disagree more on noise than on the test split. Float64 CPU backend.
import { beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import * as ex from '../../explain/uncertainty/index.ts';
import { Linear, Module, Sequential, setInitSeed } from '../../models/index.ts';
import { trainBundled } from '../../models/zoo/train.ts';
import { zooSpec } from '../../models/zoo/index.ts';
import { datasetSplits } from '../../models/data/index.ts';
import { expectClose, rng } from '../helpers.ts';

beforeAll(async () => {
  await bl.init({ backend: 'cpu' });
});

const read = async (t: Tensor) => Float64Array.from(await t.data());
const free = (r: ex.PredictiveUncertainty) => [r.mean, r.std, r.entropy, r.mutualInformation].forEach((t) => t.dispose());
const H = (p: number[]) => -p.reduce((a, v) => a + v * Math.log(v), 0);
const avg = (d: ArrayLike<number>) => Array.from(d).reduce((a, b) => a + b, 0) / d.length;

describe('ensemble', () => {
  it('mean / std / entropy / MI over members, by hand (members as functions returning log-probabilities)', async () => {
    // Item 0: members say [.9, .1] and [.5, .5]: mean [.7, .3], std [.2, .2], MI = H(.7) - (H(.9) + H(.5)) / 2.
    // Item 1: both say [.2, .8]: std 0, MI 0.
    const member = (rows: number[][]) => (x: Tensor) => bl.tensor(rows.slice(0, x.shape[0]).flat().map(Math.log), [x.shape[0], 2]);
    const a = member([[0.9, 0.1], [0.2, 0.8]]), b = member([[0.5, 0.5], [0.2, 0.8]]);
    const r = await ex.ensemble([a, b], bl.zeros([2, 3]));
    expectClose(await read(r.mean), [0.7, 0.3, 0.2, 0.8], 1e-15);
    expectClose(await read(r.std), [0.2, 0.2, 0, 0], 1e-15, 1e-15);
    expectClose(await read(r.entropy), [H([0.7, 0.3]), H([0.2, 0.8])], 1e-15);
    expectClose(await read(r.mutualInformation), [H([0.7, 0.3]) - (H([0.9, 0.1]) + H([0.5, 0.5])) / 2, 0], 1e-14, 1e-15);
    expect(r.samples).toBe(2);
    free(r);
    // 'probs' outputs skip the softmax: the same numbers from probabilities.
    const pa = (x: Tensor) => bl.exp(a(x)), pb = (x: Tensor) => bl.exp(b(x));
    const q = await ex.ensemble([pa, pb], bl.zeros([2, 3]), { outputs: 'probs' });
    expectClose(await read(q.mutualInformation), [H([0.7, 0.3]) - (H([0.9, 0.1]) + H([0.5, 0.5])) / 2, 0], 1e-14, 1e-15);
    free(q);
  });

  it('chunked batches give the same result; members run in eval mode and keep their modes', async () => {
    setInitSeed(3);
    const ms = [new Sequential(new Linear(4, 3)), new Sequential(new Linear(4, 3)), new Sequential(new Linear(4, 3))];
    ms[1].train();
    const x = bl.tensor(Array.from({ length: 7 * 4 }, rng(1)), [7, 4]);
    const r1 = await ex.ensemble(ms, x), r2 = await ex.ensemble(ms, x, { batchSize: 3 });
    for (const k of ['mean', 'std', 'entropy', 'mutualInformation'] as const) expectClose(await read(r2[k]), await read(r1[k]), 1e-15, 1e-15, k);
    expect(ms.map((m) => m.training)).toEqual([false, true, false]);
    [r1, r2].forEach(free);
    expect(x.disposed).toBe(false);
  });

  it('errors: no members, a non-model, class counts that differ, bad options', async () => {
    await expect(ex.ensemble([], bl.zeros([1, 4]))).rejects.toThrow(/ensemble: models must be a non-empty array of members, got an empty array/);
    await expect(ex.ensemble([null as never], bl.zeros([1, 4]))).rejects.toThrow(/member 0 is not a backlight Module or a function \(got null\)/);
    setInitSeed(1);
    await expect(ex.ensemble([new Linear(4, 3), new Linear(4, 2)], bl.zeros([1, 4]))).rejects.toThrow(/ensemble: member 1 returns 2 classes, member 0 returns 3/);
    await expect(ex.ensemble([new Linear(4, 3), new Linear(4, 3)], bl.zeros([1, 5]))).rejects.toThrow(/ensemble: member 0 failed: Linear '': expected 4 input features/);
    await expect(ex.ensemble([new Linear(4, 3), new Linear(4, 3)], bl.zeros([1, 4]), { batchSize: 0 })).rejects.toThrow(/batchSize must be a positive integer, got 0/);
    await expect(ex.trainEnsemble(zooSpec('breast-cancer-mlp'), datasetSplits('breast-cancer').train, { seeds: [1, 1] })).rejects.toThrow(/trainEnsemble: seeds must differ between members, got \[1, 1\]/);
  });
});

describe('trainEnsemble on breast-cancer-mlp', () => {
  it('trains as trainBundled does: with the recipe\'s seed, member 0 follows the bundled model\'s training run', async () => {
    const { train } = datasetSplits('breast-cancer');
    const histories: { loss: number; accuracy: number }[][] = [];
    const members = await ex.trainEnsemble(zooSpec('breast-cancer-mlp'), train, { members: 1, epochs: 3, onMember: (_i, _s, h) => histories.push(h) });
    const summary = await trainBundled('breast-cancer-mlp', { epochs: 3, write: false, progress: false });
    expect(histories[0].map((h) => Math.round(h.loss * 1e6) / 1e6)).toEqual(summary.history.map((h) => h.loss));
    expect(histories[0].map((h) => Math.round(h.accuracy * 1e6) / 1e6)).toEqual(summary.history.map((h) => h.accuracy));
    members.forEach((m) => m.dispose());
  });

  it('members differ; the ensemble is accurate and its members disagree more on noise than on the test split', async () => {
    const { train, test } = datasetSplits('breast-cancer');
    const t0 = performance.now();
    const seeds: number[] = [];
    const members = await ex.trainEnsemble(zooSpec('breast-cancer-mlp'), train, { members: 3, epochs: 12, onMember: (_i, s) => seeds.push(s) });
    const seconds = (performance.now() - t0) / 1000;
    expect(seeds).toEqual([0, 1, 2]);
    const w = (m: Module) => read(m.module('features.0').param('weight'));
    const [w0, w1, w2] = await Promise.all(members.map(w));
    expect(Array.from(w1)).not.toEqual(Array.from(w0));
    expect(Array.from(w2)).not.toEqual(Array.from(w1));
    const x = bl.tensor(test.x, [test.n, 30]);
    const r = await ex.ensemble(members, x);
    const pred = await read(bl.argmax(r.mean, 1));
    const acc = Array.from(pred).filter((p, i) => p === test.y[i]).length / test.n;
    // Noise over each feature's training mean +- 3 sd.
    const F = 30, rnd = rng(9), mu = new Float64Array(F), s = new Float64Array(F);
    for (let j = 0; j < F; j++) {
      for (let i = 0; i < train.n; i++) mu[j] += train.x[i * F + j] / train.n;
      for (let i = 0; i < train.n; i++) s[j] += (train.x[i * F + j] - mu[j]) ** 2 / train.n;
      s[j] = Math.sqrt(s[j]);
    }
    const noise = bl.tensor(new Float32Array(test.n * F).map((_, i) => mu[i % F] + s[i % F] * (6 * rnd() - 3)), [test.n, F]);
    const rn = await ex.ensemble(members, noise);
    const [miIn, miOut] = [avg(await r.mutualInformation.data()), avg(await rn.mutualInformation.data())];
    const [hIn, hOut] = [avg(await r.entropy.data()), avg(await rn.entropy.data())];
    console.log(`deep ensemble of 3 breast-cancer-mlp (12 epochs each, trained in ${seconds.toFixed(1)} s): test accuracy ${(acc * 100).toFixed(1)}%; mean MI test ${miIn.toFixed(4)} / noise ${miOut.toFixed(4)}; mean entropy test ${hIn.toFixed(4)} / noise ${hOut.toFixed(4)}`);
    expect(acc).toBeGreaterThanOrEqual(0.93);
    expect(miOut).toBeGreaterThan(2 * miIn);
    expect(hOut).toBeGreaterThan(2 * hIn);
    [r, rn].forEach(free);
    members.forEach((m) => m.dispose());
  });
});

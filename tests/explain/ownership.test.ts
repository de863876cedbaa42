// The bad-input and ownership bugs found by trying the explainers as a user would (issue 15's
// list): a caller's single-channel map disposed by the heatmap code, deepLift's ignored
// returnDelta, a misleading error for nested targets, a layer given as its module. CPU backend.
import { beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import * as ex from '../../explain/index.ts';
import { loadBundled } from '../../models/zoo/index.ts';
import { Linear, ReLU, Sequential, setInitSeed } from '../../models/index.ts';
import { expectClose } from '../helpers.ts';
import { randArray } from '../engine/grad-cases.ts';

beforeAll(async () => {
  await bl.init({ backend: 'cpu' });
});

describe('ownership and option handling', () => {
  it("normalizedMaps and heatmapPng leave the caller's single-channel map alive", async () => {
    const a = bl.tensor(randArray(2 * 16, 3), [2, 1, 4, 4]);
    await ex.normalizedMaps(a);
    await ex.heatmapPng(a);
    expect(a.disposed).toBe(false);
    expect((await a.data()).length).toBe(32);
  });

  it('deepLift returnDelta gives sum(attributions) - (F(x) - F(r)) per item', async () => {
    setInitSeed(9);
    const m = new Sequential(new Linear(4, 5), new ReLU(), new Linear(5, 3));
    const x = bl.tensor(randArray(8, 4), [2, 4]);
    const r = await ex.deepLift(m, x, { target: [0, 2], baseline: 0.1, returnDelta: true });
    const out = await m.call(x).data();
    const ref = await m.call(bl.full([2, 4], 0.1)).data();
    const a = await r.attributions.data();
    const want = [0, 1].map((i) => a[i * 4] + a[i * 4 + 1] + a[i * 4 + 2] + a[i * 4 + 3] - (out[i * 3 + [0, 2][i]] - ref[i * 3 + [0, 2][i]]));
    expectClose(await r.delta.data(), want, 1e-12, 1e-12);
    // DeepLIFT's rescale rule sums to the output difference on a relu MLP
    for (const d of await r.delta.data()) expect(Math.abs(d)).toBeLessThan(1e-9);
    expect((await ex.deepLift(m, x, { target: 0 })).shape).toEqual([2, 4]);
  });

  it('nested targets are an error that says what targets may be', async () => {
    const m = await loadBundled('digits-cnn');
    const x = bl.tensor(randArray(2 * 64, 5, 0, 1), [2, 1, 8, 8]);
    await expect(ex.saliency(m, x, { target: [[0, 1], [2, 3]] as unknown as number[] })).rejects.toThrow(/one class index per item \(a flat array of 2 numbers\).*nested/);
  });

  it("explainers run the model in eval mode and give back every submodule's own training flag", async () => {
    const m = await loadBundled('breast-cancer-mlp');
    m.train();
    const dropout = m.namedModules().find(([, l]) => l.kind === 'Dropout')![1];
    dropout.eval(); // a caller's frozen child inside a training model
    const x = bl.tensor(randArray(2 * 30, 7, 0, 10), [2, 30]);
    await ex.saliency(m, x, { target: 0 });
    expect(m.training).toBe(true);
    expect(dropout.training).toBe(false);
    expect(m.module('features.0').training).toBe(true);
  });

  it('a layer may be given as the layer module itself', async () => {
    const m = await loadBundled('digits-cnn');
    const x = bl.tensor(randArray(2 * 64, 6, 0, 1), [2, 1, 8, 8]);
    const byName = await (await ex.gradCam(m, x, { layer: 'features.5', target: 1 })).data();
    const byModule = await (await ex.gradCam(m, x, { layer: m.module('features.5'), target: 1 })).data();
    expect(Array.from(byModule)).toEqual(Array.from(byName));
    await expect(ex.gradCam(m, x, { layer: m, target: 1 })).rejects.toThrow(/has no path \(it is the root model/);
    await expect(ex.gradCam(m, x, { layer: 3 as unknown as string, target: 1 })).rejects.toThrow(/layer option .* is required, got number/);
  });
});

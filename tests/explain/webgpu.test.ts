// Explainers on WebGPU against the same explainers on the float64 CPU backend (same weights),
// and the memory contract: thousands of explanations leave no live GPU buffers behind.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import type { Backend, Tensor } from '../../engine/index.ts';
import type { WebGpuBackend } from '../../engine/webgpu/backend.ts';
import * as ex from '../../explain/index.ts';
import { BatchNorm2d, Conv2d, GlobalAvgPool, Linear, MaxPool2d, ReLU, Residual, Sequential, Softplus, setInitSeed } from '../../models/index.ts';
import { expectClose } from '../helpers.ts';
import { randArray } from '../engine/grad-cases.ts';

let cpu: Backend;
let gpu: WebGpuBackend;
beforeAll(async () => {
  cpu = await bl.init({ backend: 'cpu', setDefault: false });
  gpu = (await bl.init({ backend: 'webgpu', setDefault: false })) as WebGpuBackend;
  gpu.poisonOutputs = true;
});
afterAll(() => gpu?.destroy());

function build(b: Backend) {
  return bl.withBackend(b, () => {
    setInitSeed(11);
    return new Sequential(
      ['features', new Sequential(new Conv2d(3, 6, 3, { padding: 1 }), new ReLU(), new MaxPool2d({ kernel: 2 }), new Conv2d(6, 7, 3, { padding: 1 }), new Softplus())],
      ['pool', new GlobalAvgPool()],
      ['fc', new Linear(7, 4)],
    );
  });
}

type Run = (m: Sequential, x: Tensor) => Promise<Tensor>;
const runs: [string, Run][] = [
  ['saliency', (m, x) => ex.saliency(m, x, { target: [1, 3, 0] })],
  ['integratedGradients', (m, x) => ex.integratedGradients(m, x, { target: 'predicted', steps: 8 })],
  ['smoothGrad', (m, x) => ex.smoothGrad(m, x, { target: 2, samples: 3, stdev: 0.1, seed: 4 })],
  ['guidedBackprop', (m, x) => ex.guidedBackprop(m, x, { target: [0, 1, 2] })],
  ['deepLift', (m, x) => ex.deepLift(m, x, { target: 1, baseline: 0.1 })],
  ['gradCam', (m, x) => ex.gradCam(m, x, { layer: 'features.3', target: [3, 2, 1], upsample: true })],
  ['gradCamPlusPlus exact', (m, x) => ex.gradCamPlusPlus(m, x, { layer: 'features', target: [3, 2, 1], probeBatch: 64 })],
  ['scoreCam', (m, x) => ex.scoreCam(m, x, { layer: 'features', target: [0, 1, 2] })],
  ['layerIntegratedGradients', (m, x) => ex.layerIntegratedGradients(m, x, { layer: 'features.2', target: 1, steps: 6 })],
  ['lrp epsilon-plus-flat', (m, x) => ex.lrp(m, x, { target: [1, 3, 0] })],
  ['lrp epsilon-gamma-box', (m, x) => ex.lrp(m, x, { target: 'predicted', composite: 'epsilon-gamma-box', low: -1, high: 1 })],
  ['lrp epsilon-alpha2-beta1, relevance at a layer', async (m, x) => (await ex.lrp(m, x, { target: 2, composite: 'epsilon-alpha2-beta1', returnLayers: true })).layers['features.1']],
];

describe('explainers on WebGPU match the CPU reference', () => {
  const xData = randArray(3 * 3 * 7 * 9, 5);
  for (const [name, run] of runs) {
    it(name, async () => {
      const mc = build(cpu), mg = build(gpu);
      const xc = bl.tensor(xData, [3, 3, 7, 9], cpu), xg = bl.tensor(xData, [3, 3, 7, 9], gpu);
      const [a, b] = [await run(mg, xg), await run(mc, xc)];
      expect(a.shape).toEqual(b.shape);
      const e = await b.data();
      const scale = Math.max(...Array.from(e, Math.abs));
      // Relative to the map's scale: float32 vs float64 through a whole network and its backward.
      expectClose(await a.data(), e, 2e-4, 2e-4 * scale, name);
    });
  }
});

describe('memory', () => {
  it('thousands of explanations leave the live GPU buffer count where it started', async () => {
    // A tiny model: the point is the count of explanations, not their size.
    const m = bl.withBackend(gpu, () => {
      setInitSeed(3);
      return new Sequential(['features', new Sequential(new Conv2d(3, 2, 1), new ReLU())], ['pool', new GlobalAvgPool()], ['fc', new Linear(2, 2)]);
    });
    const x = bl.tensor(randArray(2 * 3 * 4 * 4, 8), [2, 3, 4, 4], gpu);
    await gpu.sync();
    const before = bl.memory(gpu);
    for (let i = 0; i < 1000; i++) {
      const r = i % 3 === 0 ? await ex.saliency(m, x, { target: 1 }) : i % 3 === 1 ? await ex.gradCam(m, x, { layer: 'features', target: 'predicted' }) : await ex.integratedGradients(m, x, { target: 0, steps: 2 });
      r.dispose();
    }
    await gpu.sync();
    const after = bl.memory(gpu);
    expect(after.liveBuffers).toBe(before.liveBuffers);
    expect(after.liveBytes).toBe(before.liveBytes);
  });

  it('hundreds of LRP explanations (BatchNorm folded and restored each time, per-layer relevance) leave no live buffers', async () => {
    const m = bl.withBackend(gpu, () => {
      setInitSeed(6);
      return new Sequential(new Conv2d(3, 2, 1, { bias: false }), new BatchNorm2d(2), new ReLU(), new Residual(new Sequential(new Conv2d(2, 2, 1), new ReLU())), new GlobalAvgPool(), new Linear(2, 2));
    });
    const x = bl.tensor(randArray(2 * 3 * 4 * 4, 9), [2, 3, 4, 4], gpu);
    await gpu.sync();
    const before = bl.memory(gpu);
    const state = [...m.stateDict()];
    for (let i = 0; i < 120; i++) {
      // failures after the canonizer folded the model: a bad target, a rule that throws
      if (i % 10 === 3) await expect(ex.lrp(m, x, { target: 7 })).rejects.toThrow(/out of range/);
      if (i % 10 === 7) await expect(ex.lrp(m, x, { target: 1, rules: { Linear: () => { throw new Error('rule failed'); } } })).rejects.toThrow(/rule failed/);
      if (i % 2 === 0) (await ex.lrp(m, x, { target: 1, composite: i % 4 === 0 ? 'epsilon-gamma-box' : 'epsilon-plus-flat' })).dispose();
      else {
        const r = await ex.lrp(m, x, { target: 'predicted', returnLayers: true });
        r.attribution.dispose();
        for (const t of Object.values(r.layers)) t.dispose();
      }
    }
    await gpu.sync();
    const after = bl.memory(gpu);
    expect(after.liveBuffers).toBe(before.liveBuffers);
    expect(after.liveBytes).toBe(before.liveBytes);
    expect([...m.stateDict()]).toEqual(state);
  });

  it('explainers that fail after the forward pass (a target out of range) leave no live buffers', async () => {
    const m = bl.withBackend(gpu, () => {
      setInitSeed(8);
      return new Sequential(['features', new Sequential(new Conv2d(3, 2, 1), new ReLU())], ['pool', new GlobalAvgPool()], ['fc', new Linear(2, 2)]);
    });
    const x = bl.tensor(randArray(2 * 3 * 4 * 4, 8), [2, 3, 4, 4], gpu);
    await gpu.sync();
    const before = bl.memory(gpu);
    for (let i = 0; i < 5; i++) {
      await expect(ex.saliency(m, x, { target: 5 })).rejects.toThrow(/out of range/);
      await expect(ex.integratedGradients(m, x, { target: 5, steps: 3 })).rejects.toThrow(/out of range/);
      await expect(ex.gradCam(m, x, { layer: 'features', target: 5 })).rejects.toThrow(/out of range/);
    }
    await gpu.sync();
    expect(bl.memory(gpu).liveBuffers).toBe(before.liveBuffers);
  });
});

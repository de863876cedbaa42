// Perturbation explainers on WebGPU (float32) against the same calls on the float64 CPU backend,
// same weights, same seeds (the coalitions are drawn on the host, so they are the same on every
// adapter); and the memory contract: no GPU buffer outlives a call, whatever the sample count.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import type { Backend, Tensor } from '../../engine/index.ts';
import type { WebGpuBackend } from '../../engine/webgpu/backend.ts';
import * as ex from '../../explain/index.ts';
import { Conv2d, GlobalAvgPool, Linear, ReLU, Sequential, Softplus, setInitSeed } from '../../models/index.ts';
import { expectClose, randArray, rng } from '../helpers.ts';

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
    setInitSeed(21);
    return new Sequential(
      ['features', new Sequential(new Conv2d(2, 4, 3, { padding: 1 }), new ReLU(), new Conv2d(4, 5, 3, { padding: 1 }), new Softplus())],
      ['pool', new GlobalAvgPool()],
      ['fc', new Linear(5, 3)],
    );
  });
}

const shape = [2, 2, 6, 7];
const xData = randArray(rng(31), 2 * 2 * 6 * 7, 0, 1);
const bgData = randArray(rng(32), 3 * 2 * 6 * 7, 0, 1);

type Run = (m: Sequential, x: Tensor, bg: Tensor) => Promise<Tensor>;
const runs: [string, Run][] = [
  ['occlusion', (m, x) => ex.occlusion(m, x, { window: 3, stride: 2, baseline: 0.2, target: [0, 2] })],
  ['featureAblation', (m, x) => ex.featureAblation(m, x, { features: ex.grid(3), target: 'predicted' })],
  ['featurePermutation', (m, x) => ex.featurePermutation(m, x, { features: ex.grid(3), target: 1, seed: 2 })],
  ['predictionDifference', (m, x, bg) => ex.predictionDifference(m, x, { background: bg, window: 3, stride: 3, target: 1 })],
  ['kernelShap (exact, 6 features)', (m, x) => ex.kernelShap(m, x, { features: ex.grid(3), target: [1, 2] })],
  ['kernelShap (sampled, 12 features, background)', (m, x, bg) => ex.kernelShap(m, x, { features: ex.grid(2), background: bg, samples: 60, seed: 3, target: 0 })],
  ['shapleySampling', (m, x) => ex.shapleySampling(m, x, { features: ex.grid(3), samples: 4, seed: 1, target: 2 })],
  ['shapleyExact', (m, x) => ex.shapleyExact(m, x, { features: ex.grid(3), target: 0, batchSize: 20 })],
  ['lime', (m, x) => ex.lime(m, x, { features: ex.grid(3), samples: 50, seed: 5, target: 1 })],
];

describe('perturbation explainers on WebGPU match the CPU reference', () => {
  for (const [name, run] of runs) {
    it(name, async () => {
      const mc = build(cpu), mg = build(gpu);
      const xc = bl.tensor(xData, shape, cpu), xg = bl.tensor(xData, shape, gpu);
      const bc = bl.tensor(bgData, [3, 2, 6, 7], cpu), bg = bl.tensor(bgData, [3, 2, 6, 7], gpu);
      const want = await bl.withBackend(cpu, () => run(mc, xc, bc));
      const got = await bl.withBackend(gpu, () => run(mg, xg, bg));
      expect(got.backend).toBe(gpu);
      expect(got.shape).toEqual(shape);
      const w = await want.data();
      // Not a vacuous comparison: the reference has values of a size that float32 can get wrong.
      expect(Math.max(...Array.from(w, Math.abs))).toBeGreaterThan(1e-3);
      expectClose(await got.data(), w, 1e-5, 1e-5, name);
      for (const t of [want, got, xc, xg, bc, bg]) t.dispose();
      mc.dispose();
      mg.dispose();
    });
  }
});

describe('memory', () => {
  it('no live GPU buffers are left behind, and the count does not grow with the samples', async () => {
    const m = build(gpu);
    const x = bl.tensor(xData, shape, gpu);
    const live = () => gpu.memory().liveBuffers;
    // Sample the live buffers at every chunk (the progress callback runs between chunks).
    let peak = 0;
    const run = (samples: number) =>
      bl.withBackend(gpu, () => ex.kernelShap(m, x, { features: ex.grid(2), samples, seed: 1, target: 0, batchSize: 64, onProgress: () => (peak = Math.max(peak, live())) }));
    (await run(40)).dispose();
    const before = live();
    peak = 0;
    (await run(40)).dispose();
    const peakSmall = peak;
    expect(peakSmall).toBeGreaterThan(0); // the sampling saw the chunks
    peak = 0;
    (await run(400)).dispose();
    expect(live()).toBe(before);
    // 10x the samples, the same chunk size: the same working set (a few buffers of slack for
    // the reduction's accumulator being swapped).
    expect(peak).toBeLessThanOrEqual(peakSmall + 4);
    x.dispose();
    m.dispose();
  });
});

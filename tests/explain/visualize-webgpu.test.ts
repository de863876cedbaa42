// Feature visualisation on WebGPU (float32) against the float64 CPU backend with the same weights:
// the same start noise (Philox) and transforms (host generator), so a few Adam steps agree to
// float32 rounding; steps compile no new pipelines after the first (the parameters and Adam's
// moments are emitted every step instead of growing one fused chain); no live buffers are left.
// Small cases only (software Vulkan in CI).
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import type { Backend } from '../../engine/index.ts';
import type { WebGpuBackend } from '../../engine/webgpu/backend.ts';
import * as vis from '../../explain/visualize/index.ts';
import { datasetSplits } from '../../models/data/index.ts';
import { modelFromSafetensors, weightsPath } from '../../models/zoo/index.ts';
import { expectClose } from '../helpers.ts';

let cpu: Backend;
let gpu: WebGpuBackend;
beforeAll(async () => {
  cpu = await bl.init({ backend: 'cpu', setDefault: false });
  gpu = (await bl.init({ backend: 'webgpu', setDefault: false })) as WebGpuBackend;
  gpu.poisonOutputs = true;
});
afterAll(() => gpu?.destroy());

const load = (b: Backend) => bl.withBackend(b, () => modelFromSafetensors(new Uint8Array(readFileSync(weightsPath('digits-cnn'))), 'digits-cnn').model);

describe('feature visualisation on WebGPU vs the CPU backend', () => {
  it('activation maximisation (pixel + transforms + penalties, and Fourier) agrees; later steps compile nothing; no live buffers left', async () => {
    const mc = load(cpu), mg = load(gpu);
    const cases: vis.ActivationMaxOptions[] = [
      { layer: 'features', channel: [3, 7], inputShape: [1, 8, 8], steps: 12, regularizers: { jitter: 1, rotate: 10, scale: [0.9, 1.1], tv: 0.1, l2: 0.1 } },
      { layer: 'classifier', channel: 2, inputShape: [1, 8, 8], steps: 8, parameterization: 'fourier' },
    ];
    for (const o of cases) {
      const rc = await bl.withBackend(cpu, () => vis.activationMaximization(mc, o));
      const rg = await bl.withBackend(gpu, () => vis.activationMaximization(mg, o));
      expect(rg.image.backend).toBe(gpu);
      expect(rc.history[o.steps! - 1]).toBeGreaterThan(rc.history[0]); // not a vacuous comparison
      expectClose(rg.history, rc.history, 1e-4, 1e-4, `${o.parameterization ?? 'pixel'} history`);
      expectClose(rg.final, rc.final, 1e-4, 1e-4, 'final');
      expectClose(await rg.image.data(), await rc.image.data(), 1e-4, 1e-4, 'image');
      rc.image.dispose();
      rg.image.dispose();
    }
    // Warm: a longer run compiles no pipeline the short one did not.
    const o = cases[0];
    const before = gpu.memory().liveBuffers;
    (await bl.withBackend(gpu, () => vis.activationMaximization(mg, { ...o, steps: 4 }))).image.dispose();
    const compiled = gpu.rt.pipelineCount;
    (await bl.withBackend(gpu, () => vis.activationMaximization(mg, { ...o, steps: 20 }))).image.dispose();
    expect(gpu.rt.pipelineCount).toBe(compiled);
    expect(gpu.memory().liveBuffers).toBe(before);
    [mc, mg].forEach((m) => m.dispose());
  });

  it('top examples, filter grids and activation maps agree', async () => {
    const mc = load(cpu), mg = load(gpu);
    const test = datasetSplits('digits').test;
    const xs = test.x.subarray(0, 40 * 64);
    const xc = bl.tensor(xs, [40, 1, 8, 8], cpu), xg = bl.tensor(xs, [40, 1, 8, 8], gpu);
    const o = { layer: 'features', channel: 9, k: 5, batchSize: 16 };
    const tc = await vis.topActivatingExamples(mc, xc, o), tg = await vis.topActivatingExamples(mg, xg, o);
    expect(tg.indices).toEqual(tc.indices);
    expectClose(tg.values, tc.values, 1e-5);
    expectClose(await vis.filterImages(mg).data(), await vis.filterImages(mc).data(), 1e-6);
    const ac = await vis.activationMaps(mc, xc, 'features.2', { normalize: true }), ag = await vis.activationMaps(mg, xg, 'features.2', { normalize: true });
    expectClose(await ag.data(), await ac.data(), 1e-4);
    [mc, mg].forEach((m) => m.dispose());
  });
});

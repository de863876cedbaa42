// Uncertainty on WebGPU (float32) against the float64 CPU backend with the same weights: MC dropout
// draws the same Philox masks on both, so the statistics agree to float32 rounding; ensembles,
// Bayesian layers and reconstruction errors likewise; and none of them leaves live GPU buffers.
// Small cases only (software Vulkan in CI).
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import type { Backend, Tensor } from '../../engine/index.ts';
import type { WebGpuBackend } from '../../engine/webgpu/backend.ts';
import * as ex from '../../explain/uncertainty/index.ts';
import { BayesLinear, ReLU, Sequential, setInitSeed, type Module } from '../../models/index.ts';
import { modelFromSafetensors, weightsPath } from '../../models/zoo/index.ts';
import { datasetSplits } from '../../models/data/index.ts';
import { expectClose } from '../helpers.ts';

let cpu: Backend;
let gpu: WebGpuBackend;
beforeAll(async () => {
  cpu = await bl.init({ backend: 'cpu', setDefault: false });
  gpu = (await bl.init({ backend: 'webgpu', setDefault: false })) as WebGpuBackend;
  gpu.poisonOutputs = true;
});
afterAll(() => gpu?.destroy());

const load = (b: Backend, name: string) => bl.withBackend(b, () => modelFromSafetensors(new Uint8Array(readFileSync(weightsPath(name))), name).model);
const free = (r: ex.PredictiveUncertainty) => [r.mean, r.std, r.entropy, r.mutualInformation].forEach((t) => t.dispose());
const keys = ['mean', 'std', 'entropy', 'mutualInformation'] as const;

async function same(a: ex.PredictiveUncertainty, b: ex.PredictiveUncertainty, what: string) {
  for (const k of keys) expectClose(await a[k].data(), await b[k].data(), 1e-5, 1e-5, `${what} ${k}`);
}

describe('uncertainty on WebGPU vs the CPU backend', () => {
  it('MC dropout on breast-cancer-mlp (the same masks), chunked; no live buffers left', async () => {
    const { test } = datasetSplits('breast-cancer');
    const mc = load(cpu, 'breast-cancer-mlp'), mg = load(gpu, 'breast-cancer-mlp');
    const xs = test.x.subarray(0, 12 * 30);
    const xc = bl.tensor(xs, [12, 30], cpu), xg = bl.tensor(xs, [12, 30], gpu);
    const opts = { samples: 16, seed: 5, batchSize: 64 };
    const rc = await bl.withBackend(cpu, () => ex.mcDropout(mc, xc, opts));
    const rg = await bl.withBackend(gpu, () => ex.mcDropout(mg, xg, opts));
    expect(Math.max(...Array.from(await rc.std.data()))).toBeGreaterThan(1e-3); // not a vacuous comparison
    await same(rg, rc, 'mcDropout');
    free(rc);
    free(rg);
    const before = gpu.memory().liveBuffers;
    for (let i = 0; i < 2; i++) free(await bl.withBackend(gpu, () => ex.mcDropout(mg, xg, opts)));
    expect(gpu.memory().liveBuffers).toBe(before);
    [mc, mg].forEach((m) => m.dispose());
    xc.dispose();
    xg.dispose();
  });

  it('ensemble, bayesPredictive and reconstructionError agree; no live buffers left', async () => {
    const build = (b: Backend) => bl.withBackend(b, () => {
      setInitSeed(2);
      const members: Module[] = [0, 1, 2].map(() => new Sequential(new BayesLinear(6, 8, { seed: 3 }), new ReLU(), new BayesLinear(8, 3, { seed: 4 })));
      members.forEach((m, i) => m.namedParameters().forEach(([n, t]) => n.endsWith('_mu') && m.setTensor(n, bl.mul(bl.randn(t.shape, { seed: 10 * i + n.length }), 0.8))));
      const ae = new ex.Autoencoder([6], { hidden: [5], latent: 2, seed: 1 });
      return { members, ae };
    });
    const c = build(cpu), g = build(gpu);
    const data = Float32Array.from({ length: 10 * 6 }, (_, i) => Math.sin(i * 1.3));
    const xc = bl.tensor(data, [10, 6], cpu), xg = bl.tensor(data, [10, 6], gpu);
    await same(await bl.withBackend(gpu, () => ex.ensemble(g.members, xg, { batchSize: 4 })), await ex.ensemble(c.members, xc, { batchSize: 4 }), 'ensemble');
    await same(await bl.withBackend(gpu, () => ex.bayesPredictive(g.members[0], xg, { samples: 6 })), await ex.bayesPredictive(c.members[0], xc, { samples: 6 }), 'bayesPredictive');
    expectClose(await (await ex.reconstructionError(g.ae, xg, { batchSize: 4 })).data(), await (await ex.reconstructionError(c.ae, xc)).data(), 1e-5, 1e-6, 'reconstructionError');
    const before = gpu.memory().liveBuffers;
    for (let i = 0; i < 2; i++) {
      free(await bl.withBackend(gpu, () => ex.ensemble(g.members, xg, { batchSize: 4 })));
      free(await bl.withBackend(gpu, () => ex.bayesPredictive(g.members[1], xg, { samples: 3 })));
      (await ex.reconstructionError(g.ae, xg, { batchSize: 4 })).dispose();
    }
    expect(gpu.memory().liveBuffers).toBe(before);
  });
});

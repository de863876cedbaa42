// Issue 15's process-level guarantees, on WebGPU (the default adapter) with the float64 CPU backend
// as the reference: no leaks over many mixed explanations (also when calls fail), bit-identical
// results for the same seed on one adapter and close ones across backends, and explanations run
// concurrently (Promise.all) equal to the same calls run one after another.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import type { Backend, Tensor } from '../../engine/index.ts';
import type { WebGpuBackend } from '../../engine/webgpu/backend.ts';
import * as ex from '../../explain/index.ts';
import { Conv2d, Dropout, Flatten, GlobalAvgPool, Linear, ReLU, Sequential, setInitSeed } from '../../models/index.ts';
import { expectClose, randArray, rng } from '../helpers.ts';

let cpu: Backend;
let gpu: WebGpuBackend;
beforeAll(async () => {
  cpu = await bl.init({ backend: 'cpu', setDefault: false });
  gpu = (await bl.init({ backend: 'webgpu', setDefault: false })) as WebGpuBackend;
});
afterAll(() => gpu?.destroy());

function cnn(b: Backend, dropout = false) {
  return bl.withBackend(b, () => {
    setInitSeed(77);
    const m = new Sequential(
      ['features', new Sequential(new Conv2d(1, 4, 3, { padding: 1 }), new ReLU(), new Conv2d(4, 6, 3, { padding: 1 }), new ReLU())],
      ['pool', new GlobalAvgPool()],
      ['flat', new Flatten()],
      ...(dropout ? [['drop', new Dropout(0.3)] as [string, Dropout]] : []),
      ['fc', new Linear(6, 3)],
    );
    m.eval();
    return m;
  });
}

const shape = [2, 1, 6, 6];
const xData = randArray(rng(5), 72, 0, 1);
const bgData = randArray(rng(6), 3 * 36, 0, 1);

type Method = [string, (m: Sequential, x: Tensor, bg: Tensor) => Promise<Tensor>];
/** One method of each family, every randomised one with a seed. */
const methods: Method[] = [
  ['saliency', (m, x) => ex.saliency(m, x, { target: [0, 2] })],
  ['integratedGradients', (m, x) => ex.integratedGradients(m, x, { target: 1, steps: 6, internalBatchSize: 5 })],
  ['smoothGrad', (m, x) => ex.smoothGrad(m, x, { target: 0, samples: 4, stdev: 0.1, seed: 3 })],
  ['gradientShap', (m, x, bg) => ex.gradientShap(m, x, { target: 2, baselines: bg, samples: 5, stdev: 0.05, seed: 4 })],
  ['deepLift', (m, x) => ex.deepLift(m, x, { target: 1, baseline: 0.1 })],
  ['gradCam', (m, x) => ex.gradCam(m, x, { target: 0, layer: 'features.3', upsample: true })],
  ['lrp', (m, x) => ex.lrp(m, x, { target: [1, 0], composite: 'epsilon-plus' })],
  ['occlusion', (m, x) => ex.occlusion(m, x, { target: 1, window: 3, stride: 2 })],
  ['kernelShap', (m, x) => ex.kernelShap(m, x, { target: 0, features: ex.grid(2), samples: 40, seed: 5 })],
  ['shapleySampling', (m, x) => ex.shapleySampling(m, x, { target: 2, features: ex.grid(3), samples: 4, seed: 6 })],
  ['lime', (m, x) => ex.lime(m, x, { target: 1, features: ex.grid(3), samples: 30, seed: 7 })],
  ['featurePermutation', (m, x) => ex.featurePermutation(m, x, { target: 0, features: ex.grid(3), seed: 8 })],
  ['predictionDifference', (m, x, bg) => ex.predictionDifference(m, x, { target: 0, background: bg, window: 3, stride: 3, samples: 2, seed: 9 })],
];

async function runAll(b: Backend, m: Sequential): Promise<Map<string, Float32Array | Float64Array>> {
  const x = bl.tensor(xData, shape, b);
  const bg = bl.tensor(bgData, [3, 1, 6, 6], b);
  const out = new Map<string, Float32Array | Float64Array>();
  for (const [name, run] of methods) {
    const r = await run(m, x, bg);
    out.set(name, (await r.data()) as Float32Array);
    r.dispose();
  }
  x.dispose();
  bg.dispose();
  return out;
}

describe('reliability (WebGPU against the CPU backend)', () => {
  it('the same seed gives bit-identical results on one adapter, and close ones on the CPU backend', async () => {
    const m = cnn(gpu);
    const a = await runAll(gpu, m);
    const b = await runAll(gpu, m);
    const c = await runAll(cpu, cnn(cpu));
    for (const [name] of methods) {
      expectClose(b.get(name)!, a.get(name)!, 0, 0, `${name} repeated on ${gpu.info.adapter}`);
      // float32 against float64: the perturbation fits (KernelSHAP, LIME) amplify rounding a little
      expectClose(a.get(name)!, c.get(name)!, 2e-3, 2e-4, `${name} WebGPU vs CPU`);
    }
    // and a different seed gives a different answer for every seeded method (the seed is honoured, not ignored)
    const x = bl.tensor(xData, shape, gpu);
    const bg = bl.tensor(bgData, [3, 1, 6, 6], gpu);
    // seeds of subset draws can coincide (2 of 3 background rows): try a few before calling it ignored
    const reseeded: [string, (seed: number) => Promise<Tensor>][] = [
      ['smoothGrad', (seed) => ex.smoothGrad(m, x, { target: 0, samples: 4, stdev: 0.1, seed })],
      ['gradientShap', (seed) => ex.gradientShap(m, x, { target: 2, baselines: bg, samples: 5, stdev: 0.05, seed })],
      ['kernelShap', (seed) => ex.kernelShap(m, x, { target: 0, features: ex.grid(2), samples: 40, seed })],
      ['shapleySampling', (seed) => ex.shapleySampling(m, x, { target: 2, features: ex.grid(3), samples: 4, seed })],
      ['lime', (seed) => ex.lime(m, x, { target: 1, features: ex.grid(3), samples: 30, seed })],
      ['predictionDifference', (seed) => ex.predictionDifference(m, x, { target: 0, background: bg, window: 3, stride: 3, samples: 2, seed })],
    ];
    // (featurePermutation permutes the batch: with 2 items the only non-identity permutation is the
    // swap, so its seed matters from 3 items on)
    const x4 = bl.tensor([...xData, ...xData.map((v) => 1 - v)], [4, 1, 6, 6], gpu);
    const p1 = await (await ex.featurePermutation(m, x4, { target: 0, features: ex.grid(3), seed: 1 })).data();
    let differs = false;
    for (let seed = 2; seed < 8 && !differs; seed++) {
      const p2 = await (await ex.featurePermutation(m, x4, { target: 0, features: ex.grid(3), seed })).data();
      differs = Array.from(p2).some((v, i) => v !== p1[i]);
    }
    expect(differs, 'featurePermutation: no other seed changed the result').toBe(true);
    for (const [name, run] of reseeded) {
      let changed = false;
      for (let seed = 100; seed < 106 && !changed; seed++) {
        const other = await (await run(seed)).data();
        changed = Array.from(other).some((v, i) => v !== a.get(name)![i]);
      }
      expect(changed, `${name}: six other seeds all gave the same result`).toBe(true);
    }
  }, 240_000);

  it('MC dropout: the same seed gives the same samples', async () => {
    const m = cnn(gpu, true);
    const x = bl.tensor(xData, shape, gpu);
    const p1 = await ex.mcDropout(m, x, { samples: 6, seed: 11 });
    const p2 = await ex.mcDropout(m, x, { samples: 6, seed: 11 });
    const p3 = await ex.mcDropout(m, x, { samples: 6, seed: 12 });
    expectClose(await p2.mean.data(), await p1.mean.data(), 0, 0, 'mcDropout mean, same seed');
    expect(Array.from(await p3.mean.data())).not.toEqual(Array.from(await p1.mean.data()));
  });

  it('explanations started together (Promise.all) equal the same calls run one after another', async () => {
    const m = cnn(gpu);
    const x = bl.tensor(xData, shape, gpu);
    const bg = bl.tensor(bgData, [3, 1, 6, 6], gpu);
    const picks = methods.filter(([n]) => ['integratedGradients', 'lrp', 'kernelShap', 'smoothGrad', 'gradCam', 'occlusion'].includes(n));
    const seq: (Float32Array | Float64Array)[] = [];
    for (const [, run] of picks) seq.push(await (await run(m, x, bg)).data());
    const par = await Promise.all(picks.map(async ([, run]) => (await run(m, x, bg)).data()));
    picks.forEach(([name], i) => expectClose(par[i], seq[i], 0, 0, `${name} concurrent vs sequential`));
  }, 120_000);

  it('mixed explanations, and failed ones, end with the live buffers and bytes where they started', async () => {
    const m = cnn(gpu);
    const x = bl.tensor(xData, shape, gpu);
    const bg = bl.tensor(bgData, [3, 1, 6, 6], gpu);
    // a first round fills caches (pipelines, pooled buffers); what counts is what stays live
    for (const [, run] of methods) (await run(m, x, bg)).dispose();
    const badBaseline = bl.tensor([1, 2], [2], gpu);
    const before = gpu.memory();
    const rounds = 3;
    for (let r = 0; r < rounds; r++) {
      for (const [, run] of methods) (await run(m, x, bg)).dispose();
      // failures in the middle of a call: a bad target, a layer that does not exist, a bad baseline
      await expect(ex.integratedGradients(m, x, { target: 7, steps: 4 })).rejects.toThrow(/out of range/);
      await expect(ex.gradCam(m, x, { target: 0, layer: 'features.9' })).rejects.toThrow(/features\.9/);
      await expect(ex.kernelShap(m, x, { target: 0, baseline: badBaseline, samples: 8 })).rejects.toThrow(/baseline/);
    }
    const after = gpu.memory();
    expect({ buffers: after.liveBuffers, bytes: after.liveBytes }).toEqual({ buffers: before.liveBuffers, bytes: before.liveBytes });
    // the inputs and the model are the caller's and still usable
    expect(x.disposed).toBe(false);
    expect(bg.disposed).toBe(false);
    expect((await m.call(x).data()).length).toBe(6);
  }, 240_000);
});

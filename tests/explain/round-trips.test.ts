// Contract 5, "no hidden round trips", counted: every explainer that loops over chunks (internal
// batches, noise samples, perturbation chunks, metric steps) reads back the same number of times
// whether the work is one chunk or many, and submits about once per chunk. Measured on the
// runtime's counters (engine/webgpu/runtime.ts: readbackCount, submitCount, syncCount,
// earlySubmitCount) around one call, with the bundled digits-cnn on the WebGPU backend.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import type { WebGpuBackend } from '../../engine/webgpu/backend.ts';
import * as ex from '../../explain/index.ts';
import type { Module } from '../../models/module.ts';
import { loadBundled } from '../../models/zoo/index.ts';
import { randArray, rng } from '../helpers.ts';

let gpu: WebGpuBackend;
let model: Module;
beforeAll(async () => {
  gpu = (await bl.init({ backend: 'webgpu', setDefault: false })) as WebGpuBackend;
  model = await bl.withBackend(gpu, () => loadBundled('digits-cnn'));
});
afterAll(() => gpu?.destroy());

interface Counts {
  readbacks: number;
  submits: number;
  early: number;
  syncs: number;
  dispatches: number;
}

async function counted(run: () => Promise<unknown>): Promise<Counts> {
  const rt = gpu.rt;
  await gpu.sync(); // nothing of the setup is counted
  const r0 = rt.readbackCount, s0 = rt.submitCount, e0 = rt.earlySubmitCount, y0 = rt.syncCount, d0 = rt.dispatchCount;
  const out = await bl.withBackend(gpu, run);
  const c = { readbacks: rt.readbackCount - r0, submits: rt.submitCount - s0, early: rt.earlySubmitCount - e0, syncs: rt.syncCount - y0, dispatches: rt.dispatchCount - d0 };
  // the result may be a tensor or an object of tensors (not read: the caller's read is not the explainer's)
  const dispose = (v: unknown) => {
    if (v instanceof bl.Tensor) v.dispose();
    else if (v && typeof v === 'object' && !ArrayBuffer.isView(v)) for (const w of Object.values(v)) dispose(w);
  };
  dispose(out);
  return c;
}

const n = 2;
const input = (items: number) => bl.tensor(randArray(rng(5), items * 64, 0, 1), [items, 1, 8, 8], gpu);
const attr = (seed: number, items = n) => bl.tensor(randArray(rng(seed), items * 64, -1, 1), [items, 1, 8, 8], gpu);

type Call = (x: Tensor, chunked: boolean) => Promise<unknown>;
// Each case: the same call with its work in few chunks and in four or more, and the chunk counts
// [few, many] (model calls the explainer makes, each a separately recorded piece of work).
const cases: [string, Call, [number, number], number?][] = [
  ['integratedGradients (internalBatchSize)', (x, c) => ex.integratedGradients(model, x, { target: 3, steps: 8, internalBatchSize: c ? 4 : 16 }), [1, 4]],
  ['smoothGrad (samplesBatchSize)', (x, c) => ex.smoothGrad(model, x, { target: 3, samples: 4, stdev: 0.1, seed: 1, samplesBatchSize: c ? 1 : 4 }), [1, 4]],
  ['noiseTunnel(integratedGradients)', (x, c) => ex.noiseTunnel((m, xx, o: ex.IntegratedGradientsOptions) => ex.integratedGradients(m, xx, o))(model, x, { target: 3, steps: 4, samples: 4, stdev: 0.1, samplesBatchSize: c ? 1 : 4 }), [1, 4]],
  ['occlusion (batchSize)', (x, c) => ex.occlusion(model, x, { target: 3, window: 2, stride: 2, batchSize: c ? 8 : 32 }), [1, 4]],
  ['kernelShap (batchSize)', (x, c) => ex.kernelShap(model, x, { target: 3, features: ex.grid(2), samples: 64, seed: 2, batchSize: c ? 32 : 256 }), [1, 5]],
  ['lime (batchSize)', (x, c) => ex.lime(model, x, { target: 3, features: ex.grid(2), samples: 64, seed: 2, batchSize: c ? 32 : 256 }), [1, 4]],
  ['shapleySampling (batchSize)', (x, c) => ex.shapleySampling(model, x, { target: 3, features: ex.grid(4), samples: 4, seed: 2, batchSize: c ? 8 : 64 }), [1, 4]],
  ['deletion (batchSize)', (x, c) => ex.deletion(model, x, attr(6), { target: 3, steps: 8, batchSize: c ? 2 : 16 }), [2, 10]],
  ['insertion (batchSize)', (x, c) => ex.insertion(model, x, attr(6), { target: 3, steps: 8, batchSize: c ? 2 : 16 }), [2, 10]],
  // four items, one per chunk: infidelity chunks by items
  ['infidelity (batchSize)', (x, c) => ex.infidelity(model, x, attr(7, 4), { target: 3, samples: 4, batchSize: c ? 4 : 16 }), [1, 4], 4],
];

describe('readbacks do not grow with the number of chunks; about one submit per chunk', () => {
  const table: string[] = [];
  afterAll(() => {
    console.log(`explainer | one chunk: readbacks/submits/syncs/dispatches | chunked: readbacks/submits/syncs/dispatches (early submits)\n${table.join('\n')}`);
  });
  for (const [name, call, [few, many_], items] of cases) {
    it(name, async () => {
      const x = input(items ?? n);
      const one = await counted(() => call(x, false));
      const many = await counted(() => call(x, true));
      x.dispose();
      table.push(`${name} | ${one.readbacks}/${one.submits}/${one.syncs}/${one.dispatches} | ${many.readbacks}/${many.submits}/${many.syncs}/${many.dispatches} (${one.early}, ${many.early})`);
      expect(many.readbacks, 'readbacks with many chunks').toBe(one.readbacks);
      // A small fixed number for the whole call (entry checks and the one result read).
      expect(one.readbacks).toBeLessThanOrEqual(3);
      // Submits: each chunk more costs at most one submit more (plus any the runtime makes when
      // its uniform arena of 512 dispatches fills up: none for this model).
      expect(many.submits - many.early - (one.submits - one.early)).toBeLessThanOrEqual(many_ - few);
      expect(many.early).toBeLessThanOrEqual(Math.floor(many.dispatches / 512));
    });
  }
});

describe('checks moved to the device still fail loudly', () => {
  it('the noise tunnel reports noisy copies that overflow float32 (checked once, at the end)', async () => {
    const x = input(n);
    const before = gpu.memory().liveBuffers;
    await expect(bl.withBackend(gpu, () => ex.smoothGrad(model, x, { target: 3, samples: 4, samplesBatchSize: 1, stdev: 3e38, seed: 1 }))).rejects.toThrow(/noiseTunnel: a noisy copy of the input held a non-finite value/);
    expect(gpu.memory().liveBuffers).toBe(before);
    x.dispose();
  });
});

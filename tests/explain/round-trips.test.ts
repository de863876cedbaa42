// Contract 5, "no hidden round trips", counted: every explainer that loops over chunks (internal
// batches, noise samples, perturbation chunks, metric steps) reads back the same number of times
// whether the work is one chunk or many, and submits about once per chunk. Measured on the
// runtime's counters (engine/webgpu/runtime.ts: readbackCount, submitCount, syncCount,
// earlySubmitCount, dispatchCount) around one call, with the bundled digits-cnn on the WebGPU
// backend, through a counting wrapper of its forward (the number of model calls shows that the
// work really was split into the chunks each case declares).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import type { WebGpuBackend } from '../../engine/webgpu/backend.ts';
import * as ex from '../../explain/index.ts';
import type { Module } from '../../models/module.ts';
import type { Model } from '../../explain/common.ts';
import { loadBundled } from '../../models/zoo/index.ts';
import { uniforms } from '../../shaders/uniforms.ts';
import { randArray, rng } from '../helpers.ts';

let gpu: WebGpuBackend;
let net: Module;
/** Calls of the model's forward (each one a separately recorded piece of work). */
let modelCalls = 0;
const model: Model = (x) => {
  modelCalls++;
  return net.call(x);
};
// The runtime's upload arena (engine/webgpu/runtime.ts, UPLOAD_ARENA_BYTES): writes of at most a
// quarter of it go through it, 256-byte aligned, and a write that does not fit submits early.
const UPLOAD_ARENA_BYTES = 4 << 20;
let arenaUploadBytes = 0;
beforeAll(async () => {
  gpu = (await bl.init({ backend: 'webgpu', setDefault: false })) as WebGpuBackend;
  net = await bl.withBackend(gpu, () => loadBundled('digits-cnn'));
  net.eval();
  const rt = gpu.rt, write = rt.writeBuffer.bind(rt);
  rt.writeBuffer = (dst, data) => {
    if (data.byteLength > 0 && data.byteLength <= UPLOAD_ARENA_BYTES / 4) arenaUploadBytes += data.byteLength + 255;
    write(dst, data);
  };
});
afterAll(() => gpu?.destroy());

interface Counts {
  readbacks: number;
  submits: number;
  early: number;
  syncs: number;
  dispatches: number;
  calls: number;
  uploads: number;
  /** What the call threw, if it did. */
  error?: unknown;
}

async function counted(run: () => Promise<unknown>): Promise<Counts> {
  const rt = gpu.rt;
  await gpu.sync(); // nothing of the setup is counted
  const r0 = rt.readbackCount, s0 = rt.submitCount, e0 = rt.earlySubmitCount, y0 = rt.syncCount, d0 = rt.dispatchCount, c0 = modelCalls, u0 = arenaUploadBytes;
  let out: unknown, error: unknown;
  try {
    out = await bl.withBackend(gpu, run);
  } catch (e) {
    error = e ?? new Error('rejected');
  }
  const c: Counts = {
    readbacks: rt.readbackCount - r0, submits: rt.submitCount - s0, early: rt.earlySubmitCount - e0, syncs: rt.syncCount - y0,
    dispatches: rt.dispatchCount - d0, calls: modelCalls - c0, uploads: arenaUploadBytes - u0, error,
  };
  // the result may be a tensor or an object of tensors (not read: the caller's read is not the explainer's)
  const dispose = (v: unknown) => {
    if (v instanceof bl.Tensor) v.dispose();
    else if (v && typeof v === 'object' && !ArrayBuffer.isView(v)) for (const w of Object.values(v)) dispose(w);
  };
  dispose(out);
  return c;
}

/** Early submits the runtime may make by itself: one per 512 dispatches (uniform arena) and one per 3/4 upload arena written. */
const earlyBound = (c: Counts) => Math.floor(c.dispatches / 512) + Math.floor(c.uploads / ((UPLOAD_ARENA_BYTES * 3) / 4));

const n = 2;
const input = (items: number) => bl.tensor(randArray(rng(5), items * 64, 0, 1), [items, 1, 8, 8], gpu);
const attr = (seed: number, items: number) => bl.tensor(randArray(rng(seed), items * 64, -1, 1), [items, 1, 8, 8], gpu);

/** One call: the input, its attributions (a tensor per item, for the metrics) and whether to chunk finely. */
type Call = (x: Tensor, a: Tensor, chunked: boolean) => Promise<unknown>;
// Each case: the same call with its work in few chunks and in four or more, the chunk counts
// [few, many] (each a separately recorded piece of work), the items (default 2) and the model
// calls per chunk (default 1).
const cases: [string, Call, [number, number], number?, number?][] = [
  ['integratedGradients (internalBatchSize)', (x, _a, c) => ex.integratedGradients(model, x, { target: 3, steps: 8, internalBatchSize: c ? 4 : 16 }), [1, 4]],
  ['smoothGrad (samplesBatchSize)', (x, _a, c) => ex.smoothGrad(model, x, { target: 3, samples: 4, stdev: 0.1, seed: 1, samplesBatchSize: c ? 1 : 4 }), [1, 4]],
  ['noiseTunnel(integratedGradients)', (x, _a, c) => ex.noiseTunnel((m, xx, o: ex.IntegratedGradientsOptions) => ex.integratedGradients(m, xx, o))(model, x, { target: 3, steps: 4, samples: 4, stdev: 0.1, samplesBatchSize: c ? 1 : 4 }), [1, 4]],
  ['occlusion (batchSize)', (x, _a, c) => ex.occlusion(model, x, { target: 3, window: 2, stride: 2, batchSize: c ? 8 : 32 }), [1, 4]],
  ['kernelShap (batchSize)', (x, _a, c) => ex.kernelShap(model, x, { target: 3, features: ex.grid(2), samples: 64, seed: 2, batchSize: c ? 32 : 256 }), [1, 5]],
  ['lime (batchSize)', (x, _a, c) => ex.lime(model, x, { target: 3, features: ex.grid(2), samples: 64, seed: 2, batchSize: c ? 32 : 256 }), [1, 4]],
  ['shapleySampling (batchSize)', (x, _a, c) => ex.shapleySampling(model, x, { target: 3, features: ex.grid(4), samples: 4, seed: 2, batchSize: c ? 8 : 64 }), [1, 4]],
  // the metrics below: 9 perturbations per item (8 steps + the unperturbed input, or 8 subsets
  // + the input), one chunk per item or five (batchSize 2)
  ['deletion (batchSize)', (x, a, c) => ex.deletion(model, x, a, { target: 3, steps: 8, batchSize: c ? 2 : 16 }), [2, 10]],
  ['insertion (batchSize)', (x, a, c) => ex.insertion(model, x, a, { target: 3, steps: 8, batchSize: c ? 2 : 16 }), [2, 10]],
  ['regionPerturbation (batchSize)', (x, a, c) => ex.regionPerturbation(model, x, a, { target: 3, regionSize: 2, steps: 8, batchSize: c ? 2 : 16 }), [2, 10]],
  ['pixelFlipping (batchSize)', (x, a, c) => ex.pixelFlipping(model, x, a, { target: 3, steps: 8, batchSize: c ? 2 : 16 }), [2, 10]],
  ['faithfulnessCorrelation (batchSize)', (x, a, c) => ex.faithfulnessCorrelation(model, x, a, { target: 3, samples: 8, subsetSize: 4, batchSize: c ? 2 : 16 }), [2, 10]],
  // four items, one per chunk: infidelity chunks by items, two model calls per chunk (the items, their noisy copies)
  ['infidelity (batchSize)', (x, a, c) => ex.infidelity(model, x, a, { target: 3, samples: 4, batchSize: c ? 4 : 16 }), [1, 4], 4, 2],
];

describe('readbacks do not grow with the number of chunks; about one submit per chunk', () => {
  const table: string[] = [];
  afterAll(() => {
    console.log(`explainer | one chunk: readbacks/submits/syncs/dispatches/model calls | chunked: the same (early submits)\n${table.join('\n')}`);
  });
  for (const [name, call, [few, many_], items, perChunk = 1] of cases) {
    it(name, async () => {
      const before = gpu.memory().liveBuffers;
      const x = input(items ?? n), a = attr(7, items ?? n);
      const one = await counted(() => call(x, a, false));
      const many = await counted(() => call(x, a, true));
      x.dispose();
      a.dispose();
      table.push(`${name} | ${one.readbacks}/${one.submits}/${one.syncs}/${one.dispatches}/${one.calls} | ${many.readbacks}/${many.submits}/${many.syncs}/${many.dispatches}/${many.calls} (${one.early}, ${many.early})`);
      expect(one.error ?? many.error).toBeUndefined();
      // The work really was split as declared: one model call per chunk, besides any fixed ones.
      expect(many.calls - one.calls, 'extra model calls with many chunks').toBe((many_ - few) * perChunk);
      expect(one.calls).toBeGreaterThanOrEqual(few * perChunk);
      expect(many.dispatches).toBeGreaterThan(one.dispatches);
      expect(many.readbacks, 'readbacks with many chunks').toBe(one.readbacks);
      // A small fixed number for the whole call (entry checks and the one result read); at least
      // the result's read (the counters count).
      expect(one.readbacks).toBeGreaterThanOrEqual(1);
      expect(one.readbacks).toBeLessThanOrEqual(3);
      // Submits and syncs: each chunk more costs at most one more (plus any the runtime makes
      // when its uniform arena of 512 dispatches or its upload arena fills up).
      expect(many.submits - many.early - (one.submits - one.early)).toBeLessThanOrEqual(many_ - few);
      expect(many.syncs - one.syncs, 'extra syncs with many chunks').toBeLessThanOrEqual(many_ - few);
      expect(one.early).toBeLessThanOrEqual(earlyBound(one));
      expect(many.early).toBeLessThanOrEqual(earlyBound(many));
      expect(gpu.memory().liveBuffers, 'buffers left alive').toBe(before);
    });
  }
});

// The metrics that evaluate item by item read all items' scores back once: as many read-backs
// for four items as for one.
// (At most 3 read-backs per call, 4 for ROAD with a predicted target: it reads the input, which it
// imputes on the host, and the predicted classes, besides the attributions and the scores.)
const perItem: [string, (x: Tensor, a: Tensor) => Promise<unknown>, number?][] = [
  ['deletion', (x, a) => ex.deletion(model, x, a, { target: 3, steps: 8 })],
  ['insertion', (x, a) => ex.insertion(model, x, a, { target: 3, steps: 8 })],
  ["deletion, imputation 'road' (roadCurve)", (x, a) => ex.deletion(model, x, a, { target: 3, steps: 8, imputation: 'road', seed: 3 })],
  ["insertion, imputation 'road' (roadCurve)", (x, a) => ex.insertion(model, x, a, { target: 3, steps: 8, imputation: 'road', seed: 3 })],
  ['regionPerturbation', (x, a) => ex.regionPerturbation(model, x, a, { target: 3, regionSize: 2, steps: 8 })],
  ['pixelFlipping', (x, a) => ex.pixelFlipping(model, x, a, { target: 3, steps: 8 })],
  ['faithfulnessCorrelation', (x, a) => ex.faithfulnessCorrelation(model, x, a, { target: 3, samples: 8, subsetSize: 4 })],
  ["deletion, target 'predicted'", (x, a) => ex.deletion(model, x, a, { target: 'predicted', steps: 8 })],
  ["deletion, imputation 'road', target 'predicted'", (x, a) => ex.deletion(model, x, a, { steps: 8, imputation: 'road' }), 4],
];

describe('metrics read all items back once: the same readbacks for one item and for four', () => {
  for (const [name, call, most = 3] of perItem) {
    it(name, async () => {
      const before = gpu.memory().liveBuffers;
      const x1 = input(1), a1 = attr(8, 1), x4 = input(4), a4 = attr(8, 4);
      const one = await counted(() => call(x1, a1));
      const four = await counted(() => call(x4, a4));
      [x1, a1, x4, a4].forEach((t) => t.dispose());
      expect(one.error ?? four.error).toBeUndefined();
      // each item is evaluated (at least one model call of its own)...
      expect(four.calls - one.calls).toBeGreaterThanOrEqual(3);
      expect(four.dispatches).toBeGreaterThan(one.dispatches);
      // ...and read back with the others
      expect(four.readbacks, 'readbacks for four items').toBe(one.readbacks);
      expect(one.readbacks).toBeGreaterThanOrEqual(1);
      expect(one.readbacks).toBeLessThanOrEqual(most);
      // the engine waits for each chunk before the next is recorded (one chunk in flight): at
      // most one sync per extra chunk (here: per extra model call)
      expect(four.syncs - one.syncs).toBeLessThanOrEqual(four.calls - one.calls);
      expect(four.submits - four.early - (one.submits - one.early)).toBeLessThanOrEqual(four.calls - one.calls);
      expect(gpu.memory().liveBuffers, 'buffers left alive').toBe(before);
    });
  }
});

describe('the counters count', () => {
  it('one tensor.data() is one read-back (and its submit); one backend.sync() is one sync', async () => {
    const rt = gpu.rt;
    const t = bl.withBackend(gpu, () => bl.tidy(() => bl.add(bl.tensor([1, 2, 3], [3], gpu), 1)));
    await gpu.sync();
    const r0 = rt.readbackCount, s0 = rt.submitCount, y0 = rt.syncCount, d0 = rt.dispatchCount;
    expect(Array.from(await t.data())).toEqual([2, 3, 4]);
    expect(rt.readbackCount - r0).toBe(1);
    expect(rt.submitCount - s0).toBe(1);
    expect(rt.syncCount - y0).toBe(0);
    const u = bl.withBackend(gpu, () => bl.mul(t, 2));
    const r1 = rt.readbackCount, s1 = rt.submitCount;
    await gpu.sync();
    expect(rt.syncCount - y0).toBe(1);
    expect(rt.readbackCount - r1).toBe(0);
    expect(rt.submitCount - s1).toBe(1); // the multiply, recorded lazily, goes in the sync's submit
    expect(rt.dispatchCount - d0).toBeGreaterThanOrEqual(1);
    t.dispose();
    u.dispose();
  });

  it('early submits: the 513th dispatch without a flush, and an upload that does not fit the 4 MiB arena', async () => {
    const rt = gpu.rt;
    const s = uniforms({ v: 'f32' });
    const wgsl = `${s.wgsl}@group(0) @binding(1) var<storage, read_write> out: array<f32>;\n@compute @workgroup_size(1)\nfn main() { out[0] = params.v; }`;
    const out = rt.acquire(4);
    await gpu.sync();
    const e0 = rt.earlySubmitCount, d0 = rt.dispatchCount, s0 = rt.submitCount;
    for (let i = 0; i < 512; i++) rt.dispatch({ label: 'counter', wgsl, params: s.pack({ v: i }), output: out, inputs: [], workgroups: 1 });
    expect(rt.dispatchCount - d0).toBe(512);
    expect(rt.earlySubmitCount - e0).toBe(0);
    rt.dispatch({ label: 'counter', wgsl, params: s.pack({ v: 512 }), output: out, inputs: [], workgroups: 1 });
    expect(rt.earlySubmitCount - e0).toBe(1);
    expect(rt.submitCount - s0).toBe(1);
    expect((await rt.readback(out, 4))[0]).toBe(512);
    rt.release(out);
    // four quarter-arena writes fit, the fifth submits first
    const buf = rt.acquire(1 << 20), quarter = new Float32Array((1 << 20) / 4);
    await gpu.sync();
    const e1 = rt.earlySubmitCount;
    for (let i = 0; i < 4; i++) rt.writeBuffer(buf, quarter);
    expect(rt.earlySubmitCount - e1).toBe(0);
    rt.writeBuffer(buf, quarter);
    expect(rt.earlySubmitCount - e1).toBe(1);
    await gpu.sync();
    rt.release(buf);
  });
});

describe('checks moved to the device still fail loudly', () => {
  // Only the first noisy sample overflows float32: a probe over the last chunk only, or one that
  // lost the chunks before, would let the call succeed. The noise tunnel draws sample j (chunk j
  // with samplesBatchSize 1) from seed seed * 1000003 + j; its per-sample maxima, computed here
  // with the same draws, put stdev between FLT_MAX / max|z_0| and FLT_MAX / max_{j>=1} |z_j|.
  it('the noise tunnel reports noisy copies that overflow float32 in one early chunk (checked once, at the end)', async () => {
    const FLT_MAX = 3.4028234663852886e38;
    const x = input(n);
    const samples = 4;
    const maxima = async (seed: number) => {
      const m: number[] = [];
      for (let j = 0; j < samples; j++) {
        const z = bl.randn(x.shape, { seed: seed * 1000003 + j, backend: gpu });
        m.push(Math.max(...Array.from(await z.data(), Math.abs)));
        z.dispose();
      }
      return m;
    };
    // the first seed whose sample 0 has the largest |z| by a margin
    let seed = 1, m = await maxima(seed);
    const rest = (v: number[]) => Math.max(...v.slice(1));
    while (!(m[0] > 1.05 * rest(m)) && seed < 50) m = await maxima(++seed);
    expect(m[0], `no seed in 1..50 with the first sample's noise largest (${m})`).toBeGreaterThan(1.05 * rest(m));
    const stdev = FLT_MAX / Math.sqrt(m[0] * rest(m));
    expect(m[0] * stdev).toBeGreaterThan(FLT_MAX * 1.02);
    expect(rest(m) * stdev + 1).toBeLessThan(FLT_MAX / 1.02);
    const opts = { target: 3, samples, stdev, seed };
    const before = gpu.memory().liveBuffers;
    const ok = await counted(() => ex.smoothGrad(model, x, { ...opts, stdev: 0.1, samplesBatchSize: 1 }));
    expect(ok.error).toBeUndefined();
    for (const per of [1, 2, 4]) {
      const bad = await counted(() => ex.smoothGrad(model, x, { ...opts, samplesBatchSize: per }));
      expect(String(bad.error), `samplesBatchSize ${per}`).toMatch(/noiseTunnel: a noisy copy of the input held a non-finite value/);
      // the failure is found by the call's usual read-backs, none more
      expect(bad.readbacks, `samplesBatchSize ${per}: readbacks`).toBe(ok.readbacks);
      expect(bad.calls).toBe(samples / per);
    }
    expect(gpu.memory().liveBuffers).toBe(before);
    x.dispose();
  });
});

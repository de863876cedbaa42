// The WebGPU runtime (engine/webgpu/runtime.ts): the pipeline cache, error reporting with the
// op's label and the WGSL line, the memory policy (tidy/dispose and the buffer pool), Dawn's
// lifetime hazard under garbage collection, and BACKLIGHT_DEBUG=wgsl.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { afterAll, describe, expect, it } from 'vitest';
import { tidy, withBackend } from '../../engine/context.ts';
import { init, memory } from '../../engine/init.ts';
import type { Tensor } from '../../engine/tensor.ts';
import type { WebGpuBackend } from '../../engine/webgpu/backend.ts';
import type { GpuBuf } from '../../engine/webgpu/runtime.ts';
import { rand, tensor } from '../../engine/ops/creation.ts';
import { add, exp, mul, neg, sub } from '../../engine/ops/elementwise.ts';
import { max, sum } from '../../engine/ops/reduce.ts';
import { reshape, transpose } from '../../engine/ops/movement.ts';
import { matmul } from '../../engine/ops/linalg.ts';
import { conv2d } from '../../engine/ops/conv.ts';
import { maxPool2d } from '../../engine/ops/pool.ts';
import { uniforms } from '../../shaders/uniforms.ts';
import { expectClose, randArray, rng } from '../helpers.ts';

const gpu = (await init({ backend: 'webgpu', setDefault: false })) as WebGpuBackend;
const cpu = await init({ backend: 'cpu', setDefault: false });
gpu.poisonOutputs = true;

afterAll(() => {
  gpu.destroy();
  cpu.destroy();
});

const root = fileURLToPath(new URL('../..', import.meta.url));

describe('pipeline cache', () => {
  it('running the same ops on new shapes compiles no new pipeline', async () => {
    const r = rng(1);
    const ops = (n: number, m: number) =>
      withBackend(gpu, () =>
        tidy(() => {
          const a = tensor(randArray(r, n * m), [n, m]);
          const b = tensor(randArray(r, m), [m]);
          const c = tensor(randArray(r, m * 3), [m, 3]);
          const x = tensor(randArray(r, 2 * (n + 4) * (m + 5)), [1, 2, n + 4, m + 5]);
          const w = tensor(randArray(r, 2 * 2 * 9), [2, 2, 3, 3]);
          return [
            add(a, a), // same-shape kernel
            sub(a, b), // broadcasting kernel
            exp(a),
            sum(a, 1), // per-row kernel
            sum(a, 0), // permute + workgroup kernel when n >= 64
            max(a, [0, 1]),
            transpose(a),
            matmul(a, c),
            conv2d(x, w, { padding: 1, stride: 2 }),
            maxPool2d(x, { kernel: 2 }),
          ];
        }),
      );
    // Warm up every kernel variant these ops choose between (a reduction over 1 element uses the
    // per-row kernel, over 335 the workgroup one): variants are pipelines, shapes are not.
    for (const [n, m] of [[67, 5], [1, 1]]) {
      const outs = ops(n, m);
      await gpu.sync();
      outs.forEach((t: Tensor) => t.dispose());
    }
    const compiled = gpu.rt.pipelineCount;
    expect(compiled).toBeGreaterThan(10);
    for (const [n, m] of [[131, 7], [3, 13], [71, 2], [2, 1]]) {
      const outs = ops(n, m);
      await gpu.sync();
      outs.forEach((t: Tensor) => t.dispose());
    }
    expect(gpu.rt.pipelineCount).toBe(compiled);
  });
});

describe('errors', () => {
  it('a WGSL compile error names the op and the shader line, and the runtime recovers', async () => {
    const lines = [
      uniforms({ count: 'u32' }).wgsl,
      '@group(0) @binding(1) var<storage, read_write> out: array<f32>;',
      '@compute @workgroup_size(1)',
      'fn main() {',
      '  out[0] = not_a_function(1.0);',
      '}',
    ];
    const wgsl = lines.join('\n');
    const badLine = wgsl.split('\n').findIndex((l) => l.includes('not_a_function')) + 1;
    // Queue some good work first, so the broken kernel shares a flush with it.
    const x = tensor([1, 2, 3], [3], gpu);
    const y = neg(x);
    const output = gpu.rt.acquire(16);
    gpu.rt.dispatch({ label: 'brokenKernel [3,5]', wgsl, params: new Uint32Array(1), output, inputs: [], workgroups: 1 });
    const err = await gpu.rt.sync().then(
      () => null,
      (e: Error) => e,
    );
    expect(err, 'sync() should reject').toBeInstanceOf(Error);
    expect(err!.message).toMatch(/brokenKernel \[3,5\]/);
    expect(err!.message).toMatch(new RegExp(`line ${badLine}\\b`));
    expect(err!.message).toMatch(/not_a_function/);
    gpu.rt.release(output);
    // The work recorded in that flush (x's upload and neg) was lost with it: WebGPU drops an
    // invalid command buffer whole. Reading such a tensor later must say so, not return zeros.
    await expect(y.data()).rejects.toThrow(/batch of GPU work that the device rejected/);
    y.dispose();
    x.dispose();
    // The runtime keeps working after the failed flush.
    const x2 = tensor([1, 2, 3], [3], gpu);
    const z = mul(x2, x2);
    expect(Array.from(await z.data())).toEqual([1, 4, 9]);
    x2.dispose();
    z.dispose();
  });

  it('poisoned outputs: each kernel output is filled with NaN by a dispatch of its own first', async () => {
    const x = tensor([1, 2, 3], [3], gpu);
    await gpu.sync();
    const before = gpu.rt.dispatchCount;
    const y = neg(x);
    // Elementwise ops are recorded lazily (engine/webgpu/fusion.ts): neg runs when read.
    expect(Array.from(await y.data())).toEqual([-1, -2, -3]);
    expect(gpu.rt.dispatchCount - before).toBe(2);
    x.dispose();
    y.dispose();
    // And the poison really is NaN: an output buffer read before any kernel writes it.
    const fresh = (gpu as unknown as { out(n: number): GpuBuf }).out(7);
    const v = await gpu.rt.readback(fresh, 7 * 4);
    expect(Array.from(v).every(Number.isNaN)).toBe(true);
    gpu.rt.release(fresh);
  });
});

describe('memory', () => {
  it('1,000 small op sequences inside tidy leave the live buffer count where it started', async () => {
    await gpu.sync();
    const start = memory(gpu);
    const r = rng(2);
    const x = tensor(randArray(r, 13 * 7), [13, 7], gpu);
    const w = tensor(randArray(r, 7 * 3), [7, 3], gpu);
    // A running total across iterations checks that pooled buffers reused within one command
    // encoder never corrupt live data.
    let acc = tensor(new Float32Array(3), [3], gpu);
    for (let i = 0; i < 1000; i++) {
      const next = withBackend(gpu, () =>
        tidy(() => {
          const h = add(x, i % 7); // a scalar operand: a temporary upload
          const y = matmul(h, w);
          const s = sum(mul(y, 0.001), 0);
          return add(acc, reshape(s, [3]));
        }),
      );
      acc.dispose();
      acc = next;
    }
    const got = await acc.data();
    // The same on the CPU.
    const xc = tensor(await x.data(), [13, 7], cpu);
    const wc = tensor(await w.data(), [7, 3], cpu);
    let want = new Float64Array(3);
    for (let k = 0; k < 7; k++) {
      const y = await sum(matmul(add(xc, k), wc), 0).data();
      const reps = Math.floor(1000 / 7) + (k < 1000 % 7 ? 1 : 0);
      want = want.map((v, j) => v + reps * 0.001 * y[j]);
    }
    expectClose(got, want, 1e-4, 1e-4, 'running total');
    acc.dispose();
    x.dispose();
    w.dispose();
    await gpu.sync();
    const end = memory(gpu);
    expect(end.liveBuffers).toBe(start.liveBuffers);
    expect(end.liveBytes).toBe(start.liveBytes);
    // The pool recycles: a few dozen buffers serve all 1,000 iterations.
    expect(end.pooledBuffers).toBeLessThan(start.pooledBuffers + 64);
  });

  it('tidy keeps what it returns, dispose frees it, reshape shares storage', async () => {
    await gpu.sync();
    const start = memory(gpu).liveBuffers;
    const kept = withBackend(gpu, () => tidy(() => exp(tensor([0, 1], [2]))));
    expect(memory(gpu).liveBuffers).toBe(start + 1);
    const view = reshape(kept, [1, 2]);
    expect(memory(gpu).liveBuffers).toBe(start + 1);
    kept.dispose();
    expect(memory(gpu).liveBuffers).toBe(start + 1); // the view still holds the storage
    expectClose(await view.data(), [1, Math.E], 1e-6);
    view.dispose();
    expect(memory(gpu).liveBuffers).toBe(start);
  });
});

/** global.gc: from --expose-gc (vitest.config.ts sets it for test workers), else switched on here. */
function getGc(): () => void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) return g;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

describe('Dawn lifetime under garbage collection', () => {
  it('~200 submits of a long-running kernel survive forced GCs between them', async () => {
    // DESIGN.md, "Adapters": if the object create() returned is collected while the device
    // works, dawn.node crashes (SIGSEGV) in InstanceBase::ProcessEvents. The backend must keep
    // it alive. Only the backend is referenced here; everything else about the device is
    // dropped with createBackend's frame. A regression kills this test process.
    const gc = getGc();
    const createBackend = async () => (await init({ backend: 'webgpu', setDefault: false })) as WebGpuBackend;
    let b: WebGpuBackend | null = await createBackend();
    gc();
    const n = 128; // ~13 ms per matmul on SwiftShader (2 cores)
    const a = rand([n, n], { seed: 7, backend: b });
    const ac = tensor(await a.data(), [n, n], cpu);
    const want = await matmul(ac, ac).data();
    for (let i = 0; i < 200; i++) {
      const c = matmul(a, a);
      b.flush();
      if (i % 2 === 0) gc();
      if (i % 10 === 9) await b.sync(); // Dawn processes events while we wait
      if (i % 50 === 49) expectClose(await c.data(), want, 1e-4, 1e-4, `submit ${i}`);
      c.dispose();
    }
    a.dispose();
    await b.sync();
    b.destroy();
    b = null;
    gc();
  });
});

describe('BACKLIGHT_DEBUG=wgsl', () => {
  it('prints each new pipeline\'s label and WGSL source once', () => {
    const code = `
      const { init } = await import(${JSON.stringify(`${root}engine/init.ts`)});
      const { tensor } = await import(${JSON.stringify(`${root}engine/ops/creation.ts`)});
      const { neg } = await import(${JSON.stringify(`${root}engine/ops/elementwise.ts`)});
      const gpu = await init({ backend: 'webgpu', setDefault: false });
      const x = tensor([1, 2], [2], gpu);
      await neg(x).data();
      await neg(tensor([1, 2, 3], [3], gpu)).data();
      gpu.destroy();
    `;
    const res = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      cwd: root,
      env: { ...process.env, BACKLIGHT_DEBUG: 'wgsl' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(res.status, res.stderr).toBe(0);
    const headers = res.stdout.split('\n').filter((l) => l.startsWith('[backlight wgsl]'));
    expect(headers).toEqual(['[backlight wgsl] neg [2]']); // the second neg reuses the pipeline
    expect(res.stdout).toMatch(/@compute @workgroup_size\(WG\)/);
    expect(res.stdout).toMatch(/fn main\(/);
  });
});

// GPU faults (issue 15): a tensor over the device's binding limit is a clear error naming the sizes
// (at the op for kernels dispatched at once, such as matmul; at the read for fused elementwise
// chains, which allocate when they are emitted), leaving nothing behind and the backend usable;
// a lost device is reported by every op and read, and init() gives a working device again.
// (A WGSL compile failure naming the kernel is tested in webgpu-runtime.test.ts.)
import { describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import type { WebGpuBackend } from '../../engine/webgpu/backend.ts';

describe('GPU faults', () => {
  it('an output over maxStorageBufferBindingSize is refused at the op, naming the sizes and what to do', async () => {
    const gpu = (await bl.init({ backend: 'webgpu', setDefault: false })) as WebGpuBackend;
    try {
      const limit = gpu.rt.device.limits.maxStorageBufferBindingSize;
      // small inputs, an output just over the limit: [rows, 1] x [1, cols]
      const rows = 4096;
      const cols = Math.floor(limit / 4 / rows) + 1;
      const a = bl.tensor(new Float32Array(rows).fill(1), [rows, 1], gpu);
      const b = bl.tensor(new Float32Array(cols).fill(2), [1, cols], gpu);
      const before = gpu.memory();
      expect(() => bl.tidy(() => bl.sum(bl.matmul(a, b)))).toThrow(/over this GPU's largest storage binding \(maxStorageBufferBindingSize \d+\.\d MiB\): work in smaller chunks.*internalBatchSize/);
      // matmul and conv2d are recorded lazily (epilogue fusion), but a bad size still fails at the op
      expect(() => bl.matmul(a, b)).toThrow(/over this GPU's largest storage binding/);
      await gpu.sync();
      expect(gpu.memory().liveBuffers).toBe(before.liveBuffers);
      // a fused elementwise op over the limit (a broadcasting add): the same error, at the read
      const big = bl.add(bl.reshape(a, [rows, 1]), bl.reshape(b, [1, cols]));
      await expect(big.data()).rejects.toThrow(/over this GPU's largest storage binding/);
      big.dispose();
      await gpu.sync();
      expect(gpu.memory().liveBuffers).toBe(before.liveBuffers);
      // the backend still works, and a product just under the limit runs
      const ok = bl.tensor([1, 2, 3], [3], gpu);
      expect(Array.from(await bl.mul(ok, 2).data())).toEqual([2, 4, 6]);
      const under = bl.tensor(new Float32Array(Math.floor(limit / 4 / rows) - 1).fill(2), [1, Math.floor(limit / 4 / rows) - 1], gpu);
      expect((await bl.sum(bl.matmul(a, under)).data())[0]).toBe(rows * under.shape[1] * 2);
    } finally {
      gpu.destroy();
    }
  }, 120_000);

  it('a lost device: ops and reads say so, and init() recovers with a new device', async () => {
    const gpu = (await bl.init({ backend: 'webgpu', setDefault: false })) as WebGpuBackend;
    const x = bl.tensor([1, 2, 3], [3], gpu);
    expect(Array.from(await bl.mul(x, 2).data())).toEqual([2, 4, 6]);
    const y = bl.mul(x, 3); // recorded before the loss, read after it
    gpu.rt.device.destroy(); // what a driver reset or a tab losing its GPU looks like to the page
    await gpu.rt.device.lost;
    await new Promise((r) => setTimeout(r, 0)); // the runtime's own lost handler runs first
    // kernels dispatched at once throw at the op; fused elementwise ops (recorded lazily) at the read
    expect(() => bl.matmul(bl.reshape(x, [3, 1]), bl.reshape(x, [1, 3]))).toThrow(/GPU device was lost \(destroyed.*\)/);
    await expect(bl.exp(x).data()).rejects.toThrow(/GPU device was lost \(destroyed.*\)/);
    expect(() => bl.tensor([1], [1], gpu)).toThrow(/device was lost.*call init\(\)/);
    await expect(y.data()).rejects.toThrow(/GPU device was lost \(destroyed.*\)/);
    const fresh = (await bl.init({ backend: 'webgpu', setDefault: false })) as WebGpuBackend;
    try {
      const z = bl.tensor([1, 2, 3], [3], fresh);
      expect(Array.from(await bl.add(z, 1).data())).toEqual([2, 3, 4]);
    } finally {
      fresh.destroy();
    }
  }, 120_000);
});

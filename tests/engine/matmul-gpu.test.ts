// shaders/matmul-gpu.ts, dispatched directly through the runtime, against a float64 reference.
//
// Tolerance (derived, not tuned): the inputs are float32 values and the reference sums their
// products exactly enough in float64. A float32 dot product of length K, however its sums are
// ordered and whether or not its multiply-adds are fused, is off by at most
// gamma_{K+1} * sum_k |a_k| |b_k| with gamma_n = n u / (1 - n u), u = 2^-24 (Higham, Accuracy and
// Stability of Numerical Algorithms, 3.1; K additions plus the product's rounding). Every element
// is checked against its own bound, so a wrong index (which moves a value by O(|a||b|)) fails.
import { afterAll, describe, expect, it } from 'vitest';
import { rng } from '../helpers.ts';
import { init } from '../../engine/init.ts';
import type { WebGpuBackend } from '../../engine/webgpu/backend.ts';
import type { GpuBuf } from '../../engine/webgpu/runtime.ts';
import {
  MATMUL_GPU_CONFIGS, matmulGpuFor, matmulGpuOptions, matmulGpuUniforms, matmulGpuWorkgroupBytes, matmulGpuWorkgroups, packMatmulGpu, type MatmulGpuConfig,
} from '../../shaders/matmul-gpu.ts';

const gpu = (await init({ backend: 'webgpu', setDefault: false })) as WebGpuBackend;
afterAll(() => gpu.destroy());
const swiftshader = gpu.info.architecture === 'swiftshader';

const U = 2 ** -24;
const gamma = (n: number) => (n * U) / (1 - n * U);

const rand = rng(12345);
const host = (n: number) => Float32Array.from({ length: n }, () => 2 * rand() - 1);
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Element strides of a (possibly broadcast) batch shape against C's batch shape, per axis. */
function batchStrides(shape: readonly number[], out: readonly number[], matrix: number): number[] {
  const s = new Array<number>(out.length).fill(0);
  let acc = matrix;
  for (let k = out.length - 1; k >= 0; k--) {
    const d = shape[k - (out.length - shape.length)] ?? 1;
    s[k] = d === 1 ? 0 : acc;
    acc *= d;
  }
  return s;
}

interface Case {
  M: number; N: number; K: number;
  /** Batch shapes of A and B (broadcast to C's). */
  ab?: readonly number[]; bb?: readonly number[];
  /** Batches per dispatch (dispatches start at 0, chunk, 2 chunk, ...: the `first` uniform). */
  chunk?: number;
  /** A and B themselves (default: random in [-1, 1]). */
  a?: Float32Array; b?: Float32Array;
}

/** Run one case; returns the worst |got - want| / bound over C (below 1 passes). */
async function run(config: MatmulGpuConfig, c: Case): Promise<number> {
  const { M, N, K } = c;
  const ab = c.ab ?? [], bb = c.bb ?? [];
  const rank = Math.max(ab.length, bb.length);
  const pad = (s: readonly number[]) => [...new Array(rank - s.length).fill(1), ...s];
  const cb = pad(ab).map((d, k) => Math.max(d, pad(bb)[k]));
  const batches = size(cb);
  const a = c.a ?? host(size(ab) * M * K), b = c.b ?? host(size(bb) * K * N);
  const sa = batchStrides(ab, cb, M * K), sb = batchStrides(bb, cb, K * N);

  const o = matmulGpuOptions(config, K, N);
  const wgsl = matmulGpuFor(o);
  const bufA = gpu.rt.acquire(a.byteLength), bufB = gpu.rt.acquire(b.byteLength), bufC = gpu.rt.acquire(batches * M * N * 4);
  try {
    gpu.rt.writeBuffer(bufA, a);
    gpu.rt.writeBuffer(bufB, b);
    gpu.rt.writeBuffer(bufC, new Float32Array(batches * M * N).fill(NaN)); // an element never written fails
    const chunk = c.chunk ?? 65535;
    for (let first = 0; first < batches; first += chunk) {
      const z = Math.min(chunk, batches - first);
      gpu.rt.dispatch({
        label: `matmul-gpu ${config} ${M}x${K} @ ${K}x${N} [${cb}] from ${first}`, wgsl,
        params: packMatmulGpu({ M, N, K, batchShape: cb, aStrides: sa, bStrides: sb, first }),
        output: bufC, inputs: [bufA, bufB] as GpuBuf[], workgroups: matmulGpuWorkgroups(o, M, N, z),
      });
    }
    const got = await gpu.rt.readback(bufC, batches * M * N * 4);
    await gpu.rt.checkErrors();
    return worst(got, a, b, { M, N, K, cb, sa, sb });
  } finally {
    gpu.rt.release(bufA);
    gpu.rt.release(bufB);
    gpu.rt.release(bufC);
  }
}

function worst(got: Float32Array, a: Float32Array, b: Float32Array, p: { M: number; N: number; K: number; cb: number[]; sa: number[]; sb: number[] }): number {
  const { M, N, K, cb, sa, sb } = p;
  const bound = gamma(K + 1);
  let w = 0;
  for (let bi = 0; bi < size(cb); bi++) {
    let rem = bi, oa = 0, ob = 0;
    for (let k = cb.length - 1; k >= 0; k--) {
      const i = rem % cb[k];
      rem = Math.floor(rem / cb[k]);
      oa += i * sa[k];
      ob += i * sb[k];
    }
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let s = 0, abs = 0;
        for (let k = 0; k < K; k++) {
          const t = a[oa + i * K + k] * b[ob + k * N + j];
          s += t;
          abs += Math.abs(t);
        }
        const g = got[bi * M * N + i * N + j];
        if (!Number.isFinite(s)) {
          // an infinite input's row or column: exactly the float64 result (+-Inf, or NaN where it is NaN)
          if (!(Number.isNaN(s) ? Number.isNaN(g) : g === s)) return Infinity;
          continue;
        }
        const e = Math.abs(g - s) / (bound * abs + Number.MIN_VALUE);
        if (!(e <= w)) w = Number.isNaN(e) ? Infinity : e;
        if (w === Infinity) return w;
      }
  }
  return w;
}

// Every size in each position; K and N both multiples of 4 (vec4 paths) and not (scalar paths);
// K past one slice, between slices, below one.
const shapes: [number, number, number][] = [
  [1, 1, 1], [3, 5, 4], [4, 4, 4], [5, 3, 5], [63, 65, 64], [64, 64, 64], [65, 63, 129], [127, 129, 63],
  [129, 127, 65], [200, 200, 127], [1, 200, 5], [200, 1, 3], [64, 128, 200], [5, 64, 129], [129, 4, 1], [3, 129, 200],
];
// The shapes each configuration runs: the first all of them, the others every other one (each
// list has both vec4 and scalar paths for A and B, K below, at and past one slice).
const evenShapes = shapes.filter((_, i) => i % 2 === 0), oddShapes = shapes.filter((_, i) => i % 2 === 1);
const shapesOf: Record<MatmulGpuConfig, [number, number, number][]> = {
  '128x128-8x8-k16-db': shapes,
  '128x128-8x8-k8-db': oddShapes,
  '128x128-8x8-k32': oddShapes,
  '128x64-8x4-k16-db': oddShapes,
  '64x64-4x4-k16-db': evenShapes,
  '64x64-8x8-k16-db': evenShapes,
};
// SwiftShader: one shape per path (scalar/scalar, vec4/vec4, scalar A/vec4 B, vec4 A/scalar B over two slices).
const smallShapes: [number, number, number][] = [[5, 3, 5], [4, 4, 4], [1, 68, 5], [65, 63, 20]];
const configs = Object.keys(MATMUL_GPU_CONFIGS) as MatmulGpuConfig[];
// SwiftShader runs barriers slowly (DESIGN.md, "Adapters"): small shapes, two configurations.
const tested: MatmulGpuConfig[] = swiftshader ? ['128x128-8x8-k16-db', '64x64-4x4-k16-db'] : configs;

describe(`matmul-gpu kernel (${gpu.info.architecture})`, () => {
  it('fits the workgroup-memory limit in every configuration', () => {
    const limit = gpu.rt.device.limits.maxComputeWorkgroupStorageSize;
    for (const c of configs) expect(matmulGpuWorkgroupBytes(MATMUL_GPU_CONFIGS[c])).toBeLessThanOrEqual(limit);
    expect(matmulGpuUniforms.words).toBe(32);
  });

  for (const config of tested) {
    it(`${config}: odd and aligned shapes, vec4 and scalar paths`, async () => {
      // Subzero compiles the 8x8-unrolled kernels slowly (seconds each): two paths of them there.
      const list = swiftshader ? (config === '128x128-8x8-k16-db' ? smallShapes.slice(0, 2) : smallShapes) : config === '128x128-8x8-k16-db' ? shapes : shapesOf[config];
      for (const [M, N, K] of list) {
        const e = await run(config, { M, N, K });
        expect(e, `${M}x${K} @ ${K}x${N}`).toBeLessThan(1);
      }
    });
  }

  it('broadcast batches (batch strides of 0) over several dispatches (the first-batch uniform)', async () => {
    const [M, N, K] = swiftshader ? [9, 12, 7] : [37, 68, 44];
    for (const config of tested.slice(0, 2)) {
      expect(await run(config, { M, N, K, ab: [2, 1], bb: [3] })).toBeLessThan(1);
      expect(await run(config, { M, N, K, ab: [2, 3], bb: [1, 3], chunk: 4 })).toBeLessThan(1);
      expect(await run(config, { M: 5, N: 7, K: 9, ab: [3, 1, 2], bb: [4, 1], chunk: 5 })).toBeLessThan(1);
    }
  });

  it.skipIf(swiftshader)('256x320 @ 320x384 on every configuration', async () => {
    for (const config of configs) expect(await run(config, { M: 256, N: 384, K: 320 }), config).toBeLessThan(1);
  });

  // Padded k (K not a multiple of the slice) must add exact zeros: A's loads past K are selected
  // to 0, not clamped to its last column, and B's to 0, not its last row, else an infinite last
  // column or row times the other side's padded 0 makes NaN where the product is +-Inf.
  it('infinite values in A\'s last column and B\'s last row: +-Inf, NaN only where float64 gives NaN', async () => {
    const M = 9;
    // K: scalar A (13, 37) and vec4 A (20, 36), none a multiple of 8, 16 or 32; N: vec4 B (12), scalar B (7)
    const dims: [number, number][] = swiftshader ? [[13, 7], [20, 12]] : [[13, 12], [20, 7], [13, 7], [20, 12], [37, 12], [36, 7]];
    for (const config of tested)
      for (const [K, N] of dims) {
        const a = host(M * K), b = host(K * N);
        for (let i = 0; i < M; i++) a[i * K + K - 1] = [Infinity, -Infinity, 0.5][i % 3];
        for (let j = 0; j < N; j++) b[(K - 1) * N + j] = [Infinity, -Infinity, 0, 0.25][j % 4];
        expect(await run(config, { M, N, K, a, b }), `${config} ${M}x${K} @ ${K}x${N}`).toBeLessThan(1);
      }
  });

  it('a dispatch writes only its own batches', async () => {
    const M = 5, N = 8, K = 6, cb = [3];
    const o = matmulGpuOptions('128x128-8x8-k16-db', K, N);
    const a = host(3 * M * K), b = host(K * N);
    const bufA = gpu.rt.acquire(a.byteLength), bufB = gpu.rt.acquire(b.byteLength), bufC = gpu.rt.acquire(3 * M * N * 4);
    gpu.rt.writeBuffer(bufA, a);
    gpu.rt.writeBuffer(bufB, b);
    gpu.rt.writeBuffer(bufC, new Float32Array(3 * M * N).fill(-7));
    gpu.rt.dispatch({
      label: 'matmul-gpu first batch 1', wgsl: matmulGpuFor(o), params: packMatmulGpu({ M, N, K, batchShape: cb, aStrides: [M * K], bStrides: [0], first: 1 }),
      output: bufC, inputs: [bufA, bufB], workgroups: matmulGpuWorkgroups(o, M, N, 1),
    });
    const got = await gpu.rt.readback(bufC, 3 * M * N * 4);
    [bufA, bufB, bufC].forEach((x) => gpu.rt.release(x));
    expect(Array.from(got.subarray(0, M * N)).every((v) => v === -7)).toBe(true);
    expect(Array.from(got.subarray(2 * M * N)).every((v) => v === -7)).toBe(true);
    const mid = got.subarray(M * N, 2 * M * N);
    expect(worst(mid, a.subarray(M * K, 2 * M * K), b, { M, N, K, cb: [1], sa: [0], sb: [0] })).toBeLessThan(1);
  });

  it('refuses configurations it cannot run', () => {
    expect(() => matmulGpuFor({ bm: 128, bn: 128, tm: 4, tn: 4, bk: 16, double: true, vecA: true, vecB: true })).toThrow(/1024 invocations/);
    expect(() => matmulGpuFor({ bm: 128, bn: 128, tm: 8, tn: 8, bk: 32, double: true, vecA: true, vecB: true })).toThrow(/workgroup memory/);
    expect(() => matmulGpuFor({ bm: 64, bn: 64, tm: 8, tn: 8, bk: 6, double: true, vecA: true, vecB: true })).toThrow(/bk/);
    expect(() => packMatmulGpu({ M: 1, N: 1, K: 1, batchShape: [1, 1, 1, 1, 1, 1, 1], aStrides: [0, 0, 0, 0, 0, 0, 0], bStrides: [0, 0, 0, 0, 0, 0, 0] })).toThrow(/rank 7/);
  });
});

// The kernel behind the backend's matmul on GPUs (init({ matmul: 'gpu' }), the default there):
// batched and broadcast products of both block sizes it picks, the vec4 and scalar paths, and an
// elementwise chain after it (not folded: this kernel has no epilogue), against the CPU backend.
describe("the backend's matmul with the gpu variant", () => {
  it('equals the float64 CPU backend through bl.matmul', async () => {
    const bl = await import('../../engine/index.ts');
    const g = (await init({ backend: 'webgpu', setDefault: false, matmul: 'gpu' })) as WebGpuBackend;
    const cpu = await init({ backend: 'cpu', setDefault: false });
    try {
      expect(g.matmulVariant).toBe('gpu');
      const cases: [number[], number[]][] = swiftshader
        ? [[[2, 5, 7], [7, 6]], [[3, 1, 9, 8], [4, 8, 12]]]
        : [[[2, 5, 7], [7, 6]], [[3, 1, 9, 8], [4, 8, 12]], [[130, 68], [68, 132]], [[2, 129, 64], [2, 64, 131]]];
      for (const [sa, sb] of cases) {
        const a = host(size(sa)), b = host(size(sb)), bias = host(sb[sb.length - 1]);
        const f = (be: typeof cpu) => bl.withBackend(be, () => bl.tidy(() => bl.tanh(bl.add(bl.matmul(bl.tensor(a, sa), bl.tensor(b, sb)), bl.tensor(bias, [bias.length])))));
        const got = f(g), want = f(cpu);
        const gd = await got.data(), wd = await want.data();
        expect(got.shape).toEqual(want.shape);
        const K = sa[sa.length - 1];
        // tanh is 1-Lipschitz: the product's float32 bound (gamma_{K+1} * sum |a||b| <= gamma * K)
        // plus tanh's own few ulps
        const tol = gamma(K + 1) * K + 4e-7;
        let worstErr = 0;
        for (let i = 0; i < wd.length; i++) worstErr = Math.max(worstErr, Math.abs(gd[i] - wd[i]));
        expect(worstErr, `${sa} @ ${sb}`).toBeLessThanOrEqual(tol);
        got.dispose();
        want.dispose();
      }
    } finally {
      g.destroy();
      cpu.destroy();
    }
  });
});

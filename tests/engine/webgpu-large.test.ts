// The primitive suite (webgpu-ops.test.ts) at the sizes where launch geometry changes: more than
// 65535 workgroups in one dimension (the WebGPU limit; 1-D launches are spread over a 2-D grid and
// must rebuild their flat index, a batched matmul splits its batches over several dispatches),
// reductions with many rows and with a few very long ones, and ResNet-sized convolutions. Also
// max pooling on values a float32 ulp apart: the window argmax must be exact, so that a WebGPU
// max-pool gradient is the float32 gradient of its own forward (issue 10's ResNet-18 saliency
// differed from PyTorch's at such near-ties: see the last test).
//
// Every WebGPU output is compared with the float64 CPU backend on the same float32 inputs, with
// the output buffers poisoned (NaN) first, so an element no invocation writes is caught.
// Tolerances as in webgpu-ops.test.ts: exact for movement/max/argmax/pool gathers, 1e-5
// elementwise, 1e-4 for accumulations of up to a few hundred terms; long sums get a bound from
// float32 rounding (below).
import { afterAll, describe, expect, it } from 'vitest';
import { apply, tidy, withBackend } from '../../engine/context.ts';
import { init } from '../../engine/init.ts';
import type { Shape } from '../../engine/primitives.ts';
import type { Tensor } from '../../engine/tensor.ts';
import type { WebGpuBackend } from '../../engine/webgpu/backend.ts';
import { tensor } from '../../engine/ops/creation.ts';
import { add, exp, mul } from '../../engine/ops/elementwise.ts';
import { relu } from '../../engine/ops/nn.ts';
import { argmax, max, sum } from '../../engine/ops/reduce.ts';
import { transpose } from '../../engine/ops/movement.ts';
import { matmul } from '../../engine/ops/linalg.ts';
import { conv2d, conv2dBackpropFilter, conv2dBackpropInput, conv2dOutShape, conv2dParams, type Conv2dOptions } from '../../engine/ops/conv.ts';
import { maxPool2d, poolOutShape, poolParams } from '../../engine/ops/pool.ts';
import { expectClose, randArray, rng, sizeOf } from '../helpers.ts';

const gpu = await init({ backend: 'webgpu', setDefault: false });
const cpu = await init({ backend: 'cpu', setDefault: false });
const wgpu = gpu as WebGpuBackend;
wgpu.poisonOutputs = true;

afterAll(() => {
  gpu.destroy();
  cpu.destroy();
});

const EXACT = 0;
const ELEMENTWISE = 1e-5;
const ACCUM = 1e-4;
/** Elements in one more than 65535 workgroups of 64 invocations. */
const OVER_GRID = 65535 * 64 + 4099;

async function check(what: string, build: () => Tensor, rtol: number, atol = rtol): Promise<void> {
  const gt = withBackend(gpu, () => tidy(build));
  const ct = withBackend(cpu, () => tidy(build));
  try {
    expect(gt.shape, what).toEqual(ct.shape);
    const [g, c] = [await gt.data(), await ct.data()];
    expect(g.length).toBeGreaterThan(0);
    expectClose(g, c, rtol, atol, what);
  } finally {
    gt.dispose();
    ct.dispose();
  }
}

const t = (d: Float32Array, s: Shape) => tensor(d, s);

describe('launches over 65535 workgroups', () => {
  const r = rng(1010);
  const x = randArray(r, OVER_GRID), y = randArray(r, OVER_GRID);

  it('unary, binary and a fused chain', async () => {
    const fusion = wgpu.fusion !== null;
    await check('exp', () => exp(t(x, [OVER_GRID])), ELEMENTWISE);
    await check(`relu((x * y) + 1) (${fusion ? 'fused' : 'unfused'})`, () => relu(add(mul(t(x, [OVER_GRID]), t(y, [OVER_GRID])), 1)), ELEMENTWISE);
    const rows = Math.floor(OVER_GRID / 7);
    await check('broadcast add [rows, 7] + [7]', () => add(t(x.subarray(0, rows * 7), [rows, 7]), t(y.subarray(0, 7), [7])), ELEMENTWISE);
  });

  it('movement: transpose', async () => {
    const a = 2053, b = 2069; // 4.25M elements
    const z = randArray(r, a * b);
    await check(`transpose [${a}, ${b}]`, () => transpose(t(z, [a, b])), EXACT);
  });

  it('reductions: many short rows, and a few rows of over a million', async () => {
    const rows = Math.floor(OVER_GRID / 3);
    await check(`sum [${rows}, 3] over the last axis`, () => sum(t(x.subarray(0, rows * 3), [rows, 3]), [1]), ACCUM);
    await check(`max [${rows}, 3] over the last axis`, () => max(t(x.subarray(0, rows * 3), [rows, 3]), [1]), EXACT);
    const long = Math.floor(OVER_GRID / 3);
    await check(`argmax [3, ${long}]`, () => argmax(t(x.subarray(0, 3 * long), [3, long]), 1), EXACT);
    await check(`max [3, ${long}]`, () => max(t(x.subarray(0, 3 * long), [3, long]), [1]), EXACT);
    // A float32 sum of n terms of size <= 1 is off by at most ~n * 2^-24 * sum|x| in the worst
    // case; a tree reduction does far better. 1e-4 of the row's absolute sum (~7e5) is 70.
    const gt = withBackend(gpu, () => sum(t(x.subarray(0, 3 * long), [3, long]), [1]));
    const ct = withBackend(cpu, () => sum(t(x.subarray(0, 3 * long), [3, long]), [1]));
    const [g, c] = [await gt.data(), await ct.data()];
    for (let i = 0; i < 3; i++) {
      let abs = 0;
      for (let k = 0; k < long; k++) abs += Math.abs(x[i * long + k]);
      expect(Math.abs(g[i] - c[i]), `sum of row ${i}`).toBeLessThanOrEqual(1e-4 * abs);
    }
    gt.dispose();
    ct.dispose();
  });

  // Before: "matmul [65538,3,5] [65538,5,2]: 65538 batches exceed 65535" (an error, where the
  // batches now run as two dispatches).
  it('batched matmul with more than 65535 batches (both kernel variants)', async () => {
    const B = 65538;
    const a = randArray(r, B * 3 * 5), b = randArray(r, B * 5 * 2), bb = randArray(r, 5 * 2);
    const prev = wgpu.matmulVariant;
    try {
      for (const variant of ['registerTiled', 'workgroupTiled'] as const) {
        wgpu.matmulVariant = variant;
        await check(`matmul [${B},3,5] @ [${B},5,2] (${variant})`, () => matmul(t(a, [B, 3, 5]), t(b, [B, 5, 2])), ACCUM);
        // (once: the workgroup-tiled kernel runs 256 invocations per batch, slow on a CPU adapter)
        if (variant === 'registerTiled') await check(`matmul [${B},3,5] @ [5,2] (${variant}, b broadcast)`, () => matmul(t(a, [B, 3, 5]), t(bb, [5, 2])), ACCUM);
      }
    } finally {
      wgpu.matmulVariant = prev;
    }
  }, 240_000);
});

describe('convolutions at explainer and ResNet sizes', () => {
  const r = rng(1111);
  const cases: [Shape, Shape, Conv2dOptions, string][] = [
    // 4.7M outputs: the direct kernel's launch spans more than 65535 workgroups.
    [[1024, 2, 24, 24], [8, 2, 3, 3], { padding: 1 }, 'batch 1024, 2 -> 8 channels'],
    [[2, 3, 64, 64], [64, 3, 7, 7], { stride: 2, padding: 3 }, 'ResNet stem 7x7 stride 2'],
    [[2, 64, 16, 16], [128, 64, 3, 3], { stride: 2, padding: 1 }, 'ResNet 3x3 stride 2, 64 -> 128'],
    [[2, 256, 4, 4], [256, 256, 3, 3], { padding: 1 }, 'ResNet 3x3, 256 channels'],
  ];
  for (const variant of ['tiled', 'direct'] as const) {
    for (const [xs, ws, opts, why] of cases) {
      it(`${variant}: ${why}`, async () => {
        const prev = wgpu.convVariant;
        wgpu.convVariant = variant;
        try {
          const x = randArray(r, sizeOf(xs)), w = randArray(r, sizeOf(ws), -0.3, 0.3);
          const ys = conv2dOutShape('test', xs, ws, conv2dParams('test', xs, ws, opts));
          const dy = randArray(r, sizeOf(ys));
          await check(`conv2d (${why})`, () => conv2d(t(x, xs), t(w, ws), opts), ACCUM);
          await check(`conv2dBackpropInput (${why})`, () => conv2dBackpropInput(t(dy, ys), t(w, ws), xs, opts), ACCUM);
          // backprop-filter sums N*OH*OW terms (up to 590k here): scale the bound by sqrt(terms).
          const terms = xs[0] * ys[2] * ys[3];
          await check(`conv2dBackpropFilter (${why})`, () => conv2dBackpropFilter(t(x, xs), t(dy, ys), ws, opts), ACCUM, ACCUM * Math.sqrt(terms));
        } finally {
          wgpu.convVariant = prev;
        }
      });
    }
  }
});

describe('max pooling at float32 near-ties', () => {
  // Values on a grid of float32 ulps around 1.5 (ulp 2^-23): many windows hold exact ties and
  // values one ulp apart. Both backends read the same float32 inputs, so the window argmax (first
  // maximum in row-major order) must agree exactly, and so must the gradient routed through it.
  const r = rng(1212);
  const xs: Shape = [8, 64, 32, 32];
  const n = sizeOf(xs);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = 1.5 + Math.floor(r() * 4) * 2 ** -23;
  const opts = { kernel: 3, stride: 2, padding: 1 };
  const p = poolParams('test', xs, opts);
  const os = poolOutShape('test', xs, p);
  const dy = randArray(r, sizeOf(os));
  const src = randArray(r, n);

  it('the window argmax is exact (gather, scatter)', async () => {
    expect(new Set(x).size).toBe(4);
    await check('maxPool2d', () => maxPool2d(t(x, xs), opts), EXACT);
    await check('maxPoolGather', () => apply('maxPoolGather', p, [t(x, xs), t(src, xs)], os), EXACT);
    // Each input element receives at most 4 windows' cotangents: exact up to float32 addition.
    await check('maxPoolScatter', () => apply('maxPoolScatter', p, [t(x, xs), t(dy, os)], xs), ELEMENTWISE);
  });

  // Issue 10, as a test of what the kernels owe: when two values of a window are one float32 ulp
  // apart, which one gets the gradient is decided by float32 rounding of the forward pass (any
  // float32 engine, PyTorch's too), not by the kernel. The WebGPU gradient must equal the float64
  // one computed from the same float32 forward values (so a difference from a float64 reference
  // is the forward's rounding, not the pooling kernel), and moving one ulp must move the gradient.
  it('a one-ulp change of the forward value moves the gradient to the other position', async () => {
    const one = new Float32Array([1.25, 1.25 + 2 ** -23, 0.5, 0.25]); // [1,1,2,2]; max at index 1
    const g = new Float32Array([3]);
    const q = poolParams('test', [1, 1, 2, 2], { kernel: 2 });
    for (const [vals, want] of [[one, [0, 3, 0, 0]], [Float32Array.from([1.25 + 2 ** -23, 1.25, 0.5, 0.25]), [3, 0, 0, 0]], [Float32Array.from([1.25, 1.25, 0.5, 0.25]), [3, 0, 0, 0]]] as const) {
      for (const be of [gpu, cpu]) {
        const d = withBackend(be, () => apply('maxPoolScatter', q, [t(vals as Float32Array, [1, 1, 2, 2]), t(g, [1, 1, 1, 1])], [1, 1, 2, 2]));
        expect(Array.from(await d.data()), `${be.name}: ${Array.from(vals)}`).toEqual(want);
        d.dispose();
      }
    }
  });
});

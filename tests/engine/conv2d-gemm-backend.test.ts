// The implicit-GEMM conv kernels (shaders/conv2d-gpu.ts) behind the backend's conv primitives, as
// a GPU runs them by default (init({ conv: 'gemm' })): forward (with a folded bias + activation),
// backprop-input at strides 1 and 2, split-K backprop-filter, a gradient through a small conv
// net, and layers with under 8 channels per group, which stay on the register-tiled kernel.
// Against the float64 CPU backend on odd sizes, outputs poisoned with NaN.
import { afterAll, describe, expect, it } from 'vitest';
import { tidy, withBackend } from '../../engine/context.ts';
import { init } from '../../engine/init.ts';
import type { Tensor } from '../../engine/tensor.ts';
import type { WebGpuBackend } from '../../engine/webgpu/backend.ts';
import { tensor } from '../../engine/ops/creation.ts';
import { add, mul, sigmoid } from '../../engine/ops/elementwise.ts';
import { relu } from '../../engine/ops/nn.ts';
import { sum } from '../../engine/ops/reduce.ts';
import { conv2d, conv2dBackpropFilter, conv2dBackpropInput } from '../../engine/ops/conv.ts';
import { grad } from '../../engine/autodiff/grad.ts';
import { expectClose, randArray, rng, sizeOf } from '../helpers.ts';

const gpu = (await init({ backend: 'webgpu', setDefault: false, conv: 'gemm' })) as WebGpuBackend;
const cpu = await init({ backend: 'cpu', setDefault: false });
gpu.poisonOutputs = true;
afterAll(() => {
  gpu.destroy();
  cpu.destroy();
});

const r = rng(21);
const data = (shape: number[]) => ({ shape, values: randArray(r, sizeOf(shape)) });
type Data = ReturnType<typeof data>;
const t = (d: Data) => tensor(d.values, d.shape);

// Float32 sums of up to a few hundred products of values in [-1, 1]: gamma_n * n stays under
// 1e-4 for n <= 600 (tests/engine/conv2d-gpu.test.ts derives the per-element bound).
async function check(what: string, build: () => Tensor[], atol = 1e-4): Promise<void> {
  const g = withBackend(gpu, () => tidy(build));
  const c = withBackend(cpu, () => tidy(build));
  try {
    for (let k = 0; k < g.length; k++) {
      expect(g[k].shape).toEqual(c[k].shape);
      expectClose(await g[k].data(), await c[k].data(), atol, 1e-5, `${what} (output ${k})`);
    }
  } finally {
    [...g, ...c].forEach((x) => x.dispose());
  }
}

/** Dispatches whose label says the gemm kernel ran while `build` is recorded and flushed. */
async function gemmDispatches(build: () => Tensor): Promise<number> {
  const labels: string[] = [];
  const orig = gpu.rt.dispatch.bind(gpu.rt);
  gpu.rt.dispatch = (d) => {
    labels.push(d.label);
    orig(d);
  };
  let y: Tensor | undefined;
  try {
    y = withBackend(gpu, () => tidy(build));
    gpu.flush(); // emits pending (lazily recorded) work
  } finally {
    gpu.rt.dispatch = orig;
  }
  await y.data();
  y.dispose();
  return labels.filter((l) => l.includes('(gemm')).length;
}

const x = data([2, 9, 11, 13]);
const w = data([12, 9, 3, 3]);
const bias = data([12]);

describe('conv primitives on the implicit-GEMM kernels', () => {
  it('the gemm variant is selected', () => {
    expect(gpu.convVariant).toBe('gemm');
  });

  it('forward, with a folded bias + relu and without', async () => {
    await check('forward', () => [conv2d(t(x), t(w), { padding: 1 })]);
    await check('forward + bias + relu', () => [relu(conv2d(t(x), t(w), { padding: 1, bias: t(bias) }))]);
    const xg = data([2, 16, 15, 12]), wg = data([16, 8, 3, 2]);
    await check('strided, dilated, grouped', () => [sigmoid(conv2d(t(xg), t(wg), { stride: [2, 1], dilation: [1, 2], padding: [1, 0], groups: 2 }))]);
    expect(await gemmDispatches(() => relu(conv2d(t(x), t(w), { padding: 1, bias: t(bias) })))).toBe(1);
  });

  it('backprop-input at strides 1 and 2, and backprop-filter with split-K', async () => {
    for (const stride of [1, 2]) {
      const y = withBackend(cpu, () => conv2d(t(x), t(w), { padding: 1, stride }));
      const dy = data([...y.shape]);
      y.dispose();
      await check(`backprop-input stride ${stride}`, () => [conv2dBackpropInput(t(dy), t(w), x.shape, { padding: 1, stride })]);
      await check(`backprop-filter stride ${stride}`, () => [conv2dBackpropFilter(t(x), t(dy), w.shape, { padding: 1, stride })], 2e-4);
    }
    const xBig = data([8, 12, 14, 14]), dyBig = data([8, 16, 14, 14]);
    await check('backprop-filter over 8x14x14 pixels (several splits)', () => [conv2dBackpropFilter(t(xBig), t(dyBig), [16, 12, 3, 3], { padding: 1 })], 1e-3);
    expect(await gemmDispatches(() => conv2dBackpropFilter(t(xBig), t(dyBig), [16, 12, 3, 3], { padding: 1 }))).toBe(1);
  });

  it('a gradient through conv + bias + relu + conv equals the CPU backend', async () => {
    const w2 = data([10, 12, 3, 3]);
    const f = (xx: Tensor) => sum(mul(relu(conv2d(relu(conv2d(xx, t(w), { padding: 1, bias: t(bias) })), t(w2), { padding: 1 })), 0.5), [0, 1, 2, 3]);
    await check('input gradient', () => [grad(f)(t(x))], 2e-4);
  });

  it('layers with under 8 output channels per group stay on the register-tiled kernel, and are right', async () => {
    const x1 = data([2, 3, 10, 10]), w1 = data([4, 3, 3, 3]);
    await check('4 output channels', () => [add(conv2d(t(x1), t(w1), { padding: 1 }), 1)]);
    expect(await gemmDispatches(() => conv2d(t(x1), t(w1), { padding: 1 }))).toBe(0);
  });
});

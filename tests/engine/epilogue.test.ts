// Epilogue fusion (engine/webgpu/fusion.ts, producers): a conv2d or matmul whose output only
// feeds an elementwise chain (bias, BatchNorm's scale and shift, an activation, a residual add)
// runs as one kernel that applies the chain as it writes. Every case is compared with the float64
// CPU backend on odd sizes with poisoned outputs; the dispatch counts show what was folded, and
// the cases where folding would be wrong (the producer's own output still wanted, a second
// consumer, a broadcast read of the producer) must still give the right values.
import { afterAll, describe, expect, it } from 'vitest';
import { tidy, withBackend } from '../../engine/context.ts';
import { init, memory } from '../../engine/init.ts';
import type { Tensor } from '../../engine/tensor.ts';
import type { WebGpuBackend } from '../../engine/webgpu/backend.ts';
import { tensor } from '../../engine/ops/creation.ts';
import { add, mul, neg, sigmoid, sub, tanh } from '../../engine/ops/elementwise.ts';
import { batchNorm, relu } from '../../engine/ops/nn.ts';
import { maxPool2d } from '../../engine/ops/pool.ts';
import { sum } from '../../engine/ops/reduce.ts';
import { matmul } from '../../engine/ops/linalg.ts';
import { conv2d } from '../../engine/ops/conv.ts';
import { grad } from '../../engine/autodiff/grad.ts';
import { expectClose, randArray, rng, sizeOf } from '../helpers.ts';

const gpu = (await init({ backend: 'webgpu', setDefault: false, fusion: true })) as WebGpuBackend;
const cpu = await init({ backend: 'cpu', setDefault: false });
const fusion = gpu.fusion!;

afterAll(() => {
  gpu.destroy();
  cpu.destroy();
});

const TOL = 2e-5;
const r = rng(7);
const data = (shape: number[]) => ({ shape, values: randArray(r, sizeOf(shape)) });
type Data = ReturnType<typeof data>;
const t = (d: Data) => tensor(d.values, d.shape);

/** Run `build` on both backends (inside tidy) and compare every returned tensor. */
async function check(what: string, build: () => Tensor[], tol = TOL): Promise<void> {
  const g = withBackend(gpu, () => tidy(build));
  const c = withBackend(cpu, () => tidy(build));
  try {
    for (let k = 0; k < g.length; k++) {
      expect(g[k].shape).toEqual(c[k].shape);
      const want = await c[k].data();
      const scale = Math.max(1, ...Array.from(want, Math.abs));
      expectClose(await g[k].data(), want, tol * scale, tol, `${what} (output ${k})`);
    }
  } finally {
    [...g, ...c].forEach((x) => x.dispose());
  }
}

/** Dispatches and folded epilogues while `build` runs and its results are read (no poisoning). */
async function countsOf(build: () => Tensor[]): Promise<{ dispatches: number; epilogues: number }> {
  gpu.poisonOutputs = false;
  try {
    await gpu.sync();
    const d0 = gpu.rt.dispatchCount, e0 = fusion.epilogues;
    const out = withBackend(gpu, () => tidy(build));
    for (const x of out) await x.data();
    out.forEach((x) => x.dispose());
    return { dispatches: gpu.rt.dispatchCount - d0, epilogues: fusion.epilogues - e0 };
  } finally {
    gpu.poisonOutputs = true;
  }
}

gpu.poisonOutputs = true;

// Odd sizes: output columns not a multiple of the conv's column block, channels not a multiple of
// its channel block, matmul rows/columns not multiples of the register tile.
const x = data([3, 5, 9, 11]);
const w = data([7, 5, 3, 3]);
const bias = data([7]);
const scale = data([1, 7, 1, 1]);
const shift = data([1, 7, 1, 1]);
const resid = data([3, 7, 9, 11]);
const a = data([2, 13, 19]);
const bm = data([19, 10]);
const rowBias = data([10]);

const convOut = () => conv2d(t(x), t(w), { padding: 1 });

describe('conv2d and matmul with a fused epilogue, against the CPU backend', () => {
  it('conv2d + bias + relu (a Conv2d layer and its activation)', async () => {
    await check('conv bias relu', () => [relu(conv2d(t(x), t(w), { padding: 1, bias: t(bias) }))]);
  });

  it('conv2d + BatchNorm scale and shift + relu (several per-channel leaves)', async () => {
    await check('conv bn relu', () => [relu(add(mul(convOut(), t(scale)), t(shift)))]);
  });

  it('conv2d down to 1 and to 2 channels per group (the narrow blocks) + bias + relu', async () => {
    const w1 = data([1, 5, 3, 3]), b1 = data([1]);
    await check('conv to 1 channel', () => [relu(conv2d(t(x), t(w1), { padding: 1, bias: t(b1) }))]);
    const xg = data([2, 6, 7, 9]), w2 = data([4, 3, 3, 3]), b2 = data([4]);
    await check('conv to 2 channels per group', () => [relu(conv2d(t(xg), t(w2), { padding: [1, 0, 2, 1], groups: 2, bias: t(b2) }))]);
  });

  it('per-channel leaves read at the channel the kernel passes, beside leaves that need the index walk', async () => {
    // [1,7,1,1] and [7,1,1] are per-channel; [3,1,1,1] (per image), [1,1,1,11] (per column) and
    // [1,7,9,1] (channel and row) are not, and must still go through the walk.
    const perImage = data([3, 1, 1, 1]), perCol = data([1, 1, 1, 11]), chanRow = data([1, 7, 9, 1]), bias3 = data([7, 1, 1]);
    const dispatch = gpu.rt.dispatch.bind(gpu.rt);
    const withChannel: boolean[] = [];
    gpu.rt.dispatch = (d) => {
      if (d.label.includes('fused step')) withChannel.push(d.wgsl.includes('fn epilogue(acc: f32, i: u32, ch: u32)'));
      dispatch(d);
    };
    try {
      await check('channel leaves', () => [relu(add(mul(convOut(), t(scale)), t(bias3)))]);
      await check('mixed leaves', () => [sigmoid(add(add(mul(convOut(), t(perImage)), t(shift)), mul(t(perCol), t(chanRow))))]);
      await check('no channel leaf', () => [tanh(add(mul(convOut(), t(perImage)), t(perCol)))]);
      // matmul: the output column is the channel ([10] or [1,10]); a per-row [13,1] leaf walks
      const perRow = data([13, 1]), bias2 = data([1, 10]);
      for (const variant of ['registerTiled', 'workgroupTiled'] as const) {
        const saved = gpu.matmulVariant;
        gpu.matmulVariant = variant;
        try {
          await check(`matmul ${variant}, column and row leaves`, () => [sigmoid(add(mul(matmul(t(a), t(bm)), t(rowBias)), mul(t(perRow), t(bias2))))]);
          if (variant === 'registerTiled') await check('matmul, a row leaf only', () => [tanh(add(matmul(t(a), t(bm)), t(perRow)))]);
        } finally {
          gpu.matmulVariant = saved;
        }
      }
    } finally {
      gpu.rt.dispatch = dispatch;
    }
    expect(withChannel).toEqual([true, true, false, true, false, true]);
  });

  it('conv2d + a residual of the same shape + relu (a flat leaf)', async () => {
    await check('conv residual relu', () => [relu(add(convOut(), t(resid)))]);
  });

  it('conv2d with stride, dilation and groups + bias + sigmoid', async () => {
    const xg = data([2, 6, 13, 10]), wg = data([9, 2, 3, 2]), bg = data([9]);
    await check('grouped strided conv', () => [sigmoid(conv2d(t(xg), t(wg), { stride: [2, 1], dilation: [1, 2], padding: [1, 0], groups: 3, bias: t(bg) }))]);
  });

  it('batched matmul + a row bias + tanh, and a scalar constant in the chain', async () => {
    await check('matmul bias tanh', () => [tanh(mul(add(matmul(t(a), t(bm)), t(rowBias)), 0.5))]);
  });

  it('the producer read twice in one op (z * z) and a chain longer than one step', async () => {
    await check('z*z', () => {
      const z = convOut();
      return [sub(mul(z, z), neg(t(resid)))];
    });
  });
});

describe('what folds, and what must not', () => {
  it('conv2d + bias + relu runs as one dispatch', async () => {
    const c = await countsOf(() => [relu(conv2d(t(x), t(w), { padding: 1, bias: t(bias) }))]);
    // uploads are not dispatches: the conv with its epilogue is the only kernel
    expect(c).toEqual({ dispatches: 1, epilogues: 1 });
  });

  it('matmul + bias + tanh runs as one dispatch (register-tiled and workgroup-tiled kernels)', async () => {
    const variant = gpu.matmulVariant;
    try {
      for (const v of ['registerTiled', 'workgroupTiled'] as const) {
        gpu.matmulVariant = v;
        const c = await countsOf(() => [tanh(add(matmul(t(a), t(bm)), t(rowBias)))]);
        expect(c, v).toEqual({ dispatches: 1, epilogues: 1 });
      }
    } finally {
      gpu.matmulVariant = variant;
    }
  });

  it('every matmul kernel and block with a folded chain equals the CPU backend', async () => {
    const saved = { variant: gpu.matmulVariant, block: gpu.matmulBlock };
    const cases: { variant: typeof gpu.matmulVariant; block: [number, number] | null }[] = [
      { variant: 'registerTiled', block: [4, 4] }, // tm = 4, one vec4 column group
      { variant: 'registerTiled', block: [3, 12] }, // rows and columns not a power of two
      { variant: 'registerTiled', block: null },
      { variant: 'workgroupTiled', block: null },
      { variant: 'gpu', block: null }, // no epilogue: the chain runs as its own kernel
    ];
    try {
      for (const c of cases) {
        gpu.matmulVariant = c.variant;
        gpu.matmulBlock = c.block;
        await check(`matmul ${c.variant} ${c.block ?? 'default'}`, () => [sigmoid(sub(matmul(t(a), t(bm)), t(rowBias)))]);
        const n = await countsOf(() => [sigmoid(sub(matmul(t(a), t(bm)), t(rowBias)))]);
        expect(n, c.variant).toEqual(c.variant === 'gpu' ? { dispatches: 2, epilogues: 0 } : { dispatches: 1, epilogues: 1 });
      }
    } finally {
      gpu.matmulVariant = saved.variant;
      gpu.matmulBlock = saved.block;
    }
  });

  it('a matmul recorded under one variant and run after a switch uses the variant it was recorded with', async () => {
    const variant = gpu.matmulVariant;
    try {
      gpu.matmulVariant = 'registerTiled';
      const g = withBackend(gpu, () => tidy(() => relu(add(matmul(t(a), t(bm)), t(rowBias)))));
      gpu.matmulVariant = 'gpu';
      const c = withBackend(cpu, () => tidy(() => relu(add(matmul(t(a), t(bm)), t(rowBias)))));
      expectClose(await g.data(), await c.data(), TOL * 4, TOL, 'switched variant');
      g.dispose();
      c.dispose();
    } finally {
      gpu.matmulVariant = variant;
    }
  });

  it('a chain that holds an intermediate (still wanted): the producer folds into that value, which the rest reads', async () => {
    const build = () => {
      const u = add(convOut(), t(shift));
      return [relu(u), u];
    };
    await check('held intermediate', build);
    // conv + shift in one kernel writing u, relu reading u: never the conv or u twice
    expect(await countsOf(build)).toEqual({ dispatches: 2, epilogues: 1 });
  });

  it('under a gradient tape conv + bias still fold (the tape keeps only what the rules read)', async () => {
    const f = (xx: Tensor) => sum(relu(conv2d(xx, t(w), { padding: 1, bias: t(bias) })), [0, 1, 2, 3]);
    await check('input gradient', () => [grad(f)(t(x))]);
    const c = await countsOf(() => [grad(f)(t(x))]);
    expect(c.epilogues).toBeGreaterThanOrEqual(1);
  });

  it('a chain whose uniforms do not fit beside the producer\'s runs as its own kernel', async () => {
    // rank 5, six strided leaves: 6 x 5 strides + the shape, with matmul's 28 words, is over 64
    const a5 = data([2, 2, 2, 13, 19]);
    const leaves = [[2, 1, 1, 1, 1], [1, 2, 1, 1, 1], [1, 1, 2, 1, 1], [1, 1, 1, 13, 1], [1, 1, 1, 1, 10], [2, 2, 1, 1, 1]].map((sh) => data(sh));
    const build = () => [relu(leaves.reduce((acc, l) => add(acc, t(l)), matmul(t(a5), t(bm))))];
    await check('too many uniforms', build);
  });

  it('a chain with more leaves than the bindings left is not folded and is right', async () => {
    Object.defineProperty(gpu, 'epilogueLeaves', { get: () => 1, configurable: true });
    try {
      const build = () => [relu(add(mul(convOut(), t(scale)), t(shift)))]; // two leaves
      await check('few bindings', build);
      expect((await countsOf(build)).epilogues).toBe(0);
      // one leaf still folds
      expect((await countsOf(() => [relu(add(convOut(), t(shift)))])).epilogues).toBe(1);
    } finally {
      delete (gpu as unknown as Record<string, unknown>).epilogueLeaves;
    }
  });

  it('the inputs of a pending conv stay valid after their tensors are disposed', async () => {
    const y = withBackend(gpu, () => {
      const xt = t(x), wt = t(w), bt = t(bias);
      const r = tidy(() => relu(conv2d(xt, wt, { padding: 1, bias: bt })));
      [xt, wt, bt].forEach((q) => q.dispose()); // before anything has run
      // new work that could reuse the freed buffers, recorded before the conv is emitted
      const junk = tidy(() => mul(t(data([3, 5, 9, 11])), 3));
      junk.dispose();
      return r;
    });
    const want = withBackend(cpu, () => tidy(() => relu(conv2d(t(x), t(w), { padding: 1, bias: t(bias) }))));
    expectClose(await y.data(), await want.data(), TOL * 4, TOL, 'disposed inputs');
    y.dispose();
    want.dispose();
  });

  it('a matmul over the grid limit fails at the op and leaks nothing', async () => {
    const variant = gpu.matmulVariant;
    gpu.matmulVariant = 'registerTiled';
    try {
      await gpu.sync();
      const before = memory(gpu).liveBuffers;
      const n = 65535 * 64 + 1; // 65536 column blocks of 64
      const l = withBackend(gpu, () => tensor([1, 2], [1, 2]));
      const r = withBackend(gpu, () => tensor(new Float32Array(2 * n), [2, n]));
      expect(() => withBackend(gpu, () => matmul(l, r))).toThrow(/65536x1x1 workgroups, over the 65535 limit/);
      l.dispose();
      r.dispose();
      await gpu.sync(); // nothing pending fails later
      expect(memory(gpu).liveBuffers).toBe(before);
    } finally {
      gpu.matmulVariant = variant;
    }
  });

  it('a producer whose own output is still wanted runs once, and the chain reads it', async () => {
    const build = () => {
      const z = convOut();
      return [z, relu(add(z, t(resid)))];
    };
    await check('kept producer', build);
    const c = await countsOf(build);
    expect(c.epilogues).toBe(0);
    expect(c.dispatches).toBe(2); // the conv once, the chain once: never the conv twice
  });

  it('two chains reading one producer: the producer runs once', async () => {
    const build = () => {
      const z = convOut();
      return [relu(z), sigmoid(z)];
    };
    await check('two consumers', build);
    // the second consumer makes the conv run plainly; each chain then reads its output
    expect(await countsOf(build)).toEqual({ dispatches: 3, epilogues: 0 });
  });

  it('a producer read through a broadcast (its shape is not the chain\'s) is not folded and is right', async () => {
    const small = data([1, 7, 9, 11]), w1 = data([7, 7, 1, 1]);
    const build = () => [relu(add(conv2d(t(small), t(w1), {}), t(resid)))];
    await check('broadcast producer', build);
  });

  it('a producer nobody reads is never computed', async () => {
    await gpu.sync();
    const d0 = gpu.rt.dispatchCount;
    withBackend(gpu, () => tidy(() => {
      relu(convOut());
      return [];
    }));
    await gpu.sync();
    // uploads of x and w are copies, not dispatches; the conv and the relu never ran
    expect(gpu.rt.dispatchCount - d0).toBe(0);
  });

  it('a non-elementwise consumer (sum) takes the producer as it is', async () => {
    await check('conv then sum', () => [sum(relu(convOut()), [1, 3])]);
  });

  it('gradients through conv + bias + relu under the tape equal the CPU backend', async () => {
    const f = (xx: Tensor) => sum(relu(conv2d(xx, t(w), { padding: 1, bias: t(bias) })), [0, 1, 2, 3]);
    await check('input gradient', () => [grad(f)(t(x))]);
  });

  it('leaves no live buffers and no pending chains behind', async () => {
    await gpu.sync();
    const before = memory(gpu).liveBuffers;
    await check('repeat', () => [relu(conv2d(t(x), t(w), { padding: 1, bias: t(bias) })), tanh(add(matmul(t(a), t(bm)), t(rowBias)))]);
    await gpu.sync();
    expect(memory(gpu).liveBuffers).toBe(before);
    expect(fusion.pendingCount).toBe(0);
  });
});

// A conv, a matmul or a pool records its inputs still pending (engine/webgpu/fusion.ts, Producer):
// what it reads is emitted when it is, so the layers of a Sequential fold although its tidy scope
// still holds each layer's output when the next layer is recorded.
describe('producers whose inputs are still pending', () => {
  const w2 = data([6, 7, 3, 3]);
  const bn = { mean: data([7]), variance: data([7]), gamma: data([7]), beta: data([7]) };
  const bnOf = (z: Tensor) => batchNorm(z, { mean: t(bn.mean), variance: tensor(bn.variance.values.map(Math.abs), [7]), gamma: t(bn.gamma), beta: t(bn.beta) });
  // conv -> BatchNorm -> ReLU -> maxPool -> conv -> ReLU, every intermediate held until the end
  // (as a Sequential's tidy holds them), only the last one returned
  const layers = (): Tensor[] => {
    const held: Tensor[] = [];
    const keep = (z: Tensor) => (held.push(z), z);
    const a = keep(convOut());
    const b = keep(bnOf(a));
    const c = keep(relu(b));
    const d = keep(maxPool2d(c, { kernel: 2, stride: 2 }));
    const e = keep(conv2d(d, t(w2), { padding: 1 }));
    return [relu(e)];
  };

  it('conv -> BatchNorm -> ReLU -> pool -> conv -> ReLU in one scope: right values, each conv one kernel with its chain', async () => {
    await check('layers', layers);
    // conv+BN+ReLU, pool, conv+ReLU: three kernels, two epilogues
    expect(await countsOf(layers)).toEqual({ dispatches: 3, epilogues: 2 });
  });

  it('a value a producer reads and a chain also reads is computed once', async () => {
    const build = () => {
      const h = relu(add(convOut(), t(shift))); // pending
      const y = conv2d(h, t(w2), { padding: 1 }); // reads h as a buffer
      return [y, sigmoid(h)]; // a chain reading h too
    };
    await check('shared', build);
    // conv+shift+relu (h), the second conv, sigmoid(h): h is not computed twice
    expect(await countsOf(build)).toEqual({ dispatches: 3, epilogues: 1 });
  });

  it('a long run of pending producers is emitted without a deep recursion, and is right', async () => {
    // y <- y P + k with P a cyclic shift: exact in float32, so a step run twice, skipped or out of
    // order shows (a chaotic map would drift between float32 and float64 instead)
    const shift = { shape: [12, 12], values: Float32Array.from({ length: 144 }, (_, i) => ((Math.floor(i / 12) + 1) % 12 === i % 12 ? 1 : 0)) };
    const x0 = { shape: [3, 12], values: Float32Array.from({ length: 36 }, (_, i) => i % 7) };
    const build = () => {
      let y = t(x0);
      for (let k = 0; k < 3000; k++) y = add(matmul(y, t(shift)), k % 5);
      return [y];
    };
    await check('3000 matmuls', build, 0);
  });

  it('a pool whose input tensors were disposed before it ran reads what it was given', async () => {
    const y = withBackend(gpu, () => {
      const xt = t(x), wt = t(w);
      const c = tidy(() => relu(conv2d(xt, wt, { padding: 1 })));
      const p = maxPool2d(c, { kernel: 2, stride: 2 });
      [xt, wt, c].forEach((q) => q.dispose()); // nothing has run yet
      return p;
    });
    const want = withBackend(cpu, () => tidy(() => maxPool2d(relu(conv2d(t(x), t(w), { padding: 1 })), { kernel: 2, stride: 2 })));
    expectClose(await y.data(), await want.data(), TOL * 10, TOL, 'pool of disposed inputs');
    y.dispose();
    want.dispose();
    await gpu.sync();
    expect(fusion.pendingCount).toBe(0);
  });
});

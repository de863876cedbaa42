// Test layer 1 (DESIGN.md, "Tests, in layers"): every primitive's WebGPU forward against the
// float64 CPU backend, on fresh seeded random inputs of odd sizes (1, primes, never multiples of 4
// or of the 64-wide workgroup), with every GPU output buffer poisoned with NaN before its kernel
// runs, so an element a kernel forgets to write shows up as NaN.
//
// Inputs are generated in JS (tests/helpers.ts, mulberry32) and rounded to float32, so both
// backends see identical values. Tolerances, |gpu - cpu| <= max(atol, rtol * |cpu|):
//   - elementwise maps: rtol = atol = 1e-5, i.e. |gpu - cpu| <= 1e-5 * max(1, |cpu|);
//   - exact operations (movement, comparisons, max/argmax, gather, pooling's max, step/sign/floor,
//     uniform random): 0, bit-exact against the float32 rounding of the CPU value;
//   - accumulations (sum, matmul, conv2d and its adjoints, average pooling, bilinear resize and
//     the scatter-like adjoints): rtol = atol = 1e-4 (float32 accumulation of up to a few hundred
//     terms of size ~1);
//   - normal random numbers: the elementwise bound, after two kernel fixes (see the 'normal' test).
import { afterAll, describe, expect, it } from 'vitest';
import { apply, tidy, withBackend } from '../../engine/context.ts';
import { init, memory } from '../../engine/init.ts';
import type { PrimParams, Shape } from '../../engine/primitives.ts';
import { BINARY_PRIMS, UNARY_PRIMS, type BinaryPrim, type UnaryPrim } from '../../engine/primitives.ts';
import type { Tensor } from '../../engine/tensor.ts';
import type { WebGpuBackend } from '../../engine/webgpu/backend.ts';
import { rand, randn, tensor } from '../../engine/ops/creation.ts';
import { where } from '../../engine/ops/elementwise.ts';
import { argmax, max, sum } from '../../engine/ops/reduce.ts';
import { concat, flip, pad, slice } from '../../engine/ops/movement.ts';
import { matmul } from '../../engine/ops/linalg.ts';
import { conv2d, conv2dBackpropFilter, conv2dBackpropInput, conv2dOutShape, conv2dParams, type Conv2dOptions } from '../../engine/ops/conv.ts';
import { avgPool2d, maxPool2d, poolOutShape, poolParams, type Pool2dOptions } from '../../engine/ops/pool.ts';
import { resizeBilinear } from '../../engine/ops/resize.ts';
import { gather, oneHot, scatterAdd } from '../../engine/ops/gather.ts';
import { expectClose, randArray, randInts, rng, sizeOf } from '../helpers.ts';

const gpu = await init({ backend: 'webgpu', setDefault: false });
const cpu = await init({ backend: 'cpu', setDefault: false });
const wgpu = gpu as WebGpuBackend;
wgpu.poisonOutputs = true;

afterAll(() => {
  gpu.destroy();
  cpu.destroy();
});

// vitest.config.ts runs this file twice: on the default adapter and with
// BACKLIGHT_ADAPTER=swiftshader. Make sure each run is on the adapter it claims.
describe('adapter', () => {
  it(`runs on ${process.env.BACKLIGHT_ADAPTER || 'the default adapter'} (backend.info.adapter)`, () => {
    const want = process.env.BACKLIGHT_ADAPTER;
    if (want === 'lavapipe' || want === 'swiftshader') expect(gpu.info.adapter).toBe(want);
    else expect(['lavapipe', 'swiftshader', 'gpu']).toContain(gpu.info.adapter);
    console.log(`webgpu-ops on ${gpu.info.adapter}: ${gpu.info.description}`);
  });
});

const EXACT = 0;
const ELEMENTWISE = 1e-5;
const ACCUM = 1e-4;

/**
 * Build the same graph on both backends (`build` creates its inputs with `tensor()` on the
 * default backend, inside a tidy scope) and return both outputs' data. `build` runs twice, so it
 * must not draw random data itself: generate host inputs before calling.
 */
async function both(build: () => Tensor): Promise<{ g: Float32Array | Float64Array; c: Float32Array | Float64Array; shape: Shape }> {
  const gt = withBackend(gpu, () => tidy(build));
  const ct = withBackend(cpu, () => tidy(build));
  try {
    expect(gt.backend).toBe(gpu);
    expect(ct.backend).toBe(cpu);
    expect(gt.shape).toEqual(ct.shape);
    const [g, c] = [await gt.data(), await ct.data()];
    return { g, c, shape: gt.shape };
  } finally {
    gt.dispose();
    ct.dispose();
  }
}

async function check(what: string, build: () => Tensor, rtol: number, atol = rtol): Promise<void> {
  const { g, c } = await both(build);
  expect(g.length).toBeGreaterThan(0);
  expectClose(g, c, rtol, atol, what);
}

const t = (data: ArrayLike<number>, shape: Shape) => tensor(data, shape);
const fmt = (s: Shape) => `[${s.join(',')}]`;

// ---------------------------------------------------------------------------------------------

describe('elementwise: unary', () => {
  const r = rng(101);
  // Inputs per primitive: each in the domain where the primitive is smooth (or, for the
  // piecewise-constant ones, with exact integers and zeros mixed in).
  const mixed = (n: number) => Float32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? Math.floor(r() * 7) - 3 : Math.fround(10 * r() - 5)));
  const domain: Record<UnaryPrim, (n: number) => Float32Array> = {
    neg: (n) => randArray(r, n, -5, 5),
    exp: (n) => randArray(r, n, -10, 10),
    log: (n) => randArray(r, n, 0.01, 10),
    sqrt: (n) => randArray(r, n, 0, 10),
    abs: (n) => randArray(r, n, -5, 5),
    sign: mixed,
    sin: (n) => randArray(r, n, -10, 10),
    cos: (n) => randArray(r, n, -10, 10),
    tanh: (n) => randArray(r, n, -12, 12),
    sigmoid: (n) => randArray(r, n, -20, 20),
    step: mixed,
    reciprocal: (n) => Float32Array.from(randArray(r, n, 0.1, 10), (v, i) => (i % 2 ? -v : v)),
    floor: mixed,
  };
  const exact = new Set<UnaryPrim>(['neg', 'abs', 'sign', 'step', 'floor']);
  for (const prim of UNARY_PRIMS) {
    it(prim, async () => {
      for (const shape of [[1], [67], [3, 7, 13]]) {
        const x = domain[prim](sizeOf(shape));
        await check(`${prim} ${fmt(shape)}`, () => apply(prim, {}, [t(x, shape)], shape), exact.has(prim) ? EXACT : ELEMENTWISE);
      }
    });
  }

  it('special values (0, -0, +-inf, NaN, overflow) match the CPU rounded to float32', async () => {
    // WGSL lets an implementation ignore NaN and infinity; the kernels must not (shaders/math.ts).
    const x = [0, -0, 1, -1, 0.5, -2.5, Infinity, -Infinity, NaN, 88, 89, -104, 1e-3, -1e-3, 3e38, -3e38];
    for (const prim of UNARY_PRIMS) {
      // sin/cos reduce their argument accurately for |x| <= 1e5 only (beyond: the adapter's own).
      const xs = prim === 'sin' || prim === 'cos' ? x.filter((v) => !(Math.abs(v) > 1e5 && Number.isFinite(v))) : x;
      const { g, c } = await both(() => apply(prim, {}, [t(xs, [xs.length])], [xs.length]));
      expectClose(g, Float32Array.from(c), ELEMENTWISE, ELEMENTWISE, `${prim} on ${xs.join(', ')}`);
    }
  });
});

describe('large launches', () => {
  it('more than 65535 workgroups: the launch spreads over x and y, every element written once', async () => {
    const n = 65535 * 64 + 67;
    const x = randArray(rng(111), n, -5, 5);
    await check(`neg [${n}]`, () => apply('neg', {}, [t(x, [n])], [n]), EXACT);
  });
});

describe('rank 8 (the most the kernels take)', () => {
  const r = rng(121);
  it('broadcasting binary, select, permute, reduce, matmul with six batch axes', async () => {
    const sa = [2, 1, 3, 1, 2, 1, 3, 1], sb = [1, 3, 1, 2, 1, 2, 1, 5], so = [2, 3, 3, 2, 2, 2, 3, 5];
    const a = randArray(r, sizeOf(sa)), b = randArray(r, sizeOf(sb)), c = randInts(r, sizeOf(sb), -1, 1);
    await check('sub rank 8', () => apply('sub', {}, [t(a, sa), t(b, sb)], so), ELEMENTWISE);
    await check('select rank 8', () => apply('select', {}, [t(c, sb), t(a, sa), t(b, sb)], so), EXACT);
    const x = randArray(r, sizeOf(so));
    const perm = [7, 0, 6, 1, 5, 2, 4, 3];
    await check('permute rank 8', () => apply('permute', { perm }, [t(x, so)], perm.map((p) => so[p])), EXACT);
    await check('sum rank 8 axes 0,3,6', () => sum(t(x, so), [0, 3, 6], { keepDims: true }), ACCUM);
    await check('max rank 8 axes 1,7', () => max(t(x, so), [1, 7], { keepDims: true }), EXACT);
    const ma = [1, 2, 1, 2, 1, 1, 3, 5], mb = [1, 1, 1, 1, 2, 1, 5, 3]; // 8 batches: few, as SwiftShader runs tiled workgroups slowly
    const xa = randArray(r, sizeOf(ma)), xb = randArray(r, sizeOf(mb));
    for (const variant of ['registerTiled', 'workgroupTiled'] as const) {
      const prev = wgpu.matmulVariant;
      wgpu.matmulVariant = variant;
      try {
        await check(`matmul rank 8 (${variant})`, () => matmul(t(xa, ma), t(xb, mb)), ACCUM);
      } finally {
        wgpu.matmulVariant = prev;
      }
    }
  });
});

describe('elementwise: binary and select', () => {
  it('special values: every pair of 0, -0, +-1, +-2, +-0.5, +-3, +-inf, NaN', async () => {
    const vals = [0, -0, 1, -1, 2, -2, 0.5, -0.5, 3, -3, Infinity, -Infinity, NaN];
    const a = vals.flatMap((v) => vals.map(() => v));
    const b = vals.flatMap(() => vals);
    const n = a.length;
    for (const prim of BINARY_PRIMS) {
      const { g, c } = await both(() => apply(prim, {}, [t(a, [n]), t(b, [n])], [n]));
      expectClose(g, Float32Array.from(c), ELEMENTWISE, ELEMENTWISE, `${prim} on special pairs`);
    }
    // select: a NaN condition counts as true (NaN != 0), -0 as false.
    const cond = [NaN, -0, 0, Infinity, -1e-30];
    await check('select special conditions', () => where(t(cond, [5]), t([1, 2, 3, 4, 5], [5]), t([-1, -2, -3, -4, -5], [5])), EXACT);
  });

  const r = rng(202);
  const ints = (n: number) => randInts(r, n, -2, 2);
  const comparisons = new Set<BinaryPrim>(['eq', 'ne', 'lt', 'le', 'gt', 'ge', 'maximum', 'minimum']);
  // [a shape, b shape, out shape]: same-shape (the fast kernel) and broadcasting (the general one).
  const cases: [Shape, Shape, Shape][] = [
    [[1], [1], [1]],
    [[67], [67], [67]],
    [[3, 7, 13], [3, 7, 13], [3, 7, 13]],
    [[7, 1, 13], [3, 1], [7, 3, 13]],
    [[], [5, 3], [5, 3]],
    [[13, 1], [1, 67], [13, 67]],
  ];
  for (const prim of BINARY_PRIMS) {
    it(prim, async () => {
      for (const [sa, sb, so] of cases) {
        let a: Float32Array, b: Float32Array;
        if (comparisons.has(prim)) {
          // Small integers, so that equal pairs are common.
          [a, b] = [ints(sizeOf(sa)), ints(sizeOf(sb))];
        } else if (prim === 'pow') {
          [a, b] = [randArray(r, sizeOf(sa), 0.1, 4), randArray(r, sizeOf(sb), -3, 3)];
        } else if (prim === 'div') {
          [a, b] = [randArray(r, sizeOf(sa), -5, 5), Float32Array.from(randArray(r, sizeOf(sb), 0.1, 5), (v, i) => (i % 2 ? -v : v))];
        } else {
          [a, b] = [randArray(r, sizeOf(sa), -5, 5), randArray(r, sizeOf(sb), -5, 5)];
        }
        await check(`${prim} ${fmt(sa)} ${fmt(sb)}`, () => apply(prim, {}, [t(a, sa), t(b, sb)], so), comparisons.has(prim) ? EXACT : ELEMENTWISE);
      }
    });
  }

  it('pow with negative bases and integer exponents, and x^0', async () => {
    const a = [-2, -2, -1.5, -3, -0.5, 0, 0, 2, -7, 5];
    const b = [3, 2, -2, 0, 5, 0, 2, 0.5, 1, -1];
    await check('pow', () => apply('pow', {}, [t(a, [10]), t(b, [10])], [10]), ELEMENTWISE);
    // A negative base with a non-integer exponent is NaN (Math.pow).
    await check('pow nan', () => apply('pow', {}, [t([-2, -0.5], [2]), t([0.5, 1.5], [2])], [2]), EXACT);
  });

  it('select (where) with broadcasting of all three operands', async () => {
    const cond = (n: number) => Float32Array.from(randInts(r, n, -1, 2), (v, i) => (i % 5 === 4 ? 0.5 : v));
    const cases3: Shape[][] = [
      [[67], [67], [67], [67]],
      [[7, 1, 13], [3, 1], [13], [7, 3, 13]],
      [[1], [5, 1], [1, 3], [5, 3]],
      [[3, 1, 1], [], [1, 7, 1], [3, 7, 1]],
    ];
    for (const [sc, sa, sb, so] of cases3) {
      const c = cond(sizeOf(sc)), a = randArray(r, sizeOf(sa)), b = randArray(r, sizeOf(sb));
      await check(`select ${fmt(sc)} ${fmt(sa)} ${fmt(sb)}`, () => where(t(c, sc), t(a, sa), t(b, sb)), EXACT);
      await check(`select prim ${fmt(so)}`, () => apply('select', {}, [t(c, sc), t(a, sa), t(b, sb)], so), EXACT);
    }
  });
});

describe('reductions', () => {
  const r = rng(303);
  // Shapes and axes covering: the workgroup-tree kernel (rows < 1024 and reduced length >= 64),
  // the one-invocation-per-row kernel (many rows, or short rows), non-trailing axes (moved last
  // by a permute first), several axes at once, all axes, and a reduced axis of size 1.
  const cases: [Shape, number[], string][] = [
    [[67], [0], 'one long row: workgroup kernel'],
    [[1], [0], 'a single element'],
    [[3, 131], [1], 'few long rows: workgroup kernel'],
    [[131, 3], [0], 'non-trailing axis, long: permute + workgroup kernel'],
    [[67, 3, 5], [0, 2], 'non-trailing multi-axis, R = 335: permute + workgroup kernel'],
    [[3, 7, 13], [0, 1, 2], 'all axes'],
    [[13, 7, 5], [1], 'middle axis, short rows: permute + row kernel'],
    [[7, 13, 5], [0, 2], 'non-trailing multi-axis, short: permute + row kernel'],
    [[2, 3, 5, 7], [1, 3], 'rank 4, two separated axes'],
    [[1031, 7], [1], 'many rows: row kernel'],
    [[1031, 67], [1], 'many long rows: row kernel'],
    [[5, 1, 3], [1], 'a reduced axis of size 1'],
  ];
  for (const kind of ['sum', 'max'] as const) {
    it(`${kind} over various axis sets`, async () => {
      for (const [shape, axes, why] of cases) {
        // Integers for max, so ties are common; both are exact in float32 for max.
        const x = kind === 'max' ? randInts(r, sizeOf(shape), -50, 50) : randArray(r, sizeOf(shape));
        const f = kind === 'sum' ? sum : max;
        await check(`${kind} ${fmt(shape)} axes ${fmt(axes)} (${why})`, () => f(t(x, shape), axes, { keepDims: true }), kind === 'sum' ? ACCUM : EXACT);
      }
    });
  }

  it('argmax: first maximum, over each axis, ties common', async () => {
    const acases: [Shape, number, string][] = [
      [[67], 0, 'one row: workgroup kernel'],
      [[13, 67], 1, 'few long rows: workgroup kernel'],
      [[67, 13], 0, 'non-trailing: permute + workgroup kernel'],
      [[3, 257], 1, 'long rows, strided lanes: workgroup kernel'],
      [[7, 5, 3], 1, 'middle axis: permute + row kernel'],
      [[1031, 3], 1, 'many rows: row kernel'],
      [[5, 1], 1, 'axis of size 1'],
    ];
    for (const [shape, axis, why] of acases) {
      for (const hi of [3, 1000]) {
        const x = randInts(r, sizeOf(shape), 0, hi);
        await check(`argmax ${fmt(shape)} axis ${axis} values 0..${hi} (${why})`, () => argmax(t(x, shape), axis, { keepDims: true }), EXACT);
      }
    }
  });

  it('max and argmax treat NaN as smaller than every number; -inf is a number', async () => {
    const N = NaN, I = Infinity;
    const rows = [
      [N, 1, 2, N, 2],
      [N, N, N, N, N],
      [-I, N, -I, -I, N],
      [3, N, 7, 7, -I],
    ];
    const x = rows.flat();
    for (const shape of [[4, 5], [4, 1, 5]] as Shape[]) {
      await check(`max NaN rows`, () => max(t(x, shape), [shape.length - 1], { keepDims: true }), EXACT);
      await check(`argmax NaN rows`, () => argmax(t(x, shape), -1, { keepDims: true }), EXACT);
    }
    // The workgroup kernel: rows of length 67 with NaNs scattered, one row all NaN.
    const long = Float32Array.from({ length: 3 * 67 }, (_, i) => (i >= 134 || i % 5 === 0 ? NaN : (i * 37) % 11));
    await check('max NaN long rows', () => max(t(long, [3, 67]), [1], { keepDims: true }), EXACT);
    await check('argmax NaN long rows', () => argmax(t(long, [3, 67]), 1, { keepDims: true }), EXACT);
  });
});

describe('movement', () => {
  const r = rng(404);
  it('permute', async () => {
    for (const [shape, perm] of [
      [[3, 7, 13], [2, 0, 1]],
      [[2, 3, 5, 7], [3, 1, 0, 2]],
      [[13, 1, 7], [1, 2, 0]],
      [[67, 3], [1, 0]],
    ] as [Shape, number[]][]) {
      const x = randArray(r, sizeOf(shape));
      await check(`permute ${fmt(shape)} ${fmt(perm)}`, () => apply('permute', { perm }, [t(x, shape)], perm.map((p) => shape[p])), EXACT);
    }
  });

  it('expand', async () => {
    for (const [shape, out] of [
      [[7, 1, 13], [7, 3, 13]],
      [[1, 1], [5, 67]],
      [[1], [13]],
      [[3, 1, 5, 1], [3, 7, 5, 2]],
    ] as [Shape, Shape][]) {
      const x = randArray(r, sizeOf(shape));
      await check(`expand ${fmt(shape)} to ${fmt(out)}`, () => apply('expand', { shape: out }, [t(x, shape)], out), EXACT);
    }
  });

  it('slice', async () => {
    const x = randArray(r, 7 * 13 * 5);
    await check('slice 3-D', () => slice(t(x, [7, 13, 5]), [1, 2, 0], [5, 7, 3]), EXACT);
    await check('slice 1-D', () => slice(t(x, [455]), [3], [67]), EXACT);
    await check('slice one element', () => slice(t(x, [7, 13, 5]), [6, 12, 4], [1, 1, 1]), EXACT);
  });

  it('pad', async () => {
    const x = randArray(r, 3 * 5 * 7);
    await check('pad 2-D', () => pad(t(x.subarray(0, 91), [7, 13]), [[1, 0], [2, 3]], 0.5), EXACT);
    await check('pad 3-D -inf', () => pad(t(x, [3, 5, 7]), [[0, 2], [3, 1], [1, 1]], -Infinity), EXACT);
    await check('pad 1-element', () => pad(t([2.5], [1]), [[0, 3]]), EXACT);
  });

  it('flip', async () => {
    const x = randArray(r, 7 * 13 * 5);
    await check('flip axes 0,2', () => flip(t(x, [7, 13, 5]), [0, 2]), EXACT);
    await check('flip axis 1', () => flip(t(x, [7, 13, 5]), 1), EXACT);
    await check('flip 1-D', () => flip(t(x.subarray(0, 67), [67]), 0), EXACT);
  });

  it('concat', async () => {
    const a = randArray(r, 15), b = randArray(r, 3), c = randArray(r, 21), d = randArray(r, 13 * 7);
    await check('concat axis 1', () => concat([t(a, [3, 5]), t(b, [3, 1]), t(c, [3, 7])], 1), EXACT);
    await check('concat axis 0', () => concat([t(c.subarray(0, 7), [1, 7]), t(d, [13, 7])], 0), EXACT);
    await check('concat with an empty part', () => concat([t(a, [3, 5]), t([], [3, 0]), t(b, [3, 1])], 1), EXACT);
    await check('concat of one', () => concat([t(d, [13, 7])], -1), EXACT);
    await check('concat 3-D middle', () => concat([t(a, [3, 1, 5]), t(d.subarray(0, 30), [3, 2, 5])], 1), EXACT);
  });

  it('reshape (the backends copy; the frontend shares storage)', async () => {
    const x = randArray(r, 3 * 7 * 13);
    for (const [b, name] of [[gpu, 'gpu'], [cpu, 'cpu']] as const) {
      const s = b.upload(x);
      const o = b.run('reshape', { shape: [13, 21] }, [{ storage: s, shape: [3, 7, 13] }], [13, 21]);
      try {
        expectClose(await b.read(o, x.length), x, EXACT, EXACT, `reshape on ${name}`);
      } finally {
        b.release(s);
        b.release(o);
      }
    }
  });
});

describe('matmul', () => {
  const r = rng(505);
  const cases: [Shape, Shape][] = [
    [[1, 1], [1, 1]],
    [[13, 7], [7, 67]],
    [[67, 131], [131, 71]], // several tiles in both directions; K not a multiple of 16
    [[3, 67, 13], [13, 7]], // batch broadcast of b
    [[2, 1, 5, 3], [3, 3, 7]], // batch axes broadcast both ways: [2, 3, 5, 7]
    [[1, 13], [5, 13, 3]],
    [[13], [13, 7]], // 1-D operands are lifted by the frontend
    [[3, 7, 13], [13]],
    [[13], [13]],
  ];
  // The register-tiled kernel's block is generated (shaders/matmul.ts) and picked per shape.
  for (const block of [[4, 4], [8, 4], [4, 8], [8, 8], [3, 12]] as [number, number][]) {
    it(`registerTiled kernel, block ${block[0]}x${block[1]}`, async () => {
      const prev = [wgpu.matmulVariant, wgpu.matmulBlock] as const;
      wgpu.matmulVariant = 'registerTiled';
      wgpu.matmulBlock = block;
      try {
        for (const [sa, sb] of cases) {
          const a = randArray(r, sizeOf(sa)), b = randArray(r, sizeOf(sb));
          await check(`matmul ${fmt(sa)} @ ${fmt(sb)} (block ${block.join('x')})`, () => matmul(t(a, sa), t(b, sb)), ACCUM);
        }
      } finally {
        [wgpu.matmulVariant, wgpu.matmulBlock] = prev;
      }
    });
  }
  for (const variant of ['registerTiled', 'workgroupTiled'] as const) {
    it(`${variant} kernel`, async () => {
      const prev = wgpu.matmulVariant;
      wgpu.matmulVariant = variant;
      try {
        for (const [sa, sb] of cases) {
          const a = randArray(r, sizeOf(sa)), b = randArray(r, sizeOf(sb));
          await check(`matmul ${fmt(sa)} @ ${fmt(sb)} (${variant})`, () => matmul(t(a, sa), t(b, sb)), ACCUM);
        }
      } finally {
        wgpu.matmulVariant = prev;
      }
    });
  }
});

describe('conv2d and its adjoints', () => {
  const r = rng(606);
  const cases: [Shape, Shape, Conv2dOptions, string][] = [
    [[2, 3, 7, 9], [5, 3, 3, 3], {}, 'plain 3x3'],
    [[2, 3, 11, 13], [5, 3, 3, 2], { stride: [2, 3], padding: [1, 2, 0, 1], dilation: [2, 1] }, 'stride, asymmetric padding, dilation'],
    [[1, 6, 11, 13], [9, 2, 3, 3], { groups: 3, stride: 2, padding: 1 }, 'groups'],
    [[2, 4, 7, 7], [4, 1, 3, 3], { groups: 4, padding: 'same', dilation: 2 }, 'depthwise, same'],
    [[1, 7, 5, 3], [3, 7, 1, 1], {}, '1x1'],
    [[3, 2, 5, 5], [1, 2, 5, 5], {}, 'kernel = input: 1x1 output'],
    [[1, 1, 1, 1], [1, 1, 1, 1], {}, 'one element'],
    [[1, 2, 9, 8], [3, 2, 2, 3], { stride: 3, padding: [0, 1, 2, 0] }, 'stride leaves unused input rows'],
    // Stride 1: the tiled backprop-input runs as a forward conv with swapped, flipped weights.
    [[2, 6, 7, 5], [10, 3, 3, 2], { groups: 2, padding: [2, 0, 1, 0], dilation: [1, 2] }, 'stride 1, groups, asymmetric padding, dilation'],
    [[1, 3, 5, 6], [2, 3, 1, 1], { padding: 1 }, 'padding beyond the kernel (backprop-input kernel)'],
    // Three taps wide, column stride and dilation 1: the tiled forward reads each kernel row's
    // inputs once for its three taps.
    [[2, 3, 6, 11], [4, 3, 3, 3], { padding: [1, 0, 2, 1] }, '3 wide, asymmetric padding'],
    [[1, 2, 5, 2], [3, 2, 2, 3], { padding: [0, 0, 1, 1] }, '3 wide on a 2-wide input'],
    [[2, 4, 9, 17], [6, 2, 3, 3], { stride: [2, 1], groups: 2, padding: 1 }, '3 wide, row stride 2, groups'],
  ];
  // Both kernel variants: register-tiled blocks (default) and one output per invocation.
  for (const variant of ['tiled', 'direct'] as const) {
    for (const [xs, ws, opts, why] of cases) {
      it(`${variant}: ${fmt(xs)} * ${fmt(ws)}: ${why}`, async () => {
        const prev = wgpu.convVariant;
        wgpu.convVariant = variant;
        try {
          const x = randArray(r, sizeOf(xs)), w = randArray(r, sizeOf(ws));
          await check(`conv2d (${why})`, () => conv2d(t(x, xs), t(w, ws), opts), ACCUM);
          const p = conv2dParams('test', xs, ws, opts);
          const ys = conv2dOutShape('test', xs, ws, p);
          const dy = randArray(r, sizeOf(ys));
          await check(`conv2dBackpropInput (${why})`, () => conv2dBackpropInput(t(dy, ys), t(w, ws), xs, opts), ACCUM);
          await check(`conv2dBackpropFilter (${why})`, () => conv2dBackpropFilter(t(x, xs), t(dy, ys), ws, opts), ACCUM);
        } finally {
          wgpu.convVariant = prev;
        }
      });
    }
  }
  // The forward kernel's register block is generated (shaders/conv2d-tiled.ts) and picked per
  // shape; every block shape, on every case (partial channel and column blocks, groups, strides).
  for (const block of [[4, 4], [8, 4], [8, 8], [4, 8], [12, 3], [1, 8], [2, 5], [1, 3], [1, 16], [2, 16]] as [number, number][]) {
    it(`tiled forward, block ${block[0]}x${block[1]}: every case`, async () => {
      const prev = wgpu.convBlock;
      wgpu.convBlock = block;
      try {
        for (const [xs, ws, opts, why] of cases) {
          const x = randArray(r, sizeOf(xs)), w = randArray(r, sizeOf(ws));
          await check(`conv2d ${block.join('x')} (${why})`, () => conv2d(t(x, xs), t(w, ws), opts), ACCUM);
          // stride 1 backprop-input runs as this forward conv
          const p = conv2dParams('test', xs, ws, opts);
          const ys = conv2dOutShape('test', xs, ws, p);
          const dy = randArray(r, sizeOf(ys));
          await check(`conv2dBackpropInput ${block.join('x')} (${why})`, () => conv2dBackpropInput(t(dy, ys), t(w, ws), xs, opts), ACCUM);
        }
      } finally {
        wgpu.convBlock = prev;
      }
    });
  }
  it('tiled forward without the 3-tap row kernel: every case, as the kernel for other widths runs it', async () => {
    const prev = wgpu.convTaps3;
    wgpu.convTaps3 = false;
    try {
      for (const [xs, ws, opts, why] of cases) {
        const x = randArray(r, sizeOf(xs)), w = randArray(r, sizeOf(ws));
        await check(`conv2d, taps one by one (${why})`, () => conv2d(t(x, xs), t(w, ws), opts), ACCUM);
      }
    } finally {
      wgpu.convTaps3 = prev;
    }
  });
  it('tiled backprop-filter with the batch split into partial sums', async () => {
    const xs: Shape = [37, 5, 6, 7], ws: Shape = [6, 5, 3, 3];
    const x = randArray(r, sizeOf(xs));
    const ys = conv2dOutShape('test', xs, ws, conv2dParams('test', xs, ws, { padding: 1 }));
    const dy = randArray(r, sizeOf(ys));
    await check('conv2dBackpropFilter (split batch)', () => conv2dBackpropFilter(t(x, xs), t(dy, ys), ws, { padding: 1 }), ACCUM);
  });

  it('conv2d with bias', async () => {
    const x = randArray(r, 2 * 3 * 5 * 7), w = randArray(r, 5 * 3 * 9), b = randArray(r, 5);
    await check('conv2d bias', () => conv2d(t(x, [2, 3, 5, 7]), t(w, [5, 3, 3, 3]), { bias: t(b, [5]), padding: 1 }), ACCUM);
  });
});

describe('pooling', () => {
  const r = rng(707);
  const maxCases: [Shape, Pool2dOptions, string][] = [
    [[2, 3, 9, 11], { kernel: 3, stride: 2, padding: 1 }, 'overlapping windows, padding'],
    [[1, 2, 13, 7], { kernel: [2, 3], stride: [1, 2], dilation: [2, 1], padding: [1, 0, 1, 1] }, 'dilation, asymmetric padding'],
    [[3, 1, 5, 5], { kernel: 2 }, 'stride = kernel, an unused last row/column'],
    // Disjoint windows (WebGPU scatters them one stride cell per invocation): pixels outside
    // every window, cells that start in the padding, dilated taps spanning a cell.
    [[2, 3, 8, 11], { kernel: 2, stride: 3 }, 'disjoint windows with gaps between them'],
    [[1, 2, 7, 9], { kernel: 2, stride: 2, padding: [1, 0, 1, 1] }, 'disjoint windows, padding'],
    [[2, 1, 9, 10], { kernel: [2, 1], stride: [3, 2], dilation: [2, 1] }, 'disjoint dilated windows'],
    [[1, 2, 8, 8], { kernel: 2, stride: 2, padding: [1, 0, 1, 0] }, 'padding that adds a row and a column of cells'],
    [[1, 2, 6, 6], { kernel: 2, stride: 2, dilation: 2 }, 'dilation makes windows overlap (the general kernel)'],
    [[1, 1, 5, 11], { kernel: [1, 2], stride: [1, 3], dilation: [1, 2] }, 'dilated taps spanning a whole cell'],
    [[1, 1, 1, 1], { kernel: 1 }, 'one element'],
  ];
  /** Which scatter kernel `f` dispatched: the one per stride cell (disjoint windows) or per pixel. */
  async function scatterKernel(f: () => Promise<void>): Promise<string[]> {
    const dispatch = wgpu.rt.dispatch.bind(wgpu.rt);
    const seen: string[] = [];
    wgpu.rt.dispatch = (d) => {
      if (d.label.startsWith('maxPoolScatter')) seen.push(d.wgsl.includes('cellsW') ? 'cells' : 'pixels');
      dispatch(d);
    };
    try {
      await f();
    } finally {
      wgpu.rt.dispatch = dispatch;
    }
    return seen;
  }
  for (const [xs, opts, why] of maxCases) {
    it(`max pooling ${fmt(xs)}: ${why}`, async () => {
      // Integer values: ties inside windows are common (the first position must win).
      const x = randInts(r, sizeOf(xs), -3, 3);
      const src = randArray(r, sizeOf(xs));
      const p = poolParams('test', xs, opts);
      const os = poolOutShape('test', xs, p);
      const dy = randArray(r, sizeOf(os));
      await check(`maxPool2d (${why})`, () => maxPool2d(t(x, xs), opts), EXACT);
      await check(`maxPoolGather (${why})`, () => apply('maxPoolGather', p, [t(x, xs), t(src, xs)], os), EXACT);
      const used = await scatterKernel(() => check(`maxPoolScatter (${why})`, () => apply('maxPoolScatter', p, [t(x, xs), t(dy, os)], xs), ACCUM));
      const disjoint = p.kernel.every((k, a) => (k - 1) * p.dilation[a] + 1 <= p.stride[a]);
      expect(used).toEqual([disjoint ? 'cells' : 'pixels']);
    });
  }

  it('max pooling with NaN: NaN never wins over a number', async () => {
    const x = [NaN, 1, NaN, NaN, 2, NaN, NaN, NaN, NaN, -Infinity, NaN, 3, NaN, NaN, NaN, NaN];
    const p = poolParams('test', [1, 1, 4, 4], { kernel: 2, stride: 1 });
    const os = poolOutShape('test', [1, 1, 4, 4], p);
    await check('maxPool NaN', () => apply('maxPoolGather', p, [t(x, [1, 1, 4, 4]), t(x, [1, 1, 4, 4])], os), EXACT);
    const dy = randArray(r, 9);
    await check('maxPoolScatter NaN', () => apply('maxPoolScatter', p, [t(x, [1, 1, 4, 4]), t(dy, os)], [1, 1, 4, 4]), ACCUM);
    const q = poolParams('test', [1, 1, 4, 4], { kernel: 2, stride: 2 });
    const qs = poolOutShape('test', [1, 1, 4, 4], q);
    await check('maxPoolScatter NaN, disjoint windows', () => apply('maxPoolScatter', q, [t(x, [1, 1, 4, 4]), t(dy.slice(0, 4), qs)], [1, 1, 4, 4]), ACCUM);
  });

  const avgCases: [Shape, Pool2dOptions, string][] = [
    [[2, 3, 9, 11], { kernel: 3, stride: 2, padding: 1 }, 'padding, overlapping'],
    [[1, 2, 7, 13], { kernel: [3, 2], stride: [2, 1], padding: [1, 1, 0, 1] }, 'asymmetric'],
    [[1, 1, 5, 7], { kernel: [5, 7] }, 'global'],
  ];
  for (const [xs, opts, why] of avgCases) {
    for (const countIncludePad of [true, false]) {
      it(`average pooling ${fmt(xs)}: ${why}, countIncludePad ${countIncludePad}`, async () => {
        const x = randArray(r, sizeOf(xs));
        const p = { ...poolParams('test', xs, opts), countIncludePad };
        const os = poolOutShape('test', xs, p);
        const dy = randArray(r, sizeOf(os));
        await check(`avgPool2d (${why})`, () => avgPool2d(t(x, xs), { ...opts, countIncludePad }), ACCUM);
        await check(`avgPool2dBackprop (${why})`, () => apply('avgPool2dBackprop', { ...p, inputShape: xs }, [t(dy, os)], xs), ACCUM);
      });
    }
  }
});

describe('bilinear resize', () => {
  const r = rng(808);
  const cases: [Shape, [number, number], string][] = [
    [[2, 3, 5, 7], [11, 13], 'up'],
    [[2, 3, 13, 11], [5, 3], 'down'],
    [[1, 2, 7, 3], [3, 10], 'down in height, up in width'],
    [[1, 1, 1, 1], [3, 5], 'from one pixel'],
    [[1, 3, 5, 7], [1, 1], 'to one pixel'],
    [[1, 1, 67, 1], [13, 1], 'a column'],
    [[1, 1, 2, 3], [67, 5], 'large upscale'],
    [[1, 1, 67, 5], [2, 3], 'large downscale'],
  ];
  for (const [xs, size, why] of cases) {
    for (const alignCorners of [false, true]) {
      it(`${fmt(xs)} to ${fmt(size)} (${why}), alignCorners ${alignCorners}`, async () => {
        const x = randArray(r, sizeOf(xs));
        const os = [xs[0], xs[1], size[0], size[1]];
        const dy = randArray(r, sizeOf(os));
        await check('resizeBilinear', () => resizeBilinear(t(x, xs), size, { alignCorners }), ACCUM);
        const params: PrimParams['resizeBilinearBackprop'] = { size: [xs[2], xs[3]], alignCorners };
        await check('resizeBilinearBackprop', () => apply('resizeBilinearBackprop', params, [t(dy, os)], xs), ACCUM);
      });
    }
  }
});

describe('gather, scatterAdd, oneHot', () => {
  const r = rng(909);
  it('gather along each axis, out-of-range indices read 0', async () => {
    const x = randArray(r, 7 * 13 * 5);
    const i1 = randInts(r, 12, -1, 13), i0 = randInts(r, 67, 0, 6), i2 = randInts(r, 3, -2, 6);
    await check('gather axis 1', () => gather(t(x, [7, 13, 5]), t(i1, [3, 4]), 1), EXACT);
    await check('gather axis 0', () => gather(t(x, [7, 13, 5]), t(i0, [67]), 0), EXACT);
    await check('gather axis 2', () => gather(t(x, [7, 13, 5]), t(i2, [3, 1]), 2), EXACT);
    await check('gather scalar index', () => gather(t(x, [7, 13, 5]), t([4], []), 1), EXACT);
    // Non-integer indices truncate toward zero (-0.5 -> 0); NaN is out of range.
    const odd = [2.7, -0.5, NaN, 12.99, 13, -1.5, Infinity];
    await check('gather fractional and NaN indices', () => gather(t(x, [7, 13, 5]), t(odd, [7]), 1), EXACT);
    await check('scatterAdd fractional and NaN indices', () => scatterAdd(t(x.subarray(0, 35), [7, 5]), t(odd, [7]), 0, 13), ACCUM);
  });

  it('scatterAdd with repeated and out-of-range indices', async () => {
    const idx = randInts(r, 12, -1, 6); // size 6: -1 and 6 are dropped, repeats add up
    const u1 = randArray(r, 7 * 12 * 5), u0 = randArray(r, 67 * 3), i0 = randInts(r, 67, 0, 12), u2 = randArray(r, 5 * 7), i2 = randInts(r, 7, 0, 2);
    await check('scatterAdd axis 1', () => scatterAdd(t(u1, [7, 3, 4, 5]), t(idx, [3, 4]), 1, 6), ACCUM);
    await check('scatterAdd axis 0', () => scatterAdd(t(u0, [67, 3]), t(i0, [67]), 0, 13), ACCUM);
    await check('scatterAdd last axis', () => scatterAdd(t(u2, [5, 7]), t(i2, [7]), 1, 3), ACCUM);
  });

  it('oneHot', async () => {
    const a = randInts(r, 13, -1, 5), b = randInts(r, 21, 0, 6);
    await check('oneHot', () => oneHot(t(a, [13]), 5), EXACT);
    await check('oneHot 2-D', () => oneHot(t(b, [3, 7]), 7), EXACT);
  });
});

describe('random', () => {
  it('uniform: bit-exact against the CPU (Philox4x32-10; values are multiples of 2^-24)', async () => {
    for (const [shape, seed] of [
      [[1], 0],
      [[67], 12345],
      [[3, 7, 13], 2 ** 32 - 1],
      [[1031], 2 ** 40 + 7], // both key words in use
      [[13], Number.MAX_SAFE_INTEGER],
    ] as [Shape, number][]) {
      const { g, c } = await both(() => rand(shape, { seed }));
      expectClose(g, Float32Array.from(c), EXACT, EXACT, `rand ${fmt(shape)} seed ${seed}`);
      // (w >>> 8) * 2^-24 is exact in float32, so the float64 value itself must match too.
      expectClose(g, c, EXACT, EXACT, `rand ${fmt(shape)} seed ${seed} (float64)`);
    }
  });

  it('normal: within the elementwise tolerance of the CPU (Box-Muller in float32)', async () => {
    // sqrt(-2 ln u1) cos(2 pi u2) in float32. u1 and u2 are exact (24-bit integers times 2^-24)
    // and identical on both backends; the difference is float32 arithmetic. Two places needed care
    // (shaders/random.ts, shaders/math.ts): SwiftShader's cos is off by up to ~2e-4 (WGSL only
    // asks 2^-11), so the kernel uses its own range-reduced cos; and near u1 = 1, ln u1 ~ 1e-7 and
    // sqrt(-2 ln u1) turns a float32 log's absolute error (Vulkan allows 2^-21 near 1; SwiftShader
    // ~3e-9) into errors up to ~1e-3, so the kernel takes ln u1 from its series there. With both,
    // the measured worst over 600k samples is 1.5e-6 relative, so the elementwise bound holds:
    // |gpu - cpu| <= 1e-5 * max(1, |cpu|).
    for (const [shape, seed] of [
      [[1], 3],
      [[10007], 99],
      [[67], 2 ** 33 + 1],
    ] as [Shape, number][]) {
      const { g, c } = await both(() => randn(shape, { seed }));
      expectClose(g, c, ELEMENTWISE, ELEMENTWISE, `randn ${fmt(shape)} seed ${seed}`);
    }
  });
});

describe('bookkeeping', () => {
  it('every tensor made by these tests was released', async () => {
    await gpu.sync();
    expect(memory(gpu).liveBuffers).toBe(0);
    expect(memory(cpu).liveBuffers).toBe(0);
  });
});

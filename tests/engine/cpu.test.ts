// Tests of the float64 CPU reference backend against independent truth: hand-computed
// examples, published known-answer vectors, PyTorch-documented results, metamorphic relations
// between primitives, and adjoint identities <A x, y> == <x, A^T y> on random data.
import { describe, it, expect } from 'vitest';
import { createCpuBackend, type CpuStorage } from '../../engine/cpu/backend.ts';
import { philox4x32_10 } from '../../engine/cpu/philox.ts';
import { sizeOf } from '../../engine/backend.ts';
import type { Conv2dParams, Operand, Pad4, Pair, PrimParams, Primitive, Shape } from '../../engine/primitives.ts';

const b = createCpuBackend();

type T = Operand<CpuStorage>;

function t(data: ArrayLike<number>, shape: Shape): T {
  expect(data.length).toBe(sizeOf(shape));
  return { storage: b.upload(data), shape };
}

function run<P extends Primitive>(prim: P, params: PrimParams[P], inputs: T[], outShape: Shape): number[] {
  const s = b.run(prim, params, inputs, outShape);
  const out = Array.from(b.readSync!(s, sizeOf(outShape)));
  b.release(s);
  return out;
}

function runT<P extends Primitive>(prim: P, params: PrimParams[P], inputs: T[], outShape: Shape): T {
  return { storage: b.run(prim, params, inputs, outShape), shape: outShape };
}

const arange = (n: number, start = 0) => Array.from({ length: n }, (_, i) => start + i);

/** Deterministic test data from mulberry32 (independent of the Philox under test). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let r = Math.imul(a ^ (a >>> 15), 1 | a);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

function randT(shape: Shape, next: () => number): T {
  return t(Array.from({ length: sizeOf(shape) }, () => next() * 2 - 1), shape);
}

function dot(a: ArrayLike<number>, c: ArrayLike<number>): number {
  expect(a.length).toBe(c.length);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * c[i];
  return s;
}

function data(x: T): Float64Array {
  return b.readSync!(x.storage, sizeOf(x.shape)) as Float64Array;
}

/** |a - b| <= tol * max(1, |a|, |b|) */
function expectClose(a: number, c: number, tol = 1e-12): void {
  expect(Math.abs(a - c)).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(a), Math.abs(c)));
}

function expectAllClose(a: ArrayLike<number>, c: ArrayLike<number>, tol = 1e-12): void {
  expect(a.length).toBe(c.length);
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(c[i])) expect(a[i]).toBeNaN();
    else if (!Number.isFinite(c[i])) expect(a[i]).toBe(c[i]);
    else expectClose(a[i], c[i], tol);
  }
}

const noParams = {} as Record<string, never>;

function convOut(H: number, k: number, s: number, p0: number, p1: number, d: number): number {
  return Math.floor((H + p0 + p1 - d * (k - 1) - 1) / s) + 1;
}

// ---------------------------------------------------------------------------------------------

describe('cpu backend bookkeeping', () => {
  it('reports its info', () => {
    expect(b.name).toBe('cpu');
    expect(b.info).toEqual({
      backend: 'cpu', vendor: 'backlight', architecture: 'float64', device: 'cpu',
      description: 'float64 CPU reference', software: true,
    });
  });

  it('upload copies, read returns copies, memory counts live storages', async () => {
    const be = createCpuBackend();
    const src = [1, 2, 3];
    const s = be.upload(src);
    src[0] = 100;
    expect(Array.from(s.data)).toEqual([1, 2, 3]);
    expect(be.memory()).toEqual({ liveBuffers: 1, liveBytes: 24, pooledBuffers: 0, pooledBytes: 0 });
    const r = await be.read(s, 2);
    expect(r).toBeInstanceOf(Float64Array);
    expect(Array.from(r)).toEqual([1, 2]);
    r[0] = -1;
    expect(s.data[0]).toBe(1);
    const rs = be.readSync!(s, 3);
    rs[1] = -1;
    expect(s.data[1]).toBe(2);
    const y = be.run('neg', noParams, [{ storage: s, shape: [3] }], [3]);
    expect(be.memory().liveBuffers).toBe(2);
    expect(be.memory().liveBytes).toBe(48);
    be.release(s);
    be.release(s); // double release is harmless
    expect(be.memory()).toEqual({ liveBuffers: 1, liveBytes: 24, pooledBuffers: 0, pooledBytes: 0 });
    be.flush();
    await be.sync();
    be.release(y);
    expect(be.memory().liveBuffers).toBe(0);
    be.upload([1]);
    be.destroy();
    expect(be.memory().liveBuffers).toBe(0);
    expect(() => be.upload([1])).toThrow();
  });
});

describe('elementwise', () => {
  it('unary ops on hand-picked values', () => {
    const x = t([-2, -0.5, 0, 0.5, 2], [5]);
    expect(run('neg', noParams, [x], [5])).toEqual([2, 0.5, -0, -0.5, -2]);
    expect(run('abs', noParams, [x], [5])).toEqual([2, 0.5, 0, 0.5, 2]);
    expect(run('sign', noParams, [x], [5])).toEqual([-1, -1, 0, 1, 1]);
    expect(run('step', noParams, [x], [5])).toEqual([0, 0, 0, 1, 1]);
    expect(run('floor', noParams, [x], [5])).toEqual([-2, -1, 0, 0, 2]);
    expect(run('reciprocal', noParams, [x], [5])).toEqual([-0.5, -2, Infinity, 2, 0.5]);
    expectAllClose(run('sigmoid', noParams, [x], [5]), [1 / (1 + Math.E ** 2), 1 / (1 + Math.E ** 0.5), 0.5, 1 / (1 + Math.E ** -0.5), 1 / (1 + Math.E ** -2)]);
    const y = t([0, 1, 4, -1], [4]);
    expectAllClose(run('log', noParams, [y], [4]), [-Infinity, 0, 2 * Math.LN2, NaN]);
    expectAllClose(run('sqrt', noParams, [y], [4]), [0, 1, 2, NaN]);
    expectAllClose(run('exp', noParams, [y], [4]), [1, Math.E, Math.E ** 4, 1 / Math.E]);
    const a = t([0, Math.PI / 6, Math.PI / 2], [3]);
    expectAllClose(run('sin', noParams, [a], [3]), [0, 0.5, 1]);
    expectAllClose(run('cos', noParams, [a], [3]), [1, Math.sqrt(3) / 2, 0]);
    expectAllClose(run('tanh', noParams, [t([0, 1], [2])], [2]), [0, (Math.E - 1 / Math.E) / (Math.E + 1 / Math.E)]);
    expect(run('sign', noParams, [t([NaN], [1])], [1])[0]).toBeNaN();
  });

  it('binary ops broadcast numpy-style, in operand order', () => {
    const col = t([1, 2], [2, 1]);
    const row = t([10, 20, 30], [3]);
    expect(run('add', noParams, [col, row], [2, 3])).toEqual([11, 21, 31, 12, 22, 32]);
    expect(run('sub', noParams, [row, col], [2, 3])).toEqual([9, 19, 29, 8, 18, 28]);
    expect(run('mul', noParams, [col, row], [2, 3])).toEqual([10, 20, 30, 20, 40, 60]);
    expect(run('div', noParams, [row, col], [2, 3])).toEqual([10, 20, 30, 5, 10, 15]);
    expect(run('pow', noParams, [col, t([0, 1, 3], [1, 3])], [2, 3])).toEqual([1, 1, 1, 1, 2, 8]);
    const scalar = t([2], []);
    expect(run('pow', noParams, [t([1, 2, 3], [3]), scalar], [3])).toEqual([1, 4, 9]);
    const p = t([1, 5, 3], [3]);
    const q = t([3, 5, 1], [1, 3]);
    expect(run('maximum', noParams, [p, q], [1, 3])).toEqual([3, 5, 3]);
    expect(run('minimum', noParams, [p, q], [1, 3])).toEqual([1, 5, 1]);
    expect(run('eq', noParams, [p, q], [1, 3])).toEqual([0, 1, 0]);
    expect(run('ne', noParams, [p, q], [1, 3])).toEqual([1, 0, 1]);
    expect(run('lt', noParams, [p, q], [1, 3])).toEqual([1, 0, 0]);
    expect(run('le', noParams, [p, q], [1, 3])).toEqual([1, 1, 0]);
    expect(run('gt', noParams, [p, q], [1, 3])).toEqual([0, 0, 1]);
    expect(run('ge', noParams, [p, q], [1, 3])).toEqual([0, 1, 1]);
    // both operands broadcast: [2,1,3] with [4,1] -> [2,4,3]
    const u = t(arange(6), [2, 1, 3]);
    const v = t([0, 100, 200, 300], [4, 1]);
    const out = run('add', noParams, [u, v], [2, 4, 3]);
    for (let i = 0; i < 2; i++) for (let j = 0; j < 4; j++) for (let k = 0; k < 3; k++) {
      expect(out[(i * 4 + j) * 3 + k]).toBe(i * 3 + k + 100 * j);
    }
  });

  it('select broadcasts all three operands', () => {
    const cond = t([1, 0], [2, 1]);
    const a = t([5], []);
    const c = t([7, 8, 9], [1, 3]);
    expect(run('select', noParams, [cond, a, c], [2, 3])).toEqual([5, 5, 5, 7, 8, 9]);
    const cond2 = t([0, -1, 0.5, 0], [4]);
    expect(run('select', noParams, [cond2, t([1, 2, 3, 4], [4]), t([-1, -2, -3, -4], [4])], [4])).toEqual([-1, 2, 3, -4]);
  });
});

describe('reductions', () => {
  const x = t(arange(24), [2, 3, 4]); // x[i,j,k] = 12i + 4j + k

  it('sum over multiple axes keeps dims', () => {
    expect(run('sum', { axes: [0, 2] }, [x], [1, 3, 1])).toEqual([60, 92, 124]);
    expect(run('sum', { axes: [0, 1, 2] }, [x], [1, 1, 1])).toEqual([276]);
    expect(run('sum', { axes: [1] }, [x], [2, 1, 4])).toEqual([12, 15, 18, 21, 48, 51, 54, 57]);
    expect(run('sum', { axes: [2] }, [x], [2, 3, 1])).toEqual([6, 22, 38, 54, 70, 86]);
  });

  it('max over axes', () => {
    const y = t([3, -1, 7, 2, 9, 0], [2, 3]);
    expect(run('max', { axes: [1] }, [y], [2, 1])).toEqual([7, 9]);
    expect(run('max', { axes: [0] }, [y], [1, 3])).toEqual([3, 9, 7]);
    expect(run('max', { axes: [0, 1] }, [y], [1, 1])).toEqual([9]);
    expect(run('max', { axes: [0, 2] }, [x], [1, 3, 1])).toEqual([15, 19, 23]);
    const z = t([-Infinity, -Infinity, NaN, 1, NaN, NaN], [3, 2]);
    const m = run('max', { axes: [1] }, [z], [3, 1]);
    expect(m[0]).toBe(-Infinity);
    expect(m[1]).toBe(1); // NaN is smaller than everything
    expect(m[2]).toBeNaN(); // all NaN
  });

  it('argmax: first maximum, NaN smaller than everything', () => {
    const y = t([1, 3, 3, NaN, -Infinity, NaN, NaN, NaN, NaN, 2, NaN, 2], [4, 3]);
    expect(run('argmax', { axis: 1 }, [y], [4, 1])).toEqual([1, 1, 0, 0]);
    const y2 = t([1, 5, 2, 5, 0, 9], [3, 2]);
    expect(run('argmax', { axis: 0 }, [y2], [1, 2])).toEqual([1, 2]);
    expect(run('argmax', { axis: 1 }, [x], [2, 1, 4])).toEqual([2, 2, 2, 2, 2, 2, 2, 2]);
    expect(run('argmax', { axis: 0 }, [x], [1, 3, 4])).toEqual(new Array(12).fill(1));
    // middle axis with a tie along it
    const w = t([0, 1, 4, 2, 4, 0, 0, 0], [2, 2, 2]);
    expect(run('argmax', { axis: 1 }, [w], [2, 1, 2])).toEqual([1, 1, 0, 0]);
  });
});

describe('movement', () => {
  it('reshape keeps the data', () => {
    expect(run('reshape', { shape: [3, 2] }, [t(arange(6), [2, 3])], [3, 2])).toEqual(arange(6));
  });

  it('permute', () => {
    expect(run('permute', { perm: [1, 0] }, [t([1, 2, 3, 4, 5, 6], [2, 3])], [3, 2])).toEqual([1, 4, 2, 5, 3, 6]);
    const out = run('permute', { perm: [2, 0, 1] }, [t(arange(24), [2, 3, 4])], [4, 2, 3]);
    for (let k = 0; k < 4; k++) for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) {
      expect(out[(k * 2 + i) * 3 + j]).toBe(12 * i + 4 * j + k);
    }
  });

  it('expand', () => {
    expect(run('expand', { shape: [3, 2] }, [t([1, 2, 3], [3, 1])], [3, 2])).toEqual([1, 1, 2, 2, 3, 3]);
    expect(run('expand', { shape: [2, 2, 3] }, [t([1, 2, 3], [1, 1, 3])], [2, 2, 3])).toEqual([1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3]);
  });

  it('slice', () => {
    const x = t(arange(24), [2, 3, 4]);
    expect(run('slice', { begin: [1, 1, 1], size: [1, 2, 2] }, [x], [1, 2, 2])).toEqual([17, 18, 21, 22]);
    expect(run('slice', { begin: [0, 2, 0], size: [2, 1, 4] }, [x], [2, 1, 4])).toEqual([8, 9, 10, 11, 20, 21, 22, 23]);
  });

  it('pad with a constant', () => {
    const x = t([1, 2, 3, 4], [2, 2]);
    expect(run('pad', { before: [1, 0], after: [0, 2], value: -1 }, [x], [3, 4])).toEqual([
      -1, -1, -1, -1,
      1, 2, -1, -1,
      3, 4, -1, -1,
    ]);
    expect(run('pad', { before: [0, 1], after: [1, 1], value: 0 }, [x], [3, 4])).toEqual([
      0, 1, 2, 0,
      0, 3, 4, 0,
      0, 0, 0, 0,
    ]);
  });

  it('flip', () => {
    const x = t([1, 2, 3, 4, 5, 6], [2, 3]);
    expect(run('flip', { axes: [1] }, [x], [2, 3])).toEqual([3, 2, 1, 6, 5, 4]);
    expect(run('flip', { axes: [0] }, [x], [2, 3])).toEqual([4, 5, 6, 1, 2, 3]);
    expect(run('flip', { axes: [0, 1] }, [x], [2, 3])).toEqual([6, 5, 4, 3, 2, 1]);
  });

  it('concat of n inputs', () => {
    const a = t([1, 2], [2, 1]);
    const c = t([3, 4, 5, 6], [2, 2]);
    const d = t([7, 8], [2, 1]);
    expect(run('concat', { axis: 1 }, [a, c, d], [2, 4])).toEqual([1, 3, 4, 7, 2, 5, 6, 8]);
    expect(run('concat', { axis: 0 }, [t([1, 2], [1, 2]), t([3, 4, 5, 6], [2, 2])], [3, 2])).toEqual([1, 2, 3, 4, 5, 6]);
    expect(run('concat', { axis: 0 }, [a], [2, 1])).toEqual([1, 2]);
  });
});

describe('matmul', () => {
  it('2x3 @ 3x2 by hand', () => {
    const a = t([1, 2, 3, 4, 5, 6], [2, 3]);
    const c = t([7, 8, 9, 10, 11, 12], [3, 2]);
    expect(run('matmul', noParams, [a, c], [2, 2])).toEqual([58, 64, 139, 154]);
  });

  it('broadcasts batch dimensions', () => {
    // a[i] = (i+1) * I  (shape [2,1,2,2]); c[j] = B_j (shape [3,2,2]) -> out[i,j] = (i+1) B_j
    const a = t([1, 0, 0, 1, 2, 0, 0, 2], [2, 1, 2, 2]);
    const B = [1, 2, 3, 4, -1, 0, 5, 2, 7, 7, -3, 0.5];
    const c = t(B, [3, 2, 2]);
    const out = run('matmul', noParams, [a, c], [2, 3, 2, 2]);
    const want: number[] = [];
    for (let i = 0; i < 2; i++) for (const v of B) want.push((i + 1) * v);
    expect(out).toEqual(want);
    // non-square with M=1 / N=1
    expect(run('matmul', noParams, [t([1, 2, 3], [1, 3]), t([4, 5, 6], [3, 1])], [1, 1])).toEqual([32]);
    expect(run('matmul', noParams, [t([1, 2, 3], [3, 1]), t([4, 5], [1, 2])], [3, 2])).toEqual([4, 5, 8, 10, 12, 15]);
  });
});

// ---------------------------------------------------------------------------------------------

function convParams(p: Partial<Conv2dParams> = {}): Conv2dParams {
  return { stride: [1, 1], padding: [0, 0, 0, 0], dilation: [1, 1], groups: 1, ...p };
}

function conv(x: T, w: T, p: Conv2dParams): T {
  const [N, , H, W] = x.shape;
  const [O, , KH, KW] = w.shape;
  const OH = convOut(H, KH, p.stride[0], p.padding[0], p.padding[1], p.dilation[0]);
  const OW = convOut(W, KW, p.stride[1], p.padding[2], p.padding[3], p.dilation[1]);
  return runT('conv2d', p, [x, w], [N, O, OH, OW]);
}

describe('conv2d', () => {
  const x9 = t(arange(9, 1), [1, 1, 3, 3]); // [[1,2,3],[4,5,6],[7,8,9]]
  const ones3 = t(new Array(9).fill(1), [1, 1, 3, 3]);

  it('1-channel 3x3 by hand', () => {
    const w = t([1, 2, 3, 4], [1, 1, 2, 2]);
    expect(Array.from(data(conv(x9, w, convParams())))).toEqual([37, 47, 67, 77]);
  });

  it('padding 1: box sums', () => {
    expect(Array.from(data(conv(x9, ones3, convParams({ padding: [1, 1, 1, 1] }))))).toEqual([12, 21, 16, 27, 45, 33, 24, 39, 28]);
  });

  it('stride 2 with padding', () => {
    expect(Array.from(data(conv(x9, ones3, convParams({ stride: [2, 2], padding: [1, 1, 1, 1] }))))).toEqual([12, 16, 24, 28]);
  });

  it('dilation 2', () => {
    const w = t([1, 2, 3, 4], [1, 1, 2, 2]);
    expect(Array.from(data(conv(x9, w, convParams({ dilation: [2, 2] }))))).toEqual([1 * 1 + 2 * 3 + 3 * 7 + 4 * 9]);
  });

  it('asymmetric padding [top, bottom, left, right]', () => {
    const x = t([1, 2, 3, 4], [1, 1, 2, 2]);
    const w = t([1], [1, 1, 1, 1]);
    const y = conv(x, w, convParams({ padding: [1, 0, 0, 2] }));
    expect(y.shape).toEqual([1, 1, 3, 4]);
    expect(Array.from(data(y))).toEqual([0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0]);
  });

  it('groups and multiple channels by hand', () => {
    // x: 2 channels of 2x2, w: groups 2, one 1x1 filter per group ([2] and [3]), plus a 2-in-channel conv.
    const x = t([1, 2, 3, 4, 10, 20, 30, 40], [1, 2, 2, 2]);
    expect(Array.from(data(conv(x, t([2, 3], [2, 1, 1, 1]), convParams({ groups: 2 }))))).toEqual([2, 4, 6, 8, 30, 60, 90, 120]);
    // groups 1, O=1, C=2: y = 1*x0 - 1*x1
    expect(Array.from(data(conv(x, t([1, -1], [1, 2, 1, 1]), convParams())))).toEqual([-9, -18, -27, -36]);
    // groups 2, O=4: filters 0,1 see channel 0; filters 2,3 see channel 1
    expect(Array.from(data(conv(x, t([1, -1, 0.5, 2], [4, 1, 1, 1]), convParams({ groups: 2 }))))).toEqual([
      1, 2, 3, 4, -1, -2, -3, -4, 5, 10, 15, 20, 20, 40, 60, 80,
    ]);
  });

  it('metamorphic: padding = explicit pad, stride = subsampling, dilation = zero-inserted kernel, groups = concat', () => {
    const r = rng(11);
    const x = randT([2, 4, 7, 8], r);
    const w = randT([6, 2, 3, 2], r);
    const wFull = randT([3, 4, 3, 2], r);
    // padding
    const padded = runT('pad', { before: [0, 0, 2, 1], after: [0, 0, 0, 3], value: 0 }, [x], [2, 4, 9, 12]);
    expectAllClose(data(conv(x, wFull, convParams({ padding: [2, 0, 1, 3] }))), data(conv(padded, wFull, convParams())));
    // stride: stride-(2,3) output = stride-1 output at rows 0,2,.. and cols 0,3,..
    const full = conv(x, wFull, convParams());
    const strided = conv(x, wFull, convParams({ stride: [2, 3] }));
    const [, O, FH, FW] = full.shape;
    const [, , SH, SW] = strided.shape;
    const fd = data(full);
    const sd = data(strided);
    for (let n = 0; n < 2; n++) for (let o = 0; o < O; o++) for (let i = 0; i < SH; i++) for (let j = 0; j < SW; j++) {
      expectClose(sd[((n * O + o) * SH + i) * SW + j], fd[((n * O + o) * FH + 2 * i) * FW + 3 * j]);
    }
    // dilation (2,3) of a 3x2 kernel = a 5x4 kernel with zeros between taps
    const wd = data(wFull);
    const dil = new Float64Array(3 * 4 * 5 * 4);
    for (let o = 0; o < 3; o++) for (let c = 0; c < 4; c++) for (let p = 0; p < 3; p++) for (let q = 0; q < 2; q++) {
      dil[((o * 4 + c) * 5 + 2 * p) * 4 + 3 * q] = wd[((o * 4 + c) * 3 + p) * 2 + q];
    }
    expectAllClose(data(conv(x, wFull, convParams({ dilation: [2, 3] }))), data(conv(x, t(dil, [3, 4, 5, 4]), convParams())));
    // groups 2 = concat over channels of two independent convs
    const grouped = conv(x, w, convParams({ groups: 2, padding: [1, 1, 0, 1] }));
    const x0 = runT('slice', { begin: [0, 0, 0, 0], size: [2, 2, 7, 8] }, [x], [2, 2, 7, 8]);
    const x1 = runT('slice', { begin: [0, 2, 0, 0], size: [2, 2, 7, 8] }, [x], [2, 2, 7, 8]);
    const w0 = runT('slice', { begin: [0, 0, 0, 0], size: [3, 2, 3, 2] }, [w], [3, 2, 3, 2]);
    const w1 = runT('slice', { begin: [3, 0, 0, 0], size: [3, 2, 3, 2] }, [w], [3, 2, 3, 2]);
    const y0 = conv(x0, w0, convParams({ padding: [1, 1, 0, 1] }));
    const y1 = conv(x1, w1, convParams({ padding: [1, 1, 0, 1] }));
    expectAllClose(data(grouped), run('concat', { axis: 1 }, [y0, y1], grouped.shape));
  });

  interface ConvCase { name: string; x: Shape; w: Shape; p: Conv2dParams }
  const cases: ConvCase[] = [
    { name: 'plain', x: [2, 3, 7, 6], w: [4, 3, 3, 3], p: convParams() },
    { name: 'stride 2, pad 1', x: [2, 3, 7, 6], w: [4, 3, 3, 3], p: convParams({ stride: [2, 2], padding: [1, 1, 1, 1] }) },
    { name: 'dilation 2, stride (2,1), asymmetric pad', x: [1, 2, 9, 8], w: [3, 2, 3, 2], p: convParams({ stride: [2, 1], dilation: [2, 2], padding: [2, 1, 0, 3] }) },
    { name: 'groups 2, stride (1,2), asymmetric pad', x: [2, 4, 5, 7], w: [6, 2, 3, 3], p: convParams({ groups: 2, stride: [1, 2], padding: [1, 0, 2, 1] }) },
    { name: 'depthwise', x: [1, 3, 6, 5], w: [3, 1, 2, 2], p: convParams({ groups: 3, padding: [0, 1, 1, 0] }) },
    { name: 'odd: 1x4 kernel, stride (3,2), dilation (1,3)', x: [1, 2, 5, 11], w: [3, 2, 1, 4], p: convParams({ stride: [3, 2], dilation: [1, 3], padding: [0, 2, 1, 0] }) },
    { name: 'uncovered input rows (H=8, k=3, s=2)', x: [1, 1, 8, 8], w: [2, 1, 3, 3], p: convParams({ stride: [2, 2] }) },
  ];

  for (const c of cases) {
    it(`adjoint identities: ${c.name}`, () => {
      const r = rng(c.name.length * 7919);
      const x = randT(c.x, r);
      const w = randT(c.w, r);
      const y = conv(x, w, c.p);
      const dy = randT(y.shape, r);
      const dx = run('conv2dBackpropInput', { ...c.p, inputShape: c.x }, [dy, w], c.x);
      const dw = run('conv2dBackpropFilter', { ...c.p, filterShape: c.w }, [x, dy], c.w);
      const lhs = dot(data(y), data(dy));
      expect(Math.abs(lhs)).toBeGreaterThan(1e-3);
      expectClose(dot(data(x), dx), lhs, 1e-11);
      expectClose(dot(data(w), dw), lhs, 1e-11);
    });
  }
});

// ---------------------------------------------------------------------------------------------

interface PoolP { kernel: Pair; stride: Pair; padding: Pad4; dilation: Pair }

function poolOutShape(x: Shape, p: PoolP): Shape {
  return [
    x[0], x[1],
    convOut(x[2], p.kernel[0], p.stride[0], p.padding[0], p.padding[1], p.dilation[0]),
    convOut(x[3], p.kernel[1], p.stride[1], p.padding[2], p.padding[3], p.dilation[1]),
  ];
}

describe('max pooling', () => {
  const p2: PoolP = { kernel: [2, 2], stride: [2, 2], padding: [0, 0, 0, 0], dilation: [1, 1] };
  const x = t([
    1, 3, 2, 1,
    4, 2, 0, 5,
    7, 1, 9, 9,
    8, 8, 3, 2,
  ], [1, 1, 4, 4]);

  it('2x2 stride 2 by hand, ties to the first in row-major window order', () => {
    expect(run('maxPoolGather', p2, [x, x], [1, 1, 2, 2])).toEqual([4, 5, 8, 9]);
    // src = 100 * position, so the result names the winning position
    const pos = t(arange(16).map((i) => 100 * i), [1, 1, 4, 4]);
    expect(run('maxPoolGather', p2, [x, pos], [1, 1, 2, 2])).toEqual([400, 700, 1200, 1000]);
    const dy = t([10, 20, 30, 40], [1, 1, 2, 2]);
    const dx = run('maxPoolScatter', p2, [x, dy], [1, 1, 4, 4]);
    const want = new Array(16).fill(0);
    want[4] = 10; want[7] = 20; want[12] = 30; want[10] = 40;
    expect(dx).toEqual(want);
  });

  it('overlapping windows accumulate in the scatter', () => {
    const p: PoolP = { kernel: [2, 2], stride: [1, 1], padding: [0, 0, 0, 0], dilation: [1, 1] };
    // the 9 at (2,2) is the max of 4 windows (2 of them tie with (2,3), (2,2) is first)
    expect(run('maxPoolGather', p, [x, x], [1, 1, 3, 3])).toEqual([4, 3, 5, 7, 9, 9, 8, 9, 9]);
    const dx = run('maxPoolScatter', p, [x, t(new Array(9).fill(1), [1, 1, 3, 3])], [1, 1, 4, 4]);
    const want = new Array(16).fill(0);
    want[4] = 1; want[1] = 1; want[7] = 1; want[8] = 1; want[10] = 4; want[12] = 1;
    expect(dx).toEqual(want);
  });

  it('padded positions never win, even against negative values', () => {
    const neg = t([-1, -2, -3, -4], [1, 1, 2, 2]);
    const p: PoolP = { kernel: [2, 2], stride: [2, 2], padding: [1, 1, 1, 1], dilation: [1, 1] };
    expect(run('maxPoolGather', p, [neg, neg], [1, 1, 2, 2])).toEqual([-1, -2, -3, -4]);
    const p3: PoolP = { kernel: [3, 3], stride: [1, 1], padding: [1, 1, 1, 1], dilation: [1, 1] };
    expect(run('maxPoolGather', p3, [neg, neg], [1, 1, 2, 2])).toEqual([-1, -1, -1, -1]);
  });

  it('dilation and NaN', () => {
    const p: PoolP = { kernel: [2, 2], stride: [1, 1], padding: [0, 0, 0, 0], dilation: [2, 2] };
    // window (0,0) covers (0,0),(0,2),(2,0),(2,2) = 1,2,7,9
    // (0,1): 3,1,1,9; (1,0): 4,0,8,3; (1,1): 2,5,8,2
    expect(run('maxPoolGather', p, [x, x], [1, 1, 2, 2])).toEqual([9, 9, 8, 8]);
    const n = t([NaN, 1, NaN, NaN], [1, 1, 2, 2]);
    const whole: PoolP = { kernel: [2, 2], stride: [1, 1], padding: [0, 0, 0, 0], dilation: [1, 1] };
    expect(run('maxPoolGather', whole, [n, t([10, 20, 30, 40], [1, 1, 2, 2])], [1, 1, 1, 1])).toEqual([20]);
  });

  const cases: { name: string; x: Shape; p: PoolP }[] = [
    { name: '3x3 s2 pad 1', x: [2, 3, 7, 9], p: { kernel: [3, 3], stride: [2, 2], padding: [1, 1, 1, 1], dilation: [1, 1] } },
    { name: 'overlapping 2x3 s1 asymmetric pad', x: [1, 2, 6, 5], p: { kernel: [2, 3], stride: [1, 1], padding: [0, 1, 1, 0], dilation: [1, 1] } },
    { name: 'dilation 2 stride (1,2)', x: [1, 2, 9, 8], p: { kernel: [3, 2], stride: [1, 2], padding: [1, 0, 0, 1], dilation: [2, 2] } },
  ];
  for (const c of cases) {
    it(`adjoint: maxPoolGather vs maxPoolScatter w.r.t. src (${c.name})`, () => {
      const r = rng(c.name.length * 31);
      // coarse values so that ties occur
      const xs = t(Array.from({ length: sizeOf(c.x) }, () => Math.floor(r() * 5)), c.x);
      const src = randT(c.x, r);
      const outShape = poolOutShape(c.x, c.p);
      const dy = randT(outShape, r);
      const y = run('maxPoolGather', c.p, [xs, src], outShape);
      const dsrc = run('maxPoolScatter', c.p, [xs, dy], c.x);
      const lhs = dot(y, data(dy));
      expect(Math.abs(lhs)).toBeGreaterThan(1e-3); // not both zero
      expectClose(lhs, dot(data(src), dsrc), 1e-12);
    });
  }
});

describe('average pooling', () => {
  const x9 = t(arange(9, 1), [1, 1, 3, 3]);

  it('2x2 stride 1 by hand', () => {
    const p = { kernel: [2, 2] as Pair, stride: [1, 1] as Pair, padding: [0, 0, 0, 0] as Pad4, dilation: [1, 1] as Pair };
    expect(run('avgPool2d', { ...p, countIncludePad: true }, [x9], [1, 1, 2, 2])).toEqual([3, 4, 6, 7]);
  });

  it('divisor rule with padding', () => {
    const p = { kernel: [3, 3] as Pair, stride: [1, 1] as Pair, padding: [1, 1, 1, 1] as Pad4, dilation: [1, 1] as Pair };
    expectAllClose(run('avgPool2d', { ...p, countIncludePad: true }, [x9], [1, 1, 3, 3]), [12, 21, 16, 27, 45, 33, 24, 39, 28].map((v) => v / 9));
    expectAllClose(run('avgPool2d', { ...p, countIncludePad: false }, [x9], [1, 1, 3, 3]), [3, 3.5, 4, 4.5, 5, 5.5, 6, 6.5, 7]);
  });

  const cases: { name: string; x: Shape; p: PoolP }[] = [
    { name: '3x3 s2 pad 1', x: [2, 3, 7, 9], p: { kernel: [3, 3], stride: [2, 2], padding: [1, 1, 1, 1], dilation: [1, 1] } },
    { name: '2x3 s(1,2) asymmetric pad', x: [1, 2, 6, 5], p: { kernel: [2, 3], stride: [1, 2], padding: [0, 1, 2, 0], dilation: [1, 1] } },
    { name: '4x4 s3 pad 2', x: [1, 1, 10, 11], p: { kernel: [4, 4], stride: [3, 3], padding: [2, 2, 2, 1], dilation: [1, 1] } },
  ];
  for (const c of cases) {
    for (const countIncludePad of [true, false]) {
      it(`adjoint: avgPool2d vs avgPool2dBackprop (${c.name}, countIncludePad=${countIncludePad})`, () => {
        const r = rng(c.name.length * 131 + (countIncludePad ? 1 : 0));
        const x = randT(c.x, r);
        const outShape = poolOutShape(c.x, c.p);
        const dy = randT(outShape, r);
        const y = run('avgPool2d', { ...c.p, countIncludePad }, [x], outShape);
        const dx = run('avgPool2dBackprop', { ...c.p, countIncludePad, inputShape: c.x }, [dy], c.x);
        const lhs = dot(y, data(dy));
        expect(Math.abs(lhs)).toBeGreaterThan(1e-3); // not both zero
        expectClose(lhs, dot(data(x), dx), 1e-12);
      });
    }
  }
});

// ---------------------------------------------------------------------------------------------

describe('bilinear resize', () => {
  const x = t([1, 2, 3, 4], [1, 1, 2, 2]);

  it('PyTorch F.interpolate 2x2 -> 4x4, align_corners=False', () => {
    expectAllClose(run('resizeBilinear', { size: [4, 4], alignCorners: false }, [x], [1, 1, 4, 4]), [
      1.0, 1.25, 1.75, 2.0,
      1.5, 1.75, 2.25, 2.5,
      2.5, 2.75, 3.25, 3.5,
      3.0, 3.25, 3.75, 4.0,
    ]);
  });

  it('PyTorch F.interpolate 2x2 -> 4x4, align_corners=True', () => {
    expectAllClose(run('resizeBilinear', { size: [4, 4], alignCorners: true }, [x], [1, 1, 4, 4]), [
      1, 4 / 3, 5 / 3, 2,
      5 / 3, 2, 7 / 3, 8 / 3,
      7 / 3, 8 / 3, 3, 10 / 3,
      3, 10 / 3, 11 / 3, 4,
    ]);
  });

  it('downsampling and size-1 outputs', () => {
    const row = t([1, 2, 3, 4], [1, 1, 1, 4]);
    expectAllClose(run('resizeBilinear', { size: [1, 2], alignCorners: false }, [row], [1, 1, 1, 2]), [1.5, 3.5]);
    expectAllClose(run('resizeBilinear', { size: [1, 3], alignCorners: true }, [row], [1, 1, 1, 3]), [1, 2.5, 4]);
    expectAllClose(run('resizeBilinear', { size: [1, 1], alignCorners: true }, [row], [1, 1, 1, 1]), [1]);
    // align_corners=False, 4 -> 1: s = 0.5*4 - 0.5 = 1.5
    expectAllClose(run('resizeBilinear', { size: [1, 1], alignCorners: false }, [row], [1, 1, 1, 1]), [2.5]);
    // 4 -> 3, align_corners=False: s = (i+0.5)*4/3 - 0.5 = 1/6, 3/2, 17/6
    expectAllClose(run('resizeBilinear', { size: [1, 3], alignCorners: false }, [row], [1, 1, 1, 3]), [1 + 1 / 6, 2.5, 3 + 5 / 6]);
    // identity size
    expectAllClose(run('resizeBilinear', { size: [2, 2], alignCorners: false }, [x], [1, 1, 2, 2]), [1, 2, 3, 4]);
  });

  const cases: { name: string; x: Shape; size: Pair }[] = [
    { name: 'upsample 3x5 -> 7x9', x: [2, 2, 3, 5], size: [7, 9] },
    { name: 'downsample 9x8 -> 4x3', x: [1, 3, 9, 8], size: [4, 3] },
    { name: 'mixed 5x4 -> 2x9', x: [1, 1, 5, 4], size: [2, 9] },
    { name: 'to a single row 6x3 -> 1x5', x: [1, 2, 6, 3], size: [1, 5] },
  ];
  for (const c of cases) {
    for (const alignCorners of [false, true]) {
      it(`adjoint: resizeBilinear vs backprop (${c.name}, alignCorners=${alignCorners})`, () => {
        const r = rng(c.name.length * 17 + (alignCorners ? 1 : 0));
        const x = randT(c.x, r);
        const outShape = [c.x[0], c.x[1], c.size[0], c.size[1]];
        const dy = randT(outShape, r);
        const y = run('resizeBilinear', { size: c.size, alignCorners }, [x], outShape);
        const dx = run('resizeBilinearBackprop', { size: [c.x[2], c.x[3]], alignCorners }, [dy], c.x);
        const lhs = dot(y, data(dy));
        expect(Math.abs(lhs)).toBeGreaterThan(1e-3); // not both zero
        expectClose(lhs, dot(data(x), dx), 1e-12);
      });
    }
  }
});

// ---------------------------------------------------------------------------------------------

describe('gather and scatterAdd', () => {
  const x = t([1, 2, 3, 4, 5, 6], [2, 3]);

  it('gather by hand, out-of-range gives 0', () => {
    expect(run('gather', { axis: 1 }, [x, t([2, 0, 5, -1], [2, 2])], [2, 2, 2])).toEqual([3, 1, 0, 0, 6, 4, 0, 0]);
    expect(run('gather', { axis: 0 }, [x, t([1], [1])], [1, 3])).toEqual([4, 5, 6]);
    expect(run('gather', { axis: 0 }, [x, t([1, 1, 0], [3])], [3, 3])).toEqual([4, 5, 6, 4, 5, 6, 1, 2, 3]);
    // scalar index tensor removes the axis
    expect(run('gather', { axis: 1 }, [x, t([1], [])], [2])).toEqual([2, 5]);
  });

  it('scatterAdd by hand, duplicates add, out-of-range dropped', () => {
    expect(run('scatterAdd', { axis: 0, size: 3 }, [t([1, 2, 3, 4], [4]), t([0, 2, 0, 7], [4])], [3])).toEqual([4, 0, 2]);
    // updates [2, 2] along axis 1 into size 3
    expect(run('scatterAdd', { axis: 1, size: 3 }, [t([1, 2, 3, 4], [2, 2]), t([2, 2], [2])], [2, 3])).toEqual([0, 0, 3, 0, 0, 7]);
  });

  const cases: { name: string; x: Shape; axis: number; idx: Shape }[] = [
    { name: 'axis 0, 1-d indices', x: [5, 3], axis: 0, idx: [7] },
    { name: 'middle axis, 2-d indices', x: [2, 6, 3], axis: 1, idx: [4, 3] },
    { name: 'last axis', x: [3, 2, 5], axis: 2, idx: [2, 2, 2] },
  ];
  for (const c of cases) {
    it(`adjoint: gather vs scatterAdd (${c.name})`, () => {
      const r = rng(c.name.length * 101);
      const size = c.x[c.axis];
      const x = randT(c.x, r);
      // duplicates and out-of-range (-1, size, size+2) included
      const idx = t(Array.from({ length: sizeOf(c.idx) }, () => Math.floor(r() * (size + 4)) - 1), c.idx);
      const outShape = [...c.x.slice(0, c.axis), ...c.idx, ...c.x.slice(c.axis + 1)];
      const u = randT(outShape, r);
      const g = run('gather', { axis: c.axis }, [x, idx], outShape);
      const s = run('scatterAdd', { axis: c.axis, size }, [u, idx], c.x);
      const lhs = dot(g, data(u));
      expect(Math.abs(lhs)).toBeGreaterThan(1e-3); // not both zero
      expectClose(lhs, dot(data(x), s), 1e-12);
    });
  }
});

// ---------------------------------------------------------------------------------------------

describe('random (Philox4x32-10)', () => {
  const hex = (w: Uint32Array) => Array.from(w, (v) => v.toString(16).padStart(8, '0'));

  it('matches the Random123 known-answer vectors', () => {
    expect(hex(philox4x32_10(0, 0, 0, 0, 0, 0))).toEqual(['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']);
    const f = 0xffffffff;
    expect(hex(philox4x32_10(f, f, f, f, f, f))).toEqual(['408f276d', '41c83b0e', 'a20bc7c6', '6d5451fd']);
    expect(hex(philox4x32_10(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0)))
      .toEqual(['d16cfe09', '94fdcceb', '5001e420', '24126ea1']);
  });

  it('element 0 of seed 0 comes from counter 0, key 0', () => {
    const u = run('random', { seed: 0, dist: 'uniform' }, [], [1]);
    expect(u[0]).toBe((0x6627e8d5 >>> 8) / 2 ** 24);
    const n = run('random', { seed: 0, dist: 'normal' }, [], [1]);
    const u1 = ((0x6627e8d5 >>> 8) + 1) / 2 ** 24;
    const u2 = (0xe169c58d >>> 8) / 2 ** 24;
    expectClose(n[0], Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2), 1e-15);
  });

  it('element i uses counter (i, 0, 0, 0); the seed splits into (lo, hi) key words', () => {
    const seed = 2 ** 32 * 3 + 12345;
    const u = run('random', { seed, dist: 'uniform' }, [], [2, 3]);
    for (let i = 0; i < 6; i++) {
      expect(u[i]).toBe((philox4x32_10(i, 0, 0, 0, 12345, 3)[0] >>> 8) / 2 ** 24);
    }
    // deterministic, and different seeds differ
    expect(run('random', { seed, dist: 'uniform' }, [], [6])).toEqual(u);
    expect(run('random', { seed: seed + 1, dist: 'uniform' }, [], [6])).not.toEqual(u);
  });

  it('uniform and normal moments over 10^5 samples', () => {
    const n = 100_000;
    const u = run('random', { seed: 42, dist: 'uniform' }, [], [n]);
    let m = 0, v = 0, lo = Infinity, hi = -Infinity;
    for (const s of u) { m += s; lo = Math.min(lo, s); hi = Math.max(hi, s); }
    m /= n;
    for (const s of u) v += (s - m) ** 2;
    v /= n;
    expect(lo).toBeGreaterThanOrEqual(0);
    expect(hi).toBeLessThan(1);
    expect(Math.abs(m - 0.5)).toBeLessThan(0.005);
    expect(Math.abs(v - 1 / 12)).toBeLessThan(0.002);

    const g = run('random', { seed: 7, dist: 'normal' }, [], [n]);
    let gm = 0, gv = 0, g4 = 0;
    for (const s of g) gm += s;
    gm /= n;
    for (const s of g) { gv += (s - gm) ** 2; g4 += (s - gm) ** 4; }
    gv /= n;
    g4 /= n;
    expect(g.every(Number.isFinite)).toBe(true);
    expect(Math.abs(gm)).toBeLessThan(0.015);
    expect(Math.abs(gv - 1)).toBeLessThan(0.02);
    expect(Math.abs(g4 / (gv * gv) - 3)).toBeLessThan(0.1); // kurtosis of a normal
  });
});

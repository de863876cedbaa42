// shaders/conv2d-gpu.ts (implicit-GEMM forward, backprop-input, split-K backprop-filter),
// dispatched directly through the runtime, against a float64 reference.
//
// The reference is the NCHW definition, written once as a loop over every (item, output channel,
// output pixel, input channel, tap) whose tap lands inside x: the forward sum gathers
// x * w into y, and the two adjoints scatter the same products (dy * w into dx, dy * x into dw),
// so it shares no index algebra with the WGSL gathers.
//
// Tolerance (derived, as tests/engine/matmul-gpu.test.ts): a float32 sum of n products is off by
// at most gamma_{n+1} * sum |a||b| (gamma_n = n u / (1 - n u), u = 2^-24), n that element's number
// of products (taps outside x are exact zeros); split-K partials are added here in float64, and
// each partial's bound adds up to at most the whole sum's. Outputs are prefilled with NaN, so an
// element never written fails.
import { afterAll, describe, expect, it } from 'vitest';
import { init } from '../../engine/init.ts';
import type { WebGpuBackend } from '../../engine/webgpu/backend.ts';
import { epilogueValues, type EpilogueProgram } from '../../shaders/epilogue.ts';
import {
  CONV_GPU_CONFIGS, conv2dGpuConfigFor, conv2dGpuUniformsWith, conv2dGpuBackpropFilterWorkgroups, conv2dGpuBackpropInputWorkgroups, conv2dGpuFilterSplit, conv2dGpuFor, conv2dGpuOptions,
  conv2dGpuUniforms, conv2dGpuWorkgroupBytes, conv2dGpuWorkgroups, packConv2dGpu, packConv2dGpuBackpropFilter, packConv2dGpuBackpropInput,
  type ConvGpuConfig, type ConvGpuKind, type ConvGpuParams, type ConvGpuShapes,
} from '../../shaders/conv2d-gpu.ts';

const gpu = (await init({ backend: 'webgpu', setDefault: false })) as WebGpuBackend;
afterAll(() => gpu.destroy());
const swiftshader = gpu.info.architecture === 'swiftshader';

const U = 2 ** -24;
const gamma = (n: number) => (n * U) / (1 - n * U);

let seed = 4242;
const rand = () => {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return seed / 2 ** 32;
};
const host = (n: number) => Float32Array.from({ length: n }, () => 2 * rand() - 1);
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

interface Conv {
  N: number; C: number; H: number; W: number; O: number; KH: number; KW?: number;
  stride?: number | [number, number];
  /** [top, bottom, left, right] or one value for all. */
  pad?: number | [number, number, number, number];
  dil?: number | [number, number];
  groups?: number;
}
const pair = (v: number | [number, number] | undefined, d: number): [number, number] => (v === undefined ? [d, d] : typeof v === 'number' ? [v, v] : v);

function problem(c: Conv): { p: ConvGpuParams; s: ConvGpuShapes; label: string } {
  const G = c.groups ?? 1, KW = c.KW ?? c.KH;
  const stride = pair(c.stride, 1), dil = pair(c.dil, 1);
  const pad = c.pad === undefined ? [0, 0, 0, 0] : typeof c.pad === 'number' ? [c.pad, c.pad, c.pad, c.pad] : c.pad;
  const OH = Math.floor((c.H + pad[0] + pad[1] - dil[0] * (c.KH - 1) - 1) / stride[0]) + 1;
  const OW = Math.floor((c.W + pad[2] + pad[3] - dil[1] * (KW - 1) - 1) / stride[1]) + 1;
  if (OH < 1 || OW < 1) throw new Error(`bad case ${JSON.stringify(c)}`);
  const s = { x: [c.N, c.C, c.H, c.W], w: [c.O, c.C / G, c.KH, KW], y: [c.N, c.O, OH, OW] };
  return { p: { stride, padding: pad, dilation: dil, groups: G }, s, label: `x[${s.x}] w[${s.w}] y[${s.y}] s${stride} pad${pad} d${dil} g${G}` };
}

/** The float64 reference: value, sum of |products| and number of products per element of y, dx, dw. */
function reference(p: ConvGpuParams, s: ConvGpuShapes, x: Float32Array, w: Float32Array, dy: Float32Array) {
  const [N, C, H, W] = s.x, [O, Cg, KH, KW] = s.w, [, , OH, OW] = s.y;
  const Og = O / p.groups;
  const mk = (n: number) => ({ v: new Float64Array(n), a: new Float64Array(n), n: new Float64Array(n) });
  const y = mk(size(s.y)), dx = mk(size(s.x)), dw = mk(size(s.w));
  const add = (r: ReturnType<typeof mk>, i: number, t: number) => { r.v[i] += t; r.a[i] += Math.abs(t); r.n[i]++; };
  for (let n = 0; n < N; n++)
    for (let o = 0; o < O; o++) {
      const g = Math.floor(o / Og);
      for (let i = 0; i < OH; i++)
        for (let j = 0; j < OW; j++) {
          const yi = ((n * O + o) * OH + i) * OW + j;
          for (let c = 0; c < Cg; c++)
            for (let pp = 0; pp < KH; pp++) {
              const h = i * p.stride[0] - p.padding[0] + pp * p.dilation[0];
              if (h < 0 || h >= H) continue;
              for (let q = 0; q < KW; q++) {
                const v = j * p.stride[1] - p.padding[2] + q * p.dilation[1];
                if (v < 0 || v >= W) continue;
                const xi = ((n * C + g * Cg + c) * H + h) * W + v, wi = ((o * Cg + c) * KH + pp) * KW + q;
                add(y, yi, x[xi] * w[wi]);
                add(dx, xi, dy[yi] * w[wi]);
                add(dw, wi, dy[yi] * x[xi]);
              }
            }
        }
    }
  return { y, dx, dw };
}

/** Worst |got - want| / bound (below 1 passes; Infinity for a NaN). */
function worst(got: ArrayLike<number>, r: { v: Float64Array; a: Float64Array; n: Float64Array }): number {
  let e = 0;
  for (let i = 0; i < r.v.length; i++) {
    const d = Math.abs(got[i] - r.v[i]) / (gamma(r.n[i] + 1) * r.a[i] + Number.MIN_VALUE);
    if (!(d <= e)) e = Number.isNaN(d) ? Infinity : d;
  }
  return e;
}

async function dispatch(label: string, wgsl: string, params: Uint32Array, inputs: Float32Array[], outLen: number, workgroups: [number, number, number]): Promise<Float32Array> {
  const bufs = inputs.map((a) => { const b = gpu.rt.acquire(Math.max(4, a.byteLength)); gpu.rt.writeBuffer(b, a); return b; });
  const out = gpu.rt.acquire(outLen * 4);
  try {
    gpu.rt.writeBuffer(out, new Float32Array(outLen).fill(NaN));
    gpu.rt.dispatch({ label, wgsl, params, output: out, inputs: bufs, workgroups });
    const got = await gpu.rt.readback(out, outLen * 4);
    await gpu.rt.checkErrors();
    return got;
  } finally {
    gpu.rt.release(out);
    bufs.forEach((b) => gpu.rt.release(b));
  }
}

/** The values of a packed conv2dGpuUniforms block, by name (to repack with an epilogue's fields). */
function unpackConv(words: Uint32Array): Record<string, number> {
  const i32 = new Int32Array(words.buffer);
  return Object.fromEntries(Object.entries(conv2dGpuUniforms.offsets).map(([k, off]) => [k, k === 'padTop' || k === 'padLeft' ? i32[off] : words[off]]));
}

type Split = { target?: number; minChunk?: number; maxS?: number };
/** Run the kinds on one case and config; returns the worst error per kind. */
async function run(config: ConvGpuConfig, c: Conv, kinds: readonly ConvGpuKind[] = ['forward', 'input', 'filter'], split: Split = {}) {
  const { p, s, label } = problem(c);
  const x = host(size(s.x)), w = host(size(s.w)), dy = host(size(s.y));
  const ref = reference(p, s, x, w, dy);
  const res: Partial<Record<ConvGpuKind, number>> = {};
  for (const kind of kinds) {
    const o = conv2dGpuOptions(kind, config);
    const wgsl = conv2dGpuFor(o);
    const tag = `conv2d-gpu ${kind} ${config} ${label}`;
    if (kind === 'forward') {
      res.forward = worst(await dispatch(tag, wgsl, packConv2dGpu(p, s), [x, w], size(s.y), conv2dGpuWorkgroups(o, p, s)), ref.y);
    } else if (kind === 'input') {
      res.input = worst(await dispatch(tag, wgsl, packConv2dGpuBackpropInput(p, s), [dy, w], size(s.x), conv2dGpuBackpropInputWorkgroups(o, p, s)), ref.dx);
    } else {
      const sp = conv2dGpuFilterSplit(o, p, s, split);
      const n = size(s.w);
      const parts = await dispatch(`${tag} S=${sp.S}`, wgsl, packConv2dGpuBackpropFilter(p, s, sp), [x, dy], sp.S * n, conv2dGpuBackpropFilterWorkgroups(o, p, s, sp));
      const sum = new Float64Array(n);
      for (let k = 0; k < sp.S; k++) for (let i = 0; i < n; i++) sum[i] += parts[k * n + i];
      res.filter = worst(sum, ref.dw);
    }
  }
  return res;
}

const expectOk = (r: Partial<Record<ConvGpuKind, number>>, what: string) => {
  for (const [k, e] of Object.entries(r)) expect(e, `${k} ${what}`).toBeLessThan(1);
};

// Odd sizes against every tile; 1x1 to 7x7 kernels; strides 1/2/3; asymmetric padding (bottom /
// right below top / left, or the reverse); dilation 2; groups 2 and depthwise; batch > 1.
const cases: Conv[] = [
  { N: 1, C: 1, H: 5, W: 5, O: 1, KH: 1 },
  { N: 2, C: 3, H: 7, W: 6, O: 5, KH: 3, pad: 1 },
  { N: 1, C: 5, H: 13, W: 11, O: 7, KH: 5, stride: 2, pad: [2, 1, 2, 0] },
  { N: 3, C: 7, H: 17, W: 13, O: 13, KH: 3, stride: 3, pad: [1, 0, 0, 1] },
  { N: 2, C: 13, H: 9, W: 10, O: 17, KH: 7, pad: 3 },
  { N: 1, C: 6, H: 11, W: 12, O: 4, KH: 3, pad: 2, dil: 2, groups: 2 },
  { N: 2, C: 7, H: 9, W: 9, O: 7, KH: 3, stride: 2, pad: 1, groups: 7 },
  { N: 2, C: 4, H: 10, W: 9, O: 8, KH: 3, KW: 5, stride: [2, 3], pad: [1, 0, 2, 1], dil: [2, 1], groups: 4 },
  { N: 2, C: 17, H: 5, W: 7, O: 3, KH: 1, stride: 2 },
  { N: 1, C: 3, H: 16, W: 15, O: 5, KH: 7, stride: 2, pad: [3, 2, 3, 3] },
  { N: 4, C: 5, H: 3, W: 3, O: 6, KH: 3, stride: 3, pad: [0, 2, 1, 0], dil: 1 },
];
const small: Conv[] = [cases[1], cases[3], cases[6]];
const configs = Object.keys(CONV_GPU_CONFIGS) as ConvGpuConfig[];

describe(`conv2d-gpu kernels (${gpu.info.architecture})`, () => {
  it('fits the workgroup-memory limit in every configuration', () => {
    const limit = gpu.rt.device.limits.maxComputeWorkgroupStorageSize;
    for (const c of configs) expect(conv2dGpuWorkgroupBytes(CONV_GPU_CONFIGS[c])).toBeLessThanOrEqual(limit);
    expect(conv2dGpuUniforms.words).toBe(20);
  });

  it.skipIf(swiftshader)('128x128-8x8-k16-db: every case, the three kernels', async () => {
    for (const c of cases) expectOk(await run('128x128-8x8-k16-db', c), JSON.stringify(c));
  });

  // Lavapipe compiles each pipeline in seconds (cold cache): one other configuration runs the
  // three kernels, the rest one kernel each (the staging and FMA code is the same for every kind;
  // the kinds differ only in their gathers and stores, which the default configuration tests on
  // every case).
  const others: [ConvGpuConfig, ConvGpuKind[]][] = [
    ['64x64-4x4-k16-db', ['forward', 'input', 'filter']], ['32x128-4x8-k16-db', ['filter']],
    ['64x64-4x4-k16', ['input']], ['64x128-8x8-k16-db', ['forward']], ['64x64-8x8-k16-db', ['input']], ['128x128-8x8-k8-db', ['filter']],
  ];
  for (const [n, [config, kinds]] of others.entries()) {
    it.skipIf(swiftshader)(`${config} (${kinds.join(', ')}) on a share of the cases`, async () => {
      for (const [i, c] of cases.entries()) if (i % 2 === n % 2) expectOk(await run(config, c, kinds), `${config} ${JSON.stringify(c)}`);
    });
  }

  it.skipIf(swiftshader)('backprop-filter split into several chunks (partial sums), and unsplit', async () => {
    for (const c of [cases[1], cases[3], cases[7]]) {
      for (const split of [{ target: 1e6, minChunk: 16, maxS: 7 }, { target: 1e6, minChunk: 1, maxS: 64 }, { target: 1 }]) {
        const { p, s } = problem(c);
        const sp = conv2dGpuFilterSplit(CONV_GPU_CONFIGS['64x64-4x4-k16-db'], p, s, split);
        if (split.target === 1) expect(sp.S).toBe(1);
        else expect(sp.S).toBeGreaterThan(1);
        expectOk(await run('64x64-4x4-k16-db', c, ['filter'], split), `${JSON.stringify(c)} ${JSON.stringify(sp)}`);
      }
    }
  });

  it.skipIf(swiftshader)('2x32x28x28 -> 64, 3x3 (several row and column blocks)', async () => {
    const c: Conv = { N: 2, C: 32, H: 28, W: 28, O: 64, KH: 3, pad: 1 };
    expectOk(await run('128x128-8x8-k16-db', c, ['forward', 'input', 'filter'], { target: 64 }), 'default');
    expectOk(await run('64x64-4x4-k16-db', c), '64x64');
  });

  // SwiftShader runs barriers slowly (DESIGN.md, "Adapters"): a few small cases, two configs.
  it.runIf(swiftshader)('small cases (SwiftShader)', async () => {
    for (const config of ['64x64-4x4-k16-db', '64x64-4x4-k16'] as const) for (const c of small) expectOk(await run(config, c, undefined, { target: 1e6, minChunk: 16, maxS: 3 }), `${config} ${JSON.stringify(c)}`);
  });

  // A folded chain (as engine/webgpu/fusion.ts hands one to a conv): max(conv + bias[o] + residual, 0),
  // the bias a strided leaf ([N, O, OH*OW] with strides [0, 1, 0]), the residual a flat one.
  it('forward with an epilogue (bias, residual, max with 0)', async () => {
    const epi: EpilogueProgram = {
      rank: 3, leafFlat: [false, true], scalars: 1, result: 'v2',
      steps: [{ op: 'binary', prim: 'add', a: 'acc', b: 'l0' }, { op: 'binary', prim: 'add', a: 'v0', b: 'l1' }, { op: 'binary', prim: 'maximum', a: 'v1', b: 'c0' }],
    };
    // One 4x4 configuration: lavapipe compiles 64 inlined epilogue call sites (8x8) for half a minute.
    const list: [ConvGpuConfig, Conv][] = swiftshader ? [['64x64-4x4-k16-db', cases[1]]] : [['64x64-4x4-k16-db', cases[3]], ['64x64-4x4-k16-db', cases[7]]];
    for (const [config, c] of list) {
      const { p, s } = problem(c);
      const x = host(size(s.x)), w = host(size(s.w)), bias = host(s.y[1]), res = host(size(s.y));
      const ref = reference(p, s, x, w, new Float32Array(size(s.y))).y;
      const o = conv2dGpuOptions('forward', config);
      const schema = conv2dGpuUniformsWith(epi);
      const params = schema.pack({ ...unpackConv(packConv2dGpu(p, s)), ...epilogueValues({ c0: 0, shape: [s.y[0], s.y[1], s.y[2] * s.y[3]], strides: [0, 1, 0] }, epi) });
      const got = await dispatch(`conv2d-gpu forward+epilogue ${config}`, conv2dGpuFor(o, epi), params, [x, w, bias, res], size(s.y), conv2dGpuWorkgroups(o, p, s));
      const plane = s.y[2] * s.y[3];
      let e = 0;
      for (let i = 0; i < got.length; i++) {
        const b = bias[Math.floor(i / plane) % s.y[1]];
        const want = Math.max(0, ref.v[i] + b + res[i]);
        // max(., 0) is 1-Lipschitz: the conv's bound plus the two adds' roundings.
        const tol = gamma(ref.n[i] + 1) * ref.a[i] + 2 * U * (Math.abs(ref.v[i]) + Math.abs(b) + Math.abs(res[i])) + Number.MIN_VALUE;
        const d = Math.abs(got[i] - want) / tol;
        if (!(d <= e)) e = Number.isNaN(d) ? Infinity : d;
      }
      expect(e, `${config} ${JSON.stringify(c)}`).toBeLessThan(1);
    }
    expect(() => conv2dGpuFor(conv2dGpuOptions('input', '64x64-4x4-k16-db'), epi)).toThrow(/forward/);
  });

  it('picks a block by channels and pixels', () => {
    expect(conv2dGpuConfigFor(4, 1e6)).toBeNull();
    expect(conv2dGpuConfigFor(32, 1e6)).toBe('32x128-4x8-k16-db');
    expect(conv2dGpuConfigFor(64, 1e6)).toBe('64x128-8x8-k16-db');
    expect(conv2dGpuConfigFor(64, 3136)).toBe('64x64-4x4-k16-db');
    expect(conv2dGpuConfigFor(256, 32 * 3136)).toBe('128x128-8x8-k16-db');
    for (const [m, n] of [[8, 1], [100, 10], [1000, 1e5]]) expect(Object.keys(CONV_GPU_CONFIGS)).toContain(conv2dGpuConfigFor(m, n));
  });

  it('refuses configurations it cannot run', () => {
    expect(() => conv2dGpuFor({ kind: 'forward', bm: 128, bn: 128, tm: 4, tn: 4, bk: 16, double: true })).toThrow(/1024 invocations/);
    expect(() => conv2dGpuFor({ kind: 'input', bm: 128, bn: 128, tm: 8, tn: 8, bk: 32, double: true })).toThrow(/workgroup memory/);
    expect(() => conv2dGpuFor({ kind: 'filter', bm: 64, bn: 64, tm: 8, tn: 8, bk: 6, double: true })).toThrow(/bk/);
    expect(() => conv2dGpuFor({ kind: 'nope' as ConvGpuKind, bm: 64, bn: 64, tm: 8, tn: 8, bk: 16, double: true })).toThrow(/kind/);
  });
});

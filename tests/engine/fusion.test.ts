// Fused elementwise chains (engine/webgpu/fusion.ts): elementwise primitives are recorded lazily
// on WebGPU and each chain runs as one generated kernel. Every case is checked against the float64
// CPU backend on odd sizes with poisoned outputs (as tests/engine/webgpu-ops.test.ts), and the
// bookkeeping (kernels emitted, pipelines compiled, live buffers, pending chains) is checked too.
import { afterAll, describe, expect, it } from 'vitest';
import { tidy, withBackend } from '../../engine/context.ts';
import { init, memory } from '../../engine/init.ts';
import type { Shape } from '../../engine/primitives.ts';
import type { Tensor } from '../../engine/tensor.ts';
import type { WebGpuBackend } from '../../engine/webgpu/backend.ts';
import { tensor } from '../../engine/ops/creation.ts';
import {
  abs, add, div, exp, greater, log, maximum, minimum, mul, neg, pow, sigmoid, sin, sqrt, sub, tanh, where,
} from '../../engine/ops/elementwise.ts';
import { broadcastTo, reshape } from '../../engine/ops/movement.ts';
import { sum } from '../../engine/ops/reduce.ts';
import { matmul } from '../../engine/ops/linalg.ts';
import { mergeAxes, vec4Splat } from '../../engine/webgpu/fusion.ts';
import { expectClose, randArray, rng, sizeOf } from '../helpers.ts';

// fusion: true whatever BACKLIGHT_FUSION says (the rest of the suite can run with it off).
const gpu = (await init({ backend: 'webgpu', setDefault: false, fusion: true })) as WebGpuBackend;
const cpu = await init({ backend: 'cpu', setDefault: false });
gpu.poisonOutputs = true;
const fusion = gpu.fusion!;

afterAll(() => {
  gpu.destroy();
  cpu.destroy();
});

const TOL = 1e-5;

/** Run `build` on both backends (inside tidy) and compare every returned tensor. */
async function check(what: string, build: () => Tensor[], tol = TOL): Promise<void> {
  const g = withBackend(gpu, () => tidy(build));
  const c = withBackend(cpu, () => tidy(build));
  try {
    for (let k = 0; k < g.length; k++) {
      expect(g[k].shape).toEqual(c[k].shape);
      expectClose(await g[k].data(), await c[k].data(), tol, tol, `${what} (output ${k})`);
    }
  } finally {
    [...g, ...c].forEach((t) => t.dispose());
  }
}

/** Every pair of `vals` as two [n, n] grids: a[i][j] = vals[i], b[i][j] = vals[j]. */
function pairsOf(vals: number[]): { n: number; a: Float32Array; b: Float32Array } {
  const n = vals.length;
  return {
    n,
    a: Float32Array.from({ length: n * n }, (_, i) => vals[Math.floor(i / n)]),
    b: Float32Array.from({ length: n * n }, (_, i) => vals[i % n]),
  };
}

/** Kernels the fusion layer emitted while `f` ran (and its result was read). */
async function kernelsOf(f: () => Promise<void>): Promise<number> {
  await gpu.sync();
  const before = fusion.kernels;
  await f();
  return fusion.kernels - before;
}

describe('fused chains against the CPU backend', () => {
  it('fusion is on unless turned off (init({ fusion: false }) or BACKLIGHT_FUSION=0)', async () => {
    expect(gpu.fusion).not.toBeNull();
    const off = (await init({ backend: 'webgpu', setDefault: false, fusion: false })) as WebGpuBackend;
    expect(off.fusion).toBeNull();
    off.destroy();
  });

  it('a 60-step chain over 6 inputs: right values, a handful of kernels', async () => {
    const r = rng(1);
    const shape = [3, 37];
    const data = Array.from({ length: 6 }, () => randArray(r, sizeOf(shape), 0.5, 1.5));
    const build = () => {
      const xs = data.map((d) => tensor(d, shape));
      let y = xs[0];
      for (let k = 0; k < 60; k++) {
        const x = xs[k % xs.length];
        switch (k % 6) {
          case 0: y = add(y, x); break;
          case 1: y = mul(y, x); break;
          case 2: y = tanh(y); break;
          case 3: y = div(y, add(x, 1)); break;
          case 4: y = maximum(y, sub(x, 1)); break;
          default: y = sigmoid(y);
        }
      }
      return [y];
    };
    const n = await kernelsOf(() => check('60-step chain', build));
    // 70 elementwise primitives (60 steps, 10 inner adds/subs): cut only where a kernel is full.
    expect(n).toBeGreaterThan(0);
    expect(n).toBeLessThanOrEqual(12);
  });

  it('broadcasting: [N,C,H,W] with [C,1,1], [1,C,1,1], a scalar and broadcastTo (expand) folded in', async () => {
    const r = rng(2);
    const x = randArray(r, 2 * 3 * 5 * 7);
    const b = randArray(r, 3);
    const s = randArray(r, 3);
    const w = randArray(r, 7);
    const build = () => {
      const tx = tensor(x, [2, 3, 5, 7]);
      const bias = tensor(b, [3, 1, 1]);
      const scale = tensor(s, [1, 3, 1, 1]);
      const row = broadcastTo(tensor(w, [1, 1, 1, 7]), [2, 3, 5, 7]);
      const y = maximum(add(mul(tx, scale), bias), 0); // affine + ReLU
      return [mul(add(y, row), 0.5), exp(broadcastTo(tensor(b, [3, 1]), [3, 4]))];
    };
    const n = await kernelsOf(() => check('broadcast chain', build));
    expect(n).toBe(2);
  });

  it('large odd shapes: several elements per invocation, many workgroups, merged broadcast axes', async () => {
    const r = rng(11);
    const s = [3, 7, 11, 13, 5]; // 15,015 elements
    const x = randArray(r, sizeOf(s));
    const a = randArray(r, 7 * 13);
    const c = randArray(r, 11 * 1 * 5);
    const build = () => {
      const tx = tensor(x, s);
      const ta = tensor(a, [7, 1, 13, 1]); // axes 1 and 3 of the output
      const tc = tensor(c, [11, 1, 5]); // axes 2 and 4
      return [tanh(add(mul(tx, ta), tc)), where(greater(tx, 0), ta, tc)];
    };
    await check('large odd shapes', build);
  });

  it('mergeAxes merges contiguous and broadcast runs, drops size-1 axes, keeps the rank', () => {
    // [N,C,H,W] + [1,C,1,1]: H and W merge (stride 0 in the bias, contiguous in the output).
    expect(mergeAxes([4, 3, 5, 7], [[0, 1, 0, 0]])).toEqual({ shape: [1, 4, 3, 35], strides: [[0, 0, 1, 0]] });
    // Nothing to merge.
    expect(mergeAxes([2, 3], [[1, 0]])).toEqual({ shape: [2, 3], strides: [[1, 0]] });
    // Size-1 axes vanish; axes merge only where every leaf is contiguous across them: the
    // second leaf (broadcast over axes 0-2) stops 3 and 4 merging, but not 2 and 3 (both 0).
    expect(mergeAxes([2, 1, 3, 4], [[12, 0, 4, 1], [0, 0, 0, 1]])).toEqual({ shape: [1, 1, 6, 4], strides: [[0, 0, 4, 1], [0, 0, 0, 1]] });
  });

  it('a value consumed twice (and x * x) is computed once and read by both consumers', async () => {
    const r = rng(3);
    const x = randArray(r, 41);
    const y = randArray(r, 41);
    const build = () => {
      const tx = tensor(x, [41]);
      const a = exp(mul(tx, tx)); // x * x: one leaf, one inlined chain
      const b = mul(a, tensor(y, [41])); // first consumer inlines a
      const c = add(a, 1); // second consumer: a is emitted, both read it
      return [b, c, sin(a)];
    };
    const n = await kernelsOf(() => check('consumed twice', build));
    expect(n).toBe(4); // a, then b, c and sin(a), each reading a's buffer
  });

  it('a chain interrupted by a read continues from the read value', async () => {
    const r = rng(4);
    const x = randArray(r, 29, 0.1, 2);
    const g = withBackend(gpu, () => {
      const tx = tensor(x, [29]);
      const a = sqrt(add(tx, 1));
      return { tx, a };
    });
    const c = withBackend(cpu, () => sqrt(add(tensor(x, [29]), 1)));
    expectClose(await g.a.data(), await c.data(), TOL, TOL, 'first half');
    const g2 = withBackend(gpu, () => log(mul(g.a, g.tx)));
    const c2 = withBackend(cpu, () => log(mul(c, tensor(x, [29]))));
    expectClose(await g2.data(), await c2.data(), TOL, TOL, 'second half');
    // Reading g.a again reads its buffer, it is not recomputed.
    expect(await kernelsOf(async () => void (await g.a.data()))).toBe(0);
    [g.tx, g.a, g2, c, c2].forEach((t) => t.dispose());
  });

  it('disposing operands and intermediates in the middle of a chain keeps what the chain reads', async () => {
    const r = rng(5);
    const x = randArray(r, 53);
    const y = randArray(r, 53);
    const live = memory(gpu).liveBuffers;
    const run = (b: typeof gpu | typeof cpu) =>
      withBackend(b, () => {
        const tx = tensor(x, [53]);
        const ty = tensor(y, [53]);
        const a = exp(tx);
        const m = mul(a, ty);
        tx.dispose(); // read by the pending exp
        ty.dispose();
        a.dispose(); // inlined in m
        // Scalar temporaries are disposed by the op that made them, before anything runs.
        const m3 = mul(m, 3);
        m.dispose();
        const out = sub(m3, 0.25);
        m3.dispose();
        // Buffers released above must not be handed to new outputs while the chain is pending:
        // make a few now, so a reused buffer would be overwritten before the chain reads it.
        const noise = [0, 1, 2].map((k) => tensor(randArray(rng(10 + k), 53), [53]));
        const keepAlive = add(noise[0], noise[1]);
        noise.forEach((t) => t.dispose());
        return { out, keepAlive };
      });
    const g = run(gpu);
    const c = run(cpu);
    expectClose(await g.out.data(), await c.out.data(), TOL, TOL, 'after disposals');
    expectClose(await g.keepAlive.data(), await c.keepAlive.data(), TOL, TOL, 'other work');
    [g.out, g.keepAlive, c.out, c.keepAlive].forEach((t) => t.dispose());
    await gpu.sync();
    expect(memory(gpu).liveBuffers).toBe(live);
  });

  it('an operand materialised after recording (a second consumer) still fits: the kernel is split', async () => {
    const r = rng(12);
    const d = Array.from({ length: 6 }, () => randArray(r, 19));
    const build = () => {
      const [a, b, c, e, f, g] = d.map((x) => tensor(x, [19]));
      const n = neg(a);
      // n inlined, reading a; the chain also reads a..g: 6 buffers, the most one kernel binds.
      let v = add(add(n, a), b);
      v = add(add(add(v, c), e), add(f, g));
      // A second consumer materialises n: v would now read n's buffer too (7 buffers).
      const w = mul(n, 2);
      return [v, w];
    };
    await check('late materialisation', build);
  });

  it('a chain released before anyone reads it never runs', async () => {
    const x = tensor([1, 2, 3], [3], gpu);
    await gpu.sync();
    const n = await kernelsOf(async () => {
      const a = neg(x);
      const y = exp(a);
      y.dispose();
      a.dispose();
      await gpu.sync();
    });
    expect(n).toBe(0);
    x.dispose();
  });

  it('a reshaped view of a pending chain, and chains feeding reductions and matmul', async () => {
    const r = rng(6);
    const x = randArray(r, 5 * 11);
    const y = randArray(r, 11 * 5);
    const w = randArray(r, 11 * 3);
    const build = () => {
      const a = tanh(tensor(x, [5, 11]));
      const v = reshape(a, [11, 5]); // same storage, another shape: emitted, then read as [11, 5]
      const b = add(v, tensor(y, [11, 5]));
      const s = sum(mul(b, b), [1]); // chain into a reduction
      const m = matmul(sigmoid(tensor(x, [5, 11])), tensor(w, [11, 3])); // chain into matmul
      return [b, s, m, abs(m)];
    };
    await check('views, reductions, matmul', build, 1e-4);
  });

  it('NaN, infinities and signed zeros flow through fused chains as through single ops', async () => {
    const vals = [NaN, Infinity, -Infinity, 0, -0, 1, -1, 2.5, -3.25, 1e-3, 1e3]; // no float32 overflow
    const { n, a, b } = pairsOf(vals);
    const build = () => {
      const ta = tensor(a, [n, n]);
      const tb = tensor(b, [n, n]);
      return [
        maximum(log(abs(ta)), minimum(tb, 0)),
        where(greater(ta, tb), div(ta, tb), pow(ta, tb)),
        where(ta, exp(neg(tb)), sqrt(tb)), // NaN condition counts as true
        mul(add(ta, tb), sub(ta, tb)),
      ];
    };
    await check('special values', build, 1e-5);
  });

  it('random elementwise graphs with broadcasting agree with the CPU backend', async () => {
    const r = rng(7);
    const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)];
    const shapes: Shape[] = [[3, 1, 5], [1, 4, 5], [3, 4, 1], [5], [1], [3, 4, 5], [4, 1]];
    for (let trial = 0; trial < 12; trial++) {
      const leaves = Array.from({ length: 2 + Math.floor(r() * 4) }, () => {
        const shape = pick(shapes);
        return { shape, data: randArray(r, sizeOf(shape), 0.2, 1.2) };
      });
      const plan = Array.from({ length: 4 + Math.floor(r() * 14) }, () => ({ kind: Math.floor(r() * 9), i: r(), j: r(), k: r() }));
      const build = () => {
        const vals: Tensor[] = leaves.map((l) => tensor(l.data, l.shape));
        const at = (u: number) => vals[Math.floor(u * vals.length)];
        for (const p of plan) {
          const x = at(p.i), y = at(p.j), z = at(p.k);
          const ops = [
            () => add(x, y), () => mul(x, y), () => sub(x, y), () => div(x, add(abs(y), 1)),
            () => tanh(x), () => sigmoid(x), () => maximum(x, y),
            () => where(greater(x, y), z, x), () => exp(neg(abs(x))),
          ];
          vals.push(ops[p.kind]());
        }
        return vals.slice(-3);
      };
      await check(`random graph ${trial}`, build);
    }
  });
});

/** The fused kernels `f` dispatched, by whether they ran four elements at a time (vec4). */
async function formsOf(f: () => Promise<void>): Promise<{ vec4: number; scalar: number }> {
  const rt = gpu.rt;
  const dispatch = rt.dispatch.bind(rt);
  const forms = { vec4: 0, scalar: 0 };
  rt.dispatch = (d) => {
    if (d.wgsl.includes('A fused elementwise chain')) forms[d.wgsl.includes('four elements at a time') ? 'vec4' : 'scalar']++;
    dispatch(d);
  };
  try {
    await f();
  } finally {
    rt.dispatch = dispatch;
  }
  return forms;
}

describe('chains four elements at a time (vec4 loads and stores)', () => {
  it('vec4Splat: broadcast innermost -> splat, contiguous innermost -> vec4, otherwise none', () => {
    // [N,C,HW] with a per-channel leaf (stride 0 along HW) and a flat-strided one
    expect(vec4Splat([2, 3, 20], [[0, 1, 0], [60, 20, 1]], 120)).toEqual([true, false]);
    // innermost 6: a group would straddle two rows
    expect(vec4Splat([2, 6], [[0, 1]], 12)).toBeNull();
    // contiguous innermost but an outer stride of 2: a vec4 load would be misaligned
    expect(vec4Splat([3, 4], [[2, 1]], 12)).toBeNull();
    // an innermost stride that is neither 0 nor 1
    expect(vec4Splat([2, 4], [[1, 2]], 8)).toBeNull();
    expect(vec4Splat([8], [], 8)).toEqual([]);
    expect(vec4Splat([2, 4], [[0, 1]], 10)).toBeNull();
  });

  const r = rng(21);
  // [output shape, leaf shapes, the form the host must pick]
  const cases: [Shape, Shape[], 'vec4' | 'scalar', string][] = [
    [[4, 6], [[4, 6], [4, 6]], 'vec4', 'flat leaves'],
    [[2, 3, 4, 5], [[2, 3, 4, 5], [1, 3, 1, 1], [3, 1, 1]], 'vec4', 'per-channel leaves (splat)'],
    [[2, 3, 2, 6], [[2, 3, 2, 6], [1, 1, 2, 6]], 'vec4', 'a leaf broadcast over N and C (aligned vec4)'],
    [[2, 3, 2, 2], [[2, 3, 2, 2], [2, 1, 2, 2]], 'vec4', 'a leaf broadcast over C'],
    [[2, 3, 4, 8], [[2, 3, 4, 8], [2, 3, 4, 1], [1, 3, 1, 8]], 'vec4', 'broadcast along the innermost axis, and a mixed leaf'],
    [[4, 1003], [[4, 1003], [1]], 'vec4', 'many groups: a partial last invocation'],
    [[8, 8], [[8, 1], [1, 8]], 'vec4', 'no full-size leaf: a column splat and a row vec4'],
    [[2, 3, 5, 6], [[2, 3, 5, 6], [1, 1, 1, 6]], 'scalar', 'innermost axis of 6'],
    [[4, 3], [[4, 3], [4, 1]], 'scalar', 'innermost axis of 3'],
    [[3, 5], [[3, 5], [3, 5]], 'scalar', '15 elements'],
  ];
  for (const [out, shapes, want, why] of cases) {
    it(`${JSON.stringify(out)}: ${why} (${want})`, async () => {
      const data = shapes.map((sh) => randArray(r, sizeOf(sh), 0.2, 1.5));
      const build = () => {
        const [x, ...ls] = data.map((d, j) => tensor(d, shapes[j]));
        let y = sigmoid(x);
        for (const [j, l] of ls.entries()) y = j % 2 ? maximum(mul(y, l), sub(l, 1)) : add(div(y, l), tanh(l));
        return [where(greater(y, 1), y, neg(y))];
      };
      const forms = await formsOf(() => check(why, build));
      // y is read twice by the last step, so it runs as a kernel of its own, and the last step
      // (flat leaves only) may run four at a time whatever the leaves were.
      expect(forms[want]).toBeGreaterThan(0);
      if (want === 'vec4') expect(forms.scalar).toBe(0);
    });
  }

  it('each form compiles once: new shapes reuse it, the other form is a pipeline of its own', async () => {
    const r = rng(22);
    const chain = (shape: Shape, bShape: Shape) => {
      const x = randArray(r, sizeOf(shape));
      const b = randArray(r, sizeOf(bShape));
      return formsOf(() => check(`chain ${shape} + ${bShape}`, () => [tanh(add(mul(tensor(x, shape), tensor(b, bShape)), 1))]));
    };
    // a per-row leaf, four at a time (splat), then scalar (odd rows)
    expect(await chain([4, 8], [4, 1])).toEqual({ vec4: 1, scalar: 0 });
    let compiled = gpu.rt.pipelineCount;
    expect(await chain([12, 16], [12, 1])).toEqual({ vec4: 1, scalar: 0 });
    expect(gpu.rt.pipelineCount).toBe(compiled);
    expect(await chain([3, 5], [3, 1])).toEqual({ vec4: 0, scalar: 1 });
    expect(gpu.rt.pipelineCount).toBe(compiled + 1);
    compiled = gpu.rt.pipelineCount;
    expect(await chain([5, 3], [5, 1])).toEqual({ vec4: 0, scalar: 1 });
    expect(await chain([4, 8], [4, 1])).toEqual({ vec4: 1, scalar: 0 });
    expect(gpu.rt.pipelineCount).toBe(compiled);
    // the same structure with the leaf read as an aligned vec4 (a row): another text
    expect(await chain([4, 8], [1, 8])).toEqual({ vec4: 1, scalar: 0 });
    expect(gpu.rt.pipelineCount).toBe(compiled + 1);
  });

  it('NaN, infinities and signed zeros four at a time', async () => {
    const vals = [NaN, Infinity, -Infinity, 0, -0, 1, -1, 2.5, -3.25, 1e-3, 1e3, 7]; // 12: groups of 4
    const { n, a, b } = pairsOf(vals);
    const build = () => {
      const ta = tensor(a, [n, n]);
      const tb = tensor(b, [n, n]);
      const col = tensor(vals, [n, 1]);
      return [
        maximum(log(abs(ta)), minimum(tb, 0)),
        where(greater(ta, tb), div(ta, tb), pow(ta, tb)),
        where(ta, exp(neg(tb)), sqrt(tb)),
        mul(add(ta, col), sub(col, tb)),
      ];
    };
    const forms = await formsOf(() => check('special values, vec4', build, 1e-5));
    expect(forms).toEqual({ vec4: 4, scalar: 0 });
  });
});

describe('fusion bookkeeping', () => {
  it('the same chain on new shapes compiles no new pipeline', async () => {
    const r = rng(8);
    const chain = (n: number, m: number) => {
      const x = randArray(r, n * m);
      const b = randArray(r, m);
      return check(`chain ${n}x${m}`, () => [sigmoid(add(mul(tensor(x, [n, m]), tensor(b, [m])), 1))]);
    };
    await chain(7, 3);
    const compiled = gpu.rt.pipelineCount;
    for (const [n, m] of [[13, 5], [2, 9], [31, 2]]) await chain(n, m);
    expect(gpu.rt.pipelineCount).toBe(compiled);
  });

  it('nothing is left pending or live after many chains in tidy', async () => {
    await gpu.sync();
    const start = memory(gpu);
    const r = rng(9);
    const x = randArray(r, 67);
    for (let k = 0; k < 300; k++) {
      const y = withBackend(gpu, () =>
        tidy(() => {
          const t = tensor(x, [67]);
          const a = mul(exp(neg(t)), 2);
          const b = add(a, t); // a consumed twice on some iterations
          return k % 3 === 0 ? sum(mul(a, b), [0]) : tanh(b);
        }),
      );
      if (k % 50 === 0) await y.data();
      y.dispose();
    }
    await gpu.sync();
    expect(fusion.pendingCount).toBe(0);
    const end = memory(gpu);
    expect(end.liveBuffers).toBe(start.liveBuffers);
    expect(end.liveBytes).toBe(start.liveBytes);
  });
});

// Layers: forward and backward on WebGPU against the float64 CPU backend, gradients against
// central finite differences (CPU, float64), BatchNorm2d's training and inference closed forms,
// Dropout's seeding and MC switch, the residual add, and activations reached by layer path.
import { afterAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import type { Backend, Tensor } from '../../engine/index.ts';
import {
  AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, Dropout, Flatten, GlobalAvgPool, Identity, LeakyReLU, Linear,
  MaxPool2d, Module, ReLU, Residual, Sequential, Sigmoid, Softmax, Softplus, Tanh, setInitSeed,
} from '../../models/index.ts';
import { Standardize } from '../../models/zoo/architectures.ts';
import { expectClose, randArray, rng, sizeOf } from '../helpers.ts';

const gpu = await bl.init({ backend: 'webgpu', setDefault: false });
const cpu = await bl.init({ backend: 'cpu' });

afterAll(() => {
  gpu.destroy();
  cpu.destroy();
});

/** Host data for a tensor of `shape` (float32-representable, so both backends see the same values). */
const host = (shape: number[], seed: number, lo = -1, hi = 1) => randArray(rng(seed), sizeOf(shape), lo, hi);

/** The same layer on both backends, with identical (float32) parameters and buffers. */
async function twin<M extends Module>(make: () => M): Promise<{ c: M; g: M }> {
  setInitSeed(7);
  const c = bl.withBackend(cpu, make);
  const g = bl.withBackend(gpu, make);
  for (const [name, t] of c.stateDict()) {
    const v = Float32Array.from(await t.data());
    c.setTensor(name, bl.tensor(v, [...t.shape], cpu));
    g.setTensor(name, bl.tensor(v, [...t.shape], gpu));
  }
  return { c, g };
}

/** L = sum(r * layer(x)): its value and gradients with respect to x and every parameter. */
function lossAndGrads(layer: Module, x: Tensor, r: Float32Array): { y: Tensor; grads: Tensor[] } {
  return bl.tidy(() => {
    const params = layer.parameters();
    let y: Tensor | null = null;
    const [, grads] = bl.valueAndGrad((xi: Tensor, ..._ps: Tensor[]) => {
      y = bl.keep(layer.call(xi));
      return bl.sum(bl.mul(y, bl.tensor(r, [...y.shape], xi.backend)));
    })(x, ...params);
    return { y: y!, grads };
  });
}

interface LayerCase {
  name: string;
  make: () => Module;
  input: number[];
  /** Train mode (BatchNorm batch statistics). */
  train?: boolean;
  /** Input range (e.g. positive for Standardize). */
  range?: [number, number];
  /** Skip the finite-difference check (a new dropout mask per call). */
  noFd?: boolean;
}

const cases: LayerCase[] = [
  { name: 'Conv2d 3x3 pad 1', make: () => new Conv2d(3, 5, 3, { padding: 1 }), input: [2, 3, 7, 5] },
  { name: 'Conv2d stride 2, no bias', make: () => new Conv2d(2, 3, [3, 2], { stride: 2, bias: false }), input: [3, 2, 9, 7] },
  { name: 'Conv2d grouped', make: () => new Conv2d(4, 6, 3, { groups: 2, padding: 'same' }), input: [1, 4, 5, 6] },
  { name: 'Linear', make: () => new Linear(7, 5), input: [3, 7] },
  { name: 'MaxPool2d', make: () => new MaxPool2d({ kernel: 2, stride: 2 }), input: [2, 3, 6, 7] },
  { name: 'AvgPool2d', make: () => new AvgPool2d({ kernel: 3, stride: 2, padding: 1 }), input: [2, 3, 7, 5] },
  { name: 'AdaptiveAvgPool2d', make: () => new AdaptiveAvgPool2d([2, 3]), input: [2, 3, 6, 9] },
  { name: 'GlobalAvgPool', make: () => new GlobalAvgPool(), input: [2, 5, 3, 7] },
  { name: 'BatchNorm2d eval', make: () => bnWithStats(3), input: [2, 3, 5, 3] },
  { name: 'BatchNorm2d train', make: () => bnWithStats(3), input: [3, 3, 5, 3], train: true },
  { name: 'Dropout train (seeded: the same mask on both backends)', make: () => new Dropout(0.4, 17), input: [3, 40], train: true, noFd: true },
  { name: 'ReLU', make: () => new ReLU(), input: [3, 11] },
  { name: 'LeakyReLU', make: () => new LeakyReLU(0.1), input: [3, 11] },
  { name: 'Sigmoid', make: () => new Sigmoid(), input: [3, 11] },
  { name: 'Tanh', make: () => new Tanh(), input: [3, 11] },
  { name: 'Softplus', make: () => new Softplus(), input: [3, 11] },
  { name: 'Softmax', make: () => new Softmax(-1), input: [3, 11] },
  { name: 'Identity', make: () => new Identity(), input: [3, 5] },
  { name: 'Flatten', make: () => new Flatten(), input: [2, 3, 2, 5] },
  { name: 'Standardize', make: () => standardizeLayer(), input: [4, 5], range: [0, 10] },
  {
    name: 'Residual (conv block + identity)',
    make: () => new Residual(new Sequential(new Conv2d(3, 3, 3, { padding: 1 }), new ReLU(), new Conv2d(3, 3, 3, { padding: 1 }))),
    input: [2, 3, 5, 5],
  },
  {
    name: 'Residual with projection shortcut',
    make: () => new Residual(new Sequential(new Conv2d(2, 4, 3, { padding: 1, stride: 2 }), new BatchNorm2d(4)), new Conv2d(2, 4, 1, { stride: 2 })),
    input: [2, 2, 6, 5],
  },
];

/** A BatchNorm2d with non-trivial weight, bias and running statistics. */
function bnWithStats(c: number): BatchNorm2d {
  const bn = new BatchNorm2d(c, { momentum: 0.2 });
  bn.setTensor('weight', bl.tensor(host([c], 91, 0.5, 1.5), [c]));
  bn.setTensor('bias', bl.tensor(host([c], 92), [c]));
  bn.setTensor('running_mean', bl.tensor(host([c], 93), [c]));
  bn.setTensor('running_var', bl.tensor(host([c], 94, 0.5, 2), [c]));
  return bn;
}

function standardizeLayer(): Standardize {
  const s = new Standardize(5);
  s.setStats(host([5], 95, 2, 8), host([5], 96, 0.5, 3));
  return s;
}

describe('layers on WebGPU match the float64 CPU backend (forward and backward)', () => {
  cases.forEach((lc, k) => {
    it(lc.name, async () => {
      const { c, g } = await twin(lc.make);
      const xv = host(lc.input, 100 + k, ...(lc.range ?? [-1, 1]));
      // The cotangent r needs the output shape: run once (in eval mode, which updates nothing) to get it.
      const yShape = bl.withBackend(cpu, () => bl.tidy(() => [...c.eval().call(bl.tensor(xv, lc.input)).shape]));
      c.train(!!lc.train);
      g.train(!!lc.train);
      const r = host(yShape, 200 + k, 0.5, 1.5);
      const rc = lossAndGrads(c, bl.tensor(xv, lc.input, cpu), r);
      const rg = lossAndGrads(g, bl.tensor(xv, lc.input, gpu), r);
      expect(rg.y.shape).toEqual(rc.y.shape);
      expectClose(await rg.y.data(), await rc.y.data(), 1e-4, 1e-4, `${lc.name} forward`);
      const names = ['input', ...c.namedParameters().map(([n]) => n)];
      for (let i = 0; i < rc.grads.length; i++) {
        expectClose(await rg.grads[i].data(), await rc.grads[i].data(), 1e-4, 1e-4, `${lc.name} d/d ${names[i]}`);
      }
      if (lc.train) {
        // Running statistics were updated the same way on both.
        for (const [n, b] of c.namedBuffers()) {
          const gb = g.namedBuffers().find(([m]) => m === n)![1];
          expectClose(await gb.data(), await b.data(), 1e-5, 1e-5, `${lc.name} ${n}`);
        }
      }
    });
  });
});

describe('layer gradients vs central finite differences (float64 CPU)', () => {
  cases.forEach((lc, k) => {
    if (lc.noFd) return;
    it(lc.name, async () => {
      setInitSeed(11);
      const layer = bl.withBackend(cpu, lc.make).train(!!lc.train);
      const xv = Array.from(host(lc.input, 300 + k, ...(lc.range ?? [-1, 1])));
      const yShape = bl.tidy(() => [...layer.call(bl.tensor(xv, lc.input)).shape]);
      const r = host(yShape, 400 + k, 0.5, 1.5);
      const { grads } = lossAndGrads(layer, bl.tensor(xv, lc.input), r);
      const loss = (x: number[]) => bl.tidy(() => cpu.readSync!(bl.sum(bl.mul(layer.call(bl.tensor(x, lc.input)), bl.tensor(r, yShape))).storageFor('test'), 1)[0]);
      const h = 1e-6;
      const pick = rng(500 + k);
      // d/dx: up to 24 random elements
      const gx = await grads[0].data();
      for (let t = 0; t < Math.min(24, xv.length); t++) {
        const i = Math.floor(pick() * xv.length);
        const p = xv.slice(), m = xv.slice();
        p[i] += h;
        m[i] -= h;
        const fd = (loss(p) - loss(m)) / (2 * h);
        expect(Math.abs(gx[i] - fd), `${lc.name} d/dx[${i}]: ${gx[i]} vs ${fd}`).toBeLessThan(1e-6 * Math.max(1, Math.abs(fd)));
      }
      // d/dparam: up to 8 random elements of each parameter
      const params = layer.namedParameters();
      for (let j = 0; j < params.length; j++) {
        const [name, t0] = params[j];
        const base = Array.from(await t0.data());
        const gp = await grads[j + 1].data();
        const at = (v: number[]) => {
          layer.setTensor(name, bl.tensor(v, [...t0.shape]));
          return loss(xv);
        };
        for (let t = 0; t < Math.min(8, base.length); t++) {
          const i = Math.floor(pick() * base.length);
          const p = base.slice(), m = base.slice();
          p[i] += h;
          m[i] -= h;
          const fd = (at(p) - at(m)) / (2 * h);
          expect(Math.abs(gp[i] - fd), `${lc.name} d/d${name}[${i}]: ${gp[i]} vs ${fd}`).toBeLessThan(1e-6 * Math.max(1, Math.abs(fd)));
        }
        layer.setTensor(name, bl.tensor(base, [...t0.shape]));
      }
    });
  });
});

describe('BatchNorm2d', () => {
  const [N, C, H, W] = [3, 2, 4, 3];
  const x = host([N, C, H, W], 600);
  const gamma = [1.5, 0.7], beta = [0.2, -0.3], rm0 = [0.1, -0.2], rv0 = [1.3, 0.6];
  const make = (momentum: number) => {
    const bn = new BatchNorm2d(C, { momentum, eps: 1e-3 });
    bn.setTensor('weight', bl.tensor(gamma, [C]));
    bn.setTensor('bias', bl.tensor(beta, [C]));
    bn.setTensor('running_mean', bl.tensor(rm0, [C]));
    bn.setTensor('running_var', bl.tensor(rv0, [C]));
    return bn;
  };
  /** Per-channel mean, biased and unbiased variance, by hand. */
  const stats = (c: number) => {
    const v: number[] = [];
    for (let n = 0; n < N; n++) for (let i = 0; i < H * W; i++) v.push(x[(n * C + c) * H * W + i]);
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    const ss = v.reduce((a, b) => a + (b - mean) ** 2, 0);
    return { mean, biased: ss / v.length, unbiased: ss / (v.length - 1) };
  };

  it('train mode: normalises by the batch statistics and updates the running ones (unbiased variance, momentum)', async () => {
    const bn = make(0.3).train();
    const y = await bl.tidy(() => bn.call(bl.tensor(x, [N, C, H, W]))).data();
    const expected = new Float64Array(x.length);
    for (let n = 0; n < N; n++) {
      for (let c = 0; c < C; c++) {
        const s = stats(c);
        for (let i = 0; i < H * W; i++) {
          const k = (n * C + c) * H * W + i;
          expected[k] = ((x[k] - s.mean) / Math.sqrt(s.biased + 1e-3)) * gamma[c] + beta[c];
        }
      }
    }
    expectClose(y, expected, 1e-12, 1e-12, 'train-mode output');
    const rm = await bn.buffer('running_mean').data(), rv = await bn.buffer('running_var').data();
    for (let c = 0; c < C; c++) {
      const s = stats(c);
      expect(rm[c]).toBeCloseTo(0.7 * rm0[c] + 0.3 * s.mean, 12);
      expect(rv[c]).toBeCloseTo(0.7 * rv0[c] + 0.3 * s.unbiased, 12);
    }
    // A second step compounds: r2 = (1 - m) r1 + m * stat.
    bl.tidy(() => bn.call(bl.tensor(x, [N, C, H, W])));
    const rm2 = await bn.buffer('running_mean').data();
    for (let c = 0; c < C; c++) expect(rm2[c]).toBeCloseTo(0.7 * (0.7 * rm0[c] + 0.3 * stats(c).mean) + 0.3 * stats(c).mean, 12);
  });

  it('eval mode: the closed form with the running statistics, which stay put', async () => {
    const bn = make(0.1).eval();
    const y = await bl.tidy(() => bn.call(bl.tensor(x, [N, C, H, W]))).data();
    const expected = Array.from(x, (v, k) => {
      const c = Math.floor(k / (H * W)) % C;
      return ((v - rm0[c]) / Math.sqrt(rv0[c] + 1e-3)) * gamma[c] + beta[c];
    });
    expectClose(y, expected, 1e-12, 1e-12, 'eval-mode output');
    expect(Array.from(await bn.buffer('running_mean').data())).toEqual(rm0);
    expect(Array.from(await bn.buffer('running_var').data())).toEqual(rv0);
  });
});

describe('Dropout', () => {
  const shape = [4, 50];
  const x = host(shape, 700, 0.5, 1.5);

  it('is the identity in eval mode', async () => {
    const d = new Dropout(0.5, 3).eval();
    expect(Array.from(await bl.tidy(() => d.call(bl.tensor(x, shape))).data())).toEqual(Array.from(x));
  });

  it('training: zeros about p of the values, scales the rest by 1/(1-p), the same masks for the same seed', async () => {
    const run = async (seed: number) => {
      const d = new Dropout(0.3, seed).train();
      const a = await bl.tidy(() => d.call(bl.tensor(x, shape))).data();
      const b = await bl.tidy(() => d.call(bl.tensor(x, shape))).data();
      return [Array.from(a), Array.from(b)];
    };
    const [a1, b1] = await run(5);
    const [a2, b2] = await run(5);
    const [a3] = await run(6);
    expect(a2).toEqual(a1);
    expect(b2).toEqual(b1);
    expect(b1).not.toEqual(a1); // a new mask per call
    expect(a3).not.toEqual(a1); // a new mask per seed
    let zeros = 0;
    a1.forEach((v, i) => {
      if (v === 0) zeros++;
      else expect(v).toBeCloseTo(x[i] / 0.7, 12);
    });
    expect(zeros / a1.length).toBeGreaterThan(0.2);
    expect(zeros / a1.length).toBeLessThan(0.4);
  });

  it('the gradient is the mask scaled by 1/(1-p)', async () => {
    const d = new Dropout(0.5, 9).train();
    const xt = bl.tensor(x, shape);
    let y: Tensor | null = null;
    const g = await bl.grad((xi: Tensor) => {
      y = bl.keep(d.call(xi));
      return bl.sum(y);
    })(xt).data();
    const yv = await y!.data();
    for (let i = 0; i < x.length; i++) expect(g[i]).toBeCloseTo(yv[i] === 0 ? 0 : 2, 12);
  });

  it('MC dropout: active in eval mode when mcDropout is set', async () => {
    const d = new Dropout(0.5, 11).eval();
    d.mcDropout = true;
    const a = Array.from(await bl.tidy(() => d.call(bl.tensor(x, shape))).data());
    const b = Array.from(await bl.tidy(() => d.call(bl.tensor(x, shape))).data());
    expect(a.some((v) => v === 0)).toBe(true);
    expect(b).not.toEqual(a); // samples differ between passes
    d.mcDropout = false;
    expect(Array.from(await bl.tidy(() => d.call(bl.tensor(x, shape))).data())).toEqual(Array.from(x));
  });
});

describe('residual add and layer paths', () => {
  it('Residual: block(x) + x, and its gradient is the block vjp plus the cotangent', async () => {
    setInitSeed(3);
    const block = new Sequential(new Conv2d(2, 2, 3, { padding: 1 }), new Tanh());
    const res = new Residual(block);
    const shape = [1, 2, 4, 5];
    const x = bl.tensor(host(shape, 800), shape);
    const r = host(shape, 801);
    const yr = await bl.tidy(() => res.call(x)).data();
    const yb = await bl.tidy(() => block.call(x)).data();
    const xv = await x.data();
    expectClose(yr, Array.from(yb, (v, i) => v + xv[i]), 1e-12, 1e-12, 'residual output');
    const gRes = await bl.grad((xi: Tensor) => bl.sum(bl.mul(res.call(xi), bl.tensor(r, shape))))(x).data();
    const gBlock = await bl.grad((xi: Tensor) => bl.sum(bl.mul(block.call(xi), bl.tensor(r, shape))))(x).data();
    expectClose(gRes, Array.from(gBlock, (v, i) => v + r[i]), 1e-12, 1e-12, 'residual gradient');
  });

  it('named Sequentials give layers paths like features.3, and valueAndGradAt reaches them', async () => {
    setInitSeed(4);
    const model = new Sequential(
      ['features', new Sequential(new Conv2d(1, 3, 3, { padding: 1 }), new ReLU(), new MaxPool2d({ kernel: 2, stride: 2 }), new Conv2d(3, 4, 3, { padding: 1 }), new ReLU())],
      ['pool', new GlobalAvgPool()],
      ['classifier', new Sequential(new Dropout(0.5), new Linear(4, 3))],
    ).eval();
    const paths = model.namedModules().map(([p]) => p);
    expect(paths).toEqual(['', 'features', 'features.0', 'features.1', 'features.2', 'features.3', 'features.4', 'pool', 'classifier', 'classifier.0', 'classifier.1']);
    expect(model.namedParameters().map(([n]) => n)).toEqual([
      'features.0.weight', 'features.0.bias', 'features.3.weight', 'features.3.bias', 'classifier.1.weight', 'classifier.1.bias',
    ]);
    const shape = [2, 1, 6, 6];
    const x = bl.tensor(host(shape, 900), shape);
    const target = 1;
    const score = () => bl.sum(bl.slice(model.call(x), [0, target], [2, 1]));
    const { activations, grads, value } = bl.valueAndGradAt(score, ['features.3', 'pool']);
    expect(activations['features.3'].shape).toEqual([2, 4, 3, 3]);
    expect(grads['features.3'].shape).toEqual([2, 4, 3, 3]);
    // The activation is what running the first four feature layers gives ...
    const head = new Sequential(...(model.module('features') as Sequential).layers.slice(0, 4));
    expectClose(await activations['features.3'].data(), await bl.tidy(() => head.forward(x)).data(), 1e-12, 1e-12, 'features.3 activation');
    // ... and its gradient is that of the rest of the network at that activation.
    const tail = (a: Tensor) => {
      const f = model.module('features') as Sequential;
      const h = f.layers[4].forward(a);
      const out = (model.module('classifier') as Sequential).forward(bl.globalAvgPool(h));
      return bl.sum(bl.slice(out, [0, target], [2, 1]));
    };
    const gTail = await bl.grad(tail)(activations['features.3']).data();
    expectClose(await grads['features.3'].data(), gTail, 1e-12, 1e-12, 'd score / d features.3');
    // pool's gradient is the classifier's weight row for the target (the CAM weights).
    const w = await model.module('classifier.1').param('weight').data();
    const gp = await grads.pool.data();
    for (let n = 0; n < 2; n++) for (let c = 0; c < 4; c++) expect(gp[n * 4 + c]).toBeCloseTo(w[target * 4 + c], 12);
    expect(await value.item()).toBeCloseTo(await bl.tidy(score).item(), 12);
  });
});

// Explainers against their defining properties, with truths computed independently in the test
// (closed forms, finite differences, plain vjps of the model split by hand).
import { beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import type { Backend, Tensor } from '../../engine/index.ts';
import * as ex from '../../explain/index.ts';
import { Conv2d, GlobalAvgPool, Linear, MaxPool2d, ReLU, Sequential, Softplus, Tanh, setInitSeed } from '../../models/index.ts';
import { expectClose } from '../helpers.ts';
import { randArray } from '../engine/grad-cases.ts';

let cpu: Backend;
beforeAll(async () => {
  cpu = await bl.init({ backend: 'cpu' });
});

const read = async (t: Tensor) => Float64Array.from(await t.data());

function smallCnn(smooth = false) {
  setInitSeed(7);
  const act = () => (smooth ? new Softplus() : new ReLU());
  return new Sequential(
    ['features', new Sequential(new Conv2d(2, 4, 3, { padding: 1 }), act(), new MaxPool2d({ kernel: 2 }), new Conv2d(4, 5, 3, { padding: 1 }), act())],
    ['pool', new GlobalAvgPool()],
    ['fc', new Linear(5, 3)],
  );
}
const input = () => bl.tensor(randArray(2 * 2 * 6 * 6, 99), [2, 2, 6, 6]);

describe('Integrated Gradients', () => {
  it('completeness: |delta| shrinks with steps; Gauss-Legendre needs fewer steps than Riemann', async () => {
    const m = smallCnn(true);
    const x = input();
    const deltaOf = async (method: ex.IntegrationMethod, steps: number) => {
      const r = await ex.integratedGradients(m, x, { target: [0, 2], steps, method, returnDelta: true });
      return Math.max(...Array.from(await r.delta.data(), Math.abs));
    };
    const l4 = await deltaOf('riemann_left', 4), l16 = await deltaOf('riemann_left', 16), l64 = await deltaOf('riemann_left', 64);
    expect(l16).toBeLessThan(l4);
    expect(l64).toBeLessThan(l16);
    const gl8 = await deltaOf('gausslegendre', 8);
    expect(gl8).toBeLessThan(l64 / 100);
    const t16 = await deltaOf('riemann_trapezoid', 16);
    expect(t16).toBeLessThan(l16);
    // The delta is what it claims: sum(attr) - (F(x) - F(0)), with F computed independently.
    const r = await ex.integratedGradients(m, x, { target: [0, 2], steps: 16, returnDelta: true });
    const out = await read(m.call(x));
    const out0 = await read(m.call(bl.zeros(x.shape)));
    const a = await read(r.attributions);
    const sums = [0, 1].map((i) => a.slice(i * 72, (i + 1) * 72).reduce((s, v) => s + v, 0));
    const d = await read(r.delta);
    expect(d[0]).toBeCloseTo(sums[0] - (out[0] - out0[0]), 10);
    expect(d[1]).toBeCloseTo(sums[1] - (out[5] - out0[5]), 10);
  });

  it('equals gradient x input for a linear model (zero baseline)', async () => {
    const w = bl.tensor(randArray(3 * 7, 5), [3, 7]);
    const f = (x: Tensor) => bl.matmul(x, bl.transpose(w));
    const x = bl.tensor(randArray(4 * 7, 6), [4, 7]);
    const ig = await ex.integratedGradients(f, x, { target: [0, 1, 2, 1], steps: 3, method: 'riemann_left' });
    const gxi = await ex.inputXGradient(f, x, { target: [0, 1, 2, 1] });
    expectClose(await ig.data(), await gxi.data(), 1e-12);
  });

  it('internalBatchSize chunks give the same result; custom baselines; predicted target', async () => {
    const m = smallCnn(true);
    const x = input();
    const base = bl.tensor(randArray(2 * 6 * 6, 17), [2, 6, 6]);
    const a = await ex.integratedGradients(m, x, { target: 'predicted', baseline: base, steps: 10 });
    const b = await ex.integratedGradients(m, x, { target: 'predicted', baseline: base, steps: 10, internalBatchSize: 3 });
    expectClose(await a.data(), await b.data(), 1e-12);
    const pred = Array.from(await bl.argmax(m.call(x), 1).data());
    const c = await ex.integratedGradients(m, x, { target: pred, baseline: base, steps: 10 });
    expectClose(await a.data(), await c.data(), 1e-12);
  });
});

describe('gradient methods', () => {
  it('saliency is |d score / d x| against finite differences', async () => {
    const m = smallCnn(true);
    const x0 = randArray(1 * 2 * 6 * 6, 3);
    const s = await read(await ex.saliency(m, bl.tensor(x0, [1, 2, 6, 6]), { target: 1 }));
    const score = (v: number[]) => m.call(bl.tensor(v, [1, 2, 6, 6]));
    const h = 1e-6;
    for (const k of [0, 13, 40, 71]) {
      const p = x0.slice(), q = x0.slice();
      p[k] += h;
      q[k] -= h;
      const fd = ((await read(score(p)))[1] - (await read(score(q)))[1]) / (2 * h);
      expect(s[k]).toBeCloseTo(Math.abs(fd), 6);
    }
  });

  it('a target function and per-item targets select the right outputs', async () => {
    const m = smallCnn(true);
    const x = input();
    const a = await ex.saliency(m, x, { target: [2, 0], abs: false });
    const b = await ex.saliency(m, x, { target: (out: Tensor) => bl.sum(bl.mul(out, bl.tensor([[0, 0, 1], [1, 0, 0]])), 1), abs: false });
    expectClose(await a.data(), await b.data(), 1e-12);
  });

  it('guided backprop and deconvnet equal their definitions on a conv net', async () => {
    const m = smallCnn(false);
    const x = input();
    const gb = await read(await ex.guidedBackprop(m, x, { target: [1, 2] }));
    const dc = await read(await ex.deconvnet(m, x, { target: [1, 2] }));
    // By hand: guided = gradient where every relu's cotangent is masked by (input > 0)(cotangent > 0).
    const byHand = (mask: (ct: Tensor, z: Tensor) => Tensor) =>
      bl.withRules({ relu: (ct, { inputs: [z] }) => [mask(ct, z)] }, () =>
        bl.grad((t: Tensor) => bl.sum(bl.mul(m.call(t), bl.tensor([[0, 1, 0], [0, 0, 1]]))))(x),
      );
    const gbHand = await read(byHand((ct, z) => bl.where(bl.greater(ct, 0), bl.where(bl.greater(z, 0), ct, 0), 0)));
    const dcHand = await read(byHand((ct) => bl.where(bl.greater(ct, 0), ct, 0)));
    expectClose(gb, gbHand, 1e-12);
    expectClose(dc, dcHand, 1e-12);
  });

  it('noise tunnel: stdev 0 SmoothGrad equals saliency; VarGrad >= 0; seeded', async () => {
    const m = smallCnn(true);
    const x = input();
    const s = await ex.saliency(m, x, { target: 0 });
    const sg = await ex.smoothGrad(m, x, { target: 0, samples: 3, stdev: 0 });
    expectClose(await sg.data(), await s.data(), 1e-12);
    const vg = await ex.noiseTunnel<ex.SaliencyOptions>(ex.saliency)(m, x, { target: 0, samples: 4, stdev: 0.3, type: 'vargrad', seed: 5, abs: false });
    expect(Array.from(await vg.data()).every((v) => v >= -1e-12)).toBe(true);
    const a = await ex.smoothGrad(m, x, { target: 'predicted', samples: 5, stdev: 0.2, seed: 9, samplesBatchSize: 2 });
    const b = await ex.smoothGrad(m, x, { target: 'predicted', samples: 5, stdev: 0.2, seed: 9 });
    expectClose(await a.data(), await b.data(), 1e-12);
    // The noise and the seed matter: another seed, and no noise, give other maps.
    const c = await read(await ex.smoothGrad(m, x, { target: 'predicted', samples: 5, stdev: 0.2, seed: 10 }));
    const plain = await read(await ex.saliency(m, x, { target: 'predicted' }));
    const av = await read(a);
    expect(Math.max(...av.map((v, k) => Math.abs(v - c[k])))).toBeGreaterThan(1e-6);
    expect(Math.max(...av.map((v, k) => Math.abs(v - plain[k])))).toBeGreaterThan(1e-6);
    expect(Math.max(...(await read(vg)))).toBeGreaterThan(0);
  });
});

describe('DeepLIFT and SHAP-style methods', () => {
  it('DeepLIFT equals its closed form on a relu/tanh MLP and sums to the output difference', async () => {
    const W1 = [[0.7, -0.3, 0.5], [-0.6, 0.9, 0.2]], b1 = [0.1, -0.2];
    const W2 = [[1.3, -0.8]], b2 = [0.05];
    const f = (x: Tensor) => bl.add(bl.matmul(bl.tanh(bl.relu(bl.add(bl.matmul(x, bl.transpose(bl.tensor(W1))), bl.tensor(b1)))), bl.transpose(bl.tensor(W2))), bl.tensor(b2));
    const xs = [0.9, -0.4, 0.6], rs = [0.1, 0.2, -0.3];
    const attr = await read(await ex.deepLift(f, bl.tensor([xs]), { baseline: bl.tensor([rs]), target: 0 }));
    // Closed form: multipliers chain: m_relu = dRelu/dz (secant), m_tanh (secant), linear weights.
    const z = (v: number[]) => W1.map((row, j) => row.reduce((s, w, i) => s + w * v[i], b1[j]));
    const zx = z(xs), zr = z(rs);
    const rx = zx.map((v) => Math.max(v, 0)), rr = zr.map((v) => Math.max(v, 0));
    const sec = (fx: number, fr: number, dx: number, d0: number) => (Math.abs(dx) > 1e-10 ? (fx - fr) / dx : d0);
    const mRelu = zx.map((v, j) => sec(rx[j], rr[j], v - zr[j], v > 0 ? 1 : 0));
    const mTanh = rx.map((v, j) => sec(Math.tanh(v), Math.tanh(rr[j]), v - rr[j], 1 - Math.tanh(v) ** 2));
    const expected = xs.map((x, i) => (x - rs[i]) * W2[0].reduce((s, w2, j) => s + w2 * mTanh[j] * mRelu[j] * W1[j][i], 0));
    expectClose(attr, expected, 1e-12);
    const fo = (v: number[]) => W2[0].reduce((s, w, j) => s + w * Math.tanh(Math.max(z(v)[j], 0)), b2[0]);
    expect(attr.reduce((a, b) => a + b, 0)).toBeCloseTo(fo(xs) - fo(rs), 12);
  });

  it('DeepLIFT-SHAP with one reference equals DeepLIFT; with several, their mean', async () => {
    const m = smallCnn(false);
    const x = input();
    const refs = bl.tensor(randArray(3 * 2 * 6 * 6, 44), [3, 2, 6, 6]);
    const shap = await read(await ex.deepLiftShap(m, x, { baselines: refs, target: [0, 1] }));
    const each = await Promise.all([0, 1, 2].map(async (j) => read(await ex.deepLift(m, x, { baseline: bl.slice(refs, [j], [1]), target: [0, 1] }))));
    expectClose(shap, shap.map((_, k) => (each[0][k] + each[1][k] + each[2][k]) / 3), 1e-12);
  });

  it('GradientSHAP is exact for a linear model: (x - E[b]) . w in expectation, per draw (x - b) w', async () => {
    const w = randArray(5, 8);
    const f = (x: Tensor) => bl.matmul(x, bl.tensor(w, [5, 1]));
    const x = bl.tensor([randArray(5, 9)]);
    const base = bl.tensor(randArray(5, 10), [1, 5]);
    const a = await read(await ex.gradientShap(f, x, { baselines: base, samples: 7, seed: 3, target: 0 }));
    const xv = await read(x), bv = await read(base);
    expectClose(a, w.map((wi, i) => wi * (xv[i] - bv[i])), 1e-12);
  });
});

describe('CAM family', () => {
  /** Activation at features and d score / d activation, from an explicit split of the model. */
  async function splitByHand(m: Sequential, x: Tensor, target: number[]) {
    const [features, pool, fc] = m.layers;
    const A = features.forward(x);
    const r = bl.vjp((a) => fc.forward(pool.forward(a)), A);
    const onehot = bl.tensor(target.map((t) => [0, 1, 2].map((c) => (c === t ? 1 : 0))));
    const G = r.vjp(onehot)[0];
    return { A: await read(A), G: await read(G), shape: A.shape };
  }

  it('Grad-CAM = relu(sum_k mean(G_k) A_k), computed independently', async () => {
    const m = smallCnn(true);
    const x = input();
    const got = await read(await ex.gradCam(m, x, { layer: 'features', target: [2, 1] }));
    const { A, G, shape } = await splitByHand(m, x, [2, 1]);
    const [n, C, h, w] = shape;
    const expected: number[] = [];
    for (let i = 0; i < n; i++) {
      const wk = Array.from({ length: C }, (_, k) => {
        let s = 0;
        for (let p = 0; p < h * w; p++) s += G[((i * C + k) * h * w) + p];
        return s / (h * w);
      });
      for (let p = 0; p < h * w; p++) expected.push(Math.max(0, wk.reduce((s, wv, k) => s + wv * A[(i * C + k) * h * w + p], 0)));
    }
    expectClose(got, expected, 1e-12);
  });

  it('CAM uses the linear head weights; rejects other heads', async () => {
    const m = smallCnn(true);
    const x = input();
    const got = await read(await ex.cam(m, x, { layer: 'features', target: [0, 2] }));
    const { A, shape } = await splitByHand(m, x, [0, 2]);
    const W = await read((m.module('fc') as Linear).param('weight'));
    const [n, C, h, w] = shape;
    const expected: number[] = [];
    [0, 2].forEach((t, i) => {
      for (let p = 0; p < h * w; p++) expected.push(Array.from({ length: C }, (_, k) => W[t * C + k] * A[(i * C + k) * h * w + p]).reduce((a, b) => a + b, 0));
    });
    expectClose(got, expected, 1e-10);
    const notGap = new Sequential(['features', new Sequential(new Conv2d(2, 3, 3))], ['head', new Sequential(new Conv2d(3, 2, 3), new Tanh(), new GlobalAvgPool(), new Linear(2, 2))]);
    await expect(ex.cam(notGap, x, { layer: 'features', target: 0 })).rejects.toThrow(/not global-average-pooling \+ linear/);
  });

  it('Grad-CAM++ with an exponential score and a relu head matches the closed form', async () => {
    const m = smallCnn(false);
    const x = input();
    const t = ex.gradCamPlusPlusTerms(m, x, { layer: 'features', target: [1, 0] });
    const g = await read(t.d1);
    expectClose(await t.d2.data(), g.map((v) => v * v), 1e-12);
    expectClose(await t.d3.data(), g.map((v) => v * v * v), 1e-12);
    const exact = await ex.gradCamPlusPlus(m, x, { layer: 'features', target: [1, 0] });
    const closed = await ex.gradCamPlusPlus(m, x, { layer: 'features', target: [1, 0], mode: 'closed-form' });
    expectClose(await exact.data(), await closed.data(), 1e-12);
  });

  it('Grad-CAM++ second/third-order terms match finite differences of the gradient for smooth heads', async () => {
    // A smooth head after the layer: softplus conv, tanh, GAP, linear; scores: the raw logit and
    // a softmax probability (score: 'raw').
    setInitSeed(21);
    const m = new Sequential(['features', new Sequential(new Conv2d(2, 3, 3, { padding: 1 }), new Softplus())], ['head', new Sequential(new Conv2d(3, 3, 3, { padding: 1 }), new Tanh(), new GlobalAvgPool(), new Linear(3, 3))]);
    const x = bl.tensor(randArray(2 * 4 * 4, 31), [1, 2, 4, 4]);
    for (const variant of ['exp-logit', 'softmax'] as const) {
      const target = variant === 'softmax' ? (out: Tensor) => bl.reshape(bl.slice(bl.softmax(out, 1), [0, 2], [out.shape[0], 1]), [out.shape[0]]) : 2;
      const score = variant === 'softmax' ? 'raw' : 'exp';
      const t = ex.gradCamPlusPlusTerms(m, x, { layer: 'features', target, score, probeBatch: 7 });
      const A0 = await read(t.A);
      const s0 = variant === 'softmax' ? 0 : (await read(m.call(x)))[2];
      // Y(A) with the activation replaced, and dY/dA by autodiff; then FD along each e_p.
      const Y = (a: Tensor) => {
        const out = bl.withActivation('features', () => a, () => m.call(x));
        const s = variant === 'softmax' ? bl.reshape(bl.slice(bl.softmax(out, 1), [0, 2], [1, 1]), []) : bl.reshape(bl.slice(out, [0, 2], [1, 1]), []);
        return variant === 'softmax' ? s : bl.exp(bl.sub(s, s0));
      };
      const dY = async (a: number[]) => read(bl.grad(Y)(bl.tensor(a, t.A.shape)));
      const d2 = await read(t.d2), d3 = await read(t.d3);
      const h = 1e-4;
      for (const p of [0, 7, 20, 40]) {
        const up = A0.slice() as unknown as number[], dn = A0.slice() as unknown as number[], c = Array.from(A0);
        up[p] += h;
        dn[p] -= h;
        const gu = await dY(Array.from(up)), gd = await dY(Array.from(dn)), gc = await dY(c);
        const fd2 = (gu[p] - gd[p]) / (2 * h);
        const fd3 = (gu[p] - 2 * gc[p] + gd[p]) / (h * h);
        expect(Math.abs(d2[p] - fd2), `${variant} d2 at ${p}: ${d2[p]} vs ${fd2}`).toBeLessThan(1e-6 * Math.max(1, Math.abs(fd2)));
        expect(Math.abs(d3[p] - fd3), `${variant} d3 at ${p}: ${d3[p]} vs ${fd3}`).toBeLessThan(1e-4 * Math.max(1, Math.abs(fd3)));
      }
      // And the curvature terms are really there (the closed form would differ).
      const g = await read(t.d1);
      const closedD2 = variant === 'softmax' ? g.map(() => 0) : g.map((v) => v * v);
      expect(Math.max(...d2.map((v, i) => Math.abs(v - closedD2[i])))).toBeGreaterThan(1e-4);
    }
  });

  it('HiResCAM, XGradCAM, LayerCAM and Score-CAM match their formulas', async () => {
    const m = smallCnn(true);
    const x = input();
    const { A, G, shape } = await splitByHand(m, x, [0, 1]);
    const [n, C, h, w] = shape;
    const at = (arr: Float64Array, i: number, k: number, p: number) => arr[(i * C + k) * h * w + p];
    const formula = (f: (i: number, p: number) => number) => Array.from({ length: n * h * w }, (_, q) => f(Math.floor(q / (h * w)), q % (h * w)));
    const hi = formula((i, p) => Math.max(0, Array.from({ length: C }, (_, k) => at(G, i, k, p) * at(A, i, k, p)).reduce((a, b) => a + b, 0)));
    expectClose(await (await ex.hiResCam(m, x, { layer: 'features', target: [0, 1] })).data(), hi, 1e-12);
    const lc = formula((i, p) => Math.max(0, Array.from({ length: C }, (_, k) => Math.max(0, at(G, i, k, p)) * at(A, i, k, p)).reduce((a, b) => a + b, 0)));
    expectClose(await (await ex.layerCam(m, x, { layer: 'features', target: [0, 1] })).data(), lc, 1e-12);
    const xw = (i: number, k: number) => {
      let s = 0, num = 0;
      for (let p = 0; p < h * w; p++) s += at(A, i, k, p);
      for (let p = 0; p < h * w; p++) num += (at(A, i, k, p) / (s === 0 ? 1 : s)) * at(G, i, k, p);
      return num;
    };
    const xg = formula((i, p) => Math.max(0, Array.from({ length: C }, (_, k) => xw(i, k) * at(A, i, k, p)).reduce((a, b) => a + b, 0)));
    expectClose(await (await ex.xGradCam(m, x, { layer: 'features', target: [0, 1] })).data(), xg, 1e-12);
    // Score-CAM: softmax score of the input masked by each normalised, upsampled channel.
    const sc = await read(await ex.scoreCam(m, x, { layer: 'features', target: [0, 1], batchSize: 2 }));
    const up = await read(bl.resizeBilinear(bl.tensor(A, shape), [6, 6]));
    const xv = await read(x);
    const weights: number[][] = [];
    for (let i = 0; i < n; i++) {
      weights.push([]);
      for (let k = 0; k < C; k++) {
        const ch = up.slice((i * C + k) * 36, (i * C + k + 1) * 36);
        const lo = Math.min(...ch), hiV = Math.max(...ch);
        const mask = ch.map((v) => (hiV > lo ? (v - lo) / (hiV - lo) : 0));
        const masked = Array.from({ length: 72 }, (_, q) => xv[i * 72 + q] * mask[q % 36]);
        const out = await read(m.call(bl.tensor(masked, [1, 2, 6, 6])));
        const e = Array.from(out, (v) => Math.exp(v - Math.max(...out)));
        weights[i].push(e[[0, 1][i]] / e.reduce((a, b) => a + b, 0));
      }
    }
    const scExpected = formula((i, p) => Math.max(0, weights[i].reduce((s, wk, k) => s + wk * at(A, i, k, p), 0)));
    expectClose(sc, scExpected, 1e-12);
  });

  it('upsample gives the input size; guided Grad-CAM = guided backprop x upsampled Grad-CAM', async () => {
    const m = smallCnn(false);
    const x = input();
    const up = await ex.gradCam(m, x, { layer: 'features', target: 0, upsample: true });
    expect(up.shape).toEqual([2, 1, 6, 6]);
    const ggc = await read(await ex.guidedGradCam(m, x, { layer: 'features', target: 0 }));
    const gb = await read(await ex.guidedBackprop(m, x, { target: 0 }));
    const u = await read(up);
    expectClose(ggc, gb.map((v, k) => v * u[Math.floor(k / 72) * 36 + (k % 36)]), 1e-12);
  });
});

describe('layer and neuron attributions', () => {
  it('layer IG is complete at the layer; layer gradient x activation; neuron gradient', async () => {
    const m = smallCnn(true);
    const x = input();
    const lig = await read(await ex.layerIntegratedGradients(m, x, { layer: 'features', target: [0, 2], steps: 24 }));
    const out = await read(m.call(x)), out0 = await read(m.call(bl.zeros(x.shape)));
    const per = lig.length / 2;
    expect(lig.slice(0, per).reduce((a, b) => a + b, 0)).toBeCloseTo(out[0] - out0[0], 8);
    expect(lig.slice(per).reduce((a, b) => a + b, 0)).toBeCloseTo(out[5] - out0[5], 8);
    const gxa = await ex.layerGradientXActivation(m, x, { layer: 'features', target: [0, 2] });
    expect(gxa.shape).toEqual([2, 5, 3, 3]);
    // A * dS/dA with the model split by hand.
    const [features, pool, fc] = m.layers;
    const A = features.forward(x);
    const G = bl.vjp((a) => fc.forward(pool.forward(a)), A).vjp(bl.tensor([[1, 0, 0], [0, 0, 1]]))[0];
    const Av = await read(A), Gv = await read(G);
    expectClose(await gxa.data(), Av.map((v, k) => v * Gv[k]), 1e-12);
    // Neuron gradient = gradient of that unit of the layer's output.
    const ng = await read(await ex.neuronGradient(m, x, { layer: 'features.0', neuron: [1, 2, 3] }));
    const conv0 = m.module('features.0');
    const byHand = await read(bl.grad((t: Tensor) => bl.sum(bl.slice(conv0.forward(t), [0, 1, 2, 3], [2, 1, 1, 1])))(x));
    expectClose(ng, byHand, 1e-12);
  });
});

describe('bad input', () => {
  it('names the problem', async () => {
    const m = smallCnn(false);
    const x = input();
    await expect(ex.gradCam(m, x, { layer: 'features.9', target: 0 })).rejects.toThrow(/features\.9.*available: .*features\.0/);
    await expect(ex.saliency(m, x, { target: 3 })).rejects.toThrow(/target 3 is out of range for 3 outputs/);
    await expect(ex.saliency(m, x, { target: [0] })).rejects.toThrow(/1 targets for a batch of 2/);
    await expect(ex.saliency(m, x)).rejects.toThrow(/give a target/);
    await expect(ex.integratedGradients(m, x, { target: 0, steps: 0 })).rejects.toThrow(/steps must be a positive integer/);
    await expect(ex.integratedGradients(m, x, { target: 0, baseline: bl.zeros([3, 3]) })).rejects.toThrow(/baseline shape \[3, 3\]/);
    await expect(ex.gradCam(m, x, { target: 0 } as never)).rejects.toThrow(/layer option/);
    await expect(ex.deepLiftShap(m, x, { target: 0 } as never)).rejects.toThrow(/baselines option/);
    await expect(ex.gradCam(m, bl.zeros([2, 3, 6, 6]), { layer: 'features', target: 0 })).rejects.toThrow(/Conv2d 'features\.0'.*\[2, 3, 6, 6\]/);
  });
});

describe('DeepLIFT summation-to-delta on conv nets', () => {
  it('attributions sum to F(x) - F(r) through relus, max pools and GAP (rescale + max-pool rules)', async () => {
    const m = smallCnn(false); // conv-relu-maxpool-conv-relu-GAP-linear
    const x = input();
    const r = bl.tensor(randArray(2 * 2 * 6 * 6, 77, -0.2, 0.2), [2, 2, 6, 6]);
    const a = await read(await ex.deepLift(m, x, { baseline: r, target: [1, 2] }));
    const fx = await read(m.call(x)), fr = await read(m.call(r));
    const per = a.length / 2;
    const sums = [0, 1].map((i) => a.slice(i * per, (i + 1) * per).reduce((s, v) => s + v, 0));
    expect(sums[0]).toBeCloseTo(fx[1] - fr[1], 10);
    expect(sums[1]).toBeCloseTo(fx[5] - fr[5], 10);
    // Without the max-pool rule the sum is off (the rule is doing real work here).
    const plain = bl.withRules({ relu: bl.deepLiftRescale() }, () =>
      bl.grad((t: Tensor) => bl.sum(bl.mul(m.call(t), bl.tensor([[0, 1, 0], [0, 0, 1], [0, 1, 0], [0, 0, 1]]))))(bl.concat([x, r], 0)),
    );
    const g = await read(plain);
    const xv = await read(x), rv = await read(r);
    const s0 = Array.from({ length: per }, (_, k) => g[k] * (xv[k] - rv[k])).reduce((s, v) => s + v, 0);
    expect(Math.abs(s0 - (fx[1] - fr[1]))).toBeGreaterThan(1e-6);
  });
});

// Autodiff behaviour: higher order, rule scopes, intermediate activations, memory.
// Golden values come from closed forms and finite differences, never from the code under test.
import { beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import type { Backend, Tensor } from '../../engine/index.ts';
import { randArray } from './grad-cases.ts';

let cpu: Backend;
beforeAll(async () => {
  cpu = await bl.init({ backend: 'cpu' });
});

const read = async (t: Tensor) => Array.from(await t.data());

describe('grad of grad on scalar functions, against closed forms', () => {
  const pts = [-1.3, -0.2, 0.4, 1.7];
  const fns: [string, (x: Tensor) => Tensor, (x: number) => number, (x: number) => number][] = [
    // name, f, f'', f'''
    ['tanh', bl.tanh, (x) => -2 * Math.tanh(x) * (1 - Math.tanh(x) ** 2), (x) => { const t = Math.tanh(x); return -2 * (1 - t * t) * (1 - 3 * t * t); }],
    ['sigmoid', bl.sigmoid, (x) => { const s = 1 / (1 + Math.exp(-x)); return s * (1 - s) * (1 - 2 * s); }, (x) => { const s = 1 / (1 + Math.exp(-x)); return s * (1 - s) * (1 - 6 * s + 6 * s * s); }],
    ['exp', bl.exp, Math.exp, Math.exp],
    ['log', (x) => bl.log(bl.add(x, 2)), (x) => -1 / (x + 2) ** 2, (x) => 2 / (x + 2) ** 3],
  ];
  for (const [name, f, f2, f3] of fns) {
    it(`${name}: second and third derivatives`, async () => {
      const x = bl.tensor(pts);
      const g1 = (t: Tensor) => bl.sum(bl.grad((u: Tensor) => bl.sum(f(u)))(t));
      const d2 = bl.grad(g1)(x);
      const d3 = bl.grad((t: Tensor) => bl.sum(bl.grad(g1)(t)))(x);
      const a2 = await read(d2), a3 = await read(d3);
      pts.forEach((p, i) => {
        expect(a2[i]).toBeCloseTo(f2(p), 10);
        expect(a3[i]).toBeCloseTo(f3(p), 9);
      });
    });
  }
});

describe('hvp against finite differences of the gradient', () => {
  async function check(f: (x: Tensor) => Tensor, shape: number[], seed: number) {
    const n = shape.reduce((a, b) => a * b, 1);
    const x0 = randArray(n, seed), v = randArray(n, seed + 1);
    const hv = await read(bl.hvp(f, bl.tensor(x0, shape), bl.tensor(v, shape)));
    const h = 1e-5;
    const g = async (t: number) => read(bl.grad(f)(bl.tensor(x0.map((x, i) => x + t * v[i]), shape)));
    const gp = await g(h), gm = await g(-h);
    hv.forEach((val, i) => {
      const fd = (gp[i] - gm[i]) / (2 * h);
      expect(Math.abs(val - fd), `element ${i}: ${val} vs ${fd}`).toBeLessThan(1e-6 * Math.max(1, Math.abs(fd)));
    });
    // And the Hessian is not trivially zero here.
    expect(hv.some((val) => Math.abs(val) > 1e-3)).toBe(true);
  }

  it('softmax cross-entropy of a linear model (w.r.t. the weights)', async () => {
    const X = bl.tensor(randArray(5 * 4, 3), [5, 4]);
    const labels = bl.oneHot(bl.tensor([0, 2, 1, 2, 0]), 3);
    const ce = (w: Tensor) => bl.neg(bl.mean(bl.sum(bl.mul(labels, bl.logSoftmax(bl.matmul(X, w), 1)), 1)));
    await check(ce, [4, 3], 11);
  });

  it('a conv -> softplus -> avg/max pool -> linear -> tanh net (w.r.t. the input)', async () => {
    const w1 = bl.tensor(randArray(3 * 2 * 3 * 3, 21), [3, 2, 3, 3]);
    const b1 = bl.tensor(randArray(3, 22), [3]);
    const w2 = bl.tensor(randArray(4 * 12, 23), [4, 12]);
    const net = (x: Tensor) => {
      const h = bl.softplus(bl.conv2d(x, w1, { padding: 1, bias: b1 }));
      const p = bl.avgPool2d(h, { kernel: 2 });
      const q = bl.maxPool2d(bl.tanh(h), { kernel: 2 });
      const z = bl.linear(bl.flatten(bl.add(p, q)), w2);
      return bl.sum(bl.tanh(z));
    };
    await check(net, [1, 2, 4, 4], 31);
  });

  it('jvp equals the directional derivative', async () => {
    const x0 = randArray(6, 41), v = randArray(6, 42);
    const f = (x: Tensor) => bl.softmax(bl.reshape(bl.mul(x, x), [2, 3]), 1);
    const [, jv] = bl.jvp(f, [bl.tensor(x0)], [bl.tensor(v)]);
    const h = 1e-6;
    const at = async (t: number) => read(f(bl.tensor(x0.map((x, i) => x + t * v[i]))));
    const fp = await at(h), fm = await at(-h);
    (await read(jv)).forEach((val, i) => expect(val).toBeCloseTo((fp[i] - fm[i]) / (2 * h), 7));
  });
});

describe('gradients of several inputs, stopGradient, vjp', () => {
  it('grad over several arguments', async () => {
    const [ga, gb] = bl.grad((a: Tensor, b: Tensor) => bl.sum(bl.mul(bl.mul(a, a), b)))(bl.tensor([1, 2]), bl.tensor([3, 4])) as Tensor[];
    expect(await read(ga)).toEqual([6, 16]);
    expect(await read(gb)).toEqual([1, 4]);
  });
  it('stopGradient cuts the path', async () => {
    const g = bl.grad((x: Tensor) => bl.sum(bl.mul(x, bl.stopGradient(x))))(bl.tensor([2, -3]));
    expect(await read(g)).toEqual([2, -3]);
  });
  it('an unused argument gets zeros', async () => {
    const [, gb] = bl.grad((a: Tensor, _b: Tensor) => bl.sum(a))(bl.tensor([1]), bl.tensor([[1, 2]])) as Tensor[];
    expect(await read(gb)).toEqual([0, 0]);
  });
  it('vjp with a given cotangent, called twice', async () => {
    const r = bl.vjp((x) => bl.mul(x, 3), bl.tensor([1, 2, 3]));
    expect(await read(r.vjp(bl.tensor([1, 0, 2]))[0])).toEqual([3, 0, 6]);
    expect(await read(r.vjp(bl.tensor([1, 1, 1]))[0])).toEqual([3, 3, 3]);
    r.dispose();
    expect(() => r.vjp(bl.tensor([1, 1, 1]))).toThrow(/disposed/);
  });
  it('grad needs a scalar and names the shape', () => {
    expect(() => bl.grad((x: Tensor) => bl.mul(x, 2))(bl.tensor([1, 2]))).toThrow(/single value.*\[2\]/);
  });
});

describe('gradients at named intermediate activations', () => {
  it('matches the chain rule computed by hand', async () => {
    const x = bl.tensor([0.5, -1, 2]);
    const r = bl.valueAndGradAt(() => {
      const a = bl.tap('layer1', bl.tanh(x));
      return bl.sum(bl.mul(a, a));
    }, ['layer1']);
    const expected = [0.5, -1, 2].map((v) => 2 * Math.tanh(v));
    (await read(r.grads.layer1)).forEach((g, i) => expect(g).toBeCloseTo(expected[i], 12));
    expect(await read(r.activations.layer1)).toEqual([0.5, -1, 2].map(Math.tanh));
  });
  it('a missing name is an error that names it', () => {
    expect(() => bl.valueAndGradAt(() => bl.sum(bl.tensor([1])), ['features.9'])).toThrow(/features\.9/);
  });
  it('tap is free when nobody watches', async () => {
    const t = bl.tensor([1]);
    expect(bl.tap('x', t)).toBe(t);
  });
});

describe('scoped custom rules', () => {
  // A small conv net with relus, on CPU float64.
  const w1 = randArray(4 * 1 * 3 * 3, 51), w2 = randArray(2 * 4 * 3 * 3, 52), wl = randArray(3 * 2 * 2 * 2, 53);
  const xData = randArray(1 * 1 * 6 * 6, 54);
  function forward(x: Tensor, acts: Tensor[] = []) {
    const z1 = bl.conv2d(x, bl.tensor(w1, [4, 1, 3, 3]), { padding: 1 });
    acts.push(z1);
    const h1 = bl.relu(z1);
    const z2 = bl.conv2d(h1, bl.tensor(w2, [2, 4, 3, 3]), { padding: 1 });
    acts.push(z2);
    const h2 = bl.maxPool2d(bl.relu(z2), { kernel: 3, stride: 3 });
    return bl.linear(bl.flatten(h2), bl.tensor(wl, [3, 8]));
  }

  it('guided backprop equals its definition, layer by layer', async () => {
    const x = bl.tensor(xData, [1, 1, 6, 6]);
    const g = bl.withRules({ relu: bl.guidedRelu }, () => bl.grad((xx: Tensor) => bl.sum(bl.slice(forward(xx), [0, 1], [1, 1])))(x));
    // The definition, by hand: backpropagate with plain vjps, masking each relu's cotangent by
    // (forward input > 0) and (incoming cotangent > 0).
    const acts: Tensor[] = [];
    forward(x, acts);
    const [z1, z2] = acts;
    const h1 = bl.relu(z1);
    const r2 = bl.relu(z2);
    const tail = bl.vjp((t) => bl.slice(bl.linear(bl.flatten(bl.maxPool2d(t, { kernel: 3, stride: 3 })), bl.tensor(wl, [3, 8])), [0, 1], [1, 1]), r2);
    const ctR2 = tail.vjp(bl.ones([1, 1]))[0];
    const guide = (ct: Tensor, z: Tensor) => bl.mul(ct, bl.mul(bl.greater(ct, 0), bl.greater(z, 0)));
    const ctZ2 = guide(ctR2, z2);
    const conv2 = bl.vjp((t) => bl.conv2d(t, bl.tensor(w2, [2, 4, 3, 3]), { padding: 1 }), h1);
    const ctZ1 = guide(conv2.vjp(ctZ2)[0], z1);
    const conv1 = bl.vjp((t) => bl.conv2d(t, bl.tensor(w1, [4, 1, 3, 3]), { padding: 1 }), x);
    const expected = await read(conv1.vjp(ctZ1)[0]);
    const got = await read(g);
    got.forEach((v, i) => expect(v).toBeCloseTo(expected[i], 12));
    // And it differs from the plain gradient (the rule did something).
    const plain = await read(bl.grad((xx: Tensor) => bl.sum(bl.slice(forward(xx), [0, 1], [1, 1])))(x));
    expect(plain.some((v, i) => Math.abs(v - got[i]) > 1e-6)).toBe(true);
  });

  it('deconvnet rectifies the cotangent only', async () => {
    const x = bl.tensor([-1, 2, 3]);
    const w = bl.tensor([1, -1, 2]);
    const g = bl.withRules({ relu: bl.deconvRelu }, () => bl.grad((t: Tensor) => bl.sum(bl.mul(bl.relu(t), w)))(x));
    expect(await read(g)).toEqual([1, 0, 2]);
  });

  it('does not leak outside fn, also when fn throws; nests and un-nests', async () => {
    const f = (t: Tensor) => bl.sum(bl.mul(bl.relu(t), bl.tensor([-1, 1])));
    const x = bl.tensor([1, 1]);
    expect(() => bl.withRules({ relu: bl.guidedRelu }, () => { throw new Error('boom'); })).toThrow('boom');
    expect(bl.activeRuleNames()).toEqual([]);
    expect(await read(bl.grad(f)(x))).toEqual([-1, 1]);
    // The relu rules match nothing here (there is no relu): allowed only with unused: 'ignore'.
    const inner = bl.withRules({ relu: bl.deconvRelu }, () =>
      bl.withRules({ relu: bl.guidedRelu, tanh: bl.passRule }, () => {
        expect(bl.activeRuleNames().sort()).toEqual(['relu', 'tanh']);
        return bl.grad((t: Tensor) => bl.sum(bl.tanh(t)))(x);
      }, { unused: 'ignore' }),
    { unused: 'ignore' });
    expect(await read(inner)).toEqual([1, 1]); // passRule: tanh' replaced by 1
    expect(bl.activeRuleNames()).toEqual([]);
  });

  it('an inner scope shadows an outer one for the names it sets; the outer still applies to the rest', async () => {
    // mixed signs: guided (ct > 0 and x > 0), deconv (ct > 0) and the plain gradient all differ
    const w = bl.tensor([1, -1, 1]);
    const x = bl.tensor([-1, 1, 2]);
    const f = (t: Tensor) => bl.add(bl.sum(bl.mul(bl.relu(t), w)), bl.sum(bl.tanh(t)));
    const g = bl.withRules({ relu: bl.deconvRelu, tanh: bl.passRule }, () => bl.withRules({ relu: bl.guidedRelu }, () => bl.grad(f)(x)));
    expect(await read(g)).toEqual([0 + 1, 0 + 1, 1 + 1]); // guided relu [0, 0, 1], tanh passed (1)
    const outer = bl.withRules({ relu: bl.deconvRelu, tanh: bl.passRule }, () => bl.grad(f)(x));
    expect(await read(outer)).toEqual([1 + 1, 0 + 1, 1 + 1]); // deconv relu [1, 0, 1]
  });

  it('replaced rules are differentiable (grad of a guided gradient)', async () => {
    // guided grad of sum(relu(x)^2 ... ) then differentiate again: d/dx [2 relu(x) * 1(x>0)] = 2 * 1(x>0).
    const x = bl.tensor([-0.5, 0.7, 1.2]);
    const second = bl.withRules({ relu: bl.guidedRelu }, () =>
      bl.grad((t: Tensor) => bl.sum(bl.grad((u: Tensor) => bl.sum(bl.square(bl.relu(u))))(t)))(x),
    );
    expect(await read(second)).toEqual([0, 2, 2]);
  });

  it('DeepLIFT rescale equals its closed form on a 1-hidden-layer net', async () => {
    // f(x) = v . sigmoid(W x); with the rescale rule the attribution (x - r) * multiplier sums to
    // f(x) - f(r) exactly (DeepLIFT's summation-to-delta), and equals the hand-derived multipliers.
    const W = [[0.5, -1.0], [1.5, 0.3]], v = [1.0, -2.0];
    const xs = [0.8, -0.4], rs = [0.1, 0.2];
    const x = bl.tensor([xs, rs]);
    const g = bl.withRules({ sigmoid: bl.deepLiftRescale() }, () =>
      bl.grad((t: Tensor) => bl.sum(bl.slice(bl.matmul(bl.sigmoid(bl.matmul(t, bl.transpose(bl.tensor(W)))), bl.tensor(v, [2, 1])), [0, 0], [1, 1])))(x),
    );
    const got = (await read(g)).slice(0, 2);
    const sig = (z: number) => 1 / (1 + Math.exp(-z));
    const zx = W.map((row) => row[0] * xs[0] + row[1] * xs[1]);
    const zr = W.map((row) => row[0] * rs[0] + row[1] * rs[1]);
    const m = zx.map((z, j) => (sig(z) - sig(zr[j])) / (z - zr[j]));
    const expected = [0, 1].map((i) => W.reduce((acc, row, j) => acc + v[j] * m[j] * row[i], 0));
    got.forEach((val, i) => expect(val).toBeCloseTo(expected[i], 12));
    const attr = got.reduce((a, gi, i) => a + gi * (xs[i] - rs[i]), 0);
    const f = (p: number[]) => W.reduce((acc, row, j) => acc + v[j] * sig(row[0] * p[0] + row[1] * p[1]), 0);
    expect(attr).toBeCloseTo(f(xs) - f(rs), 12);
  });
});

describe('memory', () => {
  it('grad, hvp and rule scopes inside tidy leave no live buffers', () => {
    const x = bl.tensor(randArray(2 * 1 * 5 * 5, 61), [2, 1, 5, 5]);
    const w = bl.tensor(randArray(3 * 9, 62), [3, 1, 3, 3]);
    const f = (t: Tensor) => bl.sum(bl.softplus(bl.maxPool2d(bl.relu(bl.conv2d(t, w)), { kernel: 2 })));
    const before = bl.memory(cpu).liveBuffers;
    for (let i = 0; i < 20; i++) {
      bl.tidy(() => {
        bl.grad(f)(x);
        bl.hvp(f, x, x);
        bl.withRules({ relu: bl.guidedRelu }, () => bl.valueAndGrad(f)(x));
      });
    }
    expect(bl.memory(cpu).liveBuffers).toBe(before);
  });
  it('grad alone frees its intermediates (only the gradient survives)', () => {
    const x = bl.tensor(randArray(12, 63), [3, 4]);
    const before = bl.memory(cpu).liveBuffers;
    const g = bl.grad((t: Tensor) => bl.sum(bl.softmax(bl.tanh(bl.mul(t, 2)), 1)))(x);
    expect(bl.memory(cpu).liveBuffers).toBe(before + 1);
    g.dispose();
    expect(bl.memory(cpu).liveBuffers).toBe(before);
  });
});

describe('gradients at several activations in one call', () => {
  it('an activation and a later one both get their gradients', async () => {
    const x = bl.tensor([0.5, -1, 2]);
    const r = bl.valueAndGradAt(() => {
      const a = bl.tap('first', bl.tanh(x));
      const b = bl.tap('second', bl.mul(a, 3));
      return bl.sum(bl.mul(b, b));
    }, ['first', 'second']);
    const t = [0.5, -1, 2].map(Math.tanh);
    expect(await read(r.grads.second)).toEqual(t.map((v) => 2 * 3 * v).map((v) => expect.closeTo(v, 12)));
    (await read(r.grads.first)).forEach((g, i) => expect(g).toBeCloseTo(18 * t[i], 12));
  });
});

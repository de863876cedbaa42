// Bayes by backprop (models/bayes.ts; Blundell et al. 2015): the KL of a layer against the
// closed form (and a numerical integral), the sampled forward against its definition, the
// reparameterisation gradient against central finite differences, a small Bayesian net trained
// by fit with the ELBO, and bayesPredictive against a host replay of its weight draws.
// Float64 CPU backend.
import { beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import * as ex from '../../explain/uncertainty/index.ts';
import { dropoutSeed } from '../../explain/uncertainty/mc-dropout.ts';
import { Adam, BayesConv2d, BayesLinear, Linear, ReLU, Sequential, elboLoss, fit, klDivergence } from '../../models/index.ts';
import { datasetSplits, fitStandardizer, standardize } from '../../models/data/index.ts';
import { expectClose, randArray, rng } from '../helpers.ts';

beforeAll(async () => {
  await bl.init({ backend: 'cpu' });
});

const read = async (t: Tensor) => Float64Array.from(await t.data());
const softplus = (v: number) => Math.log1p(Math.exp(v));

/** Give a Bayesian layer's pairs host values (mu, rho) from a seeded generator. */
function setRandom(layer: BayesLinear | BayesConv2d, seed: number) {
  const r = rng(seed);
  for (const [name, t] of layer.namedParameters()) {
    const local = name.slice(name.lastIndexOf('.') + 1);
    const v = name.endsWith('_rho') ? randArray(r, t.size, -3, 0.5) : randArray(r, t.size, -1, 1);
    layer.setTensor(local, bl.tensor(v, t.shape));
  }
}

describe('BayesLinear / BayesConv2d', () => {
  it('KL(q || p) equals the closed form for random (mu, rho), and 0 when q is the prior', async () => {
    const l = new BayesLinear(3, 2, { priorSigma: 0.7, seed: 5 });
    setRandom(l, 1);
    let want = 0;
    for (const n of ['weight', 'bias']) {
      const mu = await read(l.param(`${n}_mu`)), rho = await read(l.param(`${n}_rho`));
      mu.forEach((m, i) => {
        const s = softplus(rho[i]);
        want += Math.log(0.7 / s) + (s * s + m * m) / (2 * 0.49) - 0.5;
      });
    }
    expectClose([await (l.klDivergence()).item()], [want], 1e-13);
    expectClose([await klDivergence(new Sequential(l, new ReLU())).item()], [want], 1e-13);
    // q = prior: mu = 0, softplus(rho) = priorSigma.
    const z = new BayesLinear(4, 3, { priorSigma: 0.7, initRho: Math.log(Math.expm1(0.7)) });
    z.setTensor('weight_mu', bl.zeros([3, 4]));
    z.setTensor('bias_mu', bl.zeros([3]));
    expect(Math.abs(await z.klDivergence().item())).toBeLessThan(1e-14);
  });

  it('the closed form matches a numerical integral of q log(q / p) for one weight', async () => {
    const l = new BayesLinear(1, 1, { bias: false, priorSigma: 1.5 });
    l.setTensor('weight_mu', bl.tensor([0.8], [1, 1]));
    l.setTensor('weight_rho', bl.tensor([-0.4], [1, 1]));
    const s = softplus(-0.4), mu = 0.8, sp = 1.5;
    const logN = (w: number, m: number, sd: number) => -0.5 * Math.log(2 * Math.PI * sd * sd) - ((w - m) ** 2) / (2 * sd * sd);
    let integral = 0;
    const h = 1e-4;
    for (let w = mu - 12 * s; w <= mu + 12 * s; w += h) integral += Math.exp(logN(w, mu, s)) * (logN(w, mu, s) - logN(w, 0, sp)) * h;
    expectClose([await l.klDivergence().item()], [integral], 1e-7);
  });

  it('a forward samples w = mu + softplus(rho) * eps with seeded Philox noise; sampling = false uses the means', async () => {
    const l = new BayesLinear(4, 3, { seed: 9 });
    setRandom(l, 2);
    const x = bl.tensor(randArray(rng(3), 2 * 4), [2, 4]);
    l.noiseSeed = 42;
    const y = await read(l.call(x));
    const w = bl.add(l.param('weight_mu'), bl.mul(l.sigma('weight'), l.noiseFor('weight', 42)));
    const b = bl.add(l.param('bias_mu'), bl.mul(l.sigma('bias'), l.noiseFor('bias', 42)));
    const [W, B, X] = [await read(w), await read(b), await read(x)];
    const want = [0, 1].flatMap((i) => [0, 1, 2].map((o) => B[o] + [0, 1, 2, 3].reduce((a, f) => a + W[o * 4 + f] * X[i * 4 + f], 0)));
    expectClose(y, want, 1e-13);
    expect(Array.from(await read(l.call(x)))).toEqual(Array.from(y)); // fixed noise: the same sample
    l.noiseSeed = null;
    const a1 = await read(l.call(x)), a2 = await read(l.call(x));
    expect(Array.from(a1)).not.toEqual(Array.from(a2)); // a new sample per call
    l.sampling = false;
    expectClose(await read(l.call(x)), await read(bl.linear(x, l.param('weight_mu'), l.param('bias_mu'))), 1e-15);
  });

  it('BayesConv2d: the sampled forward is conv2d with the sampled weights; KL by the closed form', async () => {
    const c = new BayesConv2d(2, 3, 3, { padding: 1, stride: 2, seed: 4, priorSigma: 0.5 });
    setRandom(c, 5);
    c.noiseSeed = 8;
    const x = bl.tensor(randArray(rng(6), 2 * 2 * 5 * 5), [2, 2, 5, 5]);
    const w = bl.add(c.param('weight_mu'), bl.mul(c.sigma('weight'), c.noiseFor('weight', 8)));
    const b = bl.add(c.param('bias_mu'), bl.mul(c.sigma('bias'), c.noiseFor('bias', 8)));
    expectClose(await read(c.call(x)), await read(bl.conv2d(x, w, { padding: 1, stride: 2, bias: b })), 1e-13);
    let want = 0;
    for (const n of ['weight', 'bias']) {
      const mu = await read(c.param(`${n}_mu`)), rho = await read(c.param(`${n}_rho`));
      mu.forEach((m, i) => (want += Math.log(0.5 / softplus(rho[i])) + (softplus(rho[i]) ** 2 + m * m) / 0.5 - 0.5));
    }
    expectClose([await c.klDivergence().item()], [want], 1e-12);
    expect(() => c.call(bl.zeros([1, 3, 5, 5]))).toThrow(/BayesConv2d '': expected input of rank 4 with 2 channels on axis 1, got \[1, 3, 5, 5\]/);
  });

  it('the reparameterisation gradient of the ELBO (NLL through the sample + KL) matches central finite differences', async () => {
    const net = new Sequential(new BayesLinear(3, 4, { seed: 1 }), new ReLU(), new BayesLinear(4, 2, { seed: 2 }));
    for (const l of net.layers) if (l instanceof BayesLinear) {
      setRandom(l, l.seed);
      l.noiseSeed = 77; // the same eps for every evaluation
    }
    const x = bl.tensor(randArray(rng(8), 5 * 3), [5, 3]);
    const y = bl.tensor([0, 1, 1, 0, 1], [5]);
    const names = net.namedParameters().map(([n]) => n);
    const loss = (...ps: Tensor[]) => net.withTensors(Object.fromEntries(names.map((n, i) => [n, ps[i]])), () => elboLoss(net, net.call(x), y, { datasetSize: 10 }));
    const params = net.parameters();
    const grads = bl.grad(loss)(...params) as unknown as Tensor[];
    const h = 1e-6;
    for (let p = 0; p < params.length; p++) {
      const base = await read(params[p]);
      const g = await read(grads[p]);
      const fd = new Float64Array(base.length);
      for (let i = 0; i < base.length; i++) {
        const at = async (d: number) => {
          const v = Float64Array.from(base);
          v[i] += d;
          const ps = params.map((t, k) => (k === p ? bl.tensor(v, t.shape) : t));
          return loss(...ps).item();
        };
        fd[i] = ((await at(h)) - (await at(-h))) / (2 * h);
      }
      expectClose(g, fd, 1e-6, 1e-8, names[p]);
    }
  });

  it('errors name the layer and the option', () => {
    expect(() => new BayesLinear(3, 2, { priorSigma: 0 })).toThrow(/BayesLinear: priorSigma must be a finite number > 0, got 0/);
    expect(() => new BayesLinear(0, 2)).toThrow(/inFeatures and outFeatures must be positive integers/);
    expect(() => new BayesLinear(3, 2).call(bl.zeros([1, 4]))).toThrow(/BayesLinear '': expected 3 input features on the last axis, got \[1, 4\]/);
    expect(() => klDivergence(new Sequential(new Linear(2, 2)))).toThrow(/klDivergence: the model has no BayesLinear or BayesConv2d layer \(layers: 0 \(Linear\)\)/);
    const net = new Sequential(new BayesLinear(2, 2));
    expect(() => elboLoss(net, bl.zeros([1, 2]), bl.zeros([1]), { datasetSize: 0 })).toThrow(/elboLoss: datasetSize must be a positive integer \(the number of training examples\), got 0/);
  });
});

describe('a small Bayesian net', () => {
  it('trains on iris with fit and the ELBO; bayesPredictive averages weight draws (replayed on the host) and restores the layers', async () => {
    const splits = datasetSplits('iris');
    const s = fitStandardizer(splits.train);
    const train = standardize(splits.train, s), test = standardize(splits.test, s);
    const net = new Sequential(new BayesLinear(4, 16, { seed: 1, priorSigma: 1 }), new ReLU(), new BayesLinear(16, 3, { seed: 2, priorSigma: 1 }));
    const klBefore = await klDivergence(net).item();
    const logs = await fit(net, train, { epochs: 30, batchSize: 16, optimizer: new Adam({ lr: 0.03 }), seed: 0, progress: false, loss: (o, y) => elboLoss(net, o, y, { datasetSize: train.n }) });
    console.log(`Bayesian MLP on iris: ELBO loss ${logs[0].loss.toFixed(3)} -> ${logs.at(-1)!.loss.toFixed(3)}, KL ${klBefore.toFixed(1)} -> ${(await klDivergence(net).item()).toFixed(1)}`);
    expect(logs.at(-1)!.loss).toBeLessThan(0.5 * logs[0].loss);
    const x = bl.tensor(test.x, [test.n, 4]);
    const r = await ex.bayesPredictive(net, x, { samples: 8, seed: 3 });
    const pred = await read(bl.argmax(r.mean, 1));
    const acc = Array.from(pred).filter((p, i) => p === test.y[i]).length / test.n;
    const sd = await read(r.std);
    console.log(`Bayesian MLP on iris: test accuracy ${(acc * 100).toFixed(1)}% (posterior mean of 8 draws), mean prob std ${(sd.reduce((a, b) => a + b, 0) / sd.length).toFixed(4)}`);
    expect(acc).toBeGreaterThan(0.85);
    expect(Math.max(...Array.from(sd))).toBeGreaterThan(0); // the draws differ
    // Host replay: draw s sets noiseSeed = dropoutSeed(seed, layer, s) on every Bayesian layer.
    const layers = net.layers.filter((l): l is BayesLinear => l instanceof BayesLinear);
    const draws: Float64Array[] = [];
    for (let k = 0; k < 8; k++) {
      layers.forEach((l, j) => (l.noiseSeed = dropoutSeed(3, j, k)));
      draws.push(await read(bl.softmax(net.call(x), 1)));
    }
    layers.forEach((l) => (l.noiseSeed = null));
    const mean = draws[0].map((_, i) => draws.reduce((a, d) => a + d[i], 0) / 8);
    expectClose(await read(r.mean), mean, 1e-12);
    // Draw s is one network: regrouping items into other chunks gives the same numbers.
    const r2 = await ex.bayesPredictive(net, x, { samples: 8, seed: 3, batchSize: 7 });
    expectClose(await read(r2.mutualInformation), await read(r.mutualInformation), 1e-12);
    expect(layers.map((l) => [l.sampling, l.noiseSeed])).toEqual([[true, null], [true, null]]);
    await expect(ex.bayesPredictive(new Sequential(new Linear(4, 3)), x)).rejects.toThrow(/bayesPredictive: the model has no BayesLinear or BayesConv2d layer \(layers: 0 \(Linear\)\)/);
  });
});

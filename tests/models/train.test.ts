// Training: determinism for a seed on the CPU backend, SGD (momentum, weight decay) and Adam steps
// against updates computed by hand, early stopping, and the bundled recipes' learning-rate decay.
import { beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import {
  Adam, Conv2d, Dropout, GlobalAvgPool, Linear, ReLU, SGD, Sequential, crossEntropy, fit, setInitSeed, type Module, type Optimizer,
} from '../../models/index.ts';
import { makeShapes } from '../../models/data/index.ts';
import { learningRate } from '../../models/zoo/train.ts';

beforeAll(async () => {
  await bl.init({ backend: 'cpu' });
});

const data = makeShapes({ n: 48, seed: 5, size: 12, radius: [2, 4] });

function tinyNet(): Sequential {
  setInitSeed(21);
  return new Sequential(
    ['features', new Sequential(new Conv2d(1, 3, 3, { padding: 1 }), new ReLU())],
    ['pool', new GlobalAvgPool()],
    ['classifier', new Sequential(new Dropout(0.2, 77), new Linear(3, 4))],
  );
}

async function weights(m: Module): Promise<number[][]> {
  return Promise.all(m.parameters().map(async (t) => Array.from(await t.data())));
}

describe('fit', () => {
  it('is deterministic for a seed on the CPU backend: two runs give identical weights', async () => {
    const run = async (seed: number) => {
      const m = tinyNet();
      const logs = await fit(m, data, { epochs: 2, batchSize: 8, optimizer: new Adam({ lr: 0.01 }), seed, progress: false });
      return { w: await weights(m), loss: logs.map((l) => l.loss) };
    };
    const a = await run(3), b = await run(3), c = await run(4);
    expect(b.w).toEqual(a.w); // bit for bit
    expect(b.loss).toEqual(a.loss);
    expect(c.w).not.toEqual(a.w); // another shuffle (and dropout masks) for another seed
    // and training moved the weights
    expect(a.w).not.toEqual(await weights(tinyNet()));
  });

  it('early stopping stops after `patience` epochs without improvement of the validation loss', async () => {
    const frozen: Optimizer = { step() {}, dispose() {} };
    const seen: number[] = [];
    const logs = await fit(tinyNet(), data, {
      epochs: 20, batchSize: 16, optimizer: frozen, validation: data, earlyStopping: { patience: 3 }, progress: false,
      onEpoch: (e) => seen.push(e.epoch),
    });
    // Epoch 1 sets the best loss; 2, 3, 4 do not improve on it (the weights never change): stop.
    expect(logs.length).toBe(4);
    expect(seen).toEqual([1, 2, 3, 4]);
    const v = logs.map((l) => l.valLoss!);
    expect(v.every((x) => x === v[0])).toBe(true);
  });

  it('early stopping follows the validation loss, with patience and minDelta', async () => {
    // A loss that is cross-entropy in training and a scripted value on the validation pass
    // (evaluate runs the model in eval mode, one batch for this small validation set).
    const run = async (script: number[], patience: number, minDelta: number) => {
      const m = tinyNet();
      let epoch = 0;
      const loss = (out: Tensor, y: Tensor) => {
        if (m.training) return crossEntropy(out, y);
        return bl.add(bl.mul(bl.sum(out), 0), script[epoch++]);
      };
      const logs = await fit(m, data, { epochs: script.length, batchSize: 16, optimizer: new SGD({ lr: 0.01 }), validation: data, loss, earlyStopping: { patience, minDelta }, progress: false });
      return logs.map((l) => Math.round(l.valLoss! * 1e9) / 1e9);
    };
    // best 1.0 -> 0.9 (better) -> 0.95 (1 bad) -> 0.85 (better) -> 0.86, 0.87 (2 bad): stop after 6
    expect(await run([1.0, 0.9, 0.95, 0.85, 0.86, 0.87, 0.5, 0.4], 2, 0)).toEqual([1.0, 0.9, 0.95, 0.85, 0.86, 0.87]);
    // steady small improvements (0.005 per epoch): all epochs without minDelta; with minDelta
    // 0.015, epochs 2 and 3 are not 0.015 better than the best (1.0): stop after 3
    const slow = [1.0, 0.995, 0.99, 0.985, 0.98];
    expect(await run(slow, 2, 0)).toEqual(slow);
    expect(await run(slow, 2, 0.015)).toEqual([1.0, 0.995, 0.99]);
  });
});

describe('optimizer steps against hand-computed updates', () => {
  const w0 = [0.5, -1.0, 2.0, 0.25, -0.75, 1.5];
  const b0 = [0.1, -0.2];
  const gw = [[0.3, -0.2, 0.1, 0.4, -0.5, 0.6], [-0.1, 0.25, 0.05, -0.3, 0.2, 0.15]];
  const gb = [[0.05, -0.02], [0.1, 0.3]];

  function model(): Linear {
    const m = new Linear(3, 2);
    m.setTensor('weight', bl.tensor(w0, [2, 3]));
    m.setTensor('bias', bl.tensor(b0, [2]));
    return m;
  }
  const step = (opt: Optimizer, m: Module, k: number) => opt.step(m, [bl.tensor(gw[k], [2, 3]), bl.tensor(gb[k], [2])]);

  it('SGD with momentum and weight decay (torch.optim.SGD)', async () => {
    const lr = 0.1, mu = 0.9, wd = 0.01;
    const m = model();
    const opt = new SGD({ lr, momentum: mu, weightDecay: wd });
    step(opt, m, 0);
    step(opt, m, 1);
    const expectAfter = (p0: number[], g: number[][]) =>
      p0.map((p, i) => {
        // step 1: d1 = g1 + wd p0; v1 = d1; p1 = p0 - lr v1
        const d1 = g[0][i] + wd * p;
        const v1 = d1;
        const p1 = p - lr * v1;
        // step 2: d2 = g2 + wd p1; v2 = mu v1 + d2; p2 = p1 - lr v2
        const d2 = g[1][i] + wd * p1;
        const v2 = mu * v1 + d2;
        return p1 - lr * v2;
      });
    const w = await m.param('weight').data(), b = await m.param('bias').data();
    expectAll(w, expectAfter(w0, gw));
    expectAll(b, expectAfter(b0, gb));
  });

  it('plain SGD: p - lr g', async () => {
    const m = model();
    new SGD({ lr: 0.5 }).step(m, [bl.tensor(gw[0], [2, 3]), bl.tensor(gb[0], [2])]);
    expectAll(await m.param('weight').data(), w0.map((p, i) => p - 0.5 * gw[0][i]));
  });

  it('Adam with bias correction (torch.optim.Adam)', async () => {
    const lr = 0.01, b1 = 0.8, b2 = 0.95, eps = 1e-6;
    const m = model();
    const opt = new Adam({ lr, beta1: b1, beta2: b2, eps });
    step(opt, m, 0);
    step(opt, m, 1);
    const expectAfter = (p0: number[], g: number[][]) =>
      p0.map((p, i) => {
        let mm = 0, vv = 0;
        for (let t = 1; t <= 2; t++) {
          const gt = g[t - 1][i];
          mm = b1 * mm + (1 - b1) * gt;
          vv = b2 * vv + (1 - b2) * gt * gt;
          const mhat = mm / (1 - b1 ** t), vhat = vv / (1 - b2 ** t);
          p -= (lr * mhat) / (Math.sqrt(vhat) + eps);
        }
        return p;
      });
    expectAll(await m.param('weight').data(), expectAfter(w0, gw));
    expectAll(await m.param('bias').data(), expectAfter(b0, gb));
  });

  it('a step with the wrong number of gradients fails, naming the counts', () => {
    expect(() => new SGD({ lr: 0.1 }).step(model(), [bl.zeros([2, 3])])).toThrow(/1 gradients for 2 parameters/);
  });
});

function expectAll(actual: ArrayLike<number>, expected: number[]) {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(actual[i], `element ${i}`).toBeCloseTo(expected[i], 12);
}

describe('bundled recipes', () => {
  it('cosine learning-rate decay from lr to lr * finalLrFraction', () => {
    const r = { seed: 0, epochs: 5, batchSize: 8, optimizer: 'adam' as const, lr: 0.01, finalLrFraction: 0.1 };
    expect(learningRate(r, 1)).toBeCloseTo(0.01, 15);
    expect(learningRate(r, 3)).toBeCloseTo(0.01 * (0.1 + 0.9 * 0.5), 15);
    expect(learningRate(r, 5)).toBeCloseTo(0.001, 15);
  });
});

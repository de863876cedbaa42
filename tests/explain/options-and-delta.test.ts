// Issue 15: options the caller passes are honoured or rejected (a JavaScript caller's typo is an
// error naming it), and every method with a completeness property returns its delta on request.
// The deltas are checked against sums and model outputs computed here, on the CPU backend.
import { beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import * as ex from '../../explain/index.ts';
import { Linear, ReLU, Sequential, setInitSeed } from '../../models/index.ts';
import { expectClose } from '../helpers.ts';
import { randArray } from '../engine/grad-cases.ts';

beforeAll(async () => {
  await bl.init({ backend: 'cpu' });
});

function mlp(seed: number, bias = true) {
  setInitSeed(seed);
  return new Sequential(new Linear(4, 6, { bias }), new ReLU(), new Linear(6, 3, { bias }));
}

/** Model outputs on the host, [rows, 3]. */
async function outputs(m: Sequential, x: number[], rows: number): Promise<number[][]> {
  const o = await m.call(bl.tensor(x, [rows, 4])).data();
  return Array.from({ length: rows }, (_, i) => [o[i * 3], o[i * 3 + 1], o[i * 3 + 2]]);
}

const rowSums = (a: ArrayLike<number>, rows: number) => Array.from({ length: rows }, (_, i) => {
  const w = a.length / rows;
  let s = 0;
  for (let j = 0; j < w; j++) s += a[i * w + j];
  return s;
});

describe('unknown options are errors naming the function and the option', () => {
  const x = () => bl.tensor(randArray(8, 1), [2, 4]);
  const cases: [string, () => Promise<unknown>, RegExp][] = [
    ['saliency', () => ex.saliency(mlp(1), x(), { target: 0, absolute: true } as never), /saliency: unknown option 'absolute'; its options are 'target', 'rules', 'abs'$/],
    ['smoothGrad', () => ex.smoothGrad(mlp(1), x(), { target: 0, sample: 3 } as never), /noiseTunnel\(saliency\): unknown option 'sample' \(did you mean 'samples'\?\).*, and saliency's 'target', 'rules', 'abs'/],
    ['integratedGradients', () => ex.integratedGradients(mlp(1), x(), { target: 0, stpes: 8 } as never), /integratedGradients: unknown option 'stpes' \(did you mean 'steps'\?\)/],
    ['deepLift', () => ex.deepLift(mlp(1), x(), { target: 0, baselines: 0 } as never), /deepLift: unknown option 'baselines' \(did you mean 'baseline'\?\)/],
    ['gradientShap', () => ex.gradientShap(mlp(1), x(), { target: 0, baselines: x(), nSamples: 4 } as never), /gradientShap: unknown option 'nSamples'/],
    ['deepLiftShap', () => ex.deepLiftShap(mlp(1), x(), { target: 0, baselines: x(), eps: 1e-9, seed: 1 } as never), /deepLiftShap: unknown option 'seed'/],
    ['lrp', () => ex.lrp(mlp(1), x(), { target: 0, compsite: 'epsilon' } as never), /lrp: unknown option 'compsite' \(did you mean 'composite'\?\)/],
    ['kernelShap', () => ex.kernelShap(mlp(1), x(), { target: 0, nsamples: 10 } as never), /kernelShap: unknown option 'nsamples'/],
    ['shapleySampling', () => ex.shapleySampling(mlp(1), x(), { target: 0, samples: 4, returnDetail: true } as never), /shapleySampling: unknown option 'returnDetail' \(did you mean 'returnDetails'\?\)/],
    ['shapleyExact', () => ex.shapleyExact(mlp(1), x(), { target: 0, seed: 3 } as never), /shapleyExact: unknown option 'seed'/],
    ['guidedBackprop', () => ex.guidedBackprop(mlp(1), x(), { target: 0, abs: true } as never), /guidedBackprop: unknown option 'abs'/],
  ];
  for (const [name, call, re] of cases) {
    it(name, async () => {
      await expect(call()).rejects.toThrow(re);
    });
  }

  it('options that are not an object are refused', async () => {
    await expect(ex.saliency(mlp(1), x(), 3 as never)).rejects.toThrow(/saliency: options must be an object.*got number 3/);
    await expect(ex.integratedGradients(mlp(1), x(), x() as never)).rejects.toThrow(/integratedGradients: options must be an object.*got a tensor \[2, 4\]/);
  });

  it('returnDelta must be a boolean', async () => {
    await expect(ex.integratedGradients(mlp(1), x(), { target: 0, returnDelta: 'yes' } as never)).rejects.toThrow(/integratedGradients: option 'returnDelta' must be a boolean/);
    await expect(ex.kernelShap(mlp(1), x(), { target: 0, returnDelta: 1 } as never)).rejects.toThrow(/kernelShap: option 'returnDelta' must be a boolean/);
  });
});

describe('returnDelta', () => {
  const xs = randArray(2 * 4, 11);
  const bs = randArray(3 * 4, 12, -0.5, 0.5);

  it('deepLiftShap: one delta per (item, reference) pair, item-major, from the DeepLIFT of that pair', async () => {
    const m = mlp(3);
    const x = bl.tensor(xs, [2, 4]);
    const base = bl.tensor(bs, [3, 4]);
    const r = await ex.deepLiftShap(m, x, { target: [0, 2], baselines: base, returnDelta: true });
    expect(r.delta.shape).toEqual([6]);
    const fx = await outputs(m, xs, 2);
    const fb = await outputs(m, bs, 3);
    const want: number[] = [];
    const meanAttr = new Array(8).fill(0);
    for (let i = 0; i < 2; i++) {
      for (let j = 0; j < 3; j++) {
        const a = await (await ex.deepLift(m, bl.tensor(xs.slice(i * 4, i * 4 + 4), [1, 4]), { target: [0, 2][i], baseline: bl.tensor(bs.slice(j * 4, j * 4 + 4), [1, 4]) })).data();
        want.push(rowSums(a, 1)[0] - (fx[i][[0, 2][i]] - fb[j][[0, 2][i]]));
        for (let k = 0; k < 4; k++) meanAttr[i * 4 + k] += a[k] / 3;
      }
    }
    expectClose(await r.delta.data(), want, 1e-10, 1e-10);
    expectClose(await r.attributions.data(), meanAttr, 1e-10, 1e-10);
    // the rescale rule is complete on a relu MLP: each pair's delta is rounding
    for (const d of await r.delta.data()) expect(Math.abs(d)).toBeLessThan(1e-9);
  });

  it('gradientShap: per draw; with one reference and no noise the draws average to sum(attr) - (F(x) - F(b))', async () => {
    const m = mlp(4);
    const x = bl.tensor(xs, [2, 4]);
    const b1 = bs.slice(0, 4);
    const r = await ex.gradientShap(m, x, { target: 1, baselines: bl.tensor(b1, [1, 4]), samples: 5, seed: 2, returnDelta: true });
    expect(r.delta.shape).toEqual([10]);
    const fx = await outputs(m, xs, 2);
    const fb = (await outputs(m, b1, 1))[0];
    const a = rowSums(await r.attributions.data(), 2);
    const d = await r.delta.data();
    for (let i = 0; i < 2; i++) {
      const mean = (d[i * 5] + d[i * 5 + 1] + d[i * 5 + 2] + d[i * 5 + 3] + d[i * 5 + 4]) / 5;
      expect(mean).toBeCloseTo(a[i] - (fx[i][1] - fb[1]), 10);
    }
    // a piecewise-linear model with random path points: the deltas are not all zero (it is not a trivially zero output)
    expect(Math.max(...Array.from(d, Math.abs))).toBeGreaterThan(1e-6);
  });

  it('lrp: sum of the input relevance minus the target logit (Captum); conserved by the z-rule without biases', async () => {
    const m = mlp(5, true);
    const x = bl.tensor(xs, [2, 4]);
    const r = await ex.lrp(m, x, { target: [2, 0], composite: 'epsilon', epsilon: 1e-3, returnDelta: true });
    const fx = await outputs(m, xs, 2);
    const s = rowSums(await r.attributions.data(), 2);
    expectClose(await r.delta.data(), [s[0] - fx[0][2], s[1] - fx[1][0]], 1e-10, 1e-10);
    const nb = mlp(5, false);
    const r0 = await ex.lrp(nb, x, { target: [2, 0], composite: 'epsilon', epsilon: 1e-9, returnDelta: true });
    for (const d of await r0.delta.data()) expect(Math.abs(d)).toBeLessThan(1e-6);
    const one = await ex.lrp(nb, x, { target: [2, 0], composite: 'epsilon', epsilon: 1e-9, seedOutput: 'one-hot', returnDelta: true });
    const s1 = rowSums(await one.attributions.data(), 2);
    expectClose(await one.delta.data(), [s1[0] - 1, s1[1] - 1], 1e-10, 1e-10);
    const withLayers = await ex.lrp(nb, x, { target: 0, returnLayers: true, returnDelta: true });
    expect(withLayers.delta!.shape).toEqual([2]);
  });

  it('kernelShap, shapleyExact and shapleySampling: sum(values) - (f(x) - f(baseline)) per item', async () => {
    const m = mlp(6);
    const x = bl.tensor(xs, [2, 4]);
    const fx = await outputs(m, xs, 2);
    const f0 = (await outputs(m, [0, 0, 0, 0], 1))[0];
    const want = async (a: bl.Tensor) => rowSums(await a.data(), 2).map((s, i) => s - (fx[i][1] - f0[1]));
    const k = await ex.kernelShap(m, x, { target: 1, samples: 64, returnDelta: true });
    expectClose(await k.delta.data(), await want(k.attributions), 1e-9, 1e-9);
    for (const d of await k.delta.data()) expect(Math.abs(d)).toBeLessThan(1e-6); // imposed as a constraint
    const e = await ex.shapleyExact(m, x, { target: 1, returnDelta: true });
    expectClose(await e.delta.data(), await want(e.attributions), 1e-9, 1e-9);
    for (const d of await e.delta.data()) expect(Math.abs(d)).toBeLessThan(1e-6);
    const s = await ex.shapleySampling(m, x, { target: 1, samples: 4, seed: 1, returnDelta: true, returnDetails: true });
    expectClose(await s.delta!.data(), await want(s.attributions), 1e-9, 1e-9);
  });

  it('integratedGradients and deepLift keep their deltas (same helper), with list, tensor and predicted targets', async () => {
    const m = mlp(7);
    const x = bl.tensor(xs, [2, 4]);
    const fx = await outputs(m, xs, 2);
    const f0 = (await outputs(m, [0, 0, 0, 0], 1))[0];
    const want = async (a: bl.Tensor, t: number[]) => rowSums(await a.data(), 2).map((s, i) => s - (fx[i][t[i]] - f0[t[i]]));
    const ig = await ex.integratedGradients(m, x, { target: [1, 2], steps: 8, returnDelta: true });
    expectClose(await ig.delta.data(), await want(ig.attributions, [1, 2]), 1e-10, 1e-10);
    const dl = await ex.deepLift(m, x, { target: bl.tensor([2, 0], [2]), returnDelta: true });
    expectClose(await dl.delta.data(), await want(dl.attributions, [2, 0]), 1e-10, 1e-10);
    const pred = fx.map((r) => r.indexOf(Math.max(...r)));
    const dp = await ex.deepLift(m, x, { target: 'predicted', returnDelta: true });
    expectClose(await dp.delta.data(), await want(dp.attributions, pred), 1e-10, 1e-10);
    // IG's delta is a quadrature error: nonzero at 8 steps on a relu net, unlike DeepLIFT's
    expect(Math.max(...Array.from(await ig.delta.data(), Math.abs))).toBeGreaterThan(1e-8);
  });

  it('gradientShap with one draw: the delta of that draw is sum(attr) - (F(x) - F(b)) exactly', async () => {
    const m = mlp(9);
    const x = bl.tensor(xs, [2, 4]);
    const b1 = bs.slice(4, 8);
    const r = await ex.gradientShap(m, x, { target: [0, 1], baselines: bl.tensor(b1, [1, 4]), samples: 1, seed: 5, returnDelta: true });
    const fx = await outputs(m, xs, 2);
    const fb = (await outputs(m, b1, 1))[0];
    const a = rowSums(await r.attributions.data(), 2);
    expectClose(await r.delta.data(), [a[0] - (fx[0][0] - fb[0]), a[1] - (fx[1][1] - fb[1])], 1e-10, 1e-10);
  });
});

describe('non-finite inputs and baselines are refused, naming the element', () => {
  const withBad = (v: number, at: number) => {
    const d = randArray(8, 21);
    d[at] = v;
    return bl.tensor(d, [2, 4]);
  };
  it('gradient, path, CAM-free and perturbation methods', async () => {
    const m = mlp(8);
    await expect(ex.saliency(m, withBad(NaN, 6), { target: 0 })).rejects.toThrow(/saliency: the input holds NaN at \[1, 2\] \(shape \[2, 4\]\)/);
    await expect(ex.integratedGradients(m, withBad(Infinity, 1), { target: 0 })).rejects.toThrow(/integratedGradients: the input holds Infinity at \[0, 1\]/);
    await expect(ex.integratedGradients(m, withBad(0, 0), { target: 0, baseline: withBad(-Infinity, 3) })).rejects.toThrow(/integratedGradients: the baseline holds -Infinity at \[0, 3\]/);
    await expect(ex.gradientShap(m, withBad(0, 0), { target: 0, baselines: withBad(NaN, 4) })).rejects.toThrow(/gradientShap: the baselines holds NaN at \[1, 0\]/);
    await expect(ex.lrp(m, withBad(NaN, 0), { target: 0 })).rejects.toThrow(/lrp: the input holds NaN/);
    await expect(ex.kernelShap(m, withBad(NaN, 7), { target: 0, samples: 8 })).rejects.toThrow(/kernelShap: the input holds NaN at \[1, 3\]/);
    await expect(ex.occlusion(m, withBad(NaN, 2), { target: 0 })).rejects.toThrow(/occlusion: the input holds NaN/);
    // numbers and the perturbation methods' reference tensors too
    await expect(ex.integratedGradients(m, withBad(0, 0), { target: 0, baseline: NaN })).rejects.toThrow(/integratedGradients: baseline must be finite, got NaN/);
    await expect(ex.deepLift(m, withBad(0, 0), { target: 0, baseline: Infinity })).rejects.toThrow(/deepLift: baseline must be finite, got Infinity/);
    await expect(ex.shapleyExact(m, withBad(0, 0), { target: 0, background: withBad(NaN, 5) })).rejects.toThrow(/shapleyExact: the background holds NaN at \[1, 1\]/);
    await expect(ex.kernelShap(m, withBad(0, 0), { target: 0, samples: 8, baseline: withBad(NaN, 0) })).rejects.toThrow(/kernelShap: the baseline holds NaN at \[0, 0\]/);
    await expect(ex.smoothGrad(m, withBad(0, 0), { target: 0, stdev: Infinity })).rejects.toThrow(/noiseTunnel: stdev must be a finite number/);
    await expect(ex.integratedGradients(m, withBad(0, 0), new Map([['target', 0]]) as never)).rejects.toThrow(/integratedGradients: options must be an object.*a Map of 1/);
    // finite inputs still pass (the probe is not fooled by large values)
    expect((await ex.saliency(m, bl.tensor([1e30, -1e30, 3e38, 0, 1, 2, 3, 4], [2, 4]), { target: 0 })).shape).toEqual([2, 4]);
  });
});

// Dataset examples against a brute-force loop (one forward per item, the unit computed on the
// host), filter grids against the weights by hand, activation maps against layerActivation.
import { beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import * as ex from '../../explain/index.ts';
import * as vis from '../../explain/visualize/index.ts';
import { datasetSplits } from '../../models/data/index.ts';
import type { Module } from '../../models/module.ts';
import { loadBundled } from '../../models/zoo/index.ts';
import { expectClose } from '../helpers.ts';

let model: Module;
let digits: Tensor;
const N = 60;

beforeAll(async () => {
  await bl.init({ backend: 'cpu' });
  model = await loadBundled('digits-cnn');
  const test = datasetSplits('digits').test;
  digits = bl.tensor(test.x.subarray(0, N * 64), [N, 1, 8, 8]);
});

/** The unit per item, one item at a time, from the layer's activation read back. */
async function bruteForce(layer: string, score: (a: Float32Array | Float64Array, shape: readonly number[]) => number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < N; i++) {
    const x = bl.slice(digits, [i, 0, 0, 0], [1, 1, 8, 8]);
    const a = await ex.layerActivation(model, x, { layer });
    out.push(score(await a.data(), a.shape));
    a.dispose();
    x.dispose();
  }
  return out;
}

function ranked(v: number[], k: number) {
  const idx = v.map((_, i) => i).sort((a, b) => v[b] - v[a] || a - b).slice(0, k);
  return { indices: idx, values: idx.map((i) => v[i]) };
}

describe('topActivatingExamples', () => {
  it('channel mean over spatial positions: the same top k as a brute-force loop (batches of 7)', async () => {
    const c = 5;
    const v = await bruteForce('features', (a, s) => {
      const hw = s[2] * s[3];
      let t = 0;
      for (let j = 0; j < hw; j++) t += a[c * hw + j];
      return t / hw;
    });
    const want = ranked(v, 6);
    const got = await vis.topActivatingExamples(model, digits, { layer: 'features', channel: c, k: 6, batchSize: 7 });
    expect(got.indices).toEqual(want.indices);
    expectClose(got.values, want.values, 1e-12);
  });

  it('a dense layer (logit 4), a neuron and the layer objective likewise', async () => {
    const logit = ranked(await bruteForce('classifier', (a) => a[4]), 5);
    const g1 = await vis.topActivatingExamples(model, digits, { layer: 'classifier', channel: 4, k: 5, batchSize: 16 });
    expect(g1.indices).toEqual(logit.indices);
    expectClose(g1.values, logit.values, 1e-12);
    const neuron = ranked(await bruteForce('features.2', (a, s) => a[(7 * s[2] + 3) * s[3] + 5]), 4);
    const g2 = await vis.topActivatingExamples(model, digits, { layer: 'features.2', channel: 7, neuron: [3, 5], k: 4 });
    expect(g2.indices).toEqual(neuron.indices);
    expectClose(g2.values, neuron.values, 1e-12);
    const layer = ranked(await bruteForce('features', (a) => Array.from(a).reduce((t, x) => t + x * x, 0) / a.length), 3);
    const g3 = await vis.topActivatingExamples(model, digits, { layer: 'features', k: 3, batchSize: 25 });
    expect(g3.indices).toEqual(layer.indices);
    expectClose(g3.values, layer.values, 1e-12);
  });

  it('errors name the option', async () => {
    await expect(vis.topActivatingExamples(model, digits, { layer: 'features', channel: 3, k: N + 1 })).rejects.toThrow(/k = 61 is more than the 60 items/);
    await expect(vis.topActivatingExamples(model, digits, { layer: 'features', channel: 3, batchSize: 0 })).rejects.toThrow(/batchSize must be a positive integer/);
    await expect(vis.topActivatingExamples(model, digits, { layer: 'feature', channel: 3 })).rejects.toThrow(/no layer named 'feature' \(option layer\)/);
    await expect(vis.topActivatingExamples(model, digits, { layer: 'features', channel: 40 })).rejects.toThrow(/channel 40 is out of range/);
  });
});

describe('filterImages and activationMaps', () => {
  it("the first layer's filters as a grid: symmetric scaling per filter, white separators", async () => {
    const w = await model.module('features.0').param('weight').data(); // [8, 1, 3, 3]
    const g = vis.filterImages(model); // default: the first convolution
    // 8 tiles, ceil(sqrt(8)) = 3 per row, 3 rows: 3 * (3 + 1) - 1 = 11 pixels each way.
    expect(g.shape).toEqual([1, 1, 11, 11]);
    const d = await g.data();
    for (let t = 0; t < 9; t++) {
      const [r, c] = [Math.floor(t / 3), t % 3];
      const m = t < 8 ? Math.max(...Array.from(w.subarray(t * 9, t * 9 + 9), Math.abs)) : 0;
      for (let y = 0; y < 3; y++) {
        for (let x = 0; x < 3; x++) {
          const want = t < 8 ? 0.5 + w[t * 9 + y * 3 + x] / (2 * m) : 1; // the unused ninth cell is padding
          expect(d[(r * 4 + y) * 11 + c * 4 + x]).toBeCloseTo(want, 12);
        }
      }
    }
    // Separator row 3 and column 3 are white.
    for (let x = 0; x < 11; x++) expect(d[3 * 11 + x]).toBe(1);
    for (let y = 0; y < 11; y++) expect(d[y * 11 + 3]).toBe(1);
  });

  it('a deeper layer: a grey tile per (output, input) slice, min-max normalised; not a convolution is an error naming the layer', async () => {
    const g = vis.filterImages(model, 'features.2', { normalize: 'minmax', pad: 0 }); // [16, 8, 3, 3]
    expect(g.shape).toEqual([1, 1, 16 * 3, 8 * 3]);
    const d = await g.data();
    const w = await model.module('features.2').param('weight').data();
    const s = w.subarray((5 * 8 + 2) * 9, (5 * 8 + 3) * 9); // output 5, input 2: row 5, column 2
    const [lo, hi] = [Math.min(...s), Math.max(...s)];
    for (let y = 0; y < 3; y++) for (let x = 0; x < 3; x++) expect(d[(5 * 3 + y) * 24 + 2 * 3 + x]).toBeCloseTo((s[y * 3 + x] - lo) / (hi - lo), 12);
    expect(() => vis.filterImages(model, 'classifier')).toThrow(/layer 'classifier' \(Linear\) has no 4-D convolution weight \(option layer\); convolutions: features\.0, features\.2, features\.5/);
    expect(() => vis.filterImages(model, 'nope')).toThrow(/no layer named 'nope'.*\(option layer\)/);
  });

  it('activation maps equal layerActivation; normalised maps span [0, 1]; upsampled to the input', async () => {
    const x = bl.slice(digits, [0, 0, 0, 0], [3, 1, 8, 8]);
    const a = await vis.activationMaps(model, x, 'features.2');
    const ref = await ex.layerActivation(model, x, { layer: 'features.2' });
    expect(a.shape).toEqual([3, 16, 8, 8]);
    expectClose(await a.data(), await ref.data(), 1e-15);
    const n = await vis.activationMaps(model, x, 'features', { normalize: true, upsample: true });
    expect(n.shape).toEqual([3, 32, 8, 8]);
    const d = await n.data();
    for (let m = 0; m < 3 * 32; m++) {
      const map = d.subarray(m * 64, (m + 1) * 64);
      const [lo, hi] = [Math.min(...map), Math.max(...map)];
      expect(lo).toBe(0);
      expect(hi === 1 || hi === 0).toBe(true); // a constant map is all 0
    }
    await expect(vis.activationMaps(model, x, 'pool')).rejects.toThrow(/layer 'pool' has shape \[3, 32\]; activation maps need an NCHW layer/);
  });

  it('imageGrid: tiles row by row, magnified, with padding', async () => {
    const t = bl.tensor([1, 2, 3, 4, 5, 6, 7, 8], [2, 1, 2, 2]);
    const g = vis.imageGrid(t, { cols: 2, pad: 1, padValue: 0, scale: 2 });
    expect(g.shape).toEqual([1, 1, 4, 9]);
    expect(Array.from(await g.data())).toEqual([
      1, 1, 2, 2, 0, 5, 5, 6, 6,
      1, 1, 2, 2, 0, 5, 5, 6, 6,
      3, 3, 4, 4, 0, 7, 7, 8, 8,
      3, 3, 4, 4, 0, 7, 7, 8, 8,
    ]);
  });
});

// Data sets: the shipped loaders (counts, shapes, classes), splits and standardisation, and the
// synthetic image sets (masks cover exactly the drawn shapes, the spurious correlation holds in
// train and is broken in held-out, everything deterministic for a seed).
import { describe, expect, it } from 'vitest';
import {
  DATASETS, classCounts, datasetSplits, fitStandardizer, loadBreastCancer, loadDigits, loadIris, loadWine, makeShapes,
  makeSpurious, standardize, subset, textureAgreement, trainTestSplit, Rng, type SpuriousDataset,
} from '../../models/data/index.ts';

describe('shipped data sets', () => {
  it('digits: 1797 images [1, 8, 8] in [0, 1], 10 classes with the known counts', () => {
    const d = loadDigits();
    expect(d.n).toBe(1797);
    expect(d.sampleShape).toEqual([1, 8, 8]);
    expect(d.x.length).toBe(1797 * 64);
    expect(d.numClasses).toBe(10);
    expect(classCounts(d)).toEqual([178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
    let min = Infinity, max = -Infinity;
    for (const v of d.x) [min, max] = [Math.min(min, v), Math.max(max, v)];
    expect([min, max]).toEqual([0, 1]);
    // values are the 0..16 counts / 16
    expect(d.x.every((v) => Number.isInteger(v * 16))).toBe(true);
    // the first image of the file (a zero), row 0: 0,0,5,13,9,1,0,0
    expect(Array.from(d.x.subarray(0, 8), (v) => v * 16)).toEqual([0, 0, 5, 13, 9, 1, 0, 0]);
    expect(d.y[0]).toBe(0);
  });

  it('breast cancer, wine, iris: counts, features, class names', () => {
    const bc = loadBreastCancer();
    expect([bc.n, bc.sampleShape, bc.classNames, classCounts(bc)]).toEqual([569, [30], ['malignant', 'benign'], [212, 357]]);
    expect(bc.featureNames.length).toBe(30);
    expect(bc.featureNames[0]).toBe('mean radius');
    expect(bc.featureNames[29]).toBe('worst fractal dimension');
    expect(bc.x[0]).toBeCloseTo(17.99, 5);
    const w = loadWine();
    expect([w.n, w.sampleShape, classCounts(w)]).toEqual([178, [13], [59, 71, 48]]);
    const ir = loadIris();
    expect([ir.n, ir.sampleShape, ir.classNames, classCounts(ir)]).toEqual([150, [4], ['setosa', 'versicolor', 'virginica'], [50, 50, 50]]);
    expect(Array.from(ir.x.subarray(0, 4))).toEqual([5.1, 3.5, 1.4, 0.2].map(Math.fround));
  });
});

describe('splits and standardisation', () => {
  const d = loadWine();

  it('a stratified split keeps the class proportions, partitions the samples, and is seeded', () => {
    const { train, test } = trainTestSplit(d, { testFraction: 0.25, seed: 3 });
    expect(train.n + test.n).toBe(d.n);
    expect(classCounts(test)).toEqual([15, 18, 12]); // round(0.25 * [59, 71, 48])
    expect(classCounts(train)).toEqual([44, 53, 36]);
    // every sample lands in exactly one split: compare the multisets of rows
    const rows = (x: Float32Array, n: number) => Array.from({ length: n }, (_, i) => Array.from(x.subarray(i * 13, (i + 1) * 13)).join());
    expect([...rows(train.x, train.n), ...rows(test.x, test.n)].sort()).toEqual(rows(d.x, d.n).sort());
    const again = trainTestSplit(d, { testFraction: 0.25, seed: 3 });
    expect(Array.from(again.test.x)).toEqual(Array.from(test.x));
    const other = trainTestSplit(d, { testFraction: 0.25, seed: 4 });
    expect(Array.from(other.test.x)).not.toEqual(Array.from(test.x));
  });

  it('standardisation is fitted on the training split only and applied to both', () => {
    const { train, test } = trainTestSplit(d, { seed: 0 });
    const s = fitStandardizer(train);
    const tr = standardize(train, s), te = standardize(test, s);
    for (let j = 0; j < 13; j++) {
      let m = 0, v = 0;
      for (let i = 0; i < tr.n; i++) m += tr.x[i * 13 + j];
      m /= tr.n;
      for (let i = 0; i < tr.n; i++) v += (tr.x[i * 13 + j] - m) ** 2;
      expect(Math.abs(m)).toBeLessThan(1e-5);
      expect(Math.sqrt(v / tr.n)).toBeCloseTo(1, 5);
      // the test split uses the training statistics
      expect(te.x[j]).toBeCloseTo((test.x[j] - s.mean[j]) / s.std[j], 5);
    }
    // and those differ from statistics fitted on everything
    expect(Array.from(fitStandardizer(d).mean)).not.toEqual(Array.from(s.mean));
  });

  it('subset carries masks and per-sample labels along', () => {
    const sp = makeSpurious({ n: 10, seed: 1 });
    const sub = subset(sp, [7, 2]);
    expect(sub.n).toBe(2);
    expect(Array.from(sub.textures)).toEqual([sp.textures[7], sp.textures[2]]);
    expect(Array.from(sub.masks.subarray(0, 1024))).toEqual(Array.from(sp.masks.subarray(7 * 1024, 8 * 1024)));
    expect(Array.from(sub.x.subarray(1024))).toEqual(Array.from(sp.x.subarray(2 * 1024, 3 * 1024)));
  });

  it('the named splits of every data set', () => {
    expect(Object.keys(DATASETS)).toEqual(['digits', 'breast-cancer', 'wine', 'iris', 'shapes', 'spurious']);
    const dg = datasetSplits('digits');
    expect([dg.train.n, dg.test.n]).toEqual([1438, 359]);
    expect(() => datasetSplits('mnist')).toThrow(/unknown data set 'mnist'.*digits/);
  });
});

/** Indices (first 10) where mask = 1 disagrees with x > threshold. */
function mismatches(mask: Float32Array, x: Float32Array, threshold: number): number[] {
  const bad: number[] = [];
  for (let i = 0; i < x.length && bad.length < 10; i++) if ((mask[i] === 1) !== x[i] > threshold) bad.push(i);
  return bad;
}

/** Area of the mask / area of its bounding box. */
function fill(mask: Float32Array, size: number): { area: number; ratio: number; box: [number, number, number, number] } {
  let area = 0, x0 = size, y0 = size, x1 = -1, y1 = -1;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      if (!mask[y * size + x]) continue;
      area++;
      [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y)];
    }
  }
  return { area, ratio: area / ((x1 - x0 + 1) * (y1 - y0 + 1)), box: [x0, y0, x1, y1] };
}

describe('synthetic shapes', () => {
  const n = 200, S = 32;
  const d = makeShapes({ n, seed: 42 });

  it('has balanced classes, [1, 32, 32] images in [0, 1] and masks aligned with them', () => {
    expect(d.sampleShape).toEqual([1, 32, 32]);
    expect(d.maskShape).toEqual([1, 32, 32]);
    expect(d.x.length).toBe(n * S * S);
    expect(d.masks.length).toBe(d.x.length);
    expect(classCounts(d)).toEqual([50, 50, 50, 50]);
    expect(d.classNames).toEqual(['square', 'circle', 'triangle', 'cross']);
    expect(d.x.every((v) => v >= 0 && v <= 1)).toBe(true);
    expect(d.masks.every((v) => v === 0 || v === 1)).toBe(true);
  });

  it('the masks cover exactly the drawn shapes: shape pixels are > 0.5, background pixels < 0.45', () => {
    expect(mismatches(d.masks, d.x, 0.5)).toEqual([]);
    // The margin: no background pixel reaches 0.45, no shape pixel falls to 0.5.
    let bgMax = -Infinity, fgMin = Infinity;
    d.masks.forEach((m, k) => (m ? (fgMin = Math.min(fgMin, d.x[k])) : (bgMax = Math.max(bgMax, d.x[k]))));
    expect(bgMax).toBeLessThan(0.45);
    expect(fgMin).toBeGreaterThan(0.5);
  });

  it("each mask has its class's geometry", () => {
    for (let i = 0; i < n; i++) {
      const m = d.masks.subarray(i * S * S, (i + 1) * S * S);
      const f = fill(m, S);
      const [x0, y0, x1, y1] = f.box;
      const at = (x: number, y: number) => m[y * S + x];
      const row = (y: number) => Array.from({ length: x1 - x0 + 1 }, (_, k) => at(x0 + k, y)).reduce((a, b) => a + b, 0);
      const corners = at(x0, y0) + at(x1, y0) + at(x0, y1) + at(x1, y1);
      const centre = at(Math.round((x0 + x1) / 2), Math.round((y0 + y1) / 2));
      const what = `sample ${i} (${d.classNames[d.y[i]]}, fill ${f.ratio.toFixed(3)})`;
      expect(f.area, what).toBeGreaterThan(20);
      expect(centre, what).toBe(1);
      switch (d.y[i]) {
        case 0: // square: fills its box
          expect(f.ratio, what).toBe(1);
          break;
        case 1: // circle: pi/4 of its box, empty corners
          expect(f.ratio, what).toBeGreaterThan(0.68);
          expect(f.ratio, what).toBeLessThan(0.92);
          expect(corners, what).toBe(0);
          break;
        case 2: // triangle, apex up: about half its box, a narrow top and a full bottom row
          expect(f.ratio, what).toBeGreaterThan(0.45);
          expect(f.ratio, what).toBeLessThan(0.65);
          expect(row(y0), what).toBeLessThanOrEqual(3);
          expect(row(y1), what).toBeGreaterThanOrEqual(0.8 * (x1 - x0 + 1));
          break;
        case 3: // cross: two bars, empty corners, a full middle row
          expect(f.ratio, what).toBeGreaterThan(0.4);
          expect(f.ratio, what).toBeLessThan(0.66);
          expect(corners, what).toBe(0);
          expect(row(Math.round((y0 + y1) / 2)), what).toBe(x1 - x0 + 1);
          break;
      }
    }
  });

  it('3-channel images: the shape is light in every channel, the mask is per pixel', () => {
    const c = makeShapes({ n: 8, seed: 1, channels: 3 });
    expect(c.sampleShape).toEqual([3, 32, 32]);
    expect(c.masks.length).toBe(8 * S * S);
    for (let i = 0; i < 8; i++) {
      for (let ch = 0; ch < 3; ch++) {
        expect(mismatches(c.masks.subarray(i * S * S, (i + 1) * S * S), c.x.subarray((i * 3 + ch) * S * S, (i * 3 + ch + 1) * S * S), 0.5)).toEqual([]);
      }
    }
  });

  it('is deterministic for a seed and differs between seeds', () => {
    const again = makeShapes({ n, seed: 42 });
    expect(Buffer.from(again.x.buffer).equals(Buffer.from(d.x.buffer))).toBe(true);
    expect(Buffer.from(again.masks.buffer).equals(Buffer.from(d.masks.buffer))).toBe(true);
    const other = makeShapes({ n, seed: 43 });
    expect(Buffer.from(other.x.buffer).equals(Buffer.from(d.x.buffer))).toBe(false);
  });

  it('rejects bad options', () => {
    expect(() => makeShapes({ n: 0 })).toThrow(/n must be a positive integer/);
    expect(() => makeShapes({ n: 4, channels: 2 as 1 })).toThrow(/channels must be 1 or 3/);
  });
});

describe('synthetic spurious background', () => {
  const S = 32;
  const splits = datasetSplits('spurious');
  const train = splits.train as SpuriousDataset, heldout = splits.heldout as SpuriousDataset, test = splits.test as SpuriousDataset;

  it('the class-texture correlation is 95% in train and test, 50% in held-out, 0% in reversed', () => {
    expect(textureAgreement(train)).toBe(0.95);
    expect(textureAgreement(test)).toBe(0.95);
    expect(textureAgreement(heldout)).toBe(0.5);
    expect(textureAgreement(splits.reversed as SpuriousDataset)).toBe(0);
    // in held-out, each class sits on each texture equally often
    for (const c of [0, 1]) {
      for (const t of [0, 1]) {
        let k = 0;
        for (let i = 0; i < heldout.n; i++) if (heldout.y[i] === c && heldout.textures[i] === t) k++;
        expect(k).toBeGreaterThan(0.2 * heldout.n);
      }
    }
    expect(classCounts(train)).toEqual([600, 600]);
  });

  it('the texture label is what the pixels show (dots leave most of the background dark, stripes do not)', () => {
    for (const d of [train, heldout]) {
      let agree = 0;
      for (let i = 0; i < d.n; i++) {
        let dark = 0;
        for (let p = 0; p < S * S; p++) if (d.x[i * S * S + p] < 0.1 && !d.masks[i * S * S + p]) dark++;
        const looksDotted = dark / (S * S) > 0.5;
        if (looksDotted === (d.textures[i] === 1)) agree++;
      }
      expect(agree / d.n).toBeGreaterThan(0.99);
    }
  });

  it('the mask is exactly the foreground object (brighter than any background), small, of its class', () => {
    const d = makeSpurious({ n: 60, seed: 5 });
    expect(mismatches(d.masks, d.x, 0.6)).toEqual([]);
    for (let i = 0; i < d.n; i++) {
      const f = fill(d.masks.subarray(i * S * S, (i + 1) * S * S), S);
      expect(f.area).toBeGreaterThan(10);
      expect(f.area).toBeLessThan(70);
      if (d.y[i] === 1) expect(f.ratio).toBe(1); // square
      else expect(f.ratio).toBeLessThan(0.95); // circle
    }
  });

  it('is deterministic for a seed', () => {
    const a = makeSpurious({ n: 20, seed: 9, correlation: 0.8 }), b = makeSpurious({ n: 20, seed: 9, correlation: 0.8 });
    expect(Array.from(b.x)).toEqual(Array.from(a.x));
    expect(Array.from(b.textures)).toEqual(Array.from(a.textures));
    expect(textureAgreement(a)).toBe(0.8);
    expect(Array.from(makeSpurious({ n: 20, seed: 10 }).x)).not.toEqual(Array.from(a.x));
  });
});

describe('Rng', () => {
  it('is seeded, uniform in [0, 1), and its ints cover the range', () => {
    const a = new Rng(1), b = new Rng(1), c = new Rng(2);
    const xs = Array.from({ length: 5000 }, () => a.next());
    expect(Array.from({ length: 5000 }, () => b.next())).toEqual(xs);
    expect(c.next()).not.toBe(xs[0]);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.02);
    const counts = [0, 0, 0];
    for (let i = 0; i < 3000; i++) counts[new Rng(i).int(0, 2)]++;
    expect(Math.min(...counts)).toBeGreaterThan(850);
  });
});

// Similarity measures of the sanity checks (explain/metrics/similarity.ts) against values worked
// out by hand on tiny maps (the derivations are in the comments), plus their edge cases: ties,
// constant maps, identical maps, normalisation, and bad arguments. Host code only: no backend.
import { describe, expect, it } from 'vitest';
import { pearson, spearman, ssim } from '../../explain/index.ts';
import { absMaxNormalize, hogDescriptor, ranks } from '../../explain/metrics/similarity.ts';
import { histogramOfGradientsSimilarity } from '../../explain/index.ts';
import { compareExplanations } from '../../explain/sanity/index.ts';
import { rng } from '../helpers.ts';

const noise = (n: number, seed: number) => {
  const r = rng(seed);
  return Float64Array.from({ length: n }, () => r() * 2 - 1);
};

describe('ranks, spearman, pearson', () => {
  it('ties get the average of the ranks they span', () => {
    expect(Array.from(ranks([10, 20, 20, 30, 40]))).toEqual([1, 2.5, 2.5, 4, 5]);
    expect(Array.from(ranks([3, 1, 3, 3, 2]))).toEqual([4, 1, 4, 4, 2]);
    expect(Array.from(ranks([0, 0, 0]))).toEqual([2, 2, 2]);
  });

  it('spearman with ties in both inputs, by hand', () => {
    // ranks a = [1, 2.5, 2.5, 4, 5], ranks b (b = [1, 3, 2, 2, 5]) = [1, 4, 2.5, 2.5, 5]; both have mean 3.
    // deviations a: [-2, -0.5, -0.5, 1, 2], b: [-2, 1, -0.5, -0.5, 2]
    // sum of products 4 - 0.5 + 0.25 - 0.5 + 4 = 7.25; sums of squares 9.5 and 9.5; rho = 7.25 / 9.5.
    expect(spearman([10, 20, 20, 30, 40], [1, 3, 2, 2, 5])).toBeCloseTo(7.25 / 9.5, 15);
    // the textbook formula 1 - 6 sum d^2 / (n (n^2 - 1)) ignores ties and gives 1 - 6 * 4.5 / 120 = 0.775 here
    expect(Math.abs(spearman([10, 20, 20, 30, 40], [1, 3, 2, 2, 5]) - 0.775)).toBeGreaterThan(0.01);
  });

  it('spearman is 1 for a monotone transform, -1 for a reversing one, and NaN for a constant map', () => {
    const a = noise(50, 1);
    expect(spearman(a, a.map((v) => Math.exp(3 * v)))).toBe(1);
    expect(spearman(a, a.map((v) => -(v ** 3)))).toBe(-1);
    expect(spearman(a, new Float64Array(50).fill(0.3))).toBeNaN();
    expect(spearman([1, NaN, 3], [1, 2, 3])).toBeNaN();
  });

  it('pearson by hand, and NaN for a constant input', () => {
    // a = [1, 2, 3, 4] (mean 2.5), b = [2, 4, 5, 9] (mean 5): deviations [-1.5, -0.5, 0.5, 1.5] and
    // [-3, -1, 0, 4]; sum of products 4.5 + 0.5 + 0 + 6 = 11; sums of squares 5 and 26; r = 11 / sqrt(130).
    expect(pearson([1, 2, 3, 4], [2, 4, 5, 9])).toBeCloseTo(11 / Math.sqrt(130), 15);
    expect(pearson([1, 2, 3, 4], [-2, -4, -6, -8])).toBeCloseTo(-1, 15);
    expect(pearson([1, 1, 1], [1, 2, 3])).toBeNaN();
  });

  it('a map with itself correlates exactly 1', () => {
    const a = noise(64, 2);
    expect(pearson(a, a)).toBe(1);
    expect(spearman(a, a)).toBe(1);
  });

  it('rejects maps of different lengths or fewer than 2 values', () => {
    expect(() => spearman([1, 2, 3], [1, 2])).toThrow(/differ in length \(3 vs 2\)/);
    expect(() => pearson([1], [1])).toThrow(/at least 2 values/);
  });
});

describe('ssim', () => {
  const ramp = [0, 1, 2, 3, 4, 5, 6, 7, 8];

  it('one uniform window, unbiased (co)variances, by hand: a ramp against its reverse', () => {
    // L = 8: C1 = (0.01 * 8)^2 = 0.0064, C2 = (0.03 * 8)^2 = 0.0576. Both means 4; the sample
    // variances are 60 / 8 = 7.5 and the covariance -7.5, so
    //   SSIM = (2*16 + C1)(-15 + C2) / ((32 + C1)(15 + C2)) = -14.9424 / 15.0576.
    // (With biased variances, 60 / 9, it would be -13.2757 / 13.3909 = -0.99140: the test tells them apart.)
    const rev = [...ramp].reverse();
    expect(ssim(ramp, rev, { h: 3, w: 3, window: 3, normalize: 'none', dataRange: 8 })).toBeCloseTo(-14.9424 / 15.0576, 14);
  });

  it('a shifted map: the structure term is 1 and only the luminance term remains, by hand', () => {
    // b = a + 2: means 4 and 6, variances and covariance all 7.5, so
    //   SSIM = (2*4*6 + C1) / (16 + 36 + C1) = 48.0064 / 52.0064.
    const b = ramp.map((v) => v + 2);
    expect(ssim(ramp, b, { h: 3, w: 3, window: 3, normalize: 'none', dataRange: 8 })).toBeCloseTo(48.0064 / 52.0064, 14);
  });

  it('a Gaussian window weights the mean, by hand', () => {
    // 3 x 3 window, sigma 1: weights proportional to 1 (centre), e^-1/2 (edges), e^-1 (corners).
    // a = the centre pixel alone, b = a + 1: mu_a = 1 / (1 + 4 e^-1/2 + 4 e^-1), mu_b = mu_a + 1, the
    // (co)variances are all equal, so SSIM = (2 mu_a mu_b + C1) / (mu_a^2 + mu_b^2 + C1) with C1 = 1e-4.
    const a = [0, 0, 0, 0, 1, 0, 0, 0, 0];
    const b = a.map((v) => v + 1);
    const mu = 1 / (1 + 4 * Math.exp(-0.5) + 4 * Math.exp(-1));
    const want = (2 * mu * (mu + 1) + 1e-4) / (mu * mu + (mu + 1) ** 2 + 1e-4);
    expect(ssim(a, b, { h: 3, w: 3, window: 3, sigma: 1, normalize: 'none', dataRange: 1 })).toBeCloseTo(want, 14);
    // a uniform window's mean would be 1/9 instead (and the test would fail)
    expect(Math.abs(ssim(a, b, { h: 3, w: 3, window: 3, normalize: 'none', dataRange: 1 }) - want)).toBeGreaterThan(0.01);
  });

  it('the map SSIM is the mean over the window positions lying inside the map', () => {
    // 3 x 4 maps, window 3: two positions, columns 0-2 and 1-3; each equals the one-window SSIM of its crop.
    const a = noise(12, 3), b = noise(12, 4);
    const crop = (m: Float64Array, c0: number) => [0, 1, 2].flatMap((y) => [0, 1, 2].map((x) => m[y * 4 + c0 + x]));
    const opts = { window: 3, normalize: 'none' as const, dataRange: 2 };
    const want = (ssim(crop(a, 0), crop(b, 0), { h: 3, w: 3, ...opts }) + ssim(crop(a, 1), crop(b, 1), { h: 3, w: 3, ...opts })) / 2;
    expect(ssim(a, b, { h: 3, w: 4, ...opts })).toBeCloseTo(want, 15);
  });

  it('identical maps give exactly 1, constant ones too; a constant map against zeros gives C1 / (1 + C1)', () => {
    const a = noise(64, 5);
    expect(ssim(a, a, { h: 8, w: 8 })).toBe(1);
    const big = noise(256, 6);
    expect(ssim(big, big, { h: 16, w: 16, window: 11, sigma: 1.5 })).toBe(1); // Wang et al.'s window
    expect(ssim(new Float64Array(64).fill(5), new Float64Array(64).fill(5), { h: 8, w: 8 })).toBe(1);
    expect(ssim(new Float64Array(64), new Float64Array(64), { h: 8, w: 8 })).toBe(1);
    // |5| / 5 = 1 everywhere against 0 everywhere: mu 1 and 0, no variance: (C1)(C2) / ((1 + C1) C2)
    expect(ssim(new Float64Array(64).fill(5), new Float64Array(64), { h: 8, w: 8 })).toBeCloseTo(1e-4 / (1 + 1e-4), 15);
  });

  it("normalisation 'abs-max' (Adebayo et al.): sign and scale are ignored; 'none' keeps them", () => {
    const a = noise(64, 7);
    expect(Array.from(absMaxNormalize([-2, 1, 0.5]))).toEqual([1, 0.5, 0.25]);
    expect(ssim(a, a.map((v) => -3 * v), { h: 8, w: 8 })).toBe(1);
    // unnormalised, 3a against a: the contrast-structure term alone is (6 s^2 + C2) / (10 s^2 + C2), about 0.6
    expect(ssim(a, a.map((v) => 3 * v), { h: 8, w: 8, normalize: 'none', dataRange: 8 })).toBeLessThan(0.7);
    // different maps are below 1
    expect(ssim(a, noise(64, 8), { h: 8, w: 8 })).toBeLessThan(0.5);
  });

  it('rejects windows that do not fit, even windows, wrong sizes and a missing data range', () => {
    const a = noise(64, 9);
    expect(() => ssim(a, a, { h: 8, w: 8, window: 11 })).toThrow(/11 x 11 window does not fit a 8 x 8 map/);
    expect(() => ssim(a, a, { h: 8, w: 8, window: 4 })).toThrow(/odd positive integer/);
    expect(() => ssim(a, a, { h: 4, w: 8 })).toThrow(/hold 32 values, got 64 and 64/);
    expect(() => ssim(a, a, { h: 8, w: 8, normalize: 'none' })).toThrow(/dataRange .*required with normalize: 'none'/);
  });
});

describe('histogram of oriented gradients', () => {
  // 8 x 8 maps, 4-pixel cells (2 x 2 cells, one 2 x 2 block, 36 numbers), 9 bins of 20 degrees.
  const vertical = Array.from({ length: 64 }, (_, i) => (i % 8 >= 4 ? 1 : 0)); // left 0, right 1
  const horizontal = Array.from({ length: 64 }, (_, i) => (Math.floor(i / 8) >= 4 ? 1 : 0));

  it('descriptor of a vertical edge, by hand', () => {
    // gx = 1 in columns 3 and 4 (centred differences), gy = 0: orientation 0, bin 0. Each cell holds
    // one of those columns over 4 rows: histogram 4 in bin 0. L2: 4 / 8 = 0.5, clipped to 0.2, L2 again: 0.5.
    const d = hogDescriptor(vertical, { h: 8, w: 8 });
    const want = new Float64Array(36);
    for (const k of [0, 9, 18, 27]) want[k] = 0.5;
    expect(d).toHaveLength(36);
    for (let i = 0; i < 36; i++) expect(d[i]).toBeCloseTo(want[i], 9);
  });

  it('similarity: 1 for the same map (and for a rescaled one), -1/8 between a vertical and a horizontal edge, by hand', () => {
    // the horizontal edge votes 0.5 into bin 4 (90 degrees) of each cell: positions 4, 13, 22, 31.
    // Both descriptors have mean 2 / 36; covariance sum 0 - 36 (1/18)^2 = -1/9, each variance sum 1 - 1/9 = 8/9: r = -1/8.
    expect(histogramOfGradientsSimilarity(horizontal, vertical, { h: 8, w: 8 })).toBeCloseTo(-1 / 8, 12);
    expect(histogramOfGradientsSimilarity(vertical, vertical.map((v) => -2 * v), { h: 8, w: 8 })).toBe(1);
    expect(histogramOfGradientsSimilarity(new Float64Array(64), vertical, { h: 8, w: 8 })).toBeNaN(); // no gradient at all
    expect(() => hogDescriptor(vertical, { h: 8, w: 8, cell: 5 })).toThrow(/1 x 1 cells of 5 pixels, fewer than one block of 2 x 2/);
  });
});

describe('compareExplanations', () => {
  it('reduces channels as the paper does (signed sum for Spearman, sum of |.| for Spearman-abs and SSIM), per item', () => {
    // two items of [2, 3, 3].
    // item 0: a = (c, -c), b = (c, c): a's signed sum is all zeros (constant: NaN), the absolute sums are both 2|c|.
    // item 1: a = (p, q), b = (p + q, 0): equal signed sums; absolute sums |p| + |q| against |p + q|.
    const c = noise(9, 10), p = noise(9, 11), q = noise(9, 12);
    const a = Float64Array.from([...c, ...c.map((v) => -v), ...p, ...q]);
    const b = Float64Array.from([...c, ...c, ...p.map((v, i) => v + q[i]), ...new Float64Array(9)]);
    const r = compareExplanations(a, b, [2, 2, 3, 3], { ssim: { window: 3 } });
    expect(r.perItem.spearman[0]).toBeNaN();
    expect(r.perItem.spearmanAbs[0]).toBe(1);
    expect(r.perItem.ssim[0]).toBe(1);
    expect(r.perItem.spearman[1]).toBe(1);
    const absA = p.map((v, i) => Math.abs(v) + Math.abs(q[i])), absB = p.map((v, i) => Math.abs(v + q[i]));
    expect(r.perItem.spearmanAbs[1]).toBe(spearman(absA, absB));
    expect(r.perItem.spearmanAbs[1]).toBeLessThan(0.99);
    expect(r.perItem.ssim[1]).toBe(ssim(absA, absB, { h: 3, w: 3, window: 3 }));
    // means leave out the undefined (NaN) items
    expect(r.spearman).toBe(1);
    expect(r.spearmanAbs).toBe((1 + r.perItem.spearmanAbs[1]) / 2);
    expect(compareExplanations(a, b, [2, 2, 3, 3], { ssim: false }).ssim).toBeNaN();
    expect(() => compareExplanations(a, b, [2, 2, 3, 4])).toThrow(/holds 48 values, got 36 and 36/);
    expect(() => compareExplanations(a, b, [2, 2, 3, 3])).toThrow(/7 x 7 window does not fit a 3 x 3 map/);
  });
});

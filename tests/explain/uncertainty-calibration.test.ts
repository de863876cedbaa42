// Calibration (explain/uncertainty/calibration.ts, report.ts) against hand-computed values:
// ECE / MCE of six hand-made predictions, temperature scaling recovering the temperature that
// generated synthetic labels, the reliability diagram's bars, and temperature scaling lowering
// ECE of a bundled model on a held-out half of its test split. Float64 CPU backend.
import { beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import * as ex from '../../explain/uncertainty/index.ts';
import { loadBundled } from '../../models/zoo/index.ts';
import { datasetSplits, subset } from '../../models/data/index.ts';
import { expectClose, rng } from '../helpers.ts';

beforeAll(async () => {
  await bl.init({ backend: 'cpu' });
});

// Six predictions (2 classes), labels, and by hand with 5 bins (0,.2] (.2,.4] (.4,.6] (.6,.8] (.8,1]:
//   conf .55 wrong, .6 right          -> bin 3: conf .575, acc .5, gap .075
//   conf .8 wrong, .7 right           -> bin 4: conf .75,  acc .5, gap .25
//   conf .9 right, .95 right          -> bin 5: conf .925, acc 1,  gap .075
//   ECE = (2/6)(.075 + .25 + .075) = .4/3; MCE = .25; accuracy 4/6; mean confidence 4.5/6.
const P6 = [0.9, 0.1, 0.8, 0.2, 0.3, 0.7, 0.45, 0.55, 0.6, 0.4, 0.05, 0.95];
const Y6 = [0, 1, 1, 0, 0, 1];

describe('reliabilityBins', () => {
  it('ECE, MCE and bins of six hand-made predictions (tensor and flat array agree)', async () => {
    const r = await ex.reliabilityBins(bl.tensor(P6, [6, 2]), bl.tensor(Y6, [6]), { bins: 5 });
    expectClose([r.ece, r.mce, r.accuracy, r.confidence], [0.4 / 3, 0.25, 4 / 6, 4.5 / 6], 1e-12);
    expect(r.bins.map((b) => b.count)).toEqual([0, 0, 2, 2, 2]);
    expect(r.bins[0]).toEqual({ lo: 0, hi: 0.2, confidence: null, accuracy: null, count: 0 });
    expectClose(r.bins.slice(2).map((b) => b.confidence!), [0.575, 0.75, 0.925], 1e-12);
    expectClose(r.bins.slice(2).map((b) => b.accuracy!), [0.5, 0.5, 1], 1e-12);
    const flat = await ex.reliabilityBins(Float64Array.from(P6), Y6, { bins: 5 });
    expect([flat.ece, flat.mce]).toEqual([r.ece, r.mce]);
    // Stored as float32, 0.6 and 0.8 round up (0.6000000238, 0.8000000119) and move up a bin:
    // (.4, .6] keeps only .55 (wrong): gap .55, the MCE; ECE = (.55 + 2 * .35 + 3 * |2/3 - .88333|) / 6.
    const f32 = await ex.reliabilityBins(Float32Array.from(P6), Y6, { bins: 5 });
    expect(f32.bins.map((b) => b.count)).toEqual([0, 0, 1, 2, 3]);
    expectClose([f32.mce, f32.ece], [0.55, (0.55 + 2 * 0.35 + 3 * (2.65 / 3 - 2 / 3)) / 6], 1e-6);
  });

  it('defaults to 15 bins; a confidence on a bin edge belongs to the lower bin ((lo, hi])', async () => {
    const r = await ex.reliabilityBins([0.6, 0.4, 1, 0], [0, 1]);
    expect(r.bins.length).toBe(15);
    // 0.6 = 9/15 is the upper edge of bin 9 (index 8); 1 belongs to the last bin.
    expect(r.bins.map((b) => b.count)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1]);
    // bin 9: right at .6 (gap .4); bin 15: wrong at 1 (gap 1): ECE = (.4 + 1) / 2, MCE = 1.
    expectClose([r.ece, r.mce], [0.7, 1], 1e-12);
  });

  it('rejects logits, NaN, bad labels and mismatched sizes, naming the problem', async () => {
    await expect(ex.reliabilityBins([2, 1, 0.5, 3], [0, 1])).rejects.toThrow(/reliabilityBins: row 0 of probs sums to 3, not 1; pass softmax probabilities, not logits/);
    await expect(ex.reliabilityBins([1.5, -0.5], [0])).rejects.toThrow(/probs\[0\]\[1\] is -0.5; probabilities must be finite and non-negative/);
    await expect(ex.reliabilityBins([NaN, 1], [0])).rejects.toThrow(/probs\[0\]\[0\] is NaN/);
    await expect(ex.reliabilityBins([0.5, 0.5], [2])).rejects.toThrow(/label 0 is 2; expected a class index in \[0, 1\]/);
    await expect(ex.reliabilityBins(bl.tensor(P6, [6, 2]), [0, 1])).rejects.toThrow(/6 rows but there are 2 labels/);
    await expect(ex.reliabilityBins(P6, Y6, { bins: 0 })).rejects.toThrow(/bins must be a positive integer, got 0/);
  });
});

/** Synthetic logits z ~ 3 N(0, 1) (C classes) and labels drawn from softmax(z / T0). */
function synthetic(n: number, c: number, T0: number, seed: number): { z: Float64Array; y: Float64Array } {
  const r = rng(seed);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  const z = new Float64Array(n * c), y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const p: number[] = [];
    for (let j = 0; j < c; j++) p.push(Math.exp((z[i * c + j] = 3 * gauss()) / T0));
    const s = p.reduce((a, b) => a + b, 0);
    let u = r() * s, k = 0;
    while (k < c - 1 && (u -= p[k]) > 0) k++;
    y[i] = k;
  }
  return { z, y };
}

describe('temperature scaling', () => {
  it('recovers the temperature that generated the labels (T0 = 2.5 and 0.5)', async () => {
    for (const T0 of [2.5, 0.5]) {
      const { z, y } = synthetic(20000, 4, T0, 7);
      const T = await ex.fitTemperature(bl.tensor(z, [20000, 4]), bl.tensor(y, [20000]));
      console.log(`temperature scaling: generated with T0 = ${T0}, fitted T = ${T.toFixed(4)}`);
      expect(Math.abs(T - T0) / T0).toBeLessThan(0.03);
    }
  });

  it('the fitted T is the NLL minimum (float64 golden section): neighbours are worse, the derivative vanishes', async () => {
    const { z, y } = synthetic(500, 3, 1.7, 3);
    const fit = await ex.fitTemperatureDetails(z, y);
    const f = (t: number) => ex.nllAtTemperature(z, y, 3, t);
    expect(fit.atBound).toBe(false);
    expect(f(fit.temperature * 1.001)).toBeGreaterThan(fit.nllAfter);
    expect(f(fit.temperature / 1.001)).toBeGreaterThan(fit.nllAfter);
    const h = 1e-5 * fit.temperature;
    expect(Math.abs((f(fit.temperature + h) - f(fit.temperature - h)) / (2 * h))).toBeLessThan(1e-5);
    expect(fit.nllAfter).toBeLessThanOrEqual(fit.nllBefore);
    expectClose([fit.nllBefore], [f(1)], 1e-14);
  });

  it('NLL at T against a hand computation; separable data runs to the range end and says so', async () => {
    // logits [ln 3, 0] label 0: p = 3/4, NLL = ln(4/3); at T = 2: p = sqrt3/(sqrt3+1).
    expectClose([ex.nllAtTemperature([Math.log(3), 0], [0], 2, 1)], [Math.log(4 / 3)], 1e-14);
    expectClose([ex.nllAtTemperature([Math.log(3), 0], [0], 2, 2)], [-Math.log(Math.sqrt(3) / (Math.sqrt(3) + 1))], 1e-14);
    const fit = await ex.fitTemperatureDetails([2, 0, 0, 2, 1, -1], [0, 1, 0], { range: [0.05, 20] });
    expect(fit.atBound).toBe(true);
    expect(fit.temperature).toBeCloseTo(0.05, 10);
  });

  it('applyTemperature divides the logits and leaves the input alive; bad T and logits are errors', async () => {
    const z = bl.tensor([1, -2, 4, 0.5], [2, 2]);
    const s = ex.applyTemperature(z, 2);
    expectClose(await s.data(), [0.5, -1, 2, 0.25], 1e-15);
    expect(z.disposed).toBe(false);
    expect(() => ex.applyTemperature(z, 0)).toThrow(/applyTemperature: T must be a finite number > 0, got 0/);
    expect(() => ex.applyTemperature(z, NaN)).toThrow(/got NaN/);
    await expect(ex.fitTemperature([1, NaN], [0])).rejects.toThrow(/fitTemperature: logits\[0\]\[1\] is NaN/);
    await expect(ex.fitTemperature([1, 2, 3], [0, 1])).rejects.toThrow(/3 values, not a multiple of the 2 labels/);
    await expect(ex.fitTemperature([1, 2], [0], { range: [0, 1] })).rejects.toThrow(/range must be/);
    z.dispose();
    s.dispose();
  });
});

describe('reliabilityDiagramSvg', () => {
  it('one accuracy bar per non-empty bin, at the bin and with the accuracy as height, and the diagonal', async () => {
    const r = await ex.reliabilityBins(P6, Y6, { bins: 5 });
    const svg = ex.reliabilityDiagramSvg(r, { title: 'six <predictions> & "bins"', width: 260, height: 260 });
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.endsWith('</svg>')).toBe(true);
    expect(svg).toContain('six &lt;predictions&gt; &amp; &quot;bins&quot;');
    expect(svg).toContain('ECE 13.33%');
    const bars = [...svg.matchAll(/<rect class="accuracy" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"/g)].map((m) => m.slice(1).map(Number));
    expect(bars.length).toBe(3);
    // Plot area: left 48, right 12, top 30 (title), bottom 40 -> 200 x 190 pixels.
    const pw = 260 - 60, ph = 260 - 70;
    expectClose(bars.map((b) => b[0]), [48 + 0.4 * pw, 48 + 0.6 * pw, 48 + 0.8 * pw], 1e-3);
    expectClose(bars.map((b) => b[3]), [0.5 * ph, 0.5 * ph, 1 * ph], 1e-3);
    expect((svg.match(/class="diagonal"/g) ?? []).length).toBe(1);
    expect(ex.reliabilityDiagramSvg(r.bins)).not.toContain('ECE');
    expect(() => ex.reliabilityDiagramSvg([])).toThrow(/reliabilityDiagramSvg: bins must be a non-empty array/);
  });
});

describe('calibrationReport', () => {
  it('temperature scaling fitted on one half of digits-cnn\'s test split lowers ECE on the other half', async () => {
    const model = await loadBundled('digits-cnn');
    const te = datasetSplits('digits').test;
    const idx = Array.from({ length: te.n }, (_, i) => i);
    const val = subset(te, idx.filter((i) => i % 2 === 0)), test = subset(te, idx.filter((i) => i % 2 === 1));
    const r = await ex.calibrationReport(model, val, test);
    console.log(`digits-cnn calibration (val ${r.n_val}, test ${r.n_test}): T = ${r.temperature.toFixed(3)}, ECE ${r.ece.toFixed(4)} -> ${r.ece_after_temperature.toFixed(4)}, NLL ${r.nll.toFixed(4)} -> ${r.nll_after_temperature.toFixed(4)}, accuracy ${r.accuracy.toFixed(4)}`);
    expect(r.ece_after_temperature).toBeLessThan(r.ece);
    expect(r.nll_after_temperature).toBeLessThan(r.nll);
    expect(r.temperature_at_bound).toBe(false);
    // The report's ECE is reliabilityBins of the model's softmax on the test half (an independent path).
    const x = bl.tensor(test.x, [test.n, ...test.sampleShape]);
    const logits = model.call(x);
    const direct = await ex.reliabilityBins(bl.softmax(logits, 1), test.y);
    const scaled = await ex.reliabilityBins(bl.softmax(ex.applyTemperature(logits, r.temperature), 1), test.y);
    expectClose([r.ece, r.ece_after_temperature, r.accuracy], [direct.ece, scaled.ece, direct.accuracy], 1e-9);
    expect(r.bins_before.reduce((a, b) => a + b.count, 0)).toBe(test.n);
    expect(r.bins_after.length).toBe(15);
    // The same with tensors as input.
    const r2 = await ex.calibrationReport(model, { x: bl.tensor(val.x, [val.n, 1, 8, 8]), y: val.y }, { x, y: bl.tensor(test.y, [test.n]) });
    expectClose([r2.temperature, r2.ece_after_temperature], [r.temperature, r.ece_after_temperature], 1e-9);
    expect(x.disposed).toBe(false);
    model.dispose();
  });

  it('errors name the split and the mismatch', async () => {
    const model = await loadBundled('breast-cancer-mlp');
    const x = bl.zeros([4, 30]);
    await expect(ex.calibrationReport(model, { x, y: [0, 1, 0] }, { x, y: [0, 1, 0, 1] })).rejects.toThrow(/calibrationReport \(val\): 4 inputs but 3 labels/);
    await expect(ex.calibrationReport(model, { x, y: [0, 1, 0, 5] }, { x, y: [0, 1, 0, 1] })).rejects.toThrow(/label 3 is 5; expected a class index in \[0, 1\]/);
    model.dispose();
  });
});

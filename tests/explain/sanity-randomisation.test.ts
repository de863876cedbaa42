// Sanity checks (Adebayo et al. 2018) on the bundled digits-cnn, float64 CPU backend: model
// parameter randomisation changes gradient explanations (low rank correlation, lower the more
// layers are randomised) and leaves an input-only edge detector exactly unchanged; the model's
// parameters come back bit-identical, as the same tensor objects, also when the explainer throws;
// label randomisation (a small digits-cnn trained for a few epochs on permuted labels); the plot.
import { beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import * as ex from '../../explain/index.ts';
import type { Module } from '../../models/index.ts';
import { loadBundled } from '../../models/zoo/index.ts';
import { digitsCnn } from '../../models/zoo/architectures.ts';
import { datasetSplits, subset } from '../../models/data/index.ts';
import { batchOf, evaluate } from '../../models/train.ts';

let model: Module;
let x: Tensor;
const digits = datasetSplits('digits');

beforeAll(async () => {
  await bl.init({ backend: 'cpu' });
  model = await loadBundled('digits-cnn');
  x = batchOf(digits.test, Array.from({ length: 16 }, (_, i) => i)).x; // 16 held-out digits
});

const saliency: ex.ExplainFn = (m, x) => ex.saliency(m, x, { target: 'predicted' });
const ig: ex.ExplainFn = (m, x) => ex.integratedGradients(m, x, { target: 'predicted', steps: 16 });
const guided: ex.ExplainFn = (m, x) => ex.guidedBackprop(m, x, { target: 'predicted' });

function table(name: string, rows: ex.RandomisationResult[]): void {
  console.log(`${name}: similarity to the original explanation (means over ${rows[0].perItem.spearman.length} digits)`);
  console.log(`  ${'randomised'.padEnd(12)} spearman  spearman|.|  ssim`);
  for (const r of rows) console.log(`  ${r.layer.padEnd(12)} ${r.spearman.toFixed(3).padStart(8)}  ${r.spearmanAbs.toFixed(3).padStart(10)}  ${r.ssim.toFixed(3).padStart(5)}`);
}

/** Every parameter and buffer: the same tensor object with the same values as `before`. */
async function snapshot(m: Module) {
  const out = new Map<string, [Tensor, number[]]>();
  for (const [k, t] of m.stateDict()) out.set(k, [t, Array.from(await t.data())]);
  return out;
}
async function expectUnchanged(m: Module, before: Map<string, [Tensor, number[]]>) {
  const now = m.stateDict();
  expect([...now.keys()]).toEqual([...before.keys()]);
  for (const [k, [t, v]] of before) {
    expect(now.get(k), k).toBe(t);
    expect(Array.from(await now.get(k)!.data()), k).toEqual(v);
  }
}

describe('model parameter randomisation', () => {
  it('default layers: every layer with parameters, from the logits down', () => {
    expect(ex.randomisableLayers(model)).toEqual(['classifier', 'features.5', 'features.2', 'features.0']);
  });

  it('cascading: saliency loses its rank correlation, the more so the more layers are randomised', async () => {
    const before = await snapshot(model);
    const rows = await ex.modelRandomisation(model, x, saliency, { mode: 'cascading' });
    table('saliency, cascading', rows);
    await expectUnchanged(model, before);
    expect(rows.map((r) => r.layer)).toEqual(['classifier', 'features.5', 'features.2', 'features.0']);
    expect(rows[0].parameters).toEqual(['classifier.weight', 'classifier.bias']);
    for (const r of rows) {
      expect(r.perItem.spearmanAbs).toHaveLength(16);
      expect(r.spearmanAbs).toBeLessThan(0.5); // already the top layer alone destroys most of it
      expect(r.ssim).toBeLessThan(0.5);
    }
    const first = rows[0], last = rows[rows.length - 1];
    expect(last.spearmanAbs).toBeLessThan(0.15); // a fully random network: nearly unrelated maps
    expect(last.spearmanAbs).toBeLessThan(first.spearmanAbs - 0.2);
    expect(last.ssim).toBeLessThan(first.ssim - 0.2);
  });

  it('integrated gradients: the signed maps decorrelate, the absolute ones keep the input zeros (as the paper notes for input-times-gradient methods)', async () => {
    const rows = await ex.modelRandomisation(model, x, ig);
    table('integrated gradients, cascading', rows);
    for (const r of rows) expect(r.spearman).toBeLessThan(0.5);
    // IG = (x - 0) * mean gradient is 0 wherever the digit is 0 (about half of the pixels), under
    // any weights: those tied zeros keep the rank correlation of |IG| high.
    for (const r of rows) expect(r.spearmanAbs).toBeGreaterThan(0.8);
  });

  it('guided backprop stays more similar than the gradient when the top layer is randomised (the paper\'s finding)', async () => {
    const [g] = await ex.modelRandomisation(model, x, guided, { layers: ['classifier'] });
    const [s] = await ex.modelRandomisation(model, x, saliency, { layers: ['classifier'] });
    console.log(`top layer randomised, spearman|.|: guided backprop ${g.spearmanAbs.toFixed(3)}, saliency ${s.spearmanAbs.toFixed(3)}`);
    expect(g.spearmanAbs).toBeGreaterThan(s.spearmanAbs + 0.3);
  });

  it('independent: randomising any single layer changes saliency too', async () => {
    const rows = await ex.modelRandomisation(model, x, saliency, { mode: 'independent' });
    table('saliency, independent', rows);
    for (const r of rows) expect(r.spearmanAbs).toBeLessThan(0.5);
  });

  it('an input-only edge detector (|Sobel| of the input) is exactly unchanged, in both modes', async () => {
    for (const mode of ['cascading', 'independent'] as const) {
      const rows = await ex.modelRandomisation(model, x, ex.edgeDetector, { mode });
      table(`edge detector, ${mode}`, rows);
      for (const r of rows) {
        expect([r.spearman, r.spearmanAbs, r.ssim]).toEqual([1, 1, 1]);
        expect(r.perItem.ssim.every((v) => v === 1)).toBe(true);
      }
    }
  });

  it('the explainer sees the randomised weights; re-initialising with the original values changes nothing (similarity exactly 1)', async () => {
    const seen: boolean[] = [];
    const original = model.module('classifier').param('weight');
    await ex.modelRandomisation(model, x, async (m, xx) => {
      seen.push(m.module('classifier').param('weight') === original);
      return saliency(m, xx);
    }, { layers: ['classifier', 'features.5'] });
    expect(seen).toEqual([true, false, false]); // the original explanation, then both randomised steps
    const rows = await ex.modelRandomisation(model, x, saliency, { init: (_name, values) => values });
    for (const r of rows) expect([r.spearman, r.spearmanAbs, r.ssim]).toEqual([1, 1, 1]);
  });

  it('new weights keep each parameter\'s scale (N(0, std of the original)), are seeded, and are the same in both modes', async () => {
    const stds: Record<string, [number, number]> = {};
    const stdOf = (v: ArrayLike<number>) => {
      const a = Array.from(v), m = a.reduce((s, t) => s + t, 0) / a.length;
      return Math.sqrt(a.reduce((s, t) => s + (t - m) ** 2, 0) / a.length);
    };
    const w0 = stdOf(await model.module('features.2').param('weight').data());
    const grab: ex.ExplainFn = async (m, xx) => {
      stds.now = [stdOf(await m.module('features.2').param('weight').data()), (await m.module('features.2').param('weight').data())[0]];
      return saliency(m, xx);
    };
    await ex.modelRandomisation(model, x, grab, { layers: ['features.2'], mode: 'independent' });
    const [std, first] = stds.now;
    expect(Math.abs(std / w0 - 1)).toBeLessThan(0.1); // 1152 values: the sample std is within a few % of s
    await ex.modelRandomisation(model, x, grab, { layers: ['features.5', 'features.2'], mode: 'cascading' });
    expect(stds.now[1]).toBe(first); // the same values for the same parameter and seed, whatever else is randomised
    await ex.modelRandomisation(model, x, grab, { layers: ['features.2'], seed: 1 });
    expect(stds.now[1]).not.toBe(first);
    const a = await ex.modelRandomisation(model, x, saliency, { seed: 3 });
    const b = await ex.modelRandomisation(model, x, saliency, { seed: 3 });
    expect(b).toEqual(a);
  });

  it('parameters are restored bit-identical, as the same objects, when the explainer throws mid-way (both modes)', async () => {
    const before = await snapshot(model);
    for (const mode of ['cascading', 'independent'] as const) {
      let calls = 0;
      const failing: ex.ExplainFn = async (m, xx) => {
        if (++calls === 3) throw new Error('explainer failed on purpose');
        return saliency(m, xx);
      };
      await expect(ex.modelRandomisation(model, x, failing, { mode })).rejects.toThrow('explainer failed on purpose');
      expect(calls).toBe(3); // it failed with layers randomised
      await expectUnchanged(model, before);
    }
    // a bad init, after one layer was swapped
    await expect(ex.modelRandomisation(model, x, saliency, { init: (name, v) => (name === 'classifier.bias' ? [1] : v) }))
      .rejects.toThrow(/init returned 1 values for 'classifier.bias' \[10\], expected 10/);
    await expectUnchanged(model, before);
    // predictions are those of the bundled model
    const acc = await evaluate(model, digits.test);
    expect(acc.accuracy).toBeGreaterThan(0.95);
  });

  it('leaves no tensors behind: the swapped-in weights and the explanations are disposed, also on failure', async () => {
    await ex.modelRandomisation(model, x, saliency, { layers: ['classifier'] }); // warm-up
    const live = bl.memory().liveBuffers;
    await ex.modelRandomisation(model, x, saliency);
    await ex.modelRandomisation(model, x, ex.edgeDetector, { mode: 'independent' });
    let calls = 0;
    await expect(ex.modelRandomisation(model, x, async (m, xx) => {
      if (++calls === 3) throw new Error('late failure');
      return saliency(m, xx);
    })).rejects.toThrow('late failure');
    expect(bl.memory().liveBuffers).toBe(live);
  });

  it('rejects unknown layers, layers without parameters and explainers that return no tensor', async () => {
    await expect(ex.modelRandomisation(model, x, saliency, { layers: ['features.1'] })).rejects.toThrow(/'features.1' is not a layer with parameters; layers with parameters \(top down\): classifier, features.5, features.2, features.0/);
    await expect(ex.modelRandomisation(model, x, saliency, { layers: ['classifier', 'classifier'] })).rejects.toThrow(/twice/);
    await expect(ex.modelRandomisation(model, x, async () => 3 as unknown as Tensor)).rejects.toThrow(/must resolve to a Tensor, got number/);
    await expect(ex.modelRandomisation(model, x, saliency, { mode: 'cascade' as 'cascading' })).rejects.toThrow(/mode must be 'cascading' or 'independent'/);
  });
});

describe('label randomisation', () => {
  it('a digits-cnn trained on permuted labels explains differently; the edge detector does not care', async () => {
    // Small: 400 training digits, 4 epochs of Adam for each of the two models (same init and shuffle).
    const train = subset(digits.train, Array.from({ length: 400 }, (_, i) => i));
    const r = await ex.labelRandomisation(x, saliency, { build: digitsCnn, train, epochs: 4, returnModels: true });
    const { reference, randomLabels } = r.models!;
    try {
      const test = subset(digits.test, Array.from({ length: 200 }, (_, i) => i));
      const accRef = (await evaluate(reference, test)).accuracy, accRnd = (await evaluate(randomLabels, test)).accuracy;
      console.log(`label randomisation: ${(r.labelsChanged * 100).toFixed(1)}% of labels changed; train accuracy ${JSON.stringify(r.trainAccuracy)}; test accuracy true labels ${accRef.toFixed(3)}, permuted ${accRnd.toFixed(3)}`);
      console.log(`  saliency: spearman ${r.spearman.toFixed(3)}, spearman|.| ${r.spearmanAbs.toFixed(3)}, ssim ${r.ssim.toFixed(3)}`);
      expect(r.labelsChanged).toBeGreaterThan(0.85);
      expect(accRef).toBeGreaterThan(0.5);
      expect(accRnd).toBeLessThan(0.2); // it learned nothing that transfers
      expect(r.trainAccuracy.reference).toBeGreaterThan(0.5);
      expect(r.spearmanAbs).toBeLessThan(0.4);
      expect(r.ssim).toBeLessThan(0.4);
      const toHost = async (t: Tensor) => Float64Array.from(await t.data());
      const edge = ex.compareExplanations(await toHost(await ex.edgeDetector(reference, x)), await toHost(await ex.edgeDetector(randomLabels, x)), x.shape);
      expect([edge.spearman, edge.spearmanAbs, edge.ssim]).toEqual([1, 1, 1]);
    } finally {
      reference.dispose();
      randomLabels.dispose();
    }
  });
});

describe('randomisationPlotSvg', () => {
  it("draws 'original' then the layers, one line per measure, gaps at NaN, escaped text", () => {
    const rows = [
      { layer: 'classifier', spearman: 0.5, spearmanAbs: 0.4, ssim: 0.45 },
      { layer: 'features.5', spearman: NaN, spearmanAbs: 0.2, ssim: 0.3 },
      { layer: 'features<0>', spearman: -0.3, spearmanAbs: 0.1, ssim: 0.05 },
    ];
    const svg = ex.randomisationPlotSvg(rows, { title: 'saliency & friends' });
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('saliency &amp; friends');
    expect(svg).toContain('features&lt;0&gt;');
    expect(svg).not.toContain('features<0>');
    const labels = [...svg.matchAll(/rotate\(40\)" text-anchor="start">([^<]*)</g)].map((m) => m[1]);
    expect(labels).toEqual(['original', 'classifier', 'features.5', 'features&lt;0&gt;']);
    const paths = Object.fromEntries([...svg.matchAll(/data-measure="(\w+)"[^>]*>\n<path d="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    expect(Object.keys(paths)).toEqual(['spearman', 'spearmanAbs', 'ssim']);
    expect(paths.spearman.match(/M/g)).toHaveLength(2); // the NaN splits the line in two
    expect(paths.ssim.match(/[ML]/g)).toHaveLength(4); // original + 3 layers
    // y grows downwards: 'original' (1) sits above 0.45, and the axis reaches down to -0.4 (below -0.3)
    const ys = paths.ssim.split(/[ML]/).filter(Boolean).map((p) => Number(p.trim().split(' ')[1]));
    expect(ys[0]).toBeLessThan(ys[1]);
    expect(svg).toContain('>-0.4<');
    expect(() => ex.randomisationPlotSvg(rows, { measures: ['pearson' as 'ssim'] })).toThrow(/unknown measure 'pearson'/);
  });
});

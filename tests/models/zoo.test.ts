// The bundled trained models: each loads (built from its architecture, weights from
// models/weights/<name>.safetensors, eval mode), and its test accuracy, recomputed here on the
// held-out test split, reaches the bar. The spurious model shows its shortcut on the held-out
// split. The cheapest model is retrained to check that training reproduces the bundled bytes.
import { readFileSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import { evaluate, parseSafetensors, serializeSafetensors } from '../../models/index.ts';
import { datasetSplits, subset } from '../../models/data/index.ts';
import { ZOO, type ModelSummary, listModels, loadBundled, modelFromSafetensors, modelSummary, summaryPath, weightsPath } from '../../models/zoo/index.ts';
import { trainBundled } from '../../models/zoo/train.ts';

beforeAll(async () => {
  await bl.init({ backend: 'cpu' });
});

const names = Object.keys(ZOO);

describe('bundled models', () => {
  it('are listed with their input shapes, classes and recorded accuracy', () => {
    const ms = listModels();
    expect(ms.map((m) => m.name)).toEqual(['digits-cnn', 'shapes-cnn', 'spurious-cnn', 'breast-cancer-mlp', 'resnet-bn', 'prototype-digits', 'shapes-vit']);
    for (const m of ms) {
      expect(m.weights, m.name).not.toBeNull();
      expect(m.accuracy, m.name).toBeGreaterThan(0);
      expect(m.classes.length).toBeGreaterThan(1);
    }
    expect(ms[0].inputShape).toEqual([1, 8, 8]);
  });

  for (const name of names) {
    it(`${name}: loads in eval mode, small weights with metadata, test accuracy >= ${ZOO[name].minAccuracy} (recomputed)`, async () => {
      const spec = ZOO[name];
      const bytes = readFileSync(weightsPath(name));
      expect(statSync(weightsPath(name)).size).toBeLessThan(1 << 20);
      const meta = parseSafetensors(new Uint8Array(bytes)).metadata;
      expect(meta.architecture).toBe(name);
      expect(JSON.parse(meta.input_shape)).toEqual(spec.inputShape);
      expect(JSON.parse(meta.classes)).toEqual(spec.classes);
      expect(meta.seed).toBe(String(spec.recipe.seed));
      expect(meta.backend).toMatch(/cpu|webgpu/);
      expect(Number(meta.accuracy)).toBeGreaterThan(0);

      const model = await loadBundled(name);
      expect(model.namedModules().every(([, m]) => !m.training)).toBe(true);
      const splits = datasetSplits(spec.dataset);
      const { accuracy } = await evaluate(model, splits.test);
      expect(accuracy).toBeGreaterThanOrEqual(spec.minAccuracy);
      // The recorded figure is what training measured (float64 weights; the file holds float32).
      const sum = modelSummary(name)!;
      expect(Math.abs(sum.accuracy - accuracy)).toBeLessThanOrEqual(2 / splits.test.n);
      expect(sum.accuracies.test).toBe(sum.accuracy);
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(sum.sha256);
      model.dispose();
    });
  }

  it('digits-cnn reaches 95% on the digits test split', async () => {
    const m = await loadBundled('digits-cnn');
    expect((await evaluate(m, datasetSplits('digits').test)).accuracy).toBeGreaterThanOrEqual(0.95);
  });

  it('spurious-cnn learned the shortcut: high on train/test (95% texture correlation), low on held-out (50%)', async () => {
    const m = await loadBundled('spurious-cnn');
    const s = datasetSplits('spurious');
    // (a part of the train and reversed splits, to keep the test fast)
    const acc = async (k: string, n?: number) => (await evaluate(m, n ? subset(s[k]!, Array.from({ length: n }, (_, i) => i)) : s[k]!)).accuracy;
    const [train, test, heldout, reversed] = [await acc('train', 400), await acc('test'), await acc('heldout'), await acc('reversed', 200)];
    expect(train).toBeGreaterThanOrEqual(0.9);
    expect(test).toBeGreaterThanOrEqual(0.9);
    expect(heldout).toBeLessThan(test - 0.25);
    expect(reversed).toBeLessThan(0.3);
    expect(modelSummary('spurious-cnn')!.accuracies).toHaveProperty('heldout');
  });

  it('layer paths: features.N, pool (GAP), classifier; residual blocks nest', async () => {
    const paths = (n: string) => ZOO[n].build().namedModules().map(([p, m]) => `${p}:${m.kind}`);
    expect(paths('digits-cnn')).toEqual([
      ':Sequential', 'features:Sequential', 'features.0:Conv2d', 'features.1:ReLU', 'features.2:Conv2d', 'features.3:ReLU',
      'features.4:MaxPool2d', 'features.5:Conv2d', 'features.6:ReLU', 'pool:GlobalAvgPool', 'classifier:Linear',
    ]);
    expect(paths('shapes-cnn')).toContain('features.10:ReLU');
    expect(paths('shapes-cnn').slice(-2)).toEqual(['pool:GlobalAvgPool', 'classifier:Linear']);
    const r = paths('resnet-bn');
    for (const p of ['features.3:Residual', 'features.3.block.0:Conv2d', 'features.3.block.1:BatchNorm2d', 'features.5.shortcut.0:Conv2d', 'features.5.shortcut.1:BatchNorm2d']) expect(r).toContain(p);
    expect(paths('breast-cancer-mlp').slice(0, 3)).toEqual([':Sequential', 'standardize:Standardize', 'features:Sequential']);
  });

  it('a safetensors file without a known architecture fails with a clear message', () => {
    const t = new Map([['w', { shape: [1], data: new Float32Array([1]) }]]);
    expect(() => modelFromSafetensors(serializeSafetensors(t, {}), 'x.safetensors')).toThrow(/x\.safetensors: .*no 'architecture'.*digits-cnn/);
    expect(() => modelFromSafetensors(serializeSafetensors(t, { architecture: 'vgg' }), 'y.safetensors')).toThrow(/y\.safetensors: unknown architecture 'vgg'/);
    // the right architecture with the wrong tensors: the loader lists the differences
    expect(() => modelFromSafetensors(serializeSafetensors(t, { architecture: 'digits-cnn' }), 'z.safetensors')).toThrow(/z\.safetensors: does not fit the model: missing 'features\.0\.weight'/);
  });

  it('training is reproducible: retraining breast-cancer-mlp gives the bundled bytes', async () => {
    const s = await trainBundled('breast-cancer-mlp', { write: false, progress: false });
    const recorded = JSON.parse(readFileSync(summaryPath('breast-cancer-mlp'), 'utf8')) as ModelSummary;
    expect(s.sha256).toBe(recorded.sha256);
    expect(s.accuracies).toEqual(recorded.accuracies);
  });
});

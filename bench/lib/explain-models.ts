// The bundled models and their input images for bench/explain.ts, loaded in a way that also works
// when the benchmark is bundled into one file (../shared/device/pack.sh): the zoo's WEIGHTS_DIR and
// the data loaders resolve paths relative to their own module URL, which a bundle moves, so the
// weights are read from a directory (--weights DIR, default the repository's models/weights/)
// with modelFromSafetensors, and the digits from data/digits.csv.gz under the current directory
// when the data loader cannot find them.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { Module } from '../../models/module.ts';
import { datasetSplits, makeShapes, trainTestSplit } from '../../models/data/index.ts';
import { WEIGHTS_DIR, modelFromSafetensors, type ZooSpec } from '../../models/zoo/index.ts';

/** The weights directory: `dir` if given, else the zoo's own (tsx), else ./models/weights (bundled). */
export function weightsDir(dir?: string): string {
  if (dir) return dir;
  if (existsSync(join(WEIGHTS_DIR, 'digits-cnn.safetensors'))) return WEIGHTS_DIR;
  return join(process.cwd(), 'models', 'weights');
}

export interface LoadedModel {
  name: string;
  model: Module;
  spec: ZooSpec;
  path: string;
  bytes: Uint8Array;
}

/** A bundled model from `<dir>/<name>.safetensors`, built on the current default backend, eval mode. */
export function loadModel(name: string, dir: string): LoadedModel {
  const path = join(dir, `${name}.safetensors`);
  if (!existsSync(path)) throw new Error(`no weights for '${name}' at ${path} (give --weights DIR, the folder holding <model>.safetensors)`);
  const bytes = new Uint8Array(readFileSync(path));
  const { model, spec } = modelFromSafetensors(bytes, path);
  if (spec.name !== name) throw new Error(`${path}: its metadata names architecture '${spec.name}', expected '${name}'`);
  return { name, model, spec, path, bytes };
}

export interface Images {
  /** NCHW. */
  x: Float32Array;
  /** The true class of each image. */
  labels: Int32Array;
  n: number;
  shape: number[];
  source: string;
}

/** The digits' test split as models/data's DATASETS.digits makes it, read from ./data/digits.csv.gz. */
function digitsTestFromFile(): { x: Float32Array; y: Float32Array; n: number; source: string } {
  const path = join(process.cwd(), 'data', 'digits.csv.gz');
  const lines = gunzipSync(readFileSync(path)).toString('utf8').split('\n').map((l) => l.trim()).filter(Boolean);
  const x = new Float32Array(lines.length * 64), y = new Float32Array(lines.length);
  lines.forEach((l, i) => {
    const v = l.split(',').map(Number);
    for (let j = 0; j < 64; j++) x[i * 64 + j] = v[j] / 16;
    y[i] = v[64];
  });
  const { test } = trainTestSplit({ x, y, n: lines.length, sampleShape: [1, 8, 8], numClasses: 10 }, { testFraction: 0.2, seed: 0 });
  return { x: test.x, y: test.y, n: test.n, source: `UCI digits, test split (80/20, seed 0) of ${path}` };
}

/**
 * The first n test images of the model's data set (cycled if n exceeds the split): digits' test
 * split, or the shapes test set (seed 2).
 */
export function testImages(spec: ZooSpec, n: number): Images {
  const shape = spec.inputShape;
  const per = shape.reduce((a, b) => a * b, 1);
  let src: { x: Float32Array; y: Float32Array; n: number; source: string };
  if (spec.dataset === 'shapes') {
    const d = makeShapes({ n: Math.max(n, 4), seed: 2 });
    src = { x: d.x, y: d.y, n: d.n, source: 'synthetic shapes test set (makeShapes seed 2)' };
  } else if (spec.dataset === 'digits') {
    try {
      const d = datasetSplits('digits').test;
      src = { x: d.x, y: d.y, n: d.n, source: 'UCI digits, test split (80/20, seed 0)' };
    } catch {
      src = digitsTestFromFile();
    }
  } else {
    throw new Error(`testImages: no images for data set '${spec.dataset}'`);
  }
  const x = new Float32Array(n * per), labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const j = i % src.n;
    x.set(src.x.subarray(j * per, (j + 1) * per), i * per);
    labels[i] = src.y[j];
  }
  return { x, labels, n, shape: [n, ...shape], source: src.source };
}

// The bundled trained models: their specifications (architecture, data set, training recipe),
// and loading their weights. Browser-safe: in Node the weights are read from
// models/weights/<name>.safetensors (so a model retrained with `npm run train:<name>` is used at
// once); elsewhere, and wherever that file is missing, from the data modules that
// scripts/build-weights.mjs writes (models/zoo/bundled/, the `backlight/weights` entry).
//
//   const model = await loadBundled('digits-cnn');   // built, weights loaded, eval mode
//   listModels()                                       // names, input shapes, classes, accuracy
//   await fetchModel(url)                              // any model of this zoo from a safetensors URL
//
// Train them again with `npm run train:<name>` (models/zoo/train.ts).
import type { Module } from '../module.ts';
import type { Dataset } from '../train.ts';
import { loadWeights } from '../io/weights.ts';
import { parseSafetensors } from '../io/safetensors.ts';
import { fitStandardizer } from '../data/split.ts';
import { SPURIOUS_CLASSES, SHAPE_CLASSES } from '../data/synthetic.ts';
import { breastCancerMlp, digitsCnn, resnetBn, smallCnn, Standardize } from './architectures.ts';
import { prototypeDigits } from './architectures.ts';
import { shapesVit } from './vit.ts';
import { BUNDLED_SUMMARIES, bundledWeights } from './bundled/index.ts';

export { Standardize, digitsCnn, smallCnn, breastCancerMlp, resnetBn } from './architectures.ts';
export { PrototypeClassifier, prototypeDigits } from './architectures.ts';
export { shapesVit } from './vit.ts';
export { BUNDLED_WEIGHTS, BUNDLED_SUMMARIES, bundledWeights } from './bundled/index.ts';

// The two node:fs functions used here, typed structurally (the .d.ts needs no @types/node).
type NodeFs = { existsSync(path: string): boolean; readFileSync(path: string): Uint8Array; readFileSync(path: string, encoding: 'utf8'): string };

/**
 * node:fs in Node, null elsewhere. Not imported: a static (or bundler-visible dynamic) import of
 * node:fs would break every browser bundle of the zoo; process.getBuiltinModule (Node >= 20.16)
 * is a plain call that bundlers leave alone.
 */
function nodeFs(): NodeFs | null {
  const get = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule;
  return typeof get === 'function' ? (get('node:fs') as NodeFs) : null;
}

/** A file: URL as a path (node:url's fileURLToPath, without importing it), else the URL itself. */
function urlToPath(u: URL): string {
  if (u.protocol !== 'file:') return u.href;
  const p = decodeURIComponent(u.pathname);
  return /^\/[A-Za-z]:\//.test(p) ? p.slice(1) : p; // Windows: /C:/x -> C:/x
}

/**
 * Where the bundled weights and their JSON summaries live on disk (models/weights/; in the
 * published package dist/models/weights/). In a browser bundle: the URL it would have, or ''.
 */
export const WEIGHTS_DIR = typeof import.meta.url === 'string' ? urlToPath(new URL('../weights/', import.meta.url)) : '';

export interface TrainRecipe {
  seed: number;
  epochs: number;
  batchSize: number;
  optimizer: 'adam' | 'sgd';
  /** Initial learning rate; cosine-decayed to `lr * finalLrFraction` over the epochs. */
  lr: number;
  finalLrFraction?: number;
  momentum?: number;
  weightDecay?: number;
}

export interface ZooSpec {
  name: string;
  description: string;
  /** The data set (models/data DATASETS key) it is trained and tested on. */
  dataset: string;
  inputShape: number[];
  classes: string[];
  /** The test accuracy the test suite requires of the bundled weights. */
  minAccuracy: number;
  /** A fresh model (seeded initial weights). */
  build(seed?: number): Module;
  recipe: TrainRecipe;
  /** Set data-dependent state before training (e.g. standardisation statistics from the training split). */
  prepare?(model: Module, train: Dataset): void;
}

const digitNames = Array.from({ length: 10 }, (_, i) => String(i));

export const ZOO: Record<string, ZooSpec> = {
  'digits-cnn': {
    name: 'digits-cnn',
    description: 'CNN (3 convs, GAP, linear) on the UCI 8x8 digits',
    dataset: 'digits',
    inputShape: [1, 8, 8],
    classes: digitNames,
    minAccuracy: 0.95,
    build: (seed = 0) => digitsCnn(seed),
    recipe: { seed: 0, epochs: 8, batchSize: 32, optimizer: 'adam', lr: 0.01, finalLrFraction: 0.05 },
  },
  'shapes-cnn': {
    name: 'shapes-cnn',
    description: 'CNN (3 convs, GAP, linear) on synthetic shapes (square, circle, triangle, cross) on noise, 32x32',
    dataset: 'shapes',
    inputShape: [1, 32, 32],
    classes: [...SHAPE_CLASSES],
    minAccuracy: 0.9,
    build: (seed = 0) => smallCnn(1, 4, seed),
    recipe: { seed: 0, epochs: 5, batchSize: 32, optimizer: 'adam', lr: 0.01, finalLrFraction: 0.05 },
  },
  'spurious-cnn': {
    name: 'spurious-cnn',
    description: 'CNN (3 convs, GAP, linear) on circle vs square with a spurious background texture (95% correlated in train/test, 50% in held-out): it learns the shortcut',
    dataset: 'spurious',
    inputShape: [1, 32, 32],
    classes: [...SPURIOUS_CLASSES],
    minAccuracy: 0.9,
    build: (seed = 0) => smallCnn(1, 2, seed),
    recipe: { seed: 0, epochs: 3, batchSize: 32, optimizer: 'adam', lr: 0.01, finalLrFraction: 0.1 },
  },
  'breast-cancer-mlp': {
    name: 'breast-cancer-mlp',
    description: 'MLP (standardize, 30-16-16-2, dropout 0.2) on Breast Cancer Wisconsin; takes the 30 raw features',
    dataset: 'breast-cancer',
    inputShape: [30],
    classes: ['malignant', 'benign'],
    minAccuracy: 0.93,
    build: (seed = 0) => breastCancerMlp(seed),
    recipe: { seed: 0, epochs: 40, batchSize: 32, optimizer: 'adam', lr: 0.003, finalLrFraction: 0.1 },
    prepare(model, train) {
      const s = fitStandardizer(train);
      (model.module('standardize') as Standardize).setStats(s.mean, s.std);
    },
  },
  'resnet-bn': {
    name: 'resnet-bn',
    description: 'small residual CNN with BatchNorm2d (2 residual blocks, GAP, linear) on the UCI 8x8 digits',
    dataset: 'digits',
    inputShape: [1, 8, 8],
    classes: digitNames,
    minAccuracy: 0.95,
    build: (seed = 0) => resnetBn(seed),
    recipe: { seed: 0, epochs: 8, batchSize: 32, optimizer: 'adam', lr: 0.01, finalLrFraction: 0.05 },
  },
  'prototype-digits': {
    name: 'prototype-digits',
    description: 'prototype classifier (interpretable by design): MLP embedding 64-64-16, 30 learned prototypes (3 per digit, one-hot labels), prediction = attention-weighted average of prototype labels; on the UCI 8x8 digits',
    dataset: 'digits',
    inputShape: [1, 8, 8],
    classes: digitNames,
    minAccuracy: 0.9,
    build: (seed = 0) => prototypeDigits(seed),
    recipe: { seed: 0, epochs: 15, batchSize: 32, optimizer: 'adam', lr: 0.01, finalLrFraction: 0.05 },
  },
  'shapes-vit': {
    name: 'shapes-vit',
    description: 'vision transformer (8x8 patches, 2 blocks of 4 heads, width 32, class token) on synthetic shapes, 32x32; attention maps at blocks.<i>.attn.softmax',
    dataset: 'shapes',
    inputShape: [1, 32, 32],
    classes: [...SHAPE_CLASSES],
    minAccuracy: 0.8,
    build: (seed = 0) => shapesVit(seed),
    recipe: { seed: 0, epochs: 32, batchSize: 32, optimizer: 'adam', lr: 0.002, finalLrFraction: 0.05 },
  },
};

export function zooSpec(name: string): ZooSpec {
  const s = ZOO[name];
  if (!s) throw new Error(`unknown bundled model '${name}' (bundled: ${Object.keys(ZOO).join(', ')})`);
  return s;
}

export const weightsPath = (name: string) => `${WEIGHTS_DIR}${name}.safetensors`;
export const summaryPath = (name: string) => `${WEIGHTS_DIR}${name}.json`;

/** What training recorded about a bundled model (models/weights/<name>.json). */
export interface ModelSummary {
  name: string;
  architecture: string;
  description: string;
  dataset: string;
  inputShape: number[];
  classes: string[];
  /** Test accuracy as measured after training. */
  accuracy: number;
  /** Accuracy per split (train, test, and heldout / reversed where the data set has them). */
  accuracies: Record<string, number>;
  losses: Record<string, number>;
  seed: number;
  backend: string;
  recipe: TrainRecipe;
  epochs: number;
  /** Wall-clock seconds of the training loop (fit, with its per-epoch validation). */
  trainSeconds: number;
  /** CPU seconds this process spent in it (what the machine's other load does not inflate). */
  trainCpuSeconds: number;
  parameters: number;
  weightsBytes: number;
  /** SHA-256 of the .safetensors file. */
  sha256: string;
  history: { epoch: number; loss: number; accuracy: number; valLoss?: number; valAccuracy?: number; seconds: number }[];
}

/** The file at path, or null where there is none (or no file system: a browser). */
function readIfThere(path: string): Uint8Array | null {
  const fs = nodeFs();
  return fs && WEIGHTS_DIR && fs.existsSync(path) ? fs.readFileSync(path) : null;
}

/**
 * The recorded summary, or null if the model has not been trained: models/weights/<name>.json
 * in Node, else the one bundled as data.
 */
export function modelSummary(name: string): ModelSummary | null {
  zooSpec(name);
  const fs = nodeFs();
  const p = summaryPath(name);
  if (fs && WEIGHTS_DIR && fs.existsSync(p)) return JSON.parse(fs.readFileSync(p, 'utf8')) as ModelSummary;
  return BUNDLED_SUMMARIES[name] ?? null;
}

export interface ModelListing {
  name: string;
  description: string;
  inputShape: number[];
  classes: string[];
  /** Test accuracy recorded at training (null when no weights are bundled). */
  accuracy: number | null;
  accuracies: Record<string, number> | null;
  dataset: string;
  /** The weights file's path; `bundled:<name>` where they exist only as data (a browser); null when none are bundled. */
  weights: string | null;
}

function hasDiskWeights(name: string): boolean {
  const fs = nodeFs();
  return !!fs && !!WEIGHTS_DIR && fs.existsSync(weightsPath(name));
}

/** The bundled models, with the accuracy recorded when they were trained. */
export function listModels(): ModelListing[] {
  return Object.values(ZOO).map((s) => {
    const sum = modelSummary(s.name);
    const w = weightsPath(s.name);
    return {
      name: s.name,
      description: s.description,
      inputShape: s.inputShape,
      classes: s.classes,
      accuracy: sum?.accuracy ?? null,
      accuracies: sum?.accuracies ?? null,
      dataset: s.dataset,
      weights: hasDiskWeights(s.name) ? w : BUNDLED_SUMMARIES[s.name] ? `bundled:${s.name}` : null,
    };
  });
}

/** The model a safetensors file describes: its metadata's `architecture` names the zoo entry. */
export function modelFromSafetensors(bytes: Uint8Array, source = 'weights'): { model: Module; spec: ZooSpec; metadata: Record<string, string> } {
  const { metadata } = parseSafetensors(bytes, source);
  const arch = metadata.architecture;
  if (!arch) throw new Error(`${source}: the safetensors metadata has no 'architecture' entry, so the model cannot be built (bundled architectures: ${Object.keys(ZOO).join(', ')})`);
  if (!ZOO[arch]) throw new Error(`${source}: unknown architecture '${arch}' in its metadata (bundled architectures: ${Object.keys(ZOO).join(', ')})`);
  const spec = ZOO[arch];
  const model = spec.build();
  try {
    loadWeights(model, bytes, { source });
  } catch (e) {
    model.dispose();
    throw e;
  }
  return { model: model.eval(), spec, metadata };
}

/**
 * A bundled model with its trained weights, in eval mode, on the default backend (initialise one
 * first). Node: models/weights/<name>.safetensors; a browser (or a missing file): the weights
 * bundled as data.
 */
export async function loadBundled(name: string): Promise<Module> {
  zooSpec(name);
  const p = weightsPath(name);
  const disk = readIfThere(p);
  if (disk) return modelFromSafetensors(new Uint8Array(disk.buffer, disk.byteOffset, disk.byteLength), p).model;
  let bytes: Uint8Array;
  try {
    bytes = await bundledWeights(name);
  } catch (e) {
    throw new Error(`bundled model '${name}' has no weights (not at ${p || 'models/weights/'}, and ${(e as Error).message}); train them with \`npm run train:${name}\``);
  }
  return modelFromSafetensors(bytes, `bundled:${name}`).model;
}

/**
 * A model of this zoo from a safetensors file's bytes or URL (fetch; a browser, or Node >= 18):
 * the file's metadata names the architecture. Its weights are checked against the architecture.
 */
export async function fetchModel(source: string | URL | Response | ArrayBuffer | Uint8Array, init?: RequestInit): Promise<{ model: Module; spec: ZooSpec; metadata: Record<string, string> }> {
  let bytes: Uint8Array, what: string;
  if (source instanceof Uint8Array) [bytes, what] = [source, 'weights'];
  else if (source instanceof ArrayBuffer) [bytes, what] = [new Uint8Array(source), 'weights'];
  else {
    const res = source instanceof Response ? source : await fetch(source, init);
    what = res.url || String(source instanceof Response ? 'response' : source);
    if (!res.ok) throw new Error(`${what}: HTTP ${res.status} ${res.statusText} fetching the model's safetensors file`);
    bytes = new Uint8Array(await res.arrayBuffer());
  }
  return modelFromSafetensors(bytes, what);
}

// The bundled models the app offers, as the browser sees them: an architecture builder from
// models/zoo/architectures.ts (browser-safe) plus what build.ts wrote about each model into
// models.json (classes, input shape, data set, accuracy, from models/zoo's ZOO and the training
// summaries). The weights are fetched from the app's server (weights/<name>.safetensors) and
// parsed from the ArrayBuffer, the same loadWeights as in Node.
//
// Why a builder table here and not ZOO: models/zoo/index.ts reads files with node:fs, so it
// cannot be bundled for a browser yet (issue 14: its browser-safe split is being written). The
// test loads the same weights in Node through loadBundled (ZOO's builders), so a builder that
// drifted from ZOO's would fail there when the weights no longer fit.
import type { Module } from '../../models/module.ts';
import { digitsCnn, resnetBn, smallCnn } from '../../models/zoo/architectures.ts';
import { loadWeights } from '../../models/io/weights.ts';

/** What the app needs to know about a model, bundled or dropped in as ONNX. */
export interface ModelInfo {
  name: string;
  description: string;
  /** One item's shape, [C, H, W]. */
  inputShape: [number, number, number];
  classes: string[];
  /** The data set (models/data DATASETS key) whose samples suit the model; null for ONNX files. */
  dataset: string | null;
  /** Test accuracy recorded at training, when known. */
  accuracy: number | null;
  /** The layer CAM methods read ('features' for the bundled nets: the last conv block's output). */
  camLayer: string;
}

export const BUILDERS: Record<string, () => Module> = {
  'digits-cnn': () => digitsCnn(0),
  'resnet-bn': () => resnetBn(0),
  'shapes-cnn': () => smallCnn(1, 4, 0),
  'spurious-cnn': () => smallCnn(1, 2, 0),
};

/** The bundled models the app serves (image models with a conv feature map for CAM). */
export const APP_MODELS = Object.keys(BUILDERS);

/** Build a bundled model and load its weights from safetensors bytes (eval mode). */
export function bundledModel(name: string, weights: Uint8Array): Module {
  const build = BUILDERS[name];
  if (!build) throw new Error(`unknown bundled model '${name}' (the app has: ${APP_MODELS.join(', ')})`);
  const model = build();
  try {
    loadWeights(model, weights, { source: `${name}.safetensors` });
  } catch (e) {
    model.dispose();
    throw e;
  }
  return model.eval();
}

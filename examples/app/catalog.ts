// The bundled models the app offers, from models/zoo (browser-safe: its architectures, ZOO specs
// and the trained weights bundled as data, models/zoo/bundled/): the same loadBundled as in Node,
// where it reads models/weights/ from disk instead (tests/package/weights-data.test.ts keeps the
// two in sync, and the browser test compares the page's results with Node's).
import type { Module } from '../../models/index.ts';
import { loadBundled, modelSummary, zooSpec } from '../../models/zoo/index.ts';

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

/**
 * The bundled image models with a conv feature map for CAM (breast-cancer-mlp is tabular,
 * prototype-digits an MLP embedding: neither has an image layer to map).
 */
export const APP_MODELS = ['digits-cnn', 'resnet-bn', 'shapes-cnn', 'spurious-cnn'];

export function modelInfo(name: string): ModelInfo {
  const spec = zooSpec(name);
  const [c, h, w] = spec.inputShape;
  return { name, description: spec.description, inputShape: [c, h, w], classes: spec.classes, dataset: spec.dataset, accuracy: modelSummary(name)?.accuracy ?? null, camLayer: 'features' };
}

/** A bundled model with its trained weights (eval mode), on the default backend. */
export function bundledModel(name: string): Promise<Module> {
  if (!APP_MODELS.includes(name)) throw new Error(`unknown bundled model '${name}' (the app has: ${APP_MODELS.join(', ')})`);
  return loadBundled(name);
}

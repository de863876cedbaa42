// backlight/node: the package's Node-only entry. Files (models, .npy arrays, PNG heatmaps), PNG
// encoding through pngjs, and the bundled weights and data sets read from disk. Everything else
// (engine, models, explainers, weights as data) is in the browser-safe entries, which also work
// in Node.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseNpy, serializeNpy, type NpyArray } from '../models/io/npy.ts';

export { loadModelFile, readBundledWeights } from '../models/zoo/node.ts';
export { WEIGHTS_DIR, loadBundled, listModels, modelSummary, weightsPath, summaryPath } from '../models/zoo/index.ts';
export { DATA_DIR, loadDigits, loadBreastCancer, loadWine, loadIris } from '../models/data/tabular.ts';
export { encodePngSync, decodePng, writeHeatmapPng } from '../explain/png-node.ts';

/** A float32 .npy file (shape and data). */
export function readNpyFile(path: string): NpyArray {
  const b = readFileSync(path);
  return parseNpy(new Uint8Array(b.buffer, b.byteOffset, b.byteLength), path);
}

/** Write a float32 .npy file. */
export function writeNpyFile(path: string, shape: readonly number[], data: ArrayLike<number>): void {
  writeFileSync(path, serializeNpy(shape, data));
}

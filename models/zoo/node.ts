// Node-only model files: models from .safetensors / .onnx paths and the bundled weights read from
// disk. Part of the package's Node entry (backlight/node); the browser-safe zoo is index.ts, whose
// loadBundled reads models/weights/ itself in Node and the weights bundled as data elsewhere.
import { existsSync, readFileSync } from 'node:fs';
import type { Module } from '../module.ts';
import { loadOnnx, type LoadOnnxOptions } from '../io/onnx.ts';
import { modelFromSafetensors, weightsPath, zooSpec, type ZooSpec } from './index.ts';

function readBytes(path: string, what: string): Uint8Array {
  if (!existsSync(path)) throw new Error(`${what} ${path} does not exist`);
  const b = readFileSync(path);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** A bundled model's safetensors bytes from models/weights/ (dist/models/weights/ in the package). */
export function readBundledWeights(name: string): Uint8Array {
  zooSpec(name);
  return readBytes(weightsPath(name), `bundled model '${name}': weights file`);
}

/**
 * A model from a file, by its extension: .safetensors (an architecture of this zoo, named in the
 * file's metadata) or .onnx. Built on the default backend, in eval mode.
 */
export function loadModelFile(path: string, opts: LoadOnnxOptions = {}): { model: Module; spec?: ZooSpec; metadata?: Record<string, string> } {
  if (path.endsWith('.safetensors')) return modelFromSafetensors(readBytes(path, 'model file'), path);
  if (path.endsWith('.onnx')) return { model: loadOnnx(readBytes(path, 'model file'), { source: path, ...opts }) };
  throw new Error(`model file ${path}: expected a .safetensors or .onnx file`);
}

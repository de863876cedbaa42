// Resolving `--model`: a bundled model's name, a .safetensors file whose metadata names a zoo
// architecture, or an .onnx file.
import { existsSync } from 'node:fs';
import type { Module } from '../models/module.ts';
import { loadOnnx } from '../models/io/onnx.ts';
import { ZOO, loadBundled, modelFromSafetensors } from '../models/zoo/index.ts';
import { readInputFile } from './input.ts';

export interface ResolvedModel {
  model: Module;
  /** How the model was named (bundled name or file path). */
  name: string;
  kind: 'bundled' | 'safetensors' | 'onnx';
  /** Input shape of one sample, where known. */
  inputShape: number[] | null;
  classes: string[] | null;
  /** The data set it was trained on (models/data DATASETS key), where known. */
  dataset: string | null;
}

export async function resolveModel(spec: string, option = '--model'): Promise<ResolvedModel> {
  if (/\.onnx$/i.test(spec)) {
    const model = loadOnnx(readInputFile(spec, option), { source: spec });
    const dims = model.info.inputs[0]?.shape;
    const sample = dims && dims.length > 1 ? dims.slice(1) : null;
    const inputShape = sample && sample.every((d): d is number => typeof d === 'number' && d > 0) ? sample : null;
    return { model, name: spec, kind: 'onnx', inputShape, classes: null, dataset: null };
  }
  if (/\.safetensors$/i.test(spec)) {
    const { model, spec: zs, metadata } = modelFromSafetensors(readInputFile(spec, option), spec);
    let classes = zs.classes;
    try {
      if (metadata.classes) classes = JSON.parse(metadata.classes) as string[];
    } catch {
      /* the architecture's class names stand */
    }
    return { model, name: spec, kind: 'safetensors', inputShape: zs.inputShape, classes, dataset: zs.dataset };
  }
  if (ZOO[spec]) {
    const z = ZOO[spec];
    return { model: await loadBundled(spec), name: spec, kind: 'bundled', inputShape: z.inputShape, classes: z.classes, dataset: z.dataset };
  }
  if (existsSync(spec)) throw new Error(`${option} ${spec}: unsupported model file (use a .safetensors or .onnx file, or a bundled name: ${Object.keys(ZOO).join(', ')})`);
  throw new Error(`${option} ${spec}: no such bundled model or file (bundled: ${Object.keys(ZOO).join(', ')}; files: .safetensors, .onnx)`);
}

// Resolving `--model`: a bundled model's name, a .safetensors file whose metadata names a zoo
// architecture, or an .onnx file. `peekModel` reads what a model says about itself (input shape,
// class count) on the host, without building it, so that options can be checked against it
// before a device is opened; `resolveModel` builds it (needs the backend).
import { existsSync } from 'node:fs';
import type { Module } from '../models/module.ts';
import { loadOnnx, parseOnnx } from '../models/io/onnx.ts';
import { valueInfo } from '../models/io/onnx/loader.ts';
import { parseSafetensors } from '../models/io/safetensors.ts';
import { ZOO, loadBundled, modelFromSafetensors } from '../models/zoo/index.ts';
import { readInputFile } from './input.ts';

export interface ModelFacts {
  /** How the model was named (bundled name or file path). */
  name: string;
  kind: 'bundled' | 'safetensors' | 'onnx';
  /** Input shape of one sample, where known. */
  inputShape: number[] | null;
  classes: string[] | null;
  /** Size of the output's last axis, where the model says (ONNX: its declared output shape). */
  numClasses: number | null;
  /** The data set it was trained on (models/data DATASETS key), where known. */
  dataset: string | null;
}

export interface ResolvedModel extends ModelFacts {
  model: Module;
}

function unknownModel(spec: string, option: string): never {
  if (existsSync(spec)) throw new Error(`${option} ${spec}: unsupported model file (use a .safetensors or .onnx file, or a bundled name: ${Object.keys(ZOO).join(', ')})`);
  throw new Error(`${option} ${spec}: no such bundled model or file (bundled: ${Object.keys(ZOO).join(', ')}; files: .safetensors, .onnx)`);
}

function onnxFacts(spec: string, info: { inputs: { shape: (number | string | null)[] | null }[]; outputs: { shape: (number | string | null)[] | null }[] }): ModelFacts {
  const dims = info.inputs[0]?.shape;
  const sample = dims && dims.length > 1 ? dims.slice(1) : null;
  const inputShape = sample && sample.every((d): d is number => typeof d === 'number' && d > 0) ? sample : null;
  const out = info.outputs[0]?.shape;
  const last = out && out.length >= 2 ? out[out.length - 1] : null;
  return { name: spec, kind: 'onnx', inputShape, classes: null, numClasses: typeof last === 'number' && last > 0 ? last : null, dataset: null };
}

/** What the model says about itself, read on the host (no backend needed, nothing built). */
export function peekModel(spec: string, option = '--model'): ModelFacts {
  if (/\.onnx$/i.test(spec)) {
    const m = parseOnnx(readInputFile(spec, option), spec);
    const g = m.graph;
    if (!g) throw new Error(`${option} ${spec}: the ONNX file has no graph`);
    const inits = new Set((g.initializer ?? []).map((t) => t.name ?? ''));
    return onnxFacts(spec, { inputs: (g.input ?? []).filter((i) => !inits.has(i.name ?? '')).map(valueInfo), outputs: (g.output ?? []).map(valueInfo) });
  }
  if (/\.safetensors$/i.test(spec)) {
    const { metadata } = parseSafetensors(readInputFile(spec, option), spec);
    const zs = metadata.architecture ? ZOO[metadata.architecture] : undefined;
    if (!zs) throw new Error(`${option} ${spec}: ${metadata.architecture ? `unknown architecture '${metadata.architecture}' in its metadata` : "the safetensors metadata has no 'architecture' entry"} (bundled architectures: ${Object.keys(ZOO).join(', ')})`);
    let classes = zs.classes;
    try {
      if (metadata.classes) classes = JSON.parse(metadata.classes) as string[];
    } catch {
      /* the architecture's class names stand */
    }
    return { name: spec, kind: 'safetensors', inputShape: zs.inputShape, classes, numClasses: classes.length, dataset: zs.dataset };
  }
  const z = ZOO[spec];
  if (z) return { name: spec, kind: 'bundled', inputShape: z.inputShape, classes: z.classes, numClasses: z.classes.length, dataset: z.dataset };
  return unknownModel(spec, option);
}

export async function resolveModel(spec: string, option = '--model'): Promise<ResolvedModel> {
  if (/\.onnx$/i.test(spec)) {
    const model = loadOnnx(readInputFile(spec, option), { source: spec });
    return { model, ...onnxFacts(spec, model.info) };
  }
  if (/\.safetensors$/i.test(spec)) {
    const { model, spec: zs, metadata } = modelFromSafetensors(readInputFile(spec, option), spec);
    let classes = zs.classes;
    try {
      if (metadata.classes) classes = JSON.parse(metadata.classes) as string[];
    } catch {
      /* the architecture's class names stand */
    }
    return { model, name: spec, kind: 'safetensors', inputShape: zs.inputShape, classes, numClasses: classes.length, dataset: zs.dataset };
  }
  if (ZOO[spec]) {
    const z = ZOO[spec];
    return { model: await loadBundled(spec), name: spec, kind: 'bundled', inputShape: z.inputShape, classes: z.classes, numClasses: z.classes.length, dataset: z.dataset };
  }
  return unknownModel(spec, option);
}

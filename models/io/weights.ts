// Moving a model's weights to and from safetensors bytes, by PyTorch state_dict names.
import * as bl from '../../engine/index.ts';
import type { Module } from '../module.ts';
import { parseSafetensors, serializeSafetensors } from './safetensors.ts';

/** The model's parameters and buffers as safetensors bytes (reads them back once). */
export async function saveWeights(model: Module, metadata: Record<string, string> = {}): Promise<Uint8Array> {
  const entries = [...model.stateDict()];
  const datas = await Promise.all(entries.map(([, t]) => t.data()));
  return serializeSafetensors(new Map(entries.map(([n, t], i) => [n, { shape: t.shape, data: datas[i] }])), metadata);
}

/**
 * Load safetensors bytes into `model` (on the default backend). Strict by default: the names and
 * shapes must match the model's exactly; the error lists the differences.
 */
export function loadWeights(model: Module, bytes: Uint8Array, opts: { source?: string; strict?: boolean } = {}): Record<string, string> {
  const source = opts.source ?? 'weights';
  const { tensors, metadata } = parseSafetensors(bytes, source);
  const own = model.stateDict();
  const problems: string[] = [];
  for (const [n, t] of own) {
    const s = tensors.get(n);
    if (!s) {
      if (opts.strict ?? true) problems.push(`missing '${n}'`);
    } else if (s.shape.join() !== t.shape.join()) {
      problems.push(`'${n}' has shape [${s.shape.join(', ')}] in the file, [${t.shape.join(', ')}] in the model`);
    }
  }
  if (opts.strict ?? true) for (const n of tensors.keys()) if (!own.has(n)) problems.push(`unexpected '${n}'`);
  if (problems.length) throw new Error(`${source}: does not fit the model: ${problems.join('; ')}`);
  for (const [n, s] of tensors) {
    if (own.has(n)) model.setTensor(model.path ? n.slice(model.path.length + 1) : n, bl.tensor(s.data, s.shape));
  }
  return metadata;
}

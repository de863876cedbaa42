// A model's layers with their op types and output shapes, so that a user can pick a `--layer`
// (or a `layer` option) without guessing names. One forward pass on the given input records the
// shape of every tapped activation: for the project's own Modules the module paths
// ('features.3'), for graph models (ONNX imports) the node names with their op types ('Conv').
// Nothing is read back from the device: shapes are known when the ops are recorded.
import * as bl from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import { GraphModel } from './containers.ts';
import type { Module } from './module.ts';

export interface LayerInfo {
  /** What `layer` options take: the module path, or the ONNX node name. */
  name: string;
  /** The op type: the module's kind (Conv2d, Sequential) or the ONNX op (Conv, Relu). */
  op: string;
  /** The (first) output's shape for the given input, batch axis included; null if never computed. */
  outputShape: number[] | null;
  /** ONNX nodes: their output tensor names (also accepted as layer names). */
  outputs?: string[];
}

/**
 * Run `body` with a watcher on each name: the shape of the first activation tapped under it is
 * recorded. Built from nested withActivation scopes whose function returns its input unchanged,
 * so the forward pass computes exactly what it would without them; a name that is never tapped
 * (an unused module, a node whose output nobody computes) keeps no shape instead of failing.
 */
function recordShapes(names: readonly string[], body: () => void): Map<string, number[]> {
  const seen = new Map<string, number[]>();
  let ran = false;
  const level = (i: number): void => {
    if (i === names.length) {
      body();
      ran = true;
      return;
    }
    const name = names[i];
    try {
      bl.withActivation(name, (t) => (seen.has(name) || seen.set(name, [...t.shape]), t), () => level(i + 1));
    } catch (e) {
      // withActivation insists that its name was produced; here an absent name is an answer.
      if (!(ran && !seen.has(name) && /no activation named/.test((e as Error).message))) throw e;
    }
  };
  level(0);
  return seen;
}

/**
 * Every layer of `model` with its op type and its output shape for `input` (a tensor, or the
 * shape of a batch, [N, ...]; zeros are used then), in the order the model defines them. The
 * model's own tensors are not changed; `input` stays the caller's.
 */
export function describeLayers(model: Module, input: Tensor | readonly number[]): LayerInfo[] {
  if (!(input instanceof bl.Tensor) && !(Array.isArray(input) && input.length >= 1 && input.every((d) => Number.isInteger(d) && d > 0))) {
    throw new Error(`describeLayers: input must be a tensor or a batch shape of positive integers [N, ...], got ${JSON.stringify(input)}`);
  }
  const layers: LayerInfo[] =
    model instanceof GraphModel
      ? model.nodes.map((n) => ({ name: n.name, op: n.op, outputShape: null, outputs: [...n.outputs] }))
      : model.namedModules().filter(([p]) => p !== '').map(([p, m]) => ({ name: p, op: m.kind, outputShape: null }));
  const names = layers.map((l) => l.name);
  const shapes = bl.tidy(() => {
    const x = input instanceof bl.Tensor ? input : bl.zeros([...input]);
    return recordShapes(names, () => void model.call(x));
  });
  for (const l of layers) l.outputShape = shapes.get(l.name) ?? null;
  return layers;
}

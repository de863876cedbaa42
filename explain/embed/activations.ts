// A named layer's activations for a whole data set, flattened to [N, D]: what the embeddings
// are computed on.
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { GraphModel, Sequential } from '../../models/containers.ts';
import { Module } from '../../models/module.ts';
import { checkInput, forwardOf, type Model } from '../common.ts';
import { activationOf } from '../layer.ts';
import { positiveIntOption } from './pca.ts';
import { checkOptions, optionKeys } from '../options.ts';

const ACTIVATION_KEYS = optionKeys<ActivationOptions>()(['layer', 'batchSize']);

export interface ActivationOptions {
  /**
   * The layer: a module path ('features.3', 'pool'), an ONNX node or tensor name, or 'input' for
   * the inputs themselves. Default: defaultEmbeddingLayer(model).
   */
  layer?: string;
  /** Items per forward pass (default 256). */
  batchSize?: number;
}

/**
 * The layer before the classifier head: for a Sequential, its second-to-last child (the bundled
 * image models: 'pool', the global average pooling; breast-cancer-mlp: 'features'); for a graph
 * (ONNX) model, the tensor the last node reads. Other models must name a layer.
 */
export function defaultEmbeddingLayer(model: Model): string {
  if (model instanceof Sequential) {
    const ch = model.namedChildren();
    if (ch.length >= 2) {
      const [, m] = ch[ch.length - 2];
      return m.path;
    }
  }
  if (model instanceof GraphModel) {
    const last = model.nodes[model.nodes.length - 1];
    const inp = last?.inputs.find((i) => i !== '' && !model.constants.has(i) && !model.inputNames.includes(i));
    if (inp) return inp;
  }
  throw new Error(`layerActivations: cannot tell which layer comes before this model's head; name one with 'layer'${model instanceof Module ? ` (layers: ${model.namedModules().map(([p]) => p).filter(Boolean).join(', ')})` : ''}`);
}

function layerNames(model: Model): string[] {
  if (model instanceof GraphModel) return model.nodes.map((n) => n.name);
  if (model instanceof Module) return model.namedModules().map(([p]) => p).filter(Boolean);
  return [];
}

/**
 * Activations of `layer` for every item of `data` [N, ...], in batches, flattened per item to
 * [N, D], on the model's backend (no readback). The model runs in eval mode.
 */
export async function layerActivations(model: Model, data: Tensor, opts: ActivationOptions = {}): Promise<Tensor> {
  const op = 'layerActivations';
  checkOptions(op, opts, ACTIVATION_KEYS);
  if (opts.layer !== undefined && (typeof opts.layer !== 'string' || !opts.layer)) throw new Error(`${op}: option 'layer' must be a layer name (or 'input'), got ${typeof opts.layer}`);
  const x = checkInput(op, data);
  const bs = positiveIntOption(op, 'batchSize', opts.batchSize, 256);
  const layer = opts.layer ?? defaultEmbeddingLayer(model);
  const N = x.shape[0];
  if (layer === 'input') return bl.reshape(x, [N, -1]);
  const f = forwardOf(model);
  const parts: Tensor[] = [];
  try {
    for (let s = 0; s < N; s += bs) {
      const k = Math.min(bs, N - s);
      const a = bl.tidy(() => {
        const xb = k === N ? x : bl.slice(x, [s, ...x.shape.slice(1).map(() => 0)], [k, ...x.shape.slice(1)]);
        let act: Tensor;
        try {
          act = activationOf(f, xb, layer);
        } catch (e) {
          if (!/no activation named/.test((e as Error).message)) throw e;
          throw new Error(`${op}: the model has no layer '${layer}'; layers: ${layerNames(model).join(', ') || '(unknown)'}, or 'input'`);
        }
        if (act.rank < 1 || act.shape[0] !== k) throw new Error(`${op}: layer '${layer}' gave shape [${act.shape.join(', ')}] for a batch of ${k}`);
        return bl.reshape(act, [k, -1]);
      });
      parts.push(a);
      if (parts.length % 8 === 0) await a.backend.sync();
    }
    if (parts.length === 1) return parts[0];
    const all = bl.concat(parts, 0);
    return all;
  } finally {
    if (parts.length > 1) for (const p of parts) p.dispose();
  }
}

// Which unit of a layer a visualisation targets, and its score per batch item: the objectives of
// Olah et al. 2017 ("Feature Visualization": neuron, channel, layer/DeepDream) shared by
// activation maximisation and the dataset examples, so both rank the very same number.
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { moveToScope, scopeDepth } from '../../engine/context.ts';
import { fmtShape } from '../../engine/shape.ts';
import { Module } from '../../models/module.ts';
import { type Model, forwardOf as forwardOfModel } from '../common.ts';

/**
 * - 'channel': the mean over spatial positions of one channel (a feature of a [N, F] layer);
 * - 'neuron': one element, the channel's activation at spatial position `neuron` ([y, x], default
 *   the centre); for a [N, F] layer the same as 'channel';
 * - 'layer': DeepDream (Mordvintsev et al. 2015), the mean of the squared activations of the whole layer.
 */
export type VisObjective = 'channel' | 'neuron' | 'layer';

export interface UnitOptions {
  /** The layer: a model path ('features.3'), or an ONNX node / output tensor name. */
  layer: string;
  /** The channel (or feature); with several, batch item i targets channel i. */
  channel?: number | readonly number[];
  /** The spatial position [y, x] for the 'neuron' objective (default the map's centre). */
  neuron?: readonly [number, number];
  /** Default: 'neuron' when `neuron` is given, else 'channel' when `channel` is, else 'layer'. */
  objective?: VisObjective;
}

export interface ResolvedUnit {
  layer: string;
  objective: VisObjective;
  /** Channel per item (empty for 'layer'). */
  channels: number[];
  neuron: [number, number] | null;
}

/** Check the unit options (not yet against the layer's shape). */
export function checkUnit(op: string, o: UnitOptions | undefined): Omit<ResolvedUnit, 'neuron'> & { neuron: readonly [number, number] | undefined } {
  if (!o || typeof o.layer !== 'string' || !o.layer) throw new Error(`${op}: the layer option (a layer name such as 'features.3') is required`);
  const objective = o.objective ?? (o.neuron !== undefined ? 'neuron' : o.channel !== undefined ? 'channel' : 'layer');
  if (objective !== 'channel' && objective !== 'neuron' && objective !== 'layer') throw new Error(`${op}: objective must be 'channel', 'neuron' or 'layer', got '${String(objective)}'`);
  const chs = o.channel === undefined ? [] : typeof o.channel === 'number' ? [o.channel] : Array.isArray(o.channel) ? [...o.channel] : null;
  if (!chs || chs.some((c) => !Number.isInteger(c) || c < 0)) throw new Error(`${op}: channel must be a non-negative integer or a list of them, got ${JSON.stringify(o.channel)}`);
  if (objective !== 'layer' && chs.length === 0) throw new Error(`${op}: the '${objective}' objective needs the channel option`);
  if (objective === 'layer' && chs.length) throw new Error(`${op}: the 'layer' objective (DeepDream) takes no channel; got channel ${JSON.stringify(o.channel)}`);
  if (o.neuron !== undefined && (!Array.isArray(o.neuron) || o.neuron.length !== 2 || o.neuron.some((v) => !Number.isInteger(v) || v < 0))) {
    throw new Error(`${op}: neuron must be a spatial position [y, x] of non-negative integers, got ${JSON.stringify(o.neuron)}`);
  }
  if (o.neuron !== undefined && objective !== 'neuron') throw new Error(`${op}: neuron is only for the 'neuron' objective (objective is '${objective}')`);
  return { layer: o.layer, objective, channels: chs, neuron: o.neuron };
}

/**
 * Run f(x) and return its output with the activation tapped as `layer` (recorded: gradients flow
 * to it), both owned by the caller's tidy scope (call it inside one). A layer that was never produced is an error listing the model's layers.
 */
export function forwardWithActivation(op: string, model: Model, f: (x: Tensor) => Tensor, x: Tensor, layer: string): { out: Tensor; A: Tensor } {
  let A: Tensor | null = null;
  let out: Tensor;
  // The model's own tidy scopes would free the activation once its forward is done (a gradient
  // tape keeps it, a plain forward does not): hand it to the caller's scope.
  const depth = scopeDepth();
  try {
    out = bl.withActivation(layer, (a) => (moveToScope(a, depth), (A = a), a), () => f(x));
  } catch (e) {
    if (/no activation named/.test((e as Error).message)) {
      const names = model instanceof Module ? model.namedModules().map(([p]) => p).filter(Boolean) : [];
      throw new Error(`${op}: the model produced no layer named '${layer}' (option layer)${names.length ? `; layers: ${names.join(', ')}` : ''}`);
    }
    throw e;
  }
  return { out, A: A as unknown as Tensor };
}

/** Fix the unit against the layer's activation shape [N, ...] for a batch of n items. */
export function resolveUnit(op: string, u: ReturnType<typeof checkUnit>, shape: readonly number[], n: number): ResolvedUnit {
  if (shape.length < 2 || shape[0] !== n) throw new Error(`${op}: layer '${u.layer}' has shape ${fmtShape(shape)}; expected [${n}, channels, ...]`);
  const C = shape[1];
  let channels = u.channels;
  if (u.objective !== 'layer') {
    for (const c of channels) if (c >= C) throw new Error(`${op}: channel ${c} is out of range for layer '${u.layer}' with ${C} channels (shape ${fmtShape(shape)})`);
    if (channels.length === 1) channels = Array(n).fill(channels[0]);
    else if (channels.length !== n) throw new Error(`${op}: ${channels.length} channels for a batch of ${n}`);
  }
  let neuron: [number, number] | null = null;
  if (u.objective === 'neuron' && shape.length === 4) {
    const [h, w] = [shape[2], shape[3]];
    neuron = u.neuron ? [u.neuron[0], u.neuron[1]] : [Math.floor(h / 2), Math.floor(w / 2)];
    if (neuron[0] >= h || neuron[1] >= w) throw new Error(`${op}: neuron [${neuron}] is outside layer '${u.layer}''s ${h} x ${w} map`);
  } else if (u.objective === 'neuron' && u.neuron && shape.length !== 4) {
    throw new Error(`${op}: neuron [y, x] needs a spatial (NCHW) layer; '${u.layer}' has shape ${fmtShape(shape)}`);
  }
  return { layer: u.layer, objective: u.objective, channels, neuron };
}

/** The unit's score per item of the activation A [N, C, ...] -> [N] (differentiable). */
export function unitScores(A: Tensor, u: ResolvedUnit): Tensor {
  const [N, C] = A.shape;
  const rest = A.shape.slice(2);
  const spatial = rest.reduce((a, b) => a * b, 1);
  const axes = A.shape.map((_, i) => i).slice(1);
  return bl.tidy(() => {
    if (u.objective === 'layer') return bl.mean(bl.mul(A, A), axes);
    if (u.objective === 'neuron' && u.neuron) {
      const [h, w] = rest;
      const m = new Float64Array(N * C * h * w);
      u.channels.forEach((c, i) => (m[((i * C + c) * h + u.neuron![0]) * w + u.neuron![1]] = 1));
      return bl.sum(bl.mul(A, bl.tensor(m, A.shape, A.backend)), axes);
    }
    // Channel mean: a one-hot over channels, broadcast over the spatial axes.
    const m = new Float64Array(N * C);
    u.channels.forEach((c, i) => (m[i * C + c] = 1 / spatial));
    return bl.sum(bl.mul(A, bl.tensor(m, [N, C, ...rest.map(() => 1)], A.backend)), axes);
  });
}

/** The shape of the activation `layer` produces for one input of shape `sample` ([C, H, W]), batch axis first. */
export function layerShape(model: Model, layer: string, sample: readonly number[]): number[] {
  return bl.tidy(() => {
    const { A } = forwardWithActivation('layerShape', model, forwardOfModel(model), bl.zeros([1, ...sample]), layer);
    return [...A.shape];
  });
}

// Layer and neuron attributions (Captum's LayerActivation, LayerGradientXActivation,
// LayerIntegratedGradients, NeuronGradient), addressed by layer name. Results are shaped like
// the layer's output.
import * as bl from '../engine/index.ts';
import type { Module } from '../models/module.ts';
import type { Tensor } from '../engine/index.ts';
import { fmtShape } from '../engine/shape.ts';
import { type Model, type RulesOption, type Target, type TargetOptions, baselineFor, checkInput, forwardOf, positiveInt, resolveTarget, scores, checkedInput } from './common.ts';
import { activationAndGradient, checkLayer } from './cam.ts';
import { checkOptions, optionKeys } from './options.ts';
import type { IntegrationMethod } from './quadrature.ts';
import { pathGradientSum, pathSetup } from './integrated-gradients.ts';

export interface LayerAttrOptions extends TargetOptions {
  layer: string | Module;
}

const LAYER_ACTIVATION_KEYS = optionKeys<{ layer: string | Module }>()(['layer']);
const LAYER_ATTR_KEYS = optionKeys<LayerAttrOptions>()(['target', 'rules', 'layer']);
const LAYER_IG_KEYS = optionKeys<LayerIntegratedGradientsOptions>()(['target', 'rules', 'layer', 'baseline', 'steps', 'method', 'internalBatchSize']);
const NEURON_KEYS = optionKeys<NeuronOptions>()(['layer', 'rules', 'neuron']);

/** The activation `layer` produces for x. */
export function activationOf(f: (x: Tensor) => Tensor, x: Tensor, layer: string): Tensor {
  let A: Tensor | null = null;
  bl.tidy(() => {
    bl.withActivation(layer, (a) => ((A = bl.keep(bl.stopGradient(a))), a), () => f(x));
  });
  return A as unknown as Tensor;
}

export async function layerActivation(model: Model, input: Tensor, opts: { layer: string | Module }): Promise<Tensor> {
  checkOptions('layerActivation', opts, LAYER_ACTIVATION_KEYS);
  const layer = checkLayer('layerActivation', opts);
  const x = await checkedInput('layerActivation', input);
  const a = activationOf(forwardOf(model), x, layer);
  await a.backend.sync();
  return a;
}

/** Activation times the gradient of the target score with respect to it. */
export async function layerGradientXActivation(model: Model, input: Tensor, opts: LayerAttrOptions): Promise<Tensor> {
  const op = 'layerGradientXActivation';
  checkOptions(op, opts, LAYER_ATTR_KEYS);
  const layer = checkLayer(op, opts);
  const x = await checkedInput(op, input);
  const f = forwardOf(model, opts.rules);
  const r = bl.tidy(() => {
    const g = bl.valueAndGradAt(() => bl.sum(scores(op, f(x), opts.target, x.shape[0])), [layer]);
    return bl.mul(g.activations[layer], g.grads[layer]);
  });
  await r.backend.sync();
  return r;
}

export interface LayerIntegratedGradientsOptions extends LayerAttrOptions {
  /** Input baseline (its activation at the layer is the path's start). Default 0. */
  baseline?: number | Tensor;
  steps?: number;
  method?: IntegrationMethod;
  internalBatchSize?: number;
}

/**
 * Integrated gradients in the layer's activation space, from a(baseline) to a(x). The layer must
 * cut the graph (nothing bypasses it) when the batch has more than one item.
 */
export async function layerIntegratedGradients(model: Model, input: Tensor, opts: LayerIntegratedGradientsOptions): Promise<Tensor> {
  const op = 'layerIntegratedGradients';
  checkOptions(op, opts, LAYER_IG_KEYS);
  const layer = checkLayer(op, opts);
  const x = await checkedInput(op, input);
  const n = x.shape[0];
  const { alphas, weights, chunk } = pathSetup(op, n, opts);
  const f = forwardOf(model, opts.rules);
  const r = bl.tidy(() => {
    const target: Target | undefined = resolveTarget(op, f, x, opts.target);
    const ax = activationOf(f, x, layer);
    const ab = activationOf(f, baselineFor(op, x, opts.baseline), layer);
    if (ax.shape[0] !== n) throw new Error(`${op}: layer '${layer}' has shape ${fmtShape(ax.shape)}, not a batch of ${n}`);
    const sum = pathGradientSum(ab, ax, alphas, weights, chunk, (pts, k) =>
      bl.grad((z: Tensor) => bl.sum(scores(op, bl.withActivation(layer, () => z, () => f(x)), target, n, k)))(pts),
    );
    const out = bl.mul(bl.sub(ax, ab), sum);
    ax.dispose();
    ab.dispose();
    return out;
  });
  await r.backend.sync();
  return r;
}

export interface NeuronOptions {
  layer: string | Module;
  /** Backward rules for the graph (see TargetOptions.rules). */
  rules?: RulesOption;
  /** The neuron: a flat index into one item's activation, or its coordinates (without the batch axis). */
  neuron: number | readonly number[];
}

/** Gradient of one neuron's activation (per item) with respect to the input. */
export async function neuronGradient(model: Model, input: Tensor, opts: NeuronOptions): Promise<Tensor> {
  const op = 'neuronGradient';
  checkOptions(op, opts, NEURON_KEYS);
  const layer = checkLayer(op, opts);
  const x = await checkedInput(op, input);
  const f = forwardOf(model, opts.rules);
  const r = bl.tidy(() =>
    bl.grad((xx: Tensor) => {
      let picked: Tensor | null = null;
      bl.withActivation(layer, (a) => {
        const flat = bl.reshape(a, [a.shape[0], -1]);
        const per = flat.shape[1];
        const idx = neuronIndex(op, opts.neuron, a.shape.slice(1));
        if (idx >= per) throw new Error(`${op}: neuron ${JSON.stringify(opts.neuron)} is outside the layer's ${per} units`);
        picked = bl.sum(bl.slice(flat, [0, idx], [a.shape[0], 1]));
        return a;
      }, () => f(xx));
      return picked as unknown as Tensor;
    })(x),
  );
  await r.backend.sync();
  return r;
}

function neuronIndex(op: string, neuron: number | readonly number[], shape: readonly number[]): number {
  if (typeof neuron === 'number') {
    if (!Number.isInteger(neuron) || neuron < 0) throw new Error(`${op}: neuron must be a non-negative integer, got ${neuron}`);
    return neuron;
  }
  if (!Array.isArray(neuron) || neuron.length !== shape.length) throw new Error(`${op}: neuron ${JSON.stringify(neuron)} needs ${shape.length} coordinates for a layer of per-item shape ${fmtShape(shape)}`);
  let idx = 0;
  neuron.forEach((c, i) => {
    if (!Number.isInteger(c) || c < 0 || c >= shape[i]) throw new Error(`${op}: neuron coordinate ${c} is out of range for axis size ${shape[i]}`);
    idx = idx * shape[i] + c;
  });
  return idx;
}


// Gradient attributions: saliency, gradient x input, guided backprop, deconvnet.
import * as bl from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import { type Model, type TargetOptions, checkInput, forwardOf, inputGradient, checkedInput } from './common.ts';
import { checkOptions, optionKeys } from './options.ts';

const TARGET_KEYS = optionKeys<TargetOptions>()(['target', 'rules']);

export interface SaliencyOptions extends TargetOptions {
  /** Absolute value of the gradient (Simonyan et al. 2014; Captum's default). Default true. */
  abs?: boolean;
}

/** The gradient of the target score with respect to the input. */
const SALIENCY_KEYS = optionKeys<SaliencyOptions>()(['target', 'rules', 'abs']);

export async function saliency(model: Model, input: Tensor, opts: SaliencyOptions = {}): Promise<Tensor> {
  checkOptions('saliency', opts, SALIENCY_KEYS);
  const x = await checkedInput('saliency', input);
  const r = bl.tidy(() => {
    const g = inputGradient('saliency', forwardOf(model, opts.rules), x, opts.target, x.shape[0]);
    return opts.abs === false ? g : bl.abs(g);
  });
  await r.backend.sync();
  return r;
}

/** Gradient times input (Shrikumar et al. 2016). */
export async function inputXGradient(model: Model, input: Tensor, opts: TargetOptions = {}): Promise<Tensor> {
  checkOptions('inputXGradient', opts, TARGET_KEYS);
  const x = await checkedInput('inputXGradient', input);
  const r = bl.tidy(() => bl.mul(x, inputGradient('inputXGradient', forwardOf(model, opts.rules), x, opts.target, x.shape[0])));
  await r.backend.sync();
  return r;
}

/**
 * Guided backpropagation (Springenberg et al. 2015): the gradient with every relu's backward
 * rule replaced by the guided rule. Needs a model built from engine relu (layers.ReLU).
 */
export async function guidedBackprop(model: Model, input: Tensor, opts: TargetOptions = {}): Promise<Tensor> {
  checkOptions('guidedBackprop', opts, TARGET_KEYS);
  const x = await checkedInput('guidedBackprop', input);
  const r = bl.tidy(() => reluRule('guidedBackprop', bl.guidedRelu, () => inputGradient('guidedBackprop', forwardOf(model, opts.rules), x, opts.target, x.shape[0])));
  await r.backend.sync();
  return r;
}

/** Deconvnet (Zeiler & Fergus 2014): relus pass only positive cotangents. */
export async function deconvnet(model: Model, input: Tensor, opts: TargetOptions = {}): Promise<Tensor> {
  checkOptions('deconvnet', opts, TARGET_KEYS);
  const x = await checkedInput('deconvnet', input);
  const r = bl.tidy(() => reluRule('deconvnet', bl.deconvRelu, () => inputGradient('deconvnet', forwardOf(model, opts.rules), x, opts.target, x.shape[0])));
  await r.backend.sync();
  return r;
}

/** Run fn with `rule` on every relu; a model without one is an error that says so. */
function reluRule<T>(op: string, rule: bl.Rule, fn: () => T): T {
  try {
    return bl.withRules({ relu: rule }, fn);
  } catch (e) {
    const msg = (e as Error).message;
    if (msg.startsWith("withRules: 'relu' matched no op")) {
      throw new Error(`${op}: the model has no relu (the engine's relu, layers.ReLU or ONNX Relu) whose backward rule it replaces. ${msg.slice(msg.indexOf('Layer kinds'))}`);
    }
    throw e;
  }
}

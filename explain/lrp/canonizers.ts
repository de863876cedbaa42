// Canonizers: reversible rewrites of a model into a form LRP's rules apply to, for the duration of
// one explanation (Zennit's canonizers.py; Guillemot et al. 2020 / Motzkus et al. 2022 on why
// BatchNorm must be merged: its affine map is not a layer the rules know how to redistribute
// through). apply() rewrites in place and returns an undo handle that restores the very tensor
// objects that were there, so the model's parameters are bit-identical afterwards.
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { Module } from '../../models/module.ts';
import { Sequential, GraphModel } from '../../models/containers.ts';
import { BatchNorm2d, Conv2d } from '../../models/layers.ts';

export interface Canonizer {
  name: string;
  /** Rewrite `model` in place; the returned function undoes exactly that rewrite. */
  apply(model: unknown): () => void;
}

/**
 * Fold BatchNorm2d into the convolution before it: with s = gamma / sqrt(var + eps),
 * w' = w * s (per output channel), b' = (b - mean) * s + beta; the BatchNorm becomes the identity
 * (gamma 1, beta 0, mean 0, var 1, eps 0). Pairs are a Conv2d directly followed by a BatchNorm2d
 * in a Sequential, or, in a graph (ONNX), a Conv node whose output only its BatchNormalization
 * node reads. Predictions are unchanged up to rounding.
 */
export const mergeBatchNorm: Canonizer = {
  name: 'merge-batchnorm',
  apply(model) {
    const pairs = batchNormPairs(model);
    const undos: (() => void)[] = [];
    try {
      for (const [lin, bn] of pairs) undos.push(fold(lin, bn));
    } catch (e) {
      for (const u of undos.reverse()) u();
      throw e;
    }
    return () => {
      for (const u of undos.reverse()) u();
    };
  },
};

function batchNormPairs(model: unknown): [Conv2d, BatchNorm2d][] {
  const pairs: [Conv2d, BatchNorm2d][] = [];
  if (!(model instanceof Module)) return pairs;
  for (const [, m] of model.namedModules()) {
    if (m instanceof Sequential) {
      const ls = m.layers;
      for (let i = 0; i + 1 < ls.length; i++) {
        if (ls[i] instanceof Conv2d && ls[i + 1] instanceof BatchNorm2d) pairs.push([ls[i] as Conv2d, ls[i + 1] as BatchNorm2d]);
      }
    } else if (m instanceof GraphModel) {
      const readers = new Map<string, number>();
      for (const n of m.nodes) for (const i of n.inputs) readers.set(i, (readers.get(i) ?? 0) + 1);
      for (const o of m.outputNames) readers.set(o, (readers.get(o) ?? 0) + 1);
      const producer = new Map(m.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
      for (const n of m.nodes) {
        if (!(n.module instanceof BatchNorm2d) || n.inputs.length !== 1) continue;
        const src = producer.get(n.inputs[0]);
        if (src?.module instanceof Conv2d && src.outputs.length === 1 && readers.get(n.inputs[0]) === 1) pairs.push([src.module, n.module]);
      }
    }
  }
  return pairs;
}

function fold(conv: Conv2d, bn: BatchNorm2d): () => void {
  if (bn.training) throw new Error(`merge-batchnorm: BatchNorm2d '${bn.path}' is in training mode; explain a model in eval mode`);
  const [w, b] = bl.tidy(() => {
    const s = bl.div(bn.param('weight'), bl.sqrt(bl.add(bn.buffer('running_var'), bn.eps)));
    const w0 = conv.param('weight');
    const wNew = bl.mul(w0, bl.reshape(s, [s.shape[0], 1, 1, 1]));
    const b0 = conv.optParam('bias');
    const centred = b0 ? bl.sub(b0, bn.buffer('running_mean')) : bl.neg(bn.buffer('running_mean'));
    return [wNew, bl.add(bl.mul(centred, s), bn.param('bias'))] as [Tensor, Tensor];
  });
  const c = bn.numFeatures;
  const on = bn.param('weight').backend; // the model's backend, not the default one
  const undos = [
    conv.swapTensor('weight', w),
    conv.swapTensor('bias', b),
    bn.swapTensor('weight', bl.ones([c], on)),
    bn.swapTensor('bias', bl.zeros([c], on)),
    bn.swapTensor('running_mean', bl.zeros([c], on), 'buffer'),
    bn.swapTensor('running_var', bl.ones([c], on), 'buffer'),
  ];
  const eps = bn.eps;
  bn.eps = 0;
  return () => {
    bn.eps = eps;
    for (const u of undos.reverse()) u();
  };
}

/** Canonizers by name (the command line's and `canonizers` option's names). */
export const CANONIZERS: Record<string, Canonizer> = { 'merge-batchnorm': mergeBatchNorm };

/** Apply canonizers in order; the handle undoes them in reverse, also after a failed apply. */
export function applyCanonizers(model: unknown, canonizers: readonly Canonizer[]): () => void {
  const undos: (() => void)[] = [];
  try {
    for (const c of canonizers) undos.push(c.apply(model));
  } catch (e) {
    for (const u of undos.reverse()) u();
    throw e;
  }
  return () => {
    for (const u of undos.reverse()) u();
  };
}

// Reductions over any axes (attribute or input form), softmax-like ops, layer normalisation.
import * as bl from '../../../../engine/index.ts';
import type { Tensor } from '../../../../engine/index.ts';
import { normAxis, numel } from '../host.ts';
import type { Runtime } from '../loader.ts';
import type { Handler } from './common.ts';

/** Softmax and LogSoftmax: opset < 13 flattens to 2-D at `axis` (default 1); 13+ uses one axis (default -1). */
export function softmaxLike(f: (x: Tensor, axis: number) => Tensor): Handler {
  return (n) => {
    n.singleOutput();
    const old = n.opset < 13;
    const axis = n.int('axis', old ? 1 : -1);
    n.emit({
      tensors: [0],
      run: ([x]) => {
        const a = normAxis(axis, x!.rank, 'axis');
        if (!old || a === x!.rank - 1) return [f(x!, a)];
        const s = x!.shape;
        const y = f(bl.reshape(x!, [numel(s.slice(0, a)), numel(s.slice(a))]), 1);
        return [bl.reshape(y, s)];
      },
    });
  };
}

export type ReduceKind = 'ReduceMean' | 'ReduceSum' | 'ReduceMax' | 'ReduceMin' | 'ReduceL1' | 'ReduceL2' | 'ReduceSumSquare' | 'ReduceLogSumExp';

const REDUCERS: Record<ReduceKind, (x: Tensor, axes: number[] | undefined, o: { keepDims: boolean }) => Tensor> = {
  ReduceMean: (x, a, o) => bl.mean(x, a, o),
  ReduceSum: (x, a, o) => bl.sum(x, a, o),
  ReduceMax: (x, a, o) => bl.max(x, a, o),
  ReduceMin: (x, a, o) => bl.min(x, a, o),
  ReduceL1: (x, a, o) => bl.sum(bl.abs(x), a, o),
  ReduceL2: (x, a, o) => bl.sqrt(bl.sum(bl.mul(x, x), a, o)),
  ReduceSumSquare: (x, a, o) => bl.sum(bl.mul(x, x), a, o),
  // shifted by the maximum for stability; the shift cancels in value and gradient
  ReduceLogSumExp: (x, a, o) => {
    const ax = a ?? [...x.shape.keys()];
    const m = bl.stopGradient(bl.max(x, ax, { keepDims: true }));
    const r = bl.add(bl.log(bl.sum(bl.exp(bl.sub(x, m)), ax, { keepDims: true })), m);
    return o.keepDims ? r : bl.reshape(r, x.shape.filter((_, i) => !ax.includes(i)));
  },
};

/**
 * Reductions over any set of axes (all when none are given), keepdims; the axes from the attribute
 * or, from opset 13 (ReduceSum) or 18 (the others), from input 1; noop_with_empty_axes.
 */
export function reduce(kind: ReduceKind): Handler {
  return (n) => {
    n.singleOutput();
    const axesInput = kind === 'ReduceSum' ? n.opset >= 13 : n.opset >= 18;
    const keep = n.int('keepdims', 1) !== 0;
    const noopEmpty = n.int('noop_with_empty_axes', 0) !== 0;
    if (axesInput && n.kind(1) === 'tensor') n.fail('the axes input must be a constant (or computed from shapes)');
    if (!axesInput && n.has(1)) n.fail(`takes one input at opset ${n.opset} (the axes are an attribute until opset ${kind === 'ReduceSum' ? 13 : 18})`);
    if (axesInput && n.attrs.has('axes')) n.fail(`the axes attribute was removed at opset ${kind === 'ReduceSum' ? 13 : 18}; pass the axes as input 1`);
    n.emit({
      tensors: [0],
      run: ([x], rt) => {
        const axes = axesInput ? (n.has(1) ? Array.from(rt.ints(1).data) : []) : (n.ints('axes') ?? []);
        if (axes.length === 0 && noopEmpty) return [bl.reshape(x!, x!.shape)];
        const ax = axes.length ? axes.map((a) => normAxis(a, x!.rank, 'axes')) : undefined;
        if (ax && new Set(ax).size !== ax.length) throw new Error(`axes [${axes.join(', ')}] repeat an axis`);
        return [REDUCERS[kind](x!, ax, { keepDims: keep })];
      },
    });
  };
}

/**
 * LayerNormalization (opset 17): statistics over the axes from `axis` (default -1) on, epsilon,
 * Scale and optional B broadcast against them. The optional Mean / InvStdDev outputs (training
 * only) are not supported.
 */
export const layerNormalization: Handler = (n) => {
  n.singleOutput();
  const axis = n.int('axis', -1);
  const eps = n.float('epsilon', 1e-5);
  if (n.int('stash_type', 1) !== 1) n.fail(`stash_type ${n.int('stash_type', 1)} is not supported (only 1, float32 statistics)`);
  if (!n.has(1)) n.fail('the Scale input (input 1) is missing');
  n.emit({
    tensors: [0, 1, 2],
    run: ([x, g, b]) => [bl.layerNorm(x!, { axis, gamma: g, beta: b, eps })],
  });
};

// The table of ONNX op handlers, by op type (default domain). Each handler turns one node into
// graph nodes (a layer with its parameters where the node owns its weights), folds it on the host,
// or fails naming the node, its op and the attribute or input that is not supported.
import * as bl from '../../../../engine/index.ts';
import type { Handler } from './common.ts';
import { ELEMENTWISE } from './elementwise.ts';
import { batchNormalization, conv, convTranspose, dropout, gemm } from './layers.ts';
import { padOp } from './pad.ts';
import { globalPool, pool } from './pool.ts';
import { layerNormalization, reduce, softmaxLike } from './reduce.ts';
import { resize, upsample } from './resize.ts';
import { cast, concat, constant, constantOfShape, expand, flatten, gather, identity, range, reshape, shape, slice, split, squeezeLike, transpose } from './shape.ts';

export type { Handler } from './common.ts';

export const OPS: Record<string, Handler> = {
  ...ELEMENTWISE,
  Conv: conv,
  ConvTranspose: convTranspose,
  BatchNormalization: batchNormalization,
  Gemm: gemm,
  MatMul: (n) => {
    n.singleOutput();
    n.emit({ tensors: [0, 1], run: ([a, b]) => [bl.matmul(a!, b!)] });
  },
  Dropout: dropout,
  Pad: padOp,
  MaxPool: pool('max'),
  AveragePool: pool('avg'),
  GlobalAveragePool: globalPool('mean'),
  GlobalMaxPool: globalPool('max'),
  Softmax: softmaxLike(bl.softmax),
  LogSoftmax: softmaxLike(bl.logSoftmax),
  LayerNormalization: layerNormalization,
  ReduceMean: reduce('ReduceMean'),
  ReduceSum: reduce('ReduceSum'),
  ReduceMax: reduce('ReduceMax'),
  ReduceMin: reduce('ReduceMin'),
  ReduceL1: reduce('ReduceL1'),
  ReduceL2: reduce('ReduceL2'),
  ReduceSumSquare: reduce('ReduceSumSquare'),
  ReduceLogSumExp: reduce('ReduceLogSumExp'),
  Resize: resize,
  Upsample: upsample,
  Flatten: flatten,
  Reshape: reshape,
  Concat: concat,
  Split: split,
  Slice: slice,
  Expand: expand,
  Identity: identity,
  Constant: constant,
  ConstantOfShape: constantOfShape,
  Range: range,
  Shape: shape,
  Gather: gather,
  Unsqueeze: squeezeLike('Unsqueeze'),
  Squeeze: squeezeLike('Squeeze'),
  Cast: cast,
  Transpose: transpose,
};

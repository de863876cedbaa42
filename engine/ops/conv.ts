// 2-D convolution (NCHW) and its transposes, as primitives.
import { apply, backendOf } from '../context.ts';
import type { Conv2dParams, Shape } from '../primitives.ts';
import { checkInt, fmtShape, pad4, pair, windowOut } from '../shape.ts';
import { Tensor } from '../tensor.ts';
import { add } from './elementwise.ts';
import { reshape } from './movement.ts';

export interface Conv2dOptions {
  stride?: number | readonly [number, number];
  /** n, [h, w], [top, bottom, left, right], or 'same' (stride 1: output size = input size). */
  padding?: number | readonly number[] | 'same' | 'valid';
  dilation?: number | readonly [number, number];
  groups?: number;
  /** Per output channel, shape [O]. */
  bias?: Tensor;
}

export function conv2dParams(op: string, x: Shape, w: Shape, opts: Conv2dOptions): Conv2dParams {
  if (x.length !== 4) throw new Error(`${op}: input must be NCHW (rank 4), got ${fmtShape(x)}`);
  if (w.length !== 4) throw new Error(`${op}: weight must be [out, in/groups, kh, kw] (rank 4), got ${fmtShape(w)}`);
  const groups = checkInt(op, 'groups', opts.groups ?? 1, 1);
  const stride = pair(op, 'stride', opts.stride, 1, 1);
  const dilation = pair(op, 'dilation', opts.dilation, 1, 1);
  let padding: [number, number, number, number];
  if (opts.padding === 'same') {
    if (stride[0] !== 1 || stride[1] !== 1) throw new Error(`${op}: padding 'same' needs stride 1, got ${JSON.stringify(stride)}`);
    const th = dilation[0] * (w[2] - 1), tw = dilation[1] * (w[3] - 1);
    padding = [Math.floor(th / 2), th - Math.floor(th / 2), Math.floor(tw / 2), tw - Math.floor(tw / 2)];
  } else if (opts.padding === 'valid') {
    padding = [0, 0, 0, 0];
  } else {
    padding = pad4(op, opts.padding);
  }
  if (x[1] !== w[1] * groups) {
    throw new Error(`${op}: input ${fmtShape(x)} has ${x[1]} channels but weight ${fmtShape(w)} expects ${w[1]} x ${groups} groups = ${w[1] * groups}`);
  }
  if (w[0] % groups !== 0) throw new Error(`${op}: ${w[0]} output channels of weight ${fmtShape(w)} are not divisible by groups = ${groups}`);
  return { stride, padding, dilation, groups };
}

export function conv2dOutShape(op: string, x: Shape, w: Shape, p: Conv2dParams): number[] {
  return [
    x[0],
    w[0],
    windowOut(op, x[2], w[2], p.stride[0], p.padding[0], p.padding[1], p.dilation[0], 'height'),
    windowOut(op, x[3], w[3], p.stride[1], p.padding[2], p.padding[3], p.dilation[1], 'width'),
  ];
}

/** Cross-correlation of x [N,C,H,W] with w [O,C/groups,KH,KW] (PyTorch's conv2d). */
export function conv2d(x: Tensor, w: Tensor, opts: Conv2dOptions = {}): Tensor {
  if (!(x instanceof Tensor) || !(w instanceof Tensor)) throw new Error('conv2d: expected Tensors for input and weight');
  const p = conv2dParams('conv2d', x.shape, w.shape, opts);
  const outShape = conv2dOutShape('conv2d', x.shape, w.shape, p);
  // The bias is checked before the convolution runs: no GPU work, nothing to leak, on a bad bias.
  if (opts.bias !== undefined) {
    if (!(opts.bias instanceof Tensor)) throw new Error('conv2d: bias must be a Tensor');
    if (opts.bias.rank !== 1 || opts.bias.shape[0] !== w.shape[0]) {
      throw new Error(`conv2d: bias must have shape [${w.shape[0]}], got ${fmtShape(opts.bias.shape)}`);
    }
    backendOf('conv2d', [x, w, opts.bias]);
  }
  const y = apply('conv2d', p, [x, w], outShape);
  if (!opts.bias) return y;
  const b = reshape(opts.bias, [1, w.shape[0], 1, 1]);
  const r = add(y, b);
  y.dispose();
  b.dispose();
  return r;
}

/** The adjoint of conv2d with respect to its input: dy [N,O,OH,OW] -> dx of `inputShape`. */
export function conv2dBackpropInput(dy: Tensor, w: Tensor, inputShape: Shape, opts: Conv2dOptions = {}): Tensor {
  const p = conv2dParams('conv2dBackpropInput', inputShape, w.shape, opts);
  const o = conv2dOutShape('conv2dBackpropInput', inputShape, w.shape, p);
  if (dy.rank !== 4 || o.some((d, i) => d !== dy.shape[i])) {
    throw new Error(`conv2dBackpropInput: dy ${fmtShape(dy.shape)} does not match the conv output ${fmtShape(o)} for input ${fmtShape(inputShape)}`);
  }
  return apply('conv2dBackpropInput', { ...p, inputShape: [...inputShape] }, [dy, w], inputShape);
}

/** The adjoint of conv2d with respect to its weight: (x, dy) -> dw of `filterShape`. */
export function conv2dBackpropFilter(x: Tensor, dy: Tensor, filterShape: Shape, opts: Conv2dOptions = {}): Tensor {
  const p = conv2dParams('conv2dBackpropFilter', x.shape, filterShape, opts);
  const o = conv2dOutShape('conv2dBackpropFilter', x.shape, filterShape, p);
  if (dy.rank !== 4 || o.some((d, i) => d !== dy.shape[i])) {
    throw new Error(`conv2dBackpropFilter: dy ${fmtShape(dy.shape)} does not match the conv output ${fmtShape(o)}`);
  }
  return apply('conv2dBackpropFilter', { ...p, filterShape: [...filterShape] }, [x, dy], filterShape);
}

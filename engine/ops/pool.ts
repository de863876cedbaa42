// 2-D pooling. Max pooling is maxPoolGather(x, x): the window's argmax of x picks the value.
import { apply } from '../context.ts';
import type { Pool2dParams, Shape } from '../primitives.ts';
import { fmtShape, pad4, pair, windowOut } from '../shape.ts';
import { Tensor } from '../tensor.ts';

export interface Pool2dOptions {
  kernel: number | readonly [number, number];
  /** Defaults to the kernel size (PyTorch). */
  stride?: number | readonly [number, number];
  padding?: number | readonly number[];
  dilation?: number | readonly [number, number];
}

export function poolParams(op: string, x: Shape, opts: Pool2dOptions): Pool2dParams {
  if (x.length !== 4) throw new Error(`${op}: input must be NCHW (rank 4), got ${fmtShape(x)}`);
  if (!opts || opts.kernel === undefined) throw new Error(`${op}: the kernel option is required`);
  const kernel = pair(op, 'kernel', opts.kernel, 1, 1);
  const stride = pair(op, 'stride', opts.stride ?? kernel, 1, 1);
  const dilation = pair(op, 'dilation', opts.dilation, 1, 1);
  const padding = pad4(op, opts.padding);
  // PyTorch's rule: padding at most half the effective window, so no window is all padding.
  const eff = [dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1];
  if (Math.max(padding[0], padding[1]) > eff[0] / 2 || Math.max(padding[2], padding[3]) > eff[1] / 2) {
    throw new Error(`${op}: padding ${JSON.stringify(padding)} is more than half the window ${JSON.stringify(eff)}`);
  }
  return { kernel, stride, padding, dilation };
}

export function poolOutShape(op: string, x: Shape, p: Pool2dParams): number[] {
  return [
    x[0],
    x[1],
    windowOut(op, x[2], p.kernel[0], p.stride[0], p.padding[0], p.padding[1], p.dilation[0], 'height'),
    windowOut(op, x[3], p.kernel[1], p.stride[1], p.padding[2], p.padding[3], p.dilation[1], 'width'),
  ];
}

export function maxPool2d(x: Tensor, opts: Pool2dOptions): Tensor {
  if (!(x instanceof Tensor)) throw new Error('maxPool2d: expected a Tensor');
  const p = poolParams('maxPool2d', x.shape, opts);
  return apply('maxPoolGather', p, [x, x], poolOutShape('maxPool2d', x.shape, p));
}

export interface AvgPool2dOptions extends Omit<Pool2dOptions, 'dilation'> {
  /** Divide by the whole window (true, PyTorch's default) or by its in-range part. */
  countIncludePad?: boolean;
}

export function avgPool2d(x: Tensor, opts: AvgPool2dOptions): Tensor {
  if (!(x instanceof Tensor)) throw new Error('avgPool2d: expected a Tensor');
  // Average pooling has no dilation (engine/primitives.ts); the WebGPU kernels ignore it, so a
  // dilation that slipped in (the options type omits it) would make the backends disagree.
  const dil = (opts as Pool2dOptions).dilation;
  if (dil !== undefined && !(dil === 1 || (Array.isArray(dil) && dil[0] === 1 && dil[1] === 1))) {
    throw new Error(`avgPool2d: average pooling takes no dilation, got ${JSON.stringify(dil)}`);
  }
  const p = poolParams('avgPool2d', x.shape, opts);
  return apply('avgPool2d', { ...p, countIncludePad: opts.countIncludePad ?? true }, [x], poolOutShape('avgPool2d', x.shape, p));
}

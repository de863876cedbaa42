// Transposed 2-D convolution (ONNX ConvTranspose, PyTorch ConvTranspose2d) as the conv2d
// backprop-input primitive: the adjoint of a convolution from the (larger) output to the input.
// Its gradients follow from that primitive's rules (a convolution and a filter backprop).
import { tidy } from '../context.ts';
import { checkInt, fmtShape, pad4, pair } from '../shape.ts';
import { Tensor } from '../tensor.ts';
import { conv2dBackpropInput } from './conv.ts';
import { add } from './elementwise.ts';
import { reshape, slice } from './movement.ts';

export interface ConvTranspose2dOptions {
  stride?: number | readonly [number, number];
  /** Cropped from the full output: n, [h, w] or [top, bottom, left, right]. */
  padding?: number | readonly number[];
  /** Extra rows / columns added at the bottom / right (each < stride). */
  outputPadding?: number | readonly [number, number];
  dilation?: number | readonly [number, number];
  groups?: number;
  /** Per output channel, [C_out]. */
  bias?: Tensor;
}

/**
 * x [N, C_in, H, W], w [C_in, C_out / groups, KH, KW] (PyTorch's layout) -> [N, C_out, OH, OW] with
 * OH = (H - 1) * stride - (top + bottom) + dilation * (KH - 1) + 1 + outputPadding.
 */
export function convTranspose2d(x: Tensor, w: Tensor, opts: ConvTranspose2dOptions = {}): Tensor {
  const op = 'convTranspose2d';
  if (!(x instanceof Tensor) || !(w instanceof Tensor)) throw new Error(`${op}: expected Tensors for input and weight`);
  if (x.rank !== 4) throw new Error(`${op}: input must be NCHW (rank 4), got ${fmtShape(x.shape)}`);
  if (w.rank !== 4) throw new Error(`${op}: weight must be [in, out/groups, kh, kw] (rank 4), got ${fmtShape(w.shape)}`);
  const groups = checkInt(op, 'groups', opts.groups ?? 1, 1);
  const stride = pair(op, 'stride', opts.stride, 1, 1);
  const dilation = pair(op, 'dilation', opts.dilation, 1, 1);
  const outPad = pair(op, 'outputPadding', opts.outputPadding, 0, 0);
  const [pt, pb, pl, pr] = pad4(op, opts.padding);
  if (x.shape[1] !== w.shape[0]) throw new Error(`${op}: input ${fmtShape(x.shape)} has ${x.shape[1]} channels but weight ${fmtShape(w.shape)} expects ${w.shape[0]}`);
  if (w.shape[0] % groups !== 0) throw new Error(`${op}: ${w.shape[0]} input channels are not divisible by groups = ${groups}`);
  for (let a = 0; a < 2; a++) {
    if (outPad[a] >= stride[a]) throw new Error(`${op}: outputPadding ${JSON.stringify(outPad)} must be smaller than the stride ${JSON.stringify(stride)}`);
  }
  const cOut = w.shape[1] * groups;
  const full = [(x.shape[2] - 1) * stride[0] + dilation[0] * (w.shape[2] - 1) + 1 + outPad[0], (x.shape[3] - 1) * stride[1] + dilation[1] * (w.shape[3] - 1) + 1 + outPad[1]];
  const oh = full[0] - pt - pb, ow = full[1] - pl - pr;
  if (oh < 1 || ow < 1) throw new Error(`${op}: padding [${pt}, ${pb}, ${pl}, ${pr}] leaves no output of ${fmtShape(x.shape)} (full size ${full[0]}x${full[1]})`);
  if (opts.bias && (opts.bias.rank !== 1 || opts.bias.shape[0] !== cOut)) throw new Error(`${op}: bias must have shape [${cOut}], got ${fmtShape(opts.bias.shape)}`);
  return tidy(() => {
    // The adjoint of a convolution of the full-size map with this weight and no padding; the
    // crop then removes `padding`. (A padded conv's adjoint is the same thing, but output
    // padding would then have to be passed as an input size the primitive checks against.)
    let y = conv2dBackpropInput(x, w, [x.shape[0], cOut, full[0], full[1]], { stride, dilation, groups, padding: 0 });
    if (pt || pb || pl || pr) y = slice(y, [0, 0, pt, pl], [x.shape[0], cOut, oh, ow]);
    return opts.bias ? add(y, reshape(opts.bias, [1, cOut, 1, 1])) : y;
  });
}

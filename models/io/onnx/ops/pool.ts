// Pooling: MaxPool / AveragePool (floor or ceil rounding of the output size), global pools.
import * as bl from '../../../../engine/index.ts';
import type { Tensor } from '../../../../engine/index.ts';
import { autoPad, type Handler, pair } from './common.ts';

/** The float32 lowest value: what ceil-mode max pooling pads with (it never wins a window). */
const LOWEST = -3.4028234663852886e38;

/**
 * The extra rows / columns at the end that ceil rounding adds (ceil_mode = 1), by PyTorch's rule,
 * which its exports follow: out = ceil((size + pads - window) / stride) + 1, less one when the last
 * window would start past the input and its leading padding.
 */
export function ceilExtra(size: number, k: number, s: number, d: number, pb: number, pe: number): number {
  const eff = d * (k - 1) + 1;
  const span = size + pb + pe - eff;
  if (span < 0) return 0;
  let out = Math.ceil(span / s) + 1;
  if ((out - 1) * s >= size + pb) out--;
  return Math.max(0, (out - 1) * s + eff - (size + pb + pe));
}

export function pool(kind: 'max' | 'avg'): Handler {
  return (n) => {
    n.singleOutput();
    const ceil = n.int('ceil_mode', 0);
    if (ceil !== 0 && ceil !== 1) n.fail(`ceil_mode must be 0 or 1, got ${ceil}`);
    const ks = n.ints('kernel_shape');
    if (!ks) n.fail('kernel_shape is required');
    if (ks!.length !== 2) n.fail(`only 2-D pooling is supported; kernel_shape is [${ks!.join(', ')}]`);
    const kernel: [number, number] = [ks![0], ks![1]];
    const stride = pair(n, 'strides', 1);
    const dilation = pair(n, 'dilations', 1);
    if (kind === 'avg' && (dilation[0] !== 1 || dilation[1] !== 1)) n.fail(`dilated average pooling is not supported (dilations [${dilation.join(', ')}])`);
    const pad = autoPad(n, kernel, stride, dilation);
    const countIncludePad = n.int('count_include_pad', 0) !== 0;
    n.emit({
      tensors: [0],
      run: ([x]) => {
        const padding = typeof pad === 'function' ? pad(x!) : pad;
        if (x!.rank !== 4) throw new Error(`input must be NCHW (rank 4), got [${x!.shape.join(', ')}]`);
        const eh = ceil ? ceilExtra(x!.shape[2], kernel[0], stride[0], dilation[0], padding[0], padding[1]) : 0;
        const ew = ceil ? ceilExtra(x!.shape[3], kernel[1], stride[1], dilation[1], padding[2], padding[3]) : 0;
        if (kind === 'max') {
          // the extra cells hold the lowest value, so (like padding) they never win a window
          const xe = eh || ew ? bl.pad(x!, [[0, 0], [0, 0], [0, eh], [0, ew]], LOWEST) : x!;
          return [bl.maxPool2d(xe, { kernel, stride, padding, dilation })];
        }
        if (!eh && !ew) return [bl.avgPool2d(x!, { kernel, stride, padding, countIncludePad })];
        // Ceil mode: PyTorch divides by the window's part inside the input plus (with
        // count_include_pad) the declared padding, never the extra cells. Window sums of the
        // zero-padded input over window sums of a mask of what counts.
        const [pt, pb, pl, pr] = padding;
        const xp = bl.pad(x!, [[0, 0], [0, 0], [pt, pb + eh], [pl, pr + ew]], 0);
        const ones = bl.ones([1, 1, x!.shape[2], x!.shape[3]], x!.backend);
        const counted = countIncludePad ? bl.pad(bl.pad(ones, [[0, 0], [0, 0], [pt, pb], [pl, pr]], 1), [[0, 0], [0, 0], [0, eh], [0, ew]], 0) : bl.pad(ones, [[0, 0], [0, 0], [pt, pb + eh], [pl, pr + ew]], 0);
        const o = { kernel, stride, padding: 0, countIncludePad: true };
        return [bl.div(bl.avgPool2d(xp, o), bl.avgPool2d(counted, o))];
      },
    });
  };
}

export function globalPool(kind: 'mean' | 'max'): Handler {
  return (n) => {
    n.singleOutput();
    n.emit({
      tensors: [0],
      run: ([x]) => {
        if (x!.rank < 3) throw new Error(`input must be [N, C, spatial...], got [${x!.shape.join(', ')}]`);
        const axes = [...Array(x!.rank - 2).keys()].map((a) => a + 2);
        return [kind === 'mean' ? bl.mean(x!, axes, { keepDims: true }) : bl.max(x!, axes, { keepDims: true })];
      },
    });
  };
}

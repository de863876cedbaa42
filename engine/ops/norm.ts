// Layer normalisation (transformers, ConvNeXt): normalise over the trailing axes from `axis` on.
import { tidy } from '../context.ts';
import { fmtShape, normalizeAxis } from '../shape.ts';
import { Tensor } from '../tensor.ts';
import { add, div, mul, sqrt, sub } from './elementwise.ts';
import { mean } from './nn.ts';

export interface LayerNormOptions {
  /** The first normalised axis; the statistics run over axes axis..rank-1 (default -1). */
  axis?: number;
  /** Scale and bias, broadcast against the normalised axes' shape (trailing alignment). */
  gamma?: Tensor;
  beta?: Tensor;
  eps?: number;
}

/** (x - mean) / sqrt(var + eps) * gamma + beta, with the population variance (divide by n). */
export function layerNorm(x: Tensor, opts: LayerNormOptions = {}): Tensor {
  if (!(x instanceof Tensor)) throw new Error('layerNorm: expected a Tensor');
  const a = normalizeAxis('layerNorm', opts.axis ?? -1, x.rank);
  const axes = [...Array(x.rank - a).keys()].map((i) => i + a);
  const inner = x.shape.slice(a);
  for (const [what, t] of [['gamma', opts.gamma], ['beta', opts.beta]] as const) {
    if (t && (t.rank > inner.length || t.shape.some((d, i) => d !== 1 && d !== inner[inner.length - t.rank + i]))) {
      throw new Error(`layerNorm: ${what} ${fmtShape(t.shape)} does not broadcast against the normalised axes ${fmtShape(inner)} of ${fmtShape(x.shape)}`);
    }
  }
  const eps = opts.eps ?? 1e-5;
  return tidy(() => {
    const d = sub(x, mean(x, axes, { keepDims: true }));
    const v = mean(mul(d, d), axes, { keepDims: true });
    let y = div(d, sqrt(add(v, eps)));
    if (opts.gamma) y = mul(y, opts.gamma);
    if (opts.beta) y = add(y, opts.beta);
    return y;
  });
}

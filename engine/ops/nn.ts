// Neural-network functions composed from primitives. Those that explainers override (relu and
// the other activations, softmax) are named composites: withRules({ relu: ... }) replaces their
// backward rule. Their default rules are the exact derivatives, in differentiable ops.
import { composite } from '../autodiff/composite.ts';
import { normalizeAxes, normalizeAxis, fmtShape } from '../shape.ts';
import { Tensor } from '../tensor.ts';
import { rand } from './creation.ts';
import { abs, add, div, exp, greater, log, maximum, mul, neg, sigmoid as sigmoidPrim, sqrt, step, sub, where } from './elementwise.ts';
import { tidy } from '../context.ts';
import { matmul } from './linalg.ts';
import { reshape, transpose } from './movement.ts';
import { max, sum, type ReduceOptions } from './reduce.ts';
import { avgPool2d } from './pool.ts';

function checkT(op: string, x: unknown): asserts x is Tensor {
  if (!(x instanceof Tensor)) throw new Error(`${op}: expected a Tensor, got ${x === null ? 'null' : typeof x}`);
}

/** max(x, 0); d/dx = 1 where x > 0, else 0 (PyTorch's convention at 0). */
export function relu(x: Tensor): Tensor {
  checkT('relu', x);
  return composite('relu', [x], {}, () => maximum(x, 0), (ct, { inputs: [xi] }) => [mul(ct, step(xi))], [[0]]);
}

export function leakyRelu(x: Tensor, slope = 0.01): Tensor {
  checkT('leakyRelu', x);
  return composite('leakyRelu', [x], { slope }, () => where(greater(x, 0), x, mul(x, slope)), (ct, { inputs: [xi], params }) => [
    mul(ct, where(greater(xi, 0), 1, params.slope)),
  ], [[0]]);
}

/** log(1 + exp(x)), computed as max(x, 0) + log(1 + exp(-|x|)) to avoid overflow. */
export function softplus(x: Tensor): Tensor {
  checkT('softplus', x);
  return composite('softplus', [x], {}, () => add(maximum(x, 0), log(add(exp(neg(abs(x))), 1))), (ct, { inputs: [xi] }) => [mul(ct, sigmoidPrim(xi))], [[0]]);
}


/** x * sigmoid(x) (SiLU / swish). */
export function silu(x: Tensor): Tensor {
  checkT('silu', x);
  return tidy(() => mul(x, sigmoidPrim(x)));
}

export function square(x: Tensor): Tensor {
  return mul(x, x);
}

export function mean(x: Tensor, axes?: number | readonly number[], opts: ReduceOptions = {}): Tensor {
  checkT('mean', x);
  const ax = normalizeAxes('mean', axes, x.rank);
  const n = ax.reduce((a, i) => a * x.shape[i], 1);
  if (n === 0) throw new Error(`mean: reducing over an empty axis of ${fmtShape(x.shape)}`);
  return tidy(() => div(sum(x, ax, opts), n));
}

/** Population variance (divide by n), as BatchNorm uses. */
export function variance(x: Tensor, axes?: number | readonly number[], opts: ReduceOptions = {}): Tensor {
  return tidy(() => {
    const d = sub(x, mean(x, axes, { keepDims: true }));
    return mean(mul(d, d), axes, opts);
  });
}

export function min(x: Tensor, axes?: number | readonly number[], opts: ReduceOptions = {}): Tensor {
  return tidy(() => neg(max(neg(x), axes, opts)));
}

/** x - logsumexp(x) along `axis`, stabilised by the (gradient-free) max. */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  checkT('logSoftmax', x);
  const a = normalizeAxis('logSoftmax', axis, x.rank);
  return composite(
    'logSoftmax',
    [x],
    { axis: a },
    () => {
      const m = max(x, a, { keepDims: true });
      const z = sub(x, m);
      return sub(z, log(sum(exp(z), a, { keepDims: true })));
    },
    // d/dx: ct - softmax * sum(ct)
    (ct, { output, params }) => [sub(ct, mul(exp(output), sum(ct, params.axis, { keepDims: true })))],
    [['output']],
  );
}

export function softmax(x: Tensor, axis = -1): Tensor {
  checkT('softmax', x);
  const a = normalizeAxis('softmax', axis, x.rank);
  return composite(
    'softmax',
    [x],
    { axis: a },
    () => {
      const e = exp(sub(x, max(x, a, { keepDims: true })));
      return div(e, sum(e, a, { keepDims: true }));
    },
    // d/dx: s * (ct - sum(ct * s))
    (ct, { output: s, params }) => [mul(s, sub(ct, sum(mul(ct, s), params.axis, { keepDims: true })))],
    [['output']],
  );
}

/** x @ w^T + b with w [out, in] (PyTorch's Linear layout). */
export function linear(x: Tensor, w: Tensor, b?: Tensor): Tensor {
  checkT('linear', x);
  checkT('linear', w);
  if (w.rank !== 2 || x.shape[x.rank - 1] !== w.shape[1]) {
    throw new Error(`linear: input ${fmtShape(x.shape)} does not match weight ${fmtShape(w.shape)} ([out, in])`);
  }
  if (b && (b.rank !== 1 || b.shape[0] !== w.shape[0])) throw new Error(`linear: bias must have shape [${w.shape[0]}], got ${fmtShape(b.shape)}`);
  return tidy(() => {
    const y = matmul(x, transpose(w));
    return b ? add(y, b) : y;
  });
}

/** Mean over the spatial axes of NCHW: [N, C, H, W] -> [N, C] (or [N, C, 1, 1] with keepDims). */
export function globalAvgPool(x: Tensor, opts: ReduceOptions = {}): Tensor {
  checkT('globalAvgPool', x);
  if (x.rank !== 4) throw new Error(`globalAvgPool: input must be NCHW (rank 4), got ${fmtShape(x.shape)}`);
  return mean(x, [2, 3], opts);
}

/** PyTorch's AdaptiveAvgPool2d for output sizes that divide the input evenly. */
export function adaptiveAvgPool2d(x: Tensor, size: readonly [number, number]): Tensor {
  checkT('adaptiveAvgPool2d', x);
  if (x.rank !== 4) throw new Error(`adaptiveAvgPool2d: input must be NCHW, got ${fmtShape(x.shape)}`);
  const [oh, ow] = size;
  if (x.shape[2] % oh !== 0 || x.shape[3] % ow !== 0) {
    throw new Error(`adaptiveAvgPool2d: output ${oh}x${ow} must divide the input ${x.shape[2]}x${x.shape[3]}`);
  }
  const kh = x.shape[2] / oh, kw = x.shape[3] / ow;
  return avgPool2d(x, { kernel: [kh, kw], stride: [kh, kw] });
}

export interface BatchNormParams {
  mean: Tensor;
  variance: Tensor;
  gamma?: Tensor;
  beta?: Tensor;
  eps?: number;
}

/** Inference-mode batch norm over axis 1 of [N, C, ...]: (x - mean) / sqrt(var + eps) * gamma + beta. */
export function batchNorm(x: Tensor, p: BatchNormParams): Tensor {
  checkT('batchNorm', x);
  if (x.rank < 2) throw new Error(`batchNorm: input needs a channel axis, got ${fmtShape(x.shape)}`);
  const C = x.shape[1];
  const shape = [1, C, ...Array(x.rank - 2).fill(1)];
  const as = (t: Tensor | undefined, what: string) => {
    if (!t) return undefined;
    if (t.size !== C) throw new Error(`batchNorm: ${what} has shape ${fmtShape(t.shape)}, expected [${C}]`);
    return reshape(t, shape);
  };
  const eps = p.eps ?? 1e-5;
  return tidy(() => {
    const scale = div(1, sqrt(add(as(p.variance, 'variance')!, eps)));
    let y = mul(sub(x, as(p.mean, 'mean')!), scale);
    const g = as(p.gamma, 'gamma');
    if (g) y = mul(y, g);
    const b = as(p.beta, 'beta');
    if (b) y = add(y, b);
    return y;
  });
}

export interface DropoutOptions {
  /** Probability of zeroing an element. */
  p?: number;
  seed?: number;
  /** Only active when true (training, or MC dropout at inference). */
  active?: boolean;
}

/** Inverted dropout: keep with probability 1-p and scale by 1/(1-p); seeded. */
export function dropout(x: Tensor, opts: DropoutOptions = {}): Tensor {
  checkT('dropout', x);
  const p = opts.p ?? 0.5;
  if (!(p >= 0 && p < 1)) throw new Error(`dropout: p must be in [0, 1), got ${p}`);
  if (!opts.active || p === 0) return mul(x, 1);
  return tidy(() => mul(x, mul(greater(rand(x.shape, { seed: opts.seed, backend: x.backend }), p), 1 / (1 - p))));
}

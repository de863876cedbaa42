// Activations that exported vision models use beyond relu/sigmoid/tanh: erf and GELU (ViT,
// ConvNeXt), clip / ReLU6 (MobileNet v2), hard sigmoid and hard swish (MobileNet v3). Each is a
// composition of primitives; erf carries its exact derivative as its rule (the approximation's
// own derivative would be off by its error), written in differentiable ops.
import { composite } from '../autodiff/composite.ts';
import { tidy } from '../context.ts';
import { Tensor } from '../tensor.ts';
import { abs, add, div, exp, maximum, minimum, mul, neg, sign, sub, tanh, type TensorLike } from './elementwise.ts';

function checkT(op: string, x: unknown): asserts x is Tensor {
  if (!(x instanceof Tensor)) throw new Error(`${op}: expected a Tensor, got ${x === null ? 'null' : typeof x}`);
}

// Numerical Recipes' erfc (Chebyshev fit, "erfcc"): fractional error below 1.2e-7 for all x >= 0.
const ERFC = [-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807, -1.13520398, 1.48851587, -0.82215223, 0.17087277];

/** The error function, to about 1.2e-7 (float32 precision); d/dx = 2/sqrt(pi) exp(-x^2) exactly. */
export function erf(x: Tensor): Tensor {
  checkT('erf', x);
  return composite(
    'erf',
    [x],
    {},
    () => {
      const z = abs(x);
      const t = div(1, add(mul(z, 0.5), 1));
      // Horner: c0 + t (c1 + t (c2 + ...))
      let p: Tensor = mul(t, ERFC[9]);
      for (let k = 8; k >= 1; k--) p = mul(t, add(p, ERFC[k]));
      const erfc = mul(t, exp(add(sub(neg(mul(z, z)), -ERFC[0]), p)));
      return mul(sign(x), sub(1, erfc));
    },
    (ct, { inputs: [xi] }) => [mul(ct, mul(exp(neg(mul(xi, xi))), 2 / Math.sqrt(Math.PI)))],
  );
}

/** GELU: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)); approximate 'tanh' is Hendrycks & Gimpel's tanh form. */
export function gelu(x: Tensor, opts: { approximate?: 'none' | 'tanh' } = {}): Tensor {
  checkT('gelu', x);
  const mode = opts.approximate ?? 'none';
  if (mode !== 'none' && mode !== 'tanh') throw new Error(`gelu: approximate must be 'none' or 'tanh', got ${JSON.stringify(mode)}`);
  return tidy(() => {
    const inner = mode === 'none' ? erf(mul(x, Math.SQRT1_2)) : tanh(mul(add(x, mul(mul(mul(x, x), x), 0.044715)), Math.sqrt(2 / Math.PI)));
    return mul(mul(x, 0.5), add(inner, 1));
  });
}

/** min(max(x, lo), hi); a bound left undefined is not applied (ONNX Clip, PyTorch clamp). */
export function clip(x: Tensor, lo?: TensorLike, hi?: TensorLike): Tensor {
  checkT('clip', x);
  return tidy(() => {
    let y = lo === undefined ? x : maximum(x, lo);
    if (hi !== undefined) y = minimum(y, hi);
    return y === x ? mul(x, 1) : y;
  });
}

/** max(0, min(1, alpha x + beta)) (ONNX HardSigmoid; PyTorch's hardsigmoid is alpha = 1/6, beta = 0.5). */
export function hardSigmoid(x: Tensor, alpha = 0.2, beta = 0.5): Tensor {
  checkT('hardSigmoid', x);
  return tidy(() => clip(add(mul(x, alpha), beta), 0, 1));
}

/** x * hardSigmoid(x, 1/6, 1/2) (MobileNet v3). */
export function hardSwish(x: Tensor): Tensor {
  checkT('hardSwish', x);
  return tidy(() => mul(x, hardSigmoid(x, 1 / 6, 0.5)));
}

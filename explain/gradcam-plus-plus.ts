// Grad-CAM++ (Chattopadhyay et al. 2018) from the true second and third derivatives.
//
// The paper weights each channel by w_k = sum_ij alpha_kij relu(dY/dA_kij) with
//   alpha_kij = d2Y/dA_kij^2 / (2 d2Y/dA_kij^2 + sum_ab A_kab d3Y/dA_kij^3),
// for the exponentiated class score Y = exp(S). Implementations (the paper's code,
// pytorch-grad-cam) substitute the closed form d2Y = Y g^2, d3Y = Y g^3 with g = dS/dA, which is
// exact only when S is piecewise linear in A (a ReLU head): otherwise it drops the curvature of S.
// Here the diagonal second and third derivatives are computed exactly for any head, by the
// engine's higher-order autodiff: the activation is replaced by P copies (one per element probed),
// and probing copy p along e_p with nested vjps gives d2Y/dA_p^2 and d3Y/dA_p^3 for all p at once.
// With a ReLU head this reproduces the closed form; with smooth heads (softplus, tanh, a softmax
// score) it includes the terms the closed form omits.
import * as bl from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import { fmtShape } from '../engine/shape.ts';
import { type Model, type Target, checkInput, forwardOf, positiveInt, repeatEach, resolveTarget, scores, checkedInput } from './common.ts';
import { type LayerOptions, checkLayer, maybeUpsample } from './cam.ts';
import { checkOptions, optionKeys } from './options.ts';

export interface GradCamPlusPlusOptions extends LayerOptions {
  /** 'exact' (default): true derivatives; 'closed-form': the paper's g^2 / g^3 substitution. */
  mode?: 'exact' | 'closed-form';
  /** 'exp' (default): Y = exp(S) as in the paper; 'raw': Y = S (e.g. when S is a probability). */
  score?: 'exp' | 'raw';
  /** Activation elements probed per batched pass in exact mode (default 256). */
  probeBatch?: number;
}

const GRADCAM_PP_KEYS = optionKeys<GradCamPlusPlusOptions>()(['target', 'rules', 'layer', 'upsample', 'mode', 'score', 'probeBatch']);

export interface GradCamPlusPlusTerms {
  /** The layer's activation [N, C, h, w]. */
  A: Tensor;
  /** dY/dA, d2Y/dA^2 and d3Y/dA^3 (diagonals), all [N, C, h, w]. */
  d1: Tensor;
  d2: Tensor;
  d3: Tensor;
}

/**
 * The derivatives Grad-CAM++ needs, at `layer`. Y is shifted by the (constant) score at the point,
 * exp(S - S0), which scales every term by exp(-S0) and keeps large logits from overflowing; alpha
 * and the normalised map do not change.
 */
export function gradCamPlusPlusTerms(model: Model, x: Tensor, opts: GradCamPlusPlusOptions): GradCamPlusPlusTerms {
  const op = 'gradCamPlusPlus';
  checkOptions(op, opts, GRADCAM_PP_KEYS);
  const layer = checkLayer(op, opts);
  checkInput(op, x);
  const f = forwardOf(model, opts.rules);
  const n = x.shape[0];
  const mode = opts.mode ?? 'exact';
  const useExp = (opts.score ?? 'exp') === 'exp';
  if (!['exact', 'closed-form'].includes(mode)) throw new Error(`${op}: mode must be 'exact' or 'closed-form', got '${mode}'`);
  return bl.tidy(() => {
    const target: Target | undefined = resolveTarget(op, f, x, opts.target);
    // First order, and the activation itself.
    const r = bl.valueAndGradAt(() => bl.sum(scores(op, f(x), target, n)), [layer]);
    const A = r.activations[layer];
    if (A.rank !== 4 || A.shape[0] !== n) throw new Error(`${op}: layer '${layer}' has shape ${fmtShape(A.shape)}; needs an NCHW map with the batch of ${n}`);
    const g = r.grads[layer];
    // Y = exp(S - S0): dY = g, d2Y = g^2 + d2S, d3Y = g^3 + 3 g d2S + d3S at the point (Y = 1).
    if (mode === 'closed-form') {
      const g2 = bl.mul(g, g);
      return { A, d1: g, d2: useExp ? g2 : bl.zerosLike(g), d3: useExp ? bl.mul(g2, g) : bl.zerosLike(g) };
    }
    const P = A.size / n;
    const chunk = positiveInt(op, 'probeBatch', opts.probeBatch, 256);
    const s0 = bl.reshape(bl.stopGradient(scores(op, f(x), target, n)), [n]);
    const d2parts: Tensor[] = [];
    const d3parts: Tensor[] = [];
    for (let p0 = 0; p0 < P; p0 += chunk) {
      const k = Math.min(chunk, P - p0);
      const [d2c, d3c] = bl.tidy(() => probeDiagonals(f, x, layer, A, target, s0, p0, k, useExp));
      d2parts.push(d2c);
      d3parts.push(d3c);
    }
    // Chunks are [N, k] slices of the flattened [N, P] element axis.
    const d2 = bl.reshape(bl.concat(d2parts, 1), A.shape);
    const d3 = bl.reshape(bl.concat(d3parts, 1), A.shape);
    return { A, d1: g, d2, d3 };
  });
}

/** Diagonal d2Y, d3Y for elements p0..p0+k of every item: returns two [N, k] tensors. */
function probeDiagonals(f: (x: Tensor) => Tensor, x: Tensor, layer: string, A: Tensor, target: Target | undefined, s0: Tensor, p0: number, k: number, useExp: boolean): [Tensor, Tensor] {
  const n = x.shape[0];
  const P = A.size / n;
  // Copy j of item i probes element p0 + j: E[i*k + j] = e_{p0+j}.
  const eye = bl.oneHot(bl.arange(p0, p0 + k, 1, x.backend), P); // [k, P]
  const E = bl.reshape(bl.broadcastTo(bl.expandDims(eye, 0), [n, k, P]), [n * k, ...A.shape.slice(1)]);
  const Z0 = repeatEach(A, k);
  const shift = repeatEach(s0, k);
  // Y(Z) summed over copies; copies are independent, so gradients stay per copy. The upstream part
  // of the model recomputes A from x each time, and is replaced by Z.
  const Y = (Z: Tensor) => {
    const out = bl.withActivation(layer, () => Z, () => f(x));
    const s = scores('gradCamPlusPlus', out, target, n, k);
    return bl.sum(useExp ? bl.exp(bl.sub(s, shift)) : s);
  };
  const dY = (Z: Tensor) => bl.grad(Y)(Z);
  const d2Y = (Z: Tensor) => bl.grad((z: Tensor) => bl.sum(bl.mul(dY(z), E)))(Z); // per copy: H e_p
  const d3 = bl.grad((z: Tensor) => bl.sum(bl.mul(d2Y(z), E)))(Z0); // per copy: D3Y[e_p, e_p, .]
  const d2 = d2Y(Z0);
  const pick = (t: Tensor) => bl.reshape(bl.sum(bl.reshape(bl.mul(t, E), [n, k, P]), 2), [n, k]);
  return [pick(d2), pick(d3)];
}

/** Grad-CAM++ map [N, 1, h, w] (or upsampled), from exact derivatives by default. */
export async function gradCamPlusPlus(model: Model, input: Tensor, opts: GradCamPlusPlusOptions): Promise<Tensor> {
  const x = await checkedInput('gradCamPlusPlus', input);
  const t = gradCamPlusPlusTerms(model, x, opts);
  const r = bl.tidy(() => {
    const sumA = bl.sum(t.A, [2, 3], { keepDims: true });
    const denom = bl.add(bl.mul(t.d2, 2), bl.mul(sumA, t.d3));
    // alpha = 0 where the denominator vanishes (as pytorch-grad-cam does where g = 0).
    const ok = bl.notEqual(denom, 0);
    const alpha = bl.where(ok, bl.div(t.d2, bl.where(ok, denom, 1)), 0);
    const w = bl.sum(bl.mul(alpha, bl.relu(t.d1)), [2, 3], { keepDims: true });
    const m = bl.relu(bl.sum(bl.mul(w, t.A), 1, { keepDims: true }));
    return maybeUpsample(m, x, opts.upsample);
  });
  for (const v of [t.A, t.d1, t.d2, t.d3]) v.dispose();
  await r.backend.sync();
  return r;
}

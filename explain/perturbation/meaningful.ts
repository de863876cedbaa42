// Meaningful perturbation (Fong & Vedaldi 2017, "Interpretable explanations of black boxes by
// meaningful perturbation", ICCV): learn the smallest, smoothest deletion mask that destroys the
// class score. With m in [0, 1]^(h x w) (1 keeps a pixel, 0 deletes it), the perturbed input is
//   phi(x; m) = m x + (1 - m) r          (r: a blurred copy of x by default, or a constant)
// and the mask minimises, per item,
//   l1 * mean(1 - m) + tv * mean(|grad m|^beta) + p_c(phi(x; upsample(m)))
// (their eq. 3 with the norms as means, so the weights do not depend on the image size; p_c is
// the softmax probability of the target class, or the raw score with `score: 'raw'`). The mask is
// low-resolution (upsampled bilinearly, their 28x28 for 224x224) and parameterised as
// m = sigmoid(u), a smooth stand-in for their projected gradient; Adam on u. Gradients come from
// the engine's autodiff, so the model must be a graph (a Module or a Tensor function), not a
// black box.
//
// Returns the saliency 1 - m, upsampled to the input: [N, 1, H, W]; 1 where deleting matters.
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { fmtShape } from '../../engine/shape.ts';
import { forwardOf, resolveTarget, scores, type Model, type TargetOptions } from '../common.ts';
import { checkOptions, optionKeys } from '../options.ts';

export interface MeaningfulPerturbationOptions extends TargetOptions {
  /** What deleted pixels become: 'blur' (default; Gaussian, sigma = `blurSigma`), a number, or a tensor like x. */
  baseline?: 'blur' | number | Tensor;
  /** Blur sigma in pixels (default max(1, min(H, W) / 8)). */
  blurSigma?: number;
  /** Mask resolution [h, w] (default ceil(H / 4) x ceil(W / 4)). */
  maskSize?: readonly [number, number];
  /** Optimisation steps (default 300) and Adam learning rate (default 0.1). */
  steps?: number;
  learningRate?: number;
  /** Area (default 0.05) and total-variation (default 0.2) weights, TV exponent (default 3). */
  l1?: number;
  tv?: number;
  beta?: number;
  /** 'softmax' (default): the target's probability; 'raw': the model's output itself. */
  score?: 'softmax' | 'raw';
  /** Initial mask value (default 0.95: start from deleting nothing). */
  init?: number;
}

/** Separable Gaussian blur of NCHW images; zero padding renormalised (no darkened border). */
export function gaussianBlur(x: Tensor, sigma: number): Tensor {
  return bl.tidy(() => {
    const r = Math.max(1, Math.ceil(3 * sigma));
    const k = Array.from({ length: 2 * r + 1 }, (_, i) => Math.exp(-((i - r) ** 2) / (2 * sigma * sigma)));
    const s = k.reduce((a, b) => a + b, 0);
    const c = x.shape[1];
    const kh = bl.tensor(Array.from({ length: c }, () => k.map((v) => v / s)).flat(), [c, 1, 2 * r + 1, 1], x.backend);
    const kw = bl.reshape(kh, [c, 1, 1, 2 * r + 1]);
    const blur = (t: Tensor) => bl.conv2d(bl.conv2d(t, kh, { padding: [r, r, 0, 0], groups: c }), kw, { padding: [0, 0, r, r], groups: c });
    return bl.div(blur(x), blur(bl.onesLike(x)));
  });
}

const MEANINGFULPERTURBATION_KEYS = optionKeys<MeaningfulPerturbationOptions>()(['target', 'rules', 'baseline', 'blurSigma', 'maskSize', 'steps', 'learningRate', 'l1', 'tv', 'beta', 'score', 'init']);

export async function meaningfulPerturbation(model: Model, input: Tensor, opts: MeaningfulPerturbationOptions = {}): Promise<Tensor> {
  const op = 'meaningfulPerturbation';
  checkOptions(op, opts, MEANINGFULPERTURBATION_KEYS);
  if (!(input instanceof bl.Tensor)) throw new Error(`${op}: input must be a Tensor, got ${input === null ? 'null' : typeof input}`);
  input.storageFor(op);
  if (input.rank !== 4) throw new Error(`${op}: needs images [N, C, H, W], got ${fmtShape(input.shape)}`);
  if (typeof model === 'object' && model !== null && (model as { kind?: string }).kind === 'black-box') {
    throw new Error(`${op}: needs gradients, so the model must be a backlight Module or a Tensor function, not a black box`);
  }
  const x = input;
  const [n, , H, W] = x.shape;
  const steps = opts.steps ?? 300, lr = opts.learningRate ?? 0.1;
  const l1 = opts.l1 ?? 0.05, tvw = opts.tv ?? 0.2, beta = opts.beta ?? 3;
  for (const [k, v] of [['steps', steps]] as const) if (!Number.isInteger(v) || v < 1) throw new Error(`${op}: option '${k}' must be a positive integer, got ${v}`);
  for (const [k, v] of [['learningRate', lr], ['l1', l1], ['tv', tvw], ['beta', beta]] as const) if (!(typeof v === 'number' && v >= 0 && Number.isFinite(v))) throw new Error(`${op}: option '${k}' must be a non-negative number, got ${String(v)}`);
  const [mh, mw] = opts.maskSize ?? [Math.ceil(H / 4), Math.ceil(W / 4)];
  if (![mh, mw].every((d) => Number.isInteger(d) && d >= 1)) throw new Error(`${op}: option 'maskSize' must be [h, w] of positive integers, got ${JSON.stringify(opts.maskSize)}`);
  const init = opts.init ?? 0.95;
  if (!(init > 0 && init < 1)) throw new Error(`${op}: option 'init' must be in (0, 1), got ${init}`);
  const score = opts.score ?? 'softmax';
  const f = forwardOf(model);
  const b = opts.baseline ?? 'blur';
  let ref: Tensor;
  if (b === 'blur') ref = gaussianBlur(x, opts.blurSigma ?? Math.max(1, Math.min(H, W) / 8));
  else if (typeof b === 'number') ref = bl.fullLike(x, b);
  else if (b instanceof bl.Tensor && b.shape.join() === x.shape.join()) ref = bl.mul(b, 1);
  else throw new Error(`${op}: option 'baseline' must be 'blur', a number or a tensor shaped like the input ${fmtShape(x.shape)}`);
  const target = resolveTarget(op, f, x, opts.target);
  const loss = (u: Tensor) => {
    const m = bl.sigmoid(u);
    const up = bl.resizeBilinear(m, [H, W]);
    const phi = bl.add(ref, bl.mul(up, bl.sub(x, ref)));
    let out = f(phi);
    if (score === 'softmax') out = bl.softmax(bl.reshape(out, [n, -1]), 1);
    const s = scores(op, out, target, n);
    const area = bl.mean(bl.sub(1, m));
    const dy = bl.sub(bl.slice(m, [0, 0, 1, 0], [n, 1, mh - 1, mw]), bl.slice(m, [0, 0, 0, 0], [n, 1, mh - 1, mw]));
    const dx = bl.sub(bl.slice(m, [0, 0, 0, 1], [n, 1, mh, mw - 1]), bl.slice(m, [0, 0, 0, 0], [n, 1, mh, mw - 1]));
    const tvTerm = (d: Tensor) => (d.size ? bl.mean(bl.pow(bl.add(bl.abs(d), 1e-8), beta)) : bl.zeros([]));
    // Items are independent: summing their losses gives each its own gradient.
    return bl.add(bl.sum(s), bl.mul(n, bl.add(bl.mul(l1, area), bl.mul(tvw, bl.add(tvTerm(dy), tvTerm(dx))))));
  };
  let u = bl.full([n, 1, mh, mw], Math.log(init / (1 - init)), x.backend);
  let m1 = bl.zerosLike(u), m2 = bl.zerosLike(u);
  const b1 = 0.9, b2 = 0.999;
  try {
    for (let t = 1; t <= steps; t++) {
      const next = bl.tidy(() => {
        const g = bl.grad(loss)(u);
        const a = bl.add(bl.mul(m1, b1), bl.mul(g, 1 - b1));
        const v = bl.add(bl.mul(m2, b2), bl.mul(bl.mul(g, g), 1 - b2));
        const step = bl.div(bl.mul(a, lr / (1 - b1 ** t)), bl.add(bl.sqrt(bl.div(v, 1 - b2 ** t)), 1e-8));
        return [bl.sub(u, step), a, v];
      });
      u.dispose();
      m1.dispose();
      m2.dispose();
      [u, m1, m2] = next;
      // Keep the queue short: one submit per step.
      if (t % 16 === 0) await x.backend.sync();
    }
    return bl.tidy(() => bl.sub(1, bl.resizeBilinear(bl.sigmoid(u), [H, W])));
  } finally {
    u.dispose();
    m1.dispose();
    m2.dispose();
    ref.dispose();
    if (target instanceof bl.Tensor && target !== opts.target) target.dispose();
  }
}

// Class activation maps at a named layer: CAM, Grad-CAM, HiResCAM, XGradCAM, LayerCAM,
// Score-CAM, Guided Grad-CAM. Grad-CAM++ (exact derivatives) is in gradcam-plus-plus.ts.
// Results are [N, 1, h, w] (the layer's spatial map), or [N, 1, H, W] with `upsample`.
import * as bl from '../engine/index.ts';
import { Module } from '../models/module.ts';
import type { Tensor } from '../engine/index.ts';
import { fmtShape } from '../engine/shape.ts';
import { type Model, type Target, type TargetOptions, checkInput, forwardOf, positiveInt, resolveTarget, scores, checkedInput } from './common.ts';
import { guidedBackprop } from './gradient.ts';
import { checkOptions, optionKeys } from './options.ts';

export const LAYER_KEYS = optionKeys<LayerOptions>()(['target', 'rules', 'layer', 'upsample']);
const SCORE_CAM_KEYS = optionKeys<ScoreCamOptions>()(['target', 'rules', 'layer', 'upsample', 'batchSize']);

export interface LayerOptions extends TargetOptions {
  /** The layer: a model path ('features.3') or, for ONNX models, a node or output tensor name; or the layer module itself. */
  layer: string | Module;
  /** Bilinearly resize the map to the input's spatial size (default false for the functions, true in the CLI). */
  upsample?: boolean;
}

/** The layer option: a layer name ('features.3', an ONNX node or tensor name) or the layer module itself. */
export function checkLayer(op: string, opts: { layer?: unknown } | undefined): string {
  const l = opts?.layer;
  if (l instanceof Module) {
    if (!l.path) throw new Error(`${op}: the layer module given has no path (it is the root model, or not part of the model); give a layer of the model, such as model.module('features.3')`);
    return l.path;
  }
  if (typeof l !== 'string' || !l) throw new Error(`${op}: the layer option (a layer name such as 'features.3', or the layer module) is required, got ${l === undefined ? 'nothing' : typeof l}`);
  return l;
}

/** The activation at `layer` and the gradient of the summed target scores with respect to it. */
export function activationAndGradient(op: string, f: (x: Tensor) => Tensor, x: Tensor, layer: string, target: Target | undefined): { A: Tensor; G: Tensor } {
  const n = x.shape[0];
  const r = bl.valueAndGradAt(() => bl.sum(scores(op, f(x), target, n)), [layer]);
  r.value.dispose();
  const A = r.activations[layer], G = r.grads[layer];
  if (A.rank !== 4 || A.shape[0] !== n) {
    throw new Error(`${op}: layer '${layer}' has shape ${fmtShape(A.shape)}; CAM methods need an NCHW feature map with the batch of ${n}`);
  }
  return { A, G };
}

/** Resize [N, 1, h, w] maps to the input's spatial size when asked. */
export function maybeUpsample(cam: Tensor, x: Tensor, upsample: boolean | undefined): Tensor {
  if (!upsample) return cam;
  if (x.rank !== 4) throw new Error(`upsample: the input ${fmtShape(x.shape)} is not NCHW; use upsample: false`);
  return bl.resizeBilinear(cam, [x.shape[2], x.shape[3]]);
}

/** relu(sum_k w_k A_k) for channel weights w [N, C] (or [N, C, 1, 1]) -> [N, 1, h, w]. */
function weightedMap(A: Tensor, w: Tensor, relu = true): Tensor {
  const wk = w.rank === 2 ? bl.reshape(w, [w.shape[0], w.shape[1], 1, 1]) : w;
  const m = bl.sum(bl.mul(A, wk), 1, { keepDims: true });
  return relu ? bl.relu(m) : m;
}

type MapFn = (A: Tensor, G: Tensor) => Tensor;

function gradientCam(op: string, mapFn: MapFn) {
  const fn = async (model: Model, input: Tensor, opts: LayerOptions): Promise<Tensor> => {
    checkOptions(op, opts, LAYER_KEYS);
    const layer = checkLayer(op, opts);
    const x = await checkedInput(op, input);
    const f = forwardOf(model, opts.rules);
    const r = bl.tidy(() => {
      // One forward: 'predicted' is chosen from that same forward's output (scores()).
      const { A, G } = activationAndGradient(op, f, x, layer, opts.target);
      return maybeUpsample(mapFn(A, G), x, opts.upsample);
    });
    await r.backend.sync();
    return r;
  };
  Object.defineProperty(fn, 'name', { value: op });
  return fn;
}

/** Grad-CAM (Selvaraju et al. 2017): channel weights = spatially averaged gradients. */
export const gradCam = gradientCam('gradCam', (A, G) => weightedMap(A, bl.mean(G, [2, 3])));

/** HiResCAM (Draelos & Carin 2020): relu(sum_k G_k * A_k), element-wise, no averaging. */
export const hiResCam = gradientCam('hiResCam', (A, G) => bl.relu(bl.sum(bl.mul(A, G), 1, { keepDims: true })));

/** XGradCAM (Fu et al. 2020): weights sum_ij (A_kij / sum_ab A_kab) G_kij. */
export const xGradCam = gradientCam('xGradCam', (A, G) => {
  const s = bl.sum(A, [2, 3], { keepDims: true });
  const safe = bl.where(bl.equal(s, 0), 1, s);
  return weightedMap(A, bl.sum(bl.div(bl.mul(A, G), safe), [2, 3]));
});

/** LayerCAM (Jiang et al. 2021): relu(sum_k relu(G_k) * A_k). */
export const layerCam = gradientCam('layerCam', (A, G) => bl.relu(bl.sum(bl.mul(A, bl.relu(G)), 1, { keepDims: true })));

/**
 * CAM (Zhou et al. 2016), for models whose head is global average pooling then a linear layer:
 * sum_k w_ck A_k with the linear layer's class weights w_ck (no relu, as in the paper). The
 * weights are read off the gradient (dS/dA_kij = w_ck / (h w) for such heads); a head of any
 * other kind is detected (the gradient then varies over space) and reported.
 */
export async function cam(model: Model, input: Tensor, opts: LayerOptions): Promise<Tensor> {
  const op = 'cam';
  checkOptions(op, opts, LAYER_KEYS);
  const layer = checkLayer(op, opts);
  const x = await checkedInput(op, input);
  const f = forwardOf(model, opts.rules);
  const [r, spread] = bl.tidy(() => {
    const { A, G } = activationAndGradient(op, f, x, layer, opts.target);
    const hw = A.shape[2] * A.shape[3];
    const w = bl.mul(bl.mean(G, [2, 3], { keepDims: true }), hw);
    // How far the gradient is from spatially constant, relative to its size.
    const dev = bl.max(bl.abs(bl.sub(bl.mul(G, hw), w)));
    const scale = bl.add(bl.max(bl.abs(w)), 1e-30);
    return [maybeUpsample(weightedMap(A, w, false), x, opts.upsample), bl.div(dev, scale)];
  });
  const s = await spread.item();
  spread.dispose();
  if (s > 1e-3) {
    r.dispose();
    throw new Error(`cam: the head after layer '${layer}' is not global-average-pooling + linear (the class gradient varies over space by ${(s * 100).toFixed(1)}%); use gradCam`);
  }
  return r;
}

export interface ScoreCamOptions extends LayerOptions {
  /** Masked inputs per forward pass (default 64). */
  batchSize?: number;
}

/**
 * Score-CAM (Wang et al. 2020): each channel's upsampled, min-max normalised activation masks the
 * input; its weight is the softmax probability of the target class for the masked input.
 * Gradient-free. Needs class-index targets (or 'predicted').
 */
export async function scoreCam(model: Model, input: Tensor, opts: ScoreCamOptions): Promise<Tensor> {
  const op = 'scoreCam';
  checkOptions(op, opts, SCORE_CAM_KEYS);
  const layer = checkLayer(op, opts);
  const x = await checkedInput(op, input);
  if (x.rank !== 4) throw new Error(`${op}: the input must be NCHW, got ${fmtShape(x.shape)}`);
  if (typeof opts.target === 'function') throw new Error(`${op}: needs class-index targets (a number, one per item, or 'predicted'), not a function`);
  const bs = positiveInt(op, 'batchSize', opts.batchSize, 64);
  const f = forwardOf(model, opts.rules);
  const [n, , H, W] = x.shape;
  const target = bl.tidy(() => resolveTarget(op, f, x, opts.target));
  let A: Tensor | null = null;
  bl.tidy(() => {
    bl.withActivation(layer, (a) => ((A = bl.keep(bl.stopGradient(a))), a), () => f(x));
  });
  const act = A as unknown as Tensor;
  if (act.rank !== 4 || act.shape[0] !== n) throw new Error(`${op}: layer '${layer}' has shape ${fmtShape(act.shape)}; needs an NCHW map with the batch of ${n}`);
  const C = act.shape[1];
  // Masks [N, C, H, W], each channel scaled to [0, 1] (constant channels give an all-zero mask).
  const masks = bl.tidy(() => {
    const up = bl.resizeBilinear(act, [H, W]);
    const lo = bl.min(up, [2, 3], { keepDims: true });
    const hi = bl.max(up, [2, 3], { keepDims: true });
    const range = bl.sub(hi, lo);
    return bl.where(bl.greater(range, 0), bl.div(bl.sub(up, lo), bl.where(bl.greater(range, 0), range, 1)), 0);
  });
  // Masked inputs item-major: (item i, channel k) -> x_i * M_ik, chunked.
  const weights: Tensor[] = [];
  for (let i = 0; i < n; i++) {
    for (let k0 = 0; k0 < C; k0 += bs) {
      const k = Math.min(bs, C - k0);
      weights.push(
        bl.tidy(() => {
          const xi = bl.slice(x, [i], [1]);
          const mi = bl.reshape(bl.slice(masks, [i, k0], [1, k]), [k, 1, H, W]);
          const out = f(bl.mul(mi, xi));
          const ti: Target | undefined =
            target === undefined ? undefined : typeof target === 'number' ? target : target instanceof bl.Tensor ? bl.broadcastTo(bl.slice(target, [i], [1]), [k]) : Array(k).fill((target as number[])[i]);
          return scores(op, bl.softmax(bl.reshape(out, [k, -1]), 1), ti, k);
        }),
      );
    }
  }
  const r = bl.tidy(() => {
    const w = bl.reshape(bl.concat(weights, 0), [n, C]);
    return maybeUpsample(weightedMap(act, w), x, opts.upsample);
  });
  for (const t of [...weights, masks, act]) t.dispose();
  if (target instanceof bl.Tensor) target.dispose();
  await r.backend.sync();
  return r;
}

/** Guided Grad-CAM (Selvaraju et al. 2017): guided backprop times the upsampled Grad-CAM. */
export async function guidedGradCam(model: Model, input: Tensor, opts: LayerOptions): Promise<Tensor> {
  const op = 'guidedGradCam';
  checkOptions(op, opts, LAYER_KEYS);
  const x = await checkedInput(op, input);
  if (x.rank !== 4) throw new Error(`${op}: the input must be NCHW, got ${fmtShape(x.shape)}`);
  const f = forwardOf(model, opts.rules);
  const target = bl.tidy(() => resolveTarget(op, f, x, opts.target));
  const g = await guidedBackprop(model, x, { target });
  const c = await gradCam(model, x, { ...opts, target, upsample: true });
  const r = bl.tidy(() => bl.mul(g, c));
  g.dispose();
  c.dispose();
  if (target instanceof bl.Tensor) target.dispose();
  await r.backend.sync();
  return r;
}

// A backlight model rebuilt in TensorFlow.js (NHWC, HWIO filters) with the same weights, read from
// its stateDict, and Integrated Gradients and Grad-CAM written with tf.grad the way backlight's
// explainers compute them (explain/integrated-gradients.ts, explain/cam.ts):
//   IG: all steps of the batch in one batched forward/backward at the scaled inputs
//       baseline + alpha_k (x - baseline), item-major, gradients weighted by the quadrature weights.
//   Grad-CAM: the gradient of the target score with respect to the feature map at the split layer,
//       channel weights = its spatial mean, relu of the weighted sum, bilinear upsampling with half-pixel
//       centres (PyTorch's align_corners=False, what backlight's resizeBilinear does).
// Layers translated: Sequential, Residual, Conv2d (groups 1, dilation 1, numeric padding),
// BatchNorm2d (inference), ReLU, MaxPool2d (symmetric padding), GlobalAvgPool, Linear. Anything else
// throws, naming the layer.
import type { Module } from '../../models/module.ts';
import { Residual, Sequential } from '../../models/containers.ts';
import { BatchNorm2d, Conv2d, GlobalAvgPool, Linear, MaxPool2d, ReLU } from '../../models/layers.ts';
import { oihwToHwio } from './smallcnn.ts';
import type { Tf } from './tfjs.ts';

type TfTensor = ReturnType<Tf['tensor']>;
type TF4 = ReturnType<Tf['tensor4d']>;
type TF1 = ReturnType<Tf['tensor1d']>;
type Fn = (x: TfTensor) => TfTensor;

export interface TfModel {
  /** Input [N, H, W, C] -> the feature map at the split layer [N, h, w, c]. */
  features: Fn;
  /** Feature map -> logits [N, classes]. */
  head: Fn;
  /** Both. */
  forward: Fn;
  classes: number;
  /** Every weight tensor the model holds (dispose when done). */
  weights: TfTensor[];
  /** One line per translated layer, for the log. */
  layers: string[];
}

const pair = (v: unknown, what: string, path: string): [number, number] => {
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && v.length === 2 && v.every((e) => typeof e === 'number')) return [v[0], v[1]];
  throw new Error(`explain-tfjs: layer '${path}': unsupported ${what} ${JSON.stringify(v)}`);
};

/**
 * Translate `model` (a Sequential with a child named `split`, e.g. 'features') to TF.js.
 * `host` holds the model's stateDict read back to the host.
 */
export function tfModelFrom(tf: Tf, model: Module, host: Map<string, Float32Array>, split: string): TfModel {
  const weights: TfTensor[] = [];
  const layers: string[] = [];
  const get = (name: string, shape: number[]): Float32Array => {
    const a = host.get(name);
    if (!a) throw new Error(`explain-tfjs: no '${name}' in the state dict`);
    if (a.length !== shape.reduce((p, q) => p * q, 1)) throw new Error(`explain-tfjs: '${name}' has ${a.length} values, expected shape [${shape}]`);
    return a;
  };
  const keep = <T extends TfTensor>(t: T): T => (weights.push(t), t);

  function build(m: Module): Fn {
    const p = m.path;
    if (m instanceof Sequential) {
      const fns = m.layers.map(build);
      return (x) => fns.reduce((h, f) => f(h), x);
    }
    if (m instanceof Residual) {
      const block = build(m.block);
      const shortcut = m.shortcut ? build(m.shortcut) : (x: TfTensor) => x;
      layers.push(`${p}: residual add (${m.shortcut ? 'projection' : 'identity'} shortcut)`);
      return (x) => tf.add(block(x), shortcut(x));
    }
    if (m instanceof Conv2d) {
      const o = m.opts;
      if ((o.groups ?? 1) !== 1) throw new Error(`explain-tfjs: conv '${p}': groups ${o.groups} not translated`);
      const [dh, dw] = pair(o.dilation ?? 1, 'dilation', p);
      if (dh !== 1 || dw !== 1) throw new Error(`explain-tfjs: conv '${p}': dilation not translated`);
      const [sh, sw] = pair(o.stride ?? 1, 'stride', p);
      const [ph, pw] = pair(o.padding ?? 0, 'padding', p);
      const wName = `${p}.weight`;
      const wShape = [...(model.stateDict().get(wName)?.shape ?? [])];
      if (wShape.length !== 4) throw new Error(`explain-tfjs: conv '${p}': weight shape [${wShape}]`);
      const [co, ci, kh, kw] = wShape;
      const w = keep(tf.tensor4d(oihwToHwio(get(wName, wShape), wShape), [kh, kw, ci, co]));
      const hasBias = host.has(`${p}.bias`);
      const b = hasBias ? keep(tf.tensor1d(get(`${p}.bias`, [co]))) : null;
      const pad: 'valid' | number | [[number, number], [number, number], [number, number], [number, number]] =
        ph === 0 && pw === 0 ? 'valid' : ph === pw ? ph : [[0, 0], [ph, ph], [pw, pw], [0, 0]];
      layers.push(`${p}: conv2d ${ci}->${co} ${kh}x${kw} stride ${sh},${sw} pad ${ph},${pw}${hasBias ? ' +bias' : ''}`);
      return (x) => {
        const y = tf.conv2d(x as TF4, w, [sh, sw], pad);
        return b ? tf.add(y, b) : y;
      };
    }
    if (m instanceof BatchNorm2d) {
      const c = m.numFeatures;
      const mean = keep(tf.tensor1d(get(`${p}.running_mean`, [c])));
      const variance = keep(tf.tensor1d(get(`${p}.running_var`, [c])));
      const gamma = keep(tf.tensor1d(get(`${p}.weight`, [c])));
      const beta = keep(tf.tensor1d(get(`${p}.bias`, [c])));
      const eps = m.eps;
      layers.push(`${p}: batchNorm (inference, eps ${eps})`);
      return (x) => tf.batchNorm(x as TF4, mean as TF1, variance as TF1, beta as TF1, gamma as TF1, eps);
    }
    if (m instanceof ReLU) {
      layers.push(`${p}: relu`);
      return (x) => tf.relu(x);
    }
    if (m instanceof MaxPool2d) {
      const o = m.opts;
      const k = pair(o.kernel, 'kernel', p);
      const s = pair(o.stride ?? o.kernel, 'stride', p);
      const [ph, pw] = pair(o.padding ?? 0, 'padding', p);
      if (ph !== pw) throw new Error(`explain-tfjs: maxpool '${p}': unequal padding not translated`);
      if (o.dilation !== undefined && pair(o.dilation, 'dilation', p).some((v) => v !== 1)) throw new Error(`explain-tfjs: maxpool '${p}': dilation not translated`);
      layers.push(`${p}: maxPool ${k[0]}x${k[1]} stride ${s[0]},${s[1]}${ph ? ` pad ${ph}` : ''}`);
      // A number is TF.js's explicit symmetric padding (PyTorch's), unlike 'same'.
      return (x) => tf.maxPool(x as TF4, k, s, ph === 0 ? 'valid' : ph);
    }
    if (m instanceof GlobalAvgPool) {
      layers.push(`${p}: mean over H, W`);
      return (x) => tf.mean(x, [1, 2]);
    }
    if (m instanceof Linear) {
      const w = keep(tf.tensor2d(get(`${p}.weight`, [m.outFeatures, m.inFeatures]), [m.outFeatures, m.inFeatures]));
      const b = host.has(`${p}.bias`) ? keep(tf.tensor1d(get(`${p}.bias`, [m.outFeatures]))) : null;
      layers.push(`${p}: matMul ${m.inFeatures}->${m.outFeatures}${b ? ' +bias' : ''}`);
      return (x) => {
        const y = tf.matMul(x as ReturnType<Tf['tensor2d']>, w as ReturnType<Tf['tensor2d']>, false, true);
        return b ? tf.add(y, b) : y;
      };
    }
    throw new Error(`explain-tfjs: layer '${p}' (${m.kind}) has no TF.js translation here`);
  }

  if (!(model instanceof Sequential)) throw new Error(`explain-tfjs: the model must be a Sequential, got ${model.kind}`);
  const kids = model.namedChildren();
  const at = kids.findIndex(([n]) => n === split);
  if (at < 0) throw new Error(`explain-tfjs: no top-level child '${split}' (children: ${kids.map(([n]) => n).join(', ')})`);
  const fs = kids.slice(0, at + 1).map(([, m]) => build(m));
  const hs = kids.slice(at + 1).map(([, m]) => build(m));
  const features: Fn = (x) => fs.reduce((h, f) => f(h), x);
  const head: Fn = (x) => hs.reduce((h, f) => f(h), x);
  const last = kids[kids.length - 1][1];
  if (!(last instanceof Linear)) throw new Error('explain-tfjs: the model must end in a Linear layer');
  return { features, head, forward: (x) => head(features(x)), classes: last.outFeatures, weights, layers };
}

/** One target class per item: fixed indices, or null for the model's prediction (argmax). */
function targetOneHot(tf: Tf, logits: TfTensor | null, fixed: Int32Array | null, n: number, classes: number): TfTensor {
  const idx = fixed ? tf.tensor1d(fixed, 'int32') : tf.argMax(logits!, 1);
  if (idx.shape[0] !== n) throw new Error(`explain-tfjs: ${idx.shape[0]} targets for a batch of ${n}`);
  return tf.oneHot(idx as TF1, classes);
}

/**
 * Integrated Gradients with a zero baseline: x * sum_k w_k grad F_t(alpha_k x), every (item, step)
 * pair in one batch of n*k rows (item-major), the gradient from tf.grad. x is NHWC; so is the result.
 * `fixed`: target classes per item, or null for the class predicted at x.
 */
export function tfIntegratedGradients(tf: Tf, m: TfModel, x: TfTensor, fixed: Int32Array | null, alphas: number[], weights: number[]): TfTensor {
  return tf.tidy(() => {
    const n = x.shape[0];
    const k = alphas.length;
    const rest = x.shape.slice(1);
    const ones = rest.map(() => 1);
    const oh1 = targetOneHot(tf, fixed ? null : m.forward(x), fixed, n, m.classes);
    // Each item's one-hot row repeated k times: [n*k, classes].
    const oh = tf.reshape(tf.tile(tf.expandDims(oh1, 1), [1, k, 1]), [n * k, m.classes]);
    const base = tf.zerosLike(x);
    // Repeat each item k times through a rank-3 tile (tfjs-backend-webgpu runs Tile of rank >= 5
    // on the CPU through readSync, which fails in Node).
    const d = rest.reduce((a, b) => a * b, 1);
    const rep = (t: TfTensor) => tf.reshape(tf.tile(tf.reshape(t, [n, 1, d]), [1, k, 1]), [n * k, ...rest]);
    const alpha = tf.tensor(Array.from({ length: n }, () => alphas).flat(), [n * k, ...ones]);
    const st = rep(base);
    const pts = tf.add(st, tf.mul(alpha, tf.sub(rep(x), st)));
    const g = tf.grad((p: TfTensor) => tf.sum(tf.mul(m.forward(p), oh)))(pts);
    const wt = tf.tensor(Array.from({ length: n }, () => weights).flat(), [n * k, 1]);
    const avg = tf.reshape(tf.sum(tf.reshape(tf.mul(tf.reshape(g, [n * k, d]), wt), [n, k, d]), 1), x.shape);
    return tf.mul(tf.sub(x, base), avg);
  });
}

/**
 * Grad-CAM at the split layer: relu(sum_c mean_hw(dS/dA_c) A_c), [N, h, w, 1], bilinearly resized
 * to [N, H, W, 1] when `upsample`. For predicted targets the class is the argmax of a separate
 * forward pass at x, as backlight's resolveTarget does, so both engines do the same work.
 */
export function tfGradCam(tf: Tf, m: TfModel, x: TfTensor, fixed: Int32Array | null, upsample: boolean): TfTensor {
  return tf.tidy(() => {
    const n = x.shape[0];
    const oh = targetOneHot(tf, fixed ? null : m.forward(x), fixed, n, m.classes);
    const A = m.features(x);
    const G = tf.grad((a: TfTensor) => tf.sum(tf.mul(m.head(a), oh)))(A);
    const w = tf.mean(G, [1, 2], true);
    const cam = tf.relu(tf.sum(tf.mul(A, w), 3, true));
    return upsample ? tf.image.resizeBilinear(cam as TF4, [x.shape[1]!, x.shape[2]!], false, true) : cam;
  });
}

// The small CNN of ../shared/device/torch_reference.py, for backlight (NCHW, OIHW weights, its
// public API only) and for TF.js (NHWC, HWIO weights), with the same seeded weights for both:
//   Conv(3,32,3,p1) ReLU Conv(32,32,3,p1) ReLU MaxPool2 Conv(32,64,3,p1) ReLU Conv(64,64,3,p1) ReLU
//   MaxPool2 GlobalAvgPool Linear(64,10); input 3x32x32.
import * as bl from '../../engine/index.ts';
import type { Tf } from './tfjs.ts';
import { integers, normal, uniform } from './rng.ts';

type TfTensor = ReturnType<Tf['tensor']>;

export const IMAGE = [3, 32, 32] as const;
export const CLASSES = 10;

export interface ParamSpec {
  name: string;
  /** backlight / PyTorch layout: conv weights [O, I, KH, KW], linear [out, in]. */
  shape: number[];
  fanIn: number;
}

const conv = (name: string, o: number, i: number): ParamSpec[] => [
  { name: `${name}.weight`, shape: [o, i, 3, 3], fanIn: i * 9 },
  { name: `${name}.bias`, shape: [o], fanIn: i * 9 },
];

export const PARAMS: ParamSpec[] = [
  ...conv('conv1', 32, 3),
  ...conv('conv2', 32, 32),
  ...conv('conv3', 64, 32),
  ...conv('conv4', 64, 64),
  { name: 'fc.weight', shape: [CLASSES, 64], fanIn: 64 },
  { name: 'fc.bias', shape: [CLASSES], fanIn: 64 },
];

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** PyTorch's default init for Conv2d and Linear: weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
export function initParams(seed = 1234): Float32Array[] {
  return PARAMS.map((p, i) => {
    const b = 1 / Math.sqrt(p.fanIn);
    return uniform(size(p.shape), -b, b, seed + 7919 * (i + 1));
  });
}

export interface Batch {
  n: number;
  /** NCHW images, standard normal. */
  x: Float32Array;
  labels: Int32Array;
  /** [n, 10] one-hot rows of the labels. */
  oneHot: Float32Array;
}

export function makeBatch(n: number, seed = 42): Batch {
  const x = normal(n * size(IMAGE), seed + n);
  const labels = integers(n, CLASSES, seed + 1 + n);
  const oneHot = new Float32Array(n * CLASSES);
  labels.forEach((l, i) => (oneHot[i * CLASSES + l] = 1));
  return { n, x, labels, oneHot };
}

// ---- FLOPs (2 per multiply-add of the convolutions and the linear layer) ----

const CONV_FLOPS = [
  2 * 32 * 32 * 32 * 3 * 9, // conv1 at 32x32
  2 * 32 * 32 * 32 * 32 * 9, // conv2 at 32x32
  2 * 16 * 16 * 64 * 32 * 9, // conv3 at 16x16
  2 * 16 * 16 * 64 * 64 * 9, // conv4 at 16x16
];
const FC_FLOPS = 2 * 64 * CLASSES;
const FORWARD = CONV_FLOPS.reduce((a, b) => a + b, 0) + FC_FLOPS;

/**
 * Model FLOPs per image. 'train': forward, every weight gradient, and input gradients of every
 * layer but the first (3F - conv1). 'saliency': forward and the input gradients of every layer (2F).
 */
export function flopsPerImage(step: 'train' | 'saliency'): number {
  return step === 'train' ? 3 * FORWARD - CONV_FLOPS[0] : 2 * FORWARD;
}

// ---- layouts ----

/** [O, I, KH, KW] -> [KH, KW, I, O] (TF.js conv2d filters). */
export function oihwToHwio(src: ArrayLike<number>, [o, i, kh, kw]: readonly number[]): Float32Array {
  const out = new Float32Array(o * i * kh * kw);
  for (let a = 0; a < o; a++)
    for (let b = 0; b < i; b++)
      for (let y = 0; y < kh; y++)
        for (let x = 0; x < kw; x++) out[((y * kw + x) * i + b) * o + a] = src[((a * i + b) * kh + y) * kw + x];
  return out;
}

/** [KH, KW, I, O] -> [O, I, KH, KW], given the OIHW shape. */
export function hwioToOihw(src: ArrayLike<number>, [o, i, kh, kw]: readonly number[]): Float32Array {
  const out = new Float32Array(o * i * kh * kw);
  for (let a = 0; a < o; a++)
    for (let b = 0; b < i; b++)
      for (let y = 0; y < kh; y++)
        for (let x = 0; x < kw; x++) out[((a * i + b) * kh + y) * kw + x] = src[((y * kw + x) * i + b) * o + a];
  return out;
}

/** [N, C, H, W] -> [N, H, W, C]. */
export function nchwToNhwc(src: ArrayLike<number>, [n, c, h, w]: readonly number[]): Float32Array {
  const out = new Float32Array(n * c * h * w);
  for (let a = 0; a < n; a++)
    for (let b = 0; b < c; b++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) out[((a * h + y) * w + x) * c + b] = src[((a * c + b) * h + y) * w + x];
  return out;
}

/** [N, H, W, C] -> [N, C, H, W], given the NCHW shape. */
export function nhwcToNchw(src: ArrayLike<number>, [n, c, h, w]: readonly number[]): Float32Array {
  const out = new Float32Array(n * c * h * w);
  for (let a = 0; a < n; a++)
    for (let b = 0; b < c; b++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) out[((a * c + b) * h + y) * w + x] = src[((a * h + y) * w + x) * c + b];
  return out;
}

// ---- backlight ----

export function blForward(x: bl.Tensor, p: readonly bl.Tensor[]): bl.Tensor {
  return bl.tidy(() => {
    let h = bl.relu(bl.conv2d(x, p[0], { padding: 1, bias: p[1] }));
    h = bl.relu(bl.conv2d(h, p[2], { padding: 1, bias: p[3] }));
    h = bl.maxPool2d(h, { kernel: 2 });
    h = bl.relu(bl.conv2d(h, p[4], { padding: 1, bias: p[5] }));
    h = bl.relu(bl.conv2d(h, p[6], { padding: 1, bias: p[7] }));
    h = bl.maxPool2d(h, { kernel: 2 });
    return bl.linear(bl.globalAvgPool(h), p[8], p[9]);
  });
}

/** Mean softmax cross-entropy: -mean_i sum_k onehot_ik log_softmax(logits)_ik. */
export function blLoss(x: bl.Tensor, oneHot: bl.Tensor, p: readonly bl.Tensor[]): bl.Tensor {
  return bl.tidy(() => bl.neg(bl.mean(bl.sum(bl.mul(bl.logSoftmax(blForward(x, p)), oneHot), 1))));
}

/** Saliency objective: the sum over the batch of logit 0. */
export function blScore(x: bl.Tensor, p: readonly bl.Tensor[]): bl.Tensor {
  return bl.tidy(() => {
    const logits = blForward(x, p);
    return bl.sum(bl.slice(logits, [0, 0], [logits.shape[0], 1]));
  });
}

// ---- TF.js (NHWC) ----

/** Trainable variables named like PARAMS, conv filters as HWIO (tidy frees the initial values). */
export function tfParams(tf: Tf, host: readonly Float32Array[]): ReturnType<Tf['variable']>[] {
  const vars: ReturnType<Tf['variable']>[] = [];
  tf.tidy(() => {
    PARAMS.forEach((p, i) => {
      const init = p.shape.length === 4 ? tf.tensor4d(oihwToHwio(host[i], p.shape), [3, 3, p.shape[1], p.shape[0]]) : tf.tensor(host[i], p.shape);
      vars.push(tf.variable(init, true, p.name));
    });
  });
  return vars;
}

export function tfForward(tf: Tf, x: TfTensor, p: readonly TfTensor[]): TfTensor {
  return tf.tidy(() => {
    const cv = (h: TfTensor, w: TfTensor, b: TfTensor) => tf.relu(tf.add(tf.conv2d(h as TF4, w as TF4, 1, 'same'), b));
    let h = cv(x, p[0], p[1]);
    h = cv(h, p[2], p[3]);
    h = tf.maxPool(h as TF4, 2, 2, 'valid');
    h = cv(h, p[4], p[5]);
    h = cv(h, p[6], p[7]);
    h = tf.maxPool(h as TF4, 2, 2, 'valid');
    const g = tf.mean(h, [1, 2]);
    return tf.add(tf.matMul(g, p[8], false, true), p[9]);
  });
}
type TF4 = ReturnType<Tf['tensor4d']>;

export function tfLoss(tf: Tf, x: TfTensor, oneHot: TfTensor, p: readonly TfTensor[]): ReturnType<Tf['scalar']> {
  return tf.tidy(() => tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(tfForward(tf, x, p)), oneHot), 1))) as ReturnType<Tf['scalar']>);
}

export function tfScore(tf: Tf, x: TfTensor, p: readonly TfTensor[]): ReturnType<Tf['scalar']> {
  return tf.tidy(() => {
    const logits = tfForward(tf, x, p);
    return tf.sum(tf.slice(logits, [0, 0], [logits.shape[0], 1])) as ReturnType<Tf['scalar']>;
  });
}

// Image preprocessing for vision models: the steps people apply before a torchvision / timm model
// (resize the shorter side, centre crop, per-channel mean/std normalisation), as small pure
// functions on planar float images ([C, H, W] in a Float32Array, values in [0, 1]) and, for the
// normalisation, on tensors. No Node built-ins: the same code runs in a browser (feed it a canvas'
// ImageData through rgbaToChannels).
//
// The usual ImageNet pipeline, torchvision's Resize(256) + CenterCrop(224) + Normalize(mean, std):
//
//   const { data, h, w } = resizeShorter(rgbaToChannels(px, width, height, 3), 3, height, width, 256);
//   const crop = centerCrop(data, 3, h, w, 224, 224);
//   const x = normalize(crop, 3, IMAGENET_MEAN, IMAGENET_STD); // [3, 224, 224]
//
// Differences from torchvision, on purpose or for lack of need: the resize is plain bilinear
// (half-pixel centres, PyTorch's interpolate(mode='bilinear', align_corners=False,
// antialias=False)), so a large downscale aliases where PIL's and torchvision's antialiased resize
// would average; and a crop larger than the image is an error, not zero padding.
import * as bl from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';

/** ImageNet channel means and standard deviations (RGB, values in [0, 1]), as torchvision uses. */
export const IMAGENET_MEAN: readonly number[] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: readonly number[] = [0.229, 0.224, 0.225];

const fail = (op: string, msg: string): never => {
  throw new Error(`${op}: ${msg}`);
};

function checkPlanar(op: string, src: Float32Array, c: number, h: number, w: number): void {
  for (const [k, v] of [['channels', c], ['height', h], ['width', w]] as const) if (!Number.isInteger(v) || v < 1) fail(op, `${k} must be a positive integer, got ${v}`);
  if (src.length !== c * h * w) fail(op, `the image holds ${src.length} values, [${c}, ${h}, ${w}] needs ${c * h * w}`);
}

/**
 * RGBA bytes (H x W x 4, as PNG/JPEG decoders and canvas ImageData give) -> [channels, H, W] in
 * [0, 1]. Alpha is composited over black. 3 channels: RGB; 1 channel: BT.601 luma
 * (0.299 R + 0.587 G + 0.114 B), as PIL's convert('L').
 */
export function rgbaToChannels(rgba: ArrayLike<number>, width: number, height: number, channels: 1 | 3): Float32Array {
  if (channels !== 1 && channels !== 3) fail('rgbaToChannels', `channels must be 1 (grey) or 3 (RGB), got ${channels}`);
  if (rgba.length !== width * height * 4) fail('rgbaToChannels', `${width} x ${height} RGBA needs ${width * height * 4} bytes, got ${rgba.length}`);
  const n = width * height;
  const out = new Float32Array(channels * n);
  for (let i = 0; i < n; i++) {
    const a = rgba[i * 4 + 3] / 255;
    const r = (rgba[i * 4] / 255) * a, g = (rgba[i * 4 + 1] / 255) * a, b = (rgba[i * 4 + 2] / 255) * a;
    if (channels === 1) out[i] = 0.299 * r + 0.587 * g + 0.114 * b;
    else [out[i], out[n + i], out[2 * n + i]] = [r, g, b];
  }
  return out;
}

/**
 * Bilinear resize of [c, h, w] to [c, oh, ow] with half-pixel centres (PyTorch's
 * interpolate(mode='bilinear', align_corners=False), without antialiasing). Returns a new array.
 */
export function resizeBilinear(src: Float32Array, c: number, h: number, w: number, oh: number, ow: number): Float32Array {
  checkPlanar('resizeBilinear', src, c, h, w);
  if (!Number.isInteger(oh) || !Number.isInteger(ow) || oh < 1 || ow < 1) fail('resizeBilinear', `the output size must be positive integers, got ${oh} x ${ow}`);
  if (h === oh && w === ow) return src.slice();
  const out = new Float32Array(c * oh * ow);
  const sy = h / oh, sx = w / ow;
  for (let y = 0; y < oh; y++) {
    const fy = Math.max(0, (y + 0.5) * sy - 0.5);
    const y0 = Math.min(Math.floor(fy), h - 1), y1 = Math.min(y0 + 1, h - 1), ty = fy - y0;
    for (let x = 0; x < ow; x++) {
      const fx = Math.max(0, (x + 0.5) * sx - 0.5);
      const x0 = Math.min(Math.floor(fx), w - 1), x1 = Math.min(x0 + 1, w - 1), tx = fx - x0;
      for (let k = 0; k < c; k++) {
        const p = k * h * w;
        const top = src[p + y0 * w + x0] * (1 - tx) + src[p + y0 * w + x1] * tx;
        const bot = src[p + y1 * w + x0] * (1 - tx) + src[p + y1 * w + x1] * tx;
        out[k * oh * ow + y * ow + x] = top * (1 - ty) + bot * ty;
      }
    }
  }
  return out;
}

/**
 * The size after resizing the shorter side to `size`, keeping the aspect ratio: the longer side is
 * floor(size * long / short), as torchvision's Resize(int) computes it.
 */
export function shorterSideSize(h: number, w: number, size: number): { h: number; w: number } {
  if (!Number.isInteger(size) || size < 1) fail('resizeShorter', `size must be a positive integer, got ${size}`);
  if (h <= w) return { h: size, w: Math.max(1, Math.floor((size * w) / h)) };
  return { h: Math.max(1, Math.floor((size * h) / w)), w: size };
}

/** Bilinear resize of [c, h, w] so that its shorter side is `size` (torchvision's Resize(size)). */
export function resizeShorter(src: Float32Array, c: number, h: number, w: number, size: number): { data: Float32Array; h: number; w: number } {
  const s = shorterSideSize(h, w, size);
  return { data: resizeBilinear(src, c, h, w, s.h, s.w), ...s };
}

/** Python's round(): halves to the nearest even integer (torchvision rounds the crop offset so). */
function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * The centre [c, oh, ow] of [c, h, w]; the offsets are round((h - oh) / 2) and round((w - ow) / 2)
 * with Python's rounding, as torchvision's center_crop. A crop larger than the image is an error.
 */
export function centerCrop(src: Float32Array, c: number, h: number, w: number, oh: number, ow: number): Float32Array {
  checkPlanar('centerCrop', src, c, h, w);
  if (!Number.isInteger(oh) || !Number.isInteger(ow) || oh < 1 || ow < 1) fail('centerCrop', `the crop size must be positive integers, got ${oh} x ${ow}`);
  if (oh > h || ow > w) fail('centerCrop', `a ${oh} x ${ow} crop does not fit in a ${h} x ${w} image (resize it first)`);
  const top = roundHalfEven((h - oh) / 2), left = roundHalfEven((w - ow) / 2);
  const out = new Float32Array(c * oh * ow);
  for (let k = 0; k < c; k++) {
    for (let y = 0; y < oh; y++) {
      const from = k * h * w + (top + y) * w + left;
      out.set(src.subarray(from, from + ow), k * oh * ow + y * ow);
    }
  }
  return out;
}

function checkStats(op: string, c: number, mean: readonly number[], std: readonly number[]): void {
  if (mean.length !== c || std.length !== c) fail(op, `mean and std need one value per channel (${c}), got ${mean.length} and ${std.length}`);
  if (mean.some((v) => !Number.isFinite(v))) fail(op, `mean must be finite numbers, got [${mean.join(', ')}]`);
  if (std.some((v) => !(Number.isFinite(v) && v > 0))) fail(op, `std must be positive numbers, got [${std.join(', ')}]`);
}

/** (x - mean[k]) / std[k] per channel k of one planar image [C, H, W]. Returns a new array. */
export function normalize(src: Float32Array, channels: number, mean: readonly number[], std: readonly number[]): Float32Array {
  checkStats('normalize', channels, mean, std);
  if (src.length % channels !== 0) fail('normalize', `${src.length} values are not a whole number of ${channels}-channel planes`);
  return normalizeInto(new Float32Array(src.length), src, channels, src.length / channels, mean, std);
}

/** normalize for a batch: `plane` values per channel plane (H * W). */
export function normalizeBatch(src: Float32Array, channels: number, plane: number, mean: readonly number[], std: readonly number[]): Float32Array {
  checkStats('normalize', channels, mean, std);
  if (!Number.isInteger(plane) || plane < 1 || src.length % (channels * plane) !== 0) fail('normalize', `${src.length} values are not a whole number of [${channels}, ${plane}] samples`);
  return normalizeInto(new Float32Array(src.length), src, channels, plane, mean, std);
}

function normalizeInto(out: Float32Array, src: Float32Array, channels: number, plane: number, mean: readonly number[], std: readonly number[]): Float32Array {
  for (let j = 0; j < src.length / plane; j++) {
    const k = j % channels, m = mean[k], s = std[k];
    for (let i = j * plane; i < (j + 1) * plane; i++) out[i] = (src[i] - m) / s;
  }
  return out;
}

/** The tensor form: (x - mean) / std over axis 1 of an [N, C, ...] tensor. Returns a new tensor. */
export function normalizeTensor(x: Tensor, mean: readonly number[], std: readonly number[]): Tensor {
  if (x.rank < 2) fail('normalizeTensor', `expected [N, C, ...], got [${x.shape.join(', ')}]`);
  const c = x.shape[1];
  checkStats('normalizeTensor', c, mean, std);
  const shape = [1, c, ...x.shape.slice(2).map(() => 1)];
  return bl.tidy(() => bl.div(bl.sub(x, bl.tensor(Float32Array.from(mean), shape)), bl.tensor(Float32Array.from(std), shape)));
}

export interface PreprocessOptions {
  /** Channels the model takes: 1 (grey, BT.601 luma) or 3 (RGB). */
  channels: 1 | 3;
  /** Resize the shorter side to this many pixels (aspect kept). */
  resize?: number;
  /** Centre crop to this size: a number (square) or [H, W]. */
  crop?: number | [number, number];
  /** Resize to exactly [H, W] after resize/crop where the result differs (aspect not kept). */
  size?: [number, number];
  /** Per-channel normalisation. */
  mean?: readonly number[];
  std?: readonly number[];
}

export interface Preprocessed {
  /** [channels, H, W], normalised when mean/std were given. */
  data: Float32Array;
  /** The same image before normalisation (values in [0, 1]), for display. */
  display: Float32Array;
  h: number;
  w: number;
  /** What was done, one short phrase per step (for a note to the user). */
  steps: string[];
}

/** RGBA pixels through the whole pipeline: channels, resize, crop, final size, normalisation. */
export function preprocessImage(rgba: ArrayLike<number>, width: number, height: number, o: PreprocessOptions): Preprocessed {
  const steps: string[] = [];
  let data = rgbaToChannels(rgba, width, height, o.channels);
  let h = height, w = width;
  if (o.resize !== undefined) {
    const r = resizeShorter(data, o.channels, h, w, o.resize);
    if (r.h !== h || r.w !== w) steps.push(`resized ${w}x${h} -> ${r.w}x${r.h} (shorter side ${o.resize}, bilinear)`);
    ({ data, h, w } = r);
  }
  if (o.crop !== undefined) {
    const [ch, cw] = typeof o.crop === 'number' ? [o.crop, o.crop] : o.crop;
    if (ch !== h || cw !== w) {
      data = centerCrop(data, o.channels, h, w, ch, cw);
      steps.push(`centre-cropped ${w}x${h} -> ${cw}x${ch}`);
      [h, w] = [ch, cw];
    }
  }
  if (o.size && (o.size[0] !== h || o.size[1] !== w)) {
    data = resizeBilinear(data, o.channels, h, w, o.size[0], o.size[1]);
    steps.push(`resized ${w}x${h} -> ${o.size[1]}x${o.size[0]} (bilinear${Math.abs(o.size[0] / h - o.size[1] / w) > 1e-9 ? ', aspect ratio not kept' : ''})`);
    [h, w] = o.size;
  }
  const display = data;
  if (o.mean || o.std) {
    const mean = o.mean ?? new Array<number>(o.channels).fill(0), std = o.std ?? new Array<number>(o.channels).fill(1);
    data = normalize(data, o.channels, mean, std);
    steps.push(`normalised (mean ${mean.join(', ')}; std ${std.join(', ')})`);
  }
  return { data, display, h, w, steps };
}

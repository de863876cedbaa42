// Reading model inputs for the command line: .npy arrays (float32 NCHW images or [N, features])
// and PNG images (decoded with pngjs, converted to the model's channels, resized bilinearly to its
// size, scaled to [0, 1]).
import { readFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { parseNpy } from '../models/io/npy.ts';

export interface HostBatch {
  data: Float32Array;
  /** [N, ...sampleShape]. */
  shape: number[];
  /** One label per sample (file name, or file[index] for a batch in one .npy). */
  labels: string[];
}

/** Read a file, with an error that names it and the option it came from. */
export function readInputFile(path: string, option: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : code ?? (e as Error).message;
    throw new Error(`${option} ${path}: cannot read the file (${why})`);
  }
}

const fmt = (s: readonly (number | string | null)[]) => `[${s.join(', ')}]`;

/**
 * A .npy as a batch for a model taking `sampleShape` (null: unknown, take the array as a batch).
 * Accepts [N, ...sampleShape] or one sample of sampleShape.
 */
export function npyBatch(bytes: Uint8Array, path: string, sampleShape: readonly number[] | null): HostBatch {
  const a = parseNpy(bytes, path);
  let shape = a.shape;
  if (sampleShape) {
    const same = (s: readonly number[]) => s.length === sampleShape.length && s.every((d, i) => d === sampleShape[i]);
    if (same(shape)) shape = [1, ...shape];
    else if (!same(shape.slice(1))) {
      throw new Error(`${path}: array of shape ${fmt(a.shape)} does not fit the model's input ${fmt(sampleShape)} (expected ${fmt(['N', ...sampleShape])} or ${fmt(sampleShape)})`);
    }
  } else if (shape.length < 2) {
    throw new Error(`${path}: array of shape ${fmt(a.shape)} needs a batch axis ([N, ...])`);
  }
  return { data: a.data, shape, labels: Array.from({ length: shape[0] }, (_, i) => `${path}[${i}]`) };
}

/** RGBA pixels -> [channels, h, w] in [0, 1] (alpha composited over black; 1 channel = BT.601 luma). */
export function pngToChannels(png: { width: number; height: number; data: Uint8Array | Buffer }, channels: number, path: string): Float32Array {
  if (channels !== 1 && channels !== 3) throw new Error(`${path}: the model takes ${channels} channels; PNG inputs can feed 1 (grey) or 3 (RGB) channel models`);
  const { width: w, height: h, data } = png;
  const out = new Float32Array(channels * h * w);
  for (let i = 0; i < h * w; i++) {
    const a = data[i * 4 + 3] / 255;
    const r = (data[i * 4] / 255) * a, g = (data[i * 4 + 1] / 255) * a, b = (data[i * 4 + 2] / 255) * a;
    if (channels === 1) out[i] = 0.299 * r + 0.587 * g + 0.114 * b;
    else [out[i], out[h * w + i], out[2 * h * w + i]] = [r, g, b];
  }
  return out;
}

/**
 * Bilinear resize of [c, h, w] to [c, oh, ow] with half-pixel centres (PyTorch's
 * interpolate(mode='bilinear', align_corners=False), without antialiasing).
 */
export function resizeBilinear(src: Float32Array, c: number, h: number, w: number, oh: number, ow: number): Float32Array {
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
        const p = src.subarray(k * h * w);
        const top = p[y0 * w + x0] * (1 - tx) + p[y0 * w + x1] * tx;
        const bot = p[y1 * w + x0] * (1 - tx) + p[y1 * w + x1] * tx;
        out[k * oh * ow + y * ow + x] = top * (1 - ty) + bot * ty;
      }
    }
  }
  return out;
}

/** A PNG file as one [channels, h, w] sample for an image model taking `sampleShape` ([C, H, W]). */
export function pngSample(bytes: Uint8Array, path: string, sampleShape: readonly number[] | null): Float32Array {
  if (!sampleShape || sampleShape.length !== 3) {
    throw new Error(`${path}: PNG inputs need an image model with a known [C, H, W] input; this model's input is ${sampleShape ? fmt(sampleShape) : 'unknown'} (pass --input-shape C,H,W, or a .npy)`);
  }
  let png: PNG;
  try {
    png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (e) {
    throw new Error(`${path}: not a readable PNG (${(e as Error).message})`);
  }
  const [c, h, w] = sampleShape;
  return resizeBilinear(pngToChannels(png, c, path), c, png.height, png.width, h, w);
}

/**
 * The batch that `--input` names: one .npy, or one or more PNGs (comma-separated), for a model
 * with per-sample input shape `sampleShape` (null when unknown).
 */
export function loadInputs(spec: string, sampleShape: readonly number[] | null, option = '--input'): HostBatch {
  const paths = spec.split(',').map((p) => p.trim()).filter(Boolean);
  if (!paths.length) throw new Error(`${option}: no file given`);
  const kind = (p: string) => (/\.npy$/i.test(p) ? 'npy' : /\.png$/i.test(p) ? 'png' : null);
  for (const p of paths) if (!kind(p)) throw new Error(`${option} ${p}: unsupported input type (use a .npy array or .png images)`);
  if (paths.some((p) => kind(p) === 'npy')) {
    if (paths.length !== 1) throw new Error(`${option}: give one .npy (with a batch axis) or a list of .png files, not a mix or several .npy files`);
    return npyBatch(readInputFile(paths[0], option), paths[0], sampleShape);
  }
  const samples = paths.map((p) => pngSample(readInputFile(p, option), p, sampleShape));
  const per = samples[0].length;
  const data = new Float32Array(samples.length * per);
  samples.forEach((s, i) => data.set(s, i * per));
  return { data, shape: [samples.length, ...sampleShape!], labels: paths };
}

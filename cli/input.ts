// Reading model inputs for the command line: .npy arrays (float32 NCHW images or [N, features])
// and PNG images (decoded with pngjs, converted to the model's channels, resized bilinearly to its
// size, scaled to [0, 1]).
import { readFileSync } from 'node:fs';
import { inflateSync } from 'node:zlib';
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
  const a = parseNpy(bytes, path, { allowNonFinite: false });
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

/** The most pixels a PNG input may declare (default 2^26, 64 megapixels: 256 MiB of RGBA). */
export const DEFAULT_MAX_PNG_PIXELS = 2 ** 26;

const PNG_SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];
const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const PNG_DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };

/**
 * Check a PNG's structure before pngjs decodes it, so that a hostile or damaged file gives an
 * error naming it rather than an allocation of its declared size or a silently padded image:
 * the signature; every chunk's length within the file; IHDR first, with sizes in [1, 2^31),
 * width * height <= maxPixels and a valid colour type and bit depth; at least one IDAT; an IEND
 * (else the file is truncated); and IDAT data that inflates (output capped at the size the
 * header implies, so a zlib bomb stops there) to at least the scanlines the header implies.
 * Returns the declared width and height.
 */
export function checkPng(bytes: Uint8Array, path: string, maxPixels = DEFAULT_MAX_PNG_PIXELS): { width: number; height: number } {
  const fail = (msg: string): never => {
    throw new Error(`${path}: not a readable PNG (${msg})`);
  };
  if (bytes.byteLength < 8 || PNG_SIGNATURE.some((b, i) => bytes[i] !== b)) fail('no PNG signature: the file is not a PNG, or is empty');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 8;
  let ihdr: { width: number; height: number; depth: number; color: number; interlace: number } | null = null;
  const idat: Uint8Array[] = [];
  let ended = false;
  while (pos < bytes.byteLength && !ended) {
    if (pos + 12 > bytes.byteLength) fail(`truncated: chunk header at byte ${pos} needs 12 bytes, ${bytes.byteLength - pos} remain`);
    const len = dv.getUint32(pos);
    const type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
    if (len > bytes.byteLength - pos - 12) fail(`truncated: chunk '${type.replace(/[^\x20-\x7e]/g, '?')}' at byte ${pos} declares ${len} bytes, ${Math.max(0, bytes.byteLength - pos - 12)} remain`);
    const body = bytes.subarray(pos + 8, pos + 8 + len);
    if (!ihdr && type !== 'IHDR') fail(`the first chunk is '${type.replace(/[^\x20-\x7e]/g, '?')}', not IHDR`);
    if (type === 'IHDR') {
      if (ihdr) fail('more than one IHDR chunk');
      if (len !== 13) fail(`IHDR holds ${len} bytes, not 13`);
      const width = dv.getUint32(pos + 8), height = dv.getUint32(pos + 12);
      const depth = body[8], color = body[9], interlace = body[12];
      if (width === 0 || height === 0 || width >= 2 ** 31 || height >= 2 ** 31) fail(`invalid size ${width} x ${height}`);
      if (width * height > maxPixels) fail(`its declared size ${width} x ${height} (${width * height} pixels) is over the limit of ${maxPixels} pixels`);
      if (!PNG_DEPTHS[color]?.includes(depth)) fail(`invalid colour type ${color} with bit depth ${depth}`);
      if (body[10] !== 0 || body[11] !== 0 || interlace > 1) fail(`unknown compression, filter or interlace method (${body[10]}, ${body[11]}, ${interlace})`);
      ihdr = { width, height, depth, color, interlace };
    } else if (type === 'IDAT') idat.push(body);
    else if (type === 'IEND') ended = true;
    pos += 12 + len;
  }
  if (!ihdr) fail('truncated: no IHDR chunk after the signature');
  if (!ended) fail(`truncated: no IEND chunk${idat.length ? '' : ', and no image data (IDAT)'}`);
  if (!idat.length) fail('no image data (IDAT)');
  const { width, height, depth, color, interlace } = ihdr!;
  const bpp = PNG_CHANNELS[color] * depth;
  const rows = (w: number, h: number) => (w && h ? h * (1 + Math.ceil((w * bpp) / 8)) : 0);
  let need = rows(width, height);
  if (interlace) {
    // Adam7: the seven passes' sub-images
    const passes: [number, number, number, number][] = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];
    need = passes.reduce((a, [x0, y0, dx, dy]) => a + rows(Math.ceil((width - x0) / dx), Math.ceil((height - y0) / dy)), 0);
  }
  let got: number;
  try {
    got = inflateSync(Buffer.concat(idat), { maxOutputLength: need }).byteLength;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ERR_BUFFER_TOO_LARGE') got = need; // more data than the image needs: the rest is ignored
    else return fail(`its image data does not inflate: ${(e as Error).message}`);
  }
  if (got < need) fail(`truncated image data: ${got} bytes of scanlines, ${width} x ${height} needs ${need}`);
  return { width, height };
}

/** A PNG file as one [channels, h, w] sample for an image model taking `sampleShape` ([C, H, W]). */
export function pngSample(bytes: Uint8Array, path: string, sampleShape: readonly number[] | null, maxPixels = DEFAULT_MAX_PNG_PIXELS): Float32Array {
  if (!sampleShape || sampleShape.length !== 3) {
    throw new Error(`${path}: PNG inputs need an image model with a known [C, H, W] input; this model's input is ${sampleShape ? fmt(sampleShape) : 'unknown'} (pass --input-shape C,H,W, or a .npy)`);
  }
  checkPng(bytes, path, maxPixels);
  let png: PNG;
  try {
    png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (e) {
    throw new Error(`${path}: not a readable PNG (${e instanceof Error ? e.message : String(e)})`);
  }
  const [c, h, w] = sampleShape;
  return resizeBilinear(pngToChannels(png, c, path), c, png.height, png.width, h, w);
}

/**
 * The batch that `--input` names: one .npy, or one or more PNGs (comma-separated), for a model
 * with per-sample input shape `sampleShape` (null when unknown).
 */
export function loadInputs(spec: string, sampleShape: readonly number[] | null, option = '--input', limits: { maxPngPixels?: number } = {}): HostBatch {
  const paths = spec.split(',').map((p) => p.trim()).filter(Boolean);
  if (!paths.length) throw new Error(`${option}: no file given`);
  const kind = (p: string) => (/\.npy$/i.test(p) ? 'npy' : /\.png$/i.test(p) ? 'png' : null);
  for (const p of paths) if (!kind(p)) throw new Error(`${option} ${p}: unsupported input type (use a .npy array or .png images)`);
  if (paths.some((p) => kind(p) === 'npy')) {
    if (paths.length !== 1) throw new Error(`${option}: give one .npy (with a batch axis) or a list of .png files, not a mix or several .npy files`);
    return npyBatch(readInputFile(paths[0], option), paths[0], sampleShape);
  }
  const samples = paths.map((p) => pngSample(readInputFile(p, option), p, sampleShape, limits.maxPngPixels));
  const per = samples[0].length;
  const data = new Float32Array(samples.length * per);
  samples.forEach((s, i) => data.set(s, i * per));
  return { data, shape: [samples.length, ...sampleShape!], labels: paths };
}

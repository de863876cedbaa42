// Reading model inputs for the command line: .npy arrays (float32 NCHW images or [N, features])
// and PNG / JPEG images (decoded by pngjs / jpeg-js, converted to the model's channels, resized and
// cropped and normalised by models/preprocess.ts). Each conversion an image goes through is
// reported as a note (`HostBatch.notes`), which the commands print on stderr: a photograph
// silently shrunk to 8x8 grey pixels is a surprise nobody should meet in the results.
import { readFileSync } from 'node:fs';
import { inflateSync, crc32 } from 'node:zlib';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { parseNpy } from '../models/io/npy.ts';
import { UsageError } from './args.ts';
import { normalizeBatch, preprocessImage, rgbaToChannels } from '../models/preprocess.ts';

export { resizeBilinear } from '../models/preprocess.ts';

export interface HostBatch {
  data: Float32Array;
  /** [N, ...sampleShape]. */
  shape: number[];
  /** One label per sample (file name, or file[index] for a batch in one .npy). */
  labels: string[];
  /** The inputs before normalisation (what to show the user; values in [0, 1] for images). */
  display: Float32Array;
  /** What was done to the inputs (resized, converted to grey, normalised), one line each. */
  notes: string[];
}

/** How image inputs are prepared (and, for `mean`/`std`/`invert`, every input). */
export interface InputOptions {
  /** Resize images' shorter side to this size (then --crop, or the model's size must match). */
  resize?: number;
  /** Centre-crop images to [H, W]. */
  crop?: [number, number];
  /** Per-channel normalisation, (x - mean) / std, after --invert. */
  mean?: number[];
  std?: number[];
  /** Feed 1 - value (before normalisation). */
  invert?: boolean;
  /** The most pixels an image may have (default DEFAULT_MAX_PNG_PIXELS). */
  maxPngPixels?: number;
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
export function npyBatch(bytes: Uint8Array, path: string, sampleShape: readonly number[] | null): Omit<HostBatch, 'display' | 'notes'> {
  const a = parseNpy(bytes, path, { allowNonFinite: false });
  let shape = a.shape;
  if (sampleShape) {
    const same = (s: readonly number[]) => s.length === sampleShape.length && s.every((d, i) => d === sampleShape[i]);
    if (same(shape)) shape = [1, ...shape];
    else if (!same(shape.slice(1))) {
      throw new Error(`${path}: array of shape ${fmt(a.shape)} does not fit the model's input ${fmt(sampleShape)} (expected ${fmt(['N', ...sampleShape])} or ${fmt(sampleShape)}; pass --input-shape if the model's own is wrong or open)`);
    }
  } else if (shape.length < 2) {
    throw new Error(`${path}: array of shape ${fmt(a.shape)} needs a batch axis ([N, ...])`);
  }
  return { data: a.data, shape, labels: Array.from({ length: shape[0] }, (_, i) => `${path}[${i}]`) };
}

/** RGBA pixels -> [channels, h, w] in [0, 1] (alpha composited over black; 1 channel = BT.601 luma). */
export function pngToChannels(png: { width: number; height: number; data: Uint8Array | Buffer }, channels: number, path: string): Float32Array {
  if (channels !== 1 && channels !== 3) throw new Error(`${path}: the model takes ${channels} channels; image inputs can feed 1 (grey) or 3 (RGB) channel models`);
  return rgbaToChannels(png.data, png.width, png.height, channels);
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
    // the CRC covers the type and the data: a flipped byte anywhere in a chunk is caught here,
    // with the chunk named, instead of surfacing as a vague decoder error later
    if (pos + 12 + len <= bytes.byteLength && crc32(bytes.subarray(pos + 4, pos + 8 + len)) !== dv.getUint32(pos + 8 + len)) {
      fail(`chunk '${type.replace(/[^\x20-\x7e]/g, '?')}' at byte ${pos} fails its CRC checksum: the file is corrupt`);
    }
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

/** The image formats --input reads, by extension. */
export const IMAGE_EXT = /\.(png|jpe?g)$/i;

export interface DecodedImage {
  width: number;
  height: number;
  /** RGBA bytes, width * height * 4. */
  rgba: Uint8Array;
  format: 'PNG' | 'JPEG';
}

/** Decode a PNG (structure checked first, see checkPng) or a JPEG (jpeg-js, strict) to RGBA. */
export function decodeImage(bytes: Uint8Array, path: string, maxPixels = DEFAULT_MAX_PNG_PIXELS): DecodedImage {
  const isJpeg = bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
  if (/\.jpe?g$/i.test(path) || isJpeg) {
    if (!isJpeg) throw new Error(`${path}: not a readable JPEG (no JPEG start-of-image marker: the file is not a JPEG, or is empty)`);
    try {
      // tolerantDecoding off: a truncated or damaged file is an error, not an image padded with grey.
      const im = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, tolerantDecoding: false, maxResolutionInMP: maxPixels / 1e6, maxMemoryUsageInMB: Math.max(512, Math.ceil((maxPixels * 8) / 2 ** 20)) });
      if (!im.width || !im.height) throw new Error('no image size');
      return { width: im.width, height: im.height, rgba: im.data, format: 'JPEG' };
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      // jpeg-js reports a cut or damaged stream as an odd marker ("unknown JPEG marker 0"); say what it means
      const hint = /limit exceeded/.test(msg) ? '' : ': the file is truncated or corrupt';
      throw new Error(`${path}: not a readable JPEG (${msg}${hint})`);
    }
  }
  checkPng(bytes, path, maxPixels);
  let png: PNG;
  try {
    png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (e) {
    throw new Error(`${path}: not a readable PNG (${e instanceof Error ? e.message : String(e)})`);
  }
  return { width: png.width, height: png.height, rgba: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength), format: 'PNG' };
}

/** 'grey' when every pixel has R = G = B, else 'RGB'; and whether any pixel is transparent. */
function colourOf(rgba: Uint8Array): { colour: 'grey' | 'RGB'; alpha: boolean } {
  let grey = true, alpha = false;
  for (let i = 0; i < rgba.length; i += 4) {
    if (grey && (rgba[i] !== rgba[i + 1] || rgba[i] !== rgba[i + 2])) grey = false;
    if (rgba[i + 3] !== 255) alpha = true;
    if (!grey && alpha) break;
  }
  return { colour: grey ? 'grey' : 'RGB', alpha };
}

export interface ImageSample {
  /** [C, H, W] as the model takes it (normalised when asked). */
  data: Float32Array;
  /** Before normalisation, in [0, 1]. */
  display: Float32Array;
  /** The conversions, in one line ('' when the image fit the model as it was). */
  note: string;
}

/**
 * An image file as one [channels, h, w] sample for an image model taking `sampleShape` ([C, H, W]):
 * converted to C channels, resized (shorter side, with `resize`) and centre-cropped (`crop`), or
 * without those resized straight to H x W; then normalised.
 */
export function imageSample(bytes: Uint8Array, path: string, sampleShape: readonly number[] | null, o: InputOptions = {}): ImageSample {
  if (!sampleShape || sampleShape.length !== 3) {
    throw new Error(`${path}: image inputs need an image model with a known [C, H, W] input; this model's input is ${sampleShape ? fmt(sampleShape) : 'unknown'} (pass --input-shape C,H,W, or a .npy)`);
  }
  const [c, h, w] = sampleShape;
  const im = decodeImage(bytes, path, o.maxPngPixels);
  if (c !== 1 && c !== 3) throw new Error(`${path}: the model takes ${c} channels; image inputs can feed 1 (grey) or 3 (RGB) channel models`);
  const { colour, alpha } = colourOf(im.rgba);
  const p = preprocessImage(im.rgba, im.width, im.height, { channels: c, resize: o.resize, crop: o.crop, size: o.resize === undefined && o.crop === undefined ? [h, w] : undefined });
  if (p.h !== h || p.w !== w) {
    const by = [o.resize !== undefined ? `--resize ${o.resize}` : '', o.crop ? `--crop ${o.crop.join('x')}` : ''].filter(Boolean).join(' and ');
    throw new UsageError(`${path}: ${by} make${by.includes(' and ') ? '' : 's'} a ${p.w}x${p.h} image of this ${im.width}x${im.height} one; the model takes ${w}x${h} (${fmt(sampleShape)}): ${o.crop ? 'change --crop' : `add --crop ${h === w ? h : `${h},${w}`}`}`);
  }
  const steps: string[] = [];
  if (c === 1 && colour === 'RGB') steps.push('RGB -> grey (BT.601 luma)');
  if (c === 3 && colour === 'grey') steps.push('grey -> RGB (channel repeated)');
  if (alpha) steps.push('transparent pixels composited over black');
  steps.push(...p.steps);
  let data = p.data, display = p.display;
  if (o.invert) {
    display = display.map((v) => 1 - v);
    data = display;
    steps.push('inverted (1 - value)');
  }
  if (o.mean && o.std) {
    data = normalizeBatch(display, c, h * w, o.mean, o.std);
    steps.push(`normalised (mean ${o.mean.join(', ')}; std ${o.std.join(', ')})`);
  }
  return { data, display, note: steps.length ? `${path}: ${im.width}x${im.height} ${colour} ${im.format}: ${steps.join('; ')}` : '' };
}

/** An image file (PNG or JPEG) as one sample for a model taking `sampleShape` ([C, H, W]), in [0, 1]. */
export function pngSample(bytes: Uint8Array, path: string, sampleShape: readonly number[] | null, maxPixels = DEFAULT_MAX_PNG_PIXELS): Float32Array {
  return imageSample(bytes, path, sampleShape, { maxPngPixels: maxPixels }).data;
}

/**
 * The batch that `--input` names: one .npy, or one or more PNG / JPEG images (comma-separated),
 * for a model with per-sample input shape `sampleShape` (null when unknown).
 */
export function loadInputs(spec: string, sampleShape: readonly number[] | null, option = '--input', o: InputOptions = {}): HostBatch {
  const paths = spec.split(',').map((p) => p.trim()).filter(Boolean);
  if (!paths.length) throw new Error(`${option}: no file given`);
  const kind = (p: string) => (/\.npy$/i.test(p) ? 'npy' : IMAGE_EXT.test(p) ? 'image' : null);
  for (const p of paths) if (!kind(p)) throw new Error(`${option} ${p}: unsupported input type (use a .npy array or .png / .jpg images)`);
  if (paths.some((p) => kind(p) === 'npy')) {
    if (paths.length !== 1) throw new Error(`${option}: give one .npy (with a batch axis) or a list of image files, not a mix or several .npy files`);
    if (o.resize !== undefined || o.crop) throw new UsageError(`options '--resize' and '--crop' apply to image files; ${option} ${paths[0]} is a .npy, taken as it is`);
    const b = npyBatch(readInputFile(paths[0], option), paths[0], sampleShape);
    const notes: string[] = [];
    let display = b.data;
    if (o.invert) {
      display = display.map((v) => 1 - v);
      notes.push(`${paths[0]}: inverted (1 - value)`);
    }
    let data = display;
    if (o.mean && o.std) {
      const c = b.shape[1], plane = b.shape.slice(2).reduce((a, d) => a * d, 1);
      if (o.mean.length !== c) throw new UsageError(`option '--normalize' gives ${o.mean.length} channel means, the array ${fmt(b.shape)} has ${c} channels (axis 1)`);
      data = normalizeBatch(display, c, plane, o.mean, o.std);
      notes.push(`${paths[0]}: normalised (mean ${o.mean.join(', ')}; std ${o.std.join(', ')})`);
    }
    return { ...b, data, display, notes };
  }
  const samples = paths.map((p) => imageSample(readInputFile(p, option), p, sampleShape, o));
  const per = samples[0].data.length;
  const data = new Float32Array(samples.length * per), display = new Float32Array(samples.length * per);
  samples.forEach((s, i) => (data.set(s.data, i * per), display.set(s.display, i * per)));
  return { data, display, shape: [samples.length, ...sampleShape!], labels: paths, notes: samples.map((s) => s.note).filter(Boolean) };
}

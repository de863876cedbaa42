// Turning attributions into pictures: reduce channels, normalise, upsample, colour, overlay, PNG.
import * as bl from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import { fmtShape } from '../engine/shape.ts';

export type Colormap = 'jet' | 'viridis' | 'inferno' | 'gray' | 'bwr';

// Control points (t, r, g, b) of matplotlib's maps, interpolated linearly between.
const MAPS: Record<Exclude<Colormap, 'jet'>, [number, number, number, number][]> = {
  viridis: [[0, 68, 1, 84], [0.125, 71, 44, 122], [0.25, 59, 81, 139], [0.375, 44, 113, 142], [0.5, 33, 144, 141], [0.625, 39, 173, 129], [0.75, 92, 200, 99], [0.875, 170, 220, 50], [1, 253, 231, 37]],
  inferno: [[0, 0, 0, 4], [0.125, 31, 12, 72], [0.25, 85, 15, 109], [0.375, 136, 34, 106], [0.5, 186, 54, 85], [0.625, 227, 89, 51], [0.75, 249, 140, 10], [0.875, 249, 201, 50], [1, 252, 255, 164]],
  gray: [[0, 0, 0, 0], [1, 255, 255, 255]],
  bwr: [[0, 0, 0, 255], [0.5, 255, 255, 255], [1, 255, 0, 0]],
};

/** RGB (0-255) of value t in [0, 1]. */
export function colorOf(t: number, map: Colormap = 'jet'): [number, number, number] {
  const v = Number.isFinite(t) ? Math.min(1, Math.max(0, t)) : 0;
  if (map === 'jet') {
    const c = (x: number) => Math.round(255 * Math.min(1, Math.max(0, 1.5 - Math.abs(4 * v - x))));
    return [c(3), c(2), c(1)];
  }
  const pts = MAPS[map];
  if (!pts) throw new Error(`heatmap: unknown colormap '${String(map)}' (jet, viridis, inferno, gray, bwr)`);
  let i = 0;
  while (i < pts.length - 2 && v > pts[i + 1][0]) i++;
  const [t0, r0, g0, b0] = pts[i], [t1, r1, g1, b1] = pts[i + 1];
  const a = (v - t0) / (t1 - t0);
  return [Math.round(r0 + a * (r1 - r0)), Math.round(g0 + a * (g1 - g0)), Math.round(b0 + a * (b1 - b0))];
}

export interface HeatmapOptions {
  /** How channels of an input-shaped attribution become one map: 'sum', 'abs-sum' (default), 'max-abs'. */
  reduce?: 'sum' | 'abs-sum' | 'max-abs';
  /** 'positive' keeps values above 0 (CAMs, default when all >= 0), 'abs', or 'signed' (diverging, -1..1). */
  sign?: 'positive' | 'abs' | 'signed';
  /** Resize maps to this [H, W] (bilinear). */
  size?: [number, number];
}

/**
 * [N, C, H, W] or [N, H, W] attributions -> per-item maps [N, H, W] in [0, 1] ('signed': [-1, 1]),
 * normalised by each item's largest magnitude. Reads the data back once.
 */
export async function normalizedMaps(attr: Tensor, opts: HeatmapOptions = {}): Promise<{ maps: Float32Array[]; h: number; w: number }> {
  if (attr.rank !== 4 && attr.rank !== 3) throw new Error(`heatmap: attributions must be [N, C, H, W] or [N, H, W], got ${fmtShape(attr.shape)}`);
  const t = bl.tidy(() => {
    let m = attr.rank === 3 ? bl.expandDims(attr, 1) : attr;
    const red = opts.reduce ?? 'abs-sum';
    if (m.shape[1] > 1) m = red === 'sum' ? bl.sum(m, 1, { keepDims: true }) : red === 'max-abs' ? bl.max(bl.abs(m), 1, { keepDims: true }) : bl.sum(bl.abs(m), 1, { keepDims: true });
    if (opts.size) m = bl.resizeBilinear(m, opts.size);
    return m;
  });
  const [n, , h, w] = t.shape;
  const data = await t.data();
  if (t !== attr) t.dispose(); // a single-channel map needing no resize is the caller's own tensor
  const maps: Float32Array[] = [];
  for (let i = 0; i < n; i++) {
    const m = Float32Array.from(data.subarray(i * h * w, (i + 1) * h * w));
    const sign = opts.sign ?? (m.every((v) => v >= 0) ? 'positive' : 'abs');
    let scale = 0;
    for (const v of m) scale = Math.max(scale, sign === 'positive' ? v : Math.abs(v));
    for (let k = 0; k < m.length; k++) {
      const v = sign === 'positive' ? Math.max(0, m[k]) : sign === 'abs' ? Math.abs(m[k]) : m[k];
      m[k] = scale > 0 ? v / scale : 0;
    }
    maps.push(m);
  }
  return { maps, h, w };
}

export interface OverlayOptions extends HeatmapOptions {
  colormap?: Colormap;
  /** Opacity of the heatmap over the image (default 0.5; 1 without an image). */
  alpha?: number;
}

/**
 * RGBA pixels (H x W x 4) of one map over an optional image [C, H, W] with values in [0, 1]
 * (1 or 3 channels). A signed map uses the diverging colormap unless one is given.
 */
export function overlayPixels(map: Float32Array, h: number, w: number, image?: { data: ArrayLike<number>; channels: number }, opts: OverlayOptions = {}): Uint8Array {
  const signed = opts.sign === 'signed';
  const cm = opts.colormap ?? (signed ? 'bwr' : 'jet');
  const alpha = image ? (opts.alpha ?? 0.5) : 1;
  const px = new Uint8Array(h * w * 4);
  for (let k = 0; k < h * w; k++) {
    const [r, g, b] = colorOf(signed ? (map[k] + 1) / 2 : map[k], cm);
    let ir = 0, ig = 0, ib = 0;
    if (image) {
      const c = image.channels;
      const at = (ch: number) => 255 * Math.min(1, Math.max(0, image.data[ch * h * w + k]));
      ir = at(0);
      ig = at(c === 3 ? 1 : 0);
      ib = at(c === 3 ? 2 : 0);
    }
    px[4 * k] = Math.round(alpha * r + (1 - alpha) * ir);
    px[4 * k + 1] = Math.round(alpha * g + (1 - alpha) * ig);
    px[4 * k + 2] = Math.round(alpha * b + (1 - alpha) * ib);
    px[4 * k + 3] = 255;
  }
  return px;
}

/**
 * Encode RGBA pixels (w x h x 4) as PNG bytes. In a browser (or a worker) through a canvas
 * (OffscreenCanvas, else a <canvas>); in Node through pngjs (a dependency of the package).
 * This module is browser-safe: pngjs is not imported (a bundler would pull its Node built-ins,
 * zlib and stream, into every browser bundle of the explainers) but required in Node only, from
 * process.getBuiltinModule('node:module'), which bundlers leave alone. The Node entry's
 * explain/png-node.ts imports pngjs directly.
 */
export async function encodePng(px: Uint8Array, w: number, h: number): Promise<Uint8Array> {
  if (px.length !== w * h * 4) throw new Error(`encodePng: ${px.length} bytes of pixels for ${w} x ${h} RGBA (expected ${w * h * 4})`);
  const viaCanvas = await canvasPng(px, w, h);
  if (viaCanvas) return viaCanvas;
  const get = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule;
  if (typeof get !== 'function') throw new Error('encodePng: no canvas here (OffscreenCanvas or document) and not Node (pngjs): cannot encode a PNG');
  const { createRequire } = get('node:module') as { createRequire(from: string): (id: string) => unknown };
  let pngjs: PngJs;
  try {
    pngjs = createRequire(import.meta.url)('pngjs') as PngJs;
  } catch (e) {
    throw new Error(`encodePng: the 'pngjs' package (PNG encoding in Node) cannot be loaded (${(e as Error).message}); install it with \`npm install pngjs\``);
  }
  const png = new pngjs.PNG({ width: w, height: h });
  png.data.set(px);
  return new Uint8Array(pngjs.PNG.sync.write(png));
}

// The part of pngjs used here (its types come from @types/pngjs, which the .d.ts must not need).
interface PngJs {
  PNG: { new (o: { width: number; height: number }): { data: Uint8Array }; sync: { write(png: { data: Uint8Array }): Uint8Array } };
}

interface CanvasLike {
  getContext(kind: '2d'): { putImageData(d: unknown, x: number, y: number): void } | null;
}

/** PNG bytes through a canvas where there is one (browsers, workers); null in Node. */
async function canvasPng(px: Uint8Array, w: number, h: number): Promise<Uint8Array | null> {
  const g = globalThis as {
    OffscreenCanvas?: new (w: number, h: number) => CanvasLike & { convertToBlob(o: { type: string }): Promise<Blob> };
    document?: { createElement(tag: 'canvas'): CanvasLike & { width: number; height: number; toBlob(cb: (b: Blob | null) => void, type: string): void } };
    ImageData?: new (data: Uint8ClampedArray, w: number, h: number) => unknown;
  };
  if (!g.ImageData || (!g.OffscreenCanvas && !g.document?.createElement)) return null;
  // Opaque pixels (alpha 255, as overlayPixels makes) go through a 2D canvas unchanged: no
  // premultiplication loss, and PNG is lossless.
  const image = new g.ImageData(new Uint8ClampedArray(px.buffer.slice(px.byteOffset, px.byteOffset + px.byteLength)), w, h);
  let blob: Blob | null;
  if (g.OffscreenCanvas) {
    const c = new g.OffscreenCanvas(w, h);
    const ctx = c.getContext('2d');
    if (!ctx) throw new Error('encodePng: OffscreenCanvas has no 2d context');
    ctx.putImageData(image, 0, 0);
    blob = await c.convertToBlob({ type: 'image/png' });
  } else {
    const c = g.document!.createElement('canvas');
    c.width = w;
    c.height = h;
    const ctx = c.getContext('2d');
    if (!ctx) throw new Error('encodePng: <canvas> has no 2d context');
    ctx.putImageData(image, 0, 0);
    blob = await new Promise<Blob | null>((res) => c.toBlob(res, 'image/png'));
  }
  if (!blob) throw new Error(`encodePng: the canvas produced no PNG for ${w} x ${h} pixels`);
  return new Uint8Array(await blob.arrayBuffer());
}

/**
 * One PNG for a batch of attributions: the items side by side, each map upsampled to the input's
 * size and laid over the input image when given ([N, C, H, W], values in [0, 1]).
 */
export async function heatmapPng(attr: Tensor, input?: Tensor, opts: OverlayOptions = {}): Promise<Uint8Array> {
  const size: [number, number] | undefined = input && input.rank === 4 ? [input.shape[2], input.shape[3]] : opts.size;
  const { maps, h, w } = await normalizedMaps(attr, { ...opts, size });
  const img = input && input.rank === 4 ? await input.data() : null;
  const c = input?.shape[1] ?? 1;
  const n = maps.length;
  const W = n * w;
  const out = new Uint8Array(W * h * 4);
  maps.forEach((m, i) => {
    const px = overlayPixels(m, h, w, img ? { data: img.subarray(i * c * h * w, (i + 1) * c * h * w), channels: c } : undefined, opts);
    for (let y = 0; y < h; y++) out.set(px.subarray(y * w * 4, (y + 1) * w * 4), (y * W + i * w) * 4);
  });
  return encodePng(out, W, h);
}

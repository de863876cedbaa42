// Pixels for the report: inputs to RGBA, attributions reduced over channels and coloured on a
// scale the colour bar states, and RGBA to an embeddable picture (PNG through the caller's
// encoder, or exact SVG rectangles when there is none). No Node built-ins.
import { colorOf, type Colormap } from '../heatmap.ts';
import type { AttributionMap, ChannelReduction, MapSign, PngEncoder, RasterImage } from './model.ts';

export interface Rgba { rgba: Uint8Array; width: number; height: number }

function dims(shape: readonly number[], what: string): [number, number, number] {
  if (shape.length !== 2 && shape.length !== 3) throw new Error(`report: ${what} must be [H, W] or [C, H, W], got [${shape.join(', ')}]`);
  const [c, h, w] = shape.length === 2 ? [1, shape[0], shape[1]] : shape;
  for (const d of [c, h, w]) if (!Number.isInteger(d) || d < 1) throw new Error(`report: ${what} has a bad shape [${shape.join(', ')}]`);
  return [c, h, w];
}

function checkLength(values: ArrayLike<number>, n: number, what: string, shape: readonly number[]): void {
  if (values.length !== n) throw new Error(`report: ${what} of shape [${shape.join(', ')}] needs ${n} values, got ${values.length}`);
}

/** The black..white range an input is shown in, and whether it was stretched to its own extent. */
export function displayRange(img: RasterImage): { lo: number; hi: number; stretched: boolean } {
  if (img.range) return { lo: img.range[0], hi: img.range[1], stretched: false };
  let lo = Infinity, hi = -Infinity;
  for (let k = 0; k < img.values.length; k++) {
    const v = img.values[k];
    if (Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  }
  if (!(lo < Infinity)) return { lo: 0, hi: 1, stretched: false };
  if (lo >= 0 && hi <= 1) return { lo: 0, hi: 1, stretched: false };
  return { lo, hi: hi > lo ? hi : lo + 1, stretched: true };
}

/** An input image as RGBA: grey for one channel, RGB for three (other counts are refused). */
export function inputRgba(img: RasterImage): Rgba & { lo: number; hi: number; stretched: boolean } {
  const [c, h, w] = dims(img.shape, 'an input image');
  if (c !== 1 && c !== 3) throw new Error(`report: an input image must have 1 or 3 channels, got ${c} (shape [${img.shape.join(', ')}])`);
  checkLength(img.values, c * h * w, 'an input image', img.shape);
  const r = displayRange(img);
  const rgba = new Uint8Array(h * w * 4);
  const byte = (v: number) => (Number.isFinite(v) ? Math.round(255 * Math.min(1, Math.max(0, (v - r.lo) / (r.hi - r.lo)))) : 0);
  for (let k = 0; k < h * w; k++) {
    rgba[4 * k] = byte(img.values[k]);
    rgba[4 * k + 1] = byte(img.values[(c === 3 ? h * w : 0) + k]);
    rgba[4 * k + 2] = byte(img.values[(c === 3 ? 2 * h * w : 0) + k]);
    rgba[4 * k + 3] = 255;
  }
  return { rgba, width: w, height: h, ...r };
}

export function defaultReduction(sign: MapSign): ChannelReduction {
  return sign === 'signed' ? 'sum' : 'abs-sum';
}

/** [C, H, W] attribution -> one [H, W] map (float64), and the reduction applied (null for C = 1). */
export function reduceChannels(map: AttributionMap, reduction: ChannelReduction): { values: Float64Array; height: number; width: number; channels: number; applied: ChannelReduction | null } {
  const [c, h, w] = dims(map.shape, 'an attribution map');
  checkLength(map.values, c * h * w, 'an attribution map', map.shape);
  const out = new Float64Array(h * w);
  for (let k = 0; k < h * w; k++) {
    let acc = 0;
    for (let ch = 0; ch < c; ch++) {
      const v = map.values[ch * h * w + k];
      if (c === 1 || reduction === 'sum') acc += v;
      else if (reduction === 'abs-sum') acc += Math.abs(v);
      else acc = Math.max(acc, Math.abs(v));
    }
    out[k] = acc;
  }
  return { values: out, height: h, width: w, channels: c, applied: c > 1 ? reduction : null };
}

/** Sum of every element of a raw attribution (IG's completeness uses the unreduced values). */
export function rawSum(map: AttributionMap): number {
  let s = 0;
  for (let k = 0; k < map.values.length; k++) s += map.values[k];
  return s;
}

/**
 * The colour scale of one map: signed maps run symmetric [-m, m] with 0 in the middle of the
 * diverging map; absolute and positive maps run [0, m]. m is the largest magnitude shown.
 */
export function mapScale(values: Float64Array, sign: MapSign): { lo: number; hi: number } {
  let m = 0;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    const s = sign === 'signed' || sign === 'absolute' ? Math.abs(v) : Math.max(0, v);
    if (s > m) m = s;
  }
  if (m === 0) m = 1; // an all-zero map: a scale that still has ticks, every pixel at 0
  return sign === 'signed' ? { lo: -m, hi: m } : { lo: 0, hi: m };
}

export function defaultColormap(sign: MapSign): Colormap {
  return sign === 'signed' ? 'bwr' : 'inferno';
}

/** Position in [0, 1] of a value on the scale after the sign's transform. */
export function scalePosition(v: number, sign: MapSign, scale: { lo: number; hi: number }): number {
  if (!Number.isFinite(v)) return sign === 'signed' ? 0.5 : 0;
  const x = sign === 'absolute' ? Math.abs(v) : sign === 'positive' ? Math.max(0, v) : v;
  return Math.min(1, Math.max(0, (x - scale.lo) / (scale.hi - scale.lo)));
}

/**
 * A reduced map coloured on its scale; with `under` (the input's RGBA at the map's size or a
 * multiple of it), blended at `alpha` over the input's grey.
 */
export function mapRgba(values: Float64Array, width: number, height: number, sign: MapSign, scale: { lo: number; hi: number }, colormap: Colormap, under?: Rgba, alpha = 0.55): Rgba {
  let W = width, H = height;
  if (under) { W = under.width; H = under.height; }
  const rgba = new Uint8Array(W * H * 4);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      // nearest neighbour from the map's grid onto the output's
      const k = Math.min(height - 1, Math.floor((y * height) / H)) * width + Math.min(width - 1, Math.floor((x * width) / W));
      const [r, g, b] = colorOf(scalePosition(values[k], sign, scale), colormap);
      const o = 4 * (y * W + x);
      if (under) {
        const u = under.rgba;
        const grey = 0.299 * u[o] + 0.587 * u[o + 1] + 0.114 * u[o + 2];
        rgba[o] = Math.round(alpha * r + (1 - alpha) * grey);
        rgba[o + 1] = Math.round(alpha * g + (1 - alpha) * grey);
        rgba[o + 2] = Math.round(alpha * b + (1 - alpha) * grey);
      } else {
        rgba[o] = r; rgba[o + 1] = g; rgba[o + 2] = b;
      }
      rgba[o + 3] = 255;
    }
  }
  return { rgba, width: W, height: H };
}

export function base64(bytes: Uint8Array): string {
  // btoa takes a binary string; build it in chunks (spreading a large array overflows the stack)
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

const hex2 = (v: number) => v.toString(16).padStart(2, '0');

/** RGBA as an SVG of one rectangle per run of equal pixels in a row (exact, no encoder needed). */
export function rasterSvg(img: Rgba): string {
  const parts: string[] = [];
  const { rgba, width: w, height: h } = img;
  for (let y = 0; y < h; y++) {
    let x = 0;
    while (x < w) {
      const o = 4 * (y * w + x);
      let e = x + 1;
      while (e < w && rgba[4 * (y * w + e)] === rgba[o] && rgba[4 * (y * w + e) + 1] === rgba[o + 1] && rgba[4 * (y * w + e) + 2] === rgba[o + 2]) e++;
      parts.push(`<rect x="${x}" y="${y}" width="${e - x}" height="1" fill="#${hex2(rgba[o])}${hex2(rgba[o + 1])}${hex2(rgba[o + 2])}"/>`);
      x = e;
    }
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${w} ${h}" shape-rendering="crispEdges">${parts.join('')}</svg>`;
}

/** A data URL for RGBA: PNG when an encoder is given, else the exact SVG. */
export async function rgbaDataUrl(img: Rgba, encode?: PngEncoder): Promise<string> {
  if (encode) {
    const png = await encode(img.rgba, img.width, img.height);
    return `data:image/png;base64,${base64(png)}`;
  }
  return `data:image/svg+xml;base64,${base64(new TextEncoder().encode(rasterSvg(img)))}`;
}

// Synthetic image data sets with ground truth about where the class evidence is, generated from a
// seed (the same images on every machine; no Math.random). Images are NCHW float32 in [0, 1];
// masks are [1, H, W] per sample, 1 on the pixels that carry the class evidence, 0 elsewhere.
//
//  - shapes: one filled shape (square, circle, triangle, cross) at a random position and size on
//    uniform noise. The shape is brighter than any background pixel (shape >= 0.55 > 0.45 >=
//    background), and the mask is exactly the shape's pixels.
//  - spurious ("husky vs wolf"): the class is a small bright foreground shape (circle or square),
//    drawn on a background texture (stripes or dots). A fraction `correlation` of the samples has
//    the class's own texture (circle on stripes, square on dots), the rest the other one. At 0.95
//    (train/test) a model can reach ~95% from the texture alone; at 0.5 (held-out) the texture
//    says nothing, so a model that learned the shortcut drops towards chance there. The mask is
//    the foreground object, which is what a faithful explanation of a right-for-the-right-reasons
//    model highlights.
import type { MaskedDataset } from './split.ts';
import { Rng } from './random.ts';

export const SHAPE_CLASSES = ['square', 'circle', 'triangle', 'cross'] as const;
export type ShapeKind = (typeof SHAPE_CLASSES)[number];

/** Whether the pixel centre (px, py) lies in the shape of radius r centred at (cx, cy). */
export function insideShape(kind: ShapeKind, px: number, py: number, cx: number, cy: number, r: number): boolean {
  const dx = px - cx, dy = py - cy;
  switch (kind) {
    case 'square': {
      const s = 0.8 * r;
      return Math.abs(dx) <= s && Math.abs(dy) <= s;
    }
    case 'circle':
      return dx * dx + dy * dy <= r * r;
    case 'triangle': {
      // Apex up: the half-width grows linearly from 0 at cy - r to r at cy + r.
      if (dy < -r || dy > r) return false;
      return Math.abs(dx) <= (r * (dy + r)) / (2 * r);
    }
    case 'cross': {
      const w = Math.max(1, r / 3);
      return (Math.abs(dx) <= w && Math.abs(dy) <= r) || (Math.abs(dy) <= w && Math.abs(dx) <= r);
    }
  }
}

export interface ShapesOptions {
  /** Number of images. */
  n: number;
  seed?: number;
  /** Image side in pixels (default 32). */
  size?: number;
  /** 1 (grey) or 3 (RGB; the shape gets a random light colour) channels (default 1). */
  channels?: 1 | 3;
  /** Which shapes, in class order (default all four). */
  classes?: readonly ShapeKind[];
  /** Shape radius range in pixels (default [size/6, size/3.2]). */
  radius?: [number, number];
}

export interface ShapesDataset extends MaskedDataset {
  classNames: string[];
  numClasses: number;
}

function checkN(what: string, n: number, size: number) {
  if (!Number.isInteger(n) || n < 1) throw new Error(`${what}: n must be a positive integer, got ${n}`);
  if (!Number.isInteger(size) || size < 8) throw new Error(`${what}: size must be an integer >= 8, got ${size}`);
}

/** Draw one shape into image `i` of x (channels c) and its mask; returns the number of pixels. */
function drawShape(
  x: Float32Array, masks: Float32Array, i: number, c: number, size: number,
  kind: ShapeKind, cx: number, cy: number, r: number, colour: number[], rng: Rng,
): number {
  const plane = size * size;
  let count = 0;
  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      if (!insideShape(kind, px + 0.5, py + 0.5, cx, cy, r)) continue;
      count++;
      masks[i * plane + py * size + px] = 1;
      for (let ch = 0; ch < c; ch++) {
        x[(i * c + ch) * plane + py * size + px] = Math.min(1, colour[ch] + rng.uniform(-0.05, 0.05));
      }
    }
  }
  return count;
}

/**
 * Shapes on noise: image i has class i % classes.length (balanced, interleaved), the shape at a
 * uniformly random position (fully inside the image) and radius; background U(0, 0.45) per pixel
 * and channel; shape colour U(0.6, 1) per channel (+-0.05 per pixel).
 */
export function makeShapes(opts: ShapesOptions): ShapesDataset {
  const size = opts.size ?? 32;
  checkN('makeShapes', opts.n, size);
  const c = opts.channels ?? 1;
  if (c !== 1 && c !== 3) throw new Error(`makeShapes: channels must be 1 or 3, got ${c}`);
  const classes = opts.classes ?? SHAPE_CLASSES;
  if (classes.length < 2 || classes.some((k) => !SHAPE_CLASSES.includes(k))) {
    throw new Error(`makeShapes: classes must be two or more of ${SHAPE_CLASSES.join(', ')}, got ${classes.join(', ')}`);
  }
  const [rMin, rMax] = opts.radius ?? [size / 6, size / 3.2];
  if (!(rMin > 0 && rMax >= rMin && 2 * rMax < size)) throw new Error(`makeShapes: bad radius range [${rMin}, ${rMax}] for size ${size}`);
  const rng = new Rng(opts.seed ?? 0);
  const plane = size * size;
  const x = new Float32Array(opts.n * c * plane), masks = new Float32Array(opts.n * plane), y = new Float32Array(opts.n);
  for (let i = 0; i < opts.n; i++) {
    const cls = i % classes.length;
    y[i] = cls;
    for (let j = 0; j < c * plane; j++) x[i * c * plane + j] = rng.uniform(0, 0.45);
    const r = rng.uniform(rMin, rMax);
    const cx = rng.uniform(r + 0.5, size - r - 0.5), cy = rng.uniform(r + 0.5, size - r - 0.5);
    const colour = Array.from({ length: c }, () => rng.uniform(0.6, 1));
    drawShape(x, masks, i, c, size, classes[cls], cx, cy, r, colour, rng);
  }
  return { x, y, masks, n: opts.n, sampleShape: [c, size, size], maskShape: [1, size, size], numClasses: classes.length, classNames: [...classes] };
}

export const SPURIOUS_CLASSES = ['circle', 'square'] as const;
export const SPURIOUS_TEXTURES = ['stripes', 'dots'] as const;

export interface SpuriousOptions {
  n: number;
  seed?: number;
  /** Fraction of samples whose background is their class's texture (exact, rounded); default 0.95. */
  correlation?: number;
  /** Image side (default 32). */
  size?: number;
}

export interface SpuriousDataset extends ShapesDataset {
  /** The background texture per sample: 0 = stripes (circle's), 1 = dots (square's). */
  textures: Uint8Array;
  textureNames: string[];
}

/** Stripes: a sinusoid of random period, orientation and phase. */
function stripes(rng: Rng): (px: number, py: number) => number {
  const period = rng.uniform(4, 6);
  const theta = rng.uniform(0, Math.PI);
  const phase = rng.uniform(0, 2 * Math.PI);
  const [ux, uy] = [Math.cos(theta), Math.sin(theta)];
  return (px, py) => 0.5 + 0.5 * Math.sin((2 * Math.PI * (px * ux + py * uy)) / period + phase);
}

/** Dots: a square grid of soft dots of random period and offset. */
function dots(rng: Rng): (px: number, py: number) => number {
  const period = rng.uniform(5, 7);
  const rad = rng.uniform(1.1, 1.6);
  const ox = rng.uniform(0, period), oy = rng.uniform(0, period);
  return (px, py) => {
    const dx = ((px - ox) % period + period) % period - period / 2;
    const dy = ((py - oy) % period + period) % period - period / 2;
    return dx * dx + dy * dy <= rad * rad ? 1 : 0;
  };
}

/**
 * The spurious-background set: class i % 2 (circle, square), a small bright object (radius
 * 2.5..4 px, intensity 0.7..1) at a random position, on stripes or dots (background values in
 * [0.05, 0.5]). Exactly round(correlation * n) samples, chosen at random, have their class's
 * texture.
 */
export function makeSpurious(opts: SpuriousOptions): SpuriousDataset {
  const size = opts.size ?? 32;
  checkN('makeSpurious', opts.n, size);
  const corr = opts.correlation ?? 0.95;
  if (!(corr >= 0 && corr <= 1)) throw new Error(`makeSpurious: correlation must be in [0, 1], got ${corr}`);
  const rng = new Rng(opts.seed ?? 0);
  const n = opts.n, plane = size * size;
  // Which samples get their class's texture: a random subset of exactly round(corr * n).
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const aligned = new Uint8Array(n);
  for (let k = 0; k < Math.round(corr * n); k++) aligned[order[k]] = 1;
  const x = new Float32Array(n * plane), masks = new Float32Array(n * plane), y = new Float32Array(n), textures = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const cls = i % 2;
    y[i] = cls;
    const tex = aligned[i] ? cls : 1 - cls;
    textures[i] = tex;
    const pattern = tex === 0 ? stripes(rng) : dots(rng);
    const amp = rng.uniform(0.3, 0.4);
    for (let py = 0; py < size; py++) {
      for (let px = 0; px < size; px++) x[i * plane + py * size + px] = 0.05 + amp * pattern(px + 0.5, py + 0.5) + rng.uniform(0, 0.05);
    }
    const r = rng.uniform(2.5, 4);
    const cx = rng.uniform(r + 1, size - r - 1), cy = rng.uniform(r + 1, size - r - 1);
    drawShape(x, masks, i, 1, size, SPURIOUS_CLASSES[cls], cx, cy, r, [rng.uniform(0.75, 1)], rng);
  }
  return {
    x, y, masks, textures, n, sampleShape: [1, size, size], maskShape: [1, size, size],
    numClasses: 2, classNames: [...SPURIOUS_CLASSES], textureNames: [...SPURIOUS_TEXTURES],
  };
}

/** The fraction of samples whose texture index equals their class (the spurious correlation). */
export function textureAgreement(d: SpuriousDataset): number {
  let k = 0;
  for (let i = 0; i < d.n; i++) if (d.textures[i] === d.y[i]) k++;
  return k / d.n;
}

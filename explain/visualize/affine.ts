// 2-D affine transforms of image batches, for the transformation robustness of feature
// visualisation (Olah et al. 2017, "Feature Visualization", Distill: random jitter, rotation and
// scale applied before every step, so the optimised image does not rely on pixel-exact patterns;
// Mordvintsev et al. 2015, DeepDream, jitters the same way).
//
// The matrices are built with wgpu-matrix's mat3 helpers (3x3 homogeneous 2-D matrices, column-
// major with a padded column stride of 4). They are applied by bilinear resampling written with
// engine ops: the four neighbour indices and weights of every output pixel are computed on the
// host from the inverse matrix, then one `gather` reads the neighbours and a weighted sum mixes
// them. The result is linear in the image and differentiable through gather's rule (scatterAdd).
//
// Coordinates: pixel centres at integers, x to the right (columns), y down (rows); transforms act
// about the image centre ((W-1)/2, (H-1)/2). A positive rotation angle turns the content clockwise
// on screen (the matrix [cos -sin; sin cos] with y pointing down).
import { mat3d } from 'wgpu-matrix';
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { fmtShape } from '../../engine/shape.ts';
import { checkOptions, optionKeys } from '../options.ts';

/** A 2-D affine map as the 6 numbers of x' = a x + c y + tx, y' = b x + d y + ty. */
export interface Affine2d {
  a: number;
  b: number;
  c: number;
  d: number;
  tx: number;
  ty: number;
}

export interface AffineParams {
  /** Shift in pixels [dx, dy] (default [0, 0]). */
  translate?: readonly [number, number];
  /** Rotation in degrees about the centre (default 0). */
  rotate?: number;
  /** Scale about the centre: one factor or [sx, sy] (default 1). */
  scale?: number | readonly [number, number];
}

const AFFINE_KEYS = optionKeys<AffineParams>()(['translate', 'rotate', 'scale']);
const RESAMPLE_KEYS = optionKeys<{ padding?: Padding }>()(['padding']);
const TRANSFORM_KEYS = optionKeys<TransformOptions>()(['jitter', 'rotate', 'scale']);

/** wgpu-matrix's mat3 (column-major, stride 4) as the six affine numbers. */
function fromMat3(m: ArrayLike<number>): Affine2d {
  return { a: m[0], b: m[1], c: m[4], d: m[5], tx: m[8], ty: m[9] };
}

/**
 * The forward map (source pixel -> destination pixel) of an image of size [H, W]:
 * T = translate(centre + t) * rotate(theta) * scale(s) * translate(-centre), built with wgpu-matrix.
 */
export function affineMatrix(size: readonly [number, number], p: AffineParams = {}): Affine2d {
  checkOptions('affineMatrix', p, AFFINE_KEYS);
  const [H, W] = size;
  const cx = (W - 1) / 2, cy = (H - 1) / 2;
  const [dx, dy] = p.translate ?? [0, 0];
  const s = p.scale ?? 1;
  const [sx, sy] = typeof s === 'number' ? [s, s] : s;
  for (const [k, v] of [['translate', dx], ['translate', dy], ['rotate', p.rotate ?? 0], ['scale', sx], ['scale', sy]] as const) {
    if (!Number.isFinite(v)) throw new Error(`affineMatrix: ${k} must be finite, got ${v}`);
  }
  if (sx === 0 || sy === 0) throw new Error(`affineMatrix: scale must not be 0, got [${sx}, ${sy}]`);
  let m = mat3d.translation([cx + dx, cy + dy]);
  m = mat3d.rotate(m, ((p.rotate ?? 0) * Math.PI) / 180);
  m = mat3d.scale(m, [sx, sy]);
  m = mat3d.translate(m, [-cx, -cy]);
  return fromMat3(m);
}

/** The inverse map (wgpu-matrix's mat3 inverse). */
export function invertAffine(t: Affine2d): Affine2d {
  const m = mat3d.create(t.a, t.b, 0, t.c, t.d, 0, t.tx, t.ty, 1);
  // mat3d.create takes the 9 values column by column.
  const inv = mat3d.inverse(m);
  const r = fromMat3(inv);
  if (![r.a, r.b, r.c, r.d, r.tx, r.ty].every(Number.isFinite)) throw new Error('invertAffine: the matrix is singular');
  return r;
}

export type Padding = 'edge' | 'zeros';

/**
 * Bilinear sampling tables for one [H, W] image under forward map T: for each output pixel the
 * four source neighbours (flat indices into the H*W image) and their weights, rows [4, H*W].
 * 'edge' repeats the border pixels outside the image; 'zeros' reads 0 there (weight 0).
 */
export function samplingTable(size: readonly [number, number], t: Affine2d, padding: Padding = 'edge'): { index: Float64Array; weight: Float64Array } {
  const [H, W] = size;
  const inv = invertAffine(t);
  const HW = H * W;
  const index = new Float64Array(4 * HW), weight = new Float64Array(4 * HW);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const o = y * W + x;
      const sx = inv.a * x + inv.c * y + inv.tx;
      const sy = inv.b * x + inv.d * y + inv.ty;
      const x0 = Math.floor(sx), y0 = Math.floor(sy);
      const fx = sx - x0, fy = sy - y0;
      const corners: [number, number, number][] = [
        [x0, y0, (1 - fx) * (1 - fy)],
        [x0 + 1, y0, fx * (1 - fy)],
        [x0, y0 + 1, (1 - fx) * fy],
        [x0 + 1, y0 + 1, fx * fy],
      ];
      corners.forEach(([cx, cy, w], k) => {
        const inside = cx >= 0 && cx < W && cy >= 0 && cy < H;
        let ix = cx, iy = cy, ww = w;
        if (!inside) {
          ix = Math.min(W - 1, Math.max(0, cx));
          iy = Math.min(H - 1, Math.max(0, cy));
          if (padding === 'zeros') ww = 0;
        }
        index[k * HW + o] = iy * W + ix;
        weight[k * HW + o] = ww;
      });
    }
  }
  return { index, weight };
}

/**
 * Resample a batch x [N, C, H, W] under one forward map per item (or one for all): out(p) =
 * bilinear sample of x at T^-1(p). Differentiable in x (a gather and a weighted sum).
 */
export function affineResample(x: Tensor, transforms: Affine2d | readonly Affine2d[], opts: { padding?: Padding } = {}): Tensor {
  if (!(x instanceof bl.Tensor) || x.rank !== 4) throw new Error(`affineResample: x must be an NCHW Tensor, got ${x instanceof bl.Tensor ? fmtShape(x.shape) : typeof x}`);
  const [N, C, H, W] = x.shape;
  const ts = Array.isArray(transforms) ? (transforms as readonly Affine2d[]) : Array<Affine2d>(N).fill(transforms as Affine2d);
  if (ts.length !== N) throw new Error(`affineResample: ${ts.length} transforms for a batch of ${N}`);
  checkOptions('affineResample', opts, RESAMPLE_KEYS);
  const padding = opts.padding ?? 'edge';
  if (padding !== 'edge' && padding !== 'zeros') throw new Error(`affineResample: padding must be 'edge' or 'zeros', got '${String(padding)}'`);
  const HW = H * W;
  // Absolute indices into the flattened batch: [N, C, 4, HW]; weights [N, 1, 4, HW].
  const idx = new Float64Array(N * C * 4 * HW), wts = new Float64Array(N * 4 * HW);
  ts.forEach((t, n) => {
    const { index, weight } = samplingTable([H, W], t, padding);
    wts.set(weight, n * 4 * HW);
    for (let c = 0; c < C; c++) {
      const base = (n * C + c) * HW, off = (n * C + c) * 4 * HW;
      for (let j = 0; j < 4 * HW; j++) idx[off + j] = base + index[j];
    }
  });
  return bl.tidy(() => {
    const flat = bl.reshape(x, [N * C * HW]);
    const g = bl.gather(flat, bl.tensor(idx, [N, C, 4, HW], x.backend), 0);
    const mixed = bl.sum(bl.mul(g, bl.tensor(wts, [N, 1, 4, HW], x.backend)), 2);
    return bl.reshape(mixed, [N, C, H, W]);
  });
}

/** Random transformation robustness (Olah et al. 2017): what activationMaximization draws per step. */
export interface TransformOptions {
  /** Random shift of up to +-jitter pixels in x and y (integers, as Lucid's jitter). */
  jitter?: number;
  /** Random rotation, uniform in [-rotate, rotate] degrees. */
  rotate?: number;
  /** Random isotropic scale, uniform in [lo, hi]. */
  scale?: readonly [number, number];
}

/** One random forward map from `next()` uniforms in [0, 1); identity when no transform is asked. */
export function randomAffine(size: readonly [number, number], o: TransformOptions, next: () => number): Affine2d {
  checkOptions('randomAffine', o, TRANSFORM_KEYS);
  if (o === undefined) throw new Error('randomAffine: options { jitter, rotate, scale } are required');
  if (o.jitter !== undefined && !(Number.isInteger(o.jitter) && o.jitter >= 0)) throw new Error(`randomAffine: jitter must be a non-negative integer (pixels), got ${String(o.jitter)}`);
  if (o.rotate !== undefined && !(typeof o.rotate === 'number' && Number.isFinite(o.rotate) && o.rotate >= 0)) throw new Error(`randomAffine: rotate must be a finite number >= 0 (degrees), got ${String(o.rotate)}`);
  if (o.scale !== undefined && (!Array.isArray(o.scale) || o.scale.length !== 2 || !o.scale.every((s) => Number.isFinite(s) && s > 0) || o.scale[0] > o.scale[1])) {
    throw new Error(`randomAffine: scale must be [lo, hi] with 0 < lo <= hi, got ${JSON.stringify(o.scale)}`);
  }
  const j = o.jitter ?? 0;
  const dx = j > 0 ? Math.floor(next() * (2 * j + 1)) - j : 0;
  const dy = j > 0 ? Math.floor(next() * (2 * j + 1)) - j : 0;
  const r = o.rotate ? (2 * next() - 1) * o.rotate : 0;
  const s = o.scale ? o.scale[0] + (o.scale[1] - o.scale[0]) * next() : 1;
  return affineMatrix(size, { translate: [dx, dy], rotate: r, scale: s });
}

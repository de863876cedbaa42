// What the explanation metrics share: attributions reduced to one score per feature (a pixel of an
// image: summed over channels; an element of anything else), ground-truth masks in the same
// layout, rankings and the area under a curve. Metrics read attributions back to the host once:
// they are small next to the model evaluations, which run batched on the device.
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { fmtShape } from '../../engine/shape.ts';

/** Attributions as host rows, one per item, one value per feature. */
export interface FeatureScores {
  n: number;
  /** Features per item: H*W for images (channels summed), else every element. */
  features: number;
  /** For images: [H, W]; else null. */
  spatial: [number, number] | null;
  /** Row-major [n, features]. */
  values: Float64Array;
}

/** Something that holds per-item values: a Tensor, or host data with its shape. */
export type ArrayInput = Tensor | { data: ArrayLike<number>; shape: readonly number[] };

async function hostOf(op: string, what: string, a: unknown): Promise<{ data: ArrayLike<number>; shape: readonly number[] }> {
  if (a instanceof bl.Tensor) {
    a.storageFor(op);
    return { data: await a.data(), shape: a.shape };
  }
  if (a && typeof a === 'object' && 'data' in a && 'shape' in a) {
    const h = a as { data: ArrayLike<number>; shape: readonly number[] };
    const size = h.shape.reduce((s, d) => s * d, 1);
    if (!h.data || h.data.length !== size) throw new Error(`${op}: ${what} has ${h.data?.length} values for shape ${fmtShape(h.shape)}`);
    return h;
  }
  throw new Error(`${op}: ${what} must be a Tensor or { data, shape }, got ${a === null ? 'null' : typeof a}`);
}

/**
 * Per-feature scores of attributions for inputs of shape `inputShape` ([N, C, H, W] images or
 * anything [N, ...]). Image attributions may have C channels (summed, signed) or one (a CAM map
 * upsampled to the input). Non-finite attributions are an error naming the item.
 */
export async function featureScores(op: string, attributions: ArrayInput, inputShape: readonly number[]): Promise<FeatureScores> {
  const a = await hostOf(op, 'attributions', attributions);
  const n = inputShape[0];
  if (a.shape[0] !== n) throw new Error(`${op}: attributions ${fmtShape(a.shape)} are for ${a.shape[0]} items, the input ${fmtShape(inputShape)} has ${n}`);
  const image = inputShape.length === 4;
  let features: number, spatial: [number, number] | null = null, values: Float64Array;
  if (image) {
    const [, c, h, w] = inputShape;
    const ac = a.shape[1];
    if (a.shape.length !== 4 || a.shape[2] !== h || a.shape[3] !== w || (ac !== c && ac !== 1)) {
      throw new Error(`${op}: attributions ${fmtShape(a.shape)} do not match the images ${fmtShape(inputShape)} (give [N, ${c}, ${h}, ${w}] or [N, 1, ${h}, ${w}]; upsample layer maps first)`);
    }
    features = h * w;
    spatial = [h, w];
    values = new Float64Array(n * features);
    for (let i = 0; i < n; i++) for (let ch = 0; ch < ac; ch++) for (let j = 0; j < features; j++) values[i * features + j] += a.data[(i * ac + ch) * features + j];
  } else {
    if (a.shape.join() !== inputShape.join()) throw new Error(`${op}: attributions ${fmtShape(a.shape)} must have the input's shape ${fmtShape(inputShape)}`);
    features = inputShape.slice(1).reduce((s, d) => s * d, 1);
    values = Float64Array.from(a.data);
  }
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) throw new Error(`${op}: attribution of item ${Math.floor(i / features)} is not finite (${values[i]} at feature ${i % features})`);
  }
  return { n, features, spatial, values };
}

/** Ground-truth masks as host rows [n, features] of 0/1, for images [N, H, W] or [N, 1, H, W]. */
export async function maskRows(op: string, masks: ArrayInput, s: FeatureScores): Promise<Uint8Array> {
  const m = await hostOf(op, 'masks', masks);
  const size = m.shape.reduce((a, d) => a * d, 1);
  if (m.shape[0] !== s.n || size !== s.n * s.features) {
    throw new Error(`${op}: masks ${fmtShape(m.shape)} must hold one value per feature of each of the ${s.n} items (${s.spatial ? `[${s.n}, ${s.spatial.join(', ')}] or [${s.n}, 1, ${s.spatial.join(', ')}]` : `${s.features} per item`})`);
  }
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = m.data[i] > 0 ? 1 : 0;
  for (let i = 0; i < s.n; i++) {
    let any = 0;
    for (let j = 0; j < s.features; j++) any += out[i * s.features + j];
    if (!any) throw new Error(`${op}: the mask of item ${i} is empty (no ground-truth feature)`);
  }
  return out;
}

/** Row i of a [n, f] host matrix. */
export const row = (v: Float64Array, i: number, f: number) => v.subarray(i * f, (i + 1) * f);

/** Feature indices ordered by decreasing value (most relevant first); ties: lower index first. */
export function orderDescending(v: ArrayLike<number>): Int32Array {
  const idx = Int32Array.from({ length: v.length }, (_, i) => i);
  idx.sort((a, b) => v[b] - v[a] || a - b);
  return idx;
}

/** Trapezoidal area under y over x = 0..1 at equally spaced points. */
export function aucTrapezoid(y: ArrayLike<number>): number {
  if (y.length < 2) throw new Error('aucTrapezoid: needs at least two points');
  let s = 0;
  for (let i = 1; i < y.length; i++) s += (y[i - 1] + y[i]) / 2;
  return s / (y.length - 1);
}

export function mean(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i];
  return s / v.length;
}

/** A positive integer option, or the default. */
export function intOption(op: string, name: string, v: unknown, dflt: number, min = 1): number {
  const x = v === undefined ? dflt : v;
  if (typeof x !== 'number' || !Number.isInteger(x) || x < min) throw new Error(`${op}: option '${name}' must be an integer >= ${min}, got ${String(v)}`);
  return x;
}

export function numberOption(op: string, name: string, v: unknown, dflt: number, check: (x: number) => boolean, what: string): number {
  const x = v === undefined ? dflt : v;
  if (typeof x !== 'number' || !check(x)) throw new Error(`${op}: option '${name}' must be ${what}, got ${String(v)}`);
  return x;
}

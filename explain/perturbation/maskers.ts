// Feature masks: which elements of an item move together when a perturbation method switches a
// "feature" on or off. A mask assigns each element of an item an integer label; elements with
// the same label form one feature (Captum's `feature_mask`). Maskers make masks: a regular grid
// of square cells, SLIC superpixels (slic.ts), one feature per tabular column, or a user's mask.
//
// Captum's convention, kept here: a feature's value (ablation, Shapley, LIME coefficient) is
// written to every element of that feature in the input-shaped result.
import * as bl from '../../engine/index.ts';
import type { Backend, Tensor } from '../../engine/index.ts';
import { fmtShape } from '../../engine/shape.ts';

/** One item's feature partition: `labels[p]` in 0..m-1 for each of the P elements. */
export interface FeatureGroups {
  labels: Int32Array;
  m: number;
  /** The user's label value of each feature, in feature order (ascending). */
  ids: number[];
}

/** A masker makes feature masks from the input itself (host values, row-major, and its shape). */
export interface Masker {
  readonly name: string;
  /** One partition shared by every item (length 1), or one per item (length N). */
  masks(x: ArrayLike<number>, shape: readonly number[]): FeatureGroups[];
}

/**
 * Features for the perturbation explainers: a Masker, or a mask as a Tensor / `{ data, shape }`,
 * shaped like one item (or broadcastable to it, e.g. [1, H, W] for a [C, H, W] image: channels
 * share a feature), or with a leading batch axis (N or 1) for one mask per item.
 */
export type Features = Masker | Tensor | { data: ArrayLike<number>; shape: readonly number[] };

/** Remap arbitrary integer labels to 0..m-1 in ascending order of the label values. */
export function denseGroups(op: string, raw: ArrayLike<number>): FeatureGroups {
  const ids = new Set<number>();
  for (let i = 0; i < raw.length; i++) {
    const v = raw[i];
    if (!Number.isInteger(v)) throw new Error(`${op}: feature mask values must be integers, got ${v} at element ${i}`);
    ids.add(v);
  }
  const sorted = [...ids].sort((a, b) => a - b);
  const index = new Map(sorted.map((v, i) => [v, i]));
  const labels = new Int32Array(raw.length);
  for (let i = 0; i < raw.length; i++) labels[i] = index.get(raw[i])!;
  return { labels, m: sorted.length, ids: sorted };
}

/** numpy broadcasting of `data` (shape `from`) to shape `to` (right-aligned). */
function broadcastHost(op: string, data: ArrayLike<number>, from: readonly number[], to: readonly number[]): Float64Array {
  if (from.length > to.length) throw new Error(`${op}: feature mask shape ${fmtShape(from)} does not broadcast to ${fmtShape(to)}`);
  const f = [...Array(to.length - from.length).fill(1), ...from];
  for (let i = 0; i < to.length; i++) {
    if (f[i] !== 1 && f[i] !== to[i]) throw new Error(`${op}: feature mask shape ${fmtShape(from)} does not broadcast to the item shape ${fmtShape(to)}`);
  }
  const size = to.reduce((a, b) => a * b, 1);
  const out = new Float64Array(size);
  const strides = new Array<number>(to.length);
  let s = 1;
  for (let i = to.length - 1; i >= 0; i--) {
    strides[i] = f[i] === 1 ? 0 : s;
    s *= f[i];
  }
  const idx = new Array<number>(to.length).fill(0);
  for (let o = 0; o < size; o++) {
    let src = 0;
    for (let d = 0; d < to.length; d++) src += idx[d] * strides[d];
    out[o] = data[src];
    for (let d = to.length - 1; d >= 0; d--) {
      if (++idx[d] < to[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

/**
 * The feature partitions for input x: one shared by every item, or one per item.
 * Default (no features given): every element of an item is its own feature (Captum's default).
 */
export async function featureGroupsFor(op: string, features: Features | undefined, x: Tensor): Promise<FeatureGroups[]> {
  const item = x.shape.slice(1);
  const p = item.reduce((a, b) => a * b, 1);
  if (features === undefined) return [{ labels: Int32Array.from({ length: p }, (_, i) => i), m: p, ids: Array.from({ length: p }, (_, i) => i) }];
  if (isMasker(features)) {
    const host = await x.data();
    const g = features.masks(host, x.shape);
    if (!Array.isArray(g) || (g.length !== 1 && g.length !== x.shape[0])) throw new Error(`${op}: masker '${features.name}' made ${Array.isArray(g) ? g.length : typeof g} masks for ${x.shape[0]} items`);
    for (const m of g) if (m.labels.length !== p) throw new Error(`${op}: masker '${features.name}' made a mask of ${m.labels.length} elements for items of ${p}`);
    return g;
  }
  let data: ArrayLike<number>, shape: readonly number[];
  if (features instanceof bl.Tensor) {
    features.storageFor(op);
    data = await features.data();
    shape = features.shape;
  } else if (features && typeof features === 'object' && 'data' in features && 'shape' in features) {
    data = features.data;
    shape = features.shape;
    if (data.length !== shape.reduce((a, b) => a * b, 1)) throw new Error(`${op}: feature mask has ${data.length} values for shape ${fmtShape(shape)}`);
  } else {
    throw new Error(`${op}: option 'features' must be a Masker (grid(), slic(), columns()), a Tensor or { data, shape }; got ${typeof features}`);
  }
  if (shape.length === item.length + 1) {
    // A leading batch axis: one mask per item (or [1, ...] shared).
    const n = shape[0];
    if (n !== 1 && n !== x.shape[0]) throw new Error(`${op}: feature mask ${fmtShape(shape)} has ${n} masks for ${x.shape[0]} items (give 1, ${x.shape[0]}, or a mask shaped like one item ${fmtShape(item)})`);
    const per = shape.slice(1).reduce((a, b) => a * b, 1);
    const out: FeatureGroups[] = [];
    for (let i = 0; i < n; i++) {
      const one = Array.prototype.slice.call(data, i * per, (i + 1) * per) as number[];
      out.push(denseGroups(op, broadcastHost(op, one, shape.slice(1), item)));
    }
    return out;
  }
  return [denseGroups(op, broadcastHost(op, data, shape, item))];
}

function isMasker(f: unknown): f is Masker {
  return typeof f === 'object' && f !== null && typeof (f as Masker).masks === 'function' && typeof (f as Masker).name === 'string';
}

/** Split an item shape into (channels, height, width) for image maskers. */
export function imageDims(op: string, shape: readonly number[]): { c: number; h: number; w: number } {
  const item = shape.slice(1);
  if (item.length === 3) return { c: item[0], h: item[1], w: item[2] };
  if (item.length === 2) return { c: 1, h: item[0], w: item[1] };
  throw new Error(`${op}: needs image inputs [N, C, H, W] or [N, H, W], got ${fmtShape(shape)}`);
}

/**
 * A regular grid of cells of `cell` x `cell` pixels (or [ch, cw]) shared by all channels;
 * cells at the right and bottom edges are cut short when the size does not divide. For rank-1
 * items [F], consecutive blocks of `cell` columns.
 */
export function grid(cell: number | readonly [number, number]): Masker {
  const [ch, cw] = typeof cell === 'number' ? [cell, cell] : cell;
  for (const v of [ch, cw]) if (!Number.isInteger(v) || v < 1) throw new Error(`grid: cell size must be a positive integer, got ${JSON.stringify(cell)}`);
  return {
    name: `grid:${ch === cw ? ch : `${ch}x${cw}`}`,
    masks(_x, shape) {
      if (shape.length === 2) {
        const f = shape[1];
        return [denseGroups('grid', Array.from({ length: f }, (_, i) => Math.floor(i / cw)))];
      }
      const { c, h, w } = imageDims('grid', shape);
      const cols = Math.ceil(w / cw);
      const labels = new Float64Array(c * h * w);
      for (let k = 0; k < c; k++) for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) labels[(k * h + i) * w + j] = Math.floor(i / ch) * cols + Math.floor(j / cw);
      return [denseGroups('grid', labels)];
    },
  };
}

/** Tabular data [N, F]: each column its own feature (use with a `background` data set). */
export function columns(): Masker {
  return {
    name: 'columns',
    masks(_x, shape) {
      if (shape.length !== 2) throw new Error(`columns: needs tabular inputs [N, F], got ${fmtShape(shape)}`);
      return [denseGroups('columns', Array.from({ length: shape[1] }, (_, i) => i))];
    },
  };
}

// ---- perturbations over a partition: coalitions of features ----

/**
 * Coalitions z (rows of `z`, C x M, 1 = the feature keeps the input's values) as keep masks over
 * the elements: keep[c, p] = z[c, labels[p]], a gather on the device.
 */
export function coalitionPerturbations(groups: FeatureGroups, z: Float32Array, count: number, backend: Backend) {
  const m = groups.m;
  if (z.length !== count * m) throw new Error(`internal: ${z.length} coalition entries for ${count} x ${m}`);
  const labels = bl.tensor(groups.labels, [groups.labels.length], backend);
  return {
    count,
    keep(start: number, n: number): Tensor {
      const zc = bl.tensor(z.subarray(start * m, (start + n) * m), [n, m], backend);
      return bl.gather(zc, labels, 1);
    },
    dispose() {
      labels.dispose();
    },
  };
}

/** Per-feature values [M] written to each element of the feature: [P]. */
export function toElements(groups: FeatureGroups, values: ArrayLike<number>, out: Float64Array, offset: number): void {
  const l = groups.labels;
  for (let p = 0; p < l.length; p++) out[offset + p] = values[l[p]];
}

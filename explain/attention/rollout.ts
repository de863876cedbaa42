// Raw attention maps and attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in
// Transformers"), computed on the device from the attention probabilities of one forward pass.
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { type Model, forwardOf } from '../common.ts';
import { checkOptions, optionKeys } from '../options.ts';
import { type AttentionLayerOptions, captureAttention, checkImages, classRowMap, patchGrid } from './capture.ts';

export interface AttentionMapsOptions extends AttentionLayerOptions {
  /** Which heads to return (indices; default all). */
  heads?: readonly number[];
  /** Also return the full attention matrices [N, heads, T, T] (default false). */
  full?: boolean;
}

const MAPS_KEYS = optionKeys<AttentionMapsOptions>()(['layers', 'prefixTokens', 'grid', 'heads', 'full']);

export interface AttentionMaps {
  /** The attention layers, first block first. */
  layers: string[];
  /** Per layer: the class token's attention to each patch, [N, heads, gh, gw] (the selected heads). */
  maps: Tensor[];
  /** Per layer: [N, heads, T, T] (query row, key column), with `full`. */
  matrices?: Tensor[];
  grid: [number, number];
  /** The heads returned (indices into each layer's heads). */
  heads: number[];
}

/**
 * The raw attention of each layer and head: the class token's row of the attention
 * probabilities to the patch tokens, laid out on the patch grid. upsampleToImage resizes a map
 * to the image. The caller owns (and disposes) every returned tensor.
 */
export async function attentionMaps(model: Model, input: Tensor, opts: AttentionMapsOptions = {}): Promise<AttentionMaps> {
  const op = 'attentionMaps';
  checkOptions(op, opts, MAPS_KEYS);
  const x = checkImages(op, input);
  const f = forwardOf(model);
  const r = bl.tidy(() => {
    const cap = captureAttention(op, model, f, x, opts, null);
    try {
      const [n, H, T] = cap.attention[0].shape;
      if (opts.heads !== undefined && (!Array.isArray(opts.heads) || opts.heads.length === 0)) throw new Error(`${op}: heads must be a non-empty array of head indices, got ${JSON.stringify(opts.heads)}`);
      const heads = opts.heads === undefined ? [...Array(H).keys()] : [...opts.heads];
      for (const h of heads) if (!Number.isInteger(h) || h < 0 || h >= H) throw new Error(`${op}: head ${h} is out of range: the layers have ${H} heads (0 to ${H - 1})`);
      const { grid, prefix } = patchGrid(op, model, x, T, opts);
      const maps: Tensor[] = [], matrices: Tensor[] = [];
      cap.attention.forEach((A, i) => {
        if (A.shape[1] !== H) throw new Error(`${op}: layer '${cap.layers[i]}' has ${A.shape[1]} heads, '${cap.layers[0]}' ${H}`);
        const sel = heads.length === H && heads.every((h, k) => h === k) ? bl.mul(A, 1) : bl.concat(heads.map((h) => bl.slice(A, [0, h], [n, 1])), 1);
        const k = heads.length;
        maps.push(bl.reshape(bl.slice(sel, [0, 0, 0, prefix], [n, k, 1, T - prefix]), [n, k, grid[0], grid[1]]));
        if (opts.full) matrices.push(sel);
      });
      return { layers: cap.layers, maps, matrices: opts.full ? matrices : undefined, grid, heads };
    } finally {
      cap.release();
    }
  });
  await x.backend.sync();
  return r;
}

export type HeadFusion = 'mean' | 'max' | 'min';

export interface AttentionRolloutOptions extends AttentionLayerOptions {
  /** How each layer's heads are fused (default 'mean'). */
  headFusion?: HeadFusion;
  /**
   * The fraction of each fused matrix's entries (all T*T of them) set to zero, the lowest first,
   * except the class token's attention to itself (jacobgil/vit-explain's discard; default 0).
   */
  discardRatio?: number;
  /** The first layer multiplied in (default 0: all of them). */
  startLayer?: number;
  /** Add the identity for the residual connection, 0.5 A + 0.5 I (default true, the paper's). */
  residual?: boolean;
  /** Resize the map to the input's size (default true); false: the patch grid [N, 1, gh, gw]. */
  upsample?: boolean;
}

const ROLLOUT_KEYS = optionKeys<AttentionRolloutOptions>()(['layers', 'prefixTokens', 'grid', 'headFusion', 'discardRatio', 'startLayer', 'residual', 'upsample']);

/**
 * Attention rollout (Abnar & Zuidema 2020): per layer, fuse the heads, discard the lowest
 * entries, add the residual (A_hat = 0.5 A + 0.5 I), normalise each row to sum 1, and multiply
 * the layers: R = A_hat_L ... A_hat_start. The result is R's class-token row over the patch
 * tokens, [N, 1, H, W] (bilinearly upsampled) or [N, 1, gh, gw] with upsample: false; not
 * rescaled (heatmapPng and normalizedMaps rescale for display).
 *
 * Where this differs from jacobgil/vit-explain's rollout (the implementation most people use):
 * rows are divided by their own sums (vit-explain's `a / a.sum(dim=-1)` broadcasts the row sums
 * along the wrong axis), every item of a batch gets its discard (vit-explain discards in item 0
 * only), and the map is not divided by its maximum.
 */
export async function attentionRollout(model: Model, input: Tensor, opts: AttentionRolloutOptions = {}): Promise<Tensor> {
  const op = 'attentionRollout';
  checkOptions(op, opts, ROLLOUT_KEYS);
  const x = checkImages(op, input);
  const fusion = opts.headFusion ?? 'mean';
  if (fusion !== 'mean' && fusion !== 'max' && fusion !== 'min') throw new Error(`${op}: headFusion must be 'mean', 'max' or 'min', got ${JSON.stringify(opts.headFusion)}`);
  const discard = opts.discardRatio ?? 0;
  if (typeof discard !== 'number' || !(discard >= 0 && discard < 1)) throw new Error(`${op}: discardRatio must be a number in [0, 1), got ${String(opts.discardRatio)}`);
  const residual = opts.residual ?? true;
  if (typeof residual !== 'boolean') throw new Error(`${op}: residual must be true or false, got ${String(opts.residual)}`);
  const f = forwardOf(model);
  const r = bl.tidy(() => {
    const cap = captureAttention(op, model, f, x, opts, null);
    try {
      const start = startLayerOf(op, opts.startLayer, cap.layers);
      const [n, , T] = cap.attention[0].shape;
      const { grid, prefix } = patchGrid(op, model, x, T, opts);
      const eye = bl.broadcastTo(bl.reshape(identity(T, x), [1, T, T]), [n, T, T]);
      let R: Tensor = eye;
      for (let l = start; l < cap.layers.length; l++) {
        const A = cap.attention[l];
        let a = fusion === 'mean' ? bl.mean(A, 1) : fusion === 'max' ? bl.max(A, 1) : bl.min(A, 1);
        const k = Math.floor(T * T * discard);
        if (k > 0) a = discardLowest(a, k);
        if (residual) a = bl.mul(bl.add(a, eye), 0.5);
        const rows = bl.sum(a, 2, { keepDims: true });
        // A row emptied by the discard (possible only without the residual) stays empty.
        a = bl.div(a, bl.where(bl.equal(rows, 0), 1, rows));
        R = bl.matmul(a, R);
      }
      const map = classRowMap(R, grid, prefix);
      return opts.upsample ?? true ? bl.resizeBilinear(map, [x.shape[2], x.shape[3]]) : map;
    } finally {
      cap.release();
    }
  });
  await r.backend.sync();
  return r;
}

export function startLayerOf(op: string, v: unknown, layers: string[]): number {
  const s = v ?? 0;
  if (typeof s !== 'number' || !Number.isInteger(s) || s < 0 || s >= layers.length) {
    throw new Error(`${op}: startLayer must be an integer from 0 to ${layers.length - 1} (the model has ${layers.length} attention layers: ${layers.join(', ')}), got ${String(v)}`);
  }
  return s;
}

/** The T x T identity on x's backend. */
export function identity(T: number, like: Tensor): Tensor {
  const d = new Float32Array(T * T);
  for (let i = 0; i < T; i++) d[i * T + i] = 1;
  return bl.tensor(d, [T, T], like.backend);
}

/**
 * Zero the k lowest of each item's T*T entries, except entry [0, 0], as vit-explain does
 * (`flat.topk(k, largest=False)`, then `indices[indices != 0]` zeroed). The k-th order
 * statistic is found on the device by bisection on a threshold t with count(a < t) <= k:
 * 64 halvings of [min, max + 1] reach adjacent floating-point numbers, where t is the
 * (k+1)-th smallest value and exactly the k lowest lie below it (for distinct values; among
 * tied values at the cut, all or none are dropped).
 */
function discardLowest(a: Tensor, k: number): Tensor {
  const [n, T] = a.shape;
  const flat = bl.reshape(a, [n, T * T]);
  let lo = bl.min(flat, 1, { keepDims: true });
  let hi = bl.add(bl.max(flat, 1, { keepDims: true }), 1);
  for (let i = 0; i < 64; i++) {
    const [l2, h2] = bl.tidy(() => {
      const mid = bl.mul(bl.add(lo, hi), 0.5);
      const below = bl.sum(bl.less(flat, mid), 1, { keepDims: true });
      const ok = bl.lessEqual(below, k);
      return [bl.where(ok, mid, lo), bl.where(ok, hi, mid)];
    });
    lo.dispose();
    hi.dispose();
    lo = l2;
    hi = h2;
    // Emit each halving: a lazily fused chain would grow by one step per halving (a new
    // pipeline each time on WebGPU); flushed, every halving is the same kernel.
    a.backend.flush();
  }
  const notFirst = bl.notEqual(bl.arange(0, T * T, 1, a.backend), 0);
  const drop = bl.mul(bl.less(flat, lo), notFirst);
  return bl.reshape(bl.where(bl.greater(drop, 0), 0, flat), [n, T, T]);
}

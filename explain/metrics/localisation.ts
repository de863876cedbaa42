// Localisation: does the attribution fall on the ground-truth evidence (an object mask)? For the
// synthetic shapes and spurious-background sets, whose masks say where the object is. Per item.
import { type ArrayInput, featureScores, intOption, maskRows, numberOption, orderDescending, row } from './common.ts';
import { checkOptions, optionKeys } from '../options.ts';

export interface PointingGameOptions {
  /** Pixels of slack around the mask (default 0; the paper uses 15 at 224 px). */
  tolerance?: number;
}
export interface TopKIntersectionOptions {
  /** How many top-ranked features (default 10% of them). */
  k?: number;
}
const POINTING_KEYS = optionKeys<PointingGameOptions>()(['tolerance']);
const TOPK_KEYS = optionKeys<TopKIntersectionOptions>()(['k']);

/**
 * The pointing game (Zhang et al. 2018, "Top-down neural attention by excitation backprop"): 1 if
 * the feature with the largest attribution lies in the mask (or within `tolerance` pixels of it,
 * the paper uses 15 at 224 px), else 0. Ties at the maximum: the first in row-major order.
 */
export async function pointingGame(attributions: ArrayInput, inputShape: readonly number[], masks: ArrayInput, opts: PointingGameOptions = {}): Promise<Float64Array> {
  const op = 'pointingGame';
  checkOptions(op, opts, POINTING_KEYS);
  const s = await featureScores(op, attributions, inputShape);
  const m = await maskRows(op, masks, s);
  const tol = numberOption(op, 'tolerance', opts.tolerance, 0, (v) => v >= 0 && Number.isFinite(v), 'a finite non-negative number of pixels');
  if (tol > 0 && !s.spatial) throw new Error(`${op}: option 'tolerance' applies to images only`);
  const out = new Float64Array(s.n);
  for (let i = 0; i < s.n; i++) {
    const a = row(s.values, i, s.features);
    let best = 0;
    for (let j = 1; j < a.length; j++) if (a[j] > a[best]) best = j;
    const mi = m.subarray(i * s.features, (i + 1) * s.features);
    if (mi[best]) {
      out[i] = 1;
      continue;
    }
    if (tol > 0) {
      const [h, w] = s.spatial!;
      const by = Math.floor(best / w), bx = best % w;
      const r = Math.ceil(tol);
      search: for (let y = Math.max(0, by - r); y <= Math.min(h - 1, by + r); y++) {
        for (let x = Math.max(0, bx - r); x <= Math.min(w - 1, bx + r); x++) {
          if (mi[y * w + x] && (y - by) ** 2 + (x - bx) ** 2 <= tol * tol) {
            out[i] = 1;
            break search;
          }
        }
      }
    }
  }
  return out;
}

/**
 * Relevance mass accuracy (Arras et al. 2022, "CLEVR-XAI"): the share of the positive relevance
 * that falls inside the mask, sum_{mask} a+ / sum a+. 0 when no feature is positive.
 */
export async function relevanceMass(attributions: ArrayInput, inputShape: readonly number[], masks: ArrayInput): Promise<Float64Array> {
  const op = 'relevanceMass';
  const s = await featureScores(op, attributions, inputShape);
  const m = await maskRows(op, masks, s);
  const out = new Float64Array(s.n);
  for (let i = 0; i < s.n; i++) {
    let inside = 0, total = 0;
    for (let j = 0; j < s.features; j++) {
      const v = Math.max(0, s.values[i * s.features + j]);
      total += v;
      if (m[i * s.features + j]) inside += v;
    }
    out[i] = total > 0 ? inside / total : 0;
  }
  return out;
}

/**
 * Relevance rank accuracy (Arras et al. 2022): with K the mask's size, the fraction of the K
 * highest-ranked features that lie in the mask.
 */
export async function relevanceRank(attributions: ArrayInput, inputShape: readonly number[], masks: ArrayInput): Promise<Float64Array> {
  const op = 'relevanceRank';
  const s = await featureScores(op, attributions, inputShape);
  const m = await maskRows(op, masks, s);
  const out = new Float64Array(s.n);
  for (let i = 0; i < s.n; i++) {
    const mi = m.subarray(i * s.features, (i + 1) * s.features);
    const k = mi.reduce((a, v) => a + v, 0);
    const order = orderDescending(row(s.values, i, s.features));
    let hits = 0;
    for (let r = 0; r < k; r++) hits += mi[order[r]];
    out[i] = hits / k;
  }
  return out;
}

/**
 * Top-k intersection (Theiner et al. 2022, "Interpretable semantic photo geolocation"): the
 * fraction of the k highest-ranked features that lie in the mask; k defaults to 10% of the features.
 */
export async function topKIntersection(attributions: ArrayInput, inputShape: readonly number[], masks: ArrayInput, opts: TopKIntersectionOptions = {}): Promise<Float64Array> {
  const op = 'topKIntersection';
  checkOptions(op, opts, TOPK_KEYS);
  const s = await featureScores(op, attributions, inputShape);
  const m = await maskRows(op, masks, s);
  const k = intOption(op, 'k', opts.k, Math.max(1, Math.round(0.1 * s.features)));
  if (k > s.features) throw new Error(`${op}: option 'k' (${k}) exceeds the ${s.features} features per item`);
  const out = new Float64Array(s.n);
  for (let i = 0; i < s.n; i++) {
    const order = orderDescending(row(s.values, i, s.features));
    let hits = 0;
    for (let r = 0; r < k; r++) hits += m[i * s.features + order[r]];
    out[i] = hits / k;
  }
  return out;
}

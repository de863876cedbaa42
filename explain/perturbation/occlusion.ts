// Occlusion (Zeiler & Fergus 2014) and prediction difference analysis (Zintgraf et al. 2017):
// slide a window over the input, replace what it covers, watch the score.
//
// Convention (Captum's, with one difference): window shapes and strides are given per item axis
// (channels included); the attribution of an element is the mean, over the windows that cover it,
// of f(x) - f(x with the window replaced). Windows start at 0, stride, 2*stride, ... and here stay
// wholly inside the item, so elements past the last full window (when the stride does not divide
// the size) get 0; Captum instead adds a last, cropped window so every element is covered.
import * as bl from '../../engine/index.ts';
import type { Backend, Tensor } from '../../engine/index.ts';
import { fmtShape } from '../../engine/shape.ts';
import { hostRandom, checkFinite } from '../common.ts';
import { checkPerturbInput, PerturbationRunner, type EngineOptions, type PerturbationModel, type Perturbations } from './engine.ts';
import { checkOptions, optionKeys } from '../options.ts';

export interface OcclusionOptions extends EngineOptions {
  /**
   * Window shape over one item's axes, or a number: for images [C, H, W] a w x w window over all
   * channels; for [H, W] or [F] items w per axis. Default: 4 (capped at each axis's size).
   */
  window?: number | readonly number[];
  /** Steps between windows, per axis or one number (default 1; the channel axis is covered whole). */
  stride?: number | readonly number[];
  /** What the window is filled with: a number (default 0) or a tensor like x or one item. */
  baseline?: number | Tensor;
}

/** Per-axis window and stride for an item shape. */
export function windowSpec(op: string, item: readonly number[], window: number | readonly number[] | undefined, stride: number | readonly number[] | undefined): { win: number[]; str: number[] } {
  const expand = (v: number | readonly number[], name: string, dflt: (d: number, i: number) => number): number[] => {
    if (typeof v === 'number') {
      if (!Number.isInteger(v) || v < 1) throw new Error(`${op}: option '${name}' must be a positive integer, got ${v}`);
      return item.map((d, i) => (item.length === 3 && i === 0 ? dflt(d, i) : Math.min(v, d)));
    }
    if (!Array.isArray(v) || v.length !== item.length || v.some((e) => !Number.isInteger(e) || e < 1)) {
      throw new Error(`${op}: option '${name}' must be a positive integer or one per item axis (${item.length} for items ${fmtShape(item)}), got ${JSON.stringify(v)}`);
    }
    return [...v];
  };
  const win = expand(window ?? 4, 'window', (d) => d);
  win.forEach((w, i) => {
    if (w > item[i]) throw new Error(`${op}: window ${fmtShape(win)} is larger than the item ${fmtShape(item)} on axis ${i + 1}`);
  });
  const str = expand(stride ?? 1, 'stride', () => 1);
  return { win, str };
}

/** Every window position (start per axis), row-major over the positions. */
export function windowStarts(item: readonly number[], win: readonly number[], str: readonly number[]): number[][] {
  const counts = item.map((d, i) => Math.floor((d - win[i]) / str[i]) + 1);
  const total = counts.reduce((a, b) => a * b, 1);
  const out: number[][] = [];
  const idx = new Array<number>(item.length).fill(0);
  for (let c = 0; c < total; c++) {
    out.push(idx.map((k, i) => k * str[i]));
    for (let d = item.length - 1; d >= 0; d--) {
      if (++idx[d] < counts[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

/** Windows as perturbations; `indicator(start, n)` is 1 inside the window ([n, P], on the device). */
export function windowPerturbations(item: readonly number[], win: readonly number[], starts: readonly number[][], backend: Backend): Perturbations & { indicator(start: number, n: number): Tensor; dispose(): void } {
  const p = item.reduce((a, b) => a * b, 1);
  const rank = item.length;
  // The coordinate of each element along each axis, uploaded once: [1, P] per axis.
  const coords: Tensor[] = [];
  for (let d = 0; d < rank; d++) {
    const inner = item.slice(d + 1).reduce((a, b) => a * b, 1);
    const c = new Float32Array(p);
    for (let e = 0; e < p; e++) c[e] = Math.floor(e / inner) % item[d];
    coords.push(bl.tensor(c, [1, p], backend));
  }
  const indicator = (start: number, n: number) =>
    bl.tidy(() => {
      let ind: Tensor | null = null;
      for (let d = 0; d < rank; d++) {
        if (win[d] === item[d]) continue; // covers the whole axis
        const lo = bl.tensor(starts.slice(start, start + n).map((s) => s[d]), [n, 1], backend);
        const inside = bl.mul(bl.greaterEqual(coords[d], lo), bl.less(coords[d], bl.add(lo, win[d])));
        ind = ind ? bl.mul(ind, inside) : inside;
      }
      return ind ?? bl.ones([n, p], backend);
    });
  return {
    count: starts.length,
    indicator,
    keep: (start, n) => bl.tidy(() => bl.sub(1, indicator(start, n))),
    dispose: () => coords.forEach((t) => t.dispose()),
  };
}

/** How many windows cover each element (separable: a product of per-axis counts). */
export function coverCounts(item: readonly number[], win: readonly number[], str: readonly number[]): Float64Array {
  const per = item.map((d, i) => {
    const c = new Float64Array(d);
    const positions = Math.floor((d - win[i]) / str[i]) + 1;
    for (let k = 0; k < positions; k++) for (let j = k * str[i]; j < k * str[i] + win[i]; j++) c[j]++;
    return c;
  });
  const p = item.reduce((a, b) => a * b, 1);
  const out = new Float64Array(p);
  for (let e = 0; e < p; e++) {
    let rem = e, v = 1;
    for (let d = item.length - 1; d >= 0; d--) {
      v *= per[d][rem % item[d]];
      rem = Math.floor(rem / item[d]);
    }
    out[e] = v;
  }
  return out;
}

const OCCLUSION_KEYS = optionKeys<OcclusionOptions>()(['target', 'batchSize', 'memoryBudget', 'onProgress', 'window', 'stride', 'baseline']);
const PREDICTIONDIFFERENCE_KEYS = optionKeys<PredictionDifferenceOptions>()(['target', 'batchSize', 'memoryBudget', 'onProgress', 'window', 'stride', 'background', 'samples', 'seed', 'trainingSetSize', 'outputs']);

export async function occlusion(model: PerturbationModel, input: Tensor, opts: OcclusionOptions = {}): Promise<Tensor> {
  const op = 'occlusion';
  checkOptions(op, opts, OCCLUSION_KEYS);
  const x = checkPerturbInput(op, input);
  await checkFinite(op, x);
  const item = x.shape.slice(1), n = x.shape[0];
  const { win, str } = windowSpec(op, item, opts.window, opts.stride);
  const starts = windowStarts(item, win, str);
  const runner = await PerturbationRunner.create(op, model, x, { baseline: opts.baseline }, opts);
  const pert = windowPerturbations(item, win, starts, x.backend);
  try {
    runner.plan(n, starts.length);
    // acc[n, p] = sum over windows covering p of f(occluded): v @ indicator, on the device.
    const fx = await runner.scoresAt(0, n);
    let acc: Tensor;
    try {
      acc = await runner.evaluate(0, n, pert, { columns: runner.p, rows: (s, k) => pert.indicator(s, k) });
    } catch (e) {
      fx.dispose();
      throw e;
    }
    const cnt = coverCounts(item, win, str);
    const inv = Float64Array.from(cnt, (c) => (c > 0 ? 1 / c : 0));
    const has = Float64Array.from(cnt, (c) => (c > 0 ? 1 : 0));
    const r = bl.tidy(() => {
      // mean over covering windows of (f(x) - f(occluded)) = (f(x) * cnt - acc) / cnt.
      const a = bl.sub(bl.mul(bl.reshape(fx, [n, 1]), bl.tensor(has, [1, runner.p], x.backend)), bl.mul(acc, bl.tensor(inv, [1, runner.p], x.backend)));
      return bl.reshape(a, x.shape);
    });
    acc.dispose();
    fx.dispose();
    return r;
  } finally {
    pert.dispose();
    runner.dispose();
  }
}

export interface PredictionDifferenceOptions extends EngineOptions {
  /** Window (as occlusion; default 4) and stride (default 1). */
  window?: number | readonly number[];
  stride?: number | readonly number[];
  /** Rows [B, ...item] the window's values are sampled from (marginal sampling). Required. */
  background: Tensor;
  /** How many background rows to marginalise over (drawn without replacement; default min(B, 10)). */
  samples?: number;
  seed?: number;
  /**
   * Laplace correction of probabilities (Zintgraf et al., eq. 4): p -> (p N + 1) / (N + K) with N
   * the size of the training set and K the number of classes. Default N: no correction beyond
   * clamping to [1e-7, 1 - 1e-7].
   */
  trainingSetSize?: number;
  /** The model outputs logits (default; softmax is applied) or probabilities already. */
  outputs?: 'logits' | 'probabilities';
}

/**
 * Prediction difference analysis (Zintgraf, Cohen, Adel & Welling 2017, "Visualizing deep neural
 * network decisions"), with marginal sampling (their section 3.1 baseline, after Robnik-Sikonja &
 * Kononenko 2008): for each window, p(c | x without the window) = the mean over background rows
 * of p(c | x with the window taken from that row); the window's weight of evidence
 * WE = log2 odds p(c | x) - log2 odds p(c | x without the window), averaged over the windows
 * covering each element. Positive: evidence for the class. (Their conditional sampling, a
 * Gaussian conditioned on a surrounding frame, is not implemented.)
 */
export async function predictionDifference(model: PerturbationModel, input: Tensor, opts: PredictionDifferenceOptions): Promise<Tensor> {
  const op = 'predictionDifference';
  checkOptions(op, opts, PREDICTIONDIFFERENCE_KEYS);
  const x = checkPerturbInput(op, input);
  await checkFinite(op, x);
  const item = x.shape.slice(1), n = x.shape[0];
  const bg = opts?.background;
  if (!(bg instanceof bl.Tensor)) throw new Error(`${op}: option 'background' (rows [B, ${item.join(', ')}] to sample windows from) is required`);
  if (bg.rank !== x.rank || bg.shape.slice(1).join() !== item.join()) throw new Error(`${op}: option 'background' must have shape [B, ${item.join(', ')}], got ${fmtShape(bg.shape)}`);
  const B = bg.shape[0];
  const samples = opts.samples ?? Math.min(B, 10);
  if (!Number.isInteger(samples) || samples < 1 || samples > B) throw new Error(`${op}: option 'samples' must be an integer in [1, ${B}] (the background's rows), got ${String(opts.samples)}`);
  const rng = hostRandom(opts.seed ?? 0);
  const rows = Array.from({ length: B }, (_, i) => i);
  for (let i = B - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [rows[i], rows[j]] = [rows[j], rows[i]];
  }
  const pick = bl.tidy(() => bl.gather(bg, bl.tensor(rows.slice(0, samples).sort((a, b) => a - b), [samples], x.backend), 0));
  const { win, str } = windowSpec(op, item, opts.window, opts.stride);
  const starts = windowStarts(item, win, str);
  let runner: PerturbationRunner;
  try {
    runner = await PerturbationRunner.create(op, model, x, { background: pick }, opts);
  } catch (e) {
    pick.dispose();
    throw e;
  }
  const probs = (opts.outputs ?? 'logits') === 'logits';
  runner.outputTransform = (out) => (probs ? bl.softmax(bl.reshape(out, [out.shape[0], -1]), 1) : out);
  const pert = windowPerturbations(item, win, starts, x.backend);
  try {
    runner.plan(n, starts.length);
    const v = await runner.evaluate(0, n, pert); // [n, C] marginal probabilities
    const px = await runner.scoresAt(0, n);
    const fx = await runner.forwardRaw(x);
    const classes = fx.rank === 2 ? fx.shape[1] : fx.size / n;
    fx.dispose();
    const N = opts.trainingSetSize;
    if (N !== undefined && !(Number.isInteger(N) && N > 0)) throw new Error(`${op}: option 'trainingSetSize' must be a positive integer, got ${N}`);
    const logOdds = (p: Tensor) =>
      bl.tidy(() => {
        let q = N ? bl.div(bl.add(bl.mul(p, N), 1), N + classes) : p;
        q = bl.minimum(bl.maximum(q, 1e-7), 1 - 1e-7);
        return bl.div(bl.log(bl.div(q, bl.sub(1, q))), Math.LN2);
      });
    const we = bl.tidy(() => bl.sub(bl.reshape(logOdds(px), [n, 1]), logOdds(v))); // [n, C]
    v.dispose();
    px.dispose();
    // Spread each window's evidence over the elements it covers, chunk by chunk on the device.
    let acc: Tensor | null = null;
    const chunk = Math.max(1, Math.floor(runner.rowsPerCall));
    for (let c0 = 0; c0 < starts.length; c0 += chunk) {
      const k = Math.min(chunk, starts.length - c0);
      const next: Tensor = bl.tidy(() => {
        const part = bl.matmul(bl.slice(we, [0, c0], [n, k]), pert.indicator(c0, k));
        return acc ? bl.add(acc, part) : part;
      });
      acc?.dispose();
      acc = next;
    }
    we.dispose();
    const cnt = coverCounts(item, win, str);
    const inv = Float64Array.from(cnt, (c) => (c > 0 ? 1 / c : 0));
    const r = bl.tidy(() => bl.reshape(bl.mul(acc!, bl.tensor(inv, [1, runner.p], x.backend)), x.shape));
    acc!.dispose();
    return r;
  } finally {
    pert.dispose();
    runner.dispose();
    pick.dispose();
  }
}

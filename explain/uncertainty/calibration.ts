// Calibration of a classifier's confidence: reliability bins, expected and maximum calibration
// error, temperature scaling and a reliability diagram. Following Guo, Pleiss, Sun & Weinberger
// 2017, "On calibration of modern neural networks" (ICML): confidence is the top-class
// probability, M equal-width bins B_m = ((m-1)/M, m/M] (a confidence of exactly 0 goes to the
// first bin), ECE = sum_m |B_m|/n |acc(B_m) - conf(B_m)|, MCE = max over non-empty bins of
// |acc - conf|. Temperature scaling divides the logits by one scalar T > 0 fitted to minimise the
// negative log-likelihood on a validation split; it leaves the argmax (accuracy) unchanged.
// Everything here runs on the host in float64 (N x C numbers, read back once).
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { checkLabels, hostMatrix, hostValues } from './util.ts';
import { checkOptions, optionKeys } from '../options.ts';

export interface ReliabilityBin {
  /** The bin's confidence interval (lo, hi]. */
  lo: number;
  hi: number;
  /** Mean confidence of the bin's predictions (null for an empty bin). */
  confidence: number | null;
  /** Fraction of the bin's predictions that are correct (null for an empty bin). */
  accuracy: number | null;
  count: number;
}

export interface ReliabilityResult {
  /** Expected calibration error (Guo et al. 2017), in [0, 1]. */
  ece: number;
  /** Maximum calibration error over the non-empty bins, in [0, 1]. */
  mce: number;
  /** Top-1 accuracy over all predictions. */
  accuracy: number;
  /** Mean top-1 confidence over all predictions. */
  confidence: number;
  n: number;
  bins: ReliabilityBin[];
}

export interface ReliabilityOptions {
  /** Number of equal-width confidence bins (default 15, as Guo et al.). */
  bins?: number;
}

const RELIABILITY_KEYS = optionKeys<ReliabilityOptions>()(['bins']);
const TEMPERATURE_KEYS = optionKeys<FitTemperatureOptions>()(['range']);
const DIAGRAM_KEYS = optionKeys<ReliabilityDiagramOptions>()(['title', 'width', 'height']);

/**
 * Reliability bins and ECE / MCE of predicted class probabilities `probs` [N, C] (a Tensor, or a
 * flat row-major array of N x C values) against integer labels [N]. Rows must be probability
 * vectors (non-negative, summing to 1 within 1e-3): pass softmax outputs, not logits.
 */
export async function reliabilityBins(probs: Tensor | ArrayLike<number>, labels: Tensor | ArrayLike<number>, opts: ReliabilityOptions = {}): Promise<ReliabilityResult> {
  const op = 'reliabilityBins';
  checkOptions(op, opts, RELIABILITY_KEYS);
  const M = opts.bins ?? 15;
  if (!Number.isInteger(M) || M < 1) throw new Error(`${op}: bins must be a positive integer, got ${String(opts.bins)}`);
  const y = await hostValues(op, 'labels', labels);
  const { data, n, c } = await hostMatrix(op, 'probs', probs, y.length);
  const lab = checkLabels(op, y, c);
  const conf = new Float64Array(n), correct = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0, best = 0;
    for (let j = 0; j < c; j++) {
      const v = data[i * c + j];
      if (!Number.isFinite(v) || v < 0) throw new Error(`${op}: probs[${i}][${j}] is ${v}; probabilities must be finite and non-negative`);
      s += v;
      if (v > data[i * c + best]) best = j;
    }
    if (Math.abs(s - 1) > 1e-3) throw new Error(`${op}: row ${i} of probs sums to ${s}, not 1; pass softmax probabilities, not logits`);
    conf[i] = data[i * c + best];
    correct[i] = best === lab[i] ? 1 : 0;
  }
  return binConfidences(conf, correct, M);
}

/** Reliability bins of given top-1 confidences and correctness flags (the core of reliabilityBins). */
export function binConfidences(conf: ArrayLike<number>, correct: ArrayLike<number>, bins = 15): ReliabilityResult {
  const n = conf.length;
  if (n < 1) throw new Error('reliabilityBins: no predictions');
  const sumC = new Float64Array(bins), sumA = new Float64Array(bins), cnt = new Float64Array(bins);
  let totA = 0, totC = 0;
  for (let i = 0; i < n; i++) {
    const b = Math.min(bins - 1, Math.max(0, Math.ceil(conf[i] * bins) - 1));
    sumC[b] += conf[i];
    sumA[b] += correct[i];
    cnt[b]++;
    totA += correct[i];
    totC += conf[i];
  }
  let ece = 0, mce = 0;
  const out: ReliabilityBin[] = [];
  for (let b = 0; b < bins; b++) {
    const lo = b / bins, hi = (b + 1) / bins;
    if (cnt[b] === 0) {
      out.push({ lo, hi, confidence: null, accuracy: null, count: 0 });
      continue;
    }
    const confidence = sumC[b] / cnt[b], accuracy = sumA[b] / cnt[b];
    const gap = Math.abs(accuracy - confidence);
    ece += (cnt[b] / n) * gap;
    mce = Math.max(mce, gap);
    out.push({ lo, hi, confidence, accuracy, count: cnt[b] });
  }
  return { ece, mce, accuracy: totA / n, confidence: totC / n, n, bins: out };
}

/** Softmax of host logits [n, c] divided by T, row-major (float64, max-subtracted). */
export function softmaxHost(logits: ArrayLike<number>, n: number, c: number, T = 1): Float64Array {
  const out = new Float64Array(n * c);
  for (let i = 0; i < n; i++) {
    let m = -Infinity;
    for (let j = 0; j < c; j++) m = Math.max(m, logits[i * c + j] / T);
    let s = 0;
    for (let j = 0; j < c; j++) s += out[i * c + j] = Math.exp(logits[i * c + j] / T - m);
    for (let j = 0; j < c; j++) out[i * c + j] /= s;
  }
  return out;
}

/** Mean negative log-likelihood of labels under softmax(logits / T), float64 (host arrays). */
export function nllAtTemperature(logits: ArrayLike<number>, labels: ArrayLike<number>, c: number, T: number): number {
  const n = labels.length;
  let total = 0;
  for (let i = 0; i < n; i++) {
    let m = -Infinity;
    for (let j = 0; j < c; j++) m = Math.max(m, logits[i * c + j] / T);
    let s = 0;
    for (let j = 0; j < c; j++) s += Math.exp(logits[i * c + j] / T - m);
    total += m + Math.log(s) - logits[i * c + labels[i]] / T;
  }
  return total / n;
}

export interface FitTemperatureOptions {
  /** The search interval for T (default [0.01, 100]). */
  range?: [number, number];
}

export interface TemperatureFit {
  temperature: number;
  /** Mean NLL on the fitting data at T = 1 and at the fitted T. */
  nllBefore: number;
  nllAfter: number;
  /** True when the minimum lies at an end of the search range (e.g. separable data wants T -> 0). */
  atBound: boolean;
}

/**
 * The temperature T > 0 minimising the mean NLL of labels under softmax(logits / T) (Guo et al.
 * 2017), by golden-section search on log T within `range` (float64, on the host). The NLL is a
 * convex function of 1/T (log-sum-exp of a linear function minus a linear function), hence
 * unimodal in log T, so the search finds the global minimum within the range.
 */
export async function fitTemperature(logits: Tensor | ArrayLike<number>, labels: Tensor | ArrayLike<number>, opts: FitTemperatureOptions = {}): Promise<number> {
  return (await fitTemperatureWith('fitTemperature', logits, labels, opts)).temperature;
}

/** fitTemperature with the NLL before and after, and whether the fit hit the range's end. */
export async function fitTemperatureDetails(logits: Tensor | ArrayLike<number>, labels: Tensor | ArrayLike<number>, opts: FitTemperatureOptions = {}): Promise<TemperatureFit> {
  return fitTemperatureWith('fitTemperatureDetails', logits, labels, opts);
}

async function fitTemperatureWith(op: string, logits: Tensor | ArrayLike<number>, labels: Tensor | ArrayLike<number>, opts: FitTemperatureOptions): Promise<TemperatureFit> {
  checkOptions(op, opts, TEMPERATURE_KEYS);
  if (opts.range !== undefined && (!Array.isArray(opts.range) || opts.range.length !== 2)) throw new Error(`${op}: range must be [lo, hi], got ${JSON.stringify(opts.range)}`);
  const [tLo, tHi] = opts.range ?? [0.01, 100];
  if (!(tLo > 0 && tHi > tLo && Number.isFinite(tHi))) throw new Error(`${op}: range must be [lo, hi] with 0 < lo < hi < Infinity, got [${opts.range}]`);
  const y = await hostValues(op, 'labels', labels);
  const { data, c } = await hostMatrix(op, 'logits', logits, y.length);
  const lab = checkLabels(op, y, c);
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) throw new Error(`${op}: logits[${Math.floor(i / c)}][${i % c}] is ${data[i]}; logits must be finite`);
  }
  const f = (u: number) => nllAtTemperature(data, lab, c, Math.exp(u));
  let a = Math.log(tLo), b = Math.log(tHi);
  const g = (Math.sqrt(5) - 1) / 2;
  let x1 = b - g * (b - a), x2 = a + g * (b - a);
  let f1 = f(x1), f2 = f(x2);
  while (b - a > 1e-10) {
    if (f1 <= f2) {
      b = x2;
      x2 = x1;
      f2 = f1;
      x1 = b - g * (b - a);
      f1 = f(x1);
    } else {
      a = x1;
      x1 = x2;
      f1 = f2;
      x2 = a + g * (b - a);
      f2 = f(x2);
    }
  }
  let u = (a + b) / 2;
  // The ends are candidates too (golden section brackets an interior minimum only).
  const cands = [u, Math.log(tLo), Math.log(tHi)];
  const vals = cands.map(f);
  const best = vals.indexOf(Math.min(...vals));
  u = cands[best];
  const temperature = Math.exp(u);
  const atBound = Math.abs(u - Math.log(tLo)) < 1e-6 || Math.abs(u - Math.log(tHi)) < 1e-6;
  return { temperature, nllBefore: f(0), nllAfter: vals[best], atBound };
}

/** logits / T: the temperature-scaled logits (softmax them for calibrated probabilities). A new tensor; the input is not disposed. */
export function applyTemperature(logits: Tensor, T: number): Tensor {
  if (!(logits instanceof bl.Tensor)) throw new Error(`applyTemperature: logits must be a Tensor, got ${logits === null ? 'null' : typeof logits}`);
  if (typeof T !== 'number' || !(T > 0) || !Number.isFinite(T)) throw new Error(`applyTemperature: T must be a finite number > 0, got ${String(T)}`);
  return bl.div(logits, T);
}

export interface ReliabilityDiagramOptions {
  title?: string;
  /** Pixel size (default 360 x 360). */
  width?: number;
  height?: number;
}

const esc = (s: string) => s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);
const f3 = (v: number) => (Math.round(v * 1000) / 1000).toString();

/**
 * A reliability diagram as an SVG string (no dependencies): per bin a bar of its accuracy, the
 * gap to the bin's mean confidence outlined in red, the diagonal of perfect calibration, axes,
 * and the ECE in the corner when a whole ReliabilityResult is given. Empty bins draw no bar.
 */
export function reliabilityDiagramSvg(bins: readonly ReliabilityBin[] | ReliabilityResult, opts: ReliabilityDiagramOptions = {}): string {
  const list = Array.isArray(bins) ? (bins as readonly ReliabilityBin[]) : (bins as ReliabilityResult).bins;
  if (!Array.isArray(list) || list.length === 0) throw new Error('reliabilityDiagramSvg: bins must be a non-empty array of reliability bins (or a reliabilityBins result)');
  checkOptions('reliabilityDiagramSvg', opts, DIAGRAM_KEYS);
  const ece = Array.isArray(bins) ? null : (bins as ReliabilityResult).ece;
  const W = opts.width ?? 360, H = opts.height ?? 360;
  // The margins take 60 x 82 pixels; a smaller figure would draw with negative sizes.
  for (const [k, v] of [['width', W], ['height', H]] as const) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 100) throw new Error(`reliabilityDiagramSvg: option '${k}' must be a number of pixels >= 100, got ${String(opts[k])}`);
  }
  const m = { l: 48, r: 12, t: opts.title ? 30 : 12, b: 40 };
  const pw = W - m.l - m.r, ph = H - m.t - m.b;
  const X = (v: number) => m.l + v * pw, Y = (v: number) => m.t + (1 - v) * ph;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`);
  if (opts.title) parts.push(`<title>${esc(opts.title)}</title><text x="${W / 2}" y="18" text-anchor="middle" font-size="13">${esc(opts.title)}</text>`);
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="#fff" stroke="#999"/>`);
  for (let t = 0; t <= 5; t++) {
    const v = t / 5;
    parts.push(`<line x1="${X(v)}" y1="${Y(0)}" x2="${X(v)}" y2="${Y(0) + 4}" stroke="#666"/><text x="${X(v)}" y="${Y(0) + 16}" text-anchor="middle">${v.toFixed(1)}</text>`);
    parts.push(`<line x1="${X(0) - 4}" y1="${Y(v)}" x2="${X(0)}" y2="${Y(v)}" stroke="#666"/><text x="${X(0) - 7}" y="${Y(v) + 4}" text-anchor="end">${v.toFixed(1)}</text>`);
  }
  for (const b of list) {
    if (b.count === 0 || b.accuracy === null || b.confidence === null) continue;
    const x = X(b.lo), w = Math.max(0, X(b.hi) - X(b.lo) - 1);
    parts.push(`<rect class="accuracy" x="${f3(x)}" y="${f3(Y(b.accuracy))}" width="${f3(w)}" height="${f3(Y(0) - Y(b.accuracy))}" fill="#3b6fb6"><title>(${f3(b.lo)}, ${f3(b.hi)}]: accuracy ${f3(b.accuracy)}, confidence ${f3(b.confidence)}, ${b.count} predictions</title></rect>`);
    const top = Math.max(b.accuracy, b.confidence), bot = Math.min(b.accuracy, b.confidence);
    parts.push(`<rect class="gap" x="${f3(x)}" y="${f3(Y(top))}" width="${f3(w)}" height="${f3(Y(bot) - Y(top))}" fill="#d9534f" fill-opacity="0.3" stroke="#d9534f"/>`);
  }
  parts.push(`<line class="diagonal" x1="${X(0)}" y1="${Y(0)}" x2="${X(1)}" y2="${Y(1)}" stroke="#444" stroke-dasharray="4 3"/>`);
  parts.push(`<text x="${m.l + pw / 2}" y="${H - 6}" text-anchor="middle">confidence</text>`);
  parts.push(`<text transform="translate(12 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">accuracy</text>`);
  if (ece !== null) parts.push(`<text x="${m.l + 8}" y="${m.t + 16}">ECE ${(ece * 100).toFixed(2)}%</text>`);
  parts.push('</svg>');
  return parts.join('');
}

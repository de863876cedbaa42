// Data set helpers: subsets, a seeded (stratified) train/test split, class counts, and feature
// standardisation fitted on one split and applied to others. Works on the `Dataset` of
// models/train.ts; extra per-sample arrays (image masks) follow the samples they belong to.
import { shuffled, type Dataset } from '../train.ts';

/** A data set with ground-truth evidence masks: `masks` holds n samples of `maskShape`. */
export interface MaskedDataset extends Dataset {
  masks: Float32Array;
  maskShape: number[];
}

/** Tabular data sets carry their feature (column) names. */
export interface TabularDataset extends Dataset {
  featureNames: string[];
}

export function sampleSize(d: Pick<Dataset, 'sampleShape'>): number {
  return d.sampleShape.reduce((a, b) => a * b, 1);
}

function hasMasks(d: Dataset): d is MaskedDataset {
  return (d as MaskedDataset).masks instanceof Float32Array;
}

/** The samples `idx` of `d`, in that order (masks and names carried along). */
export function subset<D extends Dataset>(d: D, idx: ArrayLike<number>): D {
  const per = sampleSize(d);
  const x = new Float32Array(idx.length * per);
  const y = new Float32Array(idx.length);
  for (let i = 0; i < idx.length; i++) {
    const k = idx[i];
    if (!(k >= 0 && k < d.n && Number.isInteger(k))) throw new Error(`subset: index ${k} is out of range for ${d.n} samples`);
    x.set(d.x.subarray(k * per, (k + 1) * per), i * per);
    y[i] = d.y[k];
  }
  const out = { ...d, x, y, n: idx.length } as D;
  // Other per-sample arrays (e.g. the spurious set's texture labels) follow their samples too.
  for (const [key, v] of Object.entries(d)) {
    if (key === 'x' || key === 'y' || key === 'masks' || !ArrayBuffer.isView(v) || (v as unknown as ArrayLike<number>).length !== d.n) continue;
    const src = v as unknown as { length: number; [i: number]: number; constructor: new (n: number) => { [i: number]: number } };
    const dst = new src.constructor(idx.length);
    for (let i = 0; i < idx.length; i++) dst[i] = src[idx[i]];
    (out as Record<string, unknown>)[key] = dst;
  }
  if (hasMasks(d)) {
    const mper = d.maskShape.reduce((a, b) => a * b, 1);
    const masks = new Float32Array(idx.length * mper);
    for (let i = 0; i < idx.length; i++) masks.set(d.masks.subarray(idx[i] * mper, (idx[i] + 1) * mper), i * mper);
    (out as unknown as MaskedDataset).masks = masks;
  }
  return out;
}

/** Samples per class (index = class). */
export function classCounts(d: Dataset): number[] {
  const k = d.numClasses ?? Math.max(-1, ...Array.from(d.y)) + 1;
  const counts = new Array<number>(k).fill(0);
  for (const c of d.y) counts[c]++;
  return counts;
}

export interface SplitOptions {
  /** Fraction of the samples that go to the test split (default 0.2). */
  testFraction?: number;
  seed?: number;
  /** Keep the class proportions in both splits (default true when the data has classes). */
  stratify?: boolean;
}

/**
 * A seeded train/test split, the same on every machine. Stratified: each class is shuffled and
 * split on its own (round(testFraction * count) test samples per class); the two splits list
 * their samples in the original order.
 */
export function trainTestSplit<D extends Dataset>(d: D, opts: SplitOptions = {}): { train: D; test: D } {
  const frac = opts.testFraction ?? 0.2;
  if (!(frac > 0 && frac < 1)) throw new Error(`trainTestSplit: testFraction must be in (0, 1), got ${frac}`);
  const seed = opts.seed ?? 0;
  const stratify = opts.stratify ?? d.numClasses !== undefined;
  const isTest = new Uint8Array(d.n);
  if (stratify) {
    const byClass = new Map<number, number[]>();
    for (let i = 0; i < d.n; i++) {
      const c = d.y[i];
      if (!byClass.has(c)) byClass.set(c, []);
      byClass.get(c)!.push(i);
    }
    for (const [c, members] of [...byClass].sort((a, b) => a[0] - b[0])) {
      const perm = shuffled(members.length, seed * 7919 + c + 1);
      const nTest = Math.round(frac * members.length);
      for (let j = 0; j < nTest; j++) isTest[members[perm[j]]] = 1;
    }
  } else {
    const perm = shuffled(d.n, seed);
    const nTest = Math.round(frac * d.n);
    for (let j = 0; j < nTest; j++) isTest[perm[j]] = 1;
  }
  const trainIdx: number[] = [], testIdx: number[] = [];
  for (let i = 0; i < d.n; i++) (isTest[i] ? testIdx : trainIdx).push(i);
  if (trainIdx.length === 0 || testIdx.length === 0) throw new Error(`trainTestSplit: ${d.n} samples leave an empty split at testFraction ${frac}`);
  return { train: subset(d, trainIdx), test: subset(d, testIdx) };
}

/** Per-feature mean and standard deviation (population, as scikit-learn's StandardScaler). */
export interface Standardizer {
  mean: Float32Array;
  std: Float32Array;
}

/**
 * Fit a standardiser on `d` (use the training split only, so that nothing about the test split
 * leaks into training). Features are the elements of one sample; a constant feature gets std 1.
 */
export function fitStandardizer(d: Dataset): Standardizer {
  const per = sampleSize(d);
  const mean = new Float64Array(per), sq = new Float64Array(per);
  for (let i = 0; i < d.n; i++) for (let j = 0; j < per; j++) mean[j] += d.x[i * per + j];
  for (let j = 0; j < per; j++) mean[j] /= d.n;
  for (let i = 0; i < d.n; i++) {
    for (let j = 0; j < per; j++) {
      const v = d.x[i * per + j] - mean[j];
      sq[j] += v * v;
    }
  }
  const std = new Float32Array(per);
  for (let j = 0; j < per; j++) {
    const s = Math.sqrt(sq[j] / d.n);
    std[j] = s > 1e-12 ? s : 1;
  }
  return { mean: Float32Array.from(mean), std };
}

/** (x - mean) / std per feature, as a new data set. */
export function standardize<D extends Dataset>(d: D, s: Standardizer): D {
  const per = sampleSize(d);
  if (s.mean.length !== per) throw new Error(`standardize: the standardiser has ${s.mean.length} features, the data ${per}`);
  const x = new Float32Array(d.x.length);
  for (let i = 0; i < d.n; i++) for (let j = 0; j < per; j++) x[i * per + j] = (d.x[i * per + j] - s.mean[j]) / s.std[j];
  return { ...d, x };
}

// Similarity between two explanations (or any two maps): the measures that Adebayo et al. 2018,
// "Sanity checks for saliency maps" (NeurIPS), report between an original and a randomised
// explanation: Spearman rank correlation (of the signed maps and of their absolute values) and
// the structural similarity index (SSIM, Wang, Bovik, Sheikh & Simoncelli 2004, "Image quality
// assessment: from error visibility to structural similarity", IEEE TIP 13(4)); plus Pearson's
// correlation. Host code in float64: the maps are small (one per batch item) and read back once.
// Browser-safe (no Node built-ins).

import { checkOptions, optionKeys } from '../options.ts';

type Numbers = ArrayLike<number>;

function checkPair(op: string, a: Numbers, b: Numbers): void {
  if (a.length !== b.length) throw new Error(`${op}: the two maps differ in length (${a.length} vs ${b.length})`);
  if (a.length < 2) throw new Error(`${op}: needs at least 2 values, got ${a.length}`);
}

/**
 * Pearson's correlation coefficient, two-pass in float64. NaN when either input is constant
 * (zero variance: the correlation is undefined, as in scipy.stats.pearsonr) or holds a NaN.
 */
export function pearson(a: Numbers, b: Numbers): number {
  checkPair('pearson', a, b);
  const n = a.length;
  let ma = 0, mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i];
    mb += b[i];
  }
  ma /= n;
  mb /= n;
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < n; i++) {
    const da = a[i] - ma, db = b[i] - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  if (!(saa > 0) || !(sbb > 0)) return NaN;
  // sqrt(saa * sbb) (not sqrt(saa) * sqrt(sbb)): for identical inputs sab === saa and
  // sqrt(fl(saa^2)) === saa in IEEE arithmetic, so the correlation of a map with itself is exactly 1.
  const r = sab / Math.sqrt(saa * sbb);
  return Math.max(-1, Math.min(1, r));
}

/**
 * Ranks 1..n of the values, ties given the average of the ranks they span (the "fractional"
 * ranking scipy.stats.rankdata uses by default). NaN values make every rank NaN.
 */
export function ranks(a: Numbers): Float64Array {
  const n = a.length;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) if (Number.isNaN(a[i])) return out.fill(NaN);
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => a[i] - a[j] || i - j);
  for (let s = 0; s < n; ) {
    let e = s + 1;
    while (e < n && a[order[e]] === a[order[s]]) e++;
    const r = (s + 1 + e) / 2; // the mean of ranks s+1 .. e
    for (let k = s; k < e; k++) out[order[k]] = r;
    s = e;
  }
  return out;
}

/**
 * Spearman's rank correlation: Pearson's correlation of the ranks, ties ranked by their average
 * (so it is correct with ties, unlike 1 - 6 sum d^2 / (n (n^2 - 1))). NaN when either input is
 * constant. Adebayo et al. report it on the signed maps and on their absolute values:
 * `spearman(a, b)` and `spearman(abs(a), abs(b))` (see `absolute`).
 */
export function spearman(a: Numbers, b: Numbers): number {
  checkPair('spearman', a, b);
  return pearson(ranks(a), ranks(b));
}

/** |v| elementwise, as a new Float64Array. */
export function absolute(a: Numbers): Float64Array {
  return Float64Array.from(a, (v) => Math.abs(v));
}

/**
 * A map scaled as Adebayo et al. do before SSIM: absolute values divided by the map's largest
 * absolute value, so it lies in [0, 1] with its maximum at 1 (an all-zero map stays zero). The
 * sign and the overall scale of an explanation are thereby ignored; only its shape is compared.
 */
export function absMaxNormalize(a: Numbers): Float64Array {
  const out = absolute(a);
  let m = 0;
  for (const v of out) if (v > m) m = v;
  if (m > 0) for (let i = 0; i < out.length; i++) out[i] /= m;
  return out;
}

export interface SsimOptions {
  /** The map's height and width: each map holds h * w values, row-major. */
  h: number;
  w: number;
  /**
   * The side of the square sliding window (odd). Default 7, scikit-image's default; Wang et al.'s
   * choice is an 11 x 11 Gaussian window with sigma 1.5 (`{ window: 11, sigma: 1.5 }`).
   */
  window?: number;
  /**
   * With a sigma, the window's weights are a Gaussian exp(-(dy^2 + dx^2) / (2 sigma^2)) normalised
   * to sum 1, and local (co)variances are the weighted ones (Wang et al. 2004). Without, the
   * window is uniform and the (co)variances are unbiased sample ones (divided by n - 1), as in
   * scikit-image's structural_similarity.
   */
  sigma?: number;
  /**
   * How each map is prepared: 'abs-max' (default), |v| / max|v| per map, the normalisation of
   * Adebayo et al. (so the data range is 1); 'none', the values as given (then `dataRange` is
   * required).
   */
  normalize?: 'abs-max' | 'none';
  /** L in C1 = (K1 L)^2, C2 = (K2 L)^2: the range the values can span. Default 1 with 'abs-max'. */
  dataRange?: number;
  /** Wang et al.'s stabilising constants, default K1 = 0.01, K2 = 0.03. */
  k1?: number;
  k2?: number;
}

const SSIM_KEYS = optionKeys<SsimOptions>()(['h', 'w', 'window', 'sigma', 'normalize', 'dataRange', 'k1', 'k2']);
const HOG_KEYS = optionKeys<HogOptions>()(['h', 'w', 'cell', 'bins', 'block', 'normalize']);

/**
 * The mean structural similarity of two 2-D maps (Wang et al. 2004): for every position of a
 * window lying wholly inside the map,
 *   SSIM = (2 mu_a mu_b + C1)(2 sigma_ab + C2) / ((mu_a^2 + mu_b^2 + C1)(sigma_a^2 + sigma_b^2 + C2)),
 * averaged over those positions (scikit-image's mean over the map with the window's border cropped,
 * which is the same set). 1 for identical maps (also constant ones), lower the more they differ,
 * and at least -1. The maps are normalised first as `normalize` says (default |v| / max|v|).
 */
export function ssim(a: Numbers, b: Numbers, opts: SsimOptions): number {
  checkOptions('ssim', opts, SSIM_KEYS);
  if (opts === undefined) throw new Error('ssim: options { h, w } (the maps\' height and width) are required');
  const { h, w } = opts;
  const win = opts.window ?? 7;
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 1 || w < 1) throw new Error(`ssim: h and w must be positive integers, got ${h} x ${w}`);
  if (a.length !== h * w || b.length !== h * w) throw new Error(`ssim: maps of ${h} x ${w} hold ${h * w} values, got ${a.length} and ${b.length}`);
  if (!Number.isInteger(win) || win < 1 || win % 2 === 0) throw new Error(`ssim: window must be an odd positive integer, got ${win}`);
  if (win > h || win > w) throw new Error(`ssim: the ${win} x ${win} window does not fit a ${h} x ${w} map (pass a smaller window)`);
  const norm = opts.normalize ?? 'abs-max';
  if (norm !== 'abs-max' && norm !== 'none') throw new Error(`ssim: normalize must be 'abs-max' or 'none', got '${String(norm)}'`);
  const L = opts.dataRange ?? (norm === 'abs-max' ? 1 : undefined);
  if (L === undefined || !(L > 0)) throw new Error(`ssim: dataRange must be a positive number${norm === 'none' ? " (required with normalize: 'none')" : ''}, got ${L}`);
  if (opts.sigma !== undefined && !(opts.sigma > 0)) throw new Error(`ssim: sigma must be positive, got ${opts.sigma}`);
  const A = norm === 'abs-max' ? absMaxNormalize(a) : Float64Array.from(a);
  const B = norm === 'abs-max' ? absMaxNormalize(b) : Float64Array.from(b);
  for (const k of ['k1', 'k2'] as const) {
    const v = opts[k];
    if (v !== undefined && !(typeof v === 'number' && v > 0 && Number.isFinite(v))) throw new Error(`ssim: ${k} must be a finite number > 0, got ${String(v)}`);
  }
  const c1 = ((opts.k1 ?? 0.01) * L) ** 2;
  const c2 = ((opts.k2 ?? 0.03) * L) ** 2;

  // Window weights (sum 1) and the factor that turns weighted second moments into the reported ones.
  const np = win * win;
  const weights = new Float64Array(np);
  const r = (win - 1) / 2;
  if (opts.sigma === undefined) weights.fill(1 / np);
  else {
    let s = 0;
    for (let dy = -r; dy <= r; dy++) for (let dx = -r; dx <= r; dx++) s += (weights[(dy + r) * win + dx + r] = Math.exp(-(dy * dy + dx * dx) / (2 * opts.sigma * opts.sigma)));
    for (let k = 0; k < np; k++) weights[k] /= s;
  }
  const covNorm = opts.sigma === undefined && np > 1 ? np / (np - 1) : 1;

  let total = 0, count = 0;
  for (let y0 = 0; y0 + win <= h; y0++) {
    for (let x0 = 0; x0 + win <= w; x0++) {
      let ma = 0, mb = 0;
      for (let dy = 0; dy < win; dy++) {
        for (let dx = 0; dx < win; dx++) {
          const g = weights[dy * win + dx], i = (y0 + dy) * w + x0 + dx;
          ma += g * A[i];
          mb += g * B[i];
        }
      }
      let vaa = 0, vbb = 0, vab = 0;
      for (let dy = 0; dy < win; dy++) {
        for (let dx = 0; dx < win; dx++) {
          const g = weights[dy * win + dx], i = (y0 + dy) * w + x0 + dx;
          const da = A[i] - ma, db = B[i] - mb;
          vaa += g * da * da;
          vbb += g * db * db;
          vab += g * da * db;
        }
      }
      vaa *= covNorm;
      vbb *= covNorm;
      vab *= covNorm;
      total += ((2 * ma * mb + c1) * (2 * vab + c2)) / ((ma * ma + mb * mb + c1) * (vaa + vbb + c2));
      count++;
    }
  }
  return total / count;
}

export interface HogOptions {
  /** The map's height and width (h * w values, row-major). */
  h: number;
  w: number;
  /** Cell side in pixels (default 4); cells that do not fit wholly are dropped, as in scikit-image. */
  cell?: number;
  /** Orientation bins over [0, 180) degrees (default 9). */
  bins?: number;
  /** Block side in cells (default 2), blocks sliding by one cell. */
  block?: number;
  /** 'abs-max' (default, as for SSIM) or 'none'. */
  normalize?: 'abs-max' | 'none';
}

/**
 * A histogram-of-oriented-gradients descriptor of a 2-D map (Dalal & Triggs 2005, "Histograms of
 * oriented gradients for human detection", CVPR): centred differences [-1, 0, 1] (0 on the border
 * rows/columns), unsigned orientations, magnitude-weighted votes into the bin of each pixel's
 * orientation per cell (no interpolation between bins or cells), blocks of block x block cells
 * normalised with L2-Hys (L2, clipped at 0.2, L2 again). Our own simplified version of it.
 */
export function hogDescriptor(a: Numbers, opts: HogOptions): Float64Array {
  return hog('hogDescriptor', a, opts);
}

function hog(op: string, a: Numbers, opts: HogOptions): Float64Array {
  checkOptions(op, opts, HOG_KEYS);
  if (opts === undefined) throw new Error(`${op}: options { h, w } (the map's height and width) are required`);
  const { h, w } = opts;
  if (!Number.isInteger(h) || !Number.isInteger(w) || h < 1 || w < 1) throw new Error(`${op}: h and w must be positive integers, got ${h} x ${w}`);
  const norm = opts.normalize ?? 'abs-max';
  // Anything but the two names used to fall through to 'none' silently.
  if (norm !== 'abs-max' && norm !== 'none') throw new Error(`${op}: normalize must be 'abs-max' or 'none', got '${String(norm)}'`);
  const cell = opts.cell ?? 4, bins = opts.bins ?? 9, block = opts.block ?? 2;
  if (a.length !== h * w) throw new Error(`${op}: a ${h} x ${w} map holds ${h * w} values, got ${a.length}`);
  for (const [k, v] of [['cell', cell], ['bins', bins], ['block', block]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${op}: ${k} must be a positive integer, got ${v}`);
  }
  const cy = Math.floor(h / cell), cx = Math.floor(w / cell);
  if (cy < block || cx < block) throw new Error(`${op}: a ${h} x ${w} map has ${cy} x ${cx} cells of ${cell} pixels, fewer than one block of ${block} x ${block} (pass a smaller cell or block)`);
  const m = norm === 'abs-max' ? absMaxNormalize(a) : Float64Array.from(a);
  const hist = new Float64Array(cy * cx * bins);
  for (let y = 0; y < cy * cell; y++) {
    for (let x = 0; x < cx * cell; x++) {
      const gx = x > 0 && x < w - 1 ? m[y * w + x + 1] - m[y * w + x - 1] : 0;
      const gy = y > 0 && y < h - 1 ? m[(y + 1) * w + x] - m[(y - 1) * w + x] : 0;
      const mag = Math.hypot(gx, gy);
      if (mag === 0) continue;
      let deg = (Math.atan2(gy, gx) * 180) / Math.PI;
      deg = ((deg % 180) + 180) % 180;
      const bin = Math.min(bins - 1, Math.floor(deg / (180 / bins)));
      hist[(Math.floor(y / cell) * cx + Math.floor(x / cell)) * bins + bin] += mag;
    }
  }
  const by = cy - block + 1, bx = cx - block + 1, per = block * block * bins;
  const out = new Float64Array(by * bx * per);
  const eps = 1e-5;
  for (let i = 0; i < by; i++) {
    for (let j = 0; j < bx; j++) {
      const o = (i * bx + j) * per;
      let k = 0;
      for (let di = 0; di < block; di++) for (let dj = 0; dj < block; dj++) for (let b = 0; b < bins; b++) out[o + k++] = hist[((i + di) * cx + j + dj) * bins + b];
      const l2 = (from: number) => {
        let s = 0;
        for (let t = 0; t < per; t++) s += out[o + t] ** 2;
        const n = Math.sqrt(s + eps * eps);
        for (let t = 0; t < per; t++) out[o + t] = from === 0 ? Math.min(0.2, out[o + t] / n) : out[o + t] / n;
      };
      l2(0);
      l2(1);
    }
  }
  return out;
}

/**
 * Similarity of two maps' HOG descriptors (hogDescriptor), as Pearson's correlation: Adebayo et
 * al. 2018 report it next to SSIM and rank correlation. NaN when a descriptor is constant (e.g. a
 * map without any gradient).
 */
export function histogramOfGradientsSimilarity(a: Numbers, b: Numbers, opts: HogOptions): number {
  return pearson(hog('histogramOfGradientsSimilarity', a, opts), hog('histogramOfGradientsSimilarity', b, opts));
}

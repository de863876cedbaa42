// t-SNE (van der Maaten & Hinton 2008), exact: the input affinities P are calibrated on the host
// in float64 (binary search per point on the Gaussian precision to match the perplexity), and the
// O(N^2) gradient descent runs on the device with engine ops (pairwise distances by a matmul, the
// Student-t kernel, the gradient as matrix products). Nothing is read back until the end.
import * as bl from '../../engine/index.ts';
import type { Backend, Tensor } from '../../engine/index.ts';
import { hostMatrix, squaredDistances } from './linalg.ts';
import { barnesHutDescent, barnesHutKl, sparseAffinities } from './barnes-hut.ts';
import { positiveIntOption } from './pca.ts';
import { checkOptions, optionKeys } from '../options.ts';

export interface TsneOptions {
  /** Output dimensions (default 2). */
  components?: number;
  /** Effective number of neighbours (default 30; must be below N - 1). */
  perplexity?: number;
  /** Gradient-descent iterations (default 1000). */
  iterations?: number;
  /**
   * Step size (default 'auto' = max(N / earlyExaggeration / 4, 50), scikit-learn's rule after
   * Belkina et al. 2019 and Linderman & Steinerberger 2019; 200 was the original paper's choice).
   */
  learningRate?: number | 'auto';
  /** P is multiplied by this for the first `exaggerationIterations` iterations (default 12 for 250). */
  earlyExaggeration?: number;
  exaggerationIterations?: number;
  /** Momentum before / from `momentumSwitch` (default 0.5 / 0.8, switching at iteration 250). */
  momentum?: number;
  finalMomentum?: number;
  momentumSwitch?: number;
  /** Smallest adaptive gain (default 0.01; gains grow by 0.2 when the step reverses, else shrink by 0.8). */
  minGain?: number;
  /** Seed of the initial layout, N(0, 1e-4^2) by Philox `randn` (default 0): the same seed gives the same coordinates. */
  seed?: number;
  /**
   * 'exact' (default): the O(N^2) gradient on the device. 'barnes-hut': on the host in float64,
   * sparse P over the 3 * perplexity nearest neighbours and the quadtree repulsion (2-D only), for
   * more points than N x N matrices allow.
   */
  method?: 'exact' | 'barnes-hut';
  /** Barnes-Hut accuracy: a cell counts as one point when its width / distance < theta (default 0.5; 0 is exact). */
  theta?: number;
  /** Where the descent runs (default: the input's backend). */
  backend?: Backend;
  /** Wait for the device every this many iterations, to bound queued work (default 50). No readback. */
  syncEvery?: number;
  /** Called after each sync with the iterations done. */
  onProgress?: (done: number, total: number) => void;
}

export interface TsneResult {
  /** The embedding [N, components], centred, on the backend it ran on. */
  coords: Tensor;
  /** KL(P || Q) of the final layout (without exaggeration). */
  klDivergence: number;
  learningRate: number;
  iterations: number;
  /** The Gaussian precision 1 / (2 sigma_i^2) found for each point (exact method; empty for Barnes-Hut). */
  betas: Float64Array;
}

/**
 * Conditional affinities p_{j|i} = exp(-beta_i d_ij) / sum_k exp(-beta_i d_ik) (d squared Euclidean
 * distances), beta_i found by bisection (on a doubling/halving bracket) so that the entropy
 * H(P_i) = log(perplexity) (nats) within 1e-5, at most 200 steps; then the joint
 * P = (P_cond + P_cond^T) / (2N), off-diagonal entries at least 1e-12, diagonal 0.
 */
export function tsneAffinities(d2: Float64Array, N: number, perplexity: number): { P: Float64Array; betas: Float64Array } {
  const target = Math.log(perplexity);
  const cond = new Float64Array(N * N);
  const betas = new Float64Array(N);
  const row = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    let dmin = Infinity;
    for (let j = 0; j < N; j++) if (j !== i && d2[i * N + j] < dmin) dmin = d2[i * N + j];
    let beta = 1, lo = 0, hi = Infinity;
    // Scale the start to the data: beta ~ 1 / (median-ish distance) keeps the first entropies sane.
    let mean = 0;
    for (let j = 0; j < N; j++) if (j !== i) mean += d2[i * N + j] - dmin;
    mean /= N - 1;
    if (mean > 0) beta = 1 / mean;
    for (let step = 0; step < 200; step++) {
      let s = 0, sd = 0;
      for (let j = 0; j < N; j++) {
        if (j === i) {
          row[j] = 0;
          continue;
        }
        const dj = d2[i * N + j] - dmin;
        const p = Math.exp(-beta * dj);
        row[j] = p;
        s += p;
        sd += p * dj;
      }
      const H = Math.log(s) + (beta * sd) / s;
      const diff = H - target;
      if (Math.abs(diff) < 1e-5) break;
      if (diff > 0) {
        // Entropy too high: sharpen.
        lo = beta;
        beta = hi === Infinity ? beta * 2 : (beta + hi) / 2;
      } else {
        hi = beta;
        beta = (beta + lo) / 2;
      }
    }
    let s = 0;
    for (let j = 0; j < N; j++) s += row[j];
    for (let j = 0; j < N; j++) cond[i * N + j] = row[j] / s;
    betas[i] = beta;
  }
  const P = new Float64Array(N * N);
  for (let i = 0; i < N; i++) for (let j = 0; j < N; j++) {
    if (i !== j) P[i * N + j] = Math.max((cond[i * N + j] + cond[j * N + i]) / (2 * N), 1e-12);
  }
  return { P, betas };
}

/**
 * The exact t-SNE gradient dC/dY = 4 sum_j (e p_ij - q_ij) (1 + |y_i - y_j|^2)^-1 (y_i - y_j), as
 * engine ops on Y's backend: |y_i - y_j|^2 = |y_i|^2 + |y_j|^2 - 2 Y Y^T (a matmul), the kernel
 * w_ij = 1 / (1 + d_ij) off the diagonal, q = w / sum w, M = (e P - q) * w, and
 * grad = 4 (diag(M 1) Y - M Y). `P` [N, N] joint affinities (zero diagonal), `Y` [N, k],
 * `offDiagonal` [N, N] ones with a zero diagonal (made when omitted), `e` the exaggeration.
 */
export function tsneGradient(P: Tensor, Y: Tensor, exaggeration = 1, offDiagonal?: Tensor): Tensor {
  const N = Y.shape[0];
  if (Y.rank !== 2 || P.rank !== 2 || P.shape[0] !== N || P.shape[1] !== N) {
    throw new Error(`tsneGradient: P must be [N, N] and Y [N, k]; got P [${P.shape.join(', ')}], Y [${Y.shape.join(', ')}]`);
  }
  return bl.tidy(() => {
    const mask = offDiagonal ?? offDiagonalMask(N, Y.backend);
    // Few [N, N] ops (each is a pass over N^2 values): 1 + d = (|y_i|^2 + 1) + |y_j|^2 + (-2 Y) Y^T.
    const sq = bl.sum(bl.mul(Y, Y), 1, { keepDims: true });
    const onePlusD = bl.add(bl.add(bl.add(sq, 1), bl.transpose(sq)), bl.matmul(bl.mul(Y, -2), bl.transpose(Y)));
    const w = bl.mul(bl.reciprocal(onePlusD), mask);
    const m = bl.mul(bl.sub(exaggeration === 1 ? P : bl.mul(P, exaggeration), bl.div(w, bl.sum(w))), w);
    return bl.mul(bl.sub(bl.mul(bl.sum(m, 1, { keepDims: true }), Y), bl.matmul(m, Y)), 4);
  });
}

/** [N, N] ones with a zero diagonal. */
export function offDiagonalMask(N: number, backend: Backend): Tensor {
  const a = new Float32Array(N * N).fill(1);
  for (let i = 0; i < N; i++) a[i * N + i] = 0;
  return bl.tensor(a, [N, N], backend);
}

/** KL(P || Q) for layout Y, read back (one scalar). */
export async function tsneKl(P: Tensor, Y: Tensor, offDiagonal?: Tensor): Promise<number> {
  const t = bl.tidy(() => {
    const N = Y.shape[0];
    const mask = offDiagonal ?? offDiagonalMask(N, Y.backend);
    const sq = bl.sum(bl.mul(Y, Y), 1, { keepDims: true });
    const d = bl.maximum(bl.add(bl.add(sq, bl.transpose(sq)), bl.mul(bl.matmul(Y, bl.transpose(Y)), -2)), 0);
    const w = bl.mul(bl.reciprocal(bl.add(d, 1)), mask);
    const q = bl.maximum(bl.div(w, bl.sum(w)), 1e-12);
    const safeP = bl.where(bl.greater(P, 0), P, 1);
    return bl.sum(bl.mul(P, bl.log(bl.div(safeP, q))));
  });
  const v = (await t.data())[0];
  t.dispose();
  return v;
}

function numberOption(op: string, name: string, v: unknown, dflt: number, check: (x: number) => boolean, what: string): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || !check(v)) throw new Error(`${op}: option '${name}' must be ${what}, got ${String(v)}`);
  return v;
}

const TSNE_KEYS = optionKeys<TsneOptions>()([
  'components', 'perplexity', 'iterations', 'learningRate', 'earlyExaggeration', 'exaggerationIterations', 'momentum',
  'finalMomentum', 'momentumSwitch', 'minGain', 'seed', 'method', 'theta', 'backend', 'syncEvery', 'onProgress',
]);

/**
 * Exact t-SNE of x [N, D] (rows are points). Follows the paper's optimiser (and scikit-learn's
 * exact method): early exaggeration, momentum, adaptive gains, the layout re-centred each step as
 * in the authors' tsne.py. Deterministic for a seed on a given backend; the float64 CPU backend is
 * the reference for the float32 device run.
 */
export async function tsne(x: Tensor, opts: TsneOptions = {}): Promise<TsneResult> {
  const op = 'tsne';
  checkOptions(op, opts, TSNE_KEYS);
  const m = await hostMatrix(op, x);
  const N = m.rows;
  if (N < 4) throw new Error(`${op}: needs at least 4 points, got ${N}`);
  const k = positiveIntOption(op, 'components', opts.components, 2);
  const perplexity = numberOption(op, 'perplexity', opts.perplexity, 30, (p) => p >= 1, 'a number of at least 1');
  if (perplexity >= N - 1) throw new Error(`${op}: perplexity ${perplexity} must be below N - 1 = ${N - 1} (the number of other points)`);
  const iterations = positiveIntOption(op, 'iterations', opts.iterations, 1000);
  const ee = numberOption(op, 'earlyExaggeration', opts.earlyExaggeration, 12, (v) => v >= 1, 'at least 1');
  const eeIters = numberOption(op, 'exaggerationIterations', opts.exaggerationIterations, 250, (v) => Number.isInteger(v) && v >= 0, 'a non-negative integer');
  const mom0 = numberOption(op, 'momentum', opts.momentum, 0.5, (v) => v >= 0 && v < 1, 'in [0, 1)');
  const mom1 = numberOption(op, 'finalMomentum', opts.finalMomentum, 0.8, (v) => v >= 0 && v < 1, 'in [0, 1)');
  const momSwitch = numberOption(op, 'momentumSwitch', opts.momentumSwitch, 250, (v) => Number.isInteger(v) && v >= 0, 'a non-negative integer');
  const minGain = numberOption(op, 'minGain', opts.minGain, 0.01, (v) => v > 0, 'positive');
  const seed = numberOption(op, 'seed', opts.seed, 0, (v) => Number.isInteger(v) && v >= 0, 'a non-negative integer');
  const syncEvery = positiveIntOption(op, 'syncEvery', opts.syncEvery, 50);
  let lr: number;
  if (opts.learningRate === undefined || opts.learningRate === 'auto') lr = Math.max(N / ee / 4, 50);
  else lr = numberOption(op, 'learningRate', opts.learningRate, 0, (v) => v > 0, "positive or 'auto'");
  const backend = opts.backend ?? x.backend;
  const method = opts.method ?? 'exact';
  if (method !== 'exact' && method !== 'barnes-hut') throw new Error(`${op}: option 'method' must be 'exact' or 'barnes-hut', got ${String(method)}`);
  if (method === 'barnes-hut') {
    if (k !== 2) throw new Error(`${op}: the Barnes-Hut method embeds in 2-D only (components ${k})`);
    const theta = numberOption(op, 'theta', opts.theta, 0.5, (v) => v >= 0, 'non-negative');
    const P = sparseAffinities(m.data, N, m.cols, perplexity);
    // The same start as the exact method for this seed.
    const y0 = bl.tidy(() => bl.mul(bl.randn([N, k], { seed, backend }), 1e-4));
    const init = Float64Array.from(await y0.data());
    y0.dispose();
    const y = barnesHutDescent(P, init, { iterations, lr, ee, eeIters, mom0, mom1, momSwitch, minGain, theta });
    opts.onProgress?.(iterations, iterations);
    return { coords: bl.tensor(y, [N, k], backend), klDivergence: barnesHutKl(P, y, theta), learningRate: lr, iterations, betas: new Float64Array(0) };
  }

  const { P: Ph, betas } = tsneAffinities(squaredDistances(m), N, perplexity);
  const P = bl.tensor(Ph, [N, N], backend);
  const mask = offDiagonalMask(N, backend);
  const Pe = ee === 1 || eeIters === 0 ? null : bl.mul(P, ee);
  let Y = bl.tidy(() => bl.mul(bl.randn([N, k], { seed, backend }), 1e-4));
  let upd = bl.zeros([N, k], backend);
  let gains = bl.ones([N, k], backend);
  try {
    for (let it = 0; it < iterations; it++) {
      const exag = it < eeIters ? ee : 1;
      const mom = it < momSwitch ? mom0 : mom1;
      const next = bl.tidy(() => {
        const g = tsneGradient(exag === 1 || !Pe ? P : Pe, Y, 1, mask);
        const inc = bl.less(bl.mul(upd, g), 0);
        const gn = bl.maximum(bl.where(inc, bl.add(gains, 0.2), bl.mul(gains, 0.8)), minGain);
        const un = bl.sub(bl.mul(upd, mom), bl.mul(bl.mul(gn, g), lr));
        const yn = bl.add(Y, un);
        return { y: bl.sub(yn, bl.mean(yn, 0, { keepDims: true })), u: un, g: gn };
      });
      Y.dispose();
      upd.dispose();
      gains.dispose();
      ({ y: Y, u: upd, g: gains } = next);
      if ((it + 1) % syncEvery === 0 || it === iterations - 1) {
        await backend.sync();
        opts.onProgress?.(it + 1, iterations);
      }
    }
    const klDivergence = await tsneKl(P, Y, mask);
    return { coords: Y, klDivergence, learningRate: lr, iterations, betas };
  } catch (e) {
    Y.dispose();
    throw e;
  } finally {
    P.dispose();
    Pe?.dispose();
    mask.dispose();
    upd.dispose();
    gains.dispose();
  }
}

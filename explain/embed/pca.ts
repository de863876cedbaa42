// Principal component analysis on the host in float64: centre, then the top eigenvectors of the
// covariance (D x D), or of the Gram matrix (N x N) when there are fewer points than features.
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { centre, fixSigns, hostMatrix, topEigen } from './linalg.ts';
import { checkOptions, optionKeys } from '../options.ts';

export interface PcaOptions {
  /** Number of components k (default 2; at most min(N, D)). */
  components?: number;
}

export interface PcaResult {
  /** The centred data projected on the components, [N, k], on the input's backend. */
  coords: Tensor;
  /** Unit principal axes as rows, [k, D]; largest-|loading| entry of each is positive. */
  components: Tensor;
  /** Variance along each component (eigenvalues of the covariance with 1 / (N - 1)), largest first. */
  explainedVariance: Float64Array;
  /** explainedVariance over the total variance (the covariance's trace). */
  explainedVarianceRatio: Float64Array;
  /** The column means that were subtracted, [D]. */
  mean: Tensor;
}

const PCA_KEYS = optionKeys<PcaOptions>()(['components']);

export function positiveIntOption(op: string, name: string, v: unknown, dflt: number, max = Infinity): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new Error(`${op}: option '${name}' must be a positive integer, got ${String(v)}`);
  if (v > max) throw new Error(`${op}: option '${name}' is ${v}, more than the ${max} possible`);
  return v;
}

/**
 * PCA of x [N, D] (rows are points). The eigen-decomposition runs in float64 on the host: cyclic
 * Jacobi for matrices up to 160 x 160, subspace iteration with Rayleigh-Ritz above (linalg.ts).
 * With N < D it decomposes the Gram matrix Xc Xc^T (same non-zero eigenvalues) and maps the
 * eigenvectors back, v = Xc^T u / |Xc^T u|.
 * Sign convention: each component is flipped so that its loading of largest magnitude is positive.
 */
export async function pca(x: Tensor, opts: PcaOptions = {}): Promise<PcaResult> {
  const op = 'pca';
  checkOptions(op, opts, PCA_KEYS);
  const m = await hostMatrix(op, x);
  const { rows: N, cols: D } = m;
  if (N < 2) throw new Error(`${op}: needs at least 2 points, got ${N}`);
  const k = positiveIntOption(op, 'components', opts.components, 2, Math.min(N, D));
  const { mean, centred: Xc } = centre(m);
  const denom = N - 1;
  let total = 0;
  for (let i = 0; i < Xc.length; i++) total += Xc[i] * Xc[i];
  total /= denom;
  const comps = new Float64Array(k * D);
  const variance = new Float64Array(k);
  if (N < D) {
    const G = new Float64Array(N * N);
    for (let i = 0; i < N; i++) for (let j = i; j < N; j++) {
      let s = 0;
      for (let c = 0; c < D; c++) s += Xc[i * D + c] * Xc[j * D + c];
      G[i * N + j] = G[j * N + i] = s;
    }
    const e = topEigen(G, N, k);
    for (let r = 0; r < k; r++) {
      variance[r] = Math.max(e.values[r], 0) / denom;
      let nr = 0;
      for (let c = 0; c < D; c++) {
        let s = 0;
        for (let i = 0; i < N; i++) s += Xc[i * D + c] * e.vectors[r * N + i];
        comps[r * D + c] = s;
        nr += s * s;
      }
      nr = Math.sqrt(nr);
      if (nr > 0) for (let c = 0; c < D; c++) comps[r * D + c] /= nr;
    }
  } else {
    const C = new Float64Array(D * D);
    for (let i = 0; i < N; i++) {
      const o = i * D;
      for (let a = 0; a < D; a++) {
        const va = Xc[o + a];
        if (va === 0) continue;
        for (let b = a; b < D; b++) C[a * D + b] += va * Xc[o + b];
      }
    }
    for (let a = 0; a < D; a++) for (let b = a; b < D; b++) C[b * D + a] = C[a * D + b] = C[a * D + b] / denom;
    const e = topEigen(C, D, k);
    for (let r = 0; r < k; r++) variance[r] = Math.max(e.values[r], 0);
    comps.set(e.vectors);
  }
  fixSigns(comps, k, D);
  const coords = new Float64Array(N * k);
  for (let i = 0; i < N; i++) for (let r = 0; r < k; r++) {
    let s = 0;
    for (let c = 0; c < D; c++) s += Xc[i * D + c] * comps[r * D + c];
    coords[i * k + r] = s;
  }
  const b = x.backend;
  return {
    coords: bl.tensor(coords, [N, k], b),
    components: bl.tensor(comps, [k, D], b),
    explainedVariance: variance,
    explainedVarianceRatio: variance.map((v) => (total > 0 ? v / total : 0)),
    mean: bl.tensor(mean, [D], b),
  };
}

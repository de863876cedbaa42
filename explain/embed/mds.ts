// Classical (Torgerson) multidimensional scaling: B = -1/2 J D^2 J (J = I - 11^T / N) from the
// pairwise Euclidean distances, then the top eigenvectors of B scaled by sqrt(eigenvalue).
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { fixSigns, hostMatrix, squaredDistances, topEigen } from './linalg.ts';
import { positiveIntOption } from './pca.ts';
import { checkOptions, optionKeys } from '../options.ts';

const MDS_KEYS = optionKeys<MdsOptions>()(['components', 'precomputed']);

export interface MdsOptions {
  /** Output dimensions k (default 2). */
  components?: number;
  /**
   * The input is already a symmetric [N, N] matrix of pairwise distances (not squared), with a
   * zero diagonal. Default false: the input is points [N, D] and their Euclidean distances are used.
   */
  precomputed?: boolean;
}

export interface MdsResult {
  /** [N, k] coordinates whose pairwise distances approximate the given ones (exactly, for Euclidean ones of rank <= k). */
  coords: Tensor;
  /** The k largest eigenvalues of B, largest first (negative ones, from non-Euclidean distances, give zero coordinates). */
  eigenvalues: Float64Array;
}

/**
 * Classical MDS in float64 on the host (Jacobi up to 160 points, subspace iteration above).
 * Sign convention: each output axis is flipped so that its coordinate of largest magnitude is positive.
 * For distances between points X this equals PCA's coordinates of X (up to sign).
 */
export async function mds(x: Tensor, opts: MdsOptions = {}): Promise<MdsResult> {
  const op = 'mds';
  checkOptions(op, opts, MDS_KEYS);
  if (opts.precomputed !== undefined && typeof opts.precomputed !== 'boolean') throw new Error(`${op}: option 'precomputed' must be a boolean, got ${String(opts.precomputed)}`);
  const m = await hostMatrix(op, x);
  const N = m.rows;
  if (N < 2) throw new Error(`${op}: needs at least 2 points, got ${N}`);
  let D2: Float64Array;
  if (opts.precomputed) {
    if (m.cols !== N) throw new Error(`${op}: precomputed distances must be a square [N, N] matrix, got [${m.rows}, ${m.cols}]`);
    D2 = new Float64Array(N * N);
    for (let i = 0; i < N; i++) {
      if (Math.abs(m.data[i * N + i]) > 1e-9) throw new Error(`${op}: precomputed distances must have a zero diagonal (entry [${i}, ${i}] is ${m.data[i * N + i]})`);
      for (let j = 0; j < N; j++) {
        const d = m.data[i * N + j];
        if (d < 0) throw new Error(`${op}: distances must be non-negative (entry [${i}, ${j}] is ${d})`);
        const t = m.data[j * N + i];
        if (Math.abs(d - t) > 1e-6 * Math.max(1, Math.abs(d))) throw new Error(`${op}: precomputed distances must be symmetric ([${i}, ${j}] = ${d}, [${j}, ${i}] = ${t})`);
        D2[i * N + j] = ((d + t) / 2) ** 2;
      }
    }
  } else {
    D2 = squaredDistances(m);
  }
  const k = positiveIntOption(op, 'components', opts.components, 2, N);
  // Double centring: B_ij = -1/2 (D2_ij - r_i - r_j + t), with row means r and grand mean t.
  const r = new Float64Array(N);
  let t = 0;
  for (let i = 0; i < N; i++) {
    let s = 0;
    for (let j = 0; j < N; j++) s += D2[i * N + j];
    r[i] = s / N;
    t += s;
  }
  t /= N * N;
  const B = new Float64Array(N * N);
  for (let i = 0; i < N; i++) for (let j = 0; j < N; j++) B[i * N + j] = -0.5 * (D2[i * N + j] - r[i] - r[j] + t);
  const e = topEigen(B, N, k);
  const axes = e.vectors; // k x N: axis r's coordinate of each point, before scaling
  fixSigns(axes, k, N);
  const coords = new Float64Array(N * k);
  for (let a = 0; a < k; a++) {
    const s = Math.sqrt(Math.max(e.values[a], 0));
    for (let i = 0; i < N; i++) coords[i * k + a] = s * axes[a * N + i];
  }
  return { coords: bl.tensor(coords, [N, k], x.backend), eigenvalues: e.values };
}

// Host float64 linear algebra for the embeddings: symmetric eigen-decompositions (cyclic Jacobi
// for small matrices, subspace iteration with Rayleigh-Ritz for the top few of larger ones),
// centring, pairwise squared distances, and the sign convention. Row-major Float64Arrays.
import { checkOptions, optionKeys } from '../options.ts';

/** A matrix's rows x cols values, row-major. */
export interface HostMatrix {
  data: Float64Array;
  rows: number;
  cols: number;
}

export interface Eigen {
  /** Eigenvalues, largest first. */
  values: Float64Array;
  /** Eigenvectors as rows: vectors[i * n + j] is component j of the i-th eigenvector (unit length). */
  vectors: Float64Array;
}

/**
 * All eigenpairs of the symmetric n x n matrix `a` by the cyclic Jacobi method (Golub & Van Loan
 * 8.5): rotations annihilate each off-diagonal element in turn until the off-diagonal norm is
 * below 1e-15 of the matrix's norm. Accurate to working precision even for clustered eigenvalues;
 * O(n^3) per sweep, for n up to a few hundred.
 */
export function jacobiEigen(a: Float64Array, n: number, maxSweeps = 100): Eigen {
  const A = Float64Array.from(a);
  const V = new Float64Array(n * n);
  for (let i = 0; i < n; i++) V[i * n + i] = 1;
  let total = 0;
  for (let i = 0; i < n * n; i++) total += A[i] * A[i];
  const tol = 1e-30 * Math.max(total, 1e-300);
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += A[p * n + q] * A[p * n + q];
    if (off <= tol) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = A[p * n + q];
        if (apq === 0) continue;
        const app = A[p * n + p], aqq = A[q * n + q];
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        // A <- J^T A J on rows/columns p and q.
        for (let k = 0; k < n; k++) {
          const akp = A[k * n + p], akq = A[k * n + q];
          A[k * n + p] = c * akp - s * akq;
          A[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = A[p * n + k], aqk = A[q * n + k];
          A[p * n + k] = c * apk - s * aqk;
          A[q * n + k] = s * apk + c * aqk;
        }
        A[p * n + q] = A[q * n + p] = 0;
        // V <- V J (columns of V are the eigenvectors).
        for (let k = 0; k < n; k++) {
          const vkp = V[k * n + p], vkq = V[k * n + q];
          V[k * n + p] = c * vkp - s * vkq;
          V[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => A[j * n + j] - A[i * n + i]);
  const values = new Float64Array(n), vectors = new Float64Array(n * n);
  order.forEach((col, r) => {
    values[r] = A[col * n + col];
    for (let k = 0; k < n; k++) vectors[r * n + k] = V[k * n + col];
  });
  return { values, vectors };
}

/** y = A x for a symmetric n x n A and `b` vectors stored as rows of x (b x n). */
function symTimes(a: Float64Array, n: number, x: Float64Array, b: number): Float64Array {
  const y = new Float64Array(b * n);
  for (let i = 0; i < n; i++) {
    const row = i * n;
    for (let v = 0; v < b; v++) {
      let s = 0;
      const xo = v * n;
      for (let j = 0; j < n; j++) s += a[row + j] * x[xo + j];
      y[xo + i] = s;
    }
  }
  return y;
}

/** Modified Gram-Schmidt (twice, for stability) on the b rows of x (b x n), in place. */
function orthonormalise(x: Float64Array, n: number, b: number): void {
  for (let pass = 0; pass < 2; pass++) {
    for (let v = 0; v < b; v++) {
      const o = v * n;
      for (let u = 0; u < v; u++) {
        let d = 0;
        for (let j = 0; j < n; j++) d += x[o + j] * x[u * n + j];
        for (let j = 0; j < n; j++) x[o + j] -= d * x[u * n + j];
      }
      let nr = 0;
      for (let j = 0; j < n; j++) nr += x[o + j] * x[o + j];
      nr = Math.sqrt(nr);
      if (nr < 1e-300) {
        // A degenerate direction: replace it by a unit vector orthogonal to the previous ones next pass.
        for (let j = 0; j < n; j++) x[o + j] = ((j * 7919 + v * 104729) % 997) / 997 - 0.5;
        v--;
        continue;
      }
      for (let j = 0; j < n; j++) x[o + j] /= nr;
    }
  }
}

export interface TopEigenOptions {
  /** Largest n solved by Jacobi (default 160); above, subspace iteration. */
  jacobiLimit?: number;
  /** Subspace iterations at most. */
  maxIterations?: number;
}
const TOP_EIGEN_KEYS = optionKeys<TopEigenOptions>()(['jacobiLimit', 'maxIterations']);

/**
 * The k largest eigenpairs of the symmetric positive semi-definite n x n matrix `a`. Up to
 * `jacobiLimit` (default 160) all pairs come from Jacobi; above it, subspace iteration on a block
 * of max(2k + 8, 12) vectors with a Rayleigh-Ritz step (Jacobi on the small projected matrix)
 * each iteration, until every wanted pair's residual |A v - l v| is below 1e-10 |l_1|. The start
 * block is deterministic (no randomness), so results are reproducible.
 */
export function topEigen(a: Float64Array, n: number, k: number, opts: TopEigenOptions = {}): Eigen {
  checkOptions('topEigen', opts, TOP_EIGEN_KEYS);
  // jacobiLimit 0 is meaningful (always subspace iteration); 0 iterations is not.
  for (const [key, min] of [['jacobiLimit', 0], ['maxIterations', 1]] as const) {
    const v = opts[key];
    if (v !== undefined && !(Number.isInteger(v) && v >= min)) throw new Error(`topEigen: option '${key}' must be an integer >= ${min}, got ${String(v)}`);
  }
  if (k > n) throw new Error(`topEigen: asked for ${k} eigenpairs of a ${n} x ${n} matrix`);
  if (n <= (opts.jacobiLimit ?? 160)) {
    const e = jacobiEigen(a, n);
    return { values: e.values.slice(0, k), vectors: e.vectors.slice(0, k * n) };
  }
  // Subspace iteration finds the eigenvalues largest in magnitude. If any of those found is
  // negative (an indefinite matrix: MDS of non-Euclidean distances), iterate again on A + sigma I,
  // sigma a Gershgorin bound (positive semi-definite), whose largest are the largest algebraic ones.
  const plain = subspaceIteration(a, n, k, opts.maxIterations);
  if (!plain.values.some((v) => v < 0)) return plain;
  let sigma = 0;
  for (let i = 0; i < n; i++) {
    let r = 0;
    for (let j = 0; j < n; j++) r += Math.abs(a[i * n + j]);
    sigma = Math.max(sigma, r);
  }
  const shifted = Float64Array.from(a);
  for (let i = 0; i < n; i++) shifted[i * n + i] += sigma;
  const e = subspaceIteration(shifted, n, k, opts.maxIterations);
  return { values: e.values.map((v) => v - sigma), vectors: e.vectors };
}

function subspaceIteration(a: Float64Array, n: number, k: number, maxIterations?: number): Eigen {
  const b = Math.min(n, Math.max(2 * k + 8, 12));
  let X = new Float64Array(b * n);
  // A deterministic, well-spread start: a cosine basis, plus the diagonal's weight.
  for (let v = 0; v < b; v++) for (let j = 0; j < n; j++) X[v * n + j] = Math.cos((Math.PI * (v + 0.5) * (j + 0.5)) / n) + (v === 0 ? Math.sqrt(Math.abs(a[j * n + j])) : 0);
  orthonormalise(X, n, b);
  const maxIt = maxIterations ?? 3000;
  let values: Float64Array = new Float64Array(b);
  for (let it = 0; it < maxIt; it++) {
    const AX = symTimes(a, n, X, b);
    // Rayleigh-Ritz: H = X^T A X (b x b), H = W L W^T, X <- W^T X, AX <- W^T AX.
    const H = new Float64Array(b * b);
    for (let u = 0; u < b; u++) for (let v = u; v < b; v++) {
      let s = 0;
      for (let j = 0; j < n; j++) s += X[u * n + j] * AX[v * n + j];
      H[u * b + v] = H[v * b + u] = s;
    }
    const e = jacobiEigen(H, b);
    values = e.values;
    const Xr = new Float64Array(b * n), AXr = new Float64Array(b * n);
    for (let r = 0; r < b; r++) for (let u = 0; u < b; u++) {
      const w = e.vectors[r * b + u];
      if (w === 0) continue;
      for (let j = 0; j < n; j++) {
        Xr[r * n + j] += w * X[u * n + j];
        AXr[r * n + j] += w * AX[u * n + j];
      }
    }
    let worst = 0;
    for (let r = 0; r < k; r++) {
      let s = 0;
      for (let j = 0; j < n; j++) s += (AXr[r * n + j] - values[r] * Xr[r * n + j]) ** 2;
      worst = Math.max(worst, Math.sqrt(s));
    }
    if (worst <= 1e-10 * Math.max(Math.abs(values[0]), 1e-300) || it === maxIt - 1) {
      return { values: values.slice(0, k), vectors: Xr.slice(0, k * n) };
    }
    X = AXr;
    orthonormalise(X, n, b);
  }
  throw new Error('topEigen: unreachable');
}

/**
 * The sign convention of every embedding here: each vector (row of `v`, length n) is flipped so
 * that its entry of largest magnitude is positive (the first such entry on ties). Returns the
 * signs applied.
 */
export function fixSigns(v: Float64Array, rows: number, n: number): number[] {
  const signs: number[] = [];
  for (let r = 0; r < rows; r++) {
    let best = 0, at = 0;
    for (let j = 0; j < n; j++) if (Math.abs(v[r * n + j]) > best) (best = Math.abs(v[r * n + j])), (at = j);
    const s = v[r * n + at] < 0 ? -1 : 1;
    if (s < 0) for (let j = 0; j < n; j++) v[r * n + j] = -v[r * n + j];
    signs.push(s);
  }
  return signs;
}

/** Column means and the centred copy of an N x D matrix. */
export function centre(x: HostMatrix): { mean: Float64Array; centred: Float64Array } {
  const { data, rows: N, cols: D } = x;
  const mean = new Float64Array(D);
  for (let i = 0; i < N; i++) for (let j = 0; j < D; j++) mean[j] += data[i * D + j];
  for (let j = 0; j < D; j++) mean[j] /= N;
  const c = new Float64Array(N * D);
  for (let i = 0; i < N; i++) for (let j = 0; j < D; j++) c[i * D + j] = data[i * D + j] - mean[j];
  return { mean, centred: c };
}

/** Pairwise squared Euclidean distances (N x N, exact differences, no |a|^2 + |b|^2 - 2ab cancellation). */
export function squaredDistances(x: HostMatrix): Float64Array {
  const { data, rows: N, cols: D } = x;
  const d = new Float64Array(N * N);
  for (let i = 0; i < N; i++) {
    for (let j = i + 1; j < N; j++) {
      let s = 0;
      for (let k = 0; k < D; k++) {
        const t = data[i * D + k] - data[j * D + k];
        s += t * t;
      }
      d[i * N + j] = d[j * N + i] = s;
    }
  }
  return d;
}

/** The values of a 2-D tensor (or anything with a leading axis, flattened per row) as float64. */
export async function hostMatrix(op: string, x: { shape: readonly number[]; data(): Promise<ArrayLike<number>> }): Promise<HostMatrix> {
  if (x.shape.length !== 2) throw new Error(`${op}: expected a matrix [N, D], got shape [${x.shape.join(', ')}] (flatten activations first)`);
  const [rows, cols] = x.shape;
  if (rows < 1 || cols < 1) throw new Error(`${op}: expected a non-empty matrix, got shape [${rows}, ${cols}]`);
  const data = Float64Array.from(await x.data());
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) throw new Error(`${op}: the input has a non-finite value at row ${Math.floor(i / cols)}, column ${i % cols}`);
  return { data, rows, cols };
}

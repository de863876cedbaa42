// Small dense float64 linear algebra on the host for the surrogate fits (KernelSHAP's and LIME's
// normal equations are M x M with M the number of features; the device has already reduced the
// thousands of model evaluations to these few numbers).

/**
 * Solve A x = b for a symmetric positive semi-definite A (n x n, row-major) by Gaussian elimination
 * with partial pivoting. A singular A (a feature that no sampled coalition separates from another)
 * gets a tiny ridge, 1e-10 of its mean diagonal, so the minimum-norm-like solution comes back
 * instead of NaNs.
 */
export function solveSymmetric(a: ArrayLike<number>, b: ArrayLike<number>, n: number): Float64Array {
  if (n === 0) return new Float64Array(0);
  let tr = 0;
  for (let i = 0; i < n; i++) tr += Math.abs(a[i * n + i]);
  const scale = tr / n || 1;
  for (const ridge of [0, 1e-10 * scale, 1e-6 * scale]) {
    const x = gauss(a, b, n, ridge, 1e-13 * scale);
    if (x) return x;
  }
  throw new Error('solveSymmetric: the system is singular');
}

function gauss(a0: ArrayLike<number>, b0: ArrayLike<number>, n: number, ridge: number, tiny: number): Float64Array | null {
  const a = Float64Array.from(a0 as ArrayLike<number>);
  const b = Float64Array.from(b0 as ArrayLike<number>);
  for (let i = 0; i < n; i++) a[i * n + i] += ridge;
  for (let k = 0; k < n; k++) {
    let piv = k;
    for (let i = k + 1; i < n; i++) if (Math.abs(a[i * n + k]) > Math.abs(a[piv * n + k])) piv = i;
    if (Math.abs(a[piv * n + k]) <= tiny) return null;
    if (piv !== k) {
      for (let j = 0; j < n; j++) [a[k * n + j], a[piv * n + j]] = [a[piv * n + j], a[k * n + j]];
      [b[k], b[piv]] = [b[piv], b[k]];
    }
    for (let i = k + 1; i < n; i++) {
      const f = a[i * n + k] / a[k * n + k];
      if (f === 0) continue;
      for (let j = k; j < n; j++) a[i * n + j] -= f * a[k * n + j];
      b[i] -= f * b[k];
    }
  }
  const x = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) {
    let s = b[i];
    for (let j = i + 1; j < n; j++) s -= a[i * n + j] * x[j];
    x[i] = s / a[i * n + i];
  }
  return x.every(Number.isFinite) ? x : null;
}

/**
 * Lasso on the Gram form by cyclic coordinate descent: minimise
 *   (1/2) b'Gb - g'b + alpha * sum |b_j|
 * (G = X'WX / sum(w), g = X'Wy / sum(w) of centred data: sklearn's Lasso objective with sample weights).
 */
export function lassoGram(G: ArrayLike<number>, g: ArrayLike<number>, n: number, alpha: number, iters = 1000, tol = 1e-10): Float64Array {
  const b = new Float64Array(n);
  for (let it = 0; it < iters; it++) {
    let delta = 0;
    for (let j = 0; j < n; j++) {
      const gjj = G[j * n + j];
      if (gjj <= 0) {
        b[j] = 0;
        continue;
      }
      let r = g[j];
      for (let k = 0; k < n; k++) if (k !== j) r -= G[j * n + k] * b[k];
      const v = Math.sign(r) * Math.max(Math.abs(r) - alpha, 0) / gjj;
      delta = Math.max(delta, Math.abs(v - b[j]));
      b[j] = v || 0; // no -0 from a zero soft threshold
    }
    if (delta < tol) break;
  }
  return b;
}

/** C(n, k) as a float. */
export function binom(n: number, k: number): number {
  if (k < 0 || k > n) return 0;
  let r = 1;
  for (let i = 1; i <= Math.min(k, n - k); i++) r = (r * (n - Math.min(k, n - k) + i)) / i;
  return r;
}

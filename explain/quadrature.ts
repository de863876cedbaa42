// Quadrature rules on [0, 1] for path integrals (Integrated Gradients): nodes and weights.
// Names follow Captum's approximation methods.

export type IntegrationMethod = 'riemann_left' | 'riemann_right' | 'riemann_middle' | 'riemann_trapezoid' | 'gausslegendre';

/** Gauss-Legendre nodes/weights on [-1, 1] by Newton's method on P_n (Numerical Recipes' gauleg). */
function gaussLegendre(n: number): { x: number[]; w: number[] } {
  const x = new Array<number>(n), w = new Array<number>(n);
  const m = Math.floor((n + 1) / 2);
  for (let i = 0; i < m; i++) {
    let z = Math.cos((Math.PI * (i + 0.75)) / (n + 0.5));
    let pp = 0;
    for (let it = 0; it < 100; it++) {
      let p1 = 1, p2 = 0;
      for (let j = 1; j <= n; j++) {
        const p3 = p2;
        p2 = p1;
        p1 = ((2 * j - 1) * z * p2 - (j - 1) * p3) / j;
      }
      pp = (n * (z * p1 - p2)) / (z * z - 1);
      const z1 = z;
      z = z1 - p1 / pp;
      if (Math.abs(z - z1) < 1e-15) break;
    }
    x[i] = -z;
    x[n - 1 - i] = z;
    w[i] = w[n - 1 - i] = 2 / ((1 - z * z) * pp * pp);
  }
  return { x, w };
}

/** Nodes (alphas) in [0, 1] and weights summing to 1. */
export function quadrature(method: IntegrationMethod, steps: number): { alphas: number[]; weights: number[] } {
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`integratedGradients: steps must be a positive integer, got ${steps}`);
  const n = steps;
  switch (method) {
    case 'riemann_left':
      return { alphas: Array.from({ length: n }, (_, i) => i / n), weights: Array(n).fill(1 / n) };
    case 'riemann_right':
      return { alphas: Array.from({ length: n }, (_, i) => (i + 1) / n), weights: Array(n).fill(1 / n) };
    case 'riemann_middle':
      return { alphas: Array.from({ length: n }, (_, i) => (i + 0.5) / n), weights: Array(n).fill(1 / n) };
    case 'riemann_trapezoid': {
      if (n < 2) throw new Error('integratedGradients: riemann_trapezoid needs steps >= 2');
      return {
        alphas: Array.from({ length: n }, (_, i) => i / (n - 1)),
        weights: Array.from({ length: n }, (_, i) => (i === 0 || i === n - 1 ? 0.5 : 1) / (n - 1)),
      };
    }
    case 'gausslegendre': {
      const { x, w } = gaussLegendre(n);
      return { alphas: x.map((v) => (v + 1) / 2), weights: w.map((v) => v / 2) };
    }
    default:
      throw new Error(`integratedGradients: unknown method '${String(method)}' (riemann_left, riemann_right, riemann_middle, riemann_trapezoid, gausslegendre)`);
  }
}

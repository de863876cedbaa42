// Shared test helpers: closeness checks that report the worst element, and seeded test data.
//
// Test data is generated in JS (never by the engine's own Philox), and rounded to float32 so that
// the float32 WebGPU backend and the float64 CPU backend see exactly the same input values.

/**
 * Assert that `actual` matches `expected` elementwise:
 *   |actual[i] - expected[i]| <= max(atol, rtol * |expected[i]|)
 * i.e. with the default atol = rtol, |a - e| <= rtol * max(1, |e|): relative error for values of
 * magnitude above 1, absolute error below. NaN must match NaN, and infinities must match exactly.
 * On failure the message names the number of bad elements and the worst one (index, both values,
 * error, allowed error). `what` prefixes the message.
 */
export function expectClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  rtol: number,
  atol: number = rtol,
  what = '',
): void {
  const pre = what ? `${what}: ` : '';
  if (actual.length !== expected.length) {
    throw new Error(`${pre}length ${actual.length} differs from the expected ${expected.length}`);
  }
  let bad = 0;
  let worst = -1;
  let worstRatio = -1;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    let ratio: number;
    if (Number.isNaN(e) || !Number.isFinite(e)) {
      ratio = Object.is(a, e) || (Number.isNaN(a) && Number.isNaN(e)) ? 0 : Infinity;
    } else if (atol === 0 && rtol === 0) {
      ratio = Object.is(a, e) ? 0 : Infinity; // bit-exact: +0 and -0 differ
    } else if (!Number.isFinite(a)) {
      ratio = Infinity; // NaN or inf where a finite value was expected (e.g. a poisoned, unwritten output)
    } else {
      ratio = Math.abs(a - e) / Math.max(atol, rtol * Math.abs(e));
    }
    if (ratio > 1) bad++;
    if (ratio > worstRatio) {
      worstRatio = ratio;
      worst = i;
    }
  }
  if (bad > 0) {
    const a = actual[worst];
    const e = expected[worst];
    const allowed = Math.max(atol, rtol * Math.abs(e));
    throw new Error(
      `${pre}${bad} of ${expected.length} elements differ; worst at index ${worst}: got ${a}, expected ${e} ` +
        `(|diff| ${Math.abs(a - e)}, allowed ${allowed} with rtol ${rtol}, atol ${atol})`,
    );
  }
}


/** mulberry32: a small deterministic generator of uniform numbers in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let r = Math.imul(a ^ (a >>> 15), 1 | a);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` float32-representable values uniform in [lo, hi). */
export function randArray(next: () => number, n: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * next();
  return out;
}

/** `n` integers uniform in [lo, hi] (as float32 values): data with ties, indices. */
export function randInts(next: () => number, n: number, lo: number, hi: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + Math.floor((hi - lo + 1) * next());
  return out;
}

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

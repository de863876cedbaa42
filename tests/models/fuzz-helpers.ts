// What the fuzz-*.test.ts files share: byte-string mutations (flips, truncations, insertions,
// deletions, overwrites with boundary values) as fast-check arbitraries, and the outcome check of
// one case (a value, or an Error naming the source, within a time limit; never a crash or hang).
import fc from 'fast-check';

/** One mutation of a byte string. */
export type Mutation =
  | { k: 'flip'; at: number; v: number }
  | { k: 'truncate'; at: number }
  | { k: 'insert'; at: number; bytes: Uint8Array }
  | { k: 'delete'; at: number; n: number }
  | { k: 'word'; at: number; size: 1 | 2 | 4 | 8; v: bigint; le: boolean };

/** Boundary values for length, size and offset fields. */
export const INTERESTING = [0n, 1n, 2n, 7n, 8n, 0x7fn, 0x80n, 0xffn, 0x7fffn, 0xffffn, 0x7fffffffn, 0x80000000n, 0xffffffffn, 2n ** 53n, 2n ** 63n - 1n, 2n ** 64n - 1n];

export const mutationArb = (): fc.Arbitrary<Mutation> =>
  fc.oneof(
    fc.record({ k: fc.constant('flip' as const), at: fc.nat(), v: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ k: fc.constant('truncate' as const), at: fc.nat() }),
    fc.record({ k: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
    fc.record({ k: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 64 }) }),
    fc.record({
      k: fc.constant('word' as const),
      at: fc.nat(),
      size: fc.constantFrom(1 as const, 2 as const, 4 as const, 8 as const),
      v: fc.oneof(fc.constantFrom(...INTERESTING), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })),
      le: fc.boolean(),
    }),
  );

export function mutate(src: Uint8Array, ms: Mutation[]): Uint8Array {
  let b = src.slice();
  for (const m of ms) {
    const at = b.length ? m.at % (b.length + 1) : 0;
    if (m.k === 'flip') {
      if (b.length) b[at % b.length] = m.v;
    } else if (m.k === 'truncate') b = b.slice(0, at);
    else if (m.k === 'insert') {
      const o = new Uint8Array(b.length + m.bytes.length);
      o.set(b.subarray(0, at));
      o.set(m.bytes, at);
      o.set(b.subarray(at), at + m.bytes.length);
      b = o;
    } else if (m.k === 'delete') {
      const o = new Uint8Array(Math.max(at, b.length - m.n));
      o.set(b.subarray(0, at));
      o.set(b.subarray(at + m.n), at);
      b = o;
    }
    else {
      const mask = (1n << BigInt(8 * m.size)) - 1n;
      const v = m.v & mask;
      for (let i = 0; i < m.size && at + i < b.length; i++) b[at + i] = Number((v >> BigInt(8 * (m.le ? i : m.size - 1 - i))) & 0xffn);
    }
  }
  return b;
}

/** Outcome of one case: the value, or the Error thrown; anything else thrown, or a slow case, fails. */
export function outcome<T>(fn: () => T, source: string, maxMs: number): { ok: true; value: T } | { ok: false; error: Error } {
  const t0 = performance.now();
  let r: { ok: true; value: T } | { ok: false; error: Error };
  try {
    r = { ok: true, value: fn() };
  } catch (e) {
    if (!(e instanceof Error)) throw new Error(`threw a non-Error: ${String(e)}`);
    if (e instanceof RangeError && /call stack|allocation failed|Invalid typed array length|Array buffer/.test(e.message)) throw new Error(`crash-like RangeError: ${e.message}`);
    if (!e.message.includes(source)) throw new Error(`the error does not name the source '${source}': ${e.message}`);
    r = { ok: false, error: e };
  }
  const ms = performance.now() - t0;
  if (ms > maxMs) throw new Error(`a case took ${ms.toFixed(0)} ms (limit ${maxMs} ms)`);
  return r;
}

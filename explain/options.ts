// Options the caller passes are honoured or rejected. TypeScript catches a misspelt option at
// compile time, but JavaScript callers (and `as any` casts, and options built from CLI flags or
// JSON) reach the explainers unchecked, where `{ stpes: 8 }` would silently run with the default
// steps. Each explainer lists its option keys once with `optionKeys<Options>()(...)`: the compiler
// refuses the list when it misses a key of the interface, so the runtime check cannot drift from
// the type.
import { Tensor } from '../engine/index.ts';

/** The extra argument `optionKeys` demands when the list misses a key (shows the missing names in the error). */
type MissingKeys<T, K extends readonly PropertyKey[]> = [Exclude<keyof T, K[number]>] extends [never] ? [] : [missing: Exclude<keyof T, K[number]>];

/**
 * The option keys of T as a runtime list, checked for completeness at compile time:
 *   const KEYS = optionKeys<SaliencyOptions>()(['target', 'rules', 'abs']);
 * A key missing from the list is a type error ("Expected 2 arguments") naming the missing key.
 */
export function optionKeys<T>() {
  return <const K extends readonly (keyof T & string)[]>(keys: K, ..._complete: MissingKeys<T, K>): readonly string[] => keys;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v instanceof Map) return `a Map of ${v.size}`;
  if (v instanceof Tensor) return `a tensor [${v.shape.join(', ')}]`;
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'object') return `an instance of ${(v as object).constructor?.name ?? 'a class'} (pass a plain object)`;
  return `${typeof v} ${String(v)}`;
}

/** Edit distance with adjacent transpositions ('stpes' is one edit from 'steps'), case-blind; for "did you mean". */
function distance(a: string, b: string): number {
  a = a.toLowerCase();
  b = b.toLowerCase();
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/**
 * Throw when `opts` is not a plain options object or has a key outside `known`; the message names
 * the function, the unknown option, the closest known one and the full list. `undefined` is fine
 * (every option has a default), and so is any key whose value is `undefined`: it is absent, and
 * wrappers that forward `{ ...opts, baseline: maybe }` must not trip the check.
 */
export function checkOptions(op: string, opts: unknown, known: readonly string[]): void {
  if (opts === undefined) return;
  const proto = opts !== null && typeof opts === 'object' ? Object.getPrototypeOf(opts) : undefined;
  // a Map or a class instance would pass a key check with nothing in it (its entries are not own keys)
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts) || opts instanceof Tensor || (proto !== Object.prototype && proto !== null)) {
    throw new Error(`${op}: options must be an object ({ ${known.slice(0, 3).join(', ')}, ... }), got ${describe(opts)}`);
  }
  for (const [k, v] of Object.entries(opts)) {
    if (v === undefined || known.includes(k)) continue;
    let best = '';
    let bestD = Infinity;
    for (const c of known) {
      const dd = distance(k, c);
      if (dd < bestD) [best, bestD] = [c, dd];
    }
    const hint = bestD <= Math.max(1, Math.floor(k.length / 3)) ? ` (did you mean '${best}'?)` : '';
    throw new Error(`${op}: unknown option '${k}'${hint}; its options are ${known.map((c) => `'${c}'`).join(', ')}`);
  }
}

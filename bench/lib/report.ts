// Timing statistics, plain-text tables and the JSON results file every benchmark writes.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Time `step` (which must end with a read-back or sync, so the GPU work is inside the interval):
 * `warmup` untimed calls, then `reps` timed ones. Returns the wall-clock milliseconds of each rep.
 */
export async function timeReps(step: () => Promise<void>, warmup: number, reps: number): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await step();
  const ms: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await step();
    ms.push(performance.now() - t0);
  }
  return ms;
}

const NUMERIC = /^[-+]?(\d[\d.,]*(e[-+]?\d+)?x?|-)$/i;

/** Columns separated by two spaces; numbers (and '-') right-aligned, text left-aligned. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => NUMERIC.test(r[i] ?? '')));
  const line = (r: readonly string[]) => r.map((c, i) => (numeric[i] ? c.padStart(w[i]) : c.padEnd(w[i]))).join('  ').trimEnd();
  return [line(header), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

export function fmt(x: number | undefined, digits = 3): string {
  if (x === undefined || !Number.isFinite(x)) return '-';
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1000) return x.toFixed(0);
  if (a >= 100) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toPrecision(digits);
}

/**
 * Write `bench/results/<name>.json` (under the current directory, normally the repository root),
 * or under `dir` when given (e.g. $OUT on a lent machine). Returns the path.
 */
export function writeResults(name: string, data: unknown, dir?: string): string {
  const d = resolve(dir ?? join(process.cwd(), 'bench', 'results'));
  mkdirSync(d, { recursive: true });
  const path = join(d, `${name}.json`);
  writeFileSync(path, JSON.stringify(data, null, 2) + '\n');
  return path;
}

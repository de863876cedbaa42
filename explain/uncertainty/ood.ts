// Synthetic out-of-distribution inputs made from in-distribution ones, for uncertainty reports
// when no second data set is at hand. On the host, seeded (mulberry32), the same on every machine.
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { mulberry32 } from '../../models/data/random.ts';
import { checkInput, positiveInt } from '../common.ts';
import { checkOptions, optionKeys } from '../options.ts';

export interface OodOptions {
  /**
   * - 'box-noise' (default): each element uniform in mean +- `width` sd of that element over the
   *   reference items (for tabular data: the box a Standardize layer maps to [-width, width]);
   * - 'uniform': each element uniform in [min, max] of the reference's values overall (image noise);
   * - 'shuffled': each element copied from a random reference item (realistic marginals, no joint
   *   structure between features).
   */
  kind?: 'box-noise' | 'uniform' | 'shuffled';
  /** Items to make (default: as many as the reference has). */
  n?: number;
  seed?: number;
  /** Half-width of the 'box-noise' box in standard deviations (default 3). */
  width?: number;
}

const OOD_KEYS = optionKeys<OodOptions>()(['kind', 'n', 'seed', 'width']);

/** Out-of-distribution items [n, ...item] shaped like the reference's, on its backend. */
export async function oodInputs(reference: Tensor, opts: OodOptions = {}): Promise<Tensor> {
  const op = 'oodInputs';
  checkOptions(op, opts, OOD_KEYS);
  checkInput(op, reference);
  const kind = opts.kind ?? 'box-noise';
  if (!['box-noise', 'uniform', 'shuffled'].includes(kind)) throw new Error(`${op}: kind must be 'box-noise', 'uniform' or 'shuffled', got ${String(opts.kind)}`);
  const N = reference.shape[0], item = reference.shape.slice(1);
  const F = item.reduce((a, b) => a * b, 1);
  const n = positiveInt(op, 'n', opts.n, N);
  const width = opts.width ?? 3;
  if (!(width > 0 && Number.isFinite(width))) throw new Error(`${op}: width must be a finite number > 0, got ${opts.width}`);
  if (opts.seed !== undefined && !(Number.isInteger(opts.seed) && opts.seed >= 0)) throw new Error(`${op}: seed must be a non-negative integer, got ${String(opts.seed)}`);
  const rnd = mulberry32(opts.seed ?? 0);
  const x = await reference.data();
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) throw new Error(`${op}: the reference holds a non-finite value (${x[i]}) at index ${i}`);
  const out = new Float32Array(n * F);
  if (kind === 'shuffled') {
    for (let i = 0; i < n; i++) for (let j = 0; j < F; j++) out[i * F + j] = x[Math.floor(rnd() * N) * F + j];
  } else if (kind === 'uniform') {
    let lo = Infinity, hi = -Infinity;
    for (const v of x) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    for (let i = 0; i < out.length; i++) out[i] = lo + (hi - lo) * rnd();
  } else {
    const mu = new Float64Array(F), sd = new Float64Array(F);
    for (let i = 0; i < N; i++) for (let j = 0; j < F; j++) mu[j] += x[i * F + j] / N;
    for (let i = 0; i < N; i++) for (let j = 0; j < F; j++) sd[j] += (x[i * F + j] - mu[j]) ** 2 / N;
    for (let i = 0; i < n; i++) for (let j = 0; j < F; j++) out[i * F + j] = mu[j] + Math.sqrt(sd[j]) * width * (2 * rnd() - 1);
  }
  return bl.tensor(out, [n, ...item], reference.backend);
}

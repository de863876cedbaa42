// Whole data sets in one call: explain items [start, end) of a host array a block at a time,
// handing each block's attributions to `onBlock` as soon as it is read back, so that memory is
// bounded by one block (the engine's chunks bound it within a block) whatever the data set's
// size. Browser-safe; the command line's resumable .npy writer (cli/perturbation.ts) sits on top.
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { fmtShape } from '../../engine/shape.ts';
import type { Progress } from './engine.ts';
import { checkOptions, optionKeys } from '../options.ts';

export interface DatasetOptions {
  /** Items per explainer call (default 16). */
  block?: number;
  /** The range of items to explain (default all): e.g. one shard's block, or where a rerun resumes. */
  start?: number;
  end?: number;
  /** Called with each block's attributions (row-major, like its inputs) and the items they belong to. */
  onBlock(values: Float32Array | Float64Array, start: number, end: number): void | Promise<void>;
  /** Progress over the items, fractional within a block (fed by the explainer's onProgress). */
  onProgress?: (itemsDone: number, total: number) => void;
}

const DATASET_KEYS = optionKeys<DatasetOptions>()(['block', 'start', 'end', 'onBlock', 'onProgress']);

/**
 * `explain(x, start, end, onProgress)` explains one block (a tensor [k, ...item] of items
 * [start, end)) and returns attributions shaped like it; per-item options (targets, baselines)
 * are the caller's to slice by `start`/`end`.
 */
export async function explainDataset(
  explain: (x: Tensor, start: number, end: number, onProgress: (p: Progress) => void) => Promise<Tensor>,
  data: ArrayLike<number>,
  shape: readonly number[],
  opts: DatasetOptions,
): Promise<void> {
  const op = 'explainDataset';
  checkOptions(op, opts, DATASET_KEYS);
  if (typeof explain !== 'function') throw new Error(`${op}: explain must be a function (x, start, end, onProgress) => Promise<Tensor>, got ${typeof explain}`);
  if (typeof opts?.onBlock !== 'function') throw new Error(`${op}: option 'onBlock' (values, start, end) => void is required, got ${typeof opts?.onBlock}`);
  if (opts.onProgress !== undefined && typeof opts.onProgress !== 'function') throw new Error(`${op}: option 'onProgress' must be a function, got ${typeof opts.onProgress}`);
  if (!Array.isArray(shape) || shape.length < 1 || shape.some((d) => !Number.isInteger(d) || d < 0)) throw new Error(`${op}: shape must be [N, ...item] of non-negative integers, got ${JSON.stringify(shape)}`);
  const n = shape[0], item = shape.slice(1), per = item.reduce((a, b) => a * b, 1);
  if (data.length !== n * per) throw new Error(`${op}: ${data.length} values for shape ${fmtShape(shape)}`);
  const block = opts.block ?? 16, start = opts.start ?? 0, end = opts.end ?? n;
  if (!Number.isInteger(block) || block < 1) throw new Error(`${op}: option 'block' must be a positive integer, got ${String(opts.block)}`);
  if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start <= end && end <= n)) throw new Error(`${op}: items [${start}, ${end}) are not within the ${n} items`);
  const slice = (a: number, b: number) => (ArrayBuffer.isView(data) ? (data as Float32Array).subarray(a * per, b * per) : Array.prototype.slice.call(data, a * per, b * per));
  for (let a = start; a < end; a += block) {
    const b = Math.min(end, a + block), k = b - a;
    const x = bl.tensor(slice(a, b) as ArrayLike<number>, [k, ...item]);
    try {
      const r = await explain(x, a, b, (p) => opts.onProgress?.(a - start + (k * p.done) / Math.max(1, p.total), end - start));
      if (r.size !== k * per) {
        r.dispose();
        throw new Error(`${op}: the explainer returned ${fmtShape(r.shape)} for a block of ${k} items ${fmtShape([k, ...item])}; only input-shaped results stream`);
      }
      const v = await r.data();
      r.dispose();
      await opts.onBlock(v, a, b);
      opts.onProgress?.(b - start, end - start);
    } finally {
      x.dispose();
    }
  }
}

// The perturbation methods on the command line (Node-only): option parsing (--features,
// --window, --stride, --background, --shard), a terminal progress bar (cli-progress), and
// whole-data-set streaming: items are explained a block at a time and their rows written into
// the output .npy as they finish, with a sidecar OUT.npy.progress.json recording how many are
// done, so a rerun resumes where the last one stopped and --shard K/N splits the work over
// machines (shard K of N takes items [floor((K-1) T / N), floor(K T / N)) of the T inputs).
import { closeSync, existsSync, ftruncateSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import cliProgress from 'cli-progress';
import * as bl from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import * as ex from '../explain/index.ts';
import { parseNpy } from '../models/io/npy.ts';
import { UsageError } from './args.ts';
import { readInputFile } from './input.ts';

/** What the perturbation methods read from the command line. */
export interface PerturbationCtx {
  features?: ex.Features;
  window?: number;
  stride?: number;
  background?: Tensor;
  /** --samples as given (each method has its own default when absent). */
  samples?: number;
  onProgress?: (p: ex.Progress) => void;
}

export function parseFeatures(v: string | undefined): ex.Features | undefined {
  if (v === undefined) return undefined;
  let m: RegExpMatchArray | null;
  if ((m = /^grid:(\d+)$/.exec(v)) && Number(m[1]) >= 1) return ex.grid(Number(m[1]));
  if ((m = /^slic:(\d+)$/.exec(v)) && Number(m[1]) >= 1) return ex.slic(Number(m[1]));
  if (v === 'columns') return ex.columns();
  if (/\.npy$/i.test(v)) {
    const a = parseNpy(readInputFile(v, '--features'), v);
    return { data: a.data, shape: a.shape };
  }
  throw new UsageError(`option '--features' expects grid:N (cells of N x N pixels), slic:N (about N superpixels), columns, or an integer mask MASK.npy; got '${v}'`);
}

export function parseShard(v: string | undefined): { k: number; n: number } | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+)\/(\d+)$/.exec(v);
  const k = m ? Number(m[1]) : NaN, n = m ? Number(m[2]) : NaN;
  if (!m || n < 1 || k < 1 || k > n) throw new UsageError(`option '--shard' expects K/N with 1 <= K <= N (this machine's share of N), got '${v}'`);
  return { k, n };
}

export function shardRange(total: number, s: { k: number; n: number } | undefined): [number, number] {
  if (!s) return [0, total];
  return [Math.floor(((s.k - 1) * total) / s.n), Math.floor((s.k * total) / s.n)];
}

/** --background B.npy read and checked on the host (rows shaped like one input); a tensor comes later. */
export function readBackground(v: string | undefined, item: readonly number[]): { data: Float32Array; shape: number[] } | undefined {
  if (v === undefined) return undefined;
  const a = parseNpy(readInputFile(v, '--background'), v);
  const shape = a.shape.length === item.length ? [1, ...a.shape] : a.shape;
  if (shape.length !== item.length + 1 || shape.slice(1).join() !== item.join()) {
    throw new UsageError(`option '--background' must hold rows shaped like one input [B, ${item.join(', ')}], got [${a.shape.join(', ')}] in ${v}`);
  }
  return { data: a.data, shape };
}

type Run = (m: ex.Model, x: Tensor, c: { target: ex.Target; baseline?: number | Tensor; seed: number; steps: number; stepsGiven: boolean; p: PerturbationCtx }) => Promise<Tensor>;

const bgOrBaseline = (c: Parameters<Run>[2]) => (c.p.background ? { background: c.p.background } : { baseline: c.baseline });

/** A terminal progress bar of model evaluations for one call when nobody else reports progress. */
const withBar = (name: string, run: Run): Run => async (m, x, c) => {
  if (c.p.onProgress || !process.stderr.isTTY) return run(m, x, c);
  let bar: cliProgress.SingleBar | undefined;
  const onProgress = (p: ex.Progress) => {
    if (!bar) {
      bar = new cliProgress.SingleBar({ format: `${name} [{bar}] {percentage}% | {value}/{total} model evaluations | ETA {eta_formatted}`, stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic);
      bar.start(p.total, 0);
    }
    bar.setTotal(p.total);
    bar.update(p.done);
  };
  try {
    return await run(m, x, { ...c, p: { ...c.p, onProgress } });
  } finally {
    bar?.stop();
  }
};

/** The perturbation methods by their command-line names (all return input-shaped tensors). */
export const PERTURBATION_METHODS: Record<string, Run> = {
  occlusion: (m, x, c) => ex.occlusion(m, x, { target: c.target, baseline: c.baseline, window: c.p.window, stride: c.p.stride, onProgress: c.p.onProgress }),
  'feature-ablation': (m, x, c) => ex.featureAblation(m, x, { target: c.target, features: c.p.features, ...bgOrBaseline(c), onProgress: c.p.onProgress }),
  'feature-permutation': (m, x, c) => ex.featurePermutation(m, x, { target: c.target, features: c.p.features, seed: c.seed, onProgress: c.p.onProgress }),
  'prediction-difference': (m, x, c) => {
    if (!c.p.background) throw new UsageError("method 'prediction-difference' needs --background B.npy (rows to sample the windows' values from)");
    return ex.predictionDifference(m, x, { target: c.target, background: c.p.background, samples: c.p.samples === undefined ? undefined : Math.min(c.p.samples, c.p.background.shape[0]), window: c.p.window, stride: c.p.stride, seed: c.seed, onProgress: c.p.onProgress });
  },
  lime: (m, x, c) => ex.lime(m, x, { target: c.target, features: c.p.features, ...bgOrBaseline(c), samples: c.p.samples, seed: c.seed, onProgress: c.p.onProgress }),
  'kernel-shap': (m, x, c) => ex.kernelShap(m, x, { target: c.target, features: c.p.features, ...bgOrBaseline(c), samples: c.p.samples, seed: c.seed, onProgress: c.p.onProgress }),
  'shapley-sampling': (m, x, c) => ex.shapleySampling(m, x, { target: c.target, features: c.p.features, ...bgOrBaseline(c), samples: c.p.samples, seed: c.seed, onProgress: c.p.onProgress }),
  'shapley-exact': (m, x, c) => ex.shapleyExact(m, x, { target: c.target, features: c.p.features, ...bgOrBaseline(c), onProgress: c.p.onProgress }),
  'meaningful-perturbation': (m, x, c) => ex.meaningfulPerturbation(m, x, { target: c.target, baseline: c.baseline instanceof bl.Tensor || typeof c.baseline === 'number' ? c.baseline : 'blur', steps: c.stepsGiven ? c.steps : undefined }),
  'deeplift-shap': (m, x, c) => {
    // --baseline B.npy with several rows: each item is explained against every row (averaged).
    const b = c.p.background ?? (c.baseline instanceof bl.Tensor ? c.baseline : bl.full([1, ...x.shape.slice(1)], c.baseline ?? 0));
    const rows = b.rank === x.rank ? b : bl.reshape(b, [1, ...b.shape]);
    return ex.deepLiftShap(m, x, { target: c.target, baselines: rows });
  },
};
for (const [name, run] of Object.entries(PERTURBATION_METHODS)) PERTURBATION_METHODS[name] = withBar(name, run);

/** A terminal progress bar on stderr (nothing when stderr is not a terminal). */
export function progressBar(label: string, total: number): { update(v: number): void; stop(): void } {
  if (!process.stderr.isTTY) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {percentage}% | {value}/{total} items | ETA {eta_formatted}`, stream: process.stderr, hideCursor: true, etaBuffer: 20 },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  return { update: (v) => bar.update(Math.round(v * 100) / 100), stop: () => bar.stop() };
}

/** The .npy header for float32 data of `shape` (format 1.0, padded to 64 bytes). */
export function npyHeader(shape: readonly number[]): Uint8Array {
  const shapeStr = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeStr}, }`;
  header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  return out;
}

interface Sidecar {
  version: 1;
  method: string;
  /** Everything that changes the numbers: a rerun with other options starts again. */
  key: string;
  shape: number[];
  done: number;
}

/**
 * Explain items [lo, hi) of `data` (shape [T, ...item]) block by block and write their rows to
 * `file` as they finish; resume from `file`.progress.json when it matches. Returns how many items
 * were skipped as already done.
 */
export async function streamToNpy(opts: {
  file: string;
  method: string;
  key: string;
  data: Float32Array;
  shape: readonly number[];
  lo: number;
  hi: number;
  block: number;
  explain: (x: Tensor, lo: number, hi: number, onProgress: (p: ex.Progress) => void) => Promise<Tensor>;
  stderr: (s: string) => void;
}): Promise<number> {
  const { file, method, data, shape, lo, hi } = opts;
  const item = shape.slice(1), per = item.reduce((a, b) => a * b, 1);
  const total = hi - lo;
  const outShape = [total, ...item];
  const header = npyHeader(outShape);
  const sidecarPath = `${file}.progress.json`;
  let done = 0;
  if (existsSync(sidecarPath) && existsSync(file)) {
    try {
      const s = JSON.parse(readFileSync(sidecarPath, 'utf8')) as Sidecar;
      if (s.version === 1 && s.method === method && s.key === opts.key && s.shape.join() === outShape.join()) done = Math.min(s.done, total);
    } catch {
      done = 0;
    }
  }
  const skipped = done;
  if (skipped) opts.stderr(`${method}: resuming ${file} after ${done} of ${total} items (${sidecarPath})\n`);
  const fd = openSync(file, done ? 'r+' : 'w');
  const save = (d: number) => {
    const tmp = `${sidecarPath}.tmp`;
    const body: Sidecar = { version: 1, method, key: opts.key, shape: outShape, done: d };
    const f = openSync(tmp, 'w');
    writeSync(f, JSON.stringify(body) + '\n');
    closeSync(f);
    renameSync(tmp, sidecarPath);
  };
  const bar = progressBar(method, total);
  try {
    if (!done) {
      ftruncateSync(fd, 0);
      writeSync(fd, header, 0, header.length, 0);
      save(0);
    } else ftruncateSync(fd, header.length + done * per * 4);
    bar.update(done);
    await ex.explainDataset((x, a, b, onProgress) => opts.explain(x, lo + a, lo + b, onProgress), data.subarray(lo * per, hi * per), outShape, {
      block: opts.block,
      start: done,
      onProgress: (v) => bar.update(v),
      onBlock: (vals, a, b) => {
        const k = b - a;
        const bytes = new Uint8Array(k * per * 4);
        const dv = new DataView(bytes.buffer);
        for (let i = 0; i < k * per; i++) dv.setFloat32(i * 4, vals[i], true);
        writeSync(fd, bytes, 0, bytes.length, header.length + a * per * 4);
        save(b);
      },
    });
  } finally {
    bar.stop();
    closeSync(fd);
  }
  return skipped;
}

// ---- per-feature values as JSON lines (--out OUT.jsonl) ----

type DetailRun = (m: ex.Model, x: Tensor, c: Parameters<Run>[2]) => Promise<Record<string, unknown>[]>;

function shapleyRows(d: ex.ShapleyDetails): Record<string, unknown>[] {
  d.attributions.dispose();
  // NaN standard errors (too few samples to estimate one) become null in JSON.
  return d.values.map((v, i) => ({ features: (d.features.length === 1 ? d.features[0] : d.features[i]).ids, values: Array.from(v), standardError: Array.from(d.standardError[i]), baseValue: d.baseValue[i], prediction: d.prediction[i], exact: d.exact }));
}

/** Methods whose per-feature results can be written as one JSON object per input item. */
export const DETAIL_METHODS: Record<string, DetailRun> = {
  'kernel-shap': async (m, x, c) => shapleyRows(await ex.kernelShap(m, x, { target: c.target, features: c.p.features, ...bgOrBaseline(c), samples: c.p.samples, seed: c.seed, onProgress: c.p.onProgress, returnDetails: true })),
  'shapley-sampling': async (m, x, c) => shapleyRows(await ex.shapleySampling(m, x, { target: c.target, features: c.p.features, ...bgOrBaseline(c), samples: c.p.samples, seed: c.seed, onProgress: c.p.onProgress, returnDetails: true })),
  'shapley-exact': async (m, x, c) => shapleyRows(await ex.shapleyExact(m, x, { target: c.target, features: c.p.features, ...bgOrBaseline(c), onProgress: c.p.onProgress, returnDetails: true })),
  lime: async (m, x, c) => {
    const d = await ex.lime(m, x, { target: c.target, features: c.p.features, ...bgOrBaseline(c), samples: c.p.samples, seed: c.seed, onProgress: c.p.onProgress, returnDetails: true });
    d.attributions.dispose();
    return d.coefficients.map((v, i) => ({ features: (d.features.length === 1 ? d.features[0] : d.features[i]).ids, coefficients: Array.from(v), intercept: d.intercept[i], r2: d.r2[i] }));
  },
};

/**
 * Explain items [0, n) of `data` block by block and append one JSON line per item to `file`
 * ({"index": i, ...the method's per-feature results}), resumable like streamToNpy (the sidecar
 * also records the byte length written). Returns how many items were skipped as already done.
 */
export async function streamToJsonl(opts: {
  file: string;
  method: string;
  key: string;
  data: Float32Array;
  shape: readonly number[];
  /** Index of item 0 in the whole input (a shard's offset), written into each line. */
  offset: number;
  block: number;
  explain: (x: Tensor, lo: number, hi: number, onProgress: (p: ex.Progress) => void) => Promise<Record<string, unknown>[]>;
  stderr: (s: string) => void;
}): Promise<number> {
  const { file, method, data, shape } = opts;
  const n = shape[0], item = shape.slice(1), per = item.reduce((a, b) => a * b, 1);
  const sidecarPath = `${file}.progress.json`;
  let done = 0, bytes = 0;
  if (existsSync(sidecarPath) && existsSync(file)) {
    try {
      const s = JSON.parse(readFileSync(sidecarPath, 'utf8')) as Sidecar & { bytes?: number };
      if (s.version === 1 && s.method === method && s.key === opts.key && s.shape.join() === [n].join() && typeof s.bytes === 'number') [done, bytes] = [Math.min(s.done, n), s.bytes];
    } catch {
      done = 0;
    }
  }
  const skipped = done;
  if (skipped) opts.stderr(`${method}: resuming ${file} after ${done} of ${n} items (${sidecarPath})\n`);
  const fd = openSync(file, done ? 'r+' : 'w');
  const save = () => {
    const tmp = `${sidecarPath}.tmp`;
    const f = openSync(tmp, 'w');
    writeSync(f, JSON.stringify({ version: 1, method, key: opts.key, shape: [n], done, bytes }) + '\n');
    closeSync(f);
    renameSync(tmp, sidecarPath);
  };
  const bar = progressBar(method, n);
  try {
    ftruncateSync(fd, bytes);
    if (!done) save();
    bar.update(done);
    while (done < n) {
      const k = Math.min(opts.block, n - done);
      const x = bl.tensor(data.subarray(done * per, (done + k) * per), [k, ...item]);
      const base = done;
      let rows: Record<string, unknown>[];
      try {
        rows = await opts.explain(x, done, done + k, (p) => bar.update(base + (k * p.done) / Math.max(1, p.total)));
      } finally {
        x.dispose();
      }
      const text = new TextEncoder().encode(rows.map((r, i) => JSON.stringify({ index: opts.offset + done + i, ...r })).join('\n') + '\n');
      writeSync(fd, text, 0, text.length, bytes);
      bytes += text.length;
      done += k;
      save();
      bar.update(done);
    }
  } finally {
    bar.stop();
    closeSync(fd);
  }
  return skipped;
}

// The batched perturbation engine that every model-agnostic explainer shares.
//
// A perturbation explainer asks one question many times: what does the model say when some
// parts of the input are replaced by reference values? Here that is one computation:
//
//   batch[n, c, b] = base[n|0, b] + keep[c] * (x[n] - base[n|0, b])       (all on the device)
//   v[n, c]        = mean_b score(model(batch[n, c, b]))                  (target per item)
//   acc[n, :]     += v[n, chunk] @ R[chunk, :]                             (on the device)
//
// where `keep[c]` is a per-element mask in [0, 1] (1: keep the input, 0: use the reference) for
// perturbation c, `base` is either one reference per item (a constant, a blurred copy, another
// item) or a background data set of B rows that is averaged over (SHAP's interventional
// expectation, KernelExplainer's background), and R is a host matrix that each method supplies
// (window indicators for occlusion, Shapley weights, the normal equations of a weighted least
// squares fit). The perturbations stream through in chunks sized from a memory budget, each chunk
// one model call and one submit; results stay on the device and are read back once by the
// method, as N x K reduced numbers rather than N x C raw outputs, so memory stays flat when the
// number of samples grows. That is the difference to SHAP's KernelExplainer and Captum's
// KernelShap, which evaluate a few perturbations per call or build every perturbed input at once.
//
// Models: a backlight Module (or graph function `(x: Tensor) => Tensor`), or a black box
// `(batch: Float32Array, shape: number[]) => Promise<Float32Array>` wrapped with `blackBox()`
// (an onnxruntime session, a model served elsewhere): the engine still builds the batches on the
// device and reduces there; only the batch and its outputs cross to the host, once per chunk.
//
// Browser-safe: no Node built-ins here (the terminal progress bar lives in cli/).
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { fmtShape } from '../../engine/shape.ts';
import { checkFinite, forwardOf, resolveTarget, scores, type Model, type Target } from '../common.ts';

/** A model outside the engine: a batch of inputs (row-major float32) in, its outputs out. */
export type BlackBoxFn = (batch: Float32Array, shape: number[]) => Promise<Float32Array>;

/** A black-box model, made by `blackBox(fn)` (so it cannot be mistaken for a graph function). */
export interface BlackBoxModel {
  readonly kind: 'black-box';
  readonly fn: BlackBoxFn;
}

/**
 * Wrap a batched function of host arrays as a model for the perturbation explainers. It gets
 * `batch` (row-major float32, shape `[rows, ...item]`) and must resolve to `rows * K` outputs
 * (K outputs per row, e.g. logits), row-major.
 */
export function blackBox(fn: BlackBoxFn): BlackBoxModel {
  if (typeof fn !== 'function') throw new Error(`blackBox: expected a function (batch: Float32Array, shape: number[]) => Promise<Float32Array>, got ${typeof fn}`);
  return { kind: 'black-box', fn };
}

/** What the perturbation explainers accept as a model. */
export type PerturbationModel = Model | BlackBoxModel;

export const isBlackBox = (m: unknown): m is BlackBoxModel =>
  typeof m === 'object' && m !== null && (m as BlackBoxModel).kind === 'black-box' && typeof (m as BlackBoxModel).fn === 'function';

export interface Progress {
  /** The explainer reporting. */
  method: string;
  /** Model evaluations (rows of perturbed input) done so far, and in all. */
  done: number;
  total: number;
}

/** Options every perturbation explainer takes. */
export interface EngineOptions {
  target?: Target;
  /** Largest number of rows in one model call. Default: from `memoryBudget`, at most 4096. */
  batchSize?: number;
  /**
   * Bytes the perturbed inputs of one chunk may take, with room for the model's activations
   * (estimated at 16x the input row; default 256 MiB). Sets the chunk size unless `batchSize` does.
   */
  memoryBudget?: number;
  /** Called after each chunk has finished on the device (e.g. a browser progress bar). */
  onProgress?: (p: Progress) => void;
}

/** One list of perturbations, each a keep-mask over the P elements of an item. */
export interface Perturbations {
  /** How many. */
  count: number;
  /** Keep masks of perturbations [start, start + n) as a device tensor [n, P] (1 keeps x). */
  keep(start: number, n: number): Tensor;
}

/** How a method reduces the scores v [n, C] on the device. */
export interface Reduction {
  /** Columns K of R. */
  columns: number;
  /** Rows [start, start + n) of R: row-major host values [n, K], or a device tensor [n, K]. */
  rows(start: number, n: number): ArrayLike<number> | Tensor;
  /** Columns K2 of R2 (applied to v * v, appended after R's columns). */
  squaredColumns?: number;
  squaredRows?(start: number, n: number): ArrayLike<number>;
}

const ACTIVATION_FACTOR = 16;
const MAX_BATCH = 4096;
const DEFAULT_BUDGET = 256 * 2 ** 20;

/**
 * Rows of `p` values each in one model call: `batchSize`, else what `memoryBudget` (default
 * 256 MiB) allows for activations about ACTIVATION_FACTOR times the input, at most 4096.
 * Checks both options, naming `op`.
 */
export function rowsPerModelCall(op: string, opts: Pick<EngineOptions, 'batchSize' | 'memoryBudget'>, p: number): number {
  if (opts.batchSize !== undefined && (!Number.isInteger(opts.batchSize) || opts.batchSize < 1)) {
    throw new Error(`${op}: option 'batchSize' must be a positive integer, got ${String(opts.batchSize)}`);
  }
  const budget = opts.memoryBudget ?? DEFAULT_BUDGET;
  if (!(typeof budget === 'number' && budget > 0)) throw new Error(`${op}: option 'memoryBudget' must be a positive number of bytes, got ${String(opts.memoryBudget)}`);
  return opts.batchSize ?? Math.max(1, Math.min(MAX_BATCH, Math.floor(budget / (4 * ACTIVATION_FACTOR * Math.max(1, p)))));
}

/**
 * A model, an input and its references, ready to evaluate perturbations. Made once per explainer
 * call; `evaluate` runs one list of perturbations for a contiguous range of items.
 */
export class PerturbationRunner {
  readonly op: string;
  readonly x: Tensor;
  readonly n: number;
  readonly itemShape: number[];
  /** Elements per item. */
  readonly p: number;
  /** [N|1, B, P]: one reference per item (B = 1), or a background set shared by every item. */
  readonly base: Tensor;
  readonly perItemBase: boolean;
  readonly backgroundRows: number;
  readonly rowsPerCall: number;
  readonly budgetBytes: number;
  readonly totalRowsHint: { total: number; done: number } = { total: 0, done: 0 };
  private readonly f?: (x: Tensor) => Tensor;
  private readonly box?: BlackBoxFn;
  private readonly x2: Tensor;
  private target: Target | undefined;
  private readonly onProgress?: (p: Progress) => void;
  /** Optional transform of the raw outputs before the target picks a score (softmax for PDA). */
  outputTransform?: (out: Tensor) => Tensor;
  private owned: Tensor[] = [];

  private constructor(op: string, model: PerturbationModel, x: Tensor, base: Tensor, perItem: boolean, opts: EngineOptions) {
    this.op = op;
    this.x = x;
    this.n = x.shape[0];
    this.itemShape = x.shape.slice(1);
    this.p = this.itemShape.reduce((a, b) => a * b, 1);
    this.base = base;
    this.perItemBase = perItem;
    this.backgroundRows = base.shape[1];
    if (isBlackBox(model)) this.box = model.fn;
    else this.f = forwardOf(model);
    this.x2 = bl.reshape(x, [this.n, this.p]);
    this.owned.push(this.x2, base);
    this.target = opts.target;
    this.onProgress = opts.onProgress;
    this.budgetBytes = opts.memoryBudget ?? DEFAULT_BUDGET;
    this.rowsPerCall = rowsPerModelCall(op, opts, this.p);
  }

  /**
   * `reference`: `{ baseline }` (a number, a tensor shaped like x or like one item) or
   * `{ background }` (a tensor [B, ...item] averaged over). Never disposes the caller's tensors.
   */
  static async create(op: string, model: PerturbationModel, x: Tensor, reference: { baseline?: number | Tensor; background?: Tensor }, opts: EngineOptions): Promise<PerturbationRunner> {
    checkModel(op, model);
    const item = x.shape.slice(1);
    const p = item.reduce((a, b) => a * b, 1);
    let base: Tensor, perItem: boolean;
    if (reference.background !== undefined && reference.baseline !== undefined) {
      throw new Error(`${op}: give either 'baseline' or 'background', not both`);
    }
    if (reference.background !== undefined) {
      const bg = reference.background;
      if (!(bg instanceof bl.Tensor)) throw new Error(`${op}: option 'background' must be a Tensor [B, ${item.join(', ')}], got ${typeof bg}`);
      bg.storageFor(op);
      if (bg.rank !== x.rank || bg.shape.slice(1).join() !== item.join() || bg.shape[0] < 1) {
        throw new Error(`${op}: option 'background' must have shape [B, ${item.join(', ')}] (rows like the input's items), got ${fmtShape(bg.shape)}`);
      }
      if (bg.backend !== x.backend) throw new Error(`${op}: 'background' lives on a different backend from the input`);
      await checkFinite(op, bg, 'background');
      base = bl.reshape(bg, [1, bg.shape[0], p]);
      perItem = false;
    } else {
      const b = reference.baseline ?? 0;
      if (typeof b === 'number') {
        if (!Number.isFinite(b)) throw new Error(`${op}: option 'baseline' must be finite, got ${b}`);
        base = bl.full([1, 1, p], b, x.backend);
        perItem = false;
      } else if (b instanceof bl.Tensor) {
        b.storageFor(op);
        await checkFinite(op, b, 'baseline');
        if (b.backend !== x.backend) throw new Error(`${op}: 'baseline' lives on a different backend from the input`);
        if (b.shape.join() === x.shape.join()) {
          base = bl.reshape(b, [x.shape[0], 1, p]);
          perItem = true;
        } else if (b.shape.join() === item.join() || (b.rank === x.rank && b.shape[0] === 1 && b.shape.slice(1).join() === item.join())) {
          base = bl.reshape(b, [1, 1, p]);
          perItem = false;
        } else {
          throw new Error(`${op}: option 'baseline' has shape ${fmtShape(b.shape)}; expected the input's ${fmtShape(x.shape)}, one item's ${fmtShape(item)}, or a number`);
        }
      } else {
        throw new Error(`${op}: option 'baseline' must be a number or a Tensor, got ${typeof b}`);
      }
    }
    const r = new PerturbationRunner(op, model, x, base, perItem, opts);
    // 'predicted' means the class predicted for x itself, fixed before perturbing (every perturbed
    // input keeps explaining that class).
    try {
      if (r.target === 'predicted') {
        const out = await r.forwardRaw(x);
        r.target = bl.keep(bl.tidy(() => bl.argmax(bl.reshape(out, [out.shape[0], -1]), 1)));
        out.dispose();
        r.owned.push(r.target as Tensor);
      } else if (r.f) {
        r.target = resolveTarget(op, r.f, x, r.target);
      }
    } catch (e) {
      r.dispose();
      throw e;
    }
    return r;
  }

  /** The model's raw outputs for a batch [rows, ...item] as a tensor [rows, K] (or the model's shape). */
  async forwardRaw(batch: Tensor): Promise<Tensor> {
    if (this.f) {
      let out: Tensor;
      try {
        out = bl.tidy(() => this.f!(batch));
      } catch (e) {
        if (/tidy: fn returned a Promise/.test((e as Error).message)) throw new Error(`${this.op}: the model returned a Promise: wrap a host-array model as blackBox(fn)`);
        throw e;
      }
      if (!(out instanceof bl.Tensor)) {
        if (out && typeof (out as { then?: unknown }).then === 'function') {
          throw new Error(`${this.op}: the model returned a Promise: wrap a host-array model as blackBox(fn)`);
        }
        throw new Error(`${this.op}: the model must return a Tensor, got ${typeof out}`);
      }
      return out;
    }
    const rows = batch.shape[0];
    const data = await batch.data();
    const host = data instanceof Float32Array ? data : Float32Array.from(data);
    const y = await this.box!(host, [...batch.shape]);
    if (!y || typeof (y as ArrayLike<number>).length !== 'number') throw new Error(`${this.op}: the black-box model must resolve to a Float32Array, got ${typeof y}`);
    if (y.length === 0 || y.length % rows !== 0) throw new Error(`${this.op}: the black-box model returned ${y.length} values for a batch of ${rows} rows (expected rows x outputs)`);
    return bl.tensor(y, [rows, y.length / rows], batch.backend);
  }

  /** The target for items [i0, i0 + k). */
  private targetFor(i0: number, k: number): Target | undefined {
    const t = this.target;
    if (t instanceof bl.Tensor) return bl.slice(t, [i0], [k]);
    if (Array.isArray(t)) {
      if (t.length !== this.n) throw new Error(`${this.op}: ${t.length} targets for a batch of ${this.n}`);
      return t.slice(i0, i0 + k);
    }
    return t;
  }

  /** Scores [k] for raw outputs of k rows whose items are each repeated `repeat` times. */
  private scoresOf(out: Tensor, i0: number, items: number, repeat: number): Tensor {
    const o = this.outputTransform ? this.outputTransform(out) : out;
    const t = this.target;
    const rows = items * repeat;
    // Class targets: the one-hot selector of a chunk's rows is the same for every chunk of an
    // item group, so it is made once and kept (common.ts's scores() would rebuild it per chunk:
    // a handful of small kernels per chunk that dominate small chunks on software adapters).
    if ((typeof t === 'number' || Array.isArray(t) || t instanceof bl.Tensor) && o.rank >= 1 && o.shape[0] === rows) {
      const flat = o.rank === 2 ? o : bl.reshape(o, [rows, -1]);
      const classes = flat.shape[1];
      const key = `${i0}/${items}/${repeat}/${classes}`;
      let sel = this.selectors.get(key);
      if (!sel) {
        if (this.selectors.size >= 4) this.clearSelectors();
        sel = bl.keep(bl.tidy(() => {
          let idx: Tensor;
          if (t instanceof bl.Tensor) idx = bl.slice(t, [i0], [items]);
          else {
            const list = typeof t === 'number' ? Array<number>(items).fill(t) : (t as readonly number[]).slice(i0, i0 + items);
            if (Array.isArray(t) && t.length !== this.n) throw new Error(`${this.op}: ${t.length} targets for a batch of ${this.n}`);
            for (const c of list) if (!Number.isInteger(c) || c < 0 || c >= classes) throw new Error(`${this.op}: target ${c} is out of range for ${classes} outputs`);
            idx = bl.tensor(list, [items], o.backend);
          }
          const rep = repeat === 1 ? idx : bl.reshape(bl.broadcastTo(bl.reshape(idx, [items, 1]), [items, repeat]), [rows]);
          return bl.oneHot(rep, classes);
        }));
        this.selectors.set(key, sel);
      }
      return bl.sum(bl.mul(flat, sel), 1);
    }
    return scores(this.op, o, this.targetFor(i0, items), items, repeat);
  }

  private selectors = new Map<string, Tensor>();
  private clearSelectors(): void {
    for (const t of this.selectors.values()) t.dispose();
    this.selectors.clear();
  }

  /** Scores of the unperturbed items [i0, i0+k) (one model call): [k]. */
  async scoresAt(i0: number, k: number, input?: Tensor): Promise<Tensor> {
    const xs = input ?? bl.slice(this.x, [i0], [k]);
    try {
      const out = await this.forwardRaw(xs);
      try {
        return bl.tidy(() => this.scoresOf(out, i0, k, 1));
      } finally {
        out.dispose();
      }
    } finally {
      if (!input) xs.dispose();
    }
  }

  /** Count the model evaluations of one evaluate() call, for progress totals. */
  plan(items: number, perturbations: number): void {
    this.totalRowsHint.total += items * perturbations * this.backgroundRows;
  }

  /**
   * Evaluate `pert` for items [i0, i0 + k) and reduce with `red`: a device tensor [k, K (+ K2)].
   * Without `red`, the scores themselves [k, C] (for methods with a nonlinear reduction).
   * `offset` [k] is subtracted from each item's scores before the reduction: centring on f(x)
   * keeps float32 sums of thousands of scores from cancelling away the differences that matter.
   */
  async evaluate(i0: number, k: number, pert: Perturbations, red?: Reduction, offset?: Tensor): Promise<Tensor> {
    const B = this.backgroundRows, C = pert.count, P = this.p;
    if (C < 1) throw new Error(`${this.op}: no perturbations to evaluate`);
    const itemsPer = Math.max(1, Math.min(k, Math.floor(this.rowsPerCall / B)));
    let coalPer = Math.max(1, Math.min(C, Math.floor(this.rowsPerCall / (itemsPer * B))));
    // A wide reduction matrix (chunk rows x K) also counts against the budget.
    if (red) coalPer = Math.max(1, Math.min(coalPer, Math.floor(this.budgetBytes / (16 * (red.columns + (red.squaredColumns ?? 0))))));
    const backend = this.x.backend;
    const parts: Tensor[] = [];
    // Live partial results, disposed if anything throws (a model error, a bad target).
    const live = new Set<Tensor>();
    let pending: { p: Promise<void>; rows: number } | null = null;
    const report = (rows: number) => {
      this.totalRowsHint.done += rows;
      this.onProgress?.({ method: this.op, done: this.totalRowsHint.done, total: Math.max(this.totalRowsHint.total, this.totalRowsHint.done) });
    };
    try {
      for (let a = i0; a < i0 + k; a += itemsPer) {
        const ni = Math.min(itemsPer, i0 + k - a);
        let acc: Tensor | null = null;
        const raw: Tensor[] = [];
        live.clear();
        for (let c0 = 0; c0 < C; c0 += coalPer) {
          const nc = Math.min(coalPer, C - c0);
          const batch = bl.tidy(() => {
            const keep = pert.keep(c0, nc);
            if (keep.shape.length !== 2 || keep.shape[0] !== nc || keep.shape[1] !== P) {
              throw new Error(`internal: ${this.op} keep mask ${fmtShape(keep.shape)}, expected [${nc}, ${P}]`);
            }
            const xs = bl.reshape(bl.slice(this.x2, [a, 0], [ni, P]), [ni, 1, 1, P]);
            const base = this.perItemBase ? bl.reshape(bl.slice(this.base, [a, 0, 0], [ni, B, P]), [ni, 1, B, P]) : bl.reshape(this.base, [1, 1, B, P]);
            const m = bl.reshape(keep, [1, nc, 1, P]);
            const b = bl.add(base, bl.mul(m, bl.sub(xs, base)));
            return bl.reshape(b, [ni * nc * B, ...this.itemShape]);
          });
          let out: Tensor;
          try {
            out = await this.forwardRaw(batch);
          } finally {
            batch.dispose();
          }
          let next: Tensor;
          try {
            next = bl.tidy(() => {
              const s = this.scoresOf(out, a, ni, nc * B);
              let v = B === 1 ? bl.reshape(s, [ni, nc]) : bl.mean(bl.reshape(s, [ni, nc, B]), 2);
              if (offset) v = bl.sub(v, bl.reshape(bl.slice(offset, [a - i0], [ni]), [ni, 1]));
              if (!red) return v;
              const rr = red.rows(c0, nc);
              const R = rr instanceof bl.Tensor ? rr : bl.tensor(rr, [nc, red.columns], backend);
              let r = bl.matmul(v, R);
              if (red.squaredColumns) {
                const R2 = bl.tensor(red.squaredRows!(c0, nc), [nc, red.squaredColumns], backend);
                r = bl.concat([r, bl.matmul(bl.mul(v, v), R2)], 1);
              }
              return acc ? bl.add(acc, r) : r;
            });
          } finally {
            out.dispose();
          }
          if (red) {
            if (acc) live.delete(acc);
            acc?.dispose();
            acc = next;
          } else raw.push(next);
          live.add(next);
          // One submit per chunk; keep one chunk in flight while the next is recorded, and report
          // progress when a chunk has really finished on the device.
          backend.flush();
          const p = backend.sync();
          if (pending) {
            await pending.p;
            report(pending.rows);
          }
          pending = { p, rows: ni * nc * B };
        }
        if (red) parts.push(acc!);
        else {
          parts.push(raw.length === 1 ? raw[0] : bl.concat(raw, 1));
          if (raw.length > 1) for (const t of raw) t.dispose();
        }
      }
      if (pending) {
        await pending.p;
        report(pending.rows);
      }
      if (parts.length === 1) return parts[0];
      const r = bl.concat(parts, 0);
      for (const t of parts) t.dispose();
      return r;
    } catch (e) {
      for (const t of parts) t.dispose();
      for (const t of live) t.dispose();
      if (pending) await pending.p.catch(() => {});
      throw e;
    }
  }

  dispose(): void {
    this.clearSelectors();
    for (const t of this.owned) if (!t.disposed) t.dispose();
    this.owned = [];
  }
}

function checkModel(op: string, model: unknown): void {
  if (isBlackBox(model)) return;
  if (typeof model === 'function') return;
  if (model && typeof (model as { call?: unknown }).call === 'function') return;
  throw new Error(`${op}: model must be a backlight Module, a function (x: Tensor) => Tensor, or blackBox(fn); got ${model === null ? 'null' : typeof model}`);
}

/** Validate the input tensor of a perturbation explainer. */
export function checkPerturbInput(op: string, x: unknown): Tensor {
  if (!(x instanceof bl.Tensor)) throw new Error(`${op}: input must be a Tensor, got ${x === null ? 'null' : typeof x}`);
  x.storageFor(op);
  if (x.rank < 2 || x.shape[0] < 1) throw new Error(`${op}: input must be a batch [N, ...] with at least one feature axis, got shape ${fmtShape(x.shape)}`);
  if (x.shape.some((d) => d < 1)) throw new Error(`${op}: input has an empty axis: ${fmtShape(x.shape)}`);
  return x;
}

/** Read a device tensor back as float64 (the one read-back of a method). */
export async function readF64(t: Tensor): Promise<Float64Array> {
  const d = await t.data();
  return d instanceof Float64Array ? d : Float64Array.from(d);
}

/**
 * Run `body` once per feature partition: one call for all N items when they share a mask, else
 * one call per item (masks that differ per item, e.g. superpixels, have their own features).
 */
export async function forEachGroup<T>(groups: readonly { m: number }[], n: number, body: (g: number, i0: number, k: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  if (groups.length === 1) out.push(await body(0, 0, n));
  else for (let i = 0; i < n; i++) out.push(await body(i, i, 1));
  return out;
}

/** Concatenate per-group device results along the batch axis (disposing the parts). */
export function concatItems(parts: Tensor[]): Tensor {
  if (parts.length === 1) return parts[0];
  const r = bl.concat(parts, 0);
  for (const t of parts) t.dispose();
  return r;
}

// Influence of training data on a test prediction.
//
// Influence functions (Koh & Liang 2017, "Understanding black-box predictions via influence
// functions"): upweighting a training point z by ε in the empirical risk
//   R(θ) = (1/N) Σ_i L(z_i, θ) + (l2/2) ||θ||²
// moves the test loss by ε I_up,loss(z, z_test), with
//   I_up,loss(z, z_test) = -∇L(z_test)^T H^{-1} ∇L(z),     H = ∇²R(θ̂) (+ damping·I).
// Removing z is ε = -1/N, so the leave-one-out change of the test loss is ≈ -I_up,loss / N.
// Positive I_up,loss: harmful (upweighting z raises the test loss); negative: helpful.
//
// H^{-1} ∇L(z_test) ("s_test") is solved without forming H: Hessian-vector products come from
// the double-backward autodiff (bl.hvp over the parameters as one vector, params.ts), and the
// system from conjugate gradient or LiSSA (Agarwal et al. 2017, the stochastic Neumann series
// Koh & Liang use). Then every training point's influence is one directional derivative,
// ∇L(z_i)·s_test, all of them at once as a Jacobian-vector product of the per-example losses.
//
// TracIn (Pruthi et al. 2020): Σ_k lr_k ∇L(z; θ_k)·∇L(z_test; θ_k) over saved checkpoints
// (positive: a proponent, whose gradient steps lowered the test loss).
// leaveOneOut: the ground truth both approximate, by retraining without each point.
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import type { Module } from '../../models/module.ts';
import { crossEntropy, type Reduction } from '../../models/losses.ts';
import { batchOf, type Dataset } from '../../models/train.ts';
import { mulberry32 } from '../../models/data/random.ts';
import { parameterVector, type ParameterVector } from './params.ts';
import { checkOptions, optionKeys } from '../options.ts';

/** Inputs [N, ...] and targets (class indices [N] or [N, C]). */
export interface Labelled {
  x: Tensor;
  y: Tensor;
}
/** Tensors, or an in-memory data set (models/train.ts Dataset). */
export type DataLike = Labelled | Dataset;

/** A loss of (model output, targets) with a reduction, like models/losses.ts crossEntropy. */
export type LossFn = (out: Tensor, y: Tensor, opts?: { reduction?: Reduction }) => Tensor;

export interface SolveInfo {
  solver: 'cg' | 'lissa';
  /** The test row the solve was for. */
  testIndex: number;
  iterations: number;
  /** CG: ||H x - b|| / ||b|| at the end; LiSSA: the relative change of the last step. */
  residual: number;
  /** CG: residual <= tol; LiSSA: the last step changed the estimate by at most 1e-3 (relative). */
  converged: boolean;
  /** CG met a direction of non-positive curvature (H + damping is not positive definite). */
  indefinite?: boolean;
  /** LiSSA: the scale used. */
  scale?: number;
}

export interface CommonOptions {
  /** Per-example loss (default crossEntropy). */
  loss?: LossFn;
  /** Restrict to some parameters: full names or layer paths ('classifier'); default all. */
  params?: string[];
  /** Rows per forward pass (default 256). */
  batchSize?: number;
}

export interface InfluenceOptions extends CommonOptions {
  solver?: 'cg' | 'lissa';
  /** Added to the Hessian's diagonal (default 0.01). */
  damping?: number;
  /** The training objective's L2 coefficient: (l2/2)||θ||² is part of R(θ), so H gets l2·I (default 0). */
  l2?: number;
  /** Use only these training rows for the Hessian (default all). */
  hessianRows?: ArrayLike<number>;
  /** Conjugate gradient: at most maxIter iterations (default 100), stop at relative residual tol (default 1e-6). */
  cg?: { maxIter?: number; tol?: number };
  /**
   * LiSSA: h_j = v + h_{j-1} - (H_B + damping) h_{j-1} / scale on random mini-batches B of
   * batchSize rows (default 64), depth steps (default 500), averaged over repeats (default 1),
   * estimate h_depth / scale. scale must exceed H's largest eigenvalue: default 'auto' (1.5 times a
   * 20-step power-iteration estimate on the Hessian rows).
   */
  lissa?: { scale?: number | 'auto'; depth?: number; repeats?: number; batchSize?: number; seed?: number };
  onSolve?: (info: SolveInfo) => void;
}

export interface TracInOptions extends CommonOptions {
  /** The architecture that weight-map checkpoints are loaded into. */
  model?: Module;
}
export interface LeaveOneOutOptions {
  /** Per-example loss (default crossEntropy). */
  loss?: LossFn;
}
export interface CgOptions {
  maxIter?: number;
  tol?: number;
  x0?: ArrayLike<number>;
}
export interface HvpOptions {
  loss?: LossFn;
  l2?: number;
  damping?: number;
  batchSize?: number;
  rows?: ArrayLike<number>;
}

const INFLUENCE_KEYS = optionKeys<InfluenceOptions>()(['loss', 'params', 'batchSize', 'solver', 'damping', 'l2', 'hessianRows', 'cg', 'lissa', 'onSolve']);
const CG_KEYS = optionKeys<NonNullable<InfluenceOptions['cg']>>()(['maxIter', 'tol']);
const LISSA_KEYS = optionKeys<NonNullable<InfluenceOptions['lissa']>>()(['scale', 'depth', 'repeats', 'batchSize', 'seed']);
const TRACIN_KEYS = optionKeys<TracInOptions>()(['loss', 'params', 'batchSize', 'model']);
const LOO_KEYS = optionKeys<LeaveOneOutOptions>()(['loss']);
const CG_SOLVER_KEYS = optionKeys<CgOptions>()(['maxIter', 'tol', 'x0']);
const HVP_KEYS = optionKeys<HvpOptions>()(['loss', 'l2', 'damping', 'batchSize', 'rows']);
const HELPFUL_KEYS = optionKeys<{ higherIsHelpful?: boolean }>()(['higherIsHelpful']);

function posInt(op: string, name: string, v: unknown): void {
  if (v !== undefined && !(typeof v === 'number' && Number.isInteger(v) && v >= 1)) throw new Error(`${op}: option '${name}' must be a positive integer, got ${String(v)}`);
}
function nonNegative(op: string, name: string, v: unknown): void {
  if (v !== undefined && !(typeof v === 'number' && v >= 0 && Number.isFinite(v))) throw new Error(`${op}: option '${name}' must be a finite number >= 0, got ${String(v)}`);
}

/** Every option of influence / inverseHvpTest, nested ones included, before any work. */
function checkInfluenceOptions(op: string, o: InfluenceOptions, train: DataLike): void {
  checkOptions(op, o, INFLUENCE_KEYS);
  if (o === undefined) return;
  if (o.loss !== undefined && typeof o.loss !== 'function') throw new Error(`${op}: option 'loss' must be a function (out, y, { reduction }) => Tensor, got ${typeof o.loss}`);
  // A batch size of 0 never advanced the row loops: the call hung.
  posInt(op, 'batchSize', o.batchSize);
  nonNegative(op, 'damping', o.damping);
  nonNegative(op, 'l2', o.l2);
  if (o.cg !== undefined) {
    checkOptions(`${op}: option 'cg'`, o.cg, CG_KEYS);
    posInt(op, 'cg.maxIter', o.cg.maxIter);
    if (o.cg.tol !== undefined && !(typeof o.cg.tol === 'number' && o.cg.tol > 0 && Number.isFinite(o.cg.tol))) throw new Error(`${op}: option 'cg.tol' must be a finite number > 0, got ${String(o.cg.tol)}`);
  }
  if (o.lissa !== undefined) {
    checkOptions(`${op}: option 'lissa'`, o.lissa, LISSA_KEYS);
    posInt(op, 'lissa.depth', o.lissa.depth);
    posInt(op, 'lissa.repeats', o.lissa.repeats);
    posInt(op, 'lissa.batchSize', o.lissa.batchSize);
    if (o.lissa.seed !== undefined && !(Number.isInteger(o.lissa.seed) && o.lissa.seed >= 0)) throw new Error(`${op}: option 'lissa.seed' must be a non-negative integer, got ${String(o.lissa.seed)}`);
    const sc = o.lissa.scale;
    if (sc !== undefined && sc !== 'auto' && !(typeof sc === 'number' && sc > 0 && Number.isFinite(sc))) throw new Error(`${op}: option 'lissa.scale' must be a finite number > 0 or 'auto', got ${String(sc)}`);
  }
  if (o.hessianRows !== undefined) {
    const n = 'x' in train && train.x instanceof bl.Tensor ? train.x.shape[0] : (train as Dataset).n;
    const rows = Array.from(o.hessianRows);
    if (rows.length === 0) throw new Error(`${op}: option 'hessianRows' is empty`);
    const bad = rows.find((r) => !(Number.isInteger(r) && r >= 0 && r < n));
    if (bad !== undefined) throw new Error(`${op}: option 'hessianRows' holds ${bad}, not a training row (0..${n - 1})`);
  }
  if (o.onSolve !== undefined && typeof o.onSolve !== 'function') throw new Error(`${op}: option 'onSolve' must be a function, got ${typeof o.onSolve}`);
}

// ---- small host helpers ----

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};
const norm = (a: ArrayLike<number>) => Math.sqrt(dot(a, a));

function asLabelled(d: DataLike): { data: Labelled; owned: boolean } {
  if ('x' in d && d.x instanceof bl.Tensor) return { data: d as Labelled, owned: false };
  const ds = d as Dataset;
  return { data: batchOf(ds, Array.from({ length: ds.n }, (_, i) => i)), owned: true };
}

async function withData<T>(ds: DataLike[], fn: (...ls: Labelled[]) => Promise<T>): Promise<T> {
  const conv = ds.map(asLabelled);
  try {
    return await fn(...conv.map((c) => c.data));
  } finally {
    for (const c of conv) if (c.owned) (c.data.x.dispose(), c.data.y.dispose());
  }
}

const rowsOf = (d: Labelled, a: number, n: number): Labelled => ({
  x: bl.slice(d.x, [a], [n]),
  y: bl.slice(d.y, [a], [n]),
});

function pick(d: Labelled, idx: ArrayLike<number>): Labelled {
  const t = bl.tensor(Array.from(idx), [idx.length], d.x.backend);
  const r = { x: bl.gather(d.x, t, 0), y: bl.gather(d.y, t, 0) };
  t.dispose();
  return r;
}

async function evalMode<T>(model: Module, fn: () => Promise<T>): Promise<T> {
  const flags = model.namedModules().map(([, m]) => [m, m.training] as const);
  model.eval();
  try {
    return await fn();
  } finally {
    for (const [m, t] of flags) m.training = t;
  }
}

async function readF64(t: Tensor): Promise<Float64Array> {
  const d = Float64Array.from(await t.data());
  t.dispose();
  return d;
}

// ---- linear solvers ----

export interface CgResult {
  x: Float64Array;
  iterations: number;
  /** ||A x - b|| / ||b||. */
  residual: number;
  converged: boolean;
  indefinite: boolean;
}

/**
 * Conjugate gradient for A x = b with A symmetric positive definite, given only x -> A x.
 * Stops at relative residual `tol` (default 1e-8), after `maxIter` (default b.length) iterations,
 * or at a direction of non-positive curvature (`indefinite`; the iterate so far is returned).
 */
export async function conjugateGradient(
  apply: (v: Float64Array) => Float64Array | Promise<Float64Array>,
  b: ArrayLike<number>,
  opts: CgOptions = {},
): Promise<CgResult> {
  checkOptions('conjugateGradient', opts, CG_SOLVER_KEYS);
  posInt('conjugateGradient', 'maxIter', opts.maxIter);
  nonNegative('conjugateGradient', 'tol', opts.tol);
  const n = b.length;
  if (opts.x0 !== undefined && opts.x0.length !== n) throw new Error(`conjugateGradient: option 'x0' has ${opts.x0.length} values, b has ${n}`);
  const maxIter = opts.maxIter ?? n;
  const tol = opts.tol ?? 1e-8;
  const bn = norm(b);
  const x = opts.x0 ? Float64Array.from(opts.x0) : new Float64Array(n);
  if (bn === 0) return { x, iterations: 0, residual: 0, converged: true, indefinite: false };
  const r = Float64Array.from(b);
  if (opts.x0) {
    const ax = await apply(Float64Array.from(x));
    for (let i = 0; i < n; i++) r[i] -= ax[i];
  }
  const p = Float64Array.from(r);
  let rs = dot(r, r);
  let it = 0, indefinite = false;
  while (it < maxIter && Math.sqrt(rs) > tol * bn) {
    const ap = await apply(Float64Array.from(p));
    const pap = dot(p, ap);
    if (!(pap > 0)) {
      indefinite = true;
      break;
    }
    const alpha = rs / pap;
    for (let i = 0; i < n; i++) (x[i] += alpha * p[i], (r[i] -= alpha * ap[i]));
    const rsNew = dot(r, r);
    const beta = rsNew / rs;
    for (let i = 0; i < n; i++) p[i] = r[i] + beta * p[i];
    rs = rsNew;
    it++;
  }
  const residual = Math.sqrt(rs) / bn;
  return { x, iterations: it, residual, converged: residual <= tol, indefinite };
}

// ---- Hessian-vector products of the empirical risk ----

/**
 * x -> H x for H = ∇²[(1/n) Σ_{i in rows} L(z_i, θ) + (l2/2)||θ||²] + damping·I at the model's
 * current parameters (those `pv` selects), n = the number of rows. Exact, from bl.hvp.
 */
export function empiricalRiskHvp(
  model: Module,
  pv: ParameterVector,
  theta: Tensor,
  data: Labelled,
  opts: HvpOptions = {},
): (v: Float64Array) => Promise<Float64Array> {
  checkOptions('empiricalRiskHvp', opts, HVP_KEYS);
  posInt('empiricalRiskHvp', 'batchSize', opts.batchSize);
  nonNegative('empiricalRiskHvp', 'l2', opts.l2);
  nonNegative('empiricalRiskHvp', 'damping', opts.damping);
  const loss = opts.loss ?? crossEntropy;
  const bs = opts.batchSize ?? 256;
  const diag = (opts.l2 ?? 0) + (opts.damping ?? 0);
  return async (v) => {
    const sub = opts.rows ? pick(data, opts.rows) : data;
    const n = sub.x.shape[0];
    const acc = new Float64Array(pv.size);
    try {
      for (let a = 0; a < n; a += bs) {
        const k = Math.min(bs, n - a);
        const hv = bl.tidy(() => {
          const c = rowsOf(sub, a, k);
          const vt = bl.tensor(v, [pv.size]);
          return bl.hvp((t) => pv.call(t, () => loss(model.call(c.x), c.y, { reduction: 'sum' })), theta, vt);
        });
        const h = await readF64(hv);
        for (let i = 0; i < h.length; i++) acc[i] += h[i] / n;
      }
    } finally {
      if (sub !== data) (sub.x.dispose(), sub.y.dispose());
    }
    for (let i = 0; i < acc.length; i++) acc[i] += diag * v[i];
    return acc;
  };
}

/** Gradient of the summed loss over `data`'s rows with respect to θ. */
async function lossGradient(model: Module, pv: ParameterVector, theta: Tensor, d: Labelled, loss: LossFn): Promise<Float64Array> {
  const g = bl.tidy(() => bl.grad((t: Tensor) => pv.call(t, () => loss(model.call(d.x), d.y, { reduction: 'sum' })))(theta));
  return readF64(g);
}

/** For every row i of `data`: ∇L(z_i)·v (a Jacobian-vector product of the per-example losses). */
async function perExampleDirectional(model: Module, pv: ParameterVector, theta: Tensor, data: Labelled, v: Float64Array, loss: LossFn, bs: number): Promise<Float64Array> {
  const n = data.x.shape[0];
  const out = new Float64Array(n);
  for (let a = 0; a < n; a += bs) {
    const k = Math.min(bs, n - a);
    const jv = bl.tidy(() => {
      const c = rowsOf(data, a, k);
      const vt = bl.tensor(v, [pv.size]);
      const [val, d] = bl.jvp((t) => pv.call(t, () => loss(model.call(c.x), c.y, { reduction: 'none' })), [theta], [vt]);
      val.dispose();
      return d;
    });
    out.set(await readF64(jv), a);
  }
  return out;
}

/** LiSSA's stochastic estimate of (H + damping)^{-1} v. */
async function lissa(
  model: Module, pv: ParameterVector, theta: Tensor, train: Labelled, v: Float64Array,
  o: InfluenceOptions, loss: LossFn,
): Promise<{ x: Float64Array; iterations: number; residual: number; scale: number }> {
  const lo = o.lissa ?? {};
  const depth = lo.depth ?? 500, repeats = lo.repeats ?? 1;
  const n = train.x.shape[0];
  const rowsAll = o.hessianRows ? Array.from(o.hessianRows) : Array.from({ length: n }, (_, i) => i);
  const bsz = Math.min(lo.batchSize ?? 64, rowsAll.length);
  const common = { loss, l2: o.l2, damping: o.damping ?? 0.01, batchSize: o.batchSize };
  let scale = lo.scale ?? 'auto';
  if (scale === 'auto') {
    // Power iteration on the (damped) Hessian of the Hessian rows: |λ|max.
    const hv = empiricalRiskHvp(model, pv, theta, train, { ...common, rows: o.hessianRows });
    const rnd = mulberry32(lo.seed ?? 0);
    let u: Float64Array = Float64Array.from({ length: pv.size }, () => rnd() - 0.5);
    let lam = 0;
    for (let i = 0; i < 20; i++) {
      const un = norm(u) || 1;
      for (let j = 0; j < u.length; j++) u[j] /= un;
      const w = await hv(u);
      lam = Math.abs(dot(u, w));
      u = w;
    }
    scale = 1.5 * lam || 1;
  }
  if (!(scale > 0)) throw new Error(`influence: lissa.scale must be > 0, got ${scale}`);
  const rnd = mulberry32((lo.seed ?? 0) + 1);
  const est = new Float64Array(pv.size);
  let residual = 0;
  for (let r = 0; r < repeats; r++) {
    const h = Float64Array.from(v);
    for (let d = 0; d < depth; d++) {
      const rows = bsz === rowsAll.length ? rowsAll : Array.from({ length: bsz }, () => rowsAll[Math.floor(rnd() * rowsAll.length)]);
      const hh = await empiricalRiskHvp(model, pv, theta, train, { ...common, rows })(h);
      let change = 0;
      for (let i = 0; i < h.length; i++) {
        const next = v[i] + h[i] - hh[i] / scale;
        change += (next - h[i]) ** 2;
        h[i] = next;
      }
      residual = Math.sqrt(change) / (norm(h) || 1);
    }
    for (let i = 0; i < h.length; i++) est[i] += h[i] / scale / repeats;
  }
  return { x: est, iterations: depth * repeats, residual, scale };
}

/**
 * s_test = (H + damping)^{-1} ∇L(z_test) per test row, by CG or LiSSA, at the model's current
 * parameters. What influence() dots with the training gradients.
 */
export async function inverseHvpTest(model: Module, train: DataLike, test: DataLike, opts: InfluenceOptions = {}): Promise<Float64Array[]> {
  checkInfluenceOptions('inverseHvpTest', opts, train);
  const loss = opts.loss ?? crossEntropy;
  const pv = parameterVector(model, opts.params);
  return withData([train, test], (tr, te) => evalMode(model, async () => {
    const theta = bl.keep(pv.flatten());
    try {
      return await solveAll(model, pv, theta, tr, te, opts, loss);
    } finally {
      theta.dispose();
    }
  }));
}

async function solveAll(model: Module, pv: ParameterVector, theta: Tensor, tr: Labelled, te: Labelled, opts: InfluenceOptions, loss: LossFn): Promise<Float64Array[]> {
  const solver = opts.solver ?? 'cg';
  if (solver !== 'cg' && solver !== 'lissa') throw new Error(`influence: solver must be 'cg' or 'lissa', got '${solver}'`);
  const damping = opts.damping ?? 0.01;
  if (!(damping >= 0)) throw new Error(`influence: damping must be >= 0, got ${damping}`);
  const hv = empiricalRiskHvp(model, pv, theta, tr, { loss, l2: opts.l2, damping, batchSize: opts.batchSize, rows: opts.hessianRows });
  const out: Float64Array[] = [];
  for (let j = 0; j < te.x.shape[0]; j++) {
    const row = rowsOf(te, j, 1);
    let g: Float64Array;
    try {
      g = await lossGradient(model, pv, theta, row, loss);
    } finally {
      row.x.dispose();
      row.y.dispose();
    }
    if (solver === 'cg') {
      const r = await conjugateGradient(hv, g, { maxIter: opts.cg?.maxIter ?? 100, tol: opts.cg?.tol ?? 1e-6 });
      opts.onSolve?.({ solver, testIndex: j, iterations: r.iterations, residual: r.residual, converged: r.converged, indefinite: r.indefinite });
      out.push(r.x);
    } else {
      const r = await lissa(model, pv, theta, tr, g, opts, loss);
      opts.onSolve?.({ solver, testIndex: j, iterations: r.iterations, residual: r.residual, converged: r.residual <= 1e-3, scale: r.scale });
      out.push(r.x);
    }
  }
  return out;
}

/**
 * I_up,loss(z_i, z_test) for every training row i, one Float64Array [N_train] per test row.
 * Positive: harmful (upweighting z_i raises the test loss); the leave-one-out change of the test
 * loss is ≈ -I_up,loss / N_train. The model should be trained (near a minimum of the risk) and is
 * evaluated in eval mode.
 */
export async function influence(model: Module, train: DataLike, test: DataLike, opts: InfluenceOptions = {}): Promise<Float64Array[]> {
  checkInfluenceOptions('influence', opts, train);
  const loss = opts.loss ?? crossEntropy;
  const pv = parameterVector(model, opts.params);
  return withData([train, test], (tr, te) => evalMode(model, async () => {
    const theta = bl.keep(pv.flatten());
    try {
      const sTests = await solveAll(model, pv, theta, tr, te, opts, loss);
      const out: Float64Array[] = [];
      for (const s of sTests) {
        const d = await perExampleDirectional(model, pv, theta, tr, s, loss, opts.batchSize ?? 256);
        for (let i = 0; i < d.length; i++) d[i] = -d[i];
        out.push(d);
      }
      return out;
    } finally {
      theta.dispose();
    }
  }));
}

export interface Ranked {
  index: number;
  score: number;
}

/**
 * The k most helpful (most negative influence: upweighting them lowers the test loss) and most
 * harmful (most positive) training indices of one test point's I_up,loss scores.
 * For TracIn scores (positive = proponent) pass `{ higherIsHelpful: true }`.
 */
export function helpfulHarmful(scores: ArrayLike<number>, k = 5, opts: { higherIsHelpful?: boolean } = {}): { helpful: Ranked[]; harmful: Ranked[] } {
  checkOptions('helpfulHarmful', opts, HELPFUL_KEYS);
  if (!(Number.isInteger(k) && k >= 1)) throw new Error(`helpfulHarmful: k must be a positive integer, got ${String(k)}`);
  const sgn = opts.higherIsHelpful ? -1 : 1;
  const idx = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => sgn * (scores[a] - scores[b]) || a - b);
  const kk = Math.min(k, scores.length);
  const helpful = idx.slice(0, kk).map((i) => ({ index: i, score: scores[i] }));
  const harmful = idx.slice(-kk).reverse().map((i) => ({ index: i, score: scores[i] }));
  return { helpful, harmful };
}

/** A checkpoint's weights by full parameter name (what loadStateDict / safetensors give). */
export type WeightMap = Map<string, Tensor> | Record<string, Tensor>;

/**
 * TracIn-CP (Pruthi et al. 2020): Σ_k lrs[k] ∇L(z_i; θ_k)·∇L(z_test; θ_k) for every training row,
 * one Float64Array [N_train] per test row. Checkpoints are models (same architecture) or weight
 * maps loaded into `opts.model` for the computation (the model's own tensors are untouched).
 * Positive: a proponent (helpful), negative: an opponent.
 */
export async function tracIn(
  checkpoints: readonly (Module | WeightMap)[], lrs: readonly number[], train: DataLike, test: DataLike,
  opts: TracInOptions = {},
): Promise<Float64Array[]> {
  checkOptions('tracIn', opts, TRACIN_KEYS);
  posInt('tracIn', 'batchSize', opts.batchSize);
  if (checkpoints.length !== lrs.length) throw new Error(`tracIn: ${checkpoints.length} checkpoints but ${lrs.length} learning rates`);
  if (!checkpoints.length) throw new Error('tracIn: no checkpoints');
  const loss = opts.loss ?? crossEntropy;
  return withData([train, test], async (tr, te) => {
    const m = te.x.shape[0];
    const out = Array.from({ length: m }, () => new Float64Array(tr.x.shape[0]));
    for (let k = 0; k < checkpoints.length; k++) {
      const ck = checkpoints[k];
      const isModule = typeof (ck as Module).namedParameters === 'function';
      const model = isModule ? (ck as Module) : opts.model;
      if (!model) throw new Error('tracIn: weight-map checkpoints need opts.model (the architecture to load them into)');
      const map: Record<string, Tensor> = {};
      if (!isModule) {
        const entries = ck instanceof Map ? [...ck] : Object.entries(ck as Record<string, Tensor>);
        const cut = model.path ? model.path.length + 1 : 0;
        const known = new Set(model.stateDict().keys());
        for (const [n, t] of entries) {
          if (!known.has(n)) throw new Error(`tracIn: checkpoint ${k} has '${n}', which the model has not`);
          map[n.slice(cut)] = t;
        }
      }
      const base = parameterVector(model, opts.params);
      // Weight maps: every tensor computation runs with the checkpoint's tensors substituted
      // (withTensors is synchronous, so it wraps each computation, not the awaits between them).
      const pv: ParameterVector = isModule ? base : {
        ...base,
        flatten: () => model.withTensors(map, () => base.flatten()),
        call: (t, fn) => model.withTensors(map, () => base.call(t, fn)),
      };
      await evalMode(model, async () => {
        const theta = bl.keep(pv.flatten());
        try {
          for (let j = 0; j < m; j++) {
            const row = rowsOf(te, j, 1);
            let g: Float64Array;
            try {
              g = await lossGradient(model, pv, theta, row, loss);
            } finally {
              row.x.dispose();
              row.y.dispose();
            }
            const d = await perExampleDirectional(model, pv, theta, tr, g, loss, opts.batchSize ?? 256);
            for (let i = 0; i < d.length; i++) out[j][i] += lrs[k] * d[i];
          }
        } finally {
          theta.dispose();
        }
      });
    }
    return out;
  });
}

export interface LeaveOneOutResult {
  /** Test loss per test row of the model trained on all the data. */
  base: Float64Array;
  /** Per test row: L_test(trained without indices[j]) - L_test(trained on all), [indices.length]. */
  deltas: Float64Array[];
}

/**
 * Leave-one-out retraining: the ground truth influence functions approximate. `buildAndTrain`
 * gets a training set (tensors) and returns a trained model (disposed here); it is called once on
 * all the data and once without each of `indices`. Use small models, trained to convergence.
 */
export async function leaveOneOut(
  buildAndTrain: (train: Labelled, removed: number | null) => Module | Promise<Module>,
  train: DataLike, test: DataLike, indices: readonly number[], opts: LeaveOneOutOptions = {},
): Promise<LeaveOneOutResult> {
  checkOptions('leaveOneOut', opts, LOO_KEYS);
  const loss = opts.loss ?? crossEntropy;
  return withData([train, test], async (tr, te) => {
    const n = tr.x.shape[0];
    const testLoss = async (model: Module) => evalMode(model, async () => {
      const l = bl.tidy(() => loss(model.call(te.x), te.y, { reduction: 'none' }));
      return readF64(l);
    });
    const full = await buildAndTrain(tr, null);
    const base = await testLoss(full);
    full.dispose();
    const deltas = Array.from({ length: te.x.shape[0] }, () => new Float64Array(indices.length));
    for (let j = 0; j < indices.length; j++) {
      const i = indices[j];
      if (!(Number.isInteger(i) && i >= 0 && i < n)) throw new Error(`leaveOneOut: index ${i} is not a training row (0..${n - 1})`);
      const keepRows = Array.from({ length: n - 1 }, (_, r) => (r < i ? r : r + 1));
      const sub = pick(tr, keepRows);
      let model: Module;
      try {
        model = await buildAndTrain(sub, i);
      } finally {
        sub.x.dispose();
        sub.y.dispose();
      }
      const l = await testLoss(model);
      model.dispose();
      for (let t = 0; t < l.length; t++) deltas[t][j] = l[t] - base[t];
    }
    return { base, deltas };
  });
}

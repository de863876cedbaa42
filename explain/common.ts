// What every attributor shares: the model as a function, target selection, baselines, checks.
import * as bl from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import { fmtShape } from '../engine/shape.ts';
import { Module } from '../models/module.ts';
import { mulberry32 } from '../models/data/random.ts';
import { type RulesOption, rulesFactory } from './rules-option.ts';
import './lrp/composites.ts'; // registers the named LRP composites for every explainer's rules option

export type { RulesOption } from './rules-option.ts';

/** A model: a backlight Module (run in eval mode) or any function from a batch to outputs. */
export type Model = Module | ((x: Tensor) => Tensor);

/**
 * Which output to explain, per batch item:
 * - a class index for every item, or one index per item;
 * - 'predicted': the argmax of the model's output for each item (no readback: chosen on the device);
 * - a function of the output [N, ...] returning one score per item [N].
 */
export type Target = number | readonly number[] | Tensor | 'predicted' | ((out: Tensor) => Tensor);

export interface TargetOptions {
  target?: Target;
  /**
   * Backward rules for this explanation's graph: a rule set ({ relu: rule, Conv2d: rule,
   * 'features.3': rule }), a function (path, kind, layer) => rule, or a registered composite's
   * name ('epsilon-plus-flat'). Applied to every forward the explainer builds (a withRules scope
   * cannot span an await). Keys of an object rule set that match nothing are an error.
   */
  rules?: RulesOption;
}

/**
 * The model as a function of a batch; with `rules`, each call records its ops and layers under
 * those rules (looked up at record time, so the backward pass uses them later).
 */
export function forwardOf(model: Model, rules?: RulesOption): (x: Tensor) => Tensor {
  const f = plainForward(model);
  if (rules === undefined) return f;
  const make = rulesFactory(rules);
  return (x) => bl.withRules(make(), () => f(x));
}

function plainForward(model: Model): (x: Tensor) => Tensor {
  if (model instanceof Module) {
    return (x) => {
      // eval mode for the call; every submodule's own flag is restored after (a caller may keep
      // some children in eval mode inside a training model)
      const flags = model.training || model.namedModules().some(([, m]) => m.training) ? model.namedModules().map(([, m]) => [m, m.training] as const) : null;
      if (flags) model.eval();
      try {
        return model.call(x);
      } finally {
        if (flags) for (const [m, t] of flags) m.training = t;
      }
    };
  }
  if (typeof model !== 'function') throw new Error('explain: model must be a backlight Module or a function (x) => output');
  return model;
}

export function checkInput(op: string, x: unknown): Tensor {
  if (!(x instanceof bl.Tensor)) throw new Error(`${op}: input must be a Tensor, got ${x === null ? 'null' : typeof x}`);
  x.storageFor(op);
  if (x.rank < 1 || x.shape[0] < 1) throw new Error(`${op}: input must have a batch axis, got shape ${fmtShape(x.shape)}`);
  return x;
}

/**
 * The per-item scores [N] the target selects from model outputs `out` [N, ...].
 * `repeat`: the batch holds `repeat` consecutive copies of each of the N items (k copies of item 0,
 * then of item 1, ...) and per-item targets repeat accordingly.
 */
export function scores(op: string, out: Tensor, target: Target | undefined, n: number, repeat = 1): Tensor {
  const rows = out.shape[0];
  if (out.rank === 0 || rows !== n * repeat) throw new Error(`${op}: the model returned shape ${fmtShape(out.shape)} for a batch of ${n * repeat}`);
  if (typeof target === 'function') {
    const s = target(out);
    if (!(s instanceof bl.Tensor) || s.rank !== 1 || s.shape[0] !== rows) {
      throw new Error(`${op}: a target function must return one score per batch item ([${rows}]), got ${s instanceof bl.Tensor ? fmtShape(s.shape) : typeof s}`);
    }
    return s;
  }
  const flat = out.rank === 2 ? out : bl.reshape(out, [rows, -1]);
  const classes = flat.shape[1];
  if (target === undefined) {
    if (classes !== 1) throw new Error(`${op}: the model has ${classes} outputs per item: give a target (a class index, one per item, 'predicted', or a function)`);
    return bl.reshape(flat, [rows]);
  }
  let onehot: Tensor;
  if (target === 'predicted') {
    onehot = bl.oneHot(bl.argmax(bl.stopGradient(flat), 1), classes);
  } else {
    let idx: number[];
    if (target instanceof bl.Tensor) {
      // Class indices on the device, one per item (what resolveTarget makes of 'predicted').
      if (target.rank !== 1 || target.shape[0] !== n) throw new Error(`${op}: a target tensor must hold one class index per item ([${n}]), got ${fmtShape(target.shape)}`);
      return bl.sum(bl.mul(flat, bl.oneHot(repeatEach(target, repeat), classes)), 1);
    } else if (typeof target === 'number') {
      idx = Array(n).fill(target);
    } else if (Array.isArray(target)) {
      if (target.some((t) => Array.isArray(t) || typeof t !== 'number')) {
        throw new Error(`${op}: target must be a class index, one class index per item (a flat array of ${n} numbers), 'predicted' or a function; got a nested or non-numeric array (several classes per item are explained by one call per class, or a target function)`);
      }
      if (target.length !== n) throw new Error(`${op}: ${target.length} targets for a batch of ${n}`);
      idx = [...target];
    } else {
      throw new Error(`${op}: invalid target ${String(target)}`);
    }
    for (const t of idx) {
      if (!Number.isInteger(t) || t < 0 || t >= classes) throw new Error(`${op}: target ${t} is out of range for ${classes} outputs`);
    }
    const rep = idx.flatMap((t) => Array(repeat).fill(t));
    onehot = bl.oneHot(bl.tensor(rep, [rows], out.backend), classes);
  }
  return bl.sum(bl.mul(flat, onehot), 1);
}

/**
 * Fix 'predicted' to the classes the model predicts for x itself, as a device tensor of indices,
 * so that methods evaluating the model at other points (IG's path, noise samples) keep explaining
 * the same class.
 */
export function resolveTarget(op: string, f: (x: Tensor) => Tensor, x: Tensor, target: Target | undefined): Target | undefined {
  if (target !== 'predicted') return target;
  return bl.tidy(() => {
    const out = f(bl.stopGradient(x));
    if (out.rank < 1 || out.shape[0] !== x.shape[0]) throw new Error(`${op}: the model returned shape ${fmtShape(out.shape)} for a batch of ${x.shape[0]}`);
    return bl.argmax(bl.reshape(out, [out.shape[0], -1]), 1);
  });
}

/** A baseline shaped like x: a number, a tensor of x's shape, or one sample broadcast over the batch. */
export function baselineFor(op: string, x: Tensor, baseline: number | Tensor | undefined): Tensor {
  if (typeof baseline === 'number' && !Number.isFinite(baseline)) throw new Error(`${op}: baseline must be finite, got ${baseline}`);
  if (baseline === undefined || typeof baseline === 'number') return bl.full(x.shape, baseline ?? 0, x.backend);
  if (!(baseline instanceof bl.Tensor)) throw new Error(`${op}: baseline must be a number or a Tensor`);
  if (baseline.shape.join() === x.shape.join()) return bl.mul(baseline, 1);
  if (baseline.shape.join() === x.shape.slice(1).join() || (baseline.shape[0] === 1 && baseline.shape.slice(1).join() === x.shape.slice(1).join())) {
    return bl.broadcastTo(baseline.shape.length === x.rank ? baseline : bl.expandDims(baseline, 0), x.shape);
  }
  throw new Error(`${op}: baseline shape ${fmtShape(baseline.shape)} does not match the input ${fmtShape(x.shape)} (or one sample of it)`);
}

/** Repeat each item of x `k` times consecutively along axis 0: [N, ...] -> [N*k, ...]. */
export function repeatEach(x: Tensor, k: number): Tensor {
  if (k === 1) return bl.mul(x, 1);
  const e = bl.expandDims(x, 1);
  const b = bl.broadcastTo(e, [x.shape[0], k, ...x.shape.slice(1)]);
  return bl.reshape(b, [x.shape[0] * k, ...x.shape.slice(1)]);
}

export function positiveInt(op: string, name: string, v: unknown, dflt: number): number {
  const n = v === undefined ? dflt : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) throw new Error(`${op}: ${name} must be a positive integer, got ${String(v)}`);
  return n;
}

/** Gradient of the summed target scores with respect to x (items are independent). */
export function inputGradient(op: string, f: (x: Tensor) => Tensor, x: Tensor, target: Target | undefined, n: number, repeat = 1): Tensor {
  return bl.grad((xx: Tensor) => bl.sum(scores(op, f(xx), target, n, repeat)))(x);
}

/** Read back once at the end, and hand the caller a tensor it owns (outside any scope). */
export function finish(t: Tensor): Tensor {
  return bl.keep(t);
}

/** A small seeded PRNG (mulberry32) for sampling choices made on the host. */
export const hostRandom = mulberry32;

/** Targets for a batch whose items are each repeated `k` times consecutively. */
export function repeatTarget(target: Target | undefined, n: number, k: number): Target | undefined {
  if (target === undefined || typeof target === 'number' || typeof target === 'function') return target;
  if (target === 'predicted') throw new Error('internal: resolve predicted targets first');
  if (target instanceof bl.Tensor) return repeatEach(target, k);
  if (target.length !== n) throw new Error(`${target.length} targets for a batch of ${n}`);
  return target.flatMap((t) => Array(k).fill(t));
}

/** total + part, freeing both inputs. */
export function accumulate(total: Tensor | null, part: Tensor): Tensor {
  if (!total) return part;
  const r = bl.add(total, part);
  total.dispose();
  part.dispose();
  return r;
}

/**
 * The completeness error per row (Captum's convergence delta): sum(attributions[i]) - (F(x[i]) -
 * F(base[i])) for the target score, with F(x) and F(base) in one forward. `attributions`, `x`
 * and `base` are [M, ...]; `target` is for those M rows (already resolved: no 'predicted').
 */
export function completenessDelta(op: string, f: (x: Tensor) => Tensor, attributions: Tensor, x: Tensor, base: Tensor, target: Target | undefined): Tensor {
  const m = x.shape[0];
  // Targets for [x; base]: the rows twice over.
  const t2 = target === undefined || typeof target === 'number' || typeof target === 'function'
    ? target
    : target instanceof bl.Tensor
      ? bl.concat([target, target], 0)
      : Array.isArray(target)
        ? [...target, ...target]
        : target;
  if (t2 === 'predicted') throw new Error(`internal (${op}): resolve predicted targets before the completeness delta`);
  const s = scores(op, f(bl.concat([x, base], 0)), t2, 2 * m);
  const diff = bl.sub(bl.slice(s, [0], [m]), bl.slice(s, [m], [m]));
  return bl.sub(bl.sum(bl.reshape(attributions, [m, -1]), 1), diff);
}

/** Check an optional boolean option (returnDelta and friends). */
export function optionalBool(op: string, name: string, v: unknown): boolean {
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw new Error(`${op}: option '${name}' must be a boolean, got ${typeof v} ${String(v)}`);
  return v;
}

/**
 * Refuse a tensor holding NaN or infinities (an input, a baseline): an explanation of it is NaN
 * everywhere or, worse, finite and meaningless. One scalar read-back (sum(x * 0) is NaN exactly
 * when x has a non-finite element); only on failure is the tensor read to name the element.
 */
export async function checkFinite(op: string, x: Tensor, what = 'input'): Promise<void> {
  if (checkedFinite.has(x)) return;
  const probe = bl.tidy(() => bl.sum(bl.mul(bl.reshape(x, [-1]), 0)));
  const v = (await probe.data())[0];
  probe.dispose();
  if (Number.isFinite(v)) return;
  const d = await x.data();
  const i = d.findIndex((e) => !Number.isFinite(e));
  // the probe can only be non-finite through an element; reading it back agrees unless the tensor changed meanwhile
  if (i < 0) throw new Error(`${op}: the ${what} held a non-finite value on the device that its read-back does not show (changed while being checked?)`);
  const at: number[] = [];
  for (let r = i, k = x.rank - 1; k >= 0; k--) {
    at.unshift(r % x.shape[k]);
    r = Math.floor(r / x.shape[k]);
  }
  throw new Error(`${op}: the ${what} holds ${d[i]} at [${at.join(', ')}] (shape ${fmtShape(x.shape)}): explanations of non-finite values are meaningless; replace or mask them first`);
}

/**
 * Tensors a caller has already checked (or checks on the device itself), for which checkFinite
 * would be a read-back per call: the noise tunnel calls its attributor once per chunk of noisy
 * copies and must not read back each time (contract 5). Marked for the span of that call only.
 */
const checkedFinite = new WeakSet<Tensor>();
export function markCheckedFinite(t: Tensor): void {
  checkedFinite.add(t);
}
export function unmarkCheckedFinite(t: Tensor): void {
  checkedFinite.delete(t);
}

/** checkInput, then checkFinite: the entry check of the async explainers. */
export async function checkedInput(op: string, x: unknown): Promise<Tensor> {
  const t = checkInput(op, x);
  await checkFinite(op, t);
  return t;
}

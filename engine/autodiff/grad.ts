// The user-facing transformations: grad, valueAndGrad, vjp, jvp, hvp, stopGradient, and
// gradients with respect to named intermediate activations (tap / valueAndGradAt).
// All of them are synchronous: they queue GPU work and never wait for it.
import { apply, moveToScope, scopeDepth, tidy } from '../context.ts';
import { fmtShape } from '../shape.ts';
import { Tensor } from '../tensor.ts';
import { onesLike, zerosLike } from '../ops/creation.ts';
import { add, mul } from '../ops/elementwise.ts';
import { sum } from '../ops/reduce.ts';
import { Tape, backward, pushTape, removeTape } from './tape.ts';

function checkTensors(op: string, xs: readonly unknown[]): asserts xs is Tensor[] {
  xs.forEach((x, i) => {
    if (!(x instanceof Tensor)) throw new Error(`${op}: argument ${i} is not a Tensor (got ${x === null ? 'null' : typeof x})`);
    x.storageFor(op);
  });
}

function checkScalar(op: string, y: unknown): Tensor {
  if (!(y instanceof Tensor)) throw new Error(`${op}: the function must return a Tensor, got ${y === null ? 'null' : typeof y}`);
  if (y.size !== 1) throw new Error(`${op}: the function must return a single value (sum it, or use vjp with a cotangent), got shape ${fmtShape(y.shape)}`);
  return y;
}

/** Run f(...xs) on a fresh tape that tracks xs (and whatever f taps). */
function traced<T>(xs: readonly Tensor[], f: (tape: Tape) => T): { tape: Tape; out: T } {
  const tape = new Tape();
  for (const x of xs) tape.track(x);
  pushTape(tape);
  try {
    return { tape, out: f(tape) };
  } catch (e) {
    // The tape holds what f recorded: release it, or those tensors' disposal waits forever.
    tape.release();
    throw e;
  } finally {
    removeTape(tape);
  }
}

/**
 * The same tensors, with a repeated one replaced by a recorded alias (an identity reshape), so
 * that f(x, x) gets a separate cotangent for each argument (the tape keys sources by tensor).
 */
function distinct(xs: readonly Tensor[]): { xs: Tensor[]; aliases: Tensor[] } {
  const seen = new Set<number>();
  const aliases: Tensor[] = [];
  const out = xs.map((x) => {
    if (!seen.has(x.id)) {
      seen.add(x.id);
      return x;
    }
    const a = apply('reshape', { shape: x.shape }, [x], x.shape);
    aliases.push(a);
    return a;
  });
  return { xs: out, aliases };
}

/** Zeros for sources no cotangent reached. */
function fill(grads: (Tensor | null)[], xs: readonly Tensor[]): Tensor[] {
  return grads.map((g, i) => g ?? zerosLike(xs[i]));
}

/**
 * value and gradients of a scalar function with respect to each argument.
 * Intermediates are freed at the end (those an enclosing tape still needs survive until it is done).
 */
export function valueAndGrad<A extends Tensor[]>(f: (...xs: A) => Tensor): (...xs: A) => [Tensor, Tensor[]] {
  return (...args: A) => {
    checkTensors('valueAndGrad', args);
    return tidy(() => {
      const xs = distinct(args).xs as A; // aliases are temporaries of this scope
      const { tape, out: y } = traced(xs, () => checkScalar('valueAndGrad', f(...xs)));
      try {
        const seed = onesLike(y);
        return [y, fill(backward(tape, y, seed, xs), xs)] as [Tensor, Tensor[]];
      } finally {
        tape.release();
      }
    });
  };
}

/** Gradient of a scalar function: one gradient per argument when f takes several, else one tensor. */
export function grad<A extends Tensor[]>(f: (...xs: A) => Tensor): (...xs: A) => A extends [Tensor] ? Tensor : Tensor[] {
  const vg = valueAndGrad(f);
  return ((...xs: A) => {
    const [y, g] = vg(...xs);
    y.dispose();
    return xs.length === 1 ? g[0] : g;
  }) as (...xs: A) => A extends [Tensor] ? Tensor : Tensor[];
}

export interface VjpResult {
  value: Tensor;
  /** Cotangents of the arguments for a cotangent of the value (call as often as needed). */
  vjp(ct: Tensor): Tensor[];
  /** Release the recorded tape. */
  dispose(): void;
}

/** Forward f(...xs) once and return a function that pulls cotangents back through it. */
export function vjp(f: (...xs: Tensor[]) => Tensor, ...args: Tensor[]): VjpResult {
  checkTensors('vjp', args);
  const { xs, aliases } = distinct(args);
  let tape: Tape, value: Tensor;
  try {
    ({ tape, out: value } = traced(xs, () => f(...xs)));
  } catch (e) {
    for (const a of aliases) a.dispose();
    throw e;
  }
  if (!(value instanceof Tensor)) throw new Error(`vjp: the function must return a Tensor, got ${typeof value}`);
  return {
    value,
    vjp(ct: Tensor) {
      if (tape.released) throw new Error('vjp: this result was disposed');
      checkTensors('vjp', [ct]);
      if (ct.shape.join() !== value.shape.join()) throw new Error(`vjp: cotangent shape ${fmtShape(ct.shape)} differs from the value's ${fmtShape(value.shape)}`);
      return tidy(() => fill(backward(tape, value, ct, xs), xs));
    },
    dispose() {
      tape.release();
      for (const a of aliases) a.dispose();
    },
  };
}

/**
 * Jacobian-vector product J(x) v, by transposing the (linear) vjp: d/du <vjp(u), v> = J v.
 * Works for every op because every rule is differentiable.
 */
export function jvp(f: (...xs: Tensor[]) => Tensor, xs: Tensor[], vs: Tensor[]): [Tensor, Tensor] {
  checkTensors('jvp', [...xs, ...vs]);
  if (xs.length !== vs.length) throw new Error(`jvp: ${xs.length} primals but ${vs.length} tangents`);
  xs.forEach((x, i) => {
    if (x.shape.join() !== vs[i].shape.join()) throw new Error(`jvp: tangent ${i} has shape ${fmtShape(vs[i].shape)}, primal ${fmtShape(x.shape)}`);
  });
  return tidy(() => {
    const inner = vjp(f, ...xs);
    try {
      const u = zerosLike(inner.value);
      const [, [jv]] = valueAndGrad((uu: Tensor) => {
        const gs = inner.vjp(uu);
        return gs.map((g, i) => sum(mul(g, vs[i]))).reduce((a, b) => add(a, b));
      })(u);
      return [inner.value, jv] as [Tensor, Tensor];
    } finally {
      inner.dispose();
    }
  });
}

/** Hessian-vector product of a scalar function: H(x) v, exact (grad of <grad f, v>). */
export function hvp(f: (x: Tensor) => Tensor, x: Tensor, v: Tensor): Tensor {
  checkTensors('hvp', [x, v]);
  if (x.shape.join() !== v.shape.join()) throw new Error(`hvp: v has shape ${fmtShape(v.shape)}, x has ${fmtShape(x.shape)}`);
  return grad((xx: Tensor) => sum(mul(grad(f)(xx), v)))(x);
}

/** The same values, cut off from every tape: no gradient flows through. */
export function stopGradient(x: Tensor): Tensor {
  checkTensors('stopGradient', [x]);
  return x.shareAs(x.shape);
}

// ---- named intermediate activations ----

interface Watcher {
  names: Set<string>;
  tape: Tape;
  found: Map<string, Tensor>;
  /** Scope depth of the caller: captured activations belong to it, whatever tidy made them. */
  depth: number;
  /** Every name tapped while watching, for error messages. */
  seen: string[];
}
const watchers: Watcher[] = [];

interface Override {
  name: string;
  fn: (t: Tensor) => Tensor;
  hits: number;
}
const overrides: Override[] = [];

/**
 * Run `body` with the activation tapped as `name` replaced by fn(activation): the rest of the
 * model then computes from the replacement (which may even have a larger batch, e.g. one copy per
 * probe). Throws if body never produced that activation.
 */
export function withActivation<T>(name: string, fn: (t: Tensor) => Tensor, body: () => T): T {
  const o: Override = { name, fn, hits: 0 };
  overrides.push(o);
  let r: T;
  try {
    r = body();
  } finally {
    overrides.splice(overrides.indexOf(o), 1);
  }
  if (o.hits === 0) throw new Error(`withActivation: no activation named '${name}' was produced`);
  return r;
}

/**
 * Mark `t` as the activation called `name`. Models call this for every layer output; it costs
 * nothing unless a valueAndGradAt asks for that name, which then differentiates with respect to it.
 */
export function tap(name: string, t: Tensor): Tensor {
  for (let i = overrides.length - 1; i >= 0; i--) {
    if (overrides[i].name === name) {
      const o = overrides[i];
      overrides.splice(i, 1); // the replacement itself may be tapped by nested code; avoid recursion
      try {
        t = o.fn(t);
      } finally {
        overrides.splice(i, 0, o);
      }
      o.hits++;
    }
  }
  for (let i = watchers.length - 1; i >= 0; i--) {
    const w = watchers[i];
    if (w.seen.length < 2000) w.seen.push(name);
    if (w.names.has(name)) {
      if (w.found.has(name)) throw new Error(`valueAndGradAt: the activation '${name}' was produced twice in one call`);
      w.found.set(name, t);
      w.tape.track(t);
      moveToScope(t, w.depth);
      t.name ??= name;
    }
  }
  return t;
}

export interface GradAtResult {
  value: Tensor;
  /** The tapped activations by name. */
  activations: Record<string, Tensor>;
  /** d value / d activation by name (zeros if the value does not depend on it). */
  grads: Record<string, Tensor>;
  /** Gradients with respect to `wrt` tensors, in order. */
  inputGrads: Tensor[];
}

/**
 * Evaluate a scalar f and its gradients with respect to the activations tapped under `names`
 * (and optionally to tensors `wrt`). What Grad-CAM needs: no hooks, and it composes with grad.
 */
export function valueAndGradAt(f: () => Tensor, names: readonly string[], wrt: readonly Tensor[] = [], opts: { missing?: 'error' | 'skip' } = {}): GradAtResult {
  if (!Array.isArray(names)) throw new Error('valueAndGradAt: names must be an array of activation names');
  checkTensors('valueAndGradAt', wrt);
  const depth = scopeDepth();
  return tidy(() => {
    const tape = new Tape();
    for (const x of wrt) tape.track(x);
    const w: Watcher = { names: new Set(names), tape, found: new Map(), depth, seen: [] };
    watchers.push(w);
    pushTape(tape);
    let y: Tensor;
    try {
      y = checkScalar('valueAndGradAt', f());
    } catch (e) {
      tape.release();
      throw e;
    } finally {
      removeTape(tape);
      watchers.splice(watchers.indexOf(w), 1);
    }
    try {
      const missing = names.filter((n) => !w.found.has(n));
      if (opts.missing === 'skip') names = names.filter((n) => w.found.has(n));
      else if (missing.length) {
        const avail = [...new Set(w.seen)];
        throw new Error(
          `no layer/activation named ${missing.map((m) => `'${m}'`).join(', ')} was produced by the model; available: ${avail.length ? avail.slice(0, 60).join(', ') + (avail.length > 60 ? ', ...' : '') : '(none: the model taps no activations)'}`,
        );
      }
      const acts = names.map((n) => w.found.get(n)!);
      const seed = onesLike(y);
      const g = backward(tape, y, seed, [...acts, ...wrt]);
      const all = fill(g, [...acts, ...wrt]);
      return {
        value: y,
        activations: Object.fromEntries(names.map((n, i) => [n, acts[i]])),
        grads: Object.fromEntries(names.map((n, i) => [n, all[i]])),
        inputGrads: all.slice(names.length),
      };
    } finally {
      tape.release();
    }
  });
}

// Global engine state: the default backend, tidy scopes, and `apply`, the single door through
// which every primitive runs (so the autodiff tape sees each one).
import type { Backend } from './backend.ts';
import type { PrimParams, Primitive, Shape } from './primitives.ts';
import { StorageRef, Tensor, tensorHooks } from './tensor.ts';

let defaultBackend: Backend | null = null;

export function setDefaultBackend(b: Backend): void {
  defaultBackend = b;
}

export function getBackend(): Backend {
  if (!defaultBackend) throw new Error('backlight: no backend yet: call `await init()` first (or init({ backend: "cpu" }))');
  return defaultBackend;
}

/** Run `fn` with `b` as the default backend for tensor creation, then restore the previous one. */
export function withBackend<T>(b: Backend, fn: () => T): T {
  const prev = defaultBackend;
  defaultBackend = b;
  try {
    return fn();
  } finally {
    defaultBackend = prev;
  }
}

// ---- tidy scopes ----

type Scope = Set<Tensor>;
const scopes: Scope[] = [];

tensorHooks.onCreate = (t) => {
  scopes[scopes.length - 1]?.add(t);
};
tensorHooks.onDispose = (t) => {
  scopes[scopes.length - 1]?.delete(t);
};

function collectTensors(v: unknown, out: Set<Tensor>, seen = new Set<unknown>()): void {
  if (v instanceof Tensor) {
    out.add(v);
    return;
  }
  if (v === null || typeof v !== 'object' || seen.has(v)) return;
  seen.add(v);
  if (v instanceof Map) {
    for (const x of v.values()) collectTensors(x, out, seen);
    return;
  }
  for (const x of Array.isArray(v) ? v : Object.values(v)) collectTensors(x, out, seen);
}

/**
 * Run `fn`; dispose every tensor it created except those it returns (found in arrays, plain
 * objects and Maps) and those passed to `keep`. Returned tensors move to the enclosing scope.
 * `fn` must be synchronous: awaiting inside would let other work's tensors into this scope.
 */
export function tidy<T>(fn: () => T): T {
  const scope: Scope = new Set();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    for (const t of scope) t.dispose();
    throw e;
  }
  scopes.pop();
  if (result && typeof (result as { then?: unknown }).then === 'function') {
    for (const t of scope) t.dispose();
    throw new Error('tidy: fn returned a Promise; tidy scopes are synchronous (build the graph inside, await data() outside)');
  }
  const kept = new Set<Tensor>();
  collectTensors(result, kept);
  const parent = scopes[scopes.length - 1];
  for (const t of scope) {
    if (kept.has(t)) parent?.add(t);
    else t.dispose();
  }
  return result;
}

/** How many tidy scopes are open. */
export function scopeDepth(): number {
  return scopes.length;
}

/**
 * Hand `t` to the scope that was innermost when scopeDepth() returned `depth`: the scopes opened
 * since then will not dispose it (that one will, if any).
 */
export function moveToScope(t: Tensor, depth: number): void {
  for (let i = depth; i < scopes.length; i++) scopes[i].delete(t);
  if (depth > 0) scopes[depth - 1].add(t);
}

/** Exempt tensors from disposal by the enclosing tidy scopes. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

// ---- applying primitives ----

/** Called for every primitive application; set by the autodiff tape. */
export interface RecordHook {
  (prim: Primitive, params: unknown, inputs: readonly Tensor[], output: Tensor): void;
}
export const recordHooks: { record: RecordHook | null } = { record: null };

/** Dispose temporaries made for one op (scalar constants); a tape that recorded them holds them. */
export function disposeTemps(made: readonly Tensor[], given: readonly unknown[]): void {
  made.forEach((t, i) => {
    if (t !== given[i]) t.dispose();
  });
}

/** The backend that all `inputs` live on, or a clear error naming the op. */
export function backendOf(op: string, inputs: readonly Tensor[]): Backend {
  if (inputs.length === 0) return getBackend();
  const b = inputs[0].backend;
  for (const t of inputs) {
    t.storageFor(op);
    if (t.backend !== b) {
      throw new Error(`${op}: tensors live on different backends (${b.name} '${b.info.device}' and ${t.backend.name} '${t.backend.info.device}'); move one with toBackend()`);
    }
  }
  return b;
}

/** Run one primitive on validated inputs and record it for autodiff. */
export function apply<P extends Primitive>(prim: P, params: PrimParams[P], inputs: readonly Tensor[], outShape: Shape, backend?: Backend): Tensor {
  const b = backend ?? backendOf(prim, inputs);
  // reshape never moves data: the new tensor shares the input's storage.
  const out =
    prim === 'reshape'
      ? inputs[0].shareAs(outShape)
      : new Tensor(new StorageRef(b, b.run(prim, params, inputs.map((t) => ({ storage: t.storageFor(prim), shape: t.shape })), outShape)), outShape);
  recordHooks.record?.(prim, params, inputs, out);
  return out;
}

/** A tensor from host data on backend `b` (default: the default backend). */
export function fromData(data: ArrayLike<number>, shape: Shape, b: Backend = getBackend()): Tensor {
  return new Tensor(new StorageRef(b, b.upload(data)), shape);
}

// Creating tensors: from host data, constants, ranges and seeded random numbers.
import type { Backend } from '../backend.ts';
import { apply, fromData, getBackend } from '../context.ts';
import { checkInt, checkShape, fmtShape } from '../shape.ts';
import type { Shape } from '../primitives.ts';
import { Tensor } from '../tensor.ts';

type Nested = number | readonly Nested[];

function inferShape(data: Nested): number[] {
  const s: number[] = [];
  let d: Nested = data;
  while (Array.isArray(d)) {
    s.push(d.length);
    d = d[0] as Nested;
  }
  return s;
}

function flattenChecked(data: Nested, shape: number[], dim: number, out: number[]): void {
  if (dim === shape.length) {
    if (typeof data !== 'number') throw new Error(`tensor: expected a number at depth ${dim}, got ${Array.isArray(data) ? 'an array' : typeof data}`);
    out.push(data);
    return;
  }
  if (!Array.isArray(data) || data.length !== shape[dim]) {
    throw new Error(`tensor: ragged nested array: expected length ${shape[dim]} at depth ${dim} (shape ${fmtShape(shape)})`);
  }
  for (const x of data) flattenChecked(x, shape, dim + 1, out);
}

/**
 * A tensor from nested arrays, a flat array/typed array plus `shape`, or a number (a scalar).
 */
export function tensor(data: Nested | ArrayLike<number>, shape?: readonly number[], backend?: Backend): Tensor {
  let flat: ArrayLike<number>;
  let s: number[];
  if (typeof data === 'number') {
    flat = [data];
    s = [];
  } else if (ArrayBuffer.isView(data) || (!Array.isArray(data) && typeof (data as ArrayLike<number>).length === 'number')) {
    flat = data as ArrayLike<number>;
    s = shape ? [...shape] : [flat.length];
  } else {
    const nested = data as Nested;
    const inferred = inferShape(nested);
    const out: number[] = [];
    flattenChecked(nested, inferred, 0, out);
    flat = out;
    s = shape ? [...shape] : inferred;
  }
  checkShape('tensor', s);
  const n = s.reduce((a, b) => a * b, 1);
  if (n !== flat.length) throw new Error(`tensor: ${flat.length} values do not fill shape ${fmtShape(s)} (${n} elements)`);
  return fromData(flat, s, backend);
}

export function full(shape: Shape, value: number, backend: Backend = getBackend()): Tensor {
  checkShape('full', shape);
  if (typeof value !== 'number') throw new Error(`full: value must be a number, got ${typeof value}`);
  const n = shape.reduce((a, b) => a * b, 1);
  if (n <= 1 << 16) return fromData(new Float64Array(n).fill(value), shape, backend);
  const one = fromData([value], shape.map(() => 1), backend);
  const r = apply('expand', { shape: [...shape] }, [one], shape);
  one.dispose();
  return r;
}

export const zeros = (shape: Shape, backend?: Backend) => full(shape, 0, backend);
export const ones = (shape: Shape, backend?: Backend) => full(shape, 1, backend);
export const zerosLike = (t: Tensor) => full(t.shape, 0, t.backend);
export const onesLike = (t: Tensor) => full(t.shape, 1, t.backend);
export const fullLike = (t: Tensor, v: number) => full(t.shape, v, t.backend);

/** start, start+step, ... below stop (arange(n) = 0..n-1). */
export function arange(start: number, stop?: number, step = 1, backend?: Backend): Tensor {
  if (stop === undefined) [start, stop] = [0, start];
  for (const [k, v] of Object.entries({ start, stop, step })) {
    if (!Number.isFinite(v)) throw new Error(`arange: ${k} must be finite, got ${v}`);
  }
  if (step === 0) throw new Error('arange: step must not be 0');
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const d = new Float64Array(n);
  for (let i = 0; i < n; i++) d[i] = start + i * step;
  return fromData(d, [n], backend);
}

// Seeds: an explicit seed gives the same numbers on every backend; without one, a global
// sequence (reset by setSeed) hands out seeds in call order, so runs are reproducible.
let seedCounter = 0x5eed;
export function setSeed(seed: number): void {
  seedCounter = checkInt('setSeed', 'seed', seed);
}
function nextSeed(): number {
  const s = seedCounter;
  seedCounter = (seedCounter + 0x9e3779b9) % 2 ** 52;
  return s;
}

export interface RandomOptions {
  seed?: number;
  backend?: Backend;
}

function random(op: string, dist: 'uniform' | 'normal', shape: Shape, opts: RandomOptions): Tensor {
  checkShape(op, shape);
  const seed = opts.seed === undefined ? nextSeed() : opts.seed;
  if (!Number.isInteger(seed) || seed < 0 || seed > Number.MAX_SAFE_INTEGER) {
    throw new Error(`${op}: seed must be a non-negative safe integer, got ${seed}`);
  }
  return apply('random', { seed, dist }, [], [...shape], opts.backend ?? getBackend());
}

/** Uniform in [0, 1): Philox4x32-10, the same numbers on the GPU and the CPU for one seed. */
export const rand = (shape: Shape, opts: RandomOptions = {}) => random('rand', 'uniform', shape, opts);
/** Standard normal (Box-Muller over Philox4x32-10). */
export const randn = (shape: Shape, opts: RandomOptions = {}) => random('randn', 'normal', shape, opts);

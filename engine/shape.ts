// Shape arithmetic and the checks every op runs before any GPU work is queued.
// Errors name the op and the offending values.
import type { Shape } from './primitives.ts';
import { MAX_RANK } from '../shaders/params.ts';

/** A shape for messages: '[2, 3, 8, 8]' (symbolic ONNX dims print as their names). */
export const fmtShape = (s: readonly (number | string | null)[]) => `[${s.join(', ')}]`;

/** Row-major (C order) strides of a shape, in elements. */
export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** Strides of `shape` read as if broadcast to `out` (right-aligned; 0 along broadcast axes and
 * the leading axes `shape` lacks). */
export function broadcastStrides(shape: readonly number[], out: readonly number[]): number[] {
  const dense = stridesOf(shape);
  const lead = out.length - shape.length;
  const strides = new Array<number>(out.length).fill(0);
  for (let k = 0; k < shape.length; k++) strides[lead + k] = shape[k] === 1 && out[lead + k] !== 1 ? 0 : dense[k];
  return strides;
}

export function checkShape(op: string, shape: readonly number[], what = 'shape'): void {
  if (!Array.isArray(shape)) throw new Error(`${op}: ${what} must be an array of sizes, got ${String(shape)}`);
  if (shape.length > MAX_RANK) throw new Error(`${op}: ${what} ${fmtShape(shape)} has rank ${shape.length}; at most ${MAX_RANK} is supported`);
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isFinite(d) || !Number.isInteger(d) || d < 0) {
      throw new Error(`${op}: ${what} ${fmtShape(shape)} has an invalid size ${String(d)} (sizes are finite non-negative integers)`);
    }
  }
  const n = shape.reduce((a, b) => a * b, 1);
  if (n > 2 ** 31) throw new Error(`${op}: ${what} ${fmtShape(shape)} has ${n} elements, over the 2^31 limit`);
}

export function broadcastShapes(op: string, ...shapes: Shape[]): number[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const k = rank - s.length + i;
      const d = s[i];
      if (out[k] === 1) out[k] = d;
      else if (d !== 1 && d !== out[k]) {
        throw new Error(`${op}: shapes ${shapes.map(fmtShape).join(' and ')} cannot be broadcast together (axis ${k - rank}: ${out[k]} vs ${d})`);
      }
    }
  }
  return out;
}

/** Normalise possibly-negative axes against `rank`; sorted, unique. */
export function normalizeAxes(op: string, axes: number | readonly number[] | undefined, rank: number): number[] {
  if (axes === undefined) return [...Array(rank).keys()];
  const list = typeof axes === 'number' ? [axes] : [...axes];
  const out = new Set<number>();
  for (const a of list) {
    if (!Number.isInteger(a) || a < -rank || a >= rank) {
      throw new Error(`${op}: axis ${a} is out of range for a tensor of rank ${rank}`);
    }
    const n = a < 0 ? a + rank : a;
    if (out.has(n)) throw new Error(`${op}: axis ${a} is repeated in ${JSON.stringify(list)}`);
    out.add(n);
  }
  return [...out].sort((a, b) => a - b);
}

export function normalizeAxis(op: string, axis: number, rank: number): number {
  return normalizeAxes(op, axis, rank)[0];
}

export function checkInt(op: string, name: string, v: unknown, min = 0): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
    throw new Error(`${op}: ${name} must be an integer >= ${min}, got ${String(v)}`);
  }
  return v;
}

/** A pair option given as n or [a, b]. */
export function pair(op: string, name: string, v: number | readonly number[] | undefined, dflt: number, min: number): [number, number] {
  const p = v === undefined ? [dflt, dflt] : typeof v === 'number' ? [v, v] : [...v];
  if (p.length !== 2) throw new Error(`${op}: ${name} must be a number or a pair, got ${JSON.stringify(v)}`);
  return [checkInt(op, name, p[0], min), checkInt(op, name, p[1], min)];
}

/** Padding given as n, [h, w] or [top, bottom, left, right]. */
export function pad4(op: string, v: number | readonly number[] | undefined): [number, number, number, number] {
  const p = v === undefined ? [0] : typeof v === 'number' ? [v] : [...v];
  let r: number[];
  if (p.length === 1) r = [p[0], p[0], p[0], p[0]];
  else if (p.length === 2) r = [p[0], p[0], p[1], p[1]];
  else if (p.length === 4) r = p;
  else throw new Error(`${op}: padding must be n, [h, w] or [top, bottom, left, right], got ${JSON.stringify(v)}`);
  r.forEach((x) => checkInt(op, 'padding', x, 0));
  return r as [number, number, number, number];
}

/** Output length of a window op along one axis; throws if it would be < 1. */
export function windowOut(op: string, size: number, k: number, stride: number, padA: number, padB: number, dil: number, axis: string): number {
  const eff = dil * (k - 1) + 1;
  const o = Math.floor((size + padA + padB - eff) / stride) + 1;
  if (size + padA + padB < eff || o < 1) {
    throw new Error(`${op}: the ${axis} window (kernel ${k}, dilation ${dil}, effective ${eff}) is larger than the padded input (${size} + ${padA} + ${padB})`);
  }
  return o;
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

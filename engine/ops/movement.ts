// Movement primitives: reshape, permute, expand, slice, pad, flip, concat, plus the shape
// helpers built from them (squeeze, expandDims, stack, broadcastTo).
import { apply } from '../context.ts';
import { checkInt, checkShape, fmtShape, normalizeAxes, normalizeAxis, sameShape } from '../shape.ts';
import type { Shape } from '../primitives.ts';
import { Tensor } from '../tensor.ts';

/** New shape for the same data; one size may be -1 (inferred). */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  if (!Array.isArray(shape)) throw new Error(`reshape: shape must be an array, got ${String(shape)}`);
  const infer = shape.indexOf(-1);
  if (shape.filter((d) => d === -1).length > 1) throw new Error(`reshape: at most one -1 in ${fmtShape(shape)}`);
  let s = [...shape];
  if (infer >= 0) {
    const rest = s.reduce((a, d, i) => (i === infer ? a : a * d), 1);
    if (rest === 0 || x.size % rest !== 0) throw new Error(`reshape: cannot infer -1 in ${fmtShape(shape)} for ${x.size} elements of ${fmtShape(x.shape)}`);
    s[infer] = x.size / rest;
  }
  checkShape('reshape', s);
  s = s.map(Number);
  const n = s.reduce((a, b) => a * b, 1);
  if (n !== x.size) throw new Error(`reshape: cannot reshape ${fmtShape(x.shape)} (${x.size} elements) to ${fmtShape(shape)} (${n} elements)`);
  return apply('reshape', { shape: s }, [x], s);
}

/** Reorder axes: out.shape[i] = x.shape[perm[i]]; default reverses them. */
export function transpose(x: Tensor, perm?: readonly number[]): Tensor {
  const p = perm ? [...perm] : [...Array(x.rank).keys()].reverse();
  if (p.length !== x.rank || [...p].sort((a, b) => a - b).some((v, i) => v !== i)) {
    throw new Error(`transpose: ${JSON.stringify(perm)} is not a permutation of the ${x.rank} axes of ${fmtShape(x.shape)}`);
  }
  if (p.every((v, i) => v === i)) return apply('reshape', { shape: x.shape }, [x], x.shape);
  const out = p.map((a) => x.shape[a]);
  return apply('permute', { perm: p }, [x], out);
}
export const permute = transpose;

/** Broadcast to `shape` (numpy rules: leading axes may be added, size-1 axes stretched). */
export function broadcastTo(x: Tensor, shape: readonly number[]): Tensor {
  checkShape('broadcastTo', shape);
  if (shape.length < x.rank) throw new Error(`broadcastTo: cannot broadcast ${fmtShape(x.shape)} to the lower rank ${fmtShape(shape)}`);
  const lifted = [...Array(shape.length - x.rank).fill(1), ...x.shape];
  lifted.forEach((d, i) => {
    if (d !== 1 && d !== shape[i]) throw new Error(`broadcastTo: cannot broadcast ${fmtShape(x.shape)} to ${fmtShape(shape)} (axis ${i}: ${d} vs ${shape[i]})`);
  });
  const xr = lifted.length === x.rank ? x : reshape(x, lifted);
  if (sameShape(lifted, shape)) return xr === x ? apply('reshape', { shape }, [x], shape) : xr;
  const r = apply('expand', { shape: [...shape] }, [xr], shape);
  if (xr !== x) xr.dispose();
  return r;
}

/**
 * x[begin : begin + size] along every axis; a size of -1 takes the rest of the axis. Missing
 * trailing axes are taken whole.
 */
export function slice(x: Tensor, begin: readonly number[], size?: readonly number[]): Tensor {
  if (begin.length > x.rank) throw new Error(`slice: begin ${JSON.stringify(begin)} has more entries than the rank of ${fmtShape(x.shape)}`);
  const b = x.shape.map((_, i) => begin[i] ?? 0);
  const s = x.shape.map((d, i) => {
    const v = size?.[i] ?? -1;
    return v === -1 ? d - b[i] : v;
  });
  x.shape.forEach((d, i) => {
    checkInt('slice', `begin[${i}]`, b[i]);
    checkInt('slice', `size[${i}]`, s[i]);
    if (b[i] + s[i] > d) throw new Error(`slice: begin ${JSON.stringify(begin)} size ${JSON.stringify(size)} goes past axis ${i} of ${fmtShape(x.shape)}`);
  });
  return apply('slice', { begin: b, size: s }, [x], s);
}

/** Constant padding; `pads` holds [before, after] per axis (missing trailing axes: none). */
export function pad(x: Tensor, pads: readonly (readonly [number, number])[], value = 0): Tensor {
  if (pads.length > x.rank) throw new Error(`pad: ${pads.length} pad pairs for a tensor of rank ${x.rank}`);
  const before = x.shape.map((_, i) => checkInt('pad', `pads[${i}][0]`, pads[i]?.[0] ?? 0));
  const after = x.shape.map((_, i) => checkInt('pad', `pads[${i}][1]`, pads[i]?.[1] ?? 0));
  if (!Number.isFinite(value) && !Number.isNaN(value) && typeof value !== 'number') throw new Error(`pad: value must be a number`);
  const out = x.shape.map((d, i) => d + before[i] + after[i]);
  checkShape('pad', out, 'padded shape');
  return apply('pad', { before, after, value }, [x], out);
}

/** Reverse the order of elements along `axes`. */
export function flip(x: Tensor, axes?: number | readonly number[]): Tensor {
  const ax = normalizeAxes('flip', axes, x.rank);
  return apply('flip', { axes: ax }, [x], x.shape);
}

/** Join tensors along an existing axis. */
export function concat(xs: readonly Tensor[], axis = 0): Tensor {
  if (!Array.isArray(xs) || xs.length === 0) throw new Error('concat: needs a non-empty array of tensors');
  xs.forEach((t, i) => {
    if (!(t instanceof Tensor)) throw new Error(`concat: element ${i} is not a Tensor`);
  });
  const r = xs[0].rank;
  const a = normalizeAxis('concat', axis, r);
  for (const t of xs) {
    if (t.rank !== r || t.shape.some((d: number, i: number) => i !== a && d !== xs[0].shape[i])) {
      throw new Error(`concat: shapes ${xs.map((t) => fmtShape(t.shape)).join(', ')} differ outside axis ${axis}`);
    }
  }
  const out = [...xs[0].shape];
  out[a] = xs.reduce((n, t) => n + t.shape[a], 0);
  return apply('concat', { axis: a }, xs, out);
}

/** Remove size-1 axes (all of them when `axes` is omitted). */
export function squeeze(x: Tensor, axes?: number | readonly number[]): Tensor {
  const ax = axes === undefined ? x.shape.flatMap((d, i) => (d === 1 ? [i] : [])) : normalizeAxes('squeeze', axes, x.rank);
  for (const a of ax) if (x.shape[a] !== 1) throw new Error(`squeeze: axis ${a} of ${fmtShape(x.shape)} has size ${x.shape[a]}, not 1`);
  return reshape(x, x.shape.filter((_, i) => !ax.includes(i)));
}

/** Insert a size-1 axis at `axis` (which may be rank, or negative). */
export function expandDims(x: Tensor, axis = 0): Tensor {
  const a = normalizeAxis('expandDims', axis, x.rank + 1);
  const s: number[] = [...x.shape];
  s.splice(a, 0, 1);
  return reshape(x, s);
}

/** Join tensors of equal shape along a new axis. */
export function stack(xs: readonly Tensor[], axis = 0): Tensor {
  if (!Array.isArray(xs) || xs.length === 0) throw new Error('stack: needs a non-empty array of tensors');
  for (const t of xs) if (!sameShape(t.shape, xs[0].shape)) throw new Error(`stack: shapes ${xs.map((t) => fmtShape(t.shape)).join(', ')} differ`);
  const parts = xs.map((t) => expandDims(t, axis));
  const r = concat(parts, axis);
  parts.forEach((p) => p.dispose());
  return r;
}

/** Flatten all axes from `start` on into one. */
export function flatten(x: Tensor, start = 1): Tensor {
  const s: Shape = x.shape.slice(0, start);
  return reshape(x, [...s, x.shape.slice(start).reduce((a, b) => a * b, 1)]);
}

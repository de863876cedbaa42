// ONNX tensors as host values (shapes, axes, indices and small constants never reach the GPU), and
// the host arithmetic that folds shape computations at load time or evaluates them at run time.
import { stridesOf } from '../../../engine/shape.ts';
import { f16 } from '../safetensors.ts';
import type { TensorP } from './schema.ts';

// ---- tensors on the host ----

export const DTYPES: Record<number, string> = {
  1: 'FLOAT', 2: 'UINT8', 3: 'INT8', 4: 'UINT16', 5: 'INT16', 6: 'INT32', 7: 'INT64', 8: 'STRING', 9: 'BOOL',
  10: 'FLOAT16', 11: 'DOUBLE', 12: 'UINT32', 13: 'UINT64', 14: 'COMPLEX64', 15: 'COMPLEX128', 16: 'BFLOAT16',
};
export const FLOAT_TYPES = new Set([1, 10, 11, 16]);

/** A value known on the host: float data (weights) or integers (shapes, axes, indices). */
export interface HostValue {
  dims: number[];
  data: Float32Array | Float64Array;
  float: boolean;
}

export const numel = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

export const bf16 = (bits: number) => new Float32Array(new Uint32Array([bits << 16]).buffer)[0];

/** The index and value of the first NaN or infinity in `data`, or null when all are finite. */
export function firstNonFinite(data: ArrayLike<number>): [number, number] | null {
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) return [i, data[i]];
  return null;
}

export const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** A TensorProto's values. `what` names it in errors. */
export function tensorToHost(t: TensorP, what: string): HostValue {
  const dims = (t.dims ?? []).map(Number);
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new Error(`${what}: invalid dims [${dims.join(', ')}] (each must be an integer in [0, 2^53))`);
  const dt = t.data_type ?? 0;
  const tname = DTYPES[dt] ?? `type ${dt}`;
  if (t.data_location === 1 || (t.external_data && t.external_data.length)) {
    const loc = t.external_data?.find((e) => e.key === 'location')?.value;
    throw new Error(
      `${what}: its data is stored outside the .onnx file${loc ? ` (in '${loc}')` : ''}; external data is not supported: ` +
        `save the model as one file (onnx.save_model(model, path, save_as_external_data=False)) if it is under 2 GB`,
    );
  }
  if (t.segment) throw new Error(`${what}: segmented tensors are not supported`);
  if (dt === 0) throw new Error(`${what}: data_type is missing (UNDEFINED)`);
  if (!FLOAT_TYPES.has(dt) && ![2, 3, 4, 5, 6, 7, 9, 12, 13].includes(dt)) throw new Error(`${what}: data type ${tname} is not supported`);
  const n = numel(dims);
  if (n > 2 ** 31) throw new Error(`${what}: ${tname} [${dims.join(', ')}] has ${n} elements, over the 2^31 limit`);
  const float = FLOAT_TYPES.has(dt);
  const raw = t.raw_data;
  if (raw && raw.byteLength > 0) {
    const size = { 1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2 }[dt]!;
    if (raw.byteLength !== n * size) {
      throw new Error(`${what}: raw_data holds ${raw.byteLength} bytes, but ${tname} [${dims.join(', ')}] needs ${n * size} (the file is corrupt or truncated)`);
    }
    // float32 weights, the bulk of a model: one copy into an aligned buffer (hosts are little-endian)
    if (dt === 1 && LITTLE_ENDIAN) return { dims, data: new Float32Array(raw.slice().buffer), float };
    const out = dt === 1 ? new Float32Array(n) : new Float64Array(n);
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let i = 0; i < n; i++) {
      switch (dt) {
        case 1: out[i] = dv.getFloat32(i * 4, true); break;
        case 2: case 9: out[i] = dv.getUint8(i); break;
        case 3: out[i] = dv.getInt8(i); break;
        case 4: out[i] = dv.getUint16(i * 2, true); break;
        case 5: out[i] = dv.getInt16(i * 2, true); break;
        case 6: out[i] = dv.getInt32(i * 4, true); break;
        case 7: out[i] = Number(dv.getBigInt64(i * 8, true)); break;
        case 10: out[i] = f16(dv.getUint16(i * 2, true)); break;
        case 11: out[i] = dv.getFloat64(i * 8, true); break;
        case 12: out[i] = dv.getUint32(i * 4, true); break;
        case 13: out[i] = Number(dv.getBigUint64(i * 8, true)); break;
        case 16: out[i] = bf16(dv.getUint16(i * 2, true)); break;
      }
    }
    return { dims, data: out, float };
  }
  const src: ArrayLike<number> | undefined =
    dt === 1 ? t.float_data : dt === 7 ? t.int64_data : dt === 11 ? t.double_data : dt === 12 || dt === 13 ? t.uint64_data : t.int32_data;
  const got = src?.length ?? 0;
  if (got !== n) throw new Error(`${what}: holds ${got} values, but ${tname} [${dims.join(', ')}] needs ${n} (the file is corrupt or truncated)`);
  const out = dt === 1 ? new Float32Array(n) : new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = src![i];
    out[i] = dt === 10 ? f16(v & 0xffff) : dt === 16 ? bf16(v & 0xffff) : v;
  }
  return { dims, data: out, float };
}

// ---- host arithmetic on small values (shape computations) ----

/**
 * The most elements a value computed on the host may have (2^25, 256 MiB as float64). Host values
 * are shapes, axes and small folded constants; without a bound, folding a broadcast of two
 * [100000, 1] and [1, 100000] initializers (800 KB of file) would allocate 80 GB.
 */
export const MAX_HOST_ELEMENTS = 2 ** 25;

/** out[idx] = f(multi-index) for every index of `dims`. */
export function build(dims: number[], float: boolean, f: (idx: number[]) => number): HostValue {
  const n = numel(dims);
  if (!dims.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new Error(`invalid result dims [${dims.join(', ')}]`);
  if (n > MAX_HOST_ELEMENTS) throw new Error(`a value computed at load time would have dims [${dims.join(', ')}] (${n} elements), over the ${MAX_HOST_ELEMENTS}-element limit for host values`);
  const data = new Float64Array(n);
  const idx = new Array<number>(dims.length).fill(0);
  for (let k = 0; k < n; k++) {
    data[k] = f(idx);
    for (let a = dims.length - 1; a >= 0; a--) {
      if (++idx[a] < dims[a]) break;
      idx[a] = 0;
    }
  }
  return { dims, data, float };
}

export function at(v: HostValue, idx: readonly number[], strides = stridesOf(v.dims)): number {
  let o = 0;
  for (let i = 0; i < idx.length; i++) o += idx[i] * strides[i];
  return v.data[o];
}

export function broadcastDims(a: readonly number[], b: readonly number[], what: string): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1;
    const y = b[b.length - r + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new Error(`${what}: shapes [${a.join(', ')}] and [${b.join(', ')}] cannot be broadcast together`);
    out.push(x === 1 ? y : x);
  }
  return out;
}

export function hostBinary(a: HostValue, b: HostValue, f: (x: number, y: number) => number, what: string): HostValue {
  const dims = broadcastDims(a.dims, b.dims, what);
  const sa = stridesOf(a.dims), sb = stridesOf(b.dims);
  const pick = (v: HostValue, s: number[], idx: number[]) => {
    let o = 0;
    for (let i = 0; i < v.dims.length; i++) o += (v.dims[i] === 1 ? 0 : idx[dims.length - v.dims.length + i]) * s[i];
    return v.data[o];
  };
  const float = a.float || b.float;
  return build(dims, float, (idx) => {
    const r = f(pick(a, sa, idx), pick(b, sb, idx));
    return float ? r : Math.trunc(r);
  });
}

export function normAxis(a: number, rank: number, what: string): number {
  if (!Number.isInteger(a) || a < -rank || a >= rank) throw new Error(`${what}: axis ${a} is out of range for rank ${rank}`);
  return a < 0 ? a + rank : a;
}

export function hostGather(v: HostValue, ind: HostValue, axis: number, what: string): HostValue {
  const a = normAxis(axis, v.dims.length, what);
  const n = v.dims[a];
  const dims = [...v.dims.slice(0, a), ...ind.dims, ...v.dims.slice(a + 1)];
  const sv = stridesOf(v.dims), si = stridesOf(ind.dims);
  return build(dims, v.float, (idx) => {
    let j = at(ind, idx.slice(a, a + ind.dims.length), si);
    if (j < -n || j >= n) throw new Error(`${what}: index ${j} is out of range for axis ${a} of size ${n}`);
    if (j < 0) j += n;
    return at(v, [...idx.slice(0, a), j, ...idx.slice(a + ind.dims.length)], sv);
  });
}

export function hostConcat(vs: HostValue[], axis: number, what: string): HostValue {
  const rank = vs[0].dims.length;
  const a = normAxis(axis, rank, what);
  for (const v of vs) {
    if (v.dims.length !== rank || v.dims.some((d, i) => i !== a && d !== vs[0].dims[i])) {
      throw new Error(`${what}: shapes ${vs.map((x) => `[${x.dims.join(', ')}]`).join(', ')} differ outside axis ${a}`);
    }
  }
  const dims = [...vs[0].dims];
  dims[a] = vs.reduce((s, v) => s + v.dims[a], 0);
  const starts: number[] = [];
  vs.reduce((s, v) => (starts.push(s), s + v.dims[a]), 0);
  const strides = vs.map((v) => stridesOf(v.dims));
  return build(dims, vs.some((v) => v.float), (idx) => {
    let k = vs.length - 1;
    while (starts[k] > idx[a]) k--;
    const j = [...idx];
    j[a] -= starts[k];
    return at(vs[k], j, strides[k]);
  });
}

export function hostTranspose(v: HostValue, perm: number[]): HostValue {
  const r = v.dims.length;
  if (perm.length !== r || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) throw new Error(`perm [${perm.join(', ')}] is not a permutation of the ${r} axes`);
  const dims = perm.map((p) => v.dims[p]);
  const s = stridesOf(v.dims);
  return build(dims, v.float, (idx) => {
    let o = 0;
    for (let i = 0; i < perm.length; i++) o += idx[i] * s[perm[i]];
    return v.data[o];
  });
}

/** ONNX Slice semantics for one axis: clamped start, the count, and the step. */
export function sliceRange(start: number, end: number, step: number, dim: number): [number, number] {
  if (step === 0) throw new Error('Slice: step 0');
  const clamp = (x: number, lo: number, hi: number) => Math.min(Math.max(x, lo), hi);
  let s = start < 0 ? start + dim : start;
  let e = end < 0 ? end + dim : end;
  if (step > 0) {
    s = clamp(s, 0, dim);
    e = clamp(e, 0, dim);
    return [s, Math.max(0, Math.ceil((e - s) / step))];
  }
  s = clamp(s, -1, dim - 1);
  e = clamp(e, -1, dim - 1);
  return [s, Math.max(0, Math.ceil((e - s) / step))];
}

export function hostSlice(v: HostValue, starts: number[], ends: number[], axes: number[], steps: number[], what: string): HostValue {
  const rank = v.dims.length;
  const begin = new Array<number>(rank).fill(0);
  const step = new Array<number>(rank).fill(1);
  const dims = [...v.dims];
  axes.forEach((ax, i) => {
    const a = normAxis(ax, rank, what);
    const [s, n] = sliceRange(starts[i], ends[i], steps[i] ?? 1, v.dims[a]);
    begin[a] = s;
    step[a] = steps[i] ?? 1;
    dims[a] = n;
  });
  const sv = stridesOf(v.dims);
  return build(dims, v.float, (idx) => at(v, idx.map((x, i) => begin[i] + x * step[i]), sv));
}

/** ONNX Reshape's target: 0 copies the input's size (unless allowzero), one -1 is inferred. */
export function reshapeTarget(inDims: readonly number[], shape: ArrayLike<number>, allowZero: boolean, what: string): number[] {
  const out = Array.from(shape, (d, i) => {
    if (d === 0 && !allowZero) {
      if (i >= inDims.length) throw new Error(`${what}: shape entry ${i} is 0 (copy) but the input [${inDims.join(', ')}] has rank ${inDims.length}`);
      return inDims[i];
    }
    return d;
  });
  const inf = out.indexOf(-1);
  if (out.filter((d) => d === -1).length > 1) throw new Error(`${what}: more than one -1 in shape [${Array.from(shape).join(', ')}]`);
  const n = numel(inDims);
  if (inf >= 0) {
    const rest = out.reduce((a, d, i) => (i === inf ? a : a * d), 1);
    if (rest === 0 || n % rest !== 0) throw new Error(`${what}: cannot reshape [${inDims.join(', ')}] to [${Array.from(shape).join(', ')}]`);
    out[inf] = n / rest;
  }
  if (out.some((d) => !Number.isInteger(d) || d < 0) || numel(out) !== n) {
    throw new Error(`${what}: cannot reshape [${inDims.join(', ')}] (${n} elements) to [${Array.from(shape).join(', ')}]`);
  }
  return out;
}

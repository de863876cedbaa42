// ONNX import without dependencies: the file is decoded with models/io/protobuf.ts against the
// parts of onnx.proto that inference needs, and the graph becomes a GraphModel on the default
// backend.
//
// - Float initializers that belong to one layer (Conv, BatchNormalization, Gemm as a linear layer,
//   Dropout) become that layer's parameters (Conv2d, BatchNorm2d, Linear, Dropout from layers.ts),
//   so `stateDict()` lists them under '<node name>.weight' etc.; the rest become graph constants.
// - Integer tensors (shapes, axes, indices) never reach the GPU: they are JS values. Shape
//   computations are folded at load time when their inputs are constants, and evaluated on the host
//   at run time when they read a runtime tensor's shape (PyTorch's dynamic-batch
//   Shape -> Gather -> Unsqueeze -> Concat -> Reshape pattern).
// - Every node output is tapped under its tensor name and its node's name (GraphModel), so
//   explainers address '/layer1/conv1/Conv' or '/layer1/conv1/Conv_output_0'.
// Field numbers are those of onnx.proto (https://github.com/onnx/onnx/blob/main/onnx/onnx.proto).
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { GraphModel, type GraphNode } from '../containers.ts';
import { BatchNorm2d, Conv2d, Dropout, Linear } from '../layers.ts';
import type { Module } from '../module.ts';
import { decodeMessage, type Decoded, type MessageSpec } from './protobuf.ts';
import { f16 } from './safetensors.ts';

// ---- the schema: the parts of onnx.proto we read ----

const StringStringEntryProto: MessageSpec = { name: 'StringStringEntryProto', fields: { 1: { name: 'key', type: 'string' }, 2: { name: 'value', type: 'string' } } };

const TensorProto: MessageSpec = {
  name: 'TensorProto',
  fields: {
    1: { name: 'dims', type: 'int64', repeated: true },
    2: { name: 'data_type', type: 'int32' },
    3: { name: 'segment', type: 'bytes' },
    4: { name: 'float_data', type: 'float', repeated: true },
    5: { name: 'int32_data', type: 'int32', repeated: true },
    6: { name: 'string_data', type: 'bytes', repeated: true },
    7: { name: 'int64_data', type: 'int64', repeated: true },
    8: { name: 'name', type: 'string' },
    9: { name: 'raw_data', type: 'bytes' },
    10: { name: 'double_data', type: 'double', repeated: true },
    11: { name: 'uint64_data', type: 'uint64', repeated: true },
    13: { name: 'external_data', type: StringStringEntryProto, repeated: true },
    14: { name: 'data_location', type: 'enum' },
  },
};

const AttributeProto: MessageSpec = {
  name: 'AttributeProto',
  fields: {
    1: { name: 'name', type: 'string' },
    2: { name: 'f', type: 'float' },
    3: { name: 'i', type: 'int64' },
    4: { name: 's', type: 'bytes' },
    5: { name: 't', type: TensorProto },
    6: { name: 'g', type: 'bytes' }, // sub-graphs (If, Loop, Scan): not decoded, those ops are unsupported
    7: { name: 'floats', type: 'float', repeated: true },
    8: { name: 'ints', type: 'int64', repeated: true },
    9: { name: 'strings', type: 'bytes', repeated: true },
    10: { name: 'tensors', type: TensorProto, repeated: true },
    20: { name: 'type', type: 'enum' },
    21: { name: 'ref_attr_name', type: 'string' },
    22: { name: 'sparse_tensor', type: 'bytes' },
  },
};

const NodeProto: MessageSpec = {
  name: 'NodeProto',
  fields: {
    1: { name: 'input', type: 'string', repeated: true },
    2: { name: 'output', type: 'string', repeated: true },
    3: { name: 'name', type: 'string' },
    4: { name: 'op_type', type: 'string' },
    5: { name: 'attribute', type: AttributeProto, repeated: true },
    7: { name: 'domain', type: 'string' },
  },
};

const Dimension: MessageSpec = { name: 'TensorShapeProto.Dimension', fields: { 1: { name: 'dim_value', type: 'int64' }, 2: { name: 'dim_param', type: 'string' } } };
const TensorShapeProto: MessageSpec = { name: 'TensorShapeProto', fields: { 1: { name: 'dim', type: Dimension, repeated: true } } };
const TypeTensor: MessageSpec = { name: 'TypeProto.Tensor', fields: { 1: { name: 'elem_type', type: 'int32' }, 2: { name: 'shape', type: TensorShapeProto } } };
const TypeProto: MessageSpec = { name: 'TypeProto', fields: { 1: { name: 'tensor_type', type: TypeTensor } } };
const ValueInfoProto: MessageSpec = { name: 'ValueInfoProto', fields: { 1: { name: 'name', type: 'string' }, 2: { name: 'type', type: TypeProto } } };

const GraphProto: MessageSpec = {
  name: 'GraphProto',
  fields: {
    1: { name: 'node', type: NodeProto, repeated: true },
    2: { name: 'name', type: 'string' },
    5: { name: 'initializer', type: TensorProto, repeated: true },
    11: { name: 'input', type: ValueInfoProto, repeated: true },
    12: { name: 'output', type: ValueInfoProto, repeated: true },
    13: { name: 'value_info', type: ValueInfoProto, repeated: true },
    15: { name: 'sparse_initializer', type: 'bytes', repeated: true },
  },
};

const OperatorSetIdProto: MessageSpec = { name: 'OperatorSetIdProto', fields: { 1: { name: 'domain', type: 'string' }, 2: { name: 'version', type: 'int64' } } };

const ModelProto: MessageSpec = {
  name: 'ModelProto',
  fields: {
    1: { name: 'ir_version', type: 'int64' },
    2: { name: 'producer_name', type: 'string' },
    3: { name: 'producer_version', type: 'string' },
    4: { name: 'domain', type: 'string' },
    5: { name: 'model_version', type: 'int64' },
    6: { name: 'doc_string', type: 'string' },
    7: { name: 'graph', type: GraphProto },
    8: { name: 'opset_import', type: OperatorSetIdProto, repeated: true },
    14: { name: 'metadata_props', type: StringStringEntryProto, repeated: true },
  },
};

// ---- decoded shapes (what decodeMessage returns for the specs above) ----

interface TensorP {
  dims?: number[];
  data_type?: number;
  segment?: Uint8Array;
  float_data?: Float32Array;
  int32_data?: number[];
  string_data?: Uint8Array[];
  int64_data?: number[];
  name?: string;
  raw_data?: Uint8Array;
  double_data?: Float64Array;
  uint64_data?: number[];
  external_data?: { key?: string; value?: string }[];
  data_location?: number;
}
interface AttrP {
  name?: string;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: TensorP;
  g?: Uint8Array;
  floats?: Float32Array;
  ints?: number[];
  strings?: Uint8Array[];
  tensors?: TensorP[];
  type?: number;
  ref_attr_name?: string;
  sparse_tensor?: Uint8Array;
}
interface NodeP {
  input?: string[];
  output?: string[];
  name?: string;
  op_type?: string;
  attribute?: AttrP[];
  domain?: string;
}
interface ValueInfoP {
  name?: string;
  type?: { tensor_type?: { elem_type?: number; shape?: { dim?: { dim_value?: number; dim_param?: string }[] } } };
}
interface GraphP {
  node?: NodeP[];
  name?: string;
  initializer?: TensorP[];
  input?: ValueInfoP[];
  output?: ValueInfoP[];
  value_info?: ValueInfoP[];
  sparse_initializer?: Uint8Array[];
}
interface ModelP {
  ir_version?: number;
  producer_name?: string;
  producer_version?: string;
  graph?: GraphP;
  opset_import?: { domain?: string; version?: number }[];
  metadata_props?: { key?: string; value?: string }[];
}

/** Decode an ONNX file into plain objects (field names as in onnx.proto). */
export function parseOnnx(bytes: Uint8Array, source = 'onnx'): ModelP {
  if (!(bytes instanceof Uint8Array)) throw new Error(`${source}: expected the file's bytes as a Uint8Array`);
  if (bytes.byteLength === 0) throw new Error(`${source}: empty file, not an ONNX model`);
  return decodeMessage(ModelProto, bytes, source) as Decoded as ModelP;
}

// ---- tensors on the host ----

const DTYPES: Record<number, string> = {
  1: 'FLOAT', 2: 'UINT8', 3: 'INT8', 4: 'UINT16', 5: 'INT16', 6: 'INT32', 7: 'INT64', 8: 'STRING', 9: 'BOOL',
  10: 'FLOAT16', 11: 'DOUBLE', 12: 'UINT32', 13: 'UINT64', 14: 'COMPLEX64', 15: 'COMPLEX128', 16: 'BFLOAT16',
};
const FLOAT_TYPES = new Set([1, 10, 11, 16]);

/** A value known on the host: float data (weights) or integers (shapes, axes, indices). */
export interface HostValue {
  dims: number[];
  data: Float32Array | Float64Array;
  float: boolean;
}

const numel = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

const bf16 = (bits: number) => new Float32Array(new Uint32Array([bits << 16]).buffer)[0];

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** A TensorProto's values. `what` names it in errors. */
export function tensorToHost(t: TensorP, what: string): HostValue {
  const dims = (t.dims ?? []).map(Number);
  if (dims.some((d) => !Number.isInteger(d) || d < 0)) throw new Error(`${what}: invalid dims [${dims.join(', ')}]`);
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

function stridesOf(dims: readonly number[]): number[] {
  const s = new Array<number>(dims.length);
  let acc = 1;
  for (let i = dims.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= dims[i];
  }
  return s;
}

/** out[idx] = f(multi-index) for every index of `dims`. */
function build(dims: number[], float: boolean, f: (idx: number[]) => number): HostValue {
  const n = numel(dims);
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

function at(v: HostValue, idx: readonly number[], strides = stridesOf(v.dims)): number {
  let o = 0;
  for (let i = 0; i < idx.length; i++) o += idx[i] * strides[i];
  return v.data[o];
}

function broadcastDims(a: readonly number[], b: readonly number[], what: string): number[] {
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

function hostBinary(a: HostValue, b: HostValue, f: (x: number, y: number) => number, what: string): HostValue {
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

function normAxis(a: number, rank: number, what: string): number {
  if (!Number.isInteger(a) || a < -rank || a >= rank) throw new Error(`${what}: axis ${a} is out of range for rank ${rank}`);
  return a < 0 ? a + rank : a;
}

function hostGather(v: HostValue, ind: HostValue, axis: number, what: string): HostValue {
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

function hostConcat(vs: HostValue[], axis: number, what: string): HostValue {
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

function hostTranspose(v: HostValue, perm: number[]): HostValue {
  const dims = perm.map((p) => v.dims[p]);
  const s = stridesOf(v.dims);
  return build(dims, v.float, (idx) => {
    let o = 0;
    for (let i = 0; i < perm.length; i++) o += idx[i] * s[perm[i]];
    return v.data[o];
  });
}

/** ONNX Slice semantics for one axis: clamped start, the count, and the step. */
function sliceRange(start: number, end: number, step: number, dim: number): [number, number] {
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

function hostSlice(v: HostValue, starts: number[], ends: number[], axes: number[], steps: number[], what: string): HostValue {
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
function reshapeTarget(inDims: readonly number[], shape: ArrayLike<number>, allowZero: boolean, what: string): number[] {
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

// ---- the loader ----

export interface OnnxValueInfo {
  name: string;
  /** Sizes; a symbolic size ('batch', 'N') where the model leaves it open, null if unknown. */
  shape: (number | string | null)[] | null;
}

export interface OnnxInfo {
  irVersion: number;
  /** The default-domain (ai.onnx) opset. */
  opset: number;
  producer: string;
  graphName: string;
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  /** initializer name -> the model's state-dict name, for initializers that became layer parameters. */
  parameterNames: Map<string, string>;
}

/** A GraphModel imported from ONNX, with what the file says about itself. */
export class OnnxModel extends GraphModel {
  constructor(
    nodes: GraphNode[],
    inputNames: string[],
    outputNames: string[],
    constants: Map<string, Tensor>,
    readonly info: OnnxInfo,
  ) {
    super(nodes, inputNames, outputNames, constants);
  }
  /** Parameters, buffers and the graph constants. */
  override dispose(): void {
    super.dispose();
    for (const c of this.constants.values()) c.dispose();
  }
}

type Val = { kind: 'tensor' } | { kind: 'host'; v: HostValue } | { kind: 'dyn' };

interface Runtime {
  /** Input i as a host value (a load-time constant or a shape value computed earlier in this run). */
  ints(i: number): HostValue;
  /** Set output k of an int-valued node. */
  setInt(k: number, v: HostValue): void;
}

interface EmitSpec {
  /** Indices of the node's inputs passed to `run` as tensors (absent optional inputs: undefined). */
  tensors: number[];
  run(ts: (Tensor | undefined)[], rt: Runtime): Tensor[];
  module?: Module;
  /** The outputs are host values computed at run time (via rt.setInt), not tensors. */
  intOutputs?: boolean;
}

const ATTR_TYPES: Record<number, string> = { 1: 'FLOAT', 2: 'INT', 3: 'STRING', 4: 'TENSOR', 5: 'GRAPH', 6: 'FLOATS', 7: 'INTS', 8: 'STRINGS', 9: 'TENSORS', 10: 'GRAPHS' };

class NodeCtx {
  readonly attrs = new Map<string, AttrP>();
  constructor(
    readonly L: Loader,
    readonly name: string,
    readonly op: string,
    readonly inputs: string[],
    readonly outputs: string[],
    attrs: AttrP[],
  ) {
    for (const a of attrs) {
      if (a.ref_attr_name) this.fail(`attribute '${a.name}' refers to a function attribute; functions are not supported`);
      this.attrs.set(a.name ?? '', a);
    }
  }
  get opset(): number {
    return this.L.opset;
  }
  fail(msg: string): never {
    throw new Error(`${this.L.source}: node '${this.name}' (${this.op}, opset ${this.L.opset}): ${msg}`);
  }
  private attr(name: string, types: number[]): AttrP | undefined {
    const a = this.attrs.get(name);
    if (a && a.type && !types.includes(a.type)) this.fail(`attribute '${name}' has type ${ATTR_TYPES[a.type] ?? a.type}, expected ${types.map((t) => ATTR_TYPES[t]).join(' or ')}`);
    return a;
  }
  int(name: string, dflt: number): number {
    const a = this.attr(name, [2]);
    return a ? (a.i ?? 0) : dflt;
  }
  float(name: string, dflt: number): number {
    const a = this.attr(name, [1]);
    return a ? (a.f ?? 0) : dflt;
  }
  ints(name: string): number[] | undefined {
    const a = this.attr(name, [7]);
    return a ? Array.from(a.ints ?? []) : undefined;
  }
  str(name: string, dflt: string): string {
    const a = this.attr(name, [3]);
    return a ? new TextDecoder().decode(a.s ?? new Uint8Array()) : dflt;
  }
  has(i: number): boolean {
    return (this.inputs[i] ?? '') !== '';
  }
  kind(i: number): Val['kind'] | undefined {
    return this.has(i) ? this.L.vals.get(this.inputs[i])!.kind : undefined;
  }
  isHost(i: number): boolean {
    return this.kind(i) === 'host';
  }
  /** Input i's value at load time; `what` says what it is, for the error when it is not constant. */
  host(i: number, what: string): HostValue {
    if (!this.has(i)) this.fail(`the ${what} input (input ${i}) is missing`);
    const v = this.L.vals.get(this.inputs[i])!;
    if (v.kind !== 'host') this.fail(`the ${what} input '${this.inputs[i]}' must be a constant (an initializer or a Constant node), but it is computed at run time`);
    return v.v;
  }
  /** Input i if it is a float constant used by this node alone (so a layer may own it). */
  ownable(i: number): HostValue | null {
    if (!this.has(i)) return null;
    const name = this.inputs[i];
    const v = this.L.vals.get(name)!;
    if (v.kind !== 'host' || !v.v.float || (this.L.uses.get(name) ?? 0) !== 1) return null;
    return v.v;
  }
  fold(...vs: HostValue[]): void {
    this.outputs.forEach((o, k) => {
      if (!o) return;
      if (!vs[k]) this.fail(`output ${k} ('${o}') is not supported`);
      this.L.vals.set(o, { kind: 'host', v: vs[k] });
    });
  }
  emit(spec: EmitSpec): void {
    this.L.emit(this, spec);
  }
  /** Only the first output may be used (e.g. MaxPool's Indices, Dropout's mask are not supported). */
  singleOutput(): void {
    this.outputs.slice(1).forEach((o, k) => {
      if (o) this.fail(`output ${k + 1} ('${o}') is not supported`);
    });
  }
  /** Fold `f` on host values when every input in `idx` is known; else evaluate it on the host at run time. */
  hostOp(idx: number[], f: (vs: HostValue[]) => HostValue[], tensorShapeInput?: number): void {
    const present = idx.filter((i) => this.has(i));
    if (tensorShapeInput === undefined && present.every((i) => this.isHost(i))) {
      this.fold(...f(idx.map((i) => (this.has(i) ? this.host(i, `input ${i}`) : (undefined as unknown as HostValue)))));
      return;
    }
    this.emit({
      tensors: tensorShapeInput === undefined ? [] : [tensorShapeInput],
      intOutputs: true,
      run: (ts, rt) => {
        const vs = idx.map((i) => {
          if (i === tensorShapeInput) return { dims: [ts[0]!.rank], data: Float64Array.from(ts[0]!.shape), float: false };
          return this.has(i) ? rt.ints(i) : (undefined as unknown as HostValue);
        });
        f(vs).forEach((v, k) => rt.setInt(k, v));
        return [];
      },
    });
  }
}

class Loader {
  readonly vals = new Map<string, Val>();
  readonly uses = new Map<string, number>();
  readonly nodes: GraphNode[] = [];
  readonly constants = new Map<string, Tensor>();
  readonly parameterNames = new Map<string, string>();
  readonly graphOutputs: Set<string>;
  /** Host values computed at run time (the shape pattern), by tensor name. */
  readonly dyn = new Map<string, HostValue>();
  constructor(
    readonly source: string,
    readonly opset: number,
    graphOutputs: string[],
  ) {
    this.graphOutputs = new Set(graphOutputs);
  }

  /** A graph constant for a host value used as a tensor. */
  constant(name: string, v: HostValue): void {
    if (!this.constants.has(name)) this.constants.set(name, bl.keep(bl.tensor(v.data, v.dims)));
  }

  emit(n: NodeCtx, spec: EmitSpec): void {
    const listed: string[] = [];
    // where each tensor argument comes from: the node's listed inputs, a run-time host value, or absent
    const srcs: ({ k: 'env'; j: number } | { k: 'dyn'; i: number } | null)[] = [];
    for (const i of spec.tensors) {
      if (!n.has(i)) {
        srcs.push(null);
        continue;
      }
      const name = n.inputs[i];
      const v = this.vals.get(name)!;
      if (v.kind === 'dyn') srcs.push({ k: 'dyn', i });
      else {
        if (v.kind === 'host') this.constant(name, v.v);
        srcs.push({ k: 'env', j: listed.length });
        listed.push(name);
      }
    }
    const dyn = this.dyn;
    const rt = (setOuts: (HostValue | undefined)[]): Runtime => ({
      ints: (i) => {
        const v = this.vals.get(n.inputs[i])!;
        if (v.kind === 'host') return v.v;
        const d = dyn.get(n.inputs[i]);
        if (!d) throw new Error(`the shape value '${n.inputs[i]}' was not computed before this node`);
        return d;
      },
      setInt: (k, v) => {
        setOuts[k] = v;
      },
    });
    const outputs = n.outputs;
    const graphOutputs = this.graphOutputs;
    this.nodes.push({
      name: n.name,
      op: n.op,
      inputs: listed,
      outputs: outputs.filter(Boolean),
      module: spec.module,
      run(args: Tensor[]): Tensor[] {
        const ts = srcs.map((s) => {
          if (!s) return undefined;
          if (s.k === 'env') return args[s.j];
          const v = rt([]).ints(s.i);
          return bl.tensor(v.data, v.dims);
        });
        const outs: (HostValue | undefined)[] = [];
        const res = spec.run(ts, rt(outs));
        if (!spec.intOutputs) {
          // GraphModel matches results to the listed outputs, which skip unnamed (unused) ones
          return outputs.flatMap((o, k) => (o ? [res[k]] : []));
        }
        const tensors: Tensor[] = [];
        outputs.forEach((o, k) => {
          if (!o) return;
          if (!outs[k]) throw new Error(`output ${k} was not computed`);
          dyn.set(o, outs[k]!);
          tensors.push(graphOutputs.has(o) ? bl.tensor(outs[k]!.data, outs[k]!.dims) : (undefined as unknown as Tensor));
        });
        return tensors;
      },
    });
    for (const o of outputs) if (o) this.vals.set(o, { kind: spec.intOutputs ? 'dyn' : 'tensor' });
  }
}

// ---- op handlers ----

type Handler = (n: NodeCtx) => void;

/** ONNX pads [x1_begin, x2_begin, x1_end, x2_end] -> the engine's [top, bottom, left, right]. */
function pads4(n: NodeCtx): [number, number, number, number] {
  const p = n.ints('pads') ?? [0, 0, 0, 0];
  if (p.length !== 4) n.fail(`pads must have 4 entries for 2-D, got [${p.join(', ')}]`);
  return [p[0], p[2], p[1], p[3]];
}

function pair(n: NodeCtx, name: string, dflt: number): [number, number] {
  const v = n.ints(name) ?? [dflt, dflt];
  if (v.length !== 2) n.fail(`${name} must have 2 entries (only 2-D is supported), got [${v.join(', ')}]`);
  return [v[0], v[1]];
}

/**
 * The padding for auto_pad: null when it does not depend on the input (NOTSET: the pads
 * attribute; VALID: none), else a function of the input's spatial size (SAME_UPPER / SAME_LOWER:
 * output = ceil(input / stride), the odd pixel at the end or the beginning).
 */
function autoPad(n: NodeCtx, kernel: [number, number], stride: [number, number], dilation: [number, number]): [number, number, number, number] | ((x: Tensor) => [number, number, number, number]) {
  const mode = n.str('auto_pad', 'NOTSET');
  if (mode === 'NOTSET') return pads4(n);
  if (mode === 'VALID') return [0, 0, 0, 0];
  if (mode !== 'SAME_UPPER' && mode !== 'SAME_LOWER') n.fail(`auto_pad '${mode}' is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER`);
  const one = (size: number, a: number): [number, number] => {
    const out = Math.ceil(size / stride[a]);
    const total = Math.max(0, (out - 1) * stride[a] + (kernel[a] - 1) * dilation[a] + 1 - size);
    const small = Math.floor(total / 2);
    return mode === 'SAME_UPPER' ? [small, total - small] : [total - small, small];
  };
  return (x: Tensor) => {
    if (x.rank !== 4) throw new Error(`input must be NCHW (rank 4), got [${x.shape.join(', ')}]`);
    const [t, b] = one(x.shape[2], 0);
    const [l, r] = one(x.shape[3], 1);
    return [t, b, l, r];
  };
}

function setParam(L: Loader, n: NodeCtx, m: Module, local: string, input: number, v: HostValue, shape?: number[]): void {
  m.setTensor(local, bl.tensor(v.data, shape ?? v.dims));
  L.parameterNames.set(n.inputs[input], `${n.name}.${local}`);
}

const conv: Handler = (n) => {
  n.singleOutput();
  if (!n.has(1)) n.fail('the weight input (input 1) is missing');
  const wv = n.kind(1) === 'host' ? n.host(1, 'weight') : null;
  if (wv && wv.dims.length !== 4) n.fail(`only 2-D convolutions are supported; the weight has shape [${wv.dims.join(', ')}]`);
  const ks = n.ints('kernel_shape');
  if (ks && ks.length !== 2) n.fail(`only 2-D convolutions are supported; kernel_shape is [${ks.join(', ')}]`);
  const stride = pair(n, 'strides', 1);
  const dilation = pair(n, 'dilations', 1);
  const groups = n.int('group', 1);
  if (!(groups >= 1) || !stride.every((v) => v >= 1) || !dilation.every((v) => v >= 1)) {
    n.fail(`group (${groups}), strides [${stride.join(', ')}] and dilations [${dilation.join(', ')}] must be >= 1`);
  }
  const kernel: [number, number] = wv ? [wv.dims[2], wv.dims[3]] : ks ? [ks[0], ks[1]] : [0, 0];
  if (!wv && !ks && n.str('auto_pad', 'NOTSET').startsWith('SAME')) n.fail('auto_pad SAME needs kernel_shape or a constant weight');
  if (ks && wv && (ks[0] !== kernel[0] || ks[1] !== kernel[1])) n.fail(`kernel_shape [${ks.join(', ')}] does not match the weight [${wv.dims.join(', ')}]`);
  const pad = autoPad(n, kernel, stride, dilation);
  const W = n.ownable(1);
  const B = n.has(2) ? n.ownable(2) : null;
  if (W && (!n.has(2) || B)) {
    const [O, I, kh, kw] = W.dims;
    const layer = new Conv2d(I * groups, O, [kh, kw], { stride, dilation, groups, padding: typeof pad === 'function' ? 0 : pad, bias: !!B });
    setParam(n.L, n, layer, 'weight', 1, W);
    if (B) setParam(n.L, n, layer, 'bias', 2, B);
    n.emit({
      tensors: [0],
      module: layer,
      run: ([x]) => {
        if (typeof pad !== 'function') return [layer.forward(x!)];
        return [bl.conv2d(x!, layer.param('weight'), { stride, dilation, groups, padding: pad(x!), bias: B ? layer.param('bias') : undefined })];
      },
    });
    return;
  }
  n.emit({
    tensors: [0, 1, 2],
    run: ([x, w, b]) => [bl.conv2d(x!, w!, { stride, dilation, groups, padding: typeof pad === 'function' ? pad(x!) : pad, bias: b })],
  });
};

const batchNormalization: Handler = (n) => {
  n.singleOutput();
  if (n.int('training_mode', 0) !== 0) n.fail('training_mode = 1 is not supported (export the model in eval mode)');
  const eps = n.float('epsilon', 1e-5);
  for (let i = 1; i <= 4; i++) if (!n.has(i)) n.fail(`input ${i} (${['', 'scale', 'B', 'mean', 'var'][i]}) is missing`);
  const own = [1, 2, 3, 4].map((i) => n.ownable(i));
  const C = own[0]?.dims[0];
  if (own.every((v) => v && v.dims.length === 1 && v.dims[0] === C)) {
    const layer = new BatchNorm2d(C!, { eps });
    ['weight', 'bias', 'running_mean', 'running_var'].forEach((local, k) => setParam(n.L, n, layer, local, k + 1, own[k]!));
    n.emit({
      tensors: [0],
      module: layer,
      run: ([x]) => {
        if (x!.rank === 4) return [layer.forward(x!)];
        return [bl.batchNorm(x!, { mean: layer.buffer('running_mean'), variance: layer.buffer('running_var'), gamma: layer.param('weight'), beta: layer.param('bias'), eps: layer.eps })];
      },
    });
    return;
  }
  n.emit({ tensors: [0, 1, 2, 3, 4], run: ([x, g, b, m, v]) => [bl.batchNorm(x!, { mean: m!, variance: v!, gamma: g, beta: b, eps })] });
};

const gemm: Handler = (n) => {
  n.singleOutput();
  const alpha = n.float('alpha', 1);
  const beta = n.float('beta', 1);
  const transA = n.int('transA', 0) !== 0;
  const transB = n.int('transB', 0) !== 0;
  const B = n.ownable(1);
  const C = n.has(2) ? n.ownable(2) : null;
  if (alpha === 1 && (beta === 1 || !n.has(2)) && !transA && B && B.dims.length === 2 && (!n.has(2) || C)) {
    const [K, N] = transB ? [B.dims[1], B.dims[0]] : B.dims;
    if (!C || (numel(C.dims) === N && (C.dims.length === 1 || (C.dims.length === 2 && C.dims[0] === 1)))) {
      // a fully connected layer: y = x w^T + b with w [N, K] (PyTorch's Linear layout)
      const layer = new Linear(K, N, { bias: !!C });
      const w = transB ? B : hostTranspose(B, [1, 0]);
      setParam(n.L, n, layer, 'weight', 1, w, [N, K]);
      if (C) setParam(n.L, n, layer, 'bias', 2, C, [N]);
      n.emit({
        tensors: [0],
        module: layer,
        run: ([a]) => {
          if (a!.rank !== 2) throw new Error(`input A must be a matrix, got [${a!.shape.join(', ')}]`);
          return [layer.forward(a!)];
        },
      });
      return;
    }
  }
  n.emit({
    tensors: [0, 1, 2],
    run: ([a, b, c]) => {
      if (a!.rank !== 2 || b!.rank !== 2) throw new Error(`A and B must be matrices, got [${a!.shape.join(', ')}] and [${b!.shape.join(', ')}]`);
      let y = bl.matmul(transA ? bl.transpose(a!) : a!, transB ? bl.transpose(b!) : b!);
      if (alpha !== 1) y = bl.mul(y, alpha);
      if (c) y = bl.add(y, beta !== 1 ? bl.mul(c, beta) : c);
      return [y];
    },
  });
};

/** Elementwise binary: folded on the host when both inputs are known, else a tensor op. */
function binary(f: (a: Tensor, b: Tensor) => Tensor, h: (x: number, y: number) => number): Handler {
  return (n) => {
    n.singleOutput();
    if (!n.has(0) || !n.has(1)) n.fail('needs two inputs');
    if (n.isHost(0) && n.isHost(1)) return n.fold(hostBinary(n.host(0, 'A'), n.host(1, 'B'), h, `${n.L.source}: node '${n.name}' (${n.op})`));
    if (n.kind(0) !== 'tensor' && n.kind(1) !== 'tensor') return n.hostOp([0, 1], ([a, b]) => [hostBinary(a, b, h, n.op)]);
    n.emit({ tensors: [0, 1], run: ([a, b]) => [f(a!, b!)] });
  };
}

function unary(f: (x: Tensor) => Tensor): Handler {
  return (n) => {
    n.singleOutput();
    n.emit({ tensors: [0], run: ([x]) => [f(x!)] });
  };
}

function pool(kind: 'max' | 'avg'): Handler {
  return (n) => {
    n.singleOutput();
    if (n.int('ceil_mode', 0) !== 0) n.fail('ceil_mode = 1 is not supported (only floor rounding of the output size, ceil_mode = 0)');
    const ks = n.ints('kernel_shape');
    if (!ks) n.fail('kernel_shape is required');
    if (ks!.length !== 2) n.fail(`only 2-D pooling is supported; kernel_shape is [${ks!.join(', ')}]`);
    const kernel: [number, number] = [ks![0], ks![1]];
    const stride = pair(n, 'strides', 1);
    const dilation = pair(n, 'dilations', 1);
    if (kind === 'avg' && (dilation[0] !== 1 || dilation[1] !== 1)) n.fail(`dilated average pooling is not supported (dilations [${dilation.join(', ')}])`);
    const pad = autoPad(n, kernel, stride, dilation);
    const countIncludePad = n.int('count_include_pad', 0) !== 0;
    n.emit({
      tensors: [0],
      run: ([x]) => {
        const padding = typeof pad === 'function' ? pad(x!) : pad;
        return [kind === 'max' ? bl.maxPool2d(x!, { kernel, stride, padding, dilation }) : bl.avgPool2d(x!, { kernel, stride, padding, countIncludePad })];
      },
    });
  };
}

function globalPool(kind: 'mean' | 'max'): Handler {
  return (n) => {
    n.singleOutput();
    n.emit({
      tensors: [0],
      run: ([x]) => {
        if (x!.rank < 3) throw new Error(`input must be [N, C, spatial...], got [${x!.shape.join(', ')}]`);
        const axes = [...Array(x!.rank - 2).keys()].map((a) => a + 2);
        return [kind === 'mean' ? bl.mean(x!, axes, { keepDims: true }) : bl.max(x!, axes, { keepDims: true })];
      },
    });
  };
}

/** Softmax and LogSoftmax: opset < 13 flattens to 2-D at `axis` (default 1); 13+ uses one axis (default -1). */
function softmaxLike(f: (x: Tensor, axis: number) => Tensor): Handler {
  return (n) => {
    n.singleOutput();
    const old = n.opset < 13;
    const axis = n.int('axis', old ? 1 : -1);
    n.emit({
      tensors: [0],
      run: ([x]) => {
        const a = normAxis(axis, x!.rank, 'axis');
        if (!old || a === x!.rank - 1) return [f(x!, a)];
        const s = x!.shape;
        const y = f(bl.reshape(x!, [numel(s.slice(0, a)), numel(s.slice(a))]), 1);
        return [bl.reshape(y, s)];
      },
    });
  };
}

const flatten: Handler = (n) => {
  n.singleOutput();
  const axis = n.int('axis', 1);
  const target = (dims: readonly number[]) => {
    const a = axis < 0 ? axis + dims.length : axis;
    if (a < 0 || a > dims.length) throw new Error(`axis ${axis} is out of range for rank ${dims.length}`);
    return [numel(dims.slice(0, a)), numel(dims.slice(a))];
  };
  if (n.kind(0) !== 'tensor') return n.hostOp([0], ([v]) => [{ ...v, dims: target(v.dims) }]);
  n.emit({ tensors: [0], run: ([x]) => [bl.reshape(x!, target(x!.shape))] });
};

const reshape: Handler = (n) => {
  n.singleOutput();
  const allowZero = n.int('allowzero', 0) !== 0;
  const what = `${n.L.source}: node '${n.name}' (Reshape)`;
  let shapeOf: (rt: Runtime) => ArrayLike<number>;
  if (n.opset < 5 || (!n.has(1) && n.ints('shape'))) {
    const s = n.ints('shape') ?? n.fail('the shape attribute is missing');
    shapeOf = () => s;
  } else {
    if (!n.has(1)) n.fail('the shape input (input 1) is missing');
    if (n.kind(1) === 'tensor') n.fail(`the shape input '${n.inputs[1]}' is a runtime tensor; shapes must be constants or computed from tensor shapes`);
    shapeOf = (rt) => rt.ints(1).data;
  }
  if (n.kind(0) !== 'tensor') return n.hostOp([0, 1], ([v, s]) => [{ ...v, dims: reshapeTarget(v.dims, s ? s.data : shapeOf({} as Runtime), allowZero, what) }]);
  n.emit({ tensors: [0], run: ([x], rt) => [bl.reshape(x!, reshapeTarget(x!.shape, shapeOf(rt), allowZero, 'Reshape'))] });
};

const dropout: Handler = (n) => {
  n.singleOutput();
  let ratio = n.float('ratio', 0.5);
  if (n.opset >= 12) {
    ratio = n.has(1) ? n.host(1, 'ratio').data[0] : 0.5;
    if (n.has(2) && n.host(2, 'training_mode').data[0]) n.fail('training_mode = true is not supported (export the model in eval mode)');
  }
  if (!(ratio >= 0 && ratio < 1)) n.fail(`ratio must be in [0, 1), got ${ratio}`);
  const layer = new Dropout(ratio);
  n.emit({ tensors: [0], module: layer, run: ([x]) => [layer.forward(x!)] });
};

const concat: Handler = (n) => {
  n.singleOutput();
  const axis = n.int('axis', NaN);
  if (Number.isNaN(axis)) n.fail('the axis attribute is required');
  const idx = n.inputs.map((_, i) => i).filter((i) => n.has(i));
  if (idx.every((i) => n.kind(i) !== 'tensor')) return n.hostOp(idx, (vs) => [hostConcat(vs, axis, `${n.L.source}: node '${n.name}' (Concat)`)]);
  n.emit({ tensors: idx, run: (ts) => [bl.concat(ts as Tensor[], axis)] });
};

const identity: Handler = (n) => {
  n.singleOutput();
  if (n.kind(0) !== 'tensor') return n.hostOp([0], ([v]) => [v]);
  // a new tensor object (sharing storage), so that its tap is distinct from the input's
  n.emit({ tensors: [0], run: ([x]) => [bl.reshape(x!, x!.shape)] });
};

const constant: Handler = (n) => {
  n.singleOutput();
  const what = `${n.L.source}: node '${n.name}' (Constant)`;
  const a = [...n.attrs.keys()];
  if (a.length !== 1) n.fail(`expected exactly one value attribute, got ${a.length ? a.join(', ') : 'none'}`);
  const key = a[0];
  const attr = n.attrs.get(key)!;
  switch (key) {
    case 'value':
      if (!attr.t) n.fail('the value attribute holds no tensor');
      return n.fold(tensorToHost(attr.t!, `${what}, value`));
    case 'value_float':
      return n.fold({ dims: [], data: Float32Array.of(attr.f ?? 0), float: true });
    case 'value_floats':
      return n.fold({ dims: [attr.floats?.length ?? 0], data: Float32Array.from(attr.floats ?? []), float: true });
    case 'value_int':
      return n.fold({ dims: [], data: Float64Array.of(attr.i ?? 0), float: false });
    case 'value_ints':
      return n.fold({ dims: [attr.ints?.length ?? 0], data: Float64Array.from(attr.ints ?? []), float: false });
    default:
      n.fail(`a constant given as '${key}' is not supported (supported: value, value_float(s), value_int(s))`);
  }
};

const shape: Handler = (n) => {
  n.singleOutput();
  const f = (dims: readonly number[]): HostValue => {
    const r = dims.length;
    let s = n.int('start', 0);
    let e = n.int('end', r);
    s = Math.min(Math.max(s < 0 ? s + r : s, 0), r);
    e = Math.min(Math.max(e < 0 ? e + r : e, 0), r);
    const d = dims.slice(s, Math.max(s, e));
    return { dims: [d.length], data: Float64Array.from(d), float: false };
  };
  if (n.kind(0) === 'tensor') return n.hostOp([0], ([v]) => [f(Array.from(v.data))], 0);
  n.hostOp([0], ([v]) => [f(v.dims)]);
};

const gather: Handler = (n) => {
  n.singleOutput();
  const axis = n.int('axis', 0);
  const what = `${n.L.source}: node '${n.name}' (Gather)`;
  if (n.kind(0) !== 'tensor') return n.hostOp([0, 1], ([v, i]) => [hostGather(v, i, axis, what)]);
  if (n.kind(1) === 'tensor') n.fail('gathering with runtime index tensors is not supported (indices must be constants)');
  n.emit({
    tensors: [0],
    run: ([x], rt) => {
      const ind = rt.ints(1);
      const a = normAxis(axis, x!.rank, 'axis');
      const size = x!.shape[a];
      const norm = Array.from(ind.data, (j) => {
        if (j < -size || j >= size) throw new Error(`index ${j} is out of range for axis ${a} of size ${size}`);
        return j < 0 ? j + size : j;
      });
      const it = bl.tensor(norm, ind.dims.length ? ind.dims : [1]);
      const y = bl.gather(x!, it, a);
      return [ind.dims.length ? y : bl.reshape(y, [...x!.shape.slice(0, a), ...x!.shape.slice(a + 1)])];
    },
  });
};

/** Unsqueeze / Squeeze: axes from the attribute (opset < 13) or input 1 (13+). */
function squeezeLike(kind: 'Unsqueeze' | 'Squeeze'): Handler {
  return (n) => {
    n.singleOutput();
    const fromAttr = n.opset < 13;
    const axesOf = (rt: Runtime | null, vs?: HostValue[]): number[] | undefined => {
      if (fromAttr) return n.ints('axes');
      if (!n.has(1)) return undefined;
      return Array.from(vs ? vs[1].data : rt!.ints(1).data);
    };
    const target = (dims: readonly number[], axes: number[] | undefined): number[] => {
      if (kind === 'Unsqueeze') {
        if (!axes) throw new Error('axes are required');
        const r = dims.length + axes.length;
        const ax = axes.map((a) => normAxis(a, r, 'Unsqueeze'));
        const out: number[] = [];
        let k = 0;
        for (let i = 0; i < r; i++) out.push(ax.includes(i) ? 1 : dims[k++]);
        return out;
      }
      const ax = axes ? axes.map((a) => normAxis(a, dims.length, 'Squeeze')) : dims.flatMap((d, i) => (d === 1 ? [i] : []));
      for (const a of ax) if (dims[a] !== 1) throw new Error(`axis ${a} of [${dims.join(', ')}] has size ${dims[a]}, not 1`);
      return dims.filter((_, i) => !ax.includes(i));
    };
    if (!fromAttr && n.kind(1) === 'tensor') n.fail('the axes input must be a constant');
    if (n.kind(0) !== 'tensor') return n.hostOp(fromAttr ? [0] : [0, 1], (vs) => [{ ...vs[0], dims: target(vs[0].dims, axesOf(null, vs)) }]);
    n.emit({ tensors: [0], run: ([x], rt) => [bl.reshape(x!, target(x!.shape, axesOf(rt)))] });
  };
}

const cast: Handler = (n) => {
  n.singleOutput();
  const to = n.int('to', 0);
  if (!DTYPES[to] || [8, 14, 15].includes(to)) n.fail(`casting to ${DTYPES[to] ?? `type ${to}`} is not supported`);
  const toFloat = FLOAT_TYPES.has(to);
  const conv = (v: HostValue): HostValue => (toFloat ? { ...v, float: true } : { dims: v.dims, data: Float64Array.from(v.data, (x) => (to === 9 ? Number(x !== 0) : Math.trunc(x))), float: false });
  if (n.kind(0) !== 'tensor') return n.hostOp([0], ([v]) => [conv(v)]);
  n.emit({
    tensors: [0],
    run: ([x]) => {
      if (toFloat) return [bl.reshape(x!, x!.shape)];
      if (to === 9) return [bl.notEqual(x!, 0)];
      return [bl.mul(bl.sign(x!), bl.floor(bl.abs(x!)))];
    },
  });
};

const transpose: Handler = (n) => {
  n.singleOutput();
  const perm = n.ints('perm');
  if (n.kind(0) !== 'tensor') return n.hostOp([0], ([v]) => [hostTranspose(v, perm ?? [...v.dims.keys()].reverse())]);
  n.emit({ tensors: [0], run: ([x]) => [bl.transpose(x!, perm)] });
};

const slice: Handler = (n) => {
  n.singleOutput();
  const fromAttr = n.opset < 10;
  const params = (rank: number, get: (i: number) => number[] | undefined) => {
    const starts = fromAttr ? n.ints('starts') : get(1);
    const ends = fromAttr ? n.ints('ends') : get(2);
    if (!starts || !ends || starts.length !== ends.length) throw new Error('starts and ends are required and must have equal lengths');
    const axes = (fromAttr ? n.ints('axes') : get(3)) ?? starts.map((_, i) => i);
    const steps = (fromAttr ? undefined : get(4)) ?? starts.map(() => 1);
    return { starts, ends, axes: axes.map((a) => normAxis(a, rank, 'Slice axes')), steps };
  };
  const idx = fromAttr ? [0] : [0, 1, 2, 3, 4];
  for (const i of idx.slice(1)) if (n.kind(i) === 'tensor') n.fail(`input ${i} (starts/ends/axes/steps) must be a constant`);
  if (n.kind(0) !== 'tensor') {
    return n.hostOp(idx, (vs) => {
      const p = params(vs[0].dims.length, (i) => (vs[i] ? Array.from(vs[i].data) : undefined));
      return [hostSlice(vs[0], p.starts, p.ends, p.axes, p.steps, 'Slice')];
    });
  }
  n.emit({
    tensors: [0],
    run: ([x], rt) => {
      const p = params(x!.rank, (i) => (n.has(i) ? Array.from(rt.ints(i).data) : undefined));
      const begin = x!.shape.map(() => 0);
      const size = [...x!.shape];
      p.axes.forEach((a, i) => {
        if (p.steps[i] !== 1) throw new Error(`steps other than 1 are not supported (axis ${a}: step ${p.steps[i]})`);
        [begin[a], size[a]] = sliceRange(p.starts[i], p.ends[i], 1, x!.shape[a]);
      });
      return [bl.slice(x!, begin, size)];
    },
  });
};

function reduce(kind: 'ReduceMean' | 'ReduceSum' | 'ReduceMax'): Handler {
  return (n) => {
    n.singleOutput();
    const axesInput = kind === 'ReduceSum' ? n.opset >= 13 : n.opset >= 18;
    const keep = n.int('keepdims', 1) !== 0;
    const noopEmpty = n.int('noop_with_empty_axes', 0) !== 0;
    if (axesInput && n.kind(1) === 'tensor') n.fail('the axes input must be a constant');
    n.emit({
      tensors: [0],
      run: ([x], rt) => {
        const axes = axesInput ? (n.has(1) ? Array.from(rt.ints(1).data) : []) : (n.ints('axes') ?? []);
        if (axes.length === 0 && noopEmpty) return [bl.reshape(x!, x!.shape)];
        const ax = axes.length ? axes : undefined;
        const o = { keepDims: keep };
        return [kind === 'ReduceMean' ? bl.mean(x!, ax, o) : kind === 'ReduceSum' ? bl.sum(x!, ax, o) : bl.max(x!, ax, o)];
      },
    });
  };
}

/**
 * Pad, constant mode (what torch.onnx writes before an AveragePool with padding, and for
 * F.pad): pads [x1_begin, x2_begin, ..., x1_end, ...] from input 1 (opset >= 11) or the `pads`
 * attribute, the value from input 2 or `value` (default 0). Negative pads (cropping) and the
 * reflect/edge modes are not supported.
 */
const padOp: Handler = (n) => {
  n.singleOutput();
  const mode = n.str('mode', 'constant');
  if (mode !== 'constant') n.fail(`mode '${mode}' is not supported (only 'constant')`);
  if (n.opset >= 18 && n.has(3)) n.fail('the axes input is not supported');
  const pads = n.opset >= 11 ? Array.from(n.host(1, 'pads').data) : n.ints('pads');
  if (!pads) n.fail('pads is required');
  const value = n.opset >= 11 ? (n.has(2) ? n.host(2, 'constant_value').data[0] ?? 0 : 0) : n.float('value', 0);
  if (pads!.length % 2 !== 0) n.fail(`pads must have 2 entries per axis, got [${pads!.join(', ')}]`);
  if (pads!.some((p) => !Number.isInteger(p) || p < 0)) n.fail(`pads must be non-negative integers (cropping is not supported), got [${pads!.join(', ')}]`);
  const r = pads!.length / 2;
  n.emit({
    tensors: [0],
    run: ([x]) => {
      if (x!.rank !== r) throw new Error(`pads has ${r} axes, the input [${x!.shape.join(', ')}] has ${x!.rank}`);
      return [bl.pad(x!, Array.from({ length: r }, (_, i) => [pads![i], pads![r + i]] as [number, number]), value)];
    },
  });
};

const OPS: Record<string, Handler> = {
  Pad: padOp,
  Conv: conv,
  BatchNormalization: batchNormalization,
  Gemm: gemm,
  MatMul: (n) => {
    n.singleOutput();
    n.emit({ tensors: [0, 1], run: ([a, b]) => [bl.matmul(a!, b!)] });
  },
  Add: binary(bl.add, (x, y) => x + y),
  Sub: binary(bl.sub, (x, y) => x - y),
  Mul: binary(bl.mul, (x, y) => x * y),
  Div: binary(bl.div, (x, y) => x / y),
  Pow: binary(bl.pow, (x, y) => x ** y),
  Relu: unary(bl.relu),
  Sigmoid: unary(bl.sigmoid),
  Tanh: unary(bl.tanh),
  Exp: unary(bl.exp),
  Log: unary(bl.log),
  Sqrt: unary(bl.sqrt),
  Neg: unary(bl.neg),
  Abs: unary(bl.abs),
  Reciprocal: unary(bl.reciprocal),
  Softplus: unary(bl.softplus),
  LeakyRelu: (n) => {
    const alpha = n.float('alpha', 0.01);
    unary((x) => bl.leakyRelu(x, alpha))(n);
  },
  MaxPool: pool('max'),
  AveragePool: pool('avg'),
  GlobalAveragePool: globalPool('mean'),
  GlobalMaxPool: globalPool('max'),
  Softmax: softmaxLike(bl.softmax),
  LogSoftmax: softmaxLike(bl.logSoftmax),
  Flatten: flatten,
  Reshape: reshape,
  Dropout: dropout,
  Concat: concat,
  Identity: identity,
  Constant: constant,
  Shape: shape,
  Gather: gather,
  Unsqueeze: squeezeLike('Unsqueeze'),
  Squeeze: squeezeLike('Squeeze'),
  Cast: cast,
  Transpose: transpose,
  Slice: slice,
  ReduceMean: reduce('ReduceMean'),
  ReduceSum: reduce('ReduceSum'),
  ReduceMax: reduce('ReduceMax'),
};

/** The ONNX ops loadOnnx understands. */
export const SUPPORTED_ONNX_OPS: readonly string[] = Object.keys(OPS).sort();

function valueInfo(v: ValueInfoP): OnnxValueInfo {
  const dims = v.type?.tensor_type?.shape?.dim;
  return { name: v.name ?? '', shape: dims ? dims.map((d) => (d.dim_value !== undefined ? d.dim_value : (d.dim_param ?? null))) : null };
}

export interface LoadOnnxOptions {
  /** Names the file in errors (default 'onnx'). */
  source?: string;
}

/**
 * Build a GraphModel (on the default backend) from the bytes of an .onnx file. Supported: the ops
 * in SUPPORTED_ONNX_OPS with 2-D convolution and pooling, float inputs, opsets 7 and later
 * (tested: PyTorch exports at opsets 11-17). Errors name the file, the node, its op and the opset.
 */
export function loadOnnx(bytes: Uint8Array, opts: LoadOnnxOptions = {}): OnnxModel {
  const source = opts.source ?? 'onnx';
  const made: { L?: Loader } = {};
  try {
    return buildModel(bytes, source, made);
  } catch (e) {
    // free what was made before the error
    for (const n of made.L?.nodes ?? []) n.module?.dispose();
    for (const c of made.L?.constants.values() ?? []) c.dispose();
    throw e;
  }
}

function buildModel(bytes: Uint8Array, source: string, made: { L?: Loader }): OnnxModel {
  const m = parseOnnx(bytes, source);
  const g = m.graph;
  if (!g) throw new Error(`${source}: not an ONNX model: no graph (is the file truncated, or not an .onnx file?)`);
  const ops = (m.opset_import ?? []).filter((o) => !o.domain || o.domain === 'ai.onnx');
  if (!ops.length) {
    throw new Error(`${source}: the model imports no opset for the default domain (ai.onnx); the file may be truncated or not an ONNX model`);
  }
  const opset = Math.max(...ops.map((o) => o.version ?? 0));
  if (opset < 7) throw new Error(`${source}: opset ${opset} is too old; supported: opset 7 and later (tested 11-17). Re-export with a newer opset.`);
  if (g.sparse_initializer?.length) throw new Error(`${source}: sparse initializers are not supported`);

  const graphOutputs = (g.output ?? []).map((o) => o.name ?? '');
  const L = new Loader(source, opset, graphOutputs);
  made.L = L;
  const inits = g.initializer ?? [];
  const initNames = new Set(inits.map((t) => t.name ?? ''));
  const inputs = (g.input ?? []).filter((i) => !initNames.has(i.name ?? ''));
  for (const i of inputs) {
    if (!i.name) throw new Error(`${source}: a graph input has no name`);
    const et = i.type?.tensor_type?.elem_type;
    if (et !== undefined && !FLOAT_TYPES.has(et)) throw new Error(`${source}: graph input '${i.name}' has type ${DTYPES[et] ?? et}; only float inputs are supported`);
    L.vals.set(i.name, { kind: 'tensor' });
  }
  inits.forEach((t, k) => {
    const name = t.name ?? '';
    if (!name) throw new Error(`${source}: initializer ${k} has no name`);
    L.vals.set(name, { kind: 'host', v: tensorToHost(t, `${source}: initializer '${name}'`) });
  });
  const nodesP = g.node ?? [];
  for (const nd of nodesP) for (const i of nd.input ?? []) if (i) L.uses.set(i, (L.uses.get(i) ?? 0) + 1);
  for (const o of graphOutputs) L.uses.set(o, (L.uses.get(o) ?? 0) + 1);

  const taken = new Set<string>();
  nodesP.forEach((nd, index) => {
    const op = nd.op_type ?? '';
    let name = nd.name || `${op}_${index}`;
    if (taken.has(name)) name = `${name}_${index}`;
    taken.add(name);
    const domain = nd.domain ?? '';
    const ins = nd.input ?? [];
    for (const i of ins) {
      if (i && !L.vals.has(i)) {
        throw new Error(
          `${source}: node '${name}' (${op}) reads input '${i}', which is not a graph input, an initializer or an earlier node's output (missing initializer?)`,
        );
      }
    }
    const h = domain === '' || domain === 'ai.onnx' ? OPS[op] : undefined;
    if (!h) {
      throw new Error(
        `${source}: unsupported ONNX op '${domain && domain !== 'ai.onnx' ? `${domain}.` : ''}${op}' in node '${name}' (opset ${opset}); supported ops: ${SUPPORTED_ONNX_OPS.join(', ')}`,
      );
    }
    try {
      h(new NodeCtx(L, name, op, ins, nd.output ?? [], nd.attribute ?? []));
    } catch (e) {
      // errors from the engine or the layers (bad sizes): name the file and the node
      const msg = (e as Error).message ?? String(e);
      if (msg.startsWith(`${source}: `)) throw e;
      throw new Error(`${source}: node '${name}' (${op}, opset ${opset}): ${msg}`);
    }
  });

  for (const o of graphOutputs) {
    const v = L.vals.get(o);
    if (!v) throw new Error(`${source}: graph output '${o}' is not produced by any node`);
    if (v.kind === 'host') L.constant(o, v.v);
  }
  const info: OnnxInfo = {
    irVersion: m.ir_version ?? 0,
    opset,
    producer: [m.producer_name, m.producer_version].filter(Boolean).join(' '),
    graphName: g.name ?? '',
    inputs: inputs.map(valueInfo),
    outputs: (g.output ?? []).map(valueInfo),
    parameterNames: L.parameterNames,
  };
  return new OnnxModel(L.nodes, inputs.map((i) => i.name!), graphOutputs, L.constants, info);
}

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
//
// Untrusted files: every failure is an Error starting "<source>: ". The decoder (protobuf.ts)
// refuses reads past a message's end, bad wire types, over-long varints, groups nested over 100
// deep, more than maxMessages messages and files over maxBytes. The loader refuses a missing graph
// or opset, initializer dims that are not safe integers or hold over 2^31 elements, data lengths
// that disagree with the dims, external/segmented/sparse data, NaN/inf float initializers (unless
// allowNonFinite), a node reading a name nothing earlier defines (saying whether it is a cycle or
// a later node's output), a node redefining a name, host values over MAX_HOST_ELEMENTS, and
// unsupported ops and attributes (naming the node, its op and the opset).
import * as bl from '../../../engine/index.ts';
import type { Tensor } from '../../../engine/index.ts';
import { GraphModel, type GraphNode } from '../../containers.ts';
import type { Module } from '../../module.ts';
import { type AttrP, type ValueInfoP, parseOnnx } from './schema.ts';
import { DTYPES, FLOAT_TYPES, firstNonFinite, type HostValue, tensorToHost } from './host.ts';
import { OPS } from './ops/index.ts';

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

export type Val = { kind: 'tensor' } | { kind: 'host'; v: HostValue } | { kind: 'dyn' };

export interface Runtime {
  /** Input i as a host value (a load-time constant or a shape value computed earlier in this run). */
  ints(i: number): HostValue;
  /** Set output k of an int-valued node. */
  setInt(k: number, v: HostValue): void;
}

export interface EmitSpec {
  /** Indices of the node's inputs passed to `run` as tensors (absent optional inputs: undefined). */
  tensors: number[];
  run(ts: (Tensor | undefined)[], rt: Runtime): Tensor[];
  module?: Module;
  /** The outputs are host values computed at run time (via rt.setInt), not tensors. */
  intOutputs?: boolean;
}

export const ATTR_TYPES: Record<number, string> = { 1: 'FLOAT', 2: 'INT', 3: 'STRING', 4: 'TENSOR', 5: 'GRAPH', 6: 'FLOATS', 7: 'INTS', 8: 'STRINGS', 9: 'TENSORS', 10: 'GRAPHS' };

export class NodeCtx {
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

export class Loader {
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
        // a shape value used as a tensor is made on the backend of the node's tensor inputs
        const backend = args.find((a) => a)?.backend;
        const ts = srcs.map((s) => {
          if (!s) return undefined;
          if (s.k === 'env') return args[s.j];
          const v = rt([]).ints(s.i);
          return bl.tensor(v.data, v.dims, backend);
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

/** The ONNX ops loadOnnx understands. */
export const SUPPORTED_ONNX_OPS: readonly string[] = Object.keys(OPS).sort();

export function valueInfo(v: ValueInfoP): OnnxValueInfo {
  const dims = v.type?.tensor_type?.shape?.dim;
  return { name: v.name ?? '', shape: dims ? dims.map((d) => (d.dim_value !== undefined ? d.dim_value : (d.dim_param ?? null))) : null };
}

export interface LoadOnnxOptions {
  /** Names the file in errors (default 'onnx'). */
  source?: string;
  /** The largest file accepted, in bytes (default 2 GiB, protobuf's limit). */
  maxBytes?: number;
  /** The most protobuf messages (nodes, attributes, tensors, ...) the file may hold (default 10,000,000). */
  maxMessages?: number;
  /** Accept NaN or infinite values in float initializers (default false: an error naming the initializer). */
  allowNonFinite?: boolean;
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
    return buildModel(bytes, source, made, opts);
  } catch (e) {
    // free what was made before the error
    for (const n of made.L?.nodes ?? []) n.module?.dispose();
    for (const c of made.L?.constants.values() ?? []) c.dispose();
    throw e;
  }
}

export function buildModel(bytes: Uint8Array, source: string, made: { L?: Loader }, opts: LoadOnnxOptions = {}): OnnxModel {
  const m = parseOnnx(bytes, source, { maxBytes: opts.maxBytes, maxMessages: opts.maxMessages });
  const g = m.graph;
  if (!g) throw new Error(`${source}: not an ONNX model: no graph (is the file truncated, or not an .onnx file?)`);
  const ops = (m.opset_import ?? []).filter((o) => !o.domain || o.domain === 'ai.onnx');
  if (!ops.length) {
    throw new Error(`${source}: the model imports no opset for the default domain (ai.onnx); the file may be truncated or not an ONNX model`);
  }
  const opset = ops.reduce((a, o) => Math.max(a, o.version ?? 0), 0); // (not Math.max(...): a hostile file may list millions)
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
    const v = tensorToHost(t, `${source}: initializer '${name}'`);
    const bad = v.float && !opts.allowNonFinite ? firstNonFinite(v.data) : null;
    if (bad) {
      throw new Error(`${source}: initializer '${name}' holds ${bad[1]} at flat index ${bad[0]} (of ${v.data.length}): the weights are corrupt (pass allowNonFinite: true to load them anyway)`);
    }
    L.vals.set(name, { kind: 'host', v });
  });
  const nodesP = g.node ?? [];
  for (const nd of nodesP) for (const i of nd.input ?? []) if (i) L.uses.set(i, (L.uses.get(i) ?? 0) + 1);
  for (const o of graphOutputs) L.uses.set(o, (L.uses.get(o) ?? 0) + 1);

  // Where each name is first produced, to explain a read of a later node's output (a cycle, or
  // nodes out of topological order: ONNX requires them sorted).
  const producer = new Map<string, number>();
  nodesP.forEach((nd, k) => {
    for (const o of nd.output ?? []) if (o && !producer.has(o)) producer.set(o, k);
  });
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
        const p = producer.get(i);
        const why =
          p === undefined
            ? 'missing initializer?'
            : p === index
              ? 'the node reads its own output: the graph is cyclic'
              : `it is produced by node ${p} ('${nodesP[p].name || nodesP[p].op_type}'), later: the graph is cyclic or its nodes are not topologically sorted`;
        throw new Error(`${source}: node '${name}' (${op}) reads input '${i}', which is not a graph input, an initializer or an earlier node's output (${why})`);
      }
    }
    for (const o of nd.output ?? []) {
      if (o && L.vals.has(o)) {
        throw new Error(`${source}: node '${name}' (${op}) writes output '${o}', which is already defined (a graph input, an initializer or another node's output): ONNX graphs assign each name once`);
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

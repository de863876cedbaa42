// A bundled backlight model written as an ONNX file (opset 13), so that onnxruntime-node can run
// the very same weights: bench/kernel-shap.ts times it as the CPU peer, and backlight's own ONNX
// loader reads it back as a check. A hand-written protobuf encoder (the ONNX schema's field
// numbers, onnx/onnx.proto3) for the layers the bundled models use: Sequential, Conv2d,
// BatchNorm2d (inference), ReLU, MaxPool2d (symmetric padding), Residual (Add), GlobalAvgPool (+ Flatten), Linear (Gemm),
// Standardize (Sub, Div), Dropout (identity in eval mode). Anything else throws, naming the layer.
import type { Module } from '../../models/module.ts';
import { Residual, Sequential } from '../../models/containers.ts';
import { BatchNorm2d, Conv2d, Dropout, GlobalAvgPool, Linear, MaxPool2d, ReLU } from '../../models/layers.ts';
import { Standardize } from '../../models/zoo/index.ts';

// ---- protobuf wire format ----

class Writer {
  private parts: number[] = [];
  varint(v: number): this {
    let n = BigInt.asUintN(64, BigInt(v));
    while (n >= 0x80n) {
      this.parts.push(Number(n & 0x7fn) | 0x80);
      n >>= 7n;
    }
    this.parts.push(Number(n));
    return this;
  }
  tag(field: number, wire: number): this {
    return this.varint((field << 3) | wire);
  }
  int(field: number, v: number): this {
    return this.tag(field, 0).varint(v);
  }
  bytes(field: number, b: Uint8Array): this {
    this.tag(field, 2).varint(b.length);
    for (const x of b) this.parts.push(x);
    return this;
  }
  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }
  msg(field: number, w: Writer): this {
    return this.bytes(field, w.finish());
  }
  float(field: number, v: number): this {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    for (const x of b) this.parts.push(x);
    return this;
  }
  finish(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

type Attr = { name: string; i?: number; f?: number; ints?: number[] };

function attribute(a: Attr): Writer {
  const w = new Writer().string(1, a.name);
  // AttributeProto: f = 2, i = 3, ints = 8, type = 20 (FLOAT 1, INT 2, INTS 7).
  if (a.f !== undefined) w.float(2, a.f).int(20, 1);
  else if (a.i !== undefined) w.int(3, a.i).int(20, 2);
  else {
    for (const v of a.ints!) w.int(8, v);
    w.int(20, 7);
  }
  return w;
}

function node(op: string, inputs: string[], outputs: string[], name: string, attrs: Attr[] = []): Writer {
  const w = new Writer();
  for (const i of inputs) w.string(1, i);
  for (const o of outputs) w.string(2, o);
  w.string(3, name).string(4, op);
  for (const a of attrs) w.msg(5, attribute(a));
  return w;
}

function tensorProto(name: string, dims: readonly number[], data: Float32Array): Writer {
  const w = new Writer();
  for (const d of dims) w.int(1, d);
  w.int(2, 1); // FLOAT
  w.string(8, name);
  w.bytes(9, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return w;
}

function valueInfo(name: string, dims: readonly (number | string)[]): Writer {
  const shape = new Writer();
  for (const d of dims) shape.msg(1, typeof d === 'number' ? new Writer().int(1, d) : new Writer().string(2, d));
  const tensorType = new Writer().int(1, 1).msg(2, shape);
  return new Writer().string(1, name).msg(2, new Writer().msg(1, tensorType));
}

const pair = (v: unknown, what: string, path: string): [number, number] => {
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && v.length === 2 && v.every((e) => typeof e === 'number')) return [v[0], v[1]];
  throw new Error(`onnx-export: layer '${path}': unsupported ${what} ${JSON.stringify(v)}`);
};

/**
 * The model as ONNX bytes. `host` holds its stateDict on the host; `inputShape` is one item's
 * shape (the batch axis is symbolic, 'N'; a string dimension is symbolic too).
 */
export function exportOnnx(model: Module, host: Map<string, Float32Array>, inputShape: readonly (number | string)[], outputs: number): Uint8Array {
  const nodes: Writer[] = [];
  const inits: Writer[] = [];
  let k = 0;
  const fresh = (s: string) => `${s}_${k++}`;
  const init = (name: string, shape: readonly number[]) => {
    const a = host.get(name);
    if (!a) throw new Error(`onnx-export: no '${name}' in the state dict`);
    inits.push(tensorProto(name, shape, a));
    return name;
  };
  const shapeOf = (name: string) => [...(model.stateDict().get(name)?.shape ?? [])];
  function emit(m: Module, x: string): string {
    const p = m.path;
    if (m instanceof Sequential) return m.layers.reduce((h, l) => emit(l, h), x);
    if (m instanceof Dropout) return x;
    if (m instanceof Residual) {
      const a = emit(m.block, x);
      const b = m.shortcut ? emit(m.shortcut, x) : x;
      const y = fresh('add');
      nodes.push(node('Add', [a, b], [y], y));
      return y;
    }
    if (m instanceof ReLU) {
      const y = fresh('relu');
      nodes.push(node('Relu', [x], [y], y));
      return y;
    }
    if (m instanceof Standardize) {
      const a = fresh('sub'), b = fresh('div');
      nodes.push(node('Sub', [x, init(`${p}.mean`, shapeOf(`${p}.mean`))], [a], a));
      nodes.push(node('Div', [a, init(`${p}.std`, shapeOf(`${p}.std`))], [b], b));
      return b;
    }
    if (m instanceof Linear) {
      const y = fresh('gemm');
      const ins = [x, init(`${p}.weight`, shapeOf(`${p}.weight`))];
      if (host.has(`${p}.bias`)) ins.push(init(`${p}.bias`, shapeOf(`${p}.bias`)));
      nodes.push(node('Gemm', ins, [y], y, [{ name: 'transB', i: 1 }]));
      return y;
    }
    if (m instanceof Conv2d) {
      const o = m.opts;
      if ((o.groups ?? 1) !== 1) throw new Error(`onnx-export: conv '${p}': groups not exported`);
      const [sh, sw] = pair(o.stride ?? 1, 'stride', p);
      const [ph, pw] = pair(o.padding ?? 0, 'padding', p);
      const [dh, dw] = pair(o.dilation ?? 1, 'dilation', p);
      const ws = shapeOf(`${p}.weight`);
      const y = fresh('conv');
      const ins = [x, init(`${p}.weight`, ws)];
      if (host.has(`${p}.bias`)) ins.push(init(`${p}.bias`, shapeOf(`${p}.bias`)));
      nodes.push(node('Conv', ins, [y], y, [{ name: 'kernel_shape', ints: ws.slice(2) }, { name: 'pads', ints: [ph, pw, ph, pw] }, { name: 'strides', ints: [sh, sw] }, { name: 'dilations', ints: [dh, dw] }]));
      return y;
    }
    if (m instanceof BatchNorm2d) {
      const y = fresh('bn');
      const c = shapeOf(`${p}.weight`);
      nodes.push(node('BatchNormalization', [x, init(`${p}.weight`, c), init(`${p}.bias`, c), init(`${p}.running_mean`, c), init(`${p}.running_var`, c)], [y], y, [{ name: 'epsilon', f: m.eps }]));
      return y;
    }
    if (m instanceof MaxPool2d) {
      const o = m.opts as { kernel: number | [number, number]; stride?: number | [number, number]; padding?: number };
      const kk = pair(o.kernel, 'kernel', p);
      const st = pair(o.stride ?? o.kernel, 'stride', p);
      const [ph, pw] = pair(o.padding ?? 0, 'padding', p);
      const y = fresh('maxpool');
      nodes.push(node('MaxPool', [x], [y], y, [{ name: 'kernel_shape', ints: kk }, { name: 'strides', ints: st }, { name: 'pads', ints: [ph, pw, ph, pw] }]));
      return y;
    }
    if (m instanceof GlobalAvgPool) {
      const a = fresh('gap'), b = fresh('flatten');
      nodes.push(node('GlobalAveragePool', [x], [a], a));
      nodes.push(node('Flatten', [a], [b], b, [{ name: 'axis', i: 1 }]));
      return b;
    }
    throw new Error(`onnx-export: layer '${p}' (${m.kind}) is not exported`);
  }
  const last = emit(model, 'input');
  nodes.push(node('Identity', [last], ['logits'], 'output'));
  const graph = new Writer();
  for (const n of nodes) graph.msg(1, n);
  graph.string(2, 'backlight');
  for (const t of inits) graph.msg(5, t);
  graph.msg(11, valueInfo('input', ['N', ...inputShape]));
  graph.msg(12, valueInfo('logits', ['N', outputs]));
  // ModelProto: ir_version 1 (7), producer_name 2, graph 7, opset_import 8 (domain '', version 13).
  return new Writer().int(1, 7).string(2, 'backlight bench').msg(7, graph).msg(8, new Writer().string(1, '').int(2, 13)).finish();
}

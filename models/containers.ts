// Containers: Sequential (children named 0, 1, ... or by name), Residual (block + shortcut, added),
// and GraphModel, a small DAG of named nodes (residual networks, imported ONNX graphs).
import * as bl from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import { tap } from '../engine/index.ts';
import { layerComposite } from '../engine/autodiff/composite.ts';
import { Module } from './module.ts';

export class Sequential extends Module {
  get kind() {
    return 'Sequential';
  }
  constructor(...layers: (Module | [string, Module])[]) {
    super();
    layers.forEach((l, i) => (Array.isArray(l) ? this.addChild(l[0], l[1]) : this.addChild(String(i), l)));
  }
  get layers(): Module[] {
    return this.children.map(([, m]) => m);
  }
  forward(x: Tensor): Tensor {
    return bl.tidy(() => {
      let h = x;
      for (const [, m] of this.children) h = m.call(h);
      return h;
    });
  }
}

/**
 * The sum of a residual connection's branches, as a layer of its own, so that a rule can be
 * attached to residual additions (LRP splits relevance between the branches in proportion to
 * their contributions) without touching a bias add or BatchNorm's add.
 */
export class ResidualSum extends Module {
  get kind() {
    return 'ResidualSum';
  }
  forward(a: Tensor, ...more: Tensor[]): Tensor {
    return bl.tidy(() => more.reduce((s, b) => bl.add(s, b), a));
  }
}

/** y = block(x) + shortcut(x) (identity when no shortcut); the sum is the child 'sum' (a ResidualSum). */
export class Residual extends Module {
  get kind() {
    return 'Residual';
  }
  readonly block: Module;
  readonly shortcut: Module | null;
  readonly sum: ResidualSum;
  constructor(block: Module, shortcut?: Module) {
    super();
    this.block = this.addChild('block', block);
    this.shortcut = shortcut ? this.addChild('shortcut', shortcut) : null;
    this.sum = this.addChild('sum', new ResidualSum());
  }
  forward(x: Tensor): Tensor {
    return bl.tidy(() => this.sum.call(this.block.call(x), this.shortcut ? this.shortcut.call(x) : x));
  }
}

/** A node of a GraphModel: computes `outputs` from named `inputs` (graph inputs or other nodes' outputs). */
export interface GraphNode {
  name: string;
  /** The op's type, for listings and errors ('Conv', 'Add', a layer kind). */
  op: string;
  inputs: string[];
  outputs: string[];
  /** A layer whose parameters belong to the model, if the node has one. */
  module?: Module;
  /** The layer kind rules address the node by ('Conv2d'); default: the module's kind, or one mapped from `op`. */
  kind?: string;
  run(inputs: Tensor[]): Tensor[];
}

/** The layer kinds of ONNX-style op types, so that rule sets written for layers apply to graphs. */
const OP_KINDS: Record<string, string> = {
  Conv: 'Conv2d', Gemm: 'Linear', MatMul: 'Linear', BatchNormalization: 'BatchNorm2d',
  Relu: 'ReLU', LeakyRelu: 'LeakyReLU', Sigmoid: 'Sigmoid', Tanh: 'Tanh', Softplus: 'Softplus',
  MaxPool: 'MaxPool2d', AveragePool: 'AvgPool2d', GlobalAveragePool: 'GlobalAvgPool',
  Flatten: 'Flatten', Reshape: 'Flatten', Dropout: 'Dropout', Identity: 'Identity', Pad: 'Pad',
};

/** Which constant inputs of a node are which parameter (so LRP's weight modifiers find them). */
function constantName(op: string, i: number): string {
  if ((op === 'Conv' || op === 'Gemm' || op === 'MatMul') && i === 1) return 'weight';
  if ((op === 'Conv' || op === 'Gemm') && i === 2) return 'bias';
  if (op === 'Add' || op === 'Sub') return 'bias';
  return `input${i}`;
}

/**
 * A DAG of nodes run in order. Every node output is tapped under its tensor name, and a node's
 * first output also under the node's name, so layers can be addressed either way.
 */
export class GraphModel extends Module {
  get kind() {
    return 'GraphModel';
  }
  constructor(
    readonly nodes: GraphNode[],
    readonly inputNames: string[],
    readonly outputNames: string[],
    readonly constants: Map<string, Tensor> = new Map(),
  ) {
    super();
    const known = new Set([...inputNames, ...constants.keys()]);
    for (const n of nodes) {
      for (const i of n.inputs) {
        if (i !== '' && !known.has(i)) throw new Error(`GraphModel: node '${n.name}' (${n.op}) reads '${i}', which no earlier node produces`);
      }
      n.outputs.forEach((o) => known.add(o));
      if (n.module) this.addChild(n.name, n.module);
    }
    for (const c of constants.values()) bl.keep(c);
    for (const o of outputNames) if (!known.has(o)) throw new Error(`GraphModel: output '${o}' is never produced`);
  }
  forward(x: Tensor): Tensor {
    if (this.inputNames.length !== 1) throw new Error(`GraphModel: forward takes one input; this graph has ${this.inputNames.length} (use run)`);
    return this.run([x])[0];
  }
  run(inputs: Tensor[]): Tensor[] {
    if (inputs.length !== this.inputNames.length) throw new Error(`GraphModel: expected ${this.inputNames.length} inputs, got ${inputs.length}`);
    return bl.tidy(() => {
      const env = new Map<string, Tensor>(this.constants);
      this.inputNames.forEach((n, i) => env.set(n, inputs[i]));
      for (const node of this.nodes) {
        const args = node.inputs.map((i) => (i === '' ? (undefined as unknown as Tensor) : env.get(i)!));
        let outs: Tensor[];
        try {
          outs = node.outputs.length === 1 ? [this.runLayer(node, args)] : node.run(args);
        } catch (e) {
          throw new Error(`node '${node.name}' (${node.op}): ${(e as Error).message}`);
        }
        node.outputs.forEach((o, k) => {
          if (!outs[k]) return;
          let t = tap(o, outs[k]);
          if (k === 0 && node.name !== o) t = tap(node.name, t);
          env.set(o, t);
        });
      }
      return this.outputNames.map((o) => env.get(o)!);
    });
  }
  /** The node's layer kind: its own, its module's, or its op's (an Add of two activations is a ResidualSum). */
  kindOf(node: GraphNode): string {
    if (node.kind) return node.kind;
    if (node.module) return node.module.kind;
    if (node.op === 'Add' && node.inputs.length === 2 && node.inputs.every((i) => !this.constants.has(i))) return 'ResidualSum';
    // A MatMul/Gemm/Conv is a linear layer only with a constant weight: a product of two
    // activations is not one (LRP's linear rules would double its relevance).
    if ((node.op === 'MatMul' || node.op === 'Gemm' || node.op === 'Conv') && !(node.inputs.length > 1 && this.constants.has(node.inputs[1]))) return node.op;
    return OP_KINDS[node.op] ?? node.op;
  }

  /**
   * One single-output node as a layer composite (path = node name, kind = kindOf, aliases = the
   * op type), its graph constants and its module's tensors as its parameters.
   */
  private runLayer(node: GraphNode, args: Tensor[]): Tensor {
    const data: number[] = [];
    const consts: number[] = [];
    node.inputs.forEach((name, i) => (name !== '' && this.constants.has(name) ? consts : data).push(i));
    const constNames = consts.map((i) => constantName(node.op, i));
    const m = node.module;
    return layerComposite({
      kind: this.kindOf(node),
      aliases: [node.op],
      path: node.name,
      module: node,
      inputs: data.map((i) => args[i]),
      params: () => [...(m ? m.ownTensors() : []), ...consts.map((i, k) => [constNames[k], args[i]] as [string, Tensor])],
      forward: (ins, ps) => {
        const a = [...args];
        data.forEach((i, k) => (a[i] = ins[k]));
        consts.forEach((i, k) => (a[i] = ps[constNames[k]]));
        const run = () => node.run(a)[0];
        if (!m) return run();
        const own = Object.fromEntries(m.ownTensors().map(([n]) => [n, ps[n]]));
        return m.withTensors(own, run);
      },
      run: () => node.run(args)[0],
    });
  }

  /** Node names and their output tensor names, for `--layer` listings. */
  layerNames(): { node: string; op: string; outputs: string[] }[] {
    return this.nodes.map((n) => ({ node: n.name, op: n.op, outputs: n.outputs }));
  }
}

// Module: the base of every layer and model. A module owns named parameters and buffers, holds
// named children, and knows its path in the model ('features.3'), under which its output is tapped
// so explainers can ask for gradients at any layer by name (engine tap / valueAndGradAt).
import { type Tensor, keep, tap } from '../engine/index.ts';
import { fmtShape } from '../engine/shape.ts';

export abstract class Module {
  /** Dotted path from the root model ('' for the root). */
  path = '';
  training = false;
  protected readonly params: Record<string, Tensor> = {};
  protected readonly buffers: Record<string, Tensor> = {};
  protected readonly children: [string, Module][] = [];

  /** A short type name, as in PyTorch ('Conv2d'). */
  abstract get kind(): string;

  /** The computation, on one input tensor. Call `call` instead to get the output tapped. */
  abstract forward(x: Tensor): Tensor;

  /** forward, with the output tapped under this module's path. */
  call(x: Tensor): Tensor {
    const y = this.forward(x);
    return this.path ? tap(this.path, y) : y;
  }

  protected addParam(name: string, t: Tensor): Tensor {
    this.params[name] = keep(t);
    return t;
  }

  protected addBuffer(name: string, t: Tensor): Tensor {
    this.buffers[name] = keep(t);
    return t;
  }

  protected addChild<M extends Module>(name: string, m: M): M {
    this.children.push([name, m]);
    m.setPath(this.path ? `${this.path}.${name}` : name);
    return m;
  }

  /** Re-root the paths of this module and its children. */
  setPath(path: string): void {
    this.path = path;
    for (const [n, c] of this.children) c.setPath(path ? `${path}.${n}` : n);
  }

  param(name: string): Tensor {
    const t = this.params[name];
    if (!t) throw new Error(`${this.kind} '${this.path}': no parameter '${name}' (has ${Object.keys(this.params).join(', ') || 'none'})`);
    return t;
  }

  buffer(name: string): Tensor {
    const t = this.buffers[name];
    if (!t) throw new Error(`${this.kind} '${this.path}': no buffer '${name}'`);
    return t;
  }

  namedChildren(): readonly [string, Module][] {
    return this.children;
  }

  /** Every module under this one (itself first) with its full path. */
  namedModules(): [string, Module][] {
    const out: [string, Module][] = [[this.path, this]];
    for (const [, c] of this.children) out.push(...c.namedModules());
    return out;
  }

  /** A module by full path ('features.3'); the error lists what exists. */
  module(path: string): Module {
    const m = this.namedModules().find(([p]) => p === path);
    if (!m) {
      throw new Error(`no layer named '${path}' in this model; layers: ${this.namedModules().map(([p]) => p).filter(Boolean).join(', ')}`);
    }
    return m[1];
  }

  /** Parameters by full dotted name ('features.0.weight'), in definition order. */
  namedParameters(): [string, Tensor][] {
    const out: [string, Tensor][] = Object.entries(this.params).map(([n, t]) => [this.path ? `${this.path}.${n}` : n, t]);
    for (const [, c] of this.children) out.push(...c.namedParameters());
    return out;
  }

  namedBuffers(): [string, Tensor][] {
    const out: [string, Tensor][] = Object.entries(this.buffers).map(([n, t]) => [this.path ? `${this.path}.${n}` : n, t]);
    for (const [, c] of this.children) out.push(...c.namedBuffers());
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Parameters and buffers by full name (PyTorch's state_dict). */
  stateDict(): Map<string, Tensor> {
    return new Map([...this.namedParameters(), ...this.namedBuffers()]);
  }

  /** Replace a parameter or buffer by full name (the old tensor is disposed unless `disposeOld` is false). */
  setTensor(fullName: string, t: Tensor, disposeOld = true): void {
    const dot = fullName.lastIndexOf('.');
    const owner = dot < 0 ? this : this.module(this.path ? `${this.path}.${fullName.slice(0, dot)}` : fullName.slice(0, dot));
    const local = fullName.slice(dot + 1);
    const table = local in owner.params ? owner.params : local in owner.buffers ? owner.buffers : null;
    if (!table) throw new Error(`setTensor: '${fullName}' is not a parameter or buffer of this model`);
    const old = table[local];
    if (old.shape.join() !== t.shape.join()) throw new Error(`setTensor: '${fullName}' has shape ${fmtShape(old.shape)}, got ${fmtShape(t.shape)}`);
    table[local] = keep(t);
    if (disposeOld && old !== t) old.dispose();
  }

  /** Load tensors by name; strict: every entry must match a parameter/buffer and vice versa. */
  loadStateDict(state: Map<string, Tensor>, opts: { strict?: boolean } = {}): void {
    const own = this.stateDict();
    if (opts.strict ?? true) {
      const missing = [...own.keys()].filter((k) => !state.has(k));
      const extra = [...state.keys()].filter((k) => !own.has(k));
      if (missing.length || extra.length) {
        throw new Error(`loadStateDict: ${missing.length ? `missing ${missing.join(', ')}` : ''}${missing.length && extra.length ? '; ' : ''}${extra.length ? `unexpected ${extra.join(', ')}` : ''}`);
      }
    }
    for (const [k, t] of state) if (own.has(k)) this.setTensor(this.path ? k.slice(this.path.length + 1) : k, t);
  }

  train(on = true): this {
    for (const [, m] of this.namedModules()) m.training = on;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  dispose(): void {
    for (const t of [...this.parameters(), ...this.namedBuffers().map(([, b]) => b)]) t.dispose();
  }
}

// Module: the base of every layer and model. A module owns named parameters and buffers, holds
// named children, and knows its path in the model ('features.3'), under which its output is tapped
// so explainers can ask for gradients at any layer by name (engine tap / valueAndGradAt).
import { type Tensor, keep, tap } from '../engine/index.ts';
import { layerComposite } from '../engine/autodiff/composite.ts';
import { fmtShape } from '../engine/shape.ts';

export abstract class Module {
  /** Dotted path from the root model ('' for the root). */
  path = '';
  training = false;
  protected readonly params: Record<string, Tensor> = {};
  protected readonly buffers: Record<string, Tensor> = {};
  protected readonly children: [string, Module][] = [];
  /** Parameters/buffers substituted by name during a rule's re-run of the layer (withTensors). */
  private substituted: Record<string, Tensor> | null = null;

  /** A short type name, as in PyTorch ('Conv2d'). */
  abstract get kind(): string;

  /**
   * The computation (one input tensor for most layers; ResidualSum takes several). Call `call`
   * instead: it records the layer for rules keyed by kind or path, and taps the output.
   */
  abstract forward(x: Tensor, ...more: Tensor[]): Tensor;

  /**
   * forward, as a layer composite (so withRules({ Conv2d: rule }) or { 'features.3': rule } can
   * replace this layer's backward rule), with the output tapped under this module's path.
   */
  call(...xs: Tensor[]): Tensor {
    const y = layerComposite({
      kind: this.kind,
      path: this.path,
      module: this,
      inputs: xs,
      params: () => this.ownTensors(),
      forward: (ins, ps) => this.withTensors(ps, () => this.forward(...(ins as [Tensor, ...Tensor[]]))),
      run: () => this.forward(...(xs as [Tensor, ...Tensor[]])),
    });
    return this.path ? tap(this.path, y) : y;
  }

  /** Parameters then buffers of this module and its descendants, by name relative to it ('weight', 'block.0.weight'). */
  ownTensors(): [string, Tensor][] {
    const cut = this.path ? this.path.length + 1 : 0;
    return [...this.namedParameters(), ...this.namedBuffers()].map(([n, t]) => [n.slice(cut), t]);
  }

  /**
   * Run fn with some parameters/buffers (names relative to this module, as ownTensors gives them)
   * replaced, then restore them. What rules use to re-run a layer with modified weights.
   */
  withTensors<T>(tensors: Readonly<Record<string, Tensor>>, fn: () => T): T {
    const byOwner = new Map<Module, Record<string, Tensor>>();
    for (const [name, t] of Object.entries(tensors)) {
      const dot = name.lastIndexOf('.');
      const owner = dot < 0 ? this : this.module(this.path ? `${this.path}.${name.slice(0, dot)}` : name.slice(0, dot));
      const local = name.slice(dot + 1);
      if (!(local in owner.params) && !(local in owner.buffers)) throw new Error(`${this.kind} '${this.path}': withTensors: no parameter or buffer '${name}'`);
      const rec = byOwner.get(owner) ?? {};
      rec[local] = t;
      byOwner.set(owner, rec);
    }
    const saved = [...byOwner.keys()].map((m) => [m, m.substituted] as const);
    for (const [m, rec] of byOwner) m.substituted = { ...(m.substituted ?? {}), ...rec };
    try {
      return fn();
    } finally {
      for (const [m, prev] of saved) m.substituted = prev;
    }
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
    const t = this.substituted?.[name] ?? this.params[name];
    if (!t) throw new Error(`${this.kind} '${this.path}': no parameter '${name}' (has ${Object.keys(this.params).join(', ') || 'none'})`);
    return t;
  }

  /** A parameter the layer may lack (a conv's bias), or undefined. */
  optParam(name: string): Tensor | undefined {
    return this.params[name] ? this.param(name) : undefined;
  }

  buffer(name: string): Tensor {
    const t = this.substituted?.[name] ?? this.buffers[name];
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

  /**
   * Put `t` in as this module's own parameter (or buffer) `name`, created if absent, keeping the
   * old tensor undisposed; the returned function restores exactly what was there (the same tensor
   * object, or no such entry) and disposes `t`. What canonizers use for reversible rewrites.
   */
  swapTensor(name: string, t: Tensor, as: 'param' | 'buffer' = 'param'): () => void {
    const table = as === 'param' ? this.params : this.buffers;
    const had = Object.prototype.hasOwnProperty.call(table, name);
    const old = table[name];
    if (had && old.shape.join() !== t.shape.join()) throw new Error(`${this.kind} '${this.path}': swapTensor '${name}' has shape ${fmtShape(old.shape)}, got ${fmtShape(t.shape)}`);
    table[name] = keep(t);
    let undone = false;
    return () => {
      if (undone) return;
      undone = true;
      if (table[name] !== t) throw new Error(`${this.kind} '${this.path}': swapTensor undo of '${name}': the entry was replaced since (undo rewrites in reverse order)`);
      if (had) table[name] = old;
      else delete table[name];
      if (t !== old) t.dispose();
    };
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

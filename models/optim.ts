// Optimizers. A step replaces each parameter tensor of the model (tensors are immutable); the
// state (momentum, Adam moments) lives in kept tensors owned by the optimizer.
import * as bl from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import type { Module } from './module.ts';

export interface Optimizer {
  /** Apply gradients (in the order of model.namedParameters()). */
  step(model: Module, grads: readonly Tensor[]): void;
  dispose(): void;
}

function checkGrads(name: string, model: Module, grads: readonly Tensor[]) {
  const params = model.namedParameters();
  if (params.length !== grads.length) throw new Error(`${name}: ${grads.length} gradients for ${params.length} parameters`);
  params.forEach(([n, p], i) => {
    if (p.shape.join() !== grads[i].shape.join()) throw new Error(`${name}: gradient for '${n}' has shape [${grads[i].shape}], parameter [${p.shape}]`);
  });
  return params;
}

/** SGD with (heavy-ball) momentum and L2 weight decay, as torch.optim.SGD. */
export class SGD implements Optimizer {
  private velocity = new Map<string, Tensor>();
  constructor(readonly opts: { lr: number; momentum?: number; weightDecay?: number }) {
    if (!(opts.lr > 0)) throw new Error(`SGD: lr must be > 0, got ${opts.lr}`);
  }
  step(model: Module, grads: readonly Tensor[]): void {
    const params = checkGrads('SGD', model, grads);
    const { lr, momentum = 0, weightDecay = 0 } = this.opts;
    params.forEach(([name, p], i) => {
      const next = bl.tidy(() => {
        let g = weightDecay ? bl.add(grads[i], bl.mul(p, weightDecay)) : grads[i];
        if (momentum) {
          const v0 = this.velocity.get(name);
          const v = v0 ? bl.add(bl.mul(v0, momentum), g) : bl.mul(g, 1);
          v0?.dispose();
          this.velocity.set(name, bl.keep(v));
          g = v;
        }
        return bl.sub(p, bl.mul(g, lr));
      });
      model.setTensor(model.path ? name.slice(model.path.length + 1) : name, next);
    });
  }
  dispose(): void {
    for (const v of this.velocity.values()) v.dispose();
    this.velocity.clear();
  }
}

/** Adam (Kingma & Ba 2015) with bias correction, as torch.optim.Adam (L2 weight decay). */
export class Adam implements Optimizer {
  private m = new Map<string, Tensor>();
  private v = new Map<string, Tensor>();
  private t = 0;
  constructor(readonly opts: { lr?: number; beta1?: number; beta2?: number; eps?: number; weightDecay?: number } = {}) {}
  step(model: Module, grads: readonly Tensor[]): void {
    const params = checkGrads('Adam', model, grads);
    const { lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0 } = this.opts;
    this.t++;
    const c1 = 1 - beta1 ** this.t, c2 = 1 - beta2 ** this.t;
    params.forEach(([name, p], i) => {
      const next = bl.tidy(() => {
        const g = weightDecay ? bl.add(grads[i], bl.mul(p, weightDecay)) : grads[i];
        const m0 = this.m.get(name), v0 = this.v.get(name);
        const m = m0 ? bl.add(bl.mul(m0, beta1), bl.mul(g, 1 - beta1)) : bl.mul(g, 1 - beta1);
        const v = v0 ? bl.add(bl.mul(v0, beta2), bl.mul(bl.mul(g, g), 1 - beta2)) : bl.mul(bl.mul(g, g), 1 - beta2);
        m0?.dispose();
        v0?.dispose();
        this.m.set(name, bl.keep(m));
        this.v.set(name, bl.keep(v));
        const update = bl.div(bl.div(m, c1), bl.add(bl.sqrt(bl.div(v, c2)), eps));
        return bl.sub(p, bl.mul(update, lr));
      });
      model.setTensor(model.path ? name.slice(model.path.length + 1) : name, next);
    });
  }
  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}

// A model's parameters as one flat vector θ, so that a loss can be written as a function of θ
// and differentiated (grad, hvp, jvp) by the engine's autodiff: f(θ) runs the model with its
// parameters substituted by slices of θ (Module.withTensors), so every gradient reaches θ.
//
//   const pv = parameterVector(model, ['classifier']);   // restrict to some layers
//   const theta = pv.flatten();                           // [pv.size]
//   const hv = bl.hvp((t) => pv.call(t, () => loss(model.call(x), y)), theta, v);
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import type { Module } from '../../models/module.ts';

export interface ParameterVector {
  /** Full parameter names (namedParameters order) in the vector. */
  readonly names: string[];
  readonly shapes: number[][];
  /** Where each parameter starts in the vector. */
  readonly offsets: number[];
  /** Number of entries of θ. */
  readonly size: number;
  /** The model's current parameters as one tensor [size] (a new tensor; the caller disposes it). */
  flatten(): Tensor;
  /** The parameters' current values on the host (float64). */
  values(): Promise<Float64Array>;
  /** Slices of a flat [size] tensor, reshaped to the parameters (names relative to the model; differentiable). */
  unflatten(theta: Tensor): Record<string, Tensor>;
  /** Run fn with the selected parameters replaced by the slices of θ. */
  call<T>(theta: Tensor, fn: () => T): T;
  /** Write a flat vector back into the model's parameters (replacing the tensors). */
  assign(theta: ArrayLike<number>): void;
}

/**
 * The selected parameters of `model` as one vector. `params` lists full parameter names or layer
 * paths (a path selects every parameter under it: 'classifier' selects 'classifier.weight' and
 * 'classifier.bias'); default every parameter. An entry that selects nothing is an error.
 */
export function parameterVector(model: Module, params?: readonly string[]): ParameterVector {
  const all = model.namedParameters();
  let chosen = all;
  if (params && params.length) {
    for (const p of params) {
      if (!all.some(([n]) => n === p || n.startsWith(`${p}.`))) {
        throw new Error(`parameterVector: '${p}' names no parameter or layer with parameters; parameters: ${all.map(([n]) => n).join(', ')}`);
      }
    }
    chosen = all.filter(([n]) => params.some((p) => n === p || n.startsWith(`${p}.`)));
  }
  if (!chosen.length) throw new Error('parameterVector: the model has no parameters');
  const cut = model.path ? model.path.length + 1 : 0;
  const names = chosen.map(([n]) => n);
  const local = names.map((n) => n.slice(cut));
  const shapes = chosen.map(([, t]) => [...t.shape]);
  const sizes = chosen.map(([, t]) => t.size);
  const offsets: number[] = [];
  let size = 0;
  for (const s of sizes) (offsets.push(size), (size += s));
  // Through Module.param, so that substituted tensors (withTensors) are what is read.
  const owners = names.map((n) => {
    const dot = n.lastIndexOf('.');
    return { mod: dot < 0 ? model : model.module(n.slice(0, dot)), local: n.slice(dot + 1) };
  });
  const current = () => owners.map(({ mod, local: l }) => mod.param(l));
  const unflatten = (theta: Tensor): Record<string, Tensor> => {
    if (theta.rank !== 1 || theta.shape[0] !== size) throw new Error(`parameterVector: θ must be [${size}], got [${theta.shape.join(', ')}]`);
    const out: Record<string, Tensor> = {};
    local.forEach((n, i) => (out[n] = bl.reshape(bl.slice(theta, [offsets[i]], [sizes[i]]), shapes[i])));
    return out;
  };
  return {
    names,
    shapes,
    offsets,
    size,
    flatten: () => bl.tidy(() => bl.concat(current().map((t) => bl.reshape(t, [t.size])), 0)),
    async values() {
      const ds = await Promise.all(current().map((t) => t.data()));
      const out = new Float64Array(size);
      ds.forEach((d, i) => out.set(d, offsets[i]));
      return out;
    },
    unflatten,
    call<T>(theta: Tensor, fn: () => T): T {
      return model.withTensors(unflatten(theta), fn);
    },
    assign(theta: ArrayLike<number>) {
      if (theta.length !== size) throw new Error(`parameterVector.assign: ${theta.length} values for ${size} parameters`);
      const v = Float64Array.from(theta);
      // on the backend the parameters live on (not necessarily the default one)
      local.forEach((n, i) => model.setTensor(n, bl.tensor(v.subarray(offsets[i], offsets[i] + sizes[i]), shapes[i], chosen[i][1].backend)));
    },
  };
}

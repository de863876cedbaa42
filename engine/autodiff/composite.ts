// Composite ops that carry a backward rule of their own (relu, softmax, ...), like a custom_vjp,
// and layer composites: a layer call (Module.call, an ONNX node) that a rule set can address by
// kind or path. When a tape tracks the inputs and a rule applies, the composite is recorded as one
// entry with its rule; its inside is not recorded. Otherwise it is just its composition,
// differentiated op by op (so a layer costs nothing extra when no rule is attached to it).
import { tidy } from '../context.ts';
import type { Tensor } from '../tensor.ts';
import { zerosLike } from '../ops/creation.ts';
import { isTracked, recordOp, unrecorded } from './tape.ts';
import { lookupLayerRule, lookupRule, withoutRules } from './scope.ts';
import { vjp } from './grad.ts';
import type { LayerInfo, Reads, Rule } from './types.ts';

/**
 * `reads`: what `defaultRule` reads (see Reads), so a tape keeps only that alive; without it the
 * tape keeps the inputs and the output.
 */
export function composite<P>(name: string, inputs: readonly Tensor[], params: P, forward: () => Tensor, defaultRule?: Rule<P>, reads?: Reads): Tensor {
  const rule = lookupRule(name) ?? defaultRule;
  if (!rule || !isTracked(inputs)) return tidy(forward);
  const out = unrecorded(() => tidy(forward));
  // A tape that the override does not apply to (one enclosing the scope) gets the default rule,
  // or, for a composite without one, the exact derivative of its composition.
  const exact: Rule<P> = defaultRule ?? ((ct) => {
    const r = vjp(() => forward(), ...inputs);
    try {
      return r.vjp(ct);
    } finally {
      r.dispose();
    }
  });
  recordOp(name, (i) => lookupRule(name, i) ?? exact, params, inputs, out, defaultRule, undefined, false, reads);
  return out;
}

/** A layer call, as Module.call and graph nodes describe it. */
export interface LayerCall {
  /** The layer kind ('Conv2d'); `aliases` are other names rules may use (an ONNX op type). */
  kind: string;
  aliases?: readonly string[];
  path: string;
  module: unknown;
  /** The data inputs of this call. */
  inputs: readonly Tensor[];
  /** The layer's parameters and buffers by name; asked only when a rule applies. */
  params: () => readonly (readonly [string, Tensor])[];
  /** The layer's function with parameters substituted by name (no rule lookups needed inside). */
  forward(inputs: readonly Tensor[], params: Readonly<Record<string, Tensor>>): Tensor;
  /** The plain call. */
  run(): Tensor;
}

/**
 * Run one layer call. If a rule set in scope addresses this layer (by path or kind) and a tape
 * tracks its inputs or parameters, the call is recorded as one entry whose inputs are the data
 * inputs followed by the parameters, and whose rule gets `ctx.layer` (re-run the layer with
 * modified inputs or parameters) and `ctx.base` (the layer's exact vjp).
 */
export function layerComposite(c: LayerCall): Tensor {
  const kinds = [c.kind, ...(c.aliases ?? [])];
  const rule = lookupLayerRule(c.path, kinds, c.module);
  if (!rule) return c.run();
  const named = c.params();
  const all = [...c.inputs, ...named.map(([, t]) => t)];
  if (!isTracked(all)) return c.run();
  const out = unrecorded(() => tidy(c.run));
  const k = c.inputs.length;
  const names = named.map(([n]) => n);
  const paramRecord = Object.fromEntries(named) as Record<string, Tensor>;
  const forward = (inputs?: readonly Tensor[], params?: Readonly<Record<string, Tensor | null>>): Tensor => {
    if (inputs && inputs.length !== k) throw new Error(`${c.kind} '${c.path}': ctx.layer.forward got ${inputs.length} inputs, the layer takes ${k}`);
    const ps: Record<string, Tensor> = { ...paramRecord };
    for (const [n, t] of Object.entries(params ?? {})) {
      if (!(n in paramRecord)) throw new Error(`${c.kind} '${c.path}': ctx.layer.forward: no parameter '${n}' (has ${names.join(', ') || 'none'})`);
      ps[n] = t === null ? zerosLike(paramRecord[n]) : t;
    }
    return withoutRules(() => c.forward(inputs ?? c.inputs, ps));
  };
  const info: LayerInfo = { kind: c.kind, aliases: c.aliases ?? [], path: c.path, module: c.module, inputs: c.inputs, params: paramRecord, forward };
  // The default: the exact vjp of the layer's function of all its inputs, by re-running it.
  const base: Rule = (ct) => {
    const r = withoutRules(() =>
      vjp((...xs: Tensor[]) => c.forward(xs.slice(0, k), Object.fromEntries(names.map((n, i) => [n, xs[k + i]]))), ...all),
    );
    try {
      return r.vjp(ct);
    } finally {
      r.dispose(); // the re-run's value is a temporary of the rule's tidy scope
    }
  };
  recordOp(c.kind, (i) => lookupLayerRule(c.path, kinds, c.module, i) ?? base, undefined, all, out, base, info);
  return out;
}

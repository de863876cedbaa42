// The `rules` option every gradient explainer takes: a rule set, a rule function, or the name of a
// registered composite (LRP's epsilon-plus-flat, ...). Composites are registered by explain/lrp.
import type { RuleSetLike } from '../engine/index.ts';

export type RulesOption = RuleSetLike | string | CompositeFactory;

/** A composite makes a fresh rule set per forward pass (it may track state such as the first layer). */
export type CompositeFactory = () => RuleSetLike;

const registry = new Map<string, CompositeFactory>();
const FACTORY = Symbol('backlight.compositeFactory');

/** Mark a function as a composite factory (what makeComposite returns), not a rule function. */
export function asCompositeFactory(make: () => RuleSetLike): CompositeFactory {
  return Object.assign(make, { [FACTORY]: true });
}

export function isCompositeFactory(v: unknown): v is CompositeFactory {
  return typeof v === 'function' && (v as unknown as Record<symbol, unknown>)[FACTORY] === true;
}

/** Register a named composite (overwrites one of the same name). */
export function registerComposite(name: string, make: CompositeFactory): void {
  if (typeof name !== 'string' || !name) throw new Error('registerComposite: the name must be a non-empty string');
  if (typeof make !== 'function') throw new Error(`registerComposite('${name}'): expected a function that returns a rule set`);
  registry.set(name, make);
}

export function compositeNames(): string[] {
  return [...registry.keys()].sort();
}

/** The per-forward rule set maker for a rules option; unknown names list the registered ones. */
export function rulesFactory(rules: RulesOption): CompositeFactory {
  if (typeof rules === 'string') {
    const make = registry.get(rules);
    if (!make) throw new Error(`rules: unknown composite '${rules}'; registered: ${compositeNames().join(', ') || '(none)'}`);
    return make;
  }
  if (isCompositeFactory(rules)) return rules;
  if (typeof rules === 'function' || (rules !== null && typeof rules === 'object')) return () => rules as RuleSetLike;
  throw new Error(`rules: expected a rule set object, a function (path, kind, layer) => rule, or a composite name, got ${rules === null ? 'null' : typeof rules}`);
}

// Scoped rule overrides: withRules({ relu: guidedRelu }, fn) replaces the backward rule of the
// named primitives or composites for ops *recorded* while fn runs. The rule is looked up when an
// op is recorded and stored with it, so a tape built inside the scope keeps its rules even if its
// backward pass runs later, and nothing leaks out of the scope.
import type { Rule, RuleSet } from './types.ts';

const stack: RuleSet[] = [];

export function lookupRule(name: string): Rule<any> | undefined {
  for (let i = stack.length - 1; i >= 0; i--) {
    const r = stack[i][name];
    if (r) return r;
  }
  return undefined;
}

/** The rule overrides in force right now, innermost first wins. */
export function activeRuleNames(): string[] {
  return [...new Set(stack.flatMap((s) => Object.keys(s).filter((k) => s[k])))];
}

/**
 * Run `fn` with the given backward rules in force. Scopes nest (the inner one wins for a name it
 * sets, the outer ones stay in force for the rest) and are removed when fn returns or throws.
 * fn must be synchronous: ops are recorded synchronously; await results outside the scope.
 */
export function withRules<T>(rules: RuleSet, fn: () => T): T {
  if (rules === null || typeof rules !== 'object') throw new Error(`withRules: rules must be an object mapping op names to rules, got ${String(rules)}`);
  for (const [k, v] of Object.entries(rules)) {
    if (v !== undefined && typeof v !== 'function') throw new Error(`withRules: the rule for '${k}' must be a function (ct, ctx) => cotangents, got ${typeof v}`);
  }
  stack.push(rules);
  const depth = stack.length;
  let result: T;
  try {
    result = fn();
  } finally {
    stack.length = depth - 1;
  }
  if (result && typeof (result as { then?: unknown }).then === 'function') {
    throw new Error('withRules: fn returned a Promise; rule scopes apply to synchronous graph construction (build and differentiate inside, await data() outside)');
  }
  return result;
}

// Scoped rule overrides: withRules({ relu: guidedRelu }, fn) replaces the backward rule of the
// named primitives, composites or layers for ops *recorded* while fn runs. The rule is looked up
// when an op is recorded and stored with it, so a tape built inside the scope keeps its rules even
// if its backward pass runs later, and nothing leaks out of the scope.
//
// A rule set is keyed by (first match wins, innermost scope first):
//   a layer's path ('features.3'), then its kind ('Conv2d', 'ResidualSum', an ONNX op type 'Conv'),
//   then a primitive or composite op name ('relu', 'add', 'maxPoolGather').
// It may also be a function (path, kind, layer) => Rule | undefined, asked for every layer call.
// A key that matched nothing while fn ran is an error (a typo such as { Relu: ... } would otherwise
// silently do nothing); `{ unused: 'ignore' }` allows it, for rule sets meant for many models.
import type { Rule, RuleSet, RuleSetFn, RuleSetLike } from './types.ts';

interface Scope {
  /**
   * The innermost tape open when the scope began: the scope's rules apply to it and to tapes made
   * later (the gradient being built by the code inside), not to enclosing tapes that differentiate
   * that whole gradient computation, which see exact derivatives (so the gradient of an LRP
   * relevance is the true one).
   */
  fromTape: number;
  rules: RuleSet | null;
  fn: RuleSetFn | null;
  /** Keys of `rules` that matched an op or a layer. */
  hits: Set<string>;
  /** What was seen while the scope was open (for the error about unmatched keys). */
  seenOps: Set<string>;
  seenKinds: Set<string>;
  seenPaths: Set<string>;
}

let stack: Scope[] = [];

/** How many tapes are active (set by tape.ts, which imports this file). */
export const tapeCount = { get: (): number => 0 };

/**
 * The override for a primitive or named composite op, if any scope sets one. Every scope that
 * names it counts as matched, also when an inner scope's rule shadows its own.
 */
export function lookupRule(name: string, tape = Infinity): Rule<any> | undefined {
  let found: Rule<any> | undefined;
  for (let i = stack.length - 1; i >= 0; i--) {
    const s = stack[i];
    const applies = s.fromTape <= tape;
    if (s.seenOps.size < 500) s.seenOps.add(name);
    const r = s.rules && Object.hasOwn(s.rules, name) ? s.rules[name] : undefined;
    if (r) {
      s.hits.add(name);
      if (applies) found ??= r;
    }
  }
  return found;
}

/**
 * The override for one call of a layer: by path, then by each of its kinds in order (the layer
 * kind first; an ONNX node adds its op type), from the innermost scope that has one.
 */
export function lookupLayerRule(path: string, kinds: readonly string[], layer: unknown, tape = Infinity): Rule<any> | undefined {
  let found: Rule<any> | undefined;
  for (let i = stack.length - 1; i >= 0; i--) {
    const s = stack[i];
    const applies = s.fromTape <= tape;
    if (path && s.seenPaths.size < 500) s.seenPaths.add(path);
    for (const k of kinds) s.seenKinds.add(k);
    if (s.rules) {
      for (const key of [path, ...kinds]) {
        const r = key && Object.hasOwn(s.rules, key) ? s.rules[key] : undefined;
        if (r) {
          s.hits.add(key);
          if (applies) found ??= r;
          break;
        }
      }
    }
    // A rule function is asked even when an inner scope already answered (its answer is then
    // unused): composites track state across calls, such as which layer came first.
    if (s.fn && applies) {
      const r = s.fn(path, kinds[0] ?? '', layer, kinds);
      if (r !== undefined && typeof r !== 'function') throw new Error(`withRules: the rule function returned ${typeof r} for layer '${path}' (${kinds.join('/')}); expected a rule or undefined`);
      found ??= r;
    }
  }
  return found;
}

/** The rule overrides in force right now (keys of object rule sets). */
export function activeRuleNames(): string[] {
  return [...new Set(stack.flatMap((s) => (s.rules ? Object.keys(s.rules).filter((k) => s.rules![k]) : [])))];
}

export interface WithRulesOptions {
  /** What to do with keys that matched nothing: throw (default) or ignore. */
  unused?: 'error' | 'ignore';
}

function checkRules(rules: unknown): asserts rules is RuleSetLike {
  if (typeof rules === 'function') return;
  if (rules === null || typeof rules !== 'object') throw new Error(`withRules: rules must be an object mapping op names, layer kinds or paths to rules (or a function (path, kind, layer) => rule), got ${String(rules)}`);
  for (const [k, v] of Object.entries(rules)) {
    if (v !== undefined && typeof v !== 'function') throw new Error(`withRules: the rule for '${k}' must be a function (ct, ctx) => cotangents, got ${typeof v}`);
  }
}

const list = (s: Set<string>, max = 40) => (s.size ? [...s].slice(0, max).join(', ') + (s.size > max ? ', ...' : '') : '(none)');

/**
 * Run `fn` with the given backward rules in force. Scopes nest (the inner one wins for a name it
 * sets, the outer ones stay in force for the rest) and are removed when fn returns or throws.
 * fn must be synchronous: ops are recorded synchronously; await results outside the scope
 * (explainers take a `rules` option instead).
 */
export function withRules<T>(rules: RuleSetLike, fn: () => T, opts: WithRulesOptions = {}): T {
  checkRules(rules);
  if (opts.unused !== undefined && opts.unused !== 'error' && opts.unused !== 'ignore') throw new Error(`withRules: option unused must be 'error' or 'ignore', got ${String(opts.unused)}`);
  const scope: Scope = {
    fromTape: Math.max(0, tapeCount.get() - 1),
    rules: typeof rules === 'function' ? null : rules,
    fn: typeof rules === 'function' ? rules : null,
    hits: new Set(),
    seenOps: new Set(),
    seenKinds: new Set(),
    seenPaths: new Set(),
  };
  stack.push(scope);
  const depth = stack.length;
  let result: T;
  try {
    result = fn();
  } finally {
    stack.length = depth - 1;
  }
  if (result && typeof (result as { then?: unknown }).then === 'function') {
    throw new Error('withRules: fn returned a Promise; rule scopes apply to synchronous graph construction (build and differentiate inside, await data() outside; explainers take a `rules` option)');
  }
  const declared = scope.fn ? (scope.fn as { declaredKeys?: readonly string[] }).declaredKeys : undefined;
  if (declared && opts.unused !== 'ignore') {
    const unused = declared.filter((k) => !scope.seenKinds.has(k) && !scope.seenPaths.has(k));
    if (unused.length) {
      throw new Error(
        `withRules: the composite's ${unused.map((k) => `'${k}'`).join(', ')} matched no layer in the computation. ` +
          `Layer kinds present: ${list(scope.seenKinds)}; layer paths: ${list(scope.seenPaths)}`,
      );
    }
  }
  if (scope.rules && opts.unused !== 'ignore') {
    const unused = Object.keys(scope.rules).filter((k) => scope.rules![k] && !scope.hits.has(k));
    if (unused.length) {
      throw new Error(
        `withRules: ${unused.map((k) => `'${k}'`).join(', ')} matched no op or layer in the computation. ` +
          `Layer kinds present: ${list(scope.seenKinds)}; layer paths: ${list(scope.seenPaths)}; ops: ${list(scope.seenOps)}`,
      );
    }
  }
  return result;
}

/**
 * Run `fn` with no rule overrides in force: what a rule's `ctx.forward` and `ctx.base` use, so
 * that "the default rule" of a layer means its exact derivative.
 */
export function withoutRules<T>(fn: () => T): T {
  const saved = stack;
  stack = [];
  try {
    return fn();
  } finally {
    stack = saved;
  }
}

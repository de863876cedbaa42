// The tape: records the primitives (and rule-carrying composites) applied to tracked tensors.
// Several tapes can be active at once (one per level of nested `grad`); an op is recorded on each
// tape that tracks one of its inputs. The backward pass of an inner tape runs while the outer
// tapes are still active, so the ops of its rules are recorded there: that is how grad-of-grad
// works, with no special code.
import { recordHooks, tidy } from '../context.ts';
import type { Primitive } from '../primitives.ts';
import { sameShape, fmtShape } from '../shape.ts';
import type { Tensor } from '../tensor.ts';
import { VJP, VJP_READS } from './rules.ts';
import { lookupRule, tapeCount } from './scope.ts';
import type { LayerInfo, Reads, Rule, RuleContext } from './types.ts';
import { add } from '../ops/elementwise.ts';

export interface TapeEntry {
  name: string;
  rule: Rule<any>;
  params: unknown;
  inputs: readonly Tensor[];
  output: Tensor;
  /** The op's default rule, which an override may defer to (ctx.base). */
  base?: Rule<any>;
  /** For a layer composite: what its rule may ask of the layer. */
  layer?: LayerInfo;
  /** A primitive (not a composite): its default rule's needs are known (see Tape.record). */
  primitive?: boolean;
  /** What a composite's default rule reads (composite's `reads`); primitives' are in VJP_READS. */
  reads?: Reads;
  /**
   * needs[i]: whether this tape tracked input i when the op ran. Fixed then, as PyTorch's graph
   * is: a tensor tracked only later (tapped after this use) gets no cotangent through this op.
   */
  needs: readonly boolean[];
}

// Which values the tape keeps alive for an entry. A rule that declares what it reads (the
// primitives' default rules, VJP_READS; a composite's default rule with `reads`) keeps only what
// the cotangents this tape will ask for read: a conv under IG keeps its weights (alive anyway)
// but not its input, a mul by a constant keeps nothing. That lets the forward pass free
// intermediates as it goes, as it does without a tape (a conv's raw output before its bias add,
// which epilogue fusion then never writes at all). An override, a layer rule or a composite
// without `reads` may read anything and keeps everything.
function keeps(entry: TapeEntry): { inputs: boolean[]; output: boolean } {
  const declared = entry.rule === entry.base ? (entry.primitive ? VJP_READS[entry.name as Primitive] : entry.reads) : undefined;
  if (!declared) return { inputs: entry.inputs.map(() => true), output: true };
  const inputs = entry.inputs.map(() => false);
  let output = false;
  if (declared !== 'nothing') {
    for (let i = 0; i < entry.inputs.length; i++) {
      if (!entry.needs[i]) continue;
      for (const r of declared[i] ?? []) {
        if (r === 'output') output = true;
        else inputs[r] = true;
      }
    }
  }
  return { inputs, output };
}

export class Tape {
  readonly tracked = new Set<number>();
  readonly entries: TapeEntry[] = [];
  private held: Tensor[] = [];
  released = false;

  track(t: Tensor): void {
    this.tracked.add(t.id);
  }

  tracks(t: Tensor): boolean {
    return this.tracked.has(t.id);
  }

  record(entry: TapeEntry): void {
    this.entries.push(entry);
    this.tracked.add(entry.output.id);
    const keep = keeps(entry);
    entry.inputs.forEach((t, i) => keep.inputs[i] && this.hold(t));
    if (keep.output) this.hold(entry.output);
  }

  private hold(t: Tensor): void {
    t.hold();
    this.held.push(t);
  }

  /** Drop every reference the tape holds (deferred disposals then happen). */
  release(): void {
    if (this.released) return;
    this.released = true;
    const held = this.held;
    this.held = [];
    this.entries.length = 0;
    for (const t of held) t.unhold();
  }
}

const active: Tape[] = [];
let paused = 0;
tapeCount.get = () => active.length;

export function activeTapes(): readonly Tape[] {
  return active;
}

export function pushTape(t: Tape): void {
  active.push(t);
}

export function removeTape(t: Tape): void {
  const i = active.lastIndexOf(t);
  if (i >= 0) active.splice(i, 1);
}

/** Whether any active tape tracks one of `inputs`. */
export function isTracked(inputs: readonly Tensor[]): boolean {
  if (paused || active.length === 0) return false;
  return active.some((tape) => inputs.some((t) => tape.tracks(t)));
}

/** Run `fn` without recording (the inside of a composite that carries its own rule). */
export function unrecorded<T>(fn: () => T): T {
  paused++;
  try {
    return fn();
  } finally {
    paused--;
  }
}

/**
 * Record one op on every tape that tracks one of its inputs, with the rule in force for that tape
 * (`ruleFor(i)` for the tape at depth i: rule scopes apply from the tape open when they began).
 */
export function recordOp(
  name: string, ruleFor: (tape: number) => Rule<any>, params: unknown, inputs: readonly Tensor[], output: Tensor,
  base?: Rule<any>, layer?: LayerInfo, primitive = false, reads?: Reads,
): void {
  if (paused || active.length === 0) return;
  for (let i = 0; i < active.length; i++) {
    const tape = active[i];
    const needs = inputs.map((t) => tape.tracks(t));
    if (needs.some(Boolean)) tape.record({ name, rule: ruleFor(i), params, inputs, output, base, layer, primitive, reads, needs });
  }
}

recordHooks.record = (prim: Primitive, params, inputs, output) => {
  if (paused || active.length === 0) return;
  const base = VJP[prim] as Rule<any>;
  recordOp(prim, (i) => lookupRule(prim, i) ?? base, params, inputs, output, base, undefined, true);
};

/**
 * Reverse pass over `tape`, seeding `output` with `seed`. Returns the cotangent of each source
 * (null where none reached it). Cotangents are freed as soon as no later step needs them.
 */
export function backward(tape: Tape, output: Tensor, seed: Tensor, sources: readonly Tensor[]): (Tensor | null)[] {
  const cts = new Map<number, Tensor>();
  // How many map slots hold each cotangent tensor (a rule may pass one tensor to several inputs).
  const refs = new Map<Tensor, number>();
  // Never dispose the seed or a tensor of the forward pass that a rule handed back.
  const protectedTs = new Set<Tensor>([seed]);
  for (const e of tape.entries) {
    for (const t of e.inputs) protectedTs.add(t);
    protectedTs.add(e.output);
  }
  const put = (id: number, t: Tensor) => {
    cts.set(id, t);
    refs.set(t, (refs.get(t) ?? 0) + 1);
  };
  const drop = (t: Tensor) => {
    const n = (refs.get(t) ?? 0) - 1;
    if (n > 0) refs.set(t, n);
    else {
      refs.delete(t);
      if (!protectedTs.has(t)) t.dispose();
    }
  };
  if (!tape.tracks(output)) return sources.map(() => null);
  const sourceIds = new Set(sources.map((t) => t.id));
  const finals = new Map<number, Tensor>();
  put(output.id, seed);
  const entries = tape.entries;
  for (let k = entries.length - 1; k >= 0; k--) {
    const e = entries[k];
    const ct = cts.get(e.output.id);
    if (!ct) continue;
    cts.delete(e.output.id);
    // A requested intermediate (a watched activation): its cotangent is complete now, keep it.
    if (sourceIds.has(e.output.id)) {
      finals.set(e.output.id, ct);
      protectedTs.add(ct);
    }
    const needs = e.needs;
    // The rule's temporaries are freed at once; only its results survive.
    const grads = tidy(() => {
      const ctx: RuleContext<unknown> = { inputs: e.inputs, output: e.output, params: e.params, needs, name: e.name, layer: e.layer };
      const base = e.base;
      if (base) ctx.base = (c: Tensor) => base(c, ctx);
      return e.rule(ct, ctx);
    });
    if (!Array.isArray(grads) || grads.length > e.inputs.length) {
      throw new Error(`backward: the rule for ${e.name} returned ${Array.isArray(grads) ? grads.length : typeof grads} cotangents for ${e.inputs.length} inputs`);
    }
    // Keep ct alive while this step's results are placed (a rule may return ct itself).
    refs.set(ct, (refs.get(ct) ?? 0) + 1);
    for (let i = 0; i < e.inputs.length; i++) {
      const g = grads[i];
      const x = e.inputs[i];
      if (!g || !needs[i]) continue;
      if (!sameShape(g.shape, x.shape)) {
        throw new Error(`backward: the rule for ${e.name} gave a cotangent of shape ${fmtShape(g.shape)} for input ${i} of shape ${fmtShape(x.shape)}`);
      }
      const prev = cts.get(x.id);
      if (prev) {
        const sum = add(prev, g);
        cts.delete(x.id);
        drop(prev);
        if (!refs.has(g) && g !== ct) g.dispose();
        put(x.id, sum);
      } else {
        put(x.id, g);
      }
    }
    for (const g of grads) if (g && !refs.has(g) && g !== ct) g.dispose();
    drop(ct); // the hold taken above
    drop(ct); // its own slot, consumed now
  }
  const result = sources.map((s) => finals.get(s.id) ?? cts.get(s.id) ?? null);
  const kept = new Set(result);
  for (const t of cts.values()) if (!kept.has(t) && !protectedTs.has(t)) t.dispose();
  return result;
}

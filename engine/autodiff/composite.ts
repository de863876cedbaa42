// Composite ops that carry a backward rule of their own (relu, softmax, ...), like a custom_vjp.
// When a tape tracks the inputs, the composite is recorded as one entry with its rule (the one
// in force from withRules, else its default); its inside is not recorded. Without a rule it is just
// its composition, differentiated op by op.
import { tidy } from '../context.ts';
import type { Tensor } from '../tensor.ts';
import { isTracked, recordOp, unrecorded } from './tape.ts';
import { lookupRule } from './scope.ts';
import type { Rule } from './types.ts';

export function composite<P>(name: string, inputs: readonly Tensor[], params: P, forward: () => Tensor, defaultRule?: Rule<P>): Tensor {
  const rule = lookupRule(name) ?? defaultRule;
  if (!rule || !isTracked(inputs)) return tidy(forward);
  const out = unrecorded(() => tidy(forward));
  recordOp(name, rule, params, inputs, out);
  return out;
}

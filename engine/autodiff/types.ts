// The shape of a backward rule. A rule maps the cotangent of an op's output to cotangents of its
// inputs and is written in ordinary (differentiable) tensor ops, so that a backward pass can itself
// be differentiated: grad of grad, Hessian-vector products, exact Grad-CAM++ terms.
import type { PrimParams, Primitive } from '../primitives.ts';
import type { Tensor } from '../tensor.ts';

export interface RuleContext<P = unknown> {
  /** The op's inputs and output as they were in the forward pass. */
  inputs: readonly Tensor[];
  output: Tensor;
  params: P;
  /** needs[i]: whether input i wants a cotangent (a rule may skip the others). */
  needs: readonly boolean[];
  /** The primitive or composite this rule is attached to (e.g. 'relu'). */
  name: string;
}

/** One cotangent per input, shaped like that input; null means zero (or not needed). */
export type Rule<P = unknown> = (ct: Tensor, ctx: RuleContext<P>) => readonly (Tensor | null | undefined)[];

/** Every primitive has a rule: a missing entry is a compile error. */
export type VjpTable = { [P in Primitive]: Rule<PrimParams[P]> };

/** Names rules can be attached to: primitives and named composites (relu, softmax, ...). */
export type RuleName = Primitive | (string & {});

export type RuleSet = { readonly [name: string]: Rule<any> | undefined };

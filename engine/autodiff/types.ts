// The shape of a backward rule. A rule maps the cotangent of an op's output to cotangents of its
// inputs and is written in ordinary (differentiable) tensor ops, so that a backward pass can itself
// be differentiated: grad of grad, Hessian-vector products, exact Grad-CAM++ terms.
import type { PrimParams, Primitive } from '../primitives.ts';
import type { Tensor } from '../tensor.ts';

/**
 * What a rule reads, for each input whose cotangent it computes: the indices of the inputs whose
 * values it uses, and 'output' for the output's (shapes are always there). `'nothing'`: shapes
 * only, for any number of inputs. `[[0]]`: the cotangent of the one input reads that input (relu).
 * The tape keeps alive only what the cotangents it will ask for read.
 */
export type Reads = readonly (readonly (number | 'output')[])[] | 'nothing';

export interface RuleContext<P = unknown> {
  /** The op's inputs and output as they were in the forward pass. */
  inputs: readonly Tensor[];
  output: Tensor;
  params: P;
  /** needs[i]: whether input i wants a cotangent (a rule may skip the others). */
  needs: readonly boolean[];
  /** The primitive, composite or layer kind this rule is attached to (e.g. 'relu', 'Conv2d'). */
  name: string;
  /** The default rule of this op or layer (its exact derivative), to defer to. */
  base?: (ct: Tensor) => readonly (Tensor | null | undefined)[];
  /** Present when the rule is attached to a layer (by kind or path). */
  layer?: LayerInfo;
}

/** What a rule attached to a layer knows about it. */
export interface LayerInfo {
  /** The layer's kind ('Conv2d', 'ResidualSum'; for ONNX nodes the layer kind the op maps to). */
  kind: string;
  /** Other names of the kind (an ONNX node's op type, 'Conv'). */
  aliases: readonly string[];
  /** Dotted path in the model ('features.3'), or the ONNX node name. */
  path: string;
  /** The layer object itself (a Module, or a graph node). */
  module: unknown;
  /** The layer's data inputs: the first `inputs.length - paramNames.length` of ctx.inputs. */
  inputs: readonly Tensor[];
  /** Its parameters and buffers by name ('weight', 'bias', 'running_mean'); also in ctx.inputs. */
  params: Readonly<Record<string, Tensor>>;
  /**
   * Run the layer's forward again (recorded, so differentiable) with some inputs and parameters
   * replaced: params not given keep their values; a parameter set to null is zeroed.
   * No rule overrides are in force inside (the layer computes its plain function).
   */
  forward(inputs?: readonly Tensor[], params?: Readonly<Record<string, Tensor | null>>): Tensor;
}

/** One cotangent per input, shaped like that input; null means zero (or not needed). */
export type Rule<P = unknown> = (ct: Tensor, ctx: RuleContext<P>) => readonly (Tensor | null | undefined)[];

/** Every primitive has a rule: a missing entry is a compile error. */
export type VjpTable = { [P in Primitive]: Rule<PrimParams[P]> };

/** Names rules can be attached to: primitives, named composites (relu, softmax, ...), layer kinds and paths. */
export type RuleName = Primitive | (string & {});

export type RuleSet = { readonly [name: string]: Rule<any> | undefined };

/**
 * A rule set as a function of the layer: asked at every layer call (path, kind, the layer, and
 * all its kind names). `declaredKeys`, if set, are kinds or paths that must each match a layer of
 * the computation (else withRules throws, as for an object rule set's keys).
 */
export type RuleSetFn = ((path: string, kind: string, layer: unknown, kinds: readonly string[]) => Rule<any> | undefined) & { declaredKeys?: readonly string[] };

export type RuleSetLike = RuleSet | RuleSetFn;

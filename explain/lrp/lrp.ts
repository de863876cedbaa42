// lrp(): Layer-wise Relevance Propagation of a target output down to the input (and, on request,
// to every layer: Captum's LayerLRP). It is the gradient of the seeded target score with a
// composite's rules attached to the layers, after canonizers brought the model into a form the
// rules apply to; the canonizers are undone before it returns, also when it throws.
import * as bl from '../../engine/index.ts';
import type { RuleSetLike, Tensor } from '../../engine/index.ts';
import { Module } from '../../models/module.ts';
import { GraphModel } from '../../models/containers.ts';
import { type Model, type RulesOption, type TargetOptions, checkInput, forwardOf, optionalBool, resolveTarget, scores, checkedInput } from '../common.ts';
import type { AttributionWithDelta } from '../integrated-gradients.ts';
import { checkOptions, optionKeys } from '../options.ts';
import { type CompositeFactory, isCompositeFactory, rulesFactory } from '../rules-option.ts';
import { COMPOSITES, COMPOSITE_PARAMS, type CompositeParams, type CompositeSpec, makeComposite } from './composites.ts';
import { CANONIZERS, type Canonizer, applyCanonizers } from './canonizers.ts';

export interface LrpOptions extends TargetOptions, CompositeParams {
  /**
   * The rules: a composite's name (default 'epsilon-plus-flat'), a spec { layers, first }, a rule
   * set or a rule function. Named composites take epsilon, gamma, alpha, beta, low, high.
   * `rules` (if given too) overrides single layers on top of the composite.
   */
  composite?: string | CompositeSpec | RuleSetLike | CompositeFactory;
  /** Model rewrites for the explanation: 'auto' (default: fold BatchNorm), 'none', names or canonizers. */
  canonizers?: 'auto' | 'none' | readonly (Canonizer | string)[];
  /** Also return the relevance at every layer's output, by layer path (ONNX: node name). */
  returnLayers?: boolean;
  /**
   * The output relevance: 'logit' (default; Captum's: the target's score, so relevances sum to
   * the output) or 'one-hot' (Zennit's: 1 at the target).
   */
  seedOutput?: 'logit' | 'one-hot';
  /**
   * Also return the conservation error per item: sum(input relevance) - the output relevance
   * (the target's score for 'logit', as Captum's LRP convergence delta; 1 for 'one-hot').
   * Epsilon rules and biases absorb or add relevance, so it is not zero in general.
   */
  returnDelta?: boolean;
}

export interface LrpResult {
  /** Relevance at the input, shaped like it. */
  attribution: Tensor;
  /** Relevance at each layer's output, by path, in the order the layers ran. */
  layers: Record<string, Tensor>;
  /** With returnDelta: [N], sum(attribution) - output relevance per item. */
  delta?: Tensor;
}

const PARAM_KEYS = ['epsilon', 'gamma', 'alpha', 'beta', 'low', 'high'] as const;

function compositeOf(op: string, opts: LrpOptions): CompositeFactory {
  const c = opts.composite ?? 'epsilon-plus-flat';
  const params: CompositeParams = Object.fromEntries(PARAM_KEYS.filter((k) => opts[k] !== undefined).map((k) => [k, opts[k]]));
  const given = Object.keys(params);
  const takes = typeof c === 'string' && Object.hasOwn(COMPOSITE_PARAMS, c) ? COMPOSITE_PARAMS[c] : [];
  const unused = given.filter((k) => !takes.includes(k as keyof CompositeParams));
  if (unused.length) {
    throw new Error(`${op}: ${unused.map((k) => `'${k}'`).join(', ')} ${unused.length > 1 ? 'are' : 'is'} not a parameter of the composite ${typeof c === 'string' ? `'${c}'` : '(a spec or rule set: set its rules\' parameters directly)'}${takes.length ? `; it takes ${takes.join(', ')}` : ''}`);
  }
  if (typeof c === 'string') {
    const make = Object.hasOwn(COMPOSITES, c) ? COMPOSITES[c] : undefined;
    if (make) return make(params);
    return rulesFactory(c); // a user-registered composite
  }
  if (isCompositeFactory(c)) return c;
  if (c !== null && typeof c === 'object' && 'layers' in c && typeof (c as CompositeSpec).layers === 'object') return makeComposite(c as CompositeSpec);
  if (typeof c === 'function' || (c !== null && typeof c === 'object')) return () => c as RuleSetLike;
  throw new Error(`${op}: composite must be a name, a { layers, first } spec, a rule set or a rule function, got ${String(c)}`);
}

function canonizersOf(op: string, v: LrpOptions['canonizers']): Canonizer[] {
  if (v === undefined || v === 'auto') return [CANONIZERS['merge-batchnorm']];
  if (v === 'none') return [];
  if (!Array.isArray(v)) throw new Error(`${op}: canonizers must be 'auto', 'none' or a list of canonizers or names, got ${String(v)}`);
  return v.map((c) => {
    if (typeof c === 'string') {
      const k = CANONIZERS[c];
      if (!k) throw new Error(`${op}: unknown canonizer '${c}'; known: ${Object.keys(CANONIZERS).join(', ')}`);
      return k;
    }
    if (!c || typeof c.apply !== 'function') throw new Error(`${op}: a canonizer must have apply(model) returning an undo function`);
    return c;
  });
}

/** Leaf layer paths of a model (graph node names for GraphModels), where relevance is reported. */
function layerNames(model: Model): string[] {
  if (model instanceof GraphModel) return model.nodes.map((n) => n.name);
  if (!(model instanceof Module)) return [];
  return model.namedModules().filter(([p, m]) => p && m.namedChildren().length === 0).map(([p]) => p);
}

const LRP_KEYS = optionKeys<LrpOptions>()(['target', 'rules', 'epsilon', 'gamma', 'alpha', 'beta', 'low', 'high', 'composite', 'canonizers', 'returnLayers', 'seedOutput', 'returnDelta']);

/**
 * The kinds (ONNX: op types) of a model's layers that LRP's composites have no rules for and
 * that make the gradient-based relevance meaningless: LayerNorm is scale-invariant, so
 * sum_i x_i dLN/dx_i = 0 and every relevance through it vanishes; attention's softmax mixes
 * tokens multiplicatively. Transformers need conservative rules (Ali et al. 2022; Achtibat et al.
 * 2024, AttnLRP), which are not here.
 */
const UNRULED = ['LayerNorm', 'LayerNormalization', 'MultiheadSelfAttention'];

function unruledKinds(model: Model): string[] {
  const kinds = model instanceof GraphModel ? model.nodes.flatMap((n) => [model.kindOf(n), (n as { op?: string }).op ?? '']) : model instanceof Module ? model.namedModules().map(([, m]) => m.kind) : [];
  return [...new Set(kinds.filter((k) => UNRULED.includes(k)))];
}

/** LRP relevance at the input (the attribution), shaped like the input. */
export async function lrp(model: Model, input: Tensor, opts?: LrpOptions & { returnLayers?: false; returnDelta?: false }): Promise<Tensor>;
/** LRP relevance at the input and its conservation error per item. */
export async function lrp(model: Model, input: Tensor, opts: LrpOptions & { returnLayers?: false; returnDelta: true }): Promise<AttributionWithDelta>;
/** LRP relevance at the input and at every layer's output (and `delta` with returnDelta). */
export async function lrp(model: Model, input: Tensor, opts: LrpOptions & { returnLayers: true }): Promise<LrpResult>;
export async function lrp(model: Model, input: Tensor, opts: LrpOptions = {}): Promise<Tensor | LrpResult | AttributionWithDelta> {
  const op = 'lrp';
  checkOptions(op, opts, LRP_KEYS);
  const returnDelta = optionalBool(op, 'returnDelta', opts.returnDelta);
  const returnLayers = optionalBool(op, 'returnLayers', opts.returnLayers);
  const x = await checkedInput(op, input);
  if (opts.seedOutput !== undefined && opts.seedOutput !== 'logit' && opts.seedOutput !== 'one-hot') {
    throw new Error(`${op}: seedOutput must be 'logit' or 'one-hot', got ${String(opts.seedOutput)}`);
  }
  const composite = compositeOf(op, opts);
  const unruled = unruledKinds(model);
  if (unruled.length && opts.rules === undefined && typeof opts.composite !== 'object' && typeof opts.composite !== 'function') {
    throw new Error(`${op}: the model has ${unruled.join(', ')} layers, which the LRP composites have no rules for: through LayerNorm the relevance vanishes (it is scale-invariant) and attention mixes tokens multiplicatively, so the map would be near zero or meaningless. Transformers need conservative rules (Ali et al. 2022, AttnLRP), not implemented here: use attentionRelevance (Chefer et al. 2021), or pass your own rules for those kinds`);
  }
  const canonizers = canonizersOf(op, opts.canonizers);
  const user = opts.rules === undefined ? null : rulesFactory(opts.rules);
  // The canonizers are undone as soon as the graph is recorded (before the first await), so calls
  // that overlap on one model never see each other's rewrites.
  const undo = applyCanonizers(model, canonizers);
  let res: LrpResult;
  try {
    const plain = forwardOf(model);
    const f = (t: Tensor) => bl.withRules(composite(), () => (user ? bl.withRules(user(), () => plain(t)) : plain(t)));
    const n = x.shape[0];
    res = bl.tidy(() => {
      const target = resolveTarget(op, plain, x, opts.target);
      const objective = (t: Tensor) => {
        const s = scores(op, f(t), target, n);
        return bl.sum(opts.seedOutput === 'one-hot' ? s : bl.mul(s, bl.stopGradient(s)));
      };
      const out: LrpResult = returnLayers
        ? (() => {
            const r = bl.valueAndGradAt(() => objective(x), layerNames(model), [x], { missing: 'skip' });
            return { attribution: r.inputGrads[0], layers: r.grads };
          })()
        : { attribution: bl.grad(objective)(x), layers: {} };
      if (returnDelta) {
        const seed = opts.seedOutput === 'one-hot' ? bl.full([n], 1, x.backend) : bl.stopGradient(scores(op, plain(x), target, n));
        out.delta = bl.sub(bl.sum(bl.reshape(out.attribution, [n, -1]), 1), seed);
      }
      return out;
    });
  } finally {
    undo();
  }
  await res.attribution.backend.sync();
  if (returnLayers) return res;
  return returnDelta ? { attributions: res.attribution, delta: res.delta! } : res.attribution;
}

export type { RulesOption };

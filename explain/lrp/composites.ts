// LRP composites: declarative maps from layer kind to rule, with an override for the first linear
// layer (the one that reads the input), registered by name so that every explainer's `rules`
// option and the command line's `--rules` accept them. The named ones follow Zennit's
// (composites.py) with its defaults: epsilon 1e-6, gamma 0.25; z-box bounds here default to
// [0, 1] (raw image values), since Zennit requires them.
import type { Rule, RuleSetFn } from '../../engine/index.ts';
import { type CompositeFactory, asCompositeFactory, registerComposite } from '../rules-option.ts';
import { alphaBeta, epsilon, flat, gamma, norm, pass, zBox, zPlus } from './rules.ts';
import type { Tensor } from '../../engine/index.ts';

/** Layer kinds with weights that LRP's linear-layer rules apply to. */
export const LINEAR_KINDS = ['Conv2d', 'Linear'] as const;

/** What every composite does with the other layers (Zennit's LAYER_MAP_BASE, extended to our kinds). */
function baseMap(): Record<string, Rule> {
  const n = norm();
  return {
    // relevance passes through elementwise layers and reshapes
    ReLU: pass, LeakyReLU: pass, Sigmoid: pass, Tanh: pass, Softplus: pass, Identity: pass, Dropout: pass,
    Flatten: pass, Standardize: pass,
    // A BatchNorm that no canonizer folded: passed through unchanged (an approximation; fold it)
    BatchNorm2d: pass,
    // sums and averages split relevance by contribution
    AvgPool2d: n, GlobalAvgPool: n, AdaptiveAvgPool2d: n, ResidualSum: n,
    // MaxPool2d keeps its gradient: all relevance to the window's maximum
  };
}

export interface CompositeSpec {
  /** Rules by layer kind (or layer path; an ONNX op type also works). */
  layers: Record<string, Rule>;
  /** Rules by kind for the first Conv2d/Linear layer the input meets. */
  first?: Record<string, Rule>;
  /** Leave out the base map (activations pass, pools and sums norm). */
  noBase?: boolean;
  /**
   * Keys of `layers` and `first` that match no layer are an error (default true: a typo such as
   * 'Conv2D' would otherwise do nothing); false for a composite meant for many models.
   */
  strict?: boolean;
}

/**
 * A composite from a spec: per forward pass, a rule function that gives the first linear layer
 * (by call order, i.e. the one nearest the input) its own rule and every other layer its kind's.
 */
export function makeComposite(spec: CompositeSpec): CompositeFactory {
  if (!spec || typeof spec !== 'object' || !spec.layers || typeof spec.layers !== 'object') throw new Error('makeComposite: expected { layers: { kind: rule, ... }, first?: { kind: rule } }');
  for (const [k, r] of [...Object.entries(spec.layers), ...Object.entries(spec.first ?? {})]) {
    if (typeof r !== 'function') throw new Error(`makeComposite: the rule for '${k}' must be a function (ct, ctx) => cotangents, got ${typeof r}`);
  }
  const layers = { ...(spec.noBase ? {} : baseMap()), ...spec.layers };
  const own = (t: Record<string, Rule> | undefined, k: string) => (t && Object.hasOwn(t, k) ? t[k] : undefined);
  const declared = spec.strict === false ? undefined : [...new Set([...Object.keys(spec.layers), ...Object.keys(spec.first ?? {})])];
  return asCompositeFactory(() => {
    let first: unknown = null;
    const fn: RuleSetFn = (path, kind, layer, kinds = [kind]) => {
      if ((LINEAR_KINDS as readonly string[]).includes(kind)) {
        first ??= layer;
        if (first === layer) {
          const r = kinds.map((k) => own(spec.first, k)).find(Boolean);
          if (r) return r;
        }
      }
      return own(layers, path) ?? kinds.map((k) => own(layers, k)).find(Boolean);
    };
    if (declared) fn.declaredKeys = declared;
    return fn;
  });
}

export interface CompositeParams {
  /** Stabiliser of the epsilon rule (dense layers). Default 1e-6. */
  epsilon?: number;
  /** Gamma of the gamma rule (conv layers of epsilon-gamma-box). Default 0.25. */
  gamma?: number;
  /** Alpha and beta of the alpha-beta composites (alpha - beta = 1). Default 2, 1. */
  alpha?: number;
  beta?: number;
  /** z-box bounds of the input (epsilon-gamma-box's first layer): numbers or per-channel tensors. Default 0, 1. */
  low?: number | Tensor;
  high?: number | Tensor;
}

// The named composites are meant for any model (a dense net has no Conv2d): not strict.
const named = (spec: Omit<CompositeSpec, 'strict'>) => makeComposite({ ...spec, strict: false });

/** The named composites, as functions of their parameters. */
export const COMPOSITES: Record<string, (p: CompositeParams) => CompositeFactory> = {
  /** LRP-epsilon on every conv and dense layer (what Captum's LRP does by default). */
  epsilon: (p) => named({ layers: { Conv2d: epsilon(p.epsilon), Linear: epsilon(p.epsilon) } }),
  /** z+ on convs, epsilon on dense layers (Zennit's EpsilonPlus). */
  'epsilon-plus': (p) => named({ layers: { Conv2d: zPlus(), Linear: epsilon(p.epsilon) } }),
  /** EpsilonPlus with the flat rule on the first layer (Zennit's EpsilonPlusFlat). */
  'epsilon-plus-flat': (p) => named({ layers: { Conv2d: zPlus(), Linear: epsilon(p.epsilon) }, first: { Conv2d: flat(), Linear: flat() } }),
  /** gamma on convs, epsilon on dense layers, z-box on the first conv (Zennit's EpsilonGammaBox). */
  'epsilon-gamma-box': (p) =>
    named({ layers: { Conv2d: gamma(p.gamma), Linear: epsilon(p.epsilon) }, first: { Conv2d: zBox(p.low ?? 0, p.high ?? 1) } }),
  /** alpha-beta (2, 1) on convs, epsilon on dense layers (Zennit's EpsilonAlpha2Beta1). */
  'epsilon-alpha2-beta1': (p) => named({ layers: { Conv2d: alphaBeta(p.alpha ?? 2, p.beta ?? 1), Linear: epsilon(p.epsilon) } }),
  /** EpsilonAlpha2Beta1 with the flat rule on the first layer (Zennit's EpsilonAlpha2Beta1Flat). */
  'epsilon-alpha2-beta1-flat': (p) =>
    named({ layers: { Conv2d: alphaBeta(p.alpha ?? 2, p.beta ?? 1), Linear: epsilon(p.epsilon) }, first: { Conv2d: flat(), Linear: flat() } }),
};

/** The parameters each named composite takes (others given to it are an error). */
export const COMPOSITE_PARAMS: Record<string, readonly (keyof CompositeParams)[]> = {
  epsilon: ['epsilon'],
  'epsilon-plus': ['epsilon'],
  'epsilon-plus-flat': ['epsilon'],
  'epsilon-gamma-box': ['epsilon', 'gamma', 'low', 'high'],
  'epsilon-alpha2-beta1': ['epsilon', 'alpha', 'beta'],
  'epsilon-alpha2-beta1-flat': ['epsilon', 'alpha', 'beta'],
};

for (const [name, make] of Object.entries(COMPOSITES)) registerComposite(name, make({}));

// Layer-wise Relevance Propagation: rules, composites, canonizers and the lrp() explainer.
export { lrp, type LrpOptions, type LrpResult } from './lrp.ts';
export { alphaBeta, basicRule, epsilon, flat, gamma, norm, pass, stabilize, wSquare, zBox, zPlus } from './rules.ts';
export { COMPOSITES, LINEAR_KINDS, makeComposite, type CompositeParams, type CompositeSpec } from './composites.ts';
export { CANONIZERS, applyCanonizers, mergeBatchNorm, type Canonizer } from './canonizers.ts';

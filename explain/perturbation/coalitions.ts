// What the coalition explainers (KernelSHAP, LIME, Shapley sampling and exact enumeration) share:
// their common options, the feature-count guard of the host-side fits, one chunk's evaluation of
// the coalitions centred on f(x) and read back to the host, and the per-feature values written
// back to the elements as the attributions.
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { readF64, type EngineOptions, type PerturbationRunner, type Reduction } from './engine.ts';
import type { ShapleyDetails } from './kernel-shap.ts';
import { coalitionPerturbations, toElements, type FeatureGroups, type Features } from './maskers.ts';

/** The options every coalition explainer takes. */
export interface CoalitionOptions extends EngineOptions {
  features?: Features;
  /** Reference value of absent features (default 0), or a tensor like x or one item. */
  baseline?: number | Tensor;
  /** Background rows [B, ...item]: absent features take each row's values in turn (SHAP's masker). */
  background?: Tensor;
  /** Return the per-item details (values or coefficients, and their statistics) with the attributions. */
  returnDetails?: boolean;
}

/** Refuse partitions with more than `maxFeatures` features (the fit is an M x M system on the host). */
export function checkMaxFeatures(op: string, groups: readonly FeatureGroups[], maxFeatures: number): void {
  for (const g of groups) {
    if (g.m > maxFeatures) throw new Error(`${op}: ${g.m} features (every element of an item, unless grouped) exceed maxFeatures ${maxFeatures}: group them (features: grid(N), slic(N), columns(), a mask) or raise maxFeatures`);
  }
}

/** The scores [k, K] with f(x) [k] appended as the last column (what the centring took off). */
const appendCenter = (v: Tensor, center: Tensor, k: number): Tensor => bl.concat([v, bl.reshape(center, [k, 1])], 1);

/**
 * Evaluate the coalitions z ([count, M] over partition g) for items [i0, i0 + k) with the scores
 * centred on f(x), reduced by `red` on the device (or the scores themselves without it), then
 * `finish(v, center, k)` (inside bl.tidy; default: f(x) appended as a last column) read back to
 * the host. Frees every device tensor it made, also on a throw.
 */
export async function evaluateCoalitions(
  runner: PerturbationRunner, i0: number, k: number, g: FeatureGroups, z: Float32Array, count: number,
  red: Reduction | undefined, finish: (v: Tensor, center: Tensor, k: number) => Tensor = appendCenter,
): Promise<Float64Array> {
  const pert = coalitionPerturbations(g, z, count, runner.x.backend);
  let center: Tensor | undefined;
  try {
    center = await runner.scoresAt(i0, k);
    const v = await runner.evaluate(i0, k, pert, red, center);
    const t = bl.tidy(() => finish(v, center!, k));
    v.dispose();
    center.dispose();
    const host = await readF64(t);
    t.dispose();
    return host;
  } finally {
    pert.dispose();
    center?.dispose();
  }
}

/** Per-feature values (one array per item) written to every element of their feature: a tensor like x. */
export function coalitionAttributions(x: Tensor, groups: readonly FeatureGroups[], values: readonly ArrayLike<number>[]): Tensor {
  const n = x.shape[0], p = x.size / n;
  const out = new Float64Array(n * p);
  for (let i = 0; i < n; i++) toElements(groups.length === 1 ? groups[0] : groups[i], values[i], out, i * p);
  return bl.tensor(out, x.shape, x.backend);
}

/** The attributions, and with `details` the Shapley values and their statistics. */
/** The Shapley methods' completeness option (their values should sum to f(x) - f(reference)). */
export interface EfficiencyOption {
  /**
   * Also return the efficiency error per item, [N]: sum of the feature values - (f(x) -
   * f(reference)). KernelSHAP imposes it as a constraint (delta is rounding), exact enumeration
   * has it by construction, Shapley sampling only in expectation.
   */
  returnDelta?: boolean;
}

export function shapleyResult(x: Tensor, groups: ShapleyDetails['features'], values: Float64Array[], se: Float64Array[], pred: number[], base: number[], exact: boolean, evaluations: number, details?: boolean, returnDelta?: boolean): Tensor | ShapleyDetails | { attributions: Tensor; delta: Tensor } {
  const attributions = coalitionAttributions(x, groups, values);
  const delta = returnDelta
    ? bl.tensor(values.map((v, i) => v.reduce((a, b) => a + b, 0) - (pred[i] - base[i])), [values.length], x.backend)
    : undefined;
  if (!details) return delta ? { attributions, delta } : attributions;
  return { attributions, values, standardError: se, prediction: pred, baseValue: base, features: groups, exact, evaluations, ...(delta ? { delta } : {}) };
}

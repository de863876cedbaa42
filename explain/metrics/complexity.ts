// Complexity of an explanation: how concentrated the attribution is. Computed on |a| per feature
// (pixels summed over channels first), per item.
import { type ArrayInput, featureScores, row } from './common.ts';

/**
 * Sparseness: the Gini index of |a| (Chalasani et al. 2020, "Concise explanations of neural
 * networks using adversarial training"; Hurley & Rickard 2009): 0 for a uniform map, -> 1 when one
 * feature holds everything. Higher is sparser. With |a| sorted ascending (1-based i, n features):
 * G = sum_i (2i - n - 1) |a|_(i) / (n sum_i |a|_(i)). An all-zero map scores 0.
 */
export async function sparseness(attributions: ArrayInput, inputShape: readonly number[]): Promise<Float64Array> {
  const s = await featureScores('sparseness', attributions, inputShape);
  const out = new Float64Array(s.n);
  for (let i = 0; i < s.n; i++) {
    const a = Float64Array.from(row(s.values, i, s.features), Math.abs).sort();
    const n = a.length;
    let num = 0, den = 0;
    for (let k = 0; k < n; k++) {
      num += (2 * (k + 1) - n - 1) * a[k];
      den += a[k];
    }
    out[i] = den > 0 ? num / (n * den) : 0;
  }
  return out;
}

/**
 * Complexity: the Shannon entropy (nats) of the attribution's share per feature, p_i = |a_i| /
 * sum |a| (Bhatt et al. 2020, "Evaluating and aggregating feature-based model explanations"):
 * 0 when one feature holds everything, log(features) for a uniform map. Lower is simpler.
 * An all-zero map counts as uniform.
 */
export async function complexity(attributions: ArrayInput, inputShape: readonly number[]): Promise<Float64Array> {
  const s = await featureScores('complexity', attributions, inputShape);
  const out = new Float64Array(s.n);
  for (let i = 0; i < s.n; i++) {
    const a = row(s.values, i, s.features);
    let tot = 0;
    for (const v of a) tot += Math.abs(v);
    if (tot === 0) {
      out[i] = Math.log(s.features);
      continue;
    }
    let h = 0;
    for (const v of a) {
      const p = Math.abs(v) / tot;
      if (p > 0) h -= p * Math.log(p);
    }
    out[i] = h;
  }
  return out;
}

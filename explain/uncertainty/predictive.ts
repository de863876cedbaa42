// Predictive statistics of a set of sampled class distributions: what MC dropout (several
// dropout masks) and deep ensembles (several members) share. For item n with samples
// p_1..p_K (each a softmax over C classes):
//   mean     = (1/K) sum_k p_k                                   [N, C]
//   std      = sqrt((1/K) sum_k (p_k - mean)^2)  (population, ddof 0, as numpy.std)   [N, C]
//   entropy  = H[mean] = -sum_c mean_c log mean_c  (predictive entropy, total uncertainty)  [N]
//   mutualInformation = H[mean] - (1/K) sum_k H[p_k]  (BALD, Houlsby et al. 2011; the
//              epistemic part: the disagreement between samples; Gal, Islam & Ghahramani 2017) [N]
// Natural logarithms (nats); 0 log 0 = 0. Samples arrive in blocks (a chunk of items, a run of
// samples) and are combined exactly with Chan et al.'s pairwise update of mean and M2, so the
// variance never comes from E[p^2] - E[p]^2 (float32 cancellation would give spurious stds).
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { fmtShape } from '../../engine/shape.ts';

export interface PredictiveUncertainty {
  /** Mean class probabilities over the samples [N, C]. */
  mean: Tensor;
  /** Standard deviation of each class probability over the samples (population, ddof 0) [N, C]. */
  std: Tensor;
  /** Predictive entropy H[mean p] in nats [N]. */
  entropy: Tensor;
  /** Mutual information between the prediction and the weights (BALD): H[mean p] - mean H[p], nats [N]. */
  mutualInformation: Tensor;
  /** How many samples (dropout masks, ensemble members) each item's statistics average over. */
  samples: number;
}

/** -sum_c p log p along `axis`, with 0 log 0 = 0 (p clamped below at the smallest normal float32). */
export function entropyOf(p: Tensor, axis: number): Tensor {
  return bl.tidy(() => bl.neg(bl.sum(bl.mul(p, bl.log(bl.maximum(p, 1.2e-38))), axis)));
}

/**
 * Running statistics of blocks of sampled probabilities [n, k, C] for a fixed set of n items
 * (every block holds the same items): mean, M2 (sum of squared deviations) and the summed
 * per-sample entropy. Owns its tensors; `result()` hands back caller-owned tensors and frees the rest.
 */
export class SampleStats {
  private count = 0;
  private m: Tensor | null = null;
  private m2: Tensor | null = null;
  private hSum: Tensor | null = null;

  /** Add a block [n, k, C] of probabilities (not disposed: the caller owns it). */
  add(block: Tensor): void {
    if (block.rank !== 3) throw new Error(`SampleStats.add: expected sample probabilities [N, K, C], got ${fmtShape(block.shape)}`);
    const k = block.shape[1];
    if (k < 1) return;
    const [m, m2, h] = bl.tidy(() => {
      const mb = bl.mean(block, 1);
      const d = bl.sub(block, bl.expandDims(mb, 1));
      const m2b = bl.sum(bl.mul(d, d), 1);
      const hb = bl.sum(entropyOf(block, 2), 1);
      if (!this.m) return [mb, m2b, hb].map(bl.keep);
      const na = this.count, nb = k, n = na + nb;
      const delta = bl.sub(mb, this.m);
      const mean = bl.add(this.m, bl.mul(delta, nb / n));
      const M2 = bl.add(bl.add(this.m2!, m2b), bl.mul(bl.mul(delta, delta), (na * nb) / n));
      return [mean, M2, bl.add(this.hSum!, hb)].map(bl.keep);
    });
    this.m?.dispose();
    this.m2?.dispose();
    this.hSum?.dispose();
    this.m = m;
    this.m2 = m2;
    this.hSum = h;
    this.count += k;
  }

  get samples(): number {
    return this.count;
  }

  /** The statistics; frees the running state. */
  result(): Omit<PredictiveUncertainty, 'samples'> {
    if (!this.m) throw new Error('SampleStats.result: no samples were added');
    const K = this.count;
    const out = bl.tidy(() => {
      const mean = this.m!;
      const std = bl.sqrt(bl.maximum(bl.div(this.m2!, K), 0));
      const entropy = entropyOf(mean, 1);
      // H[mean] >= mean H[p] by concavity; clamp the rounding-level negatives to 0.
      const mi = bl.maximum(bl.sub(entropy, bl.div(this.hSum!, K)), 0);
      return { mean: bl.mul(mean, 1), std, entropy, mutualInformation: mi };
    });
    this.dispose();
    return { mean: bl.keep(out.mean), std: bl.keep(out.std), entropy: bl.keep(out.entropy), mutualInformation: bl.keep(out.mutualInformation) };
  }

  dispose(): void {
    this.m?.dispose();
    this.m2?.dispose();
    this.hSum?.dispose();
    this.m = this.m2 = this.hSum = null;
  }
}

/**
 * The predictive statistics of given sample probabilities [N, K, C] (K samples of a C-class
 * distribution per item). What `mcDropout` and `ensemble` compute from the model's samples; also
 * usable on samples made elsewhere. The input is not disposed.
 */
export function predictiveStats(probs: Tensor): PredictiveUncertainty {
  if (!(probs instanceof bl.Tensor)) throw new Error(`predictiveStats: probs must be a Tensor [N, K, C], got ${probs === null ? 'null' : typeof probs}`);
  if (probs.rank !== 3 || probs.shape.some((d) => d < 1)) throw new Error(`predictiveStats: probs must be [N, K, C] sample probabilities, got ${fmtShape(probs.shape)}`);
  const s = new SampleStats();
  try {
    s.add(probs);
    return { ...s.result(), samples: probs.shape[1] };
  } catch (e) {
    s.dispose();
    throw e;
  }
}

/** Concatenate per-chunk results along the batch axis (frees the parts). */
export function concatResults(parts: Omit<PredictiveUncertainty, 'samples'>[], samples: number): PredictiveUncertainty {
  if (parts.length === 1) return { ...parts[0], samples };
  const keys = ['mean', 'std', 'entropy', 'mutualInformation'] as const;
  const out = {} as Record<(typeof keys)[number], Tensor>;
  for (const k of keys) {
    out[k] = bl.keep(bl.tidy(() => bl.concat(parts.map((p) => p[k]), 0)));
    parts.forEach((p) => p[k].dispose());
  }
  return { ...out, samples };
}

/** Check that model outputs are [rows, C] (C >= 2) and turn them into probabilities. */
export function probabilitiesOf(op: string, out: Tensor, rows: number, outputs: 'logits' | 'probs'): Tensor {
  if (out.rank !== 2 || out.shape[0] !== rows) throw new Error(`${op}: expected the model to return class scores [${rows}, C], got ${fmtShape(out.shape)}`);
  if (out.shape[1] < 2) throw new Error(`${op}: the model returns ${out.shape[1]} output per item; predictive uncertainty needs class scores [N, C] with C >= 2`);
  return outputs === 'probs' ? bl.mul(out, 1) : bl.softmax(out, 1);
}

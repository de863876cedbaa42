// The sampling loop that MC dropout, deep ensembles and Bayes-by-backprop share: items in chunks,
// each chunk's sampled class probabilities [count, k, C] made block by block and folded into one
// SampleStats, the per-chunk statistics concatenated. Everything allocated is freed on a throw.
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { SampleStats, concatResults, type PredictiveUncertainty } from './predictive.ts';

/** A chunk of items [start, start + count) and its sample counts per block. */
export interface SampleChunk {
  start: number;
  count: number;
  sampleBlocks: readonly number[];
}

/** Chunks of at most `batchSize` items, each evaluated as one block of `samples` samples. */
export function itemChunks(n: number, batchSize: number, samples: number): SampleChunk[] {
  const plan: SampleChunk[] = [];
  for (let s = 0; s < n; s += batchSize) plan.push({ start: s, count: Math.min(batchSize, n - s), sampleBlocks: [samples] });
  return plan;
}

/**
 * The predictive statistics over `samples` samples per item: for every chunk of the plan and
 * each of its sample blocks, `block(start, count, k)` (run inside bl.tidy) returns the sampled
 * probabilities [count, k, C]; they are combined exactly (SampleStats) and the chunks concatenated
 * along the batch axis. The result is the caller's; on a throw every partial result is freed.
 */
export function sampledPredictive(plan: readonly SampleChunk[], samples: number, block: (start: number, count: number, k: number) => Tensor): PredictiveUncertainty {
  const parts: ReturnType<SampleStats['result']>[] = [];
  try {
    for (const { start, count, sampleBlocks } of plan) {
      const stats = new SampleStats();
      try {
        for (const k of sampleBlocks) {
          const b = bl.tidy(() => block(start, count, k));
          try {
            stats.add(b);
          } finally {
            b.dispose();
          }
        }
        parts.push(stats.result());
      } catch (e) {
        stats.dispose();
        throw e;
      }
    }
  } catch (e) {
    for (const p of parts) Object.values(p).forEach((t) => t.dispose());
    throw e;
  }
  return concatResults(parts, samples);
}

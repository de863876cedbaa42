// The dataset examples that activate a unit most (Erhan et al. 2009 compare their optimised inputs
// with them; Olah et al. 2017, "Feature Visualization", show them beside every visualisation): the
// unit's score is the same number activation maximisation ascends (units.ts), by default the
// channel's mean over spatial positions, computed in batches and read back once per batch.
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { fmtShape } from '../../engine/shape.ts';
import { type Model, forwardOf, positiveInt } from '../common.ts';
import { type UnitOptions, checkUnit, forwardWithActivation, resolveUnit, unitScores } from './units.ts';
import { checkOptions, optionKeys } from '../options.ts';

export interface TopExamplesOptions extends UnitOptions {
  /** How many examples (default 9). */
  k?: number;
  /** Items per forward pass (default 256). */
  batchSize?: number;
}

export interface TopExamples {
  /** Item indices into `data`, most activating first (ties: the lower index first). */
  indices: number[];
  /** Their scores. */
  values: number[];
}

const TOP_EXAMPLES_KEYS = optionKeys<TopExamplesOptions>()(['layer', 'channel', 'neuron', 'objective', 'k', 'batchSize']);

/** The k items of `data` [N, ...] whose unit score at `layer` is highest. */
export async function topActivatingExamples(model: Model, data: Tensor, opts: TopExamplesOptions): Promise<TopExamples> {
  const op = 'topActivatingExamples';
  if (!(data instanceof bl.Tensor) || data.rank < 2) throw new Error(`${op}: data must be a Tensor [N, ...], got ${data instanceof bl.Tensor ? fmtShape(data.shape) : typeof data}`);
  data.storageFor(op);
  checkOptions(op, opts, TOP_EXAMPLES_KEYS);
  const u = checkUnit(op, opts);
  if (u.channels.length > 1) throw new Error(`${op}: channel must be one channel, got ${JSON.stringify(opts.channel)}`);
  const k = positiveInt(op, 'k', opts.k, 9);
  const bs = positiveInt(op, 'batchSize', opts.batchSize, 256);
  const n = data.shape[0];
  if (k > n) throw new Error(`${op}: k = ${k} is more than the ${n} items of data`);
  const f = forwardOf(model);
  const scores = new Float64Array(n);
  for (let s = 0; s < n; s += bs) {
    const m = Math.min(bs, n - s);
    const t = bl.tidy(() => {
      const x = bl.slice(data, [s, ...data.shape.slice(1).map(() => 0)], [m, ...data.shape.slice(1)]);
      const { A } = forwardWithActivation(op, model, f, x, u.layer);
      return bl.stopGradient(unitScores(A, resolveUnit(op, u, A.shape, m)));
    });
    scores.set(await t.data(), s);
    t.dispose();
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);
  const indices = order.slice(0, k);
  return { indices, values: indices.map((i) => scores[i]) };
}

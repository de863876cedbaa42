// Helpers shared by the uncertainty methods: batching plans, finiteness checks, host arrays.
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { fmtShape } from '../../engine/shape.ts';
import type { PredictiveUncertainty } from './predictive.ts';

/**
 * How to evaluate N items x K samples in calls of at most `rows` rows: chunks of items, each with
 * its sample counts per call (one block of K when K <= rows, else several blocks of <= rows).
 */
export function chunkPlan(N: number, K: number, rows: number): { start: number; count: number; sampleBlocks: number[] }[] {
  const plan: { start: number; count: number; sampleBlocks: number[] }[] = [];
  if (K <= rows) {
    const per = Math.max(1, Math.floor(rows / K));
    for (let s = 0; s < N; s += per) plan.push({ start: s, count: Math.min(per, N - s), sampleBlocks: [K] });
  } else {
    const blocks: number[] = [];
    for (let k = 0; k < K; k += rows) blocks.push(Math.min(rows, K - k));
    for (let s = 0; s < N; s++) plan.push({ start: s, count: 1, sampleBlocks: blocks });
  }
  return plan;
}

/** Throw (and free the result) if the model produced non-finite probabilities. One small readback. */
export async function checkFinite(op: string, r: PredictiveUncertainty): Promise<void> {
  const h = await r.entropy.data();
  const bad = Array.from(h).findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) {
    for (const t of [r.mean, r.std, r.entropy, r.mutualInformation]) t.dispose();
    throw new Error(`${op}: the model produced non-finite outputs for item ${bad} (entropy ${h[bad]}); check the inputs and weights for NaN/Infinity`);
  }
}

/** Host values of a Tensor or array, as float64. */
export async function hostValues(op: string, name: string, v: Tensor | ArrayLike<number>): Promise<Float64Array> {
  if (v instanceof bl.Tensor) return Float64Array.from(await v.data());
  if (v && typeof (v as ArrayLike<number>).length === 'number') return Float64Array.from(v as ArrayLike<number>);
  throw new Error(`${op}: ${name} must be a Tensor or an array of numbers, got ${v === null ? 'null' : typeof v}`);
}

/** A [N, C] matrix from a Tensor (rank 2) or a flat array with N rows given by the labels. */
export async function hostMatrix(op: string, name: string, v: Tensor | ArrayLike<number>, n: number): Promise<{ data: Float64Array; n: number; c: number }> {
  if (v instanceof bl.Tensor) {
    if (v.rank !== 2) throw new Error(`${op}: ${name} must be [N, C], got ${fmtShape(v.shape)}`);
    if (v.shape[0] !== n) throw new Error(`${op}: ${name} has ${v.shape[0]} rows but there are ${n} labels`);
    return { data: Float64Array.from(await v.data()), n, c: v.shape[1] };
  }
  const data = await hostValues(op, name, v);
  if (n < 1) throw new Error(`${op}: no labels`);
  if (data.length % n !== 0) throw new Error(`${op}: ${name} has ${data.length} values, not a multiple of the ${n} labels (expected N x C, row-major)`);
  return { data, n, c: data.length / n };
}

/** Integer class labels in [0, C), validated. */
export function checkLabels(op: string, y: Float64Array, c: number): Int32Array {
  const out = new Int32Array(y.length);
  for (let i = 0; i < y.length; i++) {
    const v = y[i];
    if (!Number.isInteger(v) || v < 0 || v >= c) throw new Error(`${op}: label ${i} is ${v}; expected a class index in [0, ${c - 1}]`);
    out[i] = v;
  }
  return out;
}

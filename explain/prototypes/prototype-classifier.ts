// Interpretable by design: the prototype (nearest-neighbour attention) classifier and its
// explanation. The model (a Module, in models/zoo/architectures.ts so that the bundled
// `prototype-digits` can be built by models/; re-exported here) predicts the attention-weighted
// average of its prototypes' label distributions, so the prototypes it attended to, with their
// weights and labels, are the complete account of a prediction: q = Σ_j a_j L_j exactly.
//
//   const e = await explainByPrototypes(model, x, { k: 3, train });   // train: nearest examples
//   e.items[0].top[0]   // { prototype, weight, label, labelDistribution, nearestTrain, ... }
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import type { Module } from '../../models/module.ts';
import { batchOf, type Dataset } from '../../models/train.ts';
import { PrototypeClassifier } from '../../models/zoo/architectures.ts';
import { checkOptions, optionKeys } from '../options.ts';

export { PrototypeClassifier, prototypeDigits } from '../../models/zoo/architectures.ts';

/** The PrototypeClassifier in `model` (the model itself, or the first such layer in it). */
export function findPrototypeClassifier(model: Module | ((x: Tensor) => Tensor)): PrototypeClassifier {
  if (model instanceof PrototypeClassifier) return model;
  if (typeof model !== 'function' && typeof (model as Module).namedModules === 'function') {
    const m = (model as Module).namedModules().find(([, l]) => l instanceof PrototypeClassifier);
    // Its attention is computed from the raw input, so layers in front of it would be skipped.
    if (m) throw new Error(`prototypes: the PrototypeClassifier is nested at '${m[0]}'; explain it directly (the layer itself), after applying the layers before it to the input`);
  }
  throw new Error('prototypes: the model is not a prototype classifier (no PrototypeClassifier layer; e.g. the bundled prototype-digits)');
}

/** The attention over the prototypes [N, P] (rows sum to 1), in eval mode. */
export function prototypeAttention(model: Module | ((x: Tensor) => Tensor), x: Tensor): Tensor {
  const m = findPrototypeClassifier(model);
  const was = m.namedModules().map(([, l]) => [l, l.training] as const);
  m.eval();
  try {
    return m.attention(x);
  } finally {
    for (const [l, t] of was) l.training = t;
  }
}

export interface PrototypeHit {
  /** Prototype index j. */
  prototype: number;
  /** Attention weight a_j. */
  weight: number;
  /** The prototype's most likely class. */
  label: number;
  /** Its label distribution L_j. */
  labelDistribution: number[];
  /** The training row most similar to the prototype in embedding space (when `train` is given). */
  nearestTrain?: number;
  nearestTrainLabel?: number;
}

export interface PrototypeItem {
  predicted: number;
  /** q_c of the predicted class (= Σ_j a_j L_jc). */
  probability: number;
  /** The k prototypes with the largest attention weights, largest first. */
  top: PrototypeHit[];
  /** Attention mass of the top k. */
  coverage: number;
}

export interface PrototypeExplanation {
  /** Attention weights per item, [N][P]. */
  attention: number[][];
  /** Class probabilities per item, [N][C]. */
  probabilities: number[][];
  items: PrototypeItem[];
  /** Per prototype: its nearest training row and that row's label (when `train` is given). */
  prototypeExamples?: { index: number; label: number; similarity: number }[];
}

export interface NearestTrainingOptions {
  /** Training rows per forward pass (default 256). */
  batchSize?: number;
}
export interface ProjectPrototypesOptions extends NearestTrainingOptions {
  /** Project onto rows of the prototype's own class (default true). */
  sameClass?: boolean;
}
export interface ExplainByPrototypesOptions {
  /** Prototypes listed per item (default 3; at most the model's number of prototypes). */
  k?: number;
  /** A training set: each prototype's nearest training row is reported. */
  train?: Dataset;
}
export interface PrototypesHtmlOptions {
  title?: string;
  /** Class names by index. */
  classes?: string[];
  /** Item names (default the item numbers). */
  labels?: string[];
}
const NEAREST_KEYS = optionKeys<NearestTrainingOptions>()(['batchSize']);
const PROJECT_KEYS = optionKeys<ProjectPrototypesOptions>()(['batchSize', 'sameClass']);
const EXPLAIN_KEYS = optionKeys<ExplainByPrototypesOptions>()(['k', 'train']);
const HTML_KEYS = optionKeys<PrototypesHtmlOptions>()(['title', 'classes', 'labels']);

/** A batch size of 0 never advanced the row loop: the call hung. */
function batchSizeOption(op: string, v: unknown): number {
  if (v === undefined) return 256;
  if (!(typeof v === 'number' && Number.isInteger(v) && v >= 1)) throw new Error(`${op}: option 'batchSize' must be a positive integer, got ${String(v)}`);
  return v;
}

/**
 * For each training prototype j: the training row whose embedding is most similar to p_j under
 * the model's own similarity (smallest squared distance, or largest dot product).
 */
export async function nearestTrainingExamples(model: Module, train: Dataset, opts: NearestTrainingOptions = {}): Promise<{ index: number; label: number; similarity: number }[]> {
  checkOptions('nearestTrainingExamples', opts, NEAREST_KEYS);
  const bs = batchSizeOption('nearestTrainingExamples', opts.batchSize);
  const m = findPrototypeClassifier(model);
  const P = m.numPrototypes;
  const best = Array.from({ length: P }, () => ({ index: -1, label: -1, similarity: -Infinity }));
  const was = m.namedModules().map(([, l]) => [l, l.training] as const);
  m.eval();
  try {
    for (let a = 0; a < train.n; a += bs) {
      const idx = Array.from({ length: Math.min(bs, train.n - a) }, (_, i) => a + i);
      const s = bl.tidy(() => {
        const { x } = batchOf(train, idx);
        return m.scores(m.embed(x));
      });
      const d = await s.data();
      s.dispose();
      for (let r = 0; r < idx.length; r++) {
        for (let j = 0; j < P; j++) {
          const v = d[r * P + j] * m.temperature; // undo 1/T: -||z - p||² or z·p
          if (v > best[j].similarity) best[j] = { index: idx[r], label: train.y[idx[r]], similarity: v };
        }
      }
    }
  } finally {
    for (const [l, t] of was) l.training = t;
  }
  return best;
}

/**
 * Project each prototype onto a training example (ProtoPNet's projection, Chen et al. 2019): p_j
 * becomes the embedding of the most similar training row (of the prototype's own class, by
 * default), so that every prototype *is* a training example. Returns the rows chosen, one per
 * prototype. Changes the model's `prototypes` parameter (and so its predictions, usually slightly).
 */
export async function projectPrototypes(model: Module, train: Dataset, opts: ProjectPrototypesOptions = {}): Promise<number[]> {
  checkOptions('projectPrototypes', opts, PROJECT_KEYS);
  const bs = batchSizeOption('projectPrototypes', opts.batchSize);
  if (opts.sameClass !== undefined && typeof opts.sameClass !== 'boolean') throw new Error(`projectPrototypes: option 'sameClass' must be a boolean, got ${String(opts.sameClass)}`);
  const m = findPrototypeClassifier(model);
  const P = m.numPrototypes, same = opts.sameClass ?? true;
  const L = m.labelDistributions();
  const ld = await L.data();
  if (m.learnLabels) L.dispose();
  const cls = Array.from({ length: P }, (_, j) => {
    let b = 0;
    for (let c = 1; c < m.numClasses; c++) if (ld[j * m.numClasses + c] > ld[j * m.numClasses + b]) b = c;
    return b;
  });
  const best = Array.from({ length: P }, () => ({ index: -1, similarity: -Infinity }));
  const was = m.namedModules().map(([, l]) => [l, l.training] as const);
  m.eval();
  const D = m.param('prototypes').shape[1];
  const chosen = new Float64Array(P * D);
  try {
    for (let a = 0; a < train.n; a += bs) {
      const idx = Array.from({ length: Math.min(bs, train.n - a) }, (_, i) => a + i);
      const [zT, sT] = bl.tidy(() => {
        const { x } = batchOf(train, idx);
        const z = m.embed(x);
        return [z, m.scores(z)];
      });
      const [z, s] = [await zT.data(), await sT.data()];
      zT.dispose();
      sT.dispose();
      for (let r = 0; r < idx.length; r++) {
        for (let j = 0; j < P; j++) {
          if (same && train.y[idx[r]] !== cls[j]) continue;
          if (s[r * P + j] > best[j].similarity) {
            best[j] = { index: idx[r], similarity: s[r * P + j] };
            chosen.set(z.subarray(r * D, (r + 1) * D), j * D);
          }
        }
      }
    }
  } finally {
    for (const [l, t] of was) l.training = t;
  }
  const missing = best.findIndex((b) => b.index < 0);
  if (missing >= 0) throw new Error(`projectPrototypes: no training row of class ${cls[missing]} for prototype ${missing}`);
  m.setTensor('prototypes', bl.tensor(chosen, [P, D], m.param('prototypes').backend));
  return best.map((b) => b.index);
}

/**
 * Explain predictions by the prototypes attended to: per item the top-k prototypes by attention
 * weight, their weights and labels, and (with `train`) each one's nearest training example.
 */
export async function explainByPrototypes(model: Module, x: Tensor, opts: ExplainByPrototypesOptions = {}): Promise<PrototypeExplanation> {
  const op = 'explainByPrototypes';
  checkOptions(op, opts, EXPLAIN_KEYS);
  // k: 0, negative and fractional values used to be clamped or sliced silently.
  if (opts.k !== undefined && !(typeof opts.k === 'number' && Number.isInteger(opts.k) && opts.k >= 1)) throw new Error(`${op}: option 'k' must be a positive integer, got ${String(opts.k)}`);
  const m = findPrototypeClassifier(model);
  const P = m.numPrototypes, C = m.numClasses;
  const k = Math.min(opts.k ?? 3, P); // the default 3 (or a larger k) lists every prototype of a smaller model
  const [aT, qT, lT] = bl.tidy(() => {
    const a = prototypeAttention(m, x);
    const L = m.labelDistributions();
    return [a, bl.matmul(a, L), bl.mul(L, 1)];
  });
  const [a, q, L] = [await aT.data(), await qT.data(), await lT.data()];
  for (const t of [aT, qT, lT]) t.dispose();
  const examples = opts.train ? await nearestTrainingExamples(m, opts.train) : undefined;
  const n = x.shape[0];
  const attention: number[][] = [], probabilities: number[][] = [], items: PrototypeItem[] = [];
  const labelDist = (j: number) => Array.from(L.subarray(j * C, (j + 1) * C));
  const argmax = (v: ArrayLike<number>) => {
    let b = 0;
    for (let i = 1; i < v.length; i++) if (v[i] > v[b]) b = i;
    return b;
  };
  for (let i = 0; i < n; i++) {
    const ai = Array.from(a.subarray(i * P, (i + 1) * P));
    const qi = Array.from(q.subarray(i * C, (i + 1) * C));
    attention.push(ai);
    probabilities.push(qi);
    const order = ai.map((_, j) => j).sort((u, v) => ai[v] - ai[u] || u - v).slice(0, k);
    const top = order.map((j) => {
      const ld = labelDist(j);
      const hit: PrototypeHit = { prototype: j, weight: ai[j], label: argmax(ld), labelDistribution: ld };
      if (examples) (hit.nearestTrain = examples[j].index, (hit.nearestTrainLabel = examples[j].label));
      return hit;
    });
    const pred = argmax(qi);
    items.push({ predicted: pred, probability: qi[pred], top, coverage: top.reduce((s, h) => s + h.weight, 0) });
  }
  return { attention, probabilities, items, ...(examples ? { prototypeExamples: examples } : {}) };
}

/** A small HTML listing of an explanation: per item the prediction and its top prototypes. */
export function prototypesHtml(e: PrototypeExplanation, opts: PrototypesHtmlOptions = {}): string {
  checkOptions('prototypesHtml', opts, HTML_KEYS);
  const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
  const cls = (c: number) => esc(opts.classes?.[c] ?? String(c));
  const rows = e.items.map((it, i) => `<tr><td>${esc(opts.labels?.[i] ?? String(i))}</td><td>${cls(it.predicted)} (${it.probability.toFixed(3)})</td><td>${it.top
    .map((h) => `#${h.prototype} [${cls(h.label)}] ${h.weight.toFixed(3)}${h.nearestTrain !== undefined ? ` (train ${h.nearestTrain})` : ''}`)
    .join('<br>')}</td><td>${it.coverage.toFixed(3)}</td></tr>`);
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(opts.title ?? 'prototypes')}</title>
<style>body{font-family:system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{padding:4px 8px;border:1px solid #ddd;vertical-align:top}th{background:#f5f5f5}</style></head>
<body><h1>${esc(opts.title ?? 'prototypes')}</h1><table><tr><th>item</th><th>prediction (q)</th><th>top prototypes: #index [label] attention</th><th>top-k mass</th></tr>
${rows.join('\n')}</table></body></html>`;
}

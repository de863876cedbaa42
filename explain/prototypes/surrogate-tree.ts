// A global surrogate: a CART decision tree (Gini impurity; Breiman et al. 1984) fitted on the
// host to a network's predicted classes over a data set, with its fidelity (agreement with the
// network) measured on held-out rows, and the tree read out as rules, one per leaf.
//
//   const s = await fitSurrogateTree(model, data, { maxDepth: 4 });
//   s.fidelity, s.accuracy, s.rules   // ['x[3] <= 0.5 and x[10] > 0.25 => 7 (n=41, 95%)', ...]
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import type { Module } from '../../models/module.ts';
import { shuffled, type Dataset } from '../../models/train.ts';
import { checkOptions, optionKeys } from '../options.ts';

export interface TreeNode {
  /** Majority class of the training rows that reach the node. */
  prediction: number;
  /** Rows per class that reach the node. */
  counts: number[];
  n: number;
  gini: number;
  /** Internal nodes: go left when x[feature] <= threshold. */
  feature?: number;
  threshold?: number;
  left?: TreeNode;
  right?: TreeNode;
}

export interface TreeOptions {
  /** Maximum depth (default 4; 0 is a single leaf). */
  maxDepth?: number;
  /** Fewest rows in a leaf (default 1). */
  minLeaf?: number;
  /** Number of classes (default max label + 1). */
  numClasses?: number;
}

export interface TreeRulesOptions {
  /** Feature names by index (default 'x[i]'). */
  featureNames?: string[];
  /** Class names by index (default the numbers). */
  classNames?: string[];
  /** Significant digits of the thresholds (default 4; 1..21). */
  digits?: number;
}
const TREE_KEYS = optionKeys<TreeOptions>()(['maxDepth', 'minLeaf', 'numClasses']);
const RULES_KEYS = optionKeys<TreeRulesOptions>()(['featureNames', 'classNames', 'digits']);

/** maxDepth, minLeaf and numClasses, checked (fitTree and fitSurrogateTree). */
function treeOptions(op: string, opts: TreeOptions): { maxDepth: number; minLeaf: number } {
  const maxDepth = opts.maxDepth ?? 4, minLeaf = opts.minLeaf ?? 1;
  if (!(Number.isInteger(maxDepth) && maxDepth >= 0)) throw new Error(`${op}: option 'maxDepth' must be a non-negative integer, got ${String(opts.maxDepth)}`);
  // minLeaf 0 and fractions used to be clamped to 1 silently.
  if (!(Number.isInteger(minLeaf) && minLeaf >= 1)) throw new Error(`${op}: option 'minLeaf' must be a positive integer, got ${String(opts.minLeaf)}`);
  if (opts.numClasses !== undefined && !(Number.isInteger(opts.numClasses) && opts.numClasses >= 1)) throw new Error(`${op}: option 'numClasses' must be a positive integer, got ${String(opts.numClasses)}`);
  return { maxDepth, minLeaf };
}

const gini = (counts: ArrayLike<number>, n: number) => {
  if (n === 0) return 0;
  let s = 0;
  for (let c = 0; c < counts.length; c++) s += (counts[c] / n) ** 2;
  return 1 - s;
};

/**
 * Fit a CART classification tree to rows X ([n][f] or row-major with `features` columns) and
 * labels y: at each node the split (feature, threshold midway between consecutive distinct values)
 * with the largest decrease of weighted Gini impurity, while depth < maxDepth, both children keep
 * minLeaf rows and the node is impure. Deterministic (ties: lower feature, lower threshold).
 */
export function fitTree(X: ArrayLike<number>, features: number, y: ArrayLike<number>, opts: TreeOptions = {}): TreeNode {
  checkOptions('fitTree', opts, TREE_KEYS);
  const n = y.length;
  if (X.length !== n * features) throw new Error(`fitTree: ${X.length} values for ${n} rows of ${features} features`);
  const { maxDepth, minLeaf } = treeOptions('fitTree', opts);
  let C = opts.numClasses ?? 0;
  for (let i = 0; i < n; i++) C = Math.max(C, y[i] + 1);
  const countsOf = (rows: number[]) => {
    const c = new Array<number>(C).fill(0);
    for (const r of rows) c[y[r]]++;
    return c;
  };
  const argmax = (c: number[]) => c.reduce((b, v, i) => (v > c[b] ? i : b), 0);
  const build = (rows: number[], depth: number): TreeNode => {
    const counts = countsOf(rows);
    const node: TreeNode = { prediction: argmax(counts), counts, n: rows.length, gini: gini(counts, rows.length) };
    if (depth >= maxDepth || node.gini === 0 || rows.length < 2 * minLeaf) return node;
    let best = { score: node.gini * rows.length - 1e-12, feature: -1, threshold: 0 };
    const left = new Array<number>(C);
    for (let f = 0; f < features; f++) {
      const sorted = [...rows].sort((a, b) => X[a * features + f] - X[b * features + f]);
      left.fill(0);
      for (let i = 0; i < sorted.length - 1; i++) {
        left[y[sorted[i]]]++;
        const v = X[sorted[i] * features + f], w = X[sorted[i + 1] * features + f];
        const nl = i + 1, nr = sorted.length - nl;
        if (v === w || nl < minLeaf || nr < minLeaf) continue;
        const right = counts.map((c, k) => c - left[k]);
        const score = gini(left, nl) * nl + gini(right, nr) * nr;
        if (score < best.score) best = { score, feature: f, threshold: (v + w) / 2 };
      }
    }
    if (best.feature < 0) return node;
    const l: number[] = [], r: number[] = [];
    for (const row of rows) (X[row * features + best.feature] <= best.threshold ? l : r).push(row);
    node.feature = best.feature;
    node.threshold = best.threshold;
    node.left = build(l, depth + 1);
    node.right = build(r, depth + 1);
    return node;
  };
  return build(Array.from({ length: n }, (_, i) => i), 0);
}

/** The tree's class for each row. */
export function predictTree(tree: TreeNode, X: ArrayLike<number>, features: number): Int32Array {
  const n = X.length / features;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let t = tree;
    while (t.left && t.right) t = X[i * features + t.feature!] <= t.threshold! ? t.left : t.right;
    out[i] = t.prediction;
  }
  return out;
}

export const treeDepth = (t: TreeNode): number => (t.left && t.right ? 1 + Math.max(treeDepth(t.left), treeDepth(t.right)) : 0);
export const treeLeaves = (t: TreeNode): number => (t.left && t.right ? treeLeaves(t.left) + treeLeaves(t.right) : 1);

/** One rule per leaf, left to right: 'x[3] <= 0.5 and x[10] > 0.25 => 7 (n=41, 95%)'. */
export function treeRules(tree: TreeNode, opts: TreeRulesOptions = {}): string[] {
  checkOptions('treeRules', opts, RULES_KEYS);
  // toPrecision's own RangeError names neither the function nor the option.
  if (opts.digits !== undefined && !(Number.isInteger(opts.digits) && opts.digits >= 1 && opts.digits <= 21)) throw new Error(`treeRules: option 'digits' must be an integer in 1..21, got ${String(opts.digits)}`);
  const fname = (f: number) => opts.featureNames?.[f] ?? `x[${f}]`;
  const cname = (c: number) => opts.classNames?.[c] ?? String(c);
  const d = opts.digits ?? 4;
  const out: string[] = [];
  const walk = (t: TreeNode, conds: string[]) => {
    if (t.left && t.right) {
      const th = Number(t.threshold!.toPrecision(d));
      walk(t.left, [...conds, `${fname(t.feature!)} <= ${th}`]);
      walk(t.right, [...conds, `${fname(t.feature!)} > ${th}`]);
      return;
    }
    const purity = t.n ? t.counts[t.prediction] / t.n : 0;
    out.push(`${conds.length ? conds.join(' and ') : 'always'} => ${cname(t.prediction)} (n=${t.n}, ${(purity * 100).toFixed(0)}%)`);
  };
  walk(tree, []);
  return out;
}

export interface SurrogateOptions extends TreeOptions {
  /** Fraction of rows held out to measure fidelity (default 0.3). */
  holdout?: number;
  seed?: number;
  /** True labels (default: a Dataset's y), for the tree's and the network's accuracy. */
  labels?: ArrayLike<number>;
  featureNames?: string[];
  classNames?: string[];
  /** Rows per forward pass (default 256). */
  batchSize?: number;
}

export interface SurrogateResult {
  tree: TreeNode;
  /** Agreement of the tree with the network on the held-out rows. */
  fidelity: number;
  /** Agreement on the rows it was fitted to. */
  trainFidelity: number;
  /** The tree's accuracy against the true labels on the held-out rows (null without labels). */
  accuracy: number | null;
  /** The network's accuracy on the same rows (null without labels). */
  networkAccuracy: number | null;
  rules: string[];
  depth: number;
  leaves: number;
  /** Row indices used to fit and to test. */
  fitRows: number[];
  heldOutRows: number[];
}

const SURROGATE_KEYS = optionKeys<SurrogateOptions>()(['maxDepth', 'minLeaf', 'numClasses', 'holdout', 'seed', 'labels', 'featureNames', 'classNames', 'batchSize']);

/**
 * Fit a depth-limited CART tree to `model`'s predicted classes (argmax of its output) on the rows
 * of `x` (a tensor [N, ...] or a Dataset; features = the flattened inputs), fitted on a seeded
 * (1 - holdout) share of the rows and scored on the rest.
 */
export async function fitSurrogateTree(model: Module | ((x: Tensor) => Tensor), x: Tensor | Dataset, opts: SurrogateOptions = {}): Promise<SurrogateResult> {
  const op = 'fitSurrogateTree';
  checkOptions(op, opts, SURROGATE_KEYS);
  treeOptions(op, opts); // before the model runs over the whole data set
  const bs = opts.batchSize ?? 256;
  // A batch size of 0 never advanced the row loop: the call hung.
  if (!(Number.isInteger(bs) && bs >= 1)) throw new Error(`${op}: option 'batchSize' must be a positive integer, got ${String(opts.batchSize)}`);
  if (opts.seed !== undefined && !(Number.isInteger(opts.seed) && opts.seed >= 0)) throw new Error(`${op}: option 'seed' must be a non-negative integer, got ${String(opts.seed)}`);
  const isTensor = x instanceof bl.Tensor;
  const n = isTensor ? (x as Tensor).shape[0] : (x as Dataset).n;
  const shape = isTensor ? (x as Tensor).shape.slice(1) : (x as Dataset).sampleShape;
  const features = shape.reduce((a, b) => a * b, 1);
  const X = isTensor ? Float64Array.from(await (x as Tensor).data()) : Float64Array.from((x as Dataset).x);
  const labels = opts.labels ?? (isTensor ? undefined : (x as Dataset).y);
  if (labels && labels.length !== n) throw new Error(`fitSurrogateTree: ${labels.length} labels for ${n} rows`);
  const holdout = opts.holdout ?? 0.3;
  if (!(holdout > 0 && holdout < 1)) throw new Error(`fitSurrogateTree: holdout must be in (0, 1), got ${holdout}`);
  // The network's classes.
  const call = typeof model === 'function' ? model : (t: Tensor) => (model as Module).call(t);
  const mod = typeof model === 'function' ? null : (model as Module);
  const flags = mod?.namedModules().map(([, l]) => [l, l.training] as const) ?? [];
  mod?.eval();
  const net = new Int32Array(n);
  try {
    for (let a = 0; a < n; a += bs) {
      const k = Math.min(bs, n - a);
      const on = isTensor ? (x as Tensor).backend : mod?.parameters()[0]?.backend; // the model's, not the default
      const p = bl.tidy(() => bl.argmax(call(bl.tensor(X.subarray(a * features, (a + k) * features), [k, ...shape], on)), 1));
      const d = await p.data();
      p.dispose();
      for (let i = 0; i < k; i++) net[a + i] = Math.round(d[i]);
    }
  } finally {
    for (const [l, t] of flags) l.training = t;
  }
  const perm = Array.from(shuffled(n, opts.seed ?? 0));
  const nTest = Math.max(1, Math.round(n * holdout));
  const heldOutRows = perm.slice(0, nTest).sort((a, b) => a - b), fitRows = perm.slice(nTest).sort((a, b) => a - b);
  const rowsX = (rows: number[]) => {
    const out = new Float64Array(rows.length * features);
    rows.forEach((r, i) => out.set(X.subarray(r * features, (r + 1) * features), i * features));
    return out;
  };
  const fitX = rowsX(fitRows), testX = rowsX(heldOutRows);
  let C = opts.numClasses ?? 0;
  for (const c of net) C = Math.max(C, c + 1);
  // The tree's own options only (fitTree rejects the surrogate's).
  const tree = fitTree(fitX, features, fitRows.map((r) => net[r]), { maxDepth: opts.maxDepth, minLeaf: opts.minLeaf, numClasses: C });
  const agree = (pred: Int32Array, rows: number[], ref: ArrayLike<number>) => pred.reduce((s, p, i) => s + (p === ref[rows[i]] ? 1 : 0), 0) / rows.length;
  const testPred = predictTree(tree, testX, features);
  return {
    tree,
    fidelity: agree(testPred, heldOutRows, net),
    trainFidelity: agree(predictTree(tree, fitX, features), fitRows, net),
    accuracy: labels ? agree(testPred, heldOutRows, labels) : null,
    networkAccuracy: labels ? heldOutRows.reduce((s, r) => s + (net[r] === labels[r] ? 1 : 0), 0) / heldOutRows.length : null,
    rules: treeRules(tree, { featureNames: opts.featureNames, classNames: opts.classNames }),
    depth: treeDepth(tree),
    leaves: treeLeaves(tree),
    fitRows,
    heldOutRows,
  };
}

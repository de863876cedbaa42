// Differentiation test cases shared by the finite-difference suite (CPU float64) and the
// WebGPU-vs-CPU gradient suite: one entry per primitive (and per rule-carrying composite).
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { apply } from '../../engine/context.ts';
import { mulberry32 } from '../../models/data/random.ts';

/** Deterministic pseudo-random numbers (mulberry32), independent of the engine. */
export const rng = mulberry32;

export function randArray(n: number, seed: number, lo = -1, hi = 1): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => lo + (hi - lo) * r());
}

export const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

export interface Case {
  name: string;
  shapes: number[][];
  fn: (...xs: Tensor[]) => Tensor;
  /** Input generator per input (default: uniform in [-1, 1]). */
  gen?: (i: number, n: number, seed: number) => number[];
  /** Which inputs to differentiate (default: all). */
  wrt?: number[];
}

const positive = (_i: number, n: number, seed: number) => randArray(n, seed, 0.5, 2);
// Values spread apart so no two are within FD reach of a tie (max, maxPool, abs kinks).
const spread = (_i: number, n: number, seed: number) => {
  const r = rng(seed);
  const vals = Array.from({ length: n }, (_, k) => (k - n / 2) * 0.37);
  for (let k = n - 1; k > 0; k--) {
    const j = Math.floor(r() * (k + 1));
    [vals[k], vals[j]] = [vals[j], vals[k]];
  }
  return vals.map((v) => (Math.abs(v) < 0.05 ? v + 0.2 : v));
};

export const cases: Case[] = [
  { name: 'neg', shapes: [[3, 5]], fn: bl.neg },
  { name: 'exp', shapes: [[3, 5]], fn: bl.exp },
  { name: 'log', shapes: [[7]], fn: bl.log, gen: positive },
  { name: 'sqrt', shapes: [[7]], fn: bl.sqrt, gen: positive },
  { name: 'abs', shapes: [[11]], fn: bl.abs, gen: spread },
  { name: 'sin', shapes: [[2, 3]], fn: bl.sin },
  { name: 'cos', shapes: [[2, 3]], fn: bl.cos },
  { name: 'tanh', shapes: [[2, 3]], fn: bl.tanh },
  { name: 'sigmoid', shapes: [[2, 3]], fn: bl.sigmoid },
  { name: 'reciprocal', shapes: [[5]], fn: bl.reciprocal, gen: positive },
  { name: 'add (broadcast)', shapes: [[3, 1, 4], [5, 1]], fn: bl.add },
  { name: 'sub (broadcast)', shapes: [[2, 3], [3]], fn: bl.sub },
  { name: 'mul (broadcast)', shapes: [[4, 1], [1, 3]], fn: bl.mul },
  { name: 'div', shapes: [[2, 3], [2, 3]], fn: bl.div, gen: (i, n, s) => (i === 1 ? randArray(n, s, 0.5, 2) : randArray(n, s)) },
  { name: 'pow', shapes: [[5], [5]], fn: bl.pow, gen: positive },
  { name: 'maximum', shapes: [[9], [9]], fn: bl.maximum, gen: (i, n, s) => spread(i, n, s + i * 101).map((v) => v + i * 0.011) },
  { name: 'minimum', shapes: [[9], [9]], fn: bl.minimum, gen: (i, n, s) => spread(i, n, s + i * 101).map((v) => v + i * 0.013) },
  { name: 'where', shapes: [[2, 3], [2, 3]], fn: (a, b) => bl.where(bl.tensor([1, 0, 1, 0, 0, 1], [2, 3], a.backend), a, b) },
  { name: 'sum axes [0,2]', shapes: [[2, 3, 4]], fn: (x) => bl.sum(x, [0, 2]) },
  { name: 'sum keepDims', shapes: [[3, 4]], fn: (x) => bl.sum(x, 1, { keepDims: true }) },
  { name: 'max axis 1', shapes: [[3, 5]], fn: (x) => bl.max(x, 1), gen: spread },
  { name: 'reshape', shapes: [[2, 6]], fn: (x) => bl.reshape(x, [3, 4]) },
  { name: 'transpose', shapes: [[2, 3, 4]], fn: (x) => bl.transpose(x, [2, 0, 1]) },
  { name: 'broadcastTo', shapes: [[3, 1]], fn: (x) => bl.broadcastTo(x, [2, 3, 5]) },
  { name: 'slice', shapes: [[5, 6]], fn: (x) => bl.slice(x, [1, 2], [3, 3]) },
  { name: 'pad', shapes: [[2, 3]], fn: (x) => bl.pad(x, [[1, 0], [2, 1]], 0.5) },
  { name: 'flip', shapes: [[3, 4]], fn: (x) => bl.flip(x, [0, 1]) },
  { name: 'concat', shapes: [[2, 3], [2, 1]], fn: (a, b) => bl.concat([a, b, a], 1) },
  { name: 'matmul batched broadcast', shapes: [[2, 3, 4], [4, 5]], fn: bl.matmul },
  { name: 'matmul vector', shapes: [[4], [4, 3]], fn: bl.matmul },
  { name: 'conv2d stride/pad/dilation', shapes: [[2, 2, 7, 6], [3, 2, 3, 2]], fn: (x, w) => bl.conv2d(x, w, { stride: [2, 1], padding: [1, 0, 2, 1], dilation: [1, 2] }) },
  { name: 'conv2d groups', shapes: [[1, 4, 5, 5], [6, 2, 3, 3]], fn: (x, w) => bl.conv2d(x, w, { groups: 2, padding: 1 }) },
  { name: 'conv2dBackpropInput', shapes: [[2, 3, 3, 7], [3, 2, 3, 2]], fn: (dy, w) => bl.conv2dBackpropInput(dy, w, [2, 2, 7, 6], { stride: [2, 1], padding: [1, 0, 2, 1], dilation: [1, 2] }) },
  { name: 'conv2dBackpropFilter', shapes: [[2, 2, 7, 6], [2, 3, 3, 7]], fn: (x, dy) => bl.conv2dBackpropFilter(x, dy, [3, 2, 3, 2], { stride: [2, 1], padding: [1, 0, 2, 1], dilation: [1, 2] }) },
  { name: 'maxPool2d', shapes: [[2, 2, 5, 7]], fn: (x) => bl.maxPool2d(x, { kernel: 3, stride: 2, padding: 1 }), gen: spread },
  {
    name: 'maxPoolScatter (wrt dy)',
    shapes: [[1, 2, 5, 5], [1, 2, 2, 2]],
    wrt: [1],
    gen: (i, n, s) => (i === 0 ? spread(i, n, s) : randArray(n, s)),
    fn: (x, dy) => apply('maxPoolScatter', { kernel: [3, 3], stride: [2, 2], padding: [0, 0, 0, 0], dilation: [1, 1] }, [x, dy], x.shape),
  },
  { name: 'avgPool2d countIncludePad', shapes: [[1, 2, 5, 6]], fn: (x) => bl.avgPool2d(x, { kernel: [3, 2], stride: [2, 2], padding: [1, 1] }) },
  { name: 'avgPool2d exclude pad', shapes: [[1, 2, 5, 6]], fn: (x) => bl.avgPool2d(x, { kernel: 3, stride: 2, padding: 1, countIncludePad: false }) },
  {
    name: 'avgPool2dBackprop',
    shapes: [[1, 2, 3, 3]],
    fn: (dy) => apply('avgPool2dBackprop', { kernel: [3, 3], stride: [2, 2], padding: [1, 1, 1, 1], dilation: [1, 1], countIncludePad: false, inputShape: [1, 2, 5, 6] }, [dy], [1, 2, 5, 6]),
  },
  { name: 'resizeBilinear up', shapes: [[1, 2, 3, 4]], fn: (x) => bl.resizeBilinear(x, [7, 5]) },
  { name: 'resizeBilinear down aligned', shapes: [[1, 1, 7, 6]], fn: (x) => bl.resizeBilinear(x, [3, 4], { alignCorners: true }) },
  {
    name: 'resizeBilinearBackprop',
    shapes: [[1, 2, 7, 5]],
    fn: (dy) => apply('resizeBilinearBackprop', { size: [3, 4], alignCorners: false }, [dy], [1, 2, 3, 4]),
  },
  { name: 'gather', shapes: [[4, 3]], fn: (x) => bl.gather(x, bl.tensor([2, 0, 2, 3, 1], [5], x.backend), 0) },
  { name: 'scatterAdd', shapes: [[2, 5]], fn: (u) => bl.scatterAdd(u, bl.tensor([2, 0, 2, 3, 1], [5], u.backend), 1, 4) },
  // Piecewise-constant ops: zero gradients (inputs kept away from their jumps).
  { name: 'sign, step, floor (zero gradient)', shapes: [[9]], fn: (x) => bl.add(bl.add(bl.sign(x), bl.step(x)), bl.floor(bl.mul(x, 2.5))), gen: (_i, n, s) => randArray(n, s).map((v) => Math.round(v * 10) / 10 + 0.05) },
  { name: 'comparisons (zero gradient)', shapes: [[7], [7]], fn: (a, b) => bl.add(bl.add(bl.add(bl.equal(a, b), bl.notEqual(a, b)), bl.add(bl.less(a, b), bl.lessEqual(a, b))), bl.add(bl.greater(a, b), bl.greaterEqual(a, b))), gen: (i, n, s) => spread(i, n, s + i * 7).map((v) => v + i * 0.011) },
  { name: 'argmax (zero gradient)', shapes: [[3, 5]], fn: (x) => bl.argmax(x, 1), gen: spread },
  // Composites with their own default rules.
  { name: 'relu', shapes: [[11]], fn: bl.relu, gen: spread },
  { name: 'leakyRelu', shapes: [[11]], fn: (x) => bl.leakyRelu(x, 0.1), gen: spread },
  { name: 'softplus', shapes: [[2, 5]], fn: bl.softplus },
  { name: 'softmax', shapes: [[3, 4]], fn: (x) => bl.softmax(x, 1) },
  { name: 'logSoftmax axis 0', shapes: [[3, 4]], fn: (x) => bl.logSoftmax(x, 0) },
  { name: 'mean/variance', shapes: [[3, 4]], fn: (x) => bl.add(bl.mean(x, 0), bl.variance(x, 0)) },
];


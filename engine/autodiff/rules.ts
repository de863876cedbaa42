// The vjp rule of every primitive, in differentiable tensor ops. The table's type requires one
// rule per primitive, so adding a primitive without its rule does not compile.
import { apply } from '../context.ts';
import type { Primitive, Shape } from '../primitives.ts';
import { sameShape } from '../shape.ts';
import type { Tensor } from '../tensor.ts';
import { add, cos, div, equal, greater, less, log, mul, neg, pow, sign, sin, sub, where } from '../ops/elementwise.ts';
import { sum } from '../ops/reduce.ts';
import { broadcastTo, flip, pad, reshape, slice, transpose } from '../ops/movement.ts';
import { matmul } from '../ops/linalg.ts';
import { conv2dBackpropFilter, conv2dBackpropInput, conv2d } from '../ops/conv.ts';
import { gather, scatterAdd } from '../ops/gather.ts';
import type { Reads, Rule, VjpTable } from './types.ts';

/** Sum a broadcast cotangent back down to `shape`. */
export function unbroadcast(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  const s = axes.length ? sum(g, axes, { keepDims: true }) : g;
  if (sameShape(s.shape, shape)) return s;
  const r = reshape(s, shape);
  if (s !== g) s.dispose();
  return r;
}

const none: Rule<unknown> = (_ct, { inputs }) => inputs.map(() => null);

/** Swap the last two axes. */
function mT(t: Tensor): Tensor {
  const p = [...Array(t.rank).keys()];
  [p[t.rank - 2], p[t.rank - 1]] = [p[t.rank - 1], p[t.rank - 2]];
  return transpose(t, p);
}

// For binary ops: the cotangent for each input, summed back over broadcast axes.
function binaryRule(da: (ct: Tensor, a: Tensor, b: Tensor, out: Tensor) => Tensor, db: (ct: Tensor, a: Tensor, b: Tensor, out: Tensor) => Tensor): Rule<unknown> {
  return (ct, { inputs: [a, b], output, needs }) => [
    needs[0] ? unbroadcast(da(ct, a, b, output), a.shape) : null,
    needs[1] ? unbroadcast(db(ct, a, b, output), b.shape) : null,
  ];
}

/** Ties split the cotangent evenly (as PyTorch's maximum/minimum). */
function minmaxRule(wins: (a: Tensor, b: Tensor) => Tensor): Rule<unknown> {
  return binaryRule(
    (ct, a, b) => mul(ct, add(wins(a, b), mul(equal(a, b), 0.5))),
    (ct, a, b) => mul(ct, add(wins(b, a), mul(equal(a, b), 0.5))),
  );
}

export const VJP: VjpTable = {
  neg: (ct) => [neg(ct)],
  exp: (ct, { output }) => [mul(ct, output)],
  log: (ct, { inputs: [x] }) => [div(ct, x)],
  sqrt: (ct, { output }) => [div(ct, mul(output, 2))],
  abs: (ct, { inputs: [x] }) => [mul(ct, sign(x))],
  sign: none,
  sin: (ct, { inputs: [x] }) => [mul(ct, cos(x))],
  cos: (ct, { inputs: [x] }) => [neg(mul(ct, sin(x)))],
  tanh: (ct, { output }) => [mul(ct, sub(1, mul(output, output)))],
  sigmoid: (ct, { output }) => [mul(ct, mul(output, sub(1, output)))],
  step: none,
  reciprocal: (ct, { output }) => [neg(mul(ct, mul(output, output)))],
  floor: none,

  add: binaryRule((ct) => ct, (ct) => ct),
  sub: binaryRule((ct) => ct, (ct) => neg(ct)),
  mul: binaryRule((ct, _a, b) => mul(ct, b), (ct, a) => mul(ct, a)),
  div: binaryRule((ct, _a, b) => div(ct, b), (ct, _a, b, out) => neg(div(mul(ct, out), b))),
  // d(a^b)/da = b a^(b-1); d/db = a^b log a, taken as 0 where a <= 0 (as JAX does at a = 0).
  pow: binaryRule(
    (ct, a, b) => mul(ct, mul(b, pow(a, sub(b, 1)))),
    (ct, a, _b, out) => mul(ct, where(greater(a, 0), mul(out, log(where(greater(a, 0), a, 1))), 0)),
  ),
  maximum: minmaxRule((a, b) => greater(a, b)),
  minimum: minmaxRule((a, b) => less(a, b)),
  eq: none, ne: none, lt: none, le: none, gt: none, ge: none,
  select: (ct, { inputs: [c, a, b], needs }) => [
    null,
    needs[1] ? unbroadcast(where(c, ct, 0), a.shape) : null,
    needs[2] ? unbroadcast(where(c, 0, ct), b.shape) : null,
  ],

  sum: (ct, { inputs: [x] }) => [broadcastTo(ct, x.shape)],
  // The cotangent is shared evenly among tied maxima.
  max: (ct, { inputs: [x], output, params }) => {
    const mask = equal(x, output);
    const count = sum(mask, params.axes, { keepDims: true });
    return [mul(mask, div(ct, count))];
  },
  argmax: none,

  reshape: (ct, { inputs: [x] }) => [reshape(ct, x.shape)],
  permute: (ct, { params }) => {
    const inv = new Array<number>(params.perm.length);
    params.perm.forEach((p, i) => (inv[p] = i));
    return [transpose(ct, inv)];
  },
  expand: (ct, { inputs: [x] }) => [unbroadcast(ct, x.shape)],
  slice: (ct, { inputs: [x], params }) => [pad(ct, x.shape.map((d, i) => [params.begin[i], d - params.begin[i] - params.size[i]] as [number, number]))],
  pad: (ct, { inputs: [x], params }) => [slice(ct, params.before, x.shape)],
  flip: (ct, { params }) => [flip(ct, params.axes)],
  concat: (ct, { inputs, params, needs }) => {
    let at = 0;
    return inputs.map((x, i) => {
      const begin = x.shape.map((_, k) => (k === params.axis ? at : 0));
      at += x.shape[params.axis];
      return needs[i] ? slice(ct, begin, x.shape) : null;
    });
  },

  matmul: (ct, { inputs: [a, b], needs }) => [
    needs[0] ? unbroadcast(matmul(ct, mT(b)), a.shape) : null,
    needs[1] ? unbroadcast(matmul(mT(a), ct), b.shape) : null,
  ],

  conv2d: (ct, { inputs: [x, w], params, needs }) => [
    needs[0] ? conv2dBackpropInput(ct, w, x.shape, params) : null,
    needs[1] ? conv2dBackpropFilter(x, ct, w.shape, params) : null,
  ],
  // dx = A(w)^T dy is linear in dy and in w: <ct, A(w)^T dy> = <conv2d(ct, w), dy>.
  conv2dBackpropInput: (ct, { inputs: [dy, w], params, needs }) => [
    needs[0] ? conv2d(ct, w, params) : null,
    needs[1] ? conv2dBackpropFilter(ct, dy, w.shape, params) : null,
  ],
  // dw = B(x)^T dy: <ct, dw> = <conv2d(x, ct), dy>.
  conv2dBackpropFilter: (ct, { inputs: [x, dy], params, needs }) => [
    needs[0] ? conv2dBackpropInput(dy, ct, x.shape, params) : null,
    needs[1] ? conv2d(x, ct, params) : null,
  ],

  // The argmax is piecewise constant in x: no cotangent for x.
  maxPoolGather: (ct, { inputs: [x], params }) => [null, apply('maxPoolScatter', params, [x, ct], x.shape)],
  maxPoolScatter: (ct, { inputs: [x, dy], params }) => [null, apply('maxPoolGather', params, [x, ct], dy.shape)],
  avgPool2d: (ct, { inputs: [x], params }) => [apply('avgPool2dBackprop', { ...params, inputShape: x.shape }, [ct], x.shape)],
  avgPool2dBackprop: (ct, { inputs: [dy], params }) => {
    const { inputShape: _s, ...p } = params;
    return [apply('avgPool2d', p, [ct], dy.shape)];
  },

  resizeBilinear: (ct, { inputs: [x], params }) => [
    apply('resizeBilinearBackprop', { size: [x.shape[2], x.shape[3]], alignCorners: params.alignCorners }, [ct], x.shape),
  ],
  resizeBilinearBackprop: (ct, { inputs: [dy], params }) => [
    apply('resizeBilinear', { size: [dy.shape[2], dy.shape[3]], alignCorners: params.alignCorners }, [ct], dy.shape),
  ],

  gather: (ct, { inputs: [x, idx], params }) => [scatterAdd(ct, idx, params.axis, x.shape[params.axis]), null],
  scatterAdd: (ct, { inputs: [, idx], params }) => [gather(ct, idx, params.axis), null],

  random: () => [],
};

// What each default rule above reads, beyond shapes (which outlive a disposal), for each input
// whose cotangent it computes: the inputs whose values it uses, and 'output' for the output's.
// The tape keeps alive only what the cotangents it will ask for read (tape.ts): under IG or a
// saliency map nothing asks for a weight's cotangent, so a conv or matmul does not keep its
// input, nor BatchNorm's multiply by its scale the centred input. Keep in step with the rules:
// tests/engine/tape-reads.test.ts runs every rule with what is not listed here freed.
const bilinear: Reads = [[1], [0]];
export const VJP_READS: Record<Primitive, Reads> = {
  neg: 'nothing', sign: 'nothing', step: 'nothing', floor: 'nothing',
  exp: [['output']], sqrt: [['output']], tanh: [['output']], sigmoid: [['output']], reciprocal: [['output']],
  log: [[0]], abs: [[0]], sin: [[0]], cos: [[0]],
  add: 'nothing', sub: 'nothing',
  mul: bilinear,
  div: [[1], [1, 'output']],
  pow: [[0, 1], [0, 'output']],
  maximum: [[0, 1], [0, 1]], minimum: [[0, 1], [0, 1]],
  eq: 'nothing', ne: 'nothing', lt: 'nothing', le: 'nothing', gt: 'nothing', ge: 'nothing',
  select: [[], [0], [0]],
  sum: 'nothing', max: [[0, 'output']], argmax: 'nothing',
  reshape: 'nothing', permute: 'nothing', expand: 'nothing', slice: 'nothing', pad: 'nothing', flip: 'nothing', concat: 'nothing',
  matmul: bilinear, conv2d: bilinear, conv2dBackpropInput: bilinear, conv2dBackpropFilter: bilinear,
  maxPoolGather: [[], [0]], maxPoolScatter: [[], [0]],
  avgPool2d: 'nothing', avgPool2dBackprop: 'nothing', resizeBilinear: 'nothing', resizeBilinearBackprop: 'nothing',
  gather: [[1], []], scatterAdd: [[1], []],
  random: 'nothing',
};

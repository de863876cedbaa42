// Elementwise ops: arithmetic, comparisons and logic (also on host values: the ViT's class-token
// Expand is computed with ConstantOfShape / Equal / Where on shapes), activations (Clip,
// HardSigmoid, HardSwish, Erf, Gelu, ...), variadic Min / Max / Sum / Mean.
import * as bl from '../../../../engine/index.ts';
import type { Tensor } from '../../../../engine/index.ts';
import { binary, type Handler, nary, scalarInput, unary } from './common.ts';

const bool = () => false;
const b = (v: boolean) => (v ? 1 : 0);

/** Pow; a constant exponent of exactly 2 (LayerNorm decompositions write Pow(d, 2)) becomes x * x. */
export const powOp: Handler = (n) => {
  n.singleOutput();
  if (n.kind(0) === 'tensor' && n.isHost(1)) {
    const e = n.host(1, 'exponent');
    if (e.data.length === 1 && e.data[0] === 2 && e.dims.length === 0) {
      n.emit({ tensors: [0], run: ([x]) => [bl.mul(x!, x!)] });
      return;
    }
  }
  binary(bl.pow, (x, y) => x ** y)(n);
};

/** Clip: bounds from attributes min / max (opset < 11) or optional inputs 1 and 2 (11+). */
export const clipOp: Handler = (n) => {
  n.singleOutput();
  if (n.opset < 11) {
    const lo = n.attrs.has('min') ? n.float('min', 0) : undefined;
    const hi = n.attrs.has('max') ? n.float('max', 0) : undefined;
    n.emit({ tensors: [0], run: ([x]) => [bl.clip(x!, lo, hi)] });
    return;
  }
  const tensorBound = (i: number) => n.has(i) && n.kind(i) !== 'host';
  if (tensorBound(1) || tensorBound(2)) {
    n.emit({ tensors: [0, 1, 2], run: ([x, lo, hi]) => [bl.clip(x!, lo, hi)] });
    return;
  }
  const lo = scalarInput(n, 1, 'min');
  const hi = scalarInput(n, 2, 'max');
  if (lo !== undefined && hi !== undefined && lo > hi) n.fail(`min ${lo} is greater than max ${hi}`);
  n.emit({ tensors: [0], run: ([x]) => [bl.clip(x!, lo, hi)] });
};

export const hardSigmoidOp: Handler = (n) => {
  const alpha = n.float('alpha', 0.2);
  const beta = n.float('beta', 0.5);
  unary((x) => bl.hardSigmoid(x, alpha, beta))(n);
};

export const geluOp: Handler = (n) => {
  const approximate = n.str('approximate', 'none');
  if (approximate !== 'none' && approximate !== 'tanh') n.fail(`approximate '${approximate}' is not one of none, tanh`);
  unary((x) => bl.gelu(x, { approximate: approximate as 'none' | 'tanh' }))(n);
};

export const whereOp: Handler = nary(([c, x, y]) => bl.where(c, x, y), ([c, x, y]) => (c !== 0 ? x : y), { arity: [3, 3], floatOut: (vs) => vs[1].float || vs[2].float });

export const ELEMENTWISE: Record<string, Handler> = {
  Add: binary(bl.add, (x, y) => x + y),
  Sub: binary(bl.sub, (x, y) => x - y),
  Mul: binary(bl.mul, (x, y) => x * y),
  // integer division truncates toward zero (hostNary truncates non-float results)
  Div: binary(bl.div, (x, y) => x / y),
  Pow: powOp,
  Equal: binary(bl.equal, (x, y) => b(x === y), bool),
  Less: binary(bl.less, (x, y) => b(x < y), bool),
  LessOrEqual: binary(bl.lessEqual, (x, y) => b(x <= y), bool),
  Greater: binary(bl.greater, (x, y) => b(x > y), bool),
  GreaterOrEqual: binary(bl.greaterEqual, (x, y) => b(x >= y), bool),
  And: binary((x, y) => bl.mul(bl.notEqual(x, 0), bl.notEqual(y, 0)), (x, y) => b(x !== 0 && y !== 0), bool),
  Or: binary((x, y) => bl.maximum(bl.notEqual(x, 0), bl.notEqual(y, 0)), (x, y) => b(x !== 0 || y !== 0), bool),
  Xor: binary((x, y) => bl.notEqual(bl.notEqual(x, 0), bl.notEqual(y, 0)), (x, y) => b((x !== 0) !== (y !== 0)), bool),
  Not: nary(([x]) => bl.equal(x, 0), ([x]) => b(x === 0), { arity: [1, 1], floatOut: bool }),
  Where: whereOp,
  Max: nary((ts) => ts.slice(1).reduce((a, t) => bl.maximum(a, t), ts[0]), (xs) => Math.max(...xs)),
  Min: nary((ts) => ts.slice(1).reduce((a, t) => bl.minimum(a, t), ts[0]), (xs) => Math.min(...xs)),
  Sum: nary((ts) => ts.slice(1).reduce((a, t) => bl.add(a, t), ts[0]), (xs) => xs.reduce((a, x) => a + x, 0)),
  Mean: nary((ts) => bl.div(ts.slice(1).reduce((a, t) => bl.add(a, t), ts[0]), ts.length), (xs) => xs.reduce((a, x) => a + x, 0) / xs.length, { floatOut: () => true }),
  Relu: unary(bl.relu),
  Sigmoid: unary(bl.sigmoid),
  Tanh: unary(bl.tanh),
  Exp: unary(bl.exp, Math.exp),
  Log: unary(bl.log, Math.log),
  Sqrt: unary(bl.sqrt, Math.sqrt),
  Neg: unary(bl.neg, (x) => -x),
  Abs: unary(bl.abs, Math.abs),
  Sign: unary(bl.sign, Math.sign),
  Floor: unary(bl.floor, Math.floor),
  Ceil: unary((x) => bl.neg(bl.floor(bl.neg(x))), Math.ceil),
  Reciprocal: unary(bl.reciprocal, (x) => 1 / x),
  Sin: unary(bl.sin),
  Cos: unary(bl.cos),
  Softplus: unary(bl.softplus),
  Erf: unary(bl.erf),
  Gelu: geluOp,
  Clip: clipOp,
  HardSigmoid: hardSigmoidOp,
  HardSwish: unary(bl.hardSwish),
  LeakyRelu: (n) => {
    const alpha = n.float('alpha', 0.01);
    unary((x) => bl.leakyRelu(x, alpha))(n);
  },
  Elu: (n) => {
    const alpha = n.float('alpha', 1);
    unary((x) => bl.where(bl.greater(x, 0), x, bl.mul(bl.sub(bl.exp(bl.minimum(x, 0)), 1), alpha)))(n);
  },
  Selu: (n) => {
    const alpha = n.float('alpha', 1.67326319217681884765625);
    const gamma = n.float('gamma', 1.05070102214813232421875);
    unary((x) => bl.mul(bl.where(bl.greater(x, 0), x, bl.mul(bl.sub(bl.exp(bl.minimum(x, 0)), 1), alpha)), gamma))(n);
  },
  // Mish (timm): x * tanh(softplus(x))
  Mish: unary((x) => bl.mul(x, bl.tanh(bl.softplus(x)))),
  PRelu: binary((x, s) => bl.where(bl.greater(x, 0), x, bl.mul(x, s)), (x, s) => (x > 0 ? x : x * s)),
};

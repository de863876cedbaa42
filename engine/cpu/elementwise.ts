// Elementwise primitives: unary maps, broadcasting binary ops, and select.
import type { BinaryPrim, NoParams, Shape, UnaryPrim } from '../primitives.ts';
import type { PrimImpl } from '../backend.ts';
import { broadcastOffsets, sizeOf, wrap, type CpuOperand, type CpuStorage } from './strides.ts';

type F1 = (x: number) => number;
type F2 = (a: number, b: number) => number;

const UNARY: { [P in UnaryPrim]: F1 } = {
  neg: (x) => -x,
  exp: Math.exp,
  log: Math.log, // log(0) = -Infinity, log(<0) = NaN
  sqrt: Math.sqrt,
  abs: Math.abs,
  sign: (x) => (x > 0 ? 1 : x < 0 ? -1 : x === 0 ? 0 : NaN),
  sin: Math.sin,
  cos: Math.cos,
  tanh: Math.tanh,
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  step: (x) => (x > 0 ? 1 : 0),
  reciprocal: (x) => 1 / x,
  floor: Math.floor,
};

const BINARY: { [P in BinaryPrim]: F2 } = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: Math.pow,
  maximum: Math.max, // NaN propagates
  minimum: Math.min,
  eq: (a, b) => (a === b ? 1 : 0),
  ne: (a, b) => (a !== b ? 1 : 0),
  lt: (a, b) => (a < b ? 1 : 0),
  le: (a, b) => (a <= b ? 1 : 0),
  gt: (a, b) => (a > b ? 1 : 0),
  ge: (a, b) => (a >= b ? 1 : 0),
};

function unary(f: F1): PrimImpl<CpuStorage, UnaryPrim> {
  return (_params, [x]) => {
    const src = x.storage.data;
    const n = sizeOf(x.shape);
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = f(src[i]);
    return wrap(out);
  };
}

function binary(f: F2): PrimImpl<CpuStorage, BinaryPrim> {
  return (_params, [a, b], outShape) => {
    const n = sizeOf(outShape);
    const out = new Float64Array(n);
    const da = a.storage.data;
    const db = b.storage.data;
    const oa = broadcastOffsets(a.shape, outShape);
    const ob = broadcastOffsets(b.shape, outShape);
    if (!oa && !ob) {
      for (let i = 0; i < n; i++) out[i] = f(da[i], db[i]);
    } else {
      for (let i = 0; i < n; i++) out[i] = f(da[oa ? oa[i] : i], db[ob ? ob[i] : i]);
    }
    return wrap(out);
  };
}

function select(_params: NoParams, inputs: CpuOperand[], outShape: Shape): CpuStorage {
  const [c, a, b] = inputs;
  const n = sizeOf(outShape);
  const out = new Float64Array(n);
  const dc = c.storage.data;
  const da = a.storage.data;
  const db = b.storage.data;
  const oc = broadcastOffsets(c.shape, outShape);
  const oa = broadcastOffsets(a.shape, outShape);
  const ob = broadcastOffsets(b.shape, outShape);
  for (let i = 0; i < n; i++) {
    const cond = dc[oc ? oc[i] : i];
    // cond != 0 is true for NaN as well (NaN != 0), as written in the spec.
    out[i] = cond !== 0 ? da[oa ? oa[i] : i] : db[ob ? ob[i] : i];
  }
  return wrap(out);
}

type ElementwiseImpls = { [P in UnaryPrim | BinaryPrim | 'select']: PrimImpl<CpuStorage, P> };

export const elementwiseImpls: ElementwiseImpls = {
  neg: unary(UNARY.neg), exp: unary(UNARY.exp), log: unary(UNARY.log), sqrt: unary(UNARY.sqrt),
  abs: unary(UNARY.abs), sign: unary(UNARY.sign), sin: unary(UNARY.sin), cos: unary(UNARY.cos),
  tanh: unary(UNARY.tanh), sigmoid: unary(UNARY.sigmoid), step: unary(UNARY.step),
  reciprocal: unary(UNARY.reciprocal), floor: unary(UNARY.floor),

  add: binary(BINARY.add), sub: binary(BINARY.sub), mul: binary(BINARY.mul), div: binary(BINARY.div),
  pow: binary(BINARY.pow), maximum: binary(BINARY.maximum), minimum: binary(BINARY.minimum),
  eq: binary(BINARY.eq), ne: binary(BINARY.ne), lt: binary(BINARY.lt), le: binary(BINARY.le),
  gt: binary(BINARY.gt), ge: binary(BINARY.ge),

  select,
};

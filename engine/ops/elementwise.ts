// Elementwise primitives: unary maps, broadcasting binary maps, select.
import { apply, backendOf, disposeTemps, fromData } from '../context.ts';
import type { BinaryPrim, UnaryPrim } from '../primitives.ts';
import { broadcastShapes } from '../shape.ts';
import { Tensor } from '../tensor.ts';

export type TensorLike = Tensor | number;

/** A number becomes a scalar tensor on the same backend as the tensors it meets. */
export function asTensor(op: string, x: TensorLike, like: readonly TensorLike[]): Tensor {
  if (x instanceof Tensor) return x;
  if (typeof x !== 'number') throw new Error(`${op}: expected a Tensor or a number, got ${x === null ? 'null' : typeof x}`);
  const ref = like.find((t): t is Tensor => t instanceof Tensor);
  return fromData([x], [], ref ? backendOf(op, [ref]) : undefined);
}

function unary(prim: UnaryPrim) {
  return (x: Tensor): Tensor => {
    if (!(x instanceof Tensor)) throw new Error(`${prim}: expected a Tensor, got ${typeof x}`);
    return apply(prim, {}, [x], x.shape);
  };
}

export const neg = unary('neg');
export const exp = unary('exp');
export const log = unary('log');
export const sqrt = unary('sqrt');
export const abs = unary('abs');
export const sign = unary('sign');
export const sin = unary('sin');
export const cos = unary('cos');
export const tanh = unary('tanh');
export const sigmoid = unary('sigmoid');
/** Heaviside step: 1 where x > 0, else 0. */
export const step = unary('step');
export const reciprocal = unary('reciprocal');
export const floor = unary('floor');

function binary(prim: BinaryPrim) {
  return (a: TensorLike, b: TensorLike): Tensor => {
    const ta = asTensor(prim, a, [a, b]);
    const tb = asTensor(prim, b, [a, b]);
    // finally: a scalar temporary must not leak when the op throws (e.g. mixed backends).
    try {
      const out = broadcastShapes(prim, ta.shape, tb.shape);
      return apply(prim, {}, [ta, tb], out);
    } finally {
      disposeTemps([ta, tb], [a, b]);
    }
  };
}

export const add = binary('add');
export const sub = binary('sub');
export const mul = binary('mul');
export const div = binary('div');
export const pow = binary('pow');
export const maximum = binary('maximum');
export const minimum = binary('minimum');
export const equal = binary('eq');
export const notEqual = binary('ne');
export const less = binary('lt');
export const lessEqual = binary('le');
export const greater = binary('gt');
export const greaterEqual = binary('ge');

/** cond != 0 ? a : b, broadcasting all three. */
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  if (!(cond instanceof Tensor)) throw new Error(`where: the condition must be a Tensor, got ${cond === null ? 'null' : typeof cond}`);
  const ta = asTensor('where', a, [cond, a, b]);
  const tb = asTensor('where', b, [cond, a, b]);
  // finally: scalar temporaries must not leak when the shapes or backends do not match. The
  // backend check names 'where' (apply would name the primitive, 'select').
  try {
    const out = broadcastShapes('where', cond.shape, ta.shape, tb.shape);
    backendOf('where', [cond, ta, tb]);
    return apply('select', {}, [cond, ta, tb], out);
  } finally {
    disposeTemps([ta, tb], [a, b]);
  }
}

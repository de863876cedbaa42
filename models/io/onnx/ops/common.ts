// Shared pieces of the op handlers: the handler type, attribute helpers for 2-D window ops, and
// the elementwise handler makers (folded on the host when every input is known at load time).
import * as bl from '../../../../engine/index.ts';
import type { Tensor } from '../../../../engine/index.ts';
import type { Module } from '../../../module.ts';
import { broadcastDims, build, type HostValue } from '../host.ts';
import type { Loader, NodeCtx } from '../loader.ts';
import { stridesOf } from '../../../../engine/shape.ts';

export type Handler = (n: NodeCtx) => void;

/** ONNX pads [x1_begin, x2_begin, x1_end, x2_end] -> the engine's [top, bottom, left, right]. */
export function pads4(n: NodeCtx): [number, number, number, number] {
  const p = n.ints('pads') ?? [0, 0, 0, 0];
  if (p.length !== 4) n.fail(`pads must have 4 entries for 2-D, got [${p.join(', ')}]`);
  return [p[0], p[2], p[1], p[3]];
}

export function pair(n: NodeCtx, name: string, dflt: number): [number, number] {
  const v = n.ints(name) ?? [dflt, dflt];
  if (v.length !== 2) n.fail(`${name} must have 2 entries (only 2-D is supported), got [${v.join(', ')}]`);
  return [v[0], v[1]];
}

/**
 * The padding for auto_pad: null when it does not depend on the input (NOTSET: the pads
 * attribute; VALID: none), else a function of the input's spatial size (SAME_UPPER / SAME_LOWER:
 * output = ceil(input / stride), the odd pixel at the end or the beginning).
 */
export function autoPad(n: NodeCtx, kernel: [number, number], stride: [number, number], dilation: [number, number]): [number, number, number, number] | ((x: Tensor) => [number, number, number, number]) {
  const mode = n.str('auto_pad', 'NOTSET');
  if (mode === 'NOTSET') return pads4(n);
  if (mode === 'VALID') return [0, 0, 0, 0];
  if (mode !== 'SAME_UPPER' && mode !== 'SAME_LOWER') n.fail(`auto_pad '${mode}' is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER`);
  const one = (size: number, a: number): [number, number] => {
    const out = Math.ceil(size / stride[a]);
    const total = Math.max(0, (out - 1) * stride[a] + (kernel[a] - 1) * dilation[a] + 1 - size);
    const small = Math.floor(total / 2);
    return mode === 'SAME_UPPER' ? [small, total - small] : [total - small, small];
  };
  return (x: Tensor) => {
    if (x.rank !== 4) throw new Error(`input must be NCHW (rank 4), got [${x.shape.join(', ')}]`);
    const [t, b] = one(x.shape[2], 0);
    const [l, r] = one(x.shape[3], 1);
    return [t, b, l, r];
  };
}

export function setParam(L: Loader, n: NodeCtx, m: Module, local: string, input: number, v: HostValue, shape?: number[]): void {
  m.setTensor(local, bl.tensor(v.data, shape ?? v.dims));
  L.parameterNames.set(n.inputs[input], `${n.name}.${local}`);
}

/** f over host values broadcast together (numpy rules); `float` says whether the result holds floats. */
export function hostNary(vs: HostValue[], f: (xs: number[]) => number, float: boolean, what: string): HostValue {
  const dims = vs.slice(1).reduce((d, v) => broadcastDims(d, v.dims, what), vs[0].dims);
  const strides = vs.map((v) => stridesOf(v.dims));
  const xs = new Array<number>(vs.length);
  return build(dims, float, (idx) => {
    vs.forEach((v, k) => {
      let o = 0;
      for (let i = 0; i < v.dims.length; i++) o += (v.dims[i] === 1 ? 0 : idx[dims.length - v.dims.length + i]) * strides[k][i];
      xs[k] = v.data[o];
    });
    const r = f(xs);
    return float ? r : Math.trunc(r);
  });
}

/**
 * An elementwise op over all of the node's (present) inputs: folded on the host when all are
 * load-time constants, evaluated on the host at run time when none is a tensor (shape arithmetic),
 * else a tensor op. `floatOut` decides the host result's kind from the inputs' (comparisons: false).
 */
export function nary(f: (ts: Tensor[]) => Tensor, h: (xs: number[]) => number, opts: { arity?: [number, number]; floatOut?: (vs: HostValue[]) => boolean } = {}): Handler {
  return (n) => {
    n.singleOutput();
    const [lo, hi] = opts.arity ?? [1, Infinity];
    const idx = n.inputs.map((_, i) => i).filter((i) => n.has(i));
    if (idx.length < lo || idx.length > hi || idx.length !== n.inputs.filter(Boolean).length) {
      n.fail(`expects ${lo === hi ? lo : `${lo} to ${hi}`} inputs, got ${idx.length} (${n.inputs.map((s) => `'${s}'`).join(', ')})`);
    }
    const what = `${n.L.source}: node '${n.name}' (${n.op})`;
    const host = (vs: HostValue[]) => hostNary(vs, h, opts.floatOut ? opts.floatOut(vs) : vs.some((v) => v.float), what);
    if (idx.every((i) => n.isHost(i))) return n.fold(host(idx.map((i) => n.host(i, `input ${i}`))));
    if (idx.every((i) => n.kind(i) !== 'tensor')) return n.hostOp(idx, (vs) => [host(vs)]);
    n.emit({ tensors: idx, run: (ts) => [f(ts as Tensor[])] });
  };
}

/** Elementwise binary: folded on the host when both inputs are known, else a tensor op. */
export function binary(f: (a: Tensor, b: Tensor) => Tensor, h: (x: number, y: number) => number, floatOut?: (vs: HostValue[]) => boolean): Handler {
  return nary(([a, b]) => f(a, b), ([x, y]) => h(x, y), { arity: [2, 2], floatOut });
}

/** Elementwise unary; with `h`, also on host values (shape arithmetic: Cast -> Sqrt -> Div). */
export function unary(f: (x: Tensor) => Tensor, h?: (x: number) => number): Handler {
  if (h) return nary(([x]) => f(x), ([x]) => h(x), { arity: [1, 1], floatOut: (vs) => vs[0].float });
  return (n) => {
    n.singleOutput();
    n.emit({ tensors: [0], run: ([x]) => [f(x!)] });
  };
}

/** A scalar attribute or optional constant input as a number; `dflt` when absent. */
export function scalarInput(n: NodeCtx, i: number, what: string): number | undefined {
  if (!n.has(i)) return undefined;
  const v = n.host(i, what);
  if (v.data.length !== 1) n.fail(`the ${what} input must hold one value, got shape [${v.dims.join(', ')}]`);
  return v.data[0];
}

// Movement and shape ops: on tensors, or on host values (the Shape -> Gather -> Concat chains
// that dynamic-batch exports compute, folded at load time or evaluated on the host at run time).
import * as bl from '../../../../engine/index.ts';
import type { Tensor } from '../../../../engine/index.ts';
import { build, DTYPES, FLOAT_TYPES, type HostValue, hostConcat, hostGather, hostSlice, hostTranspose, normAxis, numel, reshapeTarget, sliceRange, tensorToHost } from '../host.ts';
import type { Runtime } from '../loader.ts';
import { type Handler, hostNary } from './common.ts';

export const flatten: Handler = (n) => {
  n.singleOutput();
  const axis = n.int('axis', 1);
  const target = (dims: readonly number[]) => {
    const a = axis < 0 ? axis + dims.length : axis;
    if (a < 0 || a > dims.length) throw new Error(`axis ${axis} is out of range for rank ${dims.length}`);
    return [numel(dims.slice(0, a)), numel(dims.slice(a))];
  };
  if (n.kind(0) !== 'tensor') return n.hostOp([0], ([v]) => [{ ...v, dims: target(v.dims) }]);
  n.emit({ tensors: [0], run: ([x]) => [bl.reshape(x!, target(x!.shape))] });
};

export const reshape: Handler = (n) => {
  n.singleOutput();
  const allowZero = n.int('allowzero', 0) !== 0;
  const what = `${n.L.source}: node '${n.name}' (Reshape)`;
  let shapeOf: (rt: Runtime) => ArrayLike<number>;
  if (n.opset < 5 || (!n.has(1) && n.ints('shape'))) {
    const s = n.ints('shape') ?? n.fail('the shape attribute is missing');
    shapeOf = () => s;
  } else {
    if (!n.has(1)) n.fail('the shape input (input 1) is missing');
    if (n.kind(1) === 'tensor') n.fail(`the shape input '${n.inputs[1]}' is a runtime tensor; shapes must be constants or computed from tensor shapes`);
    shapeOf = (rt) => rt.ints(1).data;
  }
  if (n.kind(0) !== 'tensor') return n.hostOp([0, 1], ([v, s]) => [{ ...v, dims: reshapeTarget(v.dims, s ? s.data : shapeOf({} as Runtime), allowZero, what) }]);
  n.emit({ tensors: [0], run: ([x], rt) => [bl.reshape(x!, reshapeTarget(x!.shape, shapeOf(rt), allowZero, 'Reshape'))] });
};

export const concat: Handler = (n) => {
  n.singleOutput();
  const axis = n.int('axis', NaN);
  if (Number.isNaN(axis)) n.fail('the axis attribute is required');
  const idx = n.inputs.map((_, i) => i).filter((i) => n.has(i));
  if (idx.every((i) => n.kind(i) !== 'tensor')) return n.hostOp(idx, (vs) => [hostConcat(vs, axis, `${n.L.source}: node '${n.name}' (Concat)`)]);
  n.emit({ tensors: idx, run: (ts) => [bl.concat(ts as Tensor[], axis)] });
};

export const identity: Handler = (n) => {
  n.singleOutput();
  if (n.kind(0) !== 'tensor') return n.hostOp([0], ([v]) => [v]);
  // a new tensor object (sharing storage), so that its tap is distinct from the input's
  n.emit({ tensors: [0], run: ([x]) => [bl.reshape(x!, x!.shape)] });
};

export const constant: Handler = (n) => {
  n.singleOutput();
  const what = `${n.L.source}: node '${n.name}' (Constant)`;
  const a = [...n.attrs.keys()];
  if (a.length !== 1) n.fail(`expected exactly one value attribute, got ${a.length ? a.join(', ') : 'none'}`);
  const key = a[0];
  const attr = n.attrs.get(key)!;
  switch (key) {
    case 'value':
      if (!attr.t) n.fail('the value attribute holds no tensor');
      return n.fold(tensorToHost(attr.t!, `${what}, value`));
    case 'value_float':
      return n.fold({ dims: [], data: Float32Array.of(attr.f ?? 0), float: true });
    case 'value_floats':
      return n.fold({ dims: [attr.floats?.length ?? 0], data: Float32Array.from(attr.floats ?? []), float: true });
    case 'value_int':
      return n.fold({ dims: [], data: Float64Array.of(attr.i ?? 0), float: false });
    case 'value_ints':
      return n.fold({ dims: [attr.ints?.length ?? 0], data: Float64Array.from(attr.ints ?? []), float: false });
    default:
      n.fail(`a constant given as '${key}' is not supported (supported: value, value_float(s), value_int(s))`);
  }
};

export const shape: Handler = (n) => {
  n.singleOutput();
  const f = (dims: readonly number[]): HostValue => {
    const r = dims.length;
    let s = n.int('start', 0);
    let e = n.int('end', r);
    s = Math.min(Math.max(s < 0 ? s + r : s, 0), r);
    e = Math.min(Math.max(e < 0 ? e + r : e, 0), r);
    const d = dims.slice(s, Math.max(s, e));
    return { dims: [d.length], data: Float64Array.from(d), float: false };
  };
  if (n.kind(0) === 'tensor') return n.hostOp([0], ([v]) => [f(Array.from(v.data))], 0);
  n.hostOp([0], ([v]) => [f(v.dims)]);
};

export const gather: Handler = (n) => {
  n.singleOutput();
  const axis = n.int('axis', 0);
  const what = `${n.L.source}: node '${n.name}' (Gather)`;
  if (n.kind(0) !== 'tensor') return n.hostOp([0, 1], ([v, i]) => [hostGather(v, i, axis, what)]);
  if (n.kind(1) === 'tensor') n.fail('gathering with runtime index tensors is not supported (indices must be constants)');
  n.emit({
    tensors: [0],
    run: ([x], rt) => {
      const ind = rt.ints(1);
      const a = normAxis(axis, x!.rank, 'axis');
      const size = x!.shape[a];
      const norm = Array.from(ind.data, (j) => {
        if (j < -size || j >= size) throw new Error(`index ${j} is out of range for axis ${a} of size ${size}`);
        return j < 0 ? j + size : j;
      });
      const it = bl.tensor(norm, ind.dims.length ? ind.dims : [1], x!.backend);
      const y = bl.gather(x!, it, a);
      return [ind.dims.length ? y : bl.reshape(y, [...x!.shape.slice(0, a), ...x!.shape.slice(a + 1)])];
    },
  });
};

/** Unsqueeze / Squeeze: axes from the attribute (opset < 13) or input 1 (13+). */
export function squeezeLike(kind: 'Unsqueeze' | 'Squeeze'): Handler {
  return (n) => {
    n.singleOutput();
    const fromAttr = n.opset < 13;
    const axesOf = (rt: Runtime | null, vs?: HostValue[]): number[] | undefined => {
      if (fromAttr) return n.ints('axes');
      if (!n.has(1)) return undefined;
      return Array.from(vs ? vs[1].data : rt!.ints(1).data);
    };
    const target = (dims: readonly number[], axes: number[] | undefined): number[] => {
      if (kind === 'Unsqueeze') {
        if (!axes) throw new Error('axes are required');
        const r = dims.length + axes.length;
        const ax = axes.map((a) => normAxis(a, r, 'Unsqueeze'));
        const out: number[] = [];
        let k = 0;
        for (let i = 0; i < r; i++) out.push(ax.includes(i) ? 1 : dims[k++]);
        return out;
      }
      const ax = axes ? axes.map((a) => normAxis(a, dims.length, 'Squeeze')) : dims.flatMap((d, i) => (d === 1 ? [i] : []));
      for (const a of ax) if (dims[a] !== 1) throw new Error(`axis ${a} of [${dims.join(', ')}] has size ${dims[a]}, not 1`);
      return dims.filter((_, i) => !ax.includes(i));
    };
    if (!fromAttr && n.kind(1) === 'tensor') n.fail('the axes input must be a constant');
    if (n.kind(0) !== 'tensor') return n.hostOp(fromAttr ? [0] : [0, 1], (vs) => [{ ...vs[0], dims: target(vs[0].dims, axesOf(null, vs)) }]);
    n.emit({ tensors: [0], run: ([x], rt) => [bl.reshape(x!, target(x!.shape, axesOf(rt)))] });
  };
}

export const cast: Handler = (n) => {
  n.singleOutput();
  const to = n.int('to', 0);
  if (!DTYPES[to] || [8, 14, 15].includes(to)) n.fail(`casting to ${DTYPES[to] ?? `type ${to}`} is not supported`);
  const toFloat = FLOAT_TYPES.has(to);
  const conv = (v: HostValue): HostValue => (toFloat ? { ...v, float: true } : { dims: v.dims, data: Float64Array.from(v.data, (x) => (to === 9 ? Number(x !== 0) : Math.trunc(x))), float: false });
  if (n.kind(0) !== 'tensor') return n.hostOp([0], ([v]) => [conv(v)]);
  n.emit({
    tensors: [0],
    run: ([x]) => {
      if (toFloat) return [bl.reshape(x!, x!.shape)];
      if (to === 9) return [bl.notEqual(x!, 0)];
      return [bl.mul(bl.sign(x!), bl.floor(bl.abs(x!)))];
    },
  });
};

export const transpose: Handler = (n) => {
  n.singleOutput();
  const perm = n.ints('perm');
  if (n.kind(0) !== 'tensor') return n.hostOp([0], ([v]) => [hostTranspose(v, perm ?? [...v.dims.keys()].reverse())]);
  n.emit({ tensors: [0], run: ([x]) => [bl.transpose(x!, perm)] });
};

export const slice: Handler = (n) => {
  n.singleOutput();
  const fromAttr = n.opset < 10;
  const params = (rank: number, get: (i: number) => number[] | undefined) => {
    const starts = fromAttr ? n.ints('starts') : get(1);
    const ends = fromAttr ? n.ints('ends') : get(2);
    if (!starts || !ends || starts.length !== ends.length) throw new Error('starts and ends are required and must have equal lengths');
    const axes = (fromAttr ? n.ints('axes') : get(3)) ?? starts.map((_, i) => i);
    const steps = (fromAttr ? undefined : get(4)) ?? starts.map(() => 1);
    return { starts, ends, axes: axes.map((a) => normAxis(a, rank, 'Slice axes')), steps };
  };
  const idx = fromAttr ? [0] : [0, 1, 2, 3, 4];
  for (const i of idx.slice(1)) if (n.kind(i) === 'tensor') n.fail(`input ${i} (starts/ends/axes/steps) must be a constant`);
  if (n.kind(0) !== 'tensor') {
    return n.hostOp(idx, (vs) => {
      const p = params(vs[0].dims.length, (i) => (vs[i] ? Array.from(vs[i].data) : undefined));
      return [hostSlice(vs[0], p.starts, p.ends, p.axes, p.steps, 'Slice')];
    });
  }
  n.emit({
    tensors: [0],
    run: ([x], rt) => {
      const p = params(x!.rank, (i) => (n.has(i) ? Array.from(rt.ints(i).data) : undefined));
      const begin = x!.shape.map(() => 0);
      const size = [...x!.shape];
      const stepped: [number, number, number, number][] = [];
      p.axes.forEach((a, i) => {
        const [s0, cnt] = sliceRange(p.starts[i], p.ends[i], p.steps[i], x!.shape[a]);
        if (p.steps[i] === 1) [begin[a], size[a]] = [s0, cnt];
        else stepped.push([a, s0, cnt, p.steps[i]]);
      });
      let y = bl.slice(x!, begin, size);
      // other steps (reversal x[::-1], every other row x[::2]): a gather of the picked indices,
      // whose adjoint scatters the gradient back
      for (const [a, s0, cnt, st] of stepped) {
        const idx = Array.from({ length: cnt }, (_, k) => s0 + k * st);
        y = cnt === 0 ? bl.slice(y, y.shape.map(() => 0), y.shape.map((d, j) => (j === a ? 0 : d))) : bl.gather(y, bl.tensor(idx, [cnt], y.backend), a);
      }
      return [y];
    },
  });
};

/**
 * Split along `axis` into the node's outputs: sizes from the `split` attribute (opset < 13) or
 * input 1 (13+), else equal parts (opset 18: `num_outputs` parts, the last one smaller when the
 * axis does not divide evenly).
 */
export const split: Handler = (n) => {
  const axis = n.int('axis', 0);
  const count = n.outputs.length;
  if (count < 1) n.fail('has no outputs');
  const numOutputs = n.opset >= 18 ? n.int('num_outputs', 0) : 0;
  if (n.opset >= 18 && !n.has(1) && numOutputs !== count) n.fail(`num_outputs is ${numOutputs} but the node has ${count} outputs`);
  const given = n.opset < 13 ? n.ints('split') : n.has(1) ? Array.from(n.host(1, 'split').data) : undefined;
  if (given && given.length !== count) n.fail(`split [${given.join(', ')}] has ${given.length} parts but the node has ${count} outputs`);
  const sizes = (d: number): number[] => {
    if (given) {
      if (given.reduce((a, b) => a + b, 0) !== d || given.some((g) => !Number.isInteger(g) || g < 0)) throw new Error(`split [${given.join(', ')}] does not add up to the axis size ${d}`);
      return given;
    }
    if (numOutputs) {
      const part = Math.ceil(d / count);
      // equal parts of ceil(d / count), the last one smaller; every part must be non-empty
      if (part * (count - 1) >= d) throw new Error(`cannot split an axis of size ${d} into ${count} non-empty parts of ${part}`);
      return Array.from({ length: count }, (_, k) => Math.min(part, d - k * part));
    }
    if (d % count !== 0) throw new Error(`an axis of size ${d} does not split into ${count} equal parts`);
    return Array(count).fill(d / count);
  };
  const parts = (dims: readonly number[]) => {
    const a = normAxis(axis, dims.length, 'Split axis');
    let at = 0;
    return sizes(dims[a]).map((sz) => {
      const r = { a, at, sz };
      at += sz;
      return r;
    });
  };
  if (n.kind(0) !== 'tensor') {
    return n.hostOp([0], ([v]) => parts(v.dims).map(({ a, at, sz }) => hostSlice(v, [at], [at + sz], [a], [1], 'Split')));
  }
  n.emit({
    tensors: [0],
    run: ([x]) =>
      parts(x!.shape).map(({ a, at, sz }) => {
        const begin = x!.shape.map((_, i) => (i === a ? at : 0));
        const size = x!.shape.map((d, i) => (i === a ? sz : d));
        return bl.slice(x!, begin, size);
      }),
  });
};

/** ONNX Expand's output shape: the input and the shape broadcast together (either may be larger). */
function expandShape(dims: readonly number[], shape: ArrayLike<number>): number[] {
  const s = Array.from(shape);
  const r = Math.max(dims.length, s.length);
  return Array.from({ length: r }, (_, i) => {
    const a = dims[dims.length - r + i] ?? 1;
    const b = s[s.length - r + i] ?? 1;
    if (a !== b && a !== 1 && b !== 1) throw new Error(`cannot expand [${dims.join(', ')}] to [${s.join(', ')}] (axis ${i}: ${a} vs ${b})`);
    return a === 1 ? b : a;
  });
}

export const expand: Handler = (n) => {
  n.singleOutput();
  if (!n.has(1)) n.fail('the shape input (input 1) is missing');
  if (n.kind(1) === 'tensor') n.fail(`the shape input '${n.inputs[1]}' is a runtime tensor; shapes must be constants or computed from tensor shapes`);
  if (n.kind(0) !== 'tensor') {
    return n.hostOp([0, 1], ([v, s]) => {
      const dims = expandShape(v.dims, s.data);
      return [hostNary([v, { dims, data: new Float64Array(numel(dims)), float: false }], ([x]) => x, v.float, 'Expand')];
    });
  }
  n.emit({ tensors: [0], run: ([x], rt) => [bl.broadcastTo(x!, expandShape(x!.shape, rt.ints(1).data))] });
};

/** ConstantOfShape: a host value of the given shape filled with `value` (default float 0). */
export const constantOfShape: Handler = (n) => {
  n.singleOutput();
  const attr = n.attrs.get('value');
  let fill = 0;
  let float = true;
  if (attr) {
    if (!attr.t) n.fail('the value attribute holds no tensor');
    const v = tensorToHost(attr.t!, `${n.L.source}: node '${n.name}' (ConstantOfShape), value`);
    if (v.data.length !== 1) n.fail(`value must hold one element, got shape [${v.dims.join(', ')}]`);
    fill = v.data[0];
    float = v.float;
  }
  if (n.kind(0) === 'tensor') n.fail(`the shape input '${n.inputs[0]}' is a runtime tensor; shapes must be constants or computed from tensor shapes`);
  n.hostOp([0], ([s]) => {
    const dims = Array.from(s.data);
    if (dims.some((d) => !Number.isSafeInteger(d) || d < 0)) throw new Error(`invalid shape [${dims.join(', ')}]`);
    return [build(dims, float, () => fill)];
  });
};

/** Range(start, limit, delta): host values only (it makes index lists and shapes). */
export const range: Handler = (n) => {
  n.singleOutput();
  for (let i = 0; i < 3; i++) if (n.kind(i) === 'tensor') n.fail(`input ${i} is a runtime tensor; Range is only supported on constants and shape values`);
  n.hostOp([0, 1, 2], ([s, l, d]) => {
    const [a, b, c] = [s.data[0], l.data[0], d.data[0]];
    if (!(c !== 0) || ![a, b, c].every(Number.isFinite)) throw new Error(`start ${a}, limit ${b}, delta ${c}: delta must be non-zero and all finite`);
    const cnt = Math.max(0, Math.ceil((b - a) / c));
    return [build([cnt], s.float || l.float || d.float, ([i]) => a + i * c)];
  });
};

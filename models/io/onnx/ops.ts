// The op handlers: each turns one ONNX node into graph nodes (a layer with its parameters where
// the node owns its weights), folds it on the host, or fails naming the node.
import * as bl from '../../../engine/index.ts';
import type { Tensor } from '../../../engine/index.ts';
import { BatchNorm2d, Conv2d, Dropout, Linear } from '../../layers.ts';
import type { Module } from '../../module.ts';
import { DTYPES, FLOAT_TYPES, type HostValue, hostBinary, hostConcat, hostGather, hostSlice, hostTranspose, normAxis, numel, reshapeTarget, sliceRange, tensorToHost } from './host.ts';
import type { Loader, NodeCtx, Runtime } from './loader.ts';

// ---- op handlers ----

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

export const conv: Handler = (n) => {
  n.singleOutput();
  if (!n.has(1)) n.fail('the weight input (input 1) is missing');
  const wv = n.kind(1) === 'host' ? n.host(1, 'weight') : null;
  if (wv && wv.dims.length !== 4) n.fail(`only 2-D convolutions are supported; the weight has shape [${wv.dims.join(', ')}]`);
  const ks = n.ints('kernel_shape');
  if (ks && ks.length !== 2) n.fail(`only 2-D convolutions are supported; kernel_shape is [${ks.join(', ')}]`);
  const stride = pair(n, 'strides', 1);
  const dilation = pair(n, 'dilations', 1);
  const groups = n.int('group', 1);
  if (!(groups >= 1) || !stride.every((v) => v >= 1) || !dilation.every((v) => v >= 1)) {
    n.fail(`group (${groups}), strides [${stride.join(', ')}] and dilations [${dilation.join(', ')}] must be >= 1`);
  }
  const kernel: [number, number] = wv ? [wv.dims[2], wv.dims[3]] : ks ? [ks[0], ks[1]] : [0, 0];
  if (!wv && !ks && n.str('auto_pad', 'NOTSET').startsWith('SAME')) n.fail('auto_pad SAME needs kernel_shape or a constant weight');
  if (ks && wv && (ks[0] !== kernel[0] || ks[1] !== kernel[1])) n.fail(`kernel_shape [${ks.join(', ')}] does not match the weight [${wv.dims.join(', ')}]`);
  const pad = autoPad(n, kernel, stride, dilation);
  const W = n.ownable(1);
  const B = n.has(2) ? n.ownable(2) : null;
  if (W && (!n.has(2) || B)) {
    const [O, I, kh, kw] = W.dims;
    const layer = new Conv2d(I * groups, O, [kh, kw], { stride, dilation, groups, padding: typeof pad === 'function' ? 0 : pad, bias: !!B });
    setParam(n.L, n, layer, 'weight', 1, W);
    if (B) setParam(n.L, n, layer, 'bias', 2, B);
    n.emit({
      tensors: [0],
      module: layer,
      run: ([x]) => {
        if (typeof pad !== 'function') return [layer.forward(x!)];
        return [bl.conv2d(x!, layer.param('weight'), { stride, dilation, groups, padding: pad(x!), bias: layer.optParam('bias') })];
      },
    });
    return;
  }
  n.emit({
    tensors: [0, 1, 2],
    run: ([x, w, b]) => [bl.conv2d(x!, w!, { stride, dilation, groups, padding: typeof pad === 'function' ? pad(x!) : pad, bias: b })],
  });
};

export const batchNormalization: Handler = (n) => {
  n.singleOutput();
  if (n.int('training_mode', 0) !== 0) n.fail('training_mode = 1 is not supported (export the model in eval mode)');
  const eps = n.float('epsilon', 1e-5);
  for (let i = 1; i <= 4; i++) if (!n.has(i)) n.fail(`input ${i} (${['', 'scale', 'B', 'mean', 'var'][i]}) is missing`);
  const own = [1, 2, 3, 4].map((i) => n.ownable(i));
  const C = own[0]?.dims[0];
  if (own.every((v) => v && v.dims.length === 1 && v.dims[0] === C)) {
    const layer = new BatchNorm2d(C!, { eps });
    ['weight', 'bias', 'running_mean', 'running_var'].forEach((local, k) => setParam(n.L, n, layer, local, k + 1, own[k]!));
    n.emit({
      tensors: [0],
      module: layer,
      run: ([x]) => {
        if (x!.rank === 4) return [layer.forward(x!)];
        return [bl.batchNorm(x!, { mean: layer.buffer('running_mean'), variance: layer.buffer('running_var'), gamma: layer.param('weight'), beta: layer.param('bias'), eps: layer.eps })];
      },
    });
    return;
  }
  n.emit({ tensors: [0, 1, 2, 3, 4], run: ([x, g, b, m, v]) => [bl.batchNorm(x!, { mean: m!, variance: v!, gamma: g, beta: b, eps })] });
};

export const gemm: Handler = (n) => {
  n.singleOutput();
  const alpha = n.float('alpha', 1);
  const beta = n.float('beta', 1);
  const transA = n.int('transA', 0) !== 0;
  const transB = n.int('transB', 0) !== 0;
  const B = n.ownable(1);
  const C = n.has(2) ? n.ownable(2) : null;
  if (alpha === 1 && (beta === 1 || !n.has(2)) && !transA && B && B.dims.length === 2 && (!n.has(2) || C)) {
    const [K, N] = transB ? [B.dims[1], B.dims[0]] : B.dims;
    if (!C || (numel(C.dims) === N && (C.dims.length === 1 || (C.dims.length === 2 && C.dims[0] === 1)))) {
      // a fully connected layer: y = x w^T + b with w [N, K] (PyTorch's Linear layout)
      const layer = new Linear(K, N, { bias: !!C });
      const w = transB ? B : hostTranspose(B, [1, 0]);
      setParam(n.L, n, layer, 'weight', 1, w, [N, K]);
      if (C) setParam(n.L, n, layer, 'bias', 2, C, [N]);
      n.emit({
        tensors: [0],
        module: layer,
        run: ([a]) => {
          if (a!.rank !== 2) throw new Error(`input A must be a matrix, got [${a!.shape.join(', ')}]`);
          return [layer.forward(a!)];
        },
      });
      return;
    }
  }
  n.emit({
    tensors: [0, 1, 2],
    run: ([a, b, c]) => {
      if (a!.rank !== 2 || b!.rank !== 2) throw new Error(`A and B must be matrices, got [${a!.shape.join(', ')}] and [${b!.shape.join(', ')}]`);
      let y = bl.matmul(transA ? bl.transpose(a!) : a!, transB ? bl.transpose(b!) : b!);
      if (alpha !== 1) y = bl.mul(y, alpha);
      if (c) y = bl.add(y, beta !== 1 ? bl.mul(c, beta) : c);
      return [y];
    },
  });
};

/** Elementwise binary: folded on the host when both inputs are known, else a tensor op. */
export function binary(f: (a: Tensor, b: Tensor) => Tensor, h: (x: number, y: number) => number): Handler {
  return (n) => {
    n.singleOutput();
    if (!n.has(0) || !n.has(1)) n.fail('needs two inputs');
    if (n.isHost(0) && n.isHost(1)) return n.fold(hostBinary(n.host(0, 'A'), n.host(1, 'B'), h, `${n.L.source}: node '${n.name}' (${n.op})`));
    if (n.kind(0) !== 'tensor' && n.kind(1) !== 'tensor') return n.hostOp([0, 1], ([a, b]) => [hostBinary(a, b, h, n.op)]);
    n.emit({ tensors: [0, 1], run: ([a, b]) => [f(a!, b!)] });
  };
}

export function unary(f: (x: Tensor) => Tensor): Handler {
  return (n) => {
    n.singleOutput();
    n.emit({ tensors: [0], run: ([x]) => [f(x!)] });
  };
}

export function pool(kind: 'max' | 'avg'): Handler {
  return (n) => {
    n.singleOutput();
    if (n.int('ceil_mode', 0) !== 0) n.fail('ceil_mode = 1 is not supported (only floor rounding of the output size, ceil_mode = 0)');
    const ks = n.ints('kernel_shape');
    if (!ks) n.fail('kernel_shape is required');
    if (ks!.length !== 2) n.fail(`only 2-D pooling is supported; kernel_shape is [${ks!.join(', ')}]`);
    const kernel: [number, number] = [ks![0], ks![1]];
    const stride = pair(n, 'strides', 1);
    const dilation = pair(n, 'dilations', 1);
    if (kind === 'avg' && (dilation[0] !== 1 || dilation[1] !== 1)) n.fail(`dilated average pooling is not supported (dilations [${dilation.join(', ')}])`);
    const pad = autoPad(n, kernel, stride, dilation);
    const countIncludePad = n.int('count_include_pad', 0) !== 0;
    n.emit({
      tensors: [0],
      run: ([x]) => {
        const padding = typeof pad === 'function' ? pad(x!) : pad;
        return [kind === 'max' ? bl.maxPool2d(x!, { kernel, stride, padding, dilation }) : bl.avgPool2d(x!, { kernel, stride, padding, countIncludePad })];
      },
    });
  };
}

export function globalPool(kind: 'mean' | 'max'): Handler {
  return (n) => {
    n.singleOutput();
    n.emit({
      tensors: [0],
      run: ([x]) => {
        if (x!.rank < 3) throw new Error(`input must be [N, C, spatial...], got [${x!.shape.join(', ')}]`);
        const axes = [...Array(x!.rank - 2).keys()].map((a) => a + 2);
        return [kind === 'mean' ? bl.mean(x!, axes, { keepDims: true }) : bl.max(x!, axes, { keepDims: true })];
      },
    });
  };
}

/** Softmax and LogSoftmax: opset < 13 flattens to 2-D at `axis` (default 1); 13+ uses one axis (default -1). */
export function softmaxLike(f: (x: Tensor, axis: number) => Tensor): Handler {
  return (n) => {
    n.singleOutput();
    const old = n.opset < 13;
    const axis = n.int('axis', old ? 1 : -1);
    n.emit({
      tensors: [0],
      run: ([x]) => {
        const a = normAxis(axis, x!.rank, 'axis');
        if (!old || a === x!.rank - 1) return [f(x!, a)];
        const s = x!.shape;
        const y = f(bl.reshape(x!, [numel(s.slice(0, a)), numel(s.slice(a))]), 1);
        return [bl.reshape(y, s)];
      },
    });
  };
}

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

export const dropout: Handler = (n) => {
  n.singleOutput();
  let ratio = n.float('ratio', 0.5);
  if (n.opset >= 12) {
    ratio = n.has(1) ? n.host(1, 'ratio').data[0] : 0.5;
    if (n.has(2) && n.host(2, 'training_mode').data[0]) n.fail('training_mode = true is not supported (export the model in eval mode)');
  }
  if (!(ratio >= 0 && ratio < 1)) n.fail(`ratio must be in [0, 1), got ${ratio}`);
  const layer = new Dropout(ratio);
  n.emit({ tensors: [0], module: layer, run: ([x]) => [layer.forward(x!)] });
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
      const it = bl.tensor(norm, ind.dims.length ? ind.dims : [1]);
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
      p.axes.forEach((a, i) => {
        if (p.steps[i] !== 1) throw new Error(`steps other than 1 are not supported (axis ${a}: step ${p.steps[i]})`);
        [begin[a], size[a]] = sliceRange(p.starts[i], p.ends[i], 1, x!.shape[a]);
      });
      return [bl.slice(x!, begin, size)];
    },
  });
};

export function reduce(kind: 'ReduceMean' | 'ReduceSum' | 'ReduceMax'): Handler {
  return (n) => {
    n.singleOutput();
    const axesInput = kind === 'ReduceSum' ? n.opset >= 13 : n.opset >= 18;
    const keep = n.int('keepdims', 1) !== 0;
    const noopEmpty = n.int('noop_with_empty_axes', 0) !== 0;
    if (axesInput && n.kind(1) === 'tensor') n.fail('the axes input must be a constant');
    n.emit({
      tensors: [0],
      run: ([x], rt) => {
        const axes = axesInput ? (n.has(1) ? Array.from(rt.ints(1).data) : []) : (n.ints('axes') ?? []);
        if (axes.length === 0 && noopEmpty) return [bl.reshape(x!, x!.shape)];
        const ax = axes.length ? axes : undefined;
        const o = { keepDims: keep };
        return [kind === 'ReduceMean' ? bl.mean(x!, ax, o) : kind === 'ReduceSum' ? bl.sum(x!, ax, o) : bl.max(x!, ax, o)];
      },
    });
  };
}

/**
 * Pad, constant mode (what torch.onnx writes before an AveragePool with padding, and for
 * F.pad): pads [x1_begin, x2_begin, ..., x1_end, ...] from input 1 (opset >= 11) or the `pads`
 * attribute, the value from input 2 or `value` (default 0). Negative pads (cropping) and the
 * reflect/edge modes are not supported.
 */
export const padOp: Handler = (n) => {
  n.singleOutput();
  const mode = n.str('mode', 'constant');
  if (mode !== 'constant') n.fail(`mode '${mode}' is not supported (only 'constant')`);
  if (n.opset >= 18 && n.has(3)) n.fail('the axes input is not supported');
  const pads = n.opset >= 11 ? Array.from(n.host(1, 'pads').data) : n.ints('pads');
  if (!pads) n.fail('pads is required');
  const value = n.opset >= 11 ? (n.has(2) ? n.host(2, 'constant_value').data[0] ?? 0 : 0) : n.float('value', 0);
  if (pads!.length % 2 !== 0) n.fail(`pads must have 2 entries per axis, got [${pads!.join(', ')}]`);
  if (pads!.some((p) => !Number.isInteger(p) || p < 0)) n.fail(`pads must be non-negative integers (cropping is not supported), got [${pads!.join(', ')}]`);
  const r = pads!.length / 2;
  n.emit({
    tensors: [0],
    run: ([x]) => {
      if (x!.rank !== r) throw new Error(`pads has ${r} axes, the input [${x!.shape.join(', ')}] has ${x!.rank}`);
      return [bl.pad(x!, Array.from({ length: r }, (_, i) => [pads![i], pads![r + i]] as [number, number]), value)];
    },
  });
};

export const OPS: Record<string, Handler> = {
  Pad: padOp,
  Conv: conv,
  BatchNormalization: batchNormalization,
  Gemm: gemm,
  MatMul: (n) => {
    n.singleOutput();
    n.emit({ tensors: [0, 1], run: ([a, b]) => [bl.matmul(a!, b!)] });
  },
  Add: binary(bl.add, (x, y) => x + y),
  Sub: binary(bl.sub, (x, y) => x - y),
  Mul: binary(bl.mul, (x, y) => x * y),
  Div: binary(bl.div, (x, y) => x / y),
  Pow: binary(bl.pow, (x, y) => x ** y),
  Relu: unary(bl.relu),
  Sigmoid: unary(bl.sigmoid),
  Tanh: unary(bl.tanh),
  Exp: unary(bl.exp),
  Log: unary(bl.log),
  Sqrt: unary(bl.sqrt),
  Neg: unary(bl.neg),
  Abs: unary(bl.abs),
  Reciprocal: unary(bl.reciprocal),
  Softplus: unary(bl.softplus),
  LeakyRelu: (n) => {
    const alpha = n.float('alpha', 0.01);
    unary((x) => bl.leakyRelu(x, alpha))(n);
  },
  MaxPool: pool('max'),
  AveragePool: pool('avg'),
  GlobalAveragePool: globalPool('mean'),
  GlobalMaxPool: globalPool('max'),
  Softmax: softmaxLike(bl.softmax),
  LogSoftmax: softmaxLike(bl.logSoftmax),
  Flatten: flatten,
  Reshape: reshape,
  Dropout: dropout,
  Concat: concat,
  Identity: identity,
  Constant: constant,
  Shape: shape,
  Gather: gather,
  Unsqueeze: squeezeLike('Unsqueeze'),
  Squeeze: squeezeLike('Squeeze'),
  Cast: cast,
  Transpose: transpose,
  Slice: slice,
  ReduceMean: reduce('ReduceMean'),
  ReduceSum: reduce('ReduceSum'),
  ReduceMax: reduce('ReduceMax'),
};

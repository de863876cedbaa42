// The ONNX op handlers added for torchvision / timm exports (models/io/onnx/ops/), each on a
// graph built here, against a reference written here with plain loops from the ONNX operator
// definitions (never the engine), on the float64 CPU backend and on WebGPU; and each one's input
// gradient (CPU, float64) against central finite differences of the loaded model itself.
//   forward: max |ours - ref| <= TOL * max(1, |ref|) elementwise (TOL = 1e-5 on CPU, 2e-5 on WebGPU)
//   gradient: |ours - fd| <= 1e-6 * max(1, |fd|)
import { afterAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../engine/backend.ts';
import { add, grad, init, memory, mul, sum, tensor, tidy, withBackend, type Tensor } from '../../engine/index.ts';
import { loadOnnx } from '../../models/io/onnx.ts';
import { ModelProto } from '../../models/io/onnx/schema.ts';
import { encode } from './onnx-writer.ts';
import { expectClose, randArray, rng } from '../helpers.ts';

type Attr = Record<string, unknown>;
const A = {
  i: (name: string, i: number): Attr => ({ name, type: 2, i }),
  f: (name: string, f: number): Attr => ({ name, type: 1, f }),
  s: (name: string, s: string): Attr => ({ name, type: 3, s: new TextEncoder().encode(s) }),
  ints: (name: string, ints: number[]): Attr => ({ name, type: 7, ints }),
  floats: (name: string, floats: number[]): Attr => ({ name, type: 6, floats }),
  t: (name: string, t: Init): Attr => ({ name, type: 4, t: tensorProto(t) }),
};
interface Init {
  name: string;
  dims: number[];
  data: number[];
  /** int64 (shapes, axes) unless float */
  float?: boolean;
}
const tensorProto = (t: Init) => ({
  name: t.name,
  dims: t.dims,
  data_type: t.float ? 1 : 7,
  raw_data: t.float ? new Uint8Array(new Float32Array(t.data).buffer) : new Uint8Array(new BigInt64Array(t.data.map(BigInt)).buffer),
});
const ints = (name: string, data: number[], dims = [data.length]): Init => ({ name, dims, data });
const floats = (name: string, data: number[], dims = [data.length]): Init => ({ name, dims, data, float: true });
interface NodeSpec {
  op: string;
  in: string[];
  out: string[];
  attrs?: Attr[];
}

function model(opset: number, inputs: Record<string, number[]>, nodes: NodeSpec[], inits: Init[], outputs: string[]): Uint8Array {
  return Uint8Array.from(
    encode(ModelProto, {
      ir_version: 8,
      opset_import: [{ domain: '', version: opset }],
      graph: {
        name: 'g',
        node: nodes.map((n, k) => ({ name: `n${k}_${n.op}`, op_type: n.op, input: n.in, output: n.out, attribute: n.attrs ?? [] })),
        initializer: inits.map(tensorProto),
        input: Object.entries(inputs).map(([name, shape]) => ({ name, type: { tensor_type: { elem_type: 1, shape: { dim: shape.map((d) => ({ dim_value: d })) } } } })),
        output: outputs.map((name) => ({ name })),
      },
    }),
  );
}

// ---- plain n-d arrays for the references ----

class Arr {
  readonly strides: number[];
  constructor(
    readonly shape: number[],
    readonly data: Float64Array,
  ) {
    this.strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  }
  at(idx: number[]): number {
    return this.data[idx.reduce((o, v, i) => o + v * this.strides[i], 0)];
  }
  static make(shape: number[], f: (idx: number[]) => number): Arr {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float64Array(n);
    const idx = shape.map(() => 0);
    for (let k = 0; k < n; k++) {
      data[k] = f(idx);
      for (let a = shape.length - 1; a >= 0; a--) {
        if (++idx[a] < shape[a]) break;
        idx[a] = 0;
      }
    }
    return new Arr(shape, data);
  }
  map(f: (v: number) => number): Arr {
    return new Arr(this.shape, this.data.map(f));
  }
}

interface Case {
  name: string;
  opset: number;
  inputs: Record<string, { shape: number[]; lo?: number; hi?: number }>;
  nodes: NodeSpec[];
  inits?: Init[];
  outputs?: string[];
  /** the expected outputs, from the inputs */
  ref: (x: Record<string, Arr>) => Arr[];
  /** skip the finite-difference check (outputs piecewise constant in the inputs) */
  noGrad?: boolean;
}

// ---- references ----

/** erf by its Maclaurin series (float64; |x| <= 3.5 here), independent of the engine's approximation. */
function erfRef(x: number): number {
  let term = x, s = x;
  for (let n = 1; n < 200; n++) {
    term *= (-x * x) / n;
    const d = term / (2 * n + 1);
    s += d;
    if (Math.abs(d) < 1e-17 * Math.abs(s)) break;
  }
  return (2 / Math.sqrt(Math.PI)) * s;
}
const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
const unaryCase = (op: string, f: (v: number) => number, opset = 13, lo = -2, hi = 2, attrs: Attr[] = []): Case => ({
  name: `${op}${attrs.length ? ` ${attrs.map((a) => a.name).join(',')}` : ''} (opset ${opset})`,
  opset,
  inputs: { x: { shape: [2, 3, 5], lo, hi } },
  nodes: [{ op, in: ['x'], out: ['y'], attrs }],
  ref: ({ x }) => [x.map(f)],
});

function reduceRef(x: Arr, axes: number[], keep: boolean, f: (vs: number[]) => number): Arr {
  const ax = axes.length ? axes.map((a) => (a < 0 ? a + x.shape.length : a)) : x.shape.map((_, i) => i);
  const kept = x.shape.map((d, i) => (ax.includes(i) ? 1 : d));
  const r = Arr.make(kept, (idx) => {
    const vs: number[] = [];
    const inner = Arr.make(ax.map((a) => x.shape[a]), () => 0);
    Arr.make(inner.shape, (j) => {
      const full = [...idx];
      ax.forEach((a, k) => (full[a] = j[k]));
      vs.push(x.at(full));
      return 0;
    });
    return f(vs);
  });
  return keep ? r : new Arr(x.shape.filter((_, i) => !ax.includes(i)), r.data);
}
const sumOf = (vs: number[]) => vs.reduce((a, b) => a + b, 0);

/** 2-D pooling by loops: out size by floor or PyTorch's ceil rule, the divisor by PyTorch's rule. */
function poolRef(x: Arr, kind: 'max' | 'avg', k: number[], s: number[], p: number[], ceil: boolean, includePad: boolean): Arr {
  const [N, C, H, W] = x.shape;
  const outSize = (L: number, a: number) => {
    const span = L + p[a] + p[a + 2] - k[a];
    let o = (ceil ? Math.ceil(span / s[a]) : Math.floor(span / s[a])) + 1;
    if (ceil && (o - 1) * s[a] >= L + p[a]) o--;
    return o;
  };
  const OH = outSize(H, 0), OW = outSize(W, 1);
  return Arr.make([N, C, OH, OW], ([n, c, i, j]) => {
    const h0 = i * s[0] - p[0], w0 = j * s[1] - p[1];
    let best = -Infinity, acc = 0, cnt = 0;
    for (let u = h0; u < h0 + k[0]; u++) {
      for (let v = w0; v < w0 + k[1]; v++) {
        if (u >= 0 && u < H && v >= 0 && v < W) {
          best = Math.max(best, x.at([n, c, u, v]));
          acc += x.at([n, c, u, v]);
          cnt++;
        }
      }
    }
    if (kind === 'max') return best;
    // PyTorch: with count_include_pad the window clipped to the padded input, else to the input
    const hs = Math.max(h0, -p[0]), he = Math.min(h0 + k[0], H + p[2]);
    const ws = Math.max(w0, -p[1]), we = Math.min(w0 + k[1], W + p[3]);
    return acc / (includePad ? (he - hs) * (we - ws) : cnt);
  });
}

function padRef(x: Arr, pads: number[], mode: string, value = 0): Arr {
  const r = x.shape.length;
  const shape = x.shape.map((d, i) => d + pads[i] + pads[r + i]);
  return Arr.make(shape, (idx) => {
    const src = idx.map((v, i) => v - pads[i]);
    const inside = src.every((v, i) => v >= 0 && v < x.shape[i]);
    if (mode === 'constant') return inside ? x.at(src) : value;
    return x.at(
      src.map((v, i) => {
        const n = x.shape[i];
        if (mode === 'edge') return clamp(v, 0, n - 1);
        // reflect: mirror about the first and last elements
        let u = v;
        while (u < 0 || u >= n) u = u < 0 ? -u : 2 * (n - 1) - u;
        return u;
      }),
    );
  });
}

/** ConvTranspose by scattering each input element (the ONNX definition). */
function convTransposeRef(x: Arr, w: Arr, b: Arr | null, o: { s: number[]; p: number[]; op: number[]; d: number[]; g: number }): Arr {
  const [N, Ci, H, W] = x.shape;
  const [, Cog, KH, KW] = w.shape;
  const Co = Cog * o.g;
  const full = [(H - 1) * o.s[0] + o.d[0] * (KH - 1) + 1 + o.op[0], (W - 1) * o.s[1] + o.d[1] * (KW - 1) + 1 + o.op[1]];
  const acc = new Float64Array(N * Co * full[0] * full[1]);
  for (let n = 0; n < N; n++)
    for (let ci = 0; ci < Ci; ci++) {
      const g = Math.floor(ci / (Ci / o.g));
      for (let i = 0; i < H; i++)
        for (let j = 0; j < W; j++)
          for (let c = 0; c < Cog; c++)
            for (let u = 0; u < KH; u++)
              for (let v = 0; v < KW; v++) {
                const co = g * Cog + c, oi = i * o.s[0] + u * o.d[0], oj = j * o.s[1] + v * o.d[1];
                acc[((n * Co + co) * full[0] + oi) * full[1] + oj] += x.at([n, ci, i, j]) * w.at([ci, c, u, v]);
              }
    }
  const F = new Arr([N, Co, full[0], full[1]], acc);
  return Arr.make([N, Co, full[0] - o.p[0] - o.p[2], full[1] - o.p[1] - o.p[3]], ([n, c, i, j]) => F.at([n, c, i + o.p[0], j + o.p[1]]) + (b ? b.data[c] : 0));
}

/** Resize by the ONNX definition of the coordinate transformations (2 spatial axes). */
function resizeRef(x: Arr, out: number[], scales: number[], mode: 'nearest' | 'linear', coord: string, nearest: string): Arr {
  const src = (i: number, a: number) => {
    const L = x.shape[a], O = out[a], sc = scales[a];
    if (coord === 'half_pixel') return (i + 0.5) / sc - 0.5;
    if (coord === 'pytorch_half_pixel') return O > 1 ? (i + 0.5) / sc - 0.5 : 0;
    if (coord === 'align_corners') return O === 1 ? 0 : (i * (L - 1)) / (O - 1);
    return i / sc;
  };
  const pick = (v: number) => {
    const f = Math.floor(v), fr = v - f;
    if (nearest === 'floor') return f;
    if (nearest === 'ceil') return Math.ceil(v);
    if (fr === 0.5) return nearest === 'round_prefer_ceil' ? f + 1 : f;
    return Math.round(v);
  };
  return Arr.make(out, (idx) => {
    if (mode === 'nearest') return x.at(idx.map((v, a) => (out[a] === x.shape[a] ? v : clamp(pick(src(v, a)), 0, x.shape[a] - 1))));
    // separable linear: the two neighbours along each resized axis, clamped to the edge
    const terms: [number[], number][] = [[[], 1]];
    idx.forEach((v, a) => {
      const next: [number[], number][] = [];
      if (out[a] === x.shape[a]) {
        for (const [p, w] of terms) next.push([[...p, v], w]);
      } else {
        const s = clamp(src(v, a), 0, x.shape[a] - 1);
        const lo = Math.floor(s), hi = Math.min(lo + 1, x.shape[a] - 1), fr = s - lo;
        for (const [p, w] of terms) next.push([[...p, lo], w * (1 - fr)], [[...p, hi], w * fr]);
      }
      terms.splice(0, terms.length, ...next);
    });
    return terms.reduce((acc, [p, w]) => acc + w * x.at(p), 0);
  });
}

function sliceRef(x: Arr, axis: number, idx: number[]): Arr {
  return Arr.make(x.shape.map((d, i) => (i === axis ? idx.length : d)), (j) => x.at(j.map((v, i) => (i === axis ? idx[v] : v))));
}

function layerNormRef(x: Arr, axis: number, g: Arr | null, b: Arr | null, eps: number): Arr {
  const r = x.shape.length, a = axis < 0 ? axis + r : axis;
  const axes = x.shape.map((_, i) => i).filter((i) => i >= a);
  const m = reduceRef(x, axes, true, (vs) => sumOf(vs) / vs.length);
  const v = reduceRef(x, axes, true, (vs) => {
    const mu = sumOf(vs) / vs.length;
    return sumOf(vs.map((t) => (t - mu) ** 2)) / vs.length;
  });
  return Arr.make(x.shape, (idx) => {
    const k = idx.map((t, i) => (i >= a ? 0 : t));
    const inner = idx.slice(a);
    const gi = g ? g.at(inner.slice(inner.length - g.shape.length)) : 1;
    const bi = b ? b.at(inner.slice(inner.length - b.shape.length)) : 0;
    return ((x.at(idx) - m.at(k)) / Math.sqrt(v.at(k) + eps)) * gi + bi;
  });
}

// ---- the cases ----

const W = (shape: number[], seed: number, lo = -1, hi = 1) => Array.from(randArray(rng(seed), shape.reduce((a, b) => a * b, 1), lo, hi));
const arr = (i: Init) => new Arr(i.dims, Float64Array.from(new Float32Array(i.data)));
const ctW = floats('w', W([4, 3, 3, 3], 7), [4, 3, 3, 3]);
const ctB = floats('b', W([6], 8), [6]);
const ctWg = floats('wg', W([4, 3, 2, 2], 9), [4, 3, 2, 2]);

const CASES: Case[] = [
  // Clip: attributes before opset 11, optional inputs after (an absent max: '')
  { name: 'Clip min/max attributes (opset 10)', opset: 10, inputs: { x: { shape: [2, 3, 5] } }, nodes: [{ op: 'Clip', in: ['x'], out: ['y'], attrs: [A.f('min', -0.3), A.f('max', 0.4)] }], ref: ({ x }) => [x.map((v) => clamp(v, -0.3, 0.4))] },
  { name: 'Clip min input only (opset 11)', opset: 11, inputs: { x: { shape: [2, 3, 5] } }, nodes: [{ op: 'Clip', in: ['x', 'lo', ''], out: ['y'] }], inits: [floats('lo', [-0.25], [])], ref: ({ x }) => [x.map((v) => Math.max(v, -0.25))] },
  { name: 'Clip as ReLU6 (opset 13)', opset: 13, inputs: { x: { shape: [2, 3, 5], lo: -3, hi: 9 } }, nodes: [{ op: 'Clip', in: ['x', 'lo', 'hi'], out: ['y'] }], inits: [floats('lo', [0], []), floats('hi', [6], [])], ref: ({ x }) => [x.map((v) => clamp(v, 0, 6))] },
  unaryCase('HardSigmoid', (v) => clamp(0.3 * v + 0.4, 0, 1), 13, -4, 4, [A.f('alpha', 0.3), A.f('beta', 0.4)]),
  unaryCase('HardSigmoid', (v) => clamp(0.2 * v + 0.5, 0, 1), 13, -4, 4),
  unaryCase('HardSwish', (v) => (v * clamp(v / 6 + 0.5, 0, 1)), 14, -5, 5),
  unaryCase('Erf', erfRef, 13, -3.5, 3.5),
  unaryCase('Gelu', (v) => 0.5 * v * (1 + erfRef(v / Math.SQRT2)), 20, -3, 3),
  unaryCase('Gelu', (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))), 20, -3, 3, [A.s('approximate', 'tanh')]),
  unaryCase('Sqrt', Math.sqrt, 13, 0.1, 3),
  unaryCase('Neg', (v) => -v),
  unaryCase('Abs', Math.abs),
  unaryCase('Exp', Math.exp),
  unaryCase('Log', Math.log, 13, 0.1, 3),
  unaryCase('Softplus', (v) => Math.log1p(Math.exp(v)), 13, -4, 4),
  unaryCase('Elu', (v) => (v > 0 ? v : 0.7 * (Math.exp(v) - 1)), 13, -2, 2, [A.f('alpha', 0.7)]),
  unaryCase('Mish', (v) => v * Math.tanh(Math.log1p(Math.exp(v))), 18),
  { name: 'Pow with exponent 2, 3 and 0.5', opset: 13, inputs: { x: { shape: [2, 3, 5], lo: 0.1, hi: 2 } }, nodes: [{ op: 'Pow', in: ['x', 'two'], out: ['a'] }, { op: 'Pow', in: ['x', 'three'], out: ['b'] }, { op: 'Pow', in: ['x', 'half'], out: ['c'] }], inits: [floats('two', [2], []), floats('three', [3], []), floats('half', [0.5], [])], outputs: ['a', 'b', 'c'], ref: ({ x }) => [x.map((v) => v * v), x.map((v) => v ** 3), x.map(Math.sqrt)] },
  { name: 'Pow 2 of negative values (the LayerNorm decomposition)', opset: 13, inputs: { x: { shape: [2, 3, 5] } }, nodes: [{ op: 'Pow', in: ['x', 'two'], out: ['y'] }], inits: [floats('two', [2], [])], ref: ({ x }) => [x.map((v) => v * v)] },
  // LayerNormalization (opset 17) and the decomposition opsets < 17 export
  { name: 'LayerNormalization over the last axis, with bias', opset: 17, inputs: { x: { shape: [2, 3, 6] } }, nodes: [{ op: 'LayerNormalization', in: ['x', 'g', 'b'], out: ['y'], attrs: [A.f('epsilon', 1e-3)] }], inits: [floats('g', W([6], 11)), floats('b', W([6], 12))], ref: ({ x }) => [layerNormRef(x, -1, arr(floats('g', W([6], 11))), arr(floats('b', W([6], 12))), 1e-3)] },
  { name: 'LayerNormalization from axis 1, no bias', opset: 17, inputs: { x: { shape: [2, 3, 4] } }, nodes: [{ op: 'LayerNormalization', in: ['x', 'g'], out: ['y'], attrs: [A.i('axis', 1)] }], inits: [floats('g', W([3, 4], 13), [3, 4])], ref: ({ x }) => [layerNormRef(x, 1, arr(floats('g', W([3, 4], 13), [3, 4])), null, 1e-5)] },
  {
    name: 'LayerNorm decomposition: ReduceMean / Sub / Pow / Add / Sqrt / Div (opset 13)',
    opset: 13,
    inputs: { x: { shape: [2, 4, 5] } },
    nodes: [
      { op: 'ReduceMean', in: ['x'], out: ['m'], attrs: [A.ints('axes', [-1])] },
      { op: 'Sub', in: ['x', 'm'], out: ['d'] },
      { op: 'Pow', in: ['d', 'two'], out: ['d2'] },
      { op: 'ReduceMean', in: ['d2'], out: ['v'], attrs: [A.ints('axes', [-1])] },
      { op: 'Add', in: ['v', 'eps'], out: ['ve'] },
      { op: 'Sqrt', in: ['ve'], out: ['s'] },
      { op: 'Div', in: ['d', 's'], out: ['y'] },
    ],
    inits: [floats('two', [2], []), floats('eps', [1e-5], [])],
    ref: ({ x }) => [layerNormRef(x, -1, null, null, Math.fround(1e-5))],
  },
  // reductions over any axes: attribute form (opset 13) and input form (opset 18; ReduceSum from 13)
  { name: 'ReduceMean axes [1, 3] keepdims (attribute)', opset: 13, inputs: { x: { shape: [2, 3, 4, 5] } }, nodes: [{ op: 'ReduceMean', in: ['x'], out: ['y'], attrs: [A.ints('axes', [1, 3])] }], ref: ({ x }) => [reduceRef(x, [1, 3], true, (vs) => sumOf(vs) / vs.length)] },
  { name: 'ReduceMean all axes, keepdims 0', opset: 13, inputs: { x: { shape: [2, 3, 4] } }, nodes: [{ op: 'ReduceMean', in: ['x'], out: ['y'], attrs: [A.i('keepdims', 0)] }], ref: ({ x }) => [reduceRef(x, [], false, (vs) => sumOf(vs) / vs.length)] },
  { name: 'ReduceMean axes input [0, -1] (opset 18)', opset: 18, inputs: { x: { shape: [2, 3, 4] } }, nodes: [{ op: 'ReduceMean', in: ['x', 'ax'], out: ['y'], attrs: [A.i('keepdims', 0)] }], inits: [ints('ax', [0, -1])], ref: ({ x }) => [reduceRef(x, [0, 2], false, (vs) => sumOf(vs) / vs.length)] },
  { name: 'ReduceSum axes input [2] (opset 13)', opset: 13, inputs: { x: { shape: [2, 3, 4] } }, nodes: [{ op: 'ReduceSum', in: ['x', 'ax'], out: ['y'] }], inits: [ints('ax', [2])], ref: ({ x }) => [reduceRef(x, [2], true, sumOf)] },
  { name: 'ReduceSum with empty axes and noop_with_empty_axes', opset: 13, inputs: { x: { shape: [2, 3] } }, nodes: [{ op: 'ReduceSum', in: ['x'], out: ['y'], attrs: [A.i('noop_with_empty_axes', 1)] }], ref: ({ x }) => [x] },
  { name: 'ReduceMax axes [0, 2] keepdims 0 (attribute)', opset: 13, inputs: { x: { shape: [3, 2, 4] } }, nodes: [{ op: 'ReduceMax', in: ['x'], out: ['y'], attrs: [A.ints('axes', [0, 2]), A.i('keepdims', 0)] }], ref: ({ x }) => [reduceRef(x, [0, 2], false, (vs) => Math.max(...vs))] },
  { name: 'ReduceMax axes input (opset 18)', opset: 18, inputs: { x: { shape: [3, 2, 4] } }, nodes: [{ op: 'ReduceMax', in: ['x', 'ax'], out: ['y'] }], inits: [ints('ax', [1])], ref: ({ x }) => [reduceRef(x, [1], true, (vs) => Math.max(...vs))] },
  { name: 'ReduceMin, ReduceL2, ReduceSumSquare, ReduceLogSumExp', opset: 13, inputs: { x: { shape: [2, 3, 4] } }, nodes: [{ op: 'ReduceMin', in: ['x'], out: ['a'], attrs: [A.ints('axes', [1])] }, { op: 'ReduceL2', in: ['x'], out: ['b'], attrs: [A.ints('axes', [2])] }, { op: 'ReduceSumSquare', in: ['x'], out: ['c'], attrs: [A.ints('axes', [0, 1]), A.i('keepdims', 0)] }, { op: 'ReduceLogSumExp', in: ['x'], out: ['d'], attrs: [A.ints('axes', [2]), A.i('keepdims', 0)] }], outputs: ['a', 'b', 'c', 'd'], ref: ({ x }) => [reduceRef(x, [1], true, (vs) => Math.min(...vs)), reduceRef(x, [2], true, (vs) => Math.sqrt(sumOf(vs.map((v) => v * v)))), reduceRef(x, [0, 1], false, (vs) => sumOf(vs.map((v) => v * v))), reduceRef(x, [2], false, (vs) => Math.log(sumOf(vs.map(Math.exp))))] },
  // pooling with ceil_mode = 1 (SqueezeNet, DenseNet-style), with and without padding
  { name: 'MaxPool ceil_mode 1, kernel 3 stride 2 on 8x9', opset: 13, inputs: { x: { shape: [1, 2, 8, 9] } }, nodes: [{ op: 'MaxPool', in: ['x'], out: ['y'], attrs: [A.ints('kernel_shape', [3, 3]), A.ints('strides', [2, 2]), A.i('ceil_mode', 1)] }], ref: ({ x }) => [poolRef(x, 'max', [3, 3], [2, 2], [0, 0, 0, 0], true, false)] },
  { name: 'MaxPool ceil_mode 1 with pads, kernel 2 stride 2 on 7x7', opset: 11, inputs: { x: { shape: [1, 2, 7, 7] } }, nodes: [{ op: 'MaxPool', in: ['x'], out: ['y'], attrs: [A.ints('kernel_shape', [2, 2]), A.ints('strides', [2, 2]), A.ints('pads', [1, 0, 1, 0]), A.i('ceil_mode', 1)] }], ref: ({ x }) => [poolRef(x, 'max', [2, 2], [2, 2], [1, 0, 1, 0], true, false)] },
  { name: 'AveragePool ceil_mode 1, count_include_pad 1, pads', opset: 13, inputs: { x: { shape: [1, 2, 7, 8] } }, nodes: [{ op: 'AveragePool', in: ['x'], out: ['y'], attrs: [A.ints('kernel_shape', [3, 3]), A.ints('strides', [2, 2]), A.ints('pads', [1, 1, 1, 1]), A.i('ceil_mode', 1), A.i('count_include_pad', 1)] }], ref: ({ x }) => [poolRef(x, 'avg', [3, 3], [2, 2], [1, 1, 1, 1], true, true)] },
  { name: 'AveragePool ceil_mode 1, count_include_pad 0', opset: 13, inputs: { x: { shape: [1, 2, 6, 7] } }, nodes: [{ op: 'AveragePool', in: ['x'], out: ['y'], attrs: [A.ints('kernel_shape', [2, 3]), A.ints('strides', [2, 2]), A.ints('pads', [0, 1, 0, 1]), A.i('ceil_mode', 1)] }], ref: ({ x }) => [poolRef(x, 'avg', [2, 3], [2, 2], [0, 1, 0, 1], true, false)] },
  // Pad: modes, pads as input (opset 11+) or attribute, negative pads crop
  { name: 'Pad constant 0.5, pads input (opset 13)', opset: 13, inputs: { x: { shape: [1, 2, 3, 4] } }, nodes: [{ op: 'Pad', in: ['x', 'p', 'v'], out: ['y'] }], inits: [ints('p', [0, 0, 1, 2, 0, 1, 2, 0]), floats('v', [0.5], [])], ref: ({ x }) => [padRef(x, [0, 0, 1, 2, 0, 1, 2, 0], 'constant', 0.5)] },
  { name: 'Pad reflect (opset 13)', opset: 13, inputs: { x: { shape: [1, 2, 4, 5] } }, nodes: [{ op: 'Pad', in: ['x', 'p'], out: ['y'], attrs: [A.s('mode', 'reflect')] }], inits: [ints('p', [0, 0, 2, 1, 0, 0, 3, 4])], ref: ({ x }) => [padRef(x, [0, 0, 2, 1, 0, 0, 3, 4], 'reflect')] },
  { name: 'Pad edge (opset 11)', opset: 11, inputs: { x: { shape: [1, 2, 3, 4] } }, nodes: [{ op: 'Pad', in: ['x', 'p'], out: ['y'], attrs: [A.s('mode', 'edge')] }], inits: [ints('p', [0, 0, 2, 0, 0, 1, 1, 3])], ref: ({ x }) => [padRef(x, [0, 0, 2, 0, 0, 1, 1, 3], 'edge')] },
  { name: 'Pad reflect, pads attribute (opset 10)', opset: 10, inputs: { x: { shape: [2, 5] } }, nodes: [{ op: 'Pad', in: ['x'], out: ['y'], attrs: [A.s('mode', 'reflect'), A.ints('pads', [1, 2, 0, 3])] }], ref: ({ x }) => [padRef(x, [1, 2, 0, 3], 'reflect')] },
  { name: 'Pad with negative pads (crop) and edge', opset: 13, inputs: { x: { shape: [3, 6] } }, nodes: [{ op: 'Pad', in: ['x', 'p'], out: ['y'], attrs: [A.s('mode', 'edge')] }], inits: [ints('p', [-1, 2, 1, -3])], ref: ({ x }) => [padRef(Arr.make([2, 3], ([i, j]) => x.at([i + 1, j])), [0, 2, 1, 0], 'edge')] },
  // ConvTranspose: stride, pads, output_padding, dilation, groups, bias
  { name: 'ConvTranspose stride 2, pads, output_padding, bias', opset: 13, inputs: { x: { shape: [2, 4, 3, 4] } }, nodes: [{ op: 'ConvTranspose', in: ['x', 'w', 'b3'], out: ['y'], attrs: [A.ints('strides', [2, 2]), A.ints('pads', [1, 0, 0, 1]), A.ints('output_padding', [1, 0])] }], inits: [ctW, floats('b3', W([3], 8))], ref: ({ x }) => [convTransposeRef(x, arr(ctW), arr(floats('b3', W([3], 8))), { s: [2, 2], p: [1, 0, 0, 1], op: [1, 0], d: [1, 1], g: 1 })] },
  { name: 'ConvTranspose groups 2, dilation 2', opset: 11, inputs: { x: { shape: [1, 4, 3, 3] } }, nodes: [{ op: 'ConvTranspose', in: ['x', 'wg'], out: ['y'], attrs: [A.i('group', 2), A.ints('dilations', [2, 1]), A.ints('strides', [1, 2])] }], inits: [ctWg], ref: ({ x }) => [convTransposeRef(x, arr(ctWg), null, { s: [1, 2], p: [0, 0, 0, 0], op: [0, 0], d: [2, 1], g: 2 })] },
  { name: 'ConvTranspose output_shape', opset: 13, inputs: { x: { shape: [1, 4, 3, 3] } }, nodes: [{ op: 'ConvTranspose', in: ['x', 'w'], out: ['y'], attrs: [A.ints('strides', [2, 2]), A.ints('output_shape', [6, 7])] }], inits: [ctW], ref: ({ x }) => [convTransposeRef(x, arr(ctW), null, { s: [2, 2], p: [0, 0, 0, 0], op: [0, 0], d: [1, 1], g: 1 })].map((y) => Arr.make([1, 3, 6, 7], (i) => y.at(i))) },
  // Resize / Upsample
  { name: 'Resize nearest x2 (asymmetric, floor: PyTorch)', opset: 13, inputs: { x: { shape: [1, 2, 3, 4] } }, nodes: [{ op: 'Resize', in: ['x', '', 'sc'], out: ['y'], attrs: [A.s('mode', 'nearest'), A.s('coordinate_transformation_mode', 'asymmetric'), A.s('nearest_mode', 'floor')] }], inits: [floats('sc', [1, 1, 2, 2])], ref: ({ x }) => [resizeRef(x, [1, 2, 6, 8], [1, 1, 2, 2], 'nearest', 'asymmetric', 'floor')], noGrad: false },
  { name: 'Resize nearest to sizes (half_pixel, round_prefer_floor)', opset: 13, inputs: { x: { shape: [1, 2, 4, 6] } }, nodes: [{ op: 'Resize', in: ['x', '', '', 'sz'], out: ['y'] }], inits: [ints('sz', [1, 2, 7, 3])], ref: ({ x }) => [resizeRef(x, [1, 2, 7, 3], [1, 1, 7 / 4, 3 / 6], 'nearest', 'half_pixel', 'round_prefer_floor')] },
  { name: 'Resize linear x2 (pytorch_half_pixel: F.interpolate bilinear)', opset: 11, inputs: { x: { shape: [1, 2, 3, 4] } }, nodes: [{ op: 'Resize', in: ['x', 'roi', 'sc'], out: ['y'], attrs: [A.s('mode', 'linear'), A.s('coordinate_transformation_mode', 'pytorch_half_pixel')] }], inits: [floats('roi', [], [0]), floats('sc', [1, 1, 2, 2])], ref: ({ x }) => [resizeRef(x, [1, 2, 6, 8], [1, 1, 2, 2], 'linear', 'pytorch_half_pixel', '')] },
  { name: 'Resize linear to sizes (align_corners)', opset: 13, inputs: { x: { shape: [1, 2, 3, 4] } }, nodes: [{ op: 'Resize', in: ['x', '', '', 'sz'], out: ['y'], attrs: [A.s('mode', 'linear'), A.s('coordinate_transformation_mode', 'align_corners')] }], inits: [ints('sz', [1, 2, 5, 7])], ref: ({ x }) => [resizeRef(x, [1, 2, 5, 7], [1, 1, 5 / 3, 7 / 4], 'linear', 'align_corners', '')] },
  { name: 'Resize linear down to sizes (half_pixel)', opset: 13, inputs: { x: { shape: [1, 1, 6, 7] } }, nodes: [{ op: 'Resize', in: ['x', '', '', 'sz'], out: ['y'], attrs: [A.s('mode', 'linear')] }], inits: [ints('sz', [1, 1, 4, 3])], ref: ({ x }) => [resizeRef(x, [1, 1, 4, 3], [1, 1, 4 / 6, 3 / 7], 'linear', 'half_pixel', '')] },
  { name: 'Upsample nearest (opset 9, scales input)', opset: 9, inputs: { x: { shape: [1, 2, 3, 3] } }, nodes: [{ op: 'Upsample', in: ['x', 'sc'], out: ['y'] }], inits: [floats('sc', [1, 1, 2, 3])], ref: ({ x }) => [resizeRef(x, [1, 2, 6, 9], [1, 1, 2, 3], 'nearest', 'asymmetric', 'floor')] },
  { name: 'Upsample linear (opset 7, scales attribute)', opset: 7, inputs: { x: { shape: [1, 1, 3, 4] } }, nodes: [{ op: 'Upsample', in: ['x'], out: ['y'], attrs: [A.s('mode', 'linear'), A.floats('scales', [1, 1, 2, 2])] }], ref: ({ x }) => [resizeRef(x, [1, 1, 6, 8], [1, 1, 2, 2], 'linear', 'asymmetric', '')] },
  // Split: attribute (opset 11), input (13), num_outputs (18), equal parts
  { name: 'Split attribute [2, 1] (opset 11)', opset: 11, inputs: { x: { shape: [2, 3, 4] } }, nodes: [{ op: 'Split', in: ['x'], out: ['a', 'b'], attrs: [A.i('axis', 1), A.ints('split', [2, 1])] }], outputs: ['a', 'b'], ref: ({ x }) => [sliceRef(x, 1, [0, 1]), sliceRef(x, 1, [2])] },
  { name: 'Split input [1, 3] (opset 13)', opset: 13, inputs: { x: { shape: [2, 3, 4] } }, nodes: [{ op: 'Split', in: ['x', 's'], out: ['a', 'b'], attrs: [A.i('axis', -1)] }], inits: [ints('s', [1, 3])], outputs: ['a', 'b'], ref: ({ x }) => [sliceRef(x, 2, [0]), sliceRef(x, 2, [1, 2, 3])] },
  { name: 'Split num_outputs 3 of 7 (opset 18)', opset: 18, inputs: { x: { shape: [7, 2] } }, nodes: [{ op: 'Split', in: ['x'], out: ['a', 'b', 'c'], attrs: [A.i('num_outputs', 3)] }], outputs: ['a', 'b', 'c'], ref: ({ x }) => [sliceRef(x, 0, [0, 1, 2]), sliceRef(x, 0, [3, 4, 5]), sliceRef(x, 0, [6])] },
  { name: 'Split into equal parts (opset 13)', opset: 13, inputs: { x: { shape: [2, 6] } }, nodes: [{ op: 'Split', in: ['x'], out: ['a', 'b'], attrs: [A.i('axis', 1)] }], outputs: ['a', 'b'], ref: ({ x }) => [sliceRef(x, 1, [0, 1, 2]), sliceRef(x, 1, [3, 4, 5])] },
  // Slice on activations, with steps
  { name: 'Slice steps 2 and -1 on activations', opset: 13, inputs: { x: { shape: [2, 5, 6] } }, nodes: [{ op: 'Slice', in: ['x', 'st', 'en', 'ax', 'sp'], out: ['y'] }], inits: [ints('st', [1, -1]), ints('en', [5, -100]), ints('ax', [1, 2]), ints('sp', [2, -2])], ref: ({ x }) => [sliceRef(sliceRef(x, 1, [1, 3]), 2, [5, 3, 1])] },
  // Expand, comparisons, Where, Not, variadic Min / Max / Sum / Mean
  { name: 'Expand [3, 1] to [2, 1, 4] (bidirectional)', opset: 13, inputs: { x: { shape: [3, 1] } }, nodes: [{ op: 'Expand', in: ['x', 's'], out: ['y'] }], inits: [ints('s', [2, 1, 4])], ref: ({ x }) => [Arr.make([2, 3, 4], ([, i]) => x.at([i, 0]))] },
  {
    name: 'Equal / Less / Greater / Not / Where on tensors',
    opset: 13,
    inputs: { x: { shape: [2, 3, 4] }, z: { shape: [3, 4] } },
    nodes: [
      { op: 'Less', in: ['x', 'z'], out: ['lt'] },
      { op: 'Greater', in: ['x', 'half'], out: ['gt'] },
      { op: 'Not', in: ['gt'], out: ['ng'] },
      { op: 'Where', in: ['lt', 'x', 'z'], out: ['w'] },
      { op: 'Equal', in: ['lt', 'ng'], out: ['eq'] },
    ],
    inits: [floats('half', [0.5], [])],
    outputs: ['w', 'eq'],
    ref: ({ x, z }) => {
      const zz = (i: number[]) => z.at(i.slice(1));
      return [Arr.make(x.shape, (i) => (x.at(i) < zz(i) ? x.at(i) : zz(i))), Arr.make(x.shape, (i) => Number((x.at(i) < zz(i)) === !(x.at(i) > 0.5)))];
    },
  },
  { name: 'Max / Min / Sum / Mean of three inputs', opset: 13, inputs: { a: { shape: [2, 3] }, b: { shape: [3] }, c: { shape: [2, 1] } }, nodes: [{ op: 'Max', in: ['a', 'b', 'c'], out: ['mx'] }, { op: 'Min', in: ['a', 'b', 'c'], out: ['mn'] }, { op: 'Sum', in: ['a', 'b', 'c'], out: ['s'] }, { op: 'Mean', in: ['a', 'b', 'c'], out: ['m'] }], outputs: ['mx', 'mn', 's', 'm'], ref: ({ a, b, c }) => {
    const f = (g: (xs: number[]) => number) => Arr.make([2, 3], ([i, j]) => g([a.at([i, j]), b.at([j]), c.at([i, 0])]));
    return [f((xs) => Math.max(...xs)), f((xs) => Math.min(...xs)), f(sumOf), f((xs) => sumOf(xs) / 3)];
  } },
  // the ViT's class token: Shape chains with ConstantOfShape / Equal / Where / Expand on host values,
  // Concat with the patch tokens, Gather of token 0 on activations
  {
    name: 'class token: Shape / Gather / Unsqueeze / Concat / ConstantOfShape / Equal / Where / Expand, Gather on activations',
    opset: 13,
    inputs: { x: { shape: [2, 3, 4] } },
    nodes: [
      { op: 'Shape', in: ['x'], out: ['sh'] },
      { op: 'Gather', in: ['sh', 'zero'], out: ['n'], attrs: [A.i('axis', 0)] },
      { op: 'Unsqueeze', in: ['n', 'ax0'], out: ['n1'] },
      { op: 'Concat', in: ['n1', 'm1', 'm1'], out: ['want'], attrs: [A.i('axis', 0)] },
      { op: 'ConstantOfShape', in: ['three'], out: ['ones'], attrs: [A.t('value', ints('v', [1], [1]))] },
      { op: 'Mul', in: ['ones', 'm1'], out: ['neg'] },
      { op: 'Equal', in: ['want', 'neg'], out: ['isneg'] },
      { op: 'Where', in: ['isneg', 'ones', 'want'], out: ['shape'] },
      { op: 'Expand', in: ['tok', 'shape'], out: ['toks'] },
      { op: 'Concat', in: ['toks', 'x'], out: ['seq'], attrs: [A.i('axis', 1)] },
      { op: 'Gather', in: ['seq', 'zero0'], out: ['cls'], attrs: [A.i('axis', 1)] },
      { op: 'Gather', in: ['seq', 'two'], out: ['tok2'], attrs: [A.i('axis', 1)] },
    ],
    inits: [ints('zero', [0], []), ints('ax0', [0]), ints('m1', [-1]), ints('three', [3]), floats('tok', [0.1, -0.2, 0.3, 0.4], [1, 1, 4]), ints('zero0', [0], []), ints('two', [2, 3], [2])],
    outputs: ['seq', 'cls', 'tok2'],
    ref: ({ x }) => {
      const tok = [0.1, -0.2, 0.3, 0.4].map(Math.fround);
      const seq = Arr.make([2, 4, 4], ([n, t, c]) => (t === 0 ? tok[c] : x.at([n, t - 1, c])));
      return [seq, Arr.make([2, 4], ([n, c]) => seq.at([n, 0, c])), sliceRef(seq, 1, [2, 3])];
    },
  },
  {
    name: 'Range / Cast on shape values; Transpose',
    opset: 13,
    inputs: { x: { shape: [2, 5, 3] } },
    nodes: [
      { op: 'Shape', in: ['x'], out: ['sh'] },
      { op: 'Gather', in: ['sh', 'one'], out: ['len'], attrs: [A.i('axis', 0)] },
      { op: 'Range', in: ['zero', 'len', 'two'], out: ['idx'] },
      { op: 'Cast', in: ['len'], out: ['lenf'], attrs: [A.i('to', 1)] },
      { op: 'Gather', in: ['x', 'idx'], out: ['g'], attrs: [A.i('axis', 1)] },
      { op: 'Div', in: ['g', 'lenf'], out: ['d'] },
      { op: 'Transpose', in: ['d'], out: ['y'], attrs: [A.ints('perm', [2, 0, 1])] },
    ],
    inits: [ints('one', [1], []), ints('zero', [0], []), ints('two', [2], [])],
    ref: ({ x }) => [Arr.make([3, 2, 3], ([c, n, k]) => x.at([n, 2 * k, c]) / 5)],
  },
];

// ---- running them ----

const cpu = await init({ backend: 'cpu', setDefault: false });
const gpu = await init({ backend: 'webgpu', setDefault: false });
afterAll(() => {
  gpu.destroy();
  cpu.destroy();
});

function inputsOf(c: Case, seed: number): Record<string, Arr> {
  const out: Record<string, Arr> = {};
  Object.entries(c.inputs).forEach(([name, s], k) => {
    const n = s.shape.reduce((a, b) => a * b, 1);
    out[name] = new Arr(s.shape, Float64Array.from(randArray(rng(seed + k), n, s.lo ?? -1, s.hi ?? 1)));
  });
  return out;
}

function build(c: Case) {
  const shapes = Object.fromEntries(Object.entries(c.inputs).map(([k, v]) => [k, v.shape]));
  return model(c.opset, shapes, c.nodes, c.inits ?? [], c.outputs ?? [c.nodes[c.nodes.length - 1].out[0]]);
}

describe.each([
  ['cpu', () => cpu, 1e-5],
  ['webgpu', () => gpu, 2e-5],
] as const)('ONNX ops on %s against loop references', (_, be, tol) => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_, c) => {
    const backend: Backend = be();
    const xs = inputsOf(c, 100);
    const expected = c.ref(xs);
    const before = memory(backend).liveBuffers;
    const on = <T>(fn: () => T) => withBackend(backend, fn);
    const m = on(() => loadOnnx(build(c), { source: c.name }));
    const ins = on(() => Object.values(xs).map((a) => tensor(a.data, a.shape)));
    const ys = on(() => m.run(ins));
    ins.forEach((t) => t.dispose());
    expect(ys.length).toBe(expected.length);
    for (let k = 0; k < ys.length; k++) {
      expect(ys[k].shape, `output ${k}`).toEqual(expected[k].shape);
      const got = await ys[k].data();
      ys[k].dispose();
      expectClose(got, expected[k].data, tol, tol, `${c.name}, output ${k}`);
    }
    m.dispose();
    expect(memory(backend).liveBuffers).toBe(before);
  });
});

describe('ONNX ops: input gradients against central differences (CPU, float64)', () => {
  it.each(CASES.filter((c) => !c.noGrad).map((c) => [c.name, c] as const))('%s', async (_, c) => {
    const xs = inputsOf(c, 200);
    const names = Object.keys(xs);
    // the CPU backend computes synchronously, so data() resolves at once; withBackend covers
    // only synchronous code, hence one wrapper per step
    const on = <T>(fn: () => T) => withBackend(cpu, fn);
    const m = on(() => loadOnnx(build(c), { source: c.name }));
    const value = async (args: Float64Array[], f: (ts: Tensor[]) => Tensor) => {
      const t = on(() => tidy(() => f(names.map((k, j) => tensor(args[j], xs[k].shape)))));
      const r = await t.data();
      t.dispose();
      return r;
    };
    const outs = on(() => m.run(names.map((k) => tensor(xs[k].data, xs[k].shape))));
    // a weighted sum of every output with fixed random weights
    const wts = outs.map((o, k) => Float64Array.from(randArray(rng(300 + k), o.size, -1, 1)));
    outs.forEach((o) => o.dispose());
    const loss = (args: Tensor[]) => m.run(args).map((y, k) => sum(mul(y, tensor(wts[k], y.shape)))).reduce((a, b) => add(a, b));
    const x0 = names.map((k) => xs[k].data);
    for (let i = 0; i < names.length; i++) {
      const got = await value(x0, (ts) => grad((xi: Tensor) => loss(ts.map((t, j) => (j === i ? xi : t))))(ts[i]));
      const h = 1e-6;
      const fd = new Float64Array(x0[i].length);
      for (let e = 0; e < fd.length; e++) {
        const shifted = (d: number) => x0.map((v, j) => (j === i ? v.map((u, q) => (q === e ? u + d : u)) : v));
        fd[e] = ((await value(shifted(h), loss))[0] - (await value(shifted(-h), loss))[0]) / (2 * h);
      }
      expectClose(got, fd, 1e-6, 1e-6, `${c.name}: d/d${names[i]}`);
    }
    m.dispose();
  }, 60_000);
});

describe('ONNX ops: what is not supported fails naming the node, the op and the attribute', () => {
  const x4 = { x: [1, 2, 4, 4] };
  const cases: [string, Uint8Array, RegExp][] = [
    ['Resize cubic', model(13, x4, [{ op: 'Resize', in: ['x', '', 'sc'], out: ['y'], attrs: [A.s('mode', 'cubic')] }], [floats('sc', [1, 1, 2, 2])], ['y']), /node 'n0_Resize' \(Resize, opset 13\): mode 'cubic' is not supported/],
    ['Resize tf_crop_and_resize', model(13, x4, [{ op: 'Resize', in: ['x', '', 'sc'], out: ['y'], attrs: [A.s('coordinate_transformation_mode', 'tf_crop_and_resize')] }], [floats('sc', [1, 1, 2, 2])], ['y']), /\(Resize, opset 13\): coordinate_transformation_mode 'tf_crop_and_resize' is not supported/],
    ['Pad wrap', model(19, x4, [{ op: 'Pad', in: ['x', 'p'], out: ['y'], attrs: [A.s('mode', 'wrap')] }], [ints('p', [0, 0, 1, 1, 0, 0, 1, 1])], ['y']), /node 'n0_Pad' \(Pad, opset 19\): mode 'wrap' is not supported/],
    ['LayerNormalization Mean output', model(17, x4, [{ op: 'LayerNormalization', in: ['x', 'g'], out: ['y', 'mean'] }], [floats('g', [1, 1, 1, 1])], ['y', 'mean']), /\(LayerNormalization, opset 17\): output 1 \('mean'\) is not supported/],
    ['Clip min above max', model(13, x4, [{ op: 'Clip', in: ['x', 'lo', 'hi'], out: ['y'] }], [floats('lo', [1], []), floats('hi', [0], [])], ['y']), /\(Clip, opset 13\): min 1 is greater than max 0/],
    ['Gelu approximate other', model(20, x4, [{ op: 'Gelu', in: ['x'], out: ['y'], attrs: [A.s('approximate', 'fast')] }], [], ['y']), /\(Gelu, opset 20\): approximate 'fast' is not one of none, tanh/],
    ['ConvTranspose 3-D kernel', model(13, x4, [{ op: 'ConvTranspose', in: ['x', 'w'], out: ['y'], attrs: [A.ints('kernel_shape', [1, 1, 1])] }], [floats('w', [1, 1], [2, 1, 1, 1])], ['y']), /\(ConvTranspose, opset 13\): only 2-D transposed convolutions are supported; kernel_shape is \[1, 1, 1\]/],
    ['ReduceMean axes attribute at opset 18', model(18, x4, [{ op: 'ReduceMean', in: ['x'], out: ['y'], attrs: [A.ints('axes', [1])] }], [], ['y']), /\(ReduceMean, opset 18\): the axes attribute was removed at opset 18/],
    ['Split sizes and outputs disagree', model(13, x4, [{ op: 'Split', in: ['x', 's'], out: ['a', 'b'], attrs: [A.i('axis', 1)] }], [ints('s', [1, 1, 0])], ['a', 'b']), /\(Split, opset 13\): split \[1, 1, 0\] has 3 parts but the node has 2 outputs/],
    ['Range on a runtime tensor', model(13, x4, [{ op: 'Range', in: ['x', 'x', 'x'], out: ['y'] }], [], ['y']), /\(Range, opset 13\): input 0 is a runtime tensor/],
    ['an op nobody supports', model(13, x4, [{ op: 'Einsum', in: ['x'], out: ['y'] }], [], ['y']), /unsupported ONNX op 'Einsum' in node 'n0_Einsum' \(opset 13\)/],
  ];
  it.each(cases)('%s', (_, bytes, re) => {
    const before = memory(cpu).liveBuffers;
    expect(() => withBackend(cpu, () => loadOnnx(bytes, { source: 'bad.onnx' }))).toThrow(re);
    expect(memory(cpu).liveBuffers).toBe(before);
  });

  it('a run-time size error names the node: reflect padding wider than the axis', () => {
    const m = withBackend(cpu, () => loadOnnx(model(13, { x: [1, 1, 2, 2] }, [{ op: 'Pad', in: ['x', 'p'], out: ['y'], attrs: [A.s('mode', 'reflect')] }], [ints('p', [0, 0, 2, 0, 0, 0, 0, 0])], ['y']), { source: 'bad.onnx' }));
    expect(() => withBackend(cpu, () => m.forward(tensor([1, 2, 3, 4], [1, 1, 2, 2])))).toThrow(/node 'n0_Pad' \(Pad\): .*reflect padding \[2, 0\] on axis 2 must be less than its size 2/);
    m.dispose();
  });
});

describe('ONNX ops: tensors made at run time follow the input backend', () => {
  // Loaded on the CPU backend, then run with no default backend in scope: index tensors (stepped
  // Slice, Resize, Gather), masks (ceil-mode AveragePool) and shape values used as tensors (Div by
  // a Cast of a Shape entry) must be made where the inputs live, or the run fails ('no backend').
  const names = ['Range / Cast on shape values; Transpose', 'Slice steps 2 and -1 on activations', 'Resize linear x2 (pytorch_half_pixel: F.interpolate bilinear)', 'Resize nearest x2 (asymmetric, floor: PyTorch)', 'AveragePool ceil_mode 1, count_include_pad 1, pads', 'class token: Shape / Gather / Unsqueeze / Concat / ConstantOfShape / Equal / Where / Expand, Gather on activations'];
  it.each(names)('%s', async (name) => {
    const c = CASES.find((k) => k.name === name)!;
    expect(c, name).toBeDefined();
    const xs = inputsOf(c, 100);
    const m = withBackend(cpu, () => loadOnnx(build(c), { source: c.name }));
    const ys = m.run(Object.values(xs).map((a) => tensor(a.data, a.shape, cpu)));
    const want = c.ref(xs);
    for (let k = 0; k < ys.length; k++) {
      expect(ys[k].backend).toBe(cpu);
      expectClose(await ys[k].data(), want[k].data, 1e-5, 1e-5, `${name}, output ${k}`);
      ys[k].dispose();
    }
    m.dispose();
  });
});

// Kernel rows bench/ops.ts does not have: large and skinny matmuls, conv2d forward /
// backprop-input / backprop-filter on ResNet-style layers (and explainer-sized ones at batch 1),
// and pooling. Peers in the same run: TF.js's WebGPU backend on the same adapter (its NHWC layout,
// inputs converted once, outside the timing) and plain JS loops where they finish in reasonable
// time. Every row is checked against the float64 CPU backend before timing (the large matmuls on
// their first rows, which the CPU backend can afford). A timed call runs the op once and waits for
// the GPU (backlight's sync, TF.js's queue) without a read-back.
//
//   npx tsx bench/kernels.ts [--full] [--groups matmul,conv,pool] [--budget S] [--reps N] [--no-tfjs] [--out DIR]
//
// --full adds matmul 2048^3 and 4096^3 and the ResNet layers at batch 8. Writes bench/results/kernels.json.
import * as bl from '../engine/index.ts';
import { Args } from './lib/args.ts';
import { mulberry32 } from './lib/rng.ts';
import { hwioToOihw, nchwToNhwc, nhwcToNchw, oihwToHwio } from './lib/smallcnn.ts';
import { finishStep, progress, maxRelErr, measure, openStep, rowsOf, type BenchRow, type Contender, type Measured } from './lib/suite.ts';
import { tfSync, type Tf } from './lib/tfjs.ts';

const args = new Args();
args.checkKnown(['full', 'groups', 'budget', 'reps', 'no-tfjs', 'out']);
const full = args.flag('full');
const groups = args.list('groups') ?? ['matmul', 'conv', 'pool'];
const budget = args.int('budget') ?? 8;
const maxReps = args.int('reps') ?? 5;

const s = await openStep('kernels', { tfjs: !args.flag('no-tfjs') });
const { backend, cpu, tf } = s;
const rand = mulberry32(11);
const host = (n: number, lo = -1, hi = 1) => Float32Array.from({ length: n }, () => lo + (hi - lo) * rand());
const size = (sh: readonly number[]) => sh.reduce((a, b) => a * b, 1);
type TfT = ReturnType<Tf['tensor']>;

interface Case {
  group: string;
  name: string;
  shape: string;
  flops?: number;
  bytes?: number;
  inputs: { shape: number[]; lo?: number; hi?: number }[];
  ours: (xs: bl.Tensor[]) => bl.Tensor;
  /** The reference: the same op on the CPU backend (default `ours` there), and which output values it covers. */
  ref?: (xs: bl.Tensor[]) => bl.Tensor;
  /** Take the first `refLen` output values (a check on part of a large output). */
  refLen?: number;
  checkedAt?: string;
  tf?: { layout: (xs: Float32Array[]) => { data: Float32Array; shape: number[] }[]; run: (t: Tf, xs: TfT[]) => TfT; back: (y: Float32Array) => Float32Array };
  js?: (xs: Float32Array[]) => Float32Array;
  /** Also time backlight with conv2d/matmul run eagerly (no epilogue fusion): 'backlight-before'. */
  before?: boolean;
}

const cases: Case[] = [];

// ---- matmul ----

function jsMatmul(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float32Array {
  // i-k-j order: the inner loop walks rows of b and c contiguously (what a JS user would write).
  const c = new Float32Array(m * n);
  for (let i = 0; i < m; i++)
    for (let p = 0; p < k; p++) {
      const av = a[i * k + p];
      if (av === 0) continue;
      const bo = p * n, co = i * n;
      for (let j = 0; j < n; j++) c[co + j] += av * b[bo + j];
    }
  return c;
}

function matmul(m: number, k: number, n: number, withJs: boolean, why = ''): Case {
  // The CPU backend checks at most 64 rows of A: the same kernel's output, affordable at 4096^3.
  const rm = Math.min(m, 64);
  return {
    group: 'matmul', name: `matmul${why ? ` (${why})` : ''}`, shape: `${m}x${k} @ ${k}x${n}`, flops: 2 * m * k * n,
    // GB/s only where the bytes are the limit (a matrix-vector product), not for compute-bound shapes.
    bytes: m <= 8 ? 4 * (m * k + k * n + m * n) : undefined,
    inputs: [{ shape: [m, k] }, { shape: [k, n] }],
    ours: ([a, b]) => bl.matmul(a, b),
    ref: rm < m ? ([a, b]) => bl.matmul(bl.slice(a, [0, 0], [rm, k]), b) : undefined,
    refLen: rm < m ? rm * n : undefined,
    checkedAt: rm < m ? `first ${rm} rows` : undefined,
    tf: { layout: ([a, b]) => [{ data: a, shape: [m, k] }, { data: b, shape: [k, n] }], run: (t, [a, b]) => t.matMul(a as never, b as never), back: (y) => y },
    js: withJs ? ([a, b]) => jsMatmul(a, b, m, k, n) : undefined,
  };
}

if (groups.includes('matmul')) {
  cases.push(matmul(1024, 1024, 1024, false));
  if (full) cases.push(matmul(2048, 2048, 2048, false), matmul(4096, 4096, 4096, false));
  cases.push(
    matmul(1, 4096, 4096, true, 'batch-1 linear'),
    matmul(8, 512, 1000, true, 'classifier head'),
    matmul(64, 4096, 64, true, 'long k'),
    matmul(2048, 64, 2048, false, 'short k'),
    matmul(65536, 16, 16, true, 'tall'),
  );
}

// ---- conv2d ----

const nchwT = (sh: number[]) => (x: Float32Array) => ({ data: nchwToNhwc(x, sh), shape: [sh[0], sh[2], sh[3], sh[1]] });
const oihwT = (sh: number[]) => (x: Float32Array) => ({ data: oihwToHwio(x, sh), shape: [sh[2], sh[3], sh[1], sh[0]] });

function convCases(label: string, n: number, c: number, h: number, w: number, o: number, k: number, stride: number, pad: number): Case[] {
  const oh = Math.floor((h + 2 * pad - k) / stride) + 1, ow = Math.floor((w + 2 * pad - k) / stride) + 1;
  const xs = [n, c, h, w], ws = [o, c, k, k], ys = [n, o, oh, ow];
  const flops = 2 * n * o * oh * ow * c * k * k;
  const shape = `${n}x${c}x${h}x${w} k${k}${stride > 1 ? ` s${stride}` : ''} -> ${o}`;
  const opts = { stride, padding: pad };
  // The float64 CPU backend is checked on a prefix of the output it can afford (about 0.1 GFLOP/s
  // on a loaded 2-core box): the first channels of item 0, computed from sliced operands, which is
  // exactly the start of the op's output buffer.
  const so = Math.min(8, o), sc = Math.min(8, c);
  const part = (what: string) => (n === 1 && so === o && sc === c ? undefined : what);
  const base = { group: 'conv', shape, flops };
  const tfAttrs = { strides: stride, pad, dataFormat: 'NHWC', dimRoundingMode: undefined };
  return [
    {
      ...base, name: `conv2d forward ${label}`,
      inputs: [{ shape: xs }, { shape: ws, lo: -0.3, hi: 0.3 }],
      ours: ([x, f]) => bl.conv2d(x, f, opts),
      ref: ([x, f]) => bl.conv2d(bl.slice(x, [0, 0, 0, 0], [1, c, h, w]), bl.slice(f, [0, 0, 0, 0], [so, c, k, k]), opts),
      refLen: so * oh * ow, checkedAt: part(`item 0, first ${so} output channels`),
      tf: { layout: ([x, f]) => [nchwT(xs)(x), oihwT(ws)(f)], run: (t, [x, f]) => t.conv2d(x as never, f as never, stride, pad), back: (y) => nhwcToNchw(y, ys) },
    },
    {
      ...base, name: `conv2d backprop-input ${label}`,
      inputs: [{ shape: ys }, { shape: ws, lo: -0.3, hi: 0.3 }],
      ours: ([dy, f]) => bl.conv2dBackpropInput(dy, f, xs, opts),
      ref: ([dy, f]) => bl.conv2dBackpropInput(bl.slice(dy, [0, 0, 0, 0], [1, o, oh, ow]), bl.slice(f, [0, 0, 0, 0], [o, sc, k, k]), [1, sc, h, w], opts),
      refLen: sc * h * w, checkedAt: part(`item 0, first ${sc} input channels`),
      tf: {
        layout: ([dy, f]) => [nchwT(ys)(dy), oihwT(ws)(f)],
        // The kernel tf.grad of conv2d runs (conv2dTranspose's shape checks reject some strided cases).
        run: (t, [dy, f]) => t.engine().runKernel('Conv2DBackpropInput', { dy: dy as never, filter: f as never }, { ...tfAttrs, inputShape: [n, h, w, c] } as never) as TfT,
        back: (y) => nhwcToNchw(y, xs),
      },
    },
    {
      ...base, name: `conv2d backprop-filter ${label}`,
      inputs: [{ shape: xs }, { shape: ys }],
      ours: ([x, dy]) => bl.conv2dBackpropFilter(x, dy, ws, opts),
      ref: ([x, dy]) => bl.conv2dBackpropFilter(x, bl.slice(dy, [0, 0, 0, 0], [n, so, oh, ow]), [so, c, k, k], opts),
      refLen: so * c * k * k, checkedAt: part(`first ${so} output channels`),
      tf: {
        layout: ([x, dy]) => [nchwT(xs)(x), nchwT(ys)(dy)],
        run: (t, [x, dy]) => t.engine().runKernel('Conv2DBackpropFilter', { x: x as never, dy: dy as never }, { ...tfAttrs, filterShape: [k, k, c, o] } as never) as TfT,
        back: (y) => hwioToOihw(y, ws),
      },
    },
  ];
}

/** conv2d + bias + ReLU, the layer pair of every CNN: with epilogue fusion one kernel (the bias
 * and ReLU applied as the conv writes), against TF.js's fused conv2d (bias and activation in its
 * kernel too) and backlight with the conv run eagerly (two kernels). */
function fusedConvCase(label: string, n: number, c: number, h: number, w: number, o: number): Case {
  const xs = [n, c, h, w], ws = [o, c, 3, 3], ys = [n, o, h, w];
  const so = Math.min(8, o);
  return {
    group: 'conv', name: `conv2d + bias + relu ${label}`, shape: `${n}x${c}x${h}x${w} k3 -> ${o}`, flops: 2 * n * o * h * w * c * 9, before: true,
    inputs: [{ shape: xs }, { shape: ws, lo: -0.3, hi: 0.3 }, { shape: [o] }],
    ours: ([x, f, b]) => bl.relu(bl.conv2d(x, f, { padding: 1, bias: b })),
    ref: ([x, f, b]) => bl.relu(bl.conv2d(bl.slice(x, [0, 0, 0, 0], [1, c, h, w]), bl.slice(f, [0, 0, 0, 0], [so, c, 3, 3]), { padding: 1, bias: bl.slice(b, [0], [so]) })),
    refLen: so * h * w, checkedAt: n === 1 && so === o ? undefined : `item 0, first ${so} output channels`,
    tf: {
      layout: ([x, f, b]) => [nchwT(xs)(x), oihwT(ws)(f), { data: b, shape: [o] }],
      run: (t, [x, f, b]) => t.fused.conv2d({ x: x as never, filter: f as never, strides: 1, pad: 'same', bias: b as never, activation: 'relu' }),
      back: (y) => nhwcToNchw(y, ys),
    },
  };
}

if (groups.includes('conv')) {
  cases.push(fusedConvCase('(explainer)', 1, 3, 32, 32, 32), fusedConvCase('(small CNN)', 64, 16, 32, 32, 32), fusedConvCase('(ResNet)', 1, 64, 56, 56, 64));
  // Explainer-sized at batch 1: latency (dispatch and launch) more than arithmetic.
  cases.push(...convCases('(explainer)', 1, 1, 28, 28, 8, 3, 1, 1), ...convCases('(explainer)', 1, 3, 32, 32, 32, 3, 1, 1));
  // ResNet-18's layers at 224x224 input.
  // The default run keeps two of them (the widest map, deep channels) to fit
  // its time on a 2-core software adapter; --full adds the rest and batch 8.
  for (const n of full ? [1, 8] : [1]) {
    if (full) cases.push(...convCases('(ResNet stem)', n, 3, 224, 224, 64, 7, 2, 3));
    cases.push(...convCases('(ResNet)', n, 64, 56, 56, 64, 3, 1, 1));
    if (full) cases.push(...convCases('(ResNet down)', n, 64, 56, 56, 128, 3, 2, 1), ...convCases('(ResNet)', n, 128, 28, 28, 128, 3, 1, 1));
    cases.push(...convCases('(ResNet)', n, 256, 14, 14, 256, 3, 1, 1));
    if (full) cases.push(...convCases('(ResNet)', n, 512, 7, 7, 512, 3, 1, 1));
  }
}

// ---- pooling (bandwidth-bound: GB/s, no FLOP count) ----

function jsMaxPool(x: Float32Array, [n, c, h, w]: number[], k: number, st: number, pad: number): Float32Array {
  const oh = Math.floor((h + 2 * pad - k) / st) + 1, ow = Math.floor((w + 2 * pad - k) / st) + 1;
  const y = new Float32Array(n * c * oh * ow);
  let o = 0;
  for (let p = 0; p < n * c; p++) {
    const xo = p * h * w;
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++) {
        let m = -Infinity;
        for (let a = 0; a < k; a++) {
          const yy = i * st - pad + a;
          if (yy < 0 || yy >= h) continue;
          for (let b = 0; b < k; b++) {
            const xx = j * st - pad + b;
            if (xx >= 0 && xx < w) m = Math.max(m, x[xo + yy * w + xx]);
          }
        }
        y[o++] = m;
      }
  }
  return y;
}

function poolCases(n: number, c: number, h: number, w: number, k: number, st: number, pad: number, label: string): Case[] {
  const xs = [n, c, h, w];
  const oh = Math.floor((h + 2 * pad - k) / st) + 1, ow = Math.floor((w + 2 * pad - k) / st) + 1;
  const ys = [n, c, oh, ow];
  const bytes = 4 * (size(xs) + size(ys));
  const shape = `${n}x${c}x${h}x${w} k${k} s${st}${pad ? ` p${pad}` : ''}`;
  const out: Case[] = [{
    group: 'pool', name: `maxPool2d ${label}`, shape, bytes,
    inputs: [{ shape: xs }],
    ours: ([x]) => bl.maxPool2d(x, { kernel: k, stride: st, padding: pad }),
    tf: { layout: ([x]) => [nchwT(xs)(x)], run: (t, [x]) => t.maxPool(x as never, k, st, pad), back: (y) => nhwcToNchw(y, ys) },
    js: ([x]) => jsMaxPool(x, xs, k, st, pad),
  }];
  if (pad === 0) {
    out.push({
      group: 'pool', name: `avgPool2d ${label}`, shape, bytes,
      inputs: [{ shape: xs }],
      ours: ([x]) => bl.avgPool2d(x, { kernel: k, stride: st }),
      tf: { layout: ([x]) => [nchwT(xs)(x)], run: (t, [x]) => t.avgPool(x as never, k, st, 0), back: (y) => nhwcToNchw(y, ys) },
    });
  }
  return out;
}

if (groups.includes('pool')) {
  cases.push(...poolCases(1, 64, 112, 112, 3, 2, 1, '(ResNet stem)'));
  if (full) cases.push(...poolCases(8, 64, 112, 112, 3, 2, 1, '(ResNet stem)'));
  cases.push(...poolCases(64, 32, 32, 32, 2, 2, 0, '(small CNN)'));
  const gs = [8, 512, 7, 7];
  cases.push({
    group: 'pool', name: 'globalAvgPool (ResNet head)', shape: gs.join('x'), bytes: 4 * (size(gs) + 8 * 512),
    inputs: [{ shape: gs }],
    ours: ([x]) => bl.globalAvgPool(x),
    tf: { layout: ([x]) => [nchwT(gs)(x)], run: (t, [x]) => t.mean(x as never, [1, 2]), back: (y) => y },
  });
}

// ---- run ----

const rows: BenchRow[] = [];
for (const c of cases) {
  const data = c.inputs.map((i) => host(size(i.shape), i.lo, i.hi));
  const m: Measured = { group: c.group, name: c.name, shape: c.shape, adapter: s.adapter, flops: c.flops, bytes: c.bytes, peers: {}, peerChecked: {}, checkedAt: c.checkedAt };
  const xs = data.map((d, i) => bl.tensor(d, c.inputs[i].shape));
  const tfx = tf && c.tf ? c.tf.layout(data).map((l) => tf.tensor(l.data, l.shape)) : undefined;
  const tc = performance.now();
  try {
    // The reference first, then every engine's output against it.
    const cx = data.map((d, i) => bl.tensor(d, c.inputs[i].shape, cpu));
    const ry = bl.withBackend(cpu, () => bl.tidy(() => (c.ref ?? c.ours)(cx)));
    const ref = await ry.data();
    ry.dispose();
    cx.forEach((t) => t.dispose());
    const part = (a: ArrayLike<number>) => (c.refLen ? Array.prototype.slice.call(a, 0, c.refLen) : a);
    const y = bl.tidy(() => c.ours(xs));
    m.checked = maxRelErr(part(await y.data()), ref);
    y.dispose();
    const checkMs = performance.now() - tc;
    if (checkMs > 5000) console.log(`  (the CPU reference of ${c.name} ${c.shape} took ${(checkMs / 1000).toFixed(1)} s)`);
    const cs: Contender[] = [{ engine: 'ours', run: async () => { const r = bl.tidy(() => c.ours(xs)); await backend.sync(); r.dispose(); } }];
    if (tfx && c.tf) {
      const ty = tf!.tidy(() => c.tf!.run(tf!, tfx));
      m.peerChecked!['tfjs-webgpu'] = maxRelErr(part(c.tf.back(Float32Array.from(await ty.data()))), ref);
      ty.dispose();
      cs.push({ engine: 'tfjs-webgpu', run: async () => { const r = tf!.tidy(() => c.tf!.run(tf!, tfx)); await tfSync(tf!); r.dispose(); } });
    } else if (c.tf) m.peers['tfjs-webgpu'] = s.peerReason ?? 'TF.js unavailable';
    if (c.before) {
      const be = backend as unknown as { epilogues: boolean };
      cs.push({ engine: 'backlight-before', run: async () => {
        be.epilogues = false;
        try { const r = bl.tidy(() => c.ours(xs)); await backend.sync(); r.dispose(); } finally { be.epilogues = true; }
      } });
    }
    if (c.js) {
      m.peerChecked!.js = maxRelErr(part(c.js(data)), ref);
      cs.push({ engine: 'js', run: async () => void c.js!(data) });
    }
    const t = await measure(cs, { budget, reps: maxReps });
    m.ours = t.get('ours');
    for (const [k, v] of t) if (k !== 'ours') m.peers[k] = v;
  } catch (e) {
    m.error = (e as Error).message.split('\n')[0];
  }
  xs.forEach((t) => t.dispose());
  tfx?.forEach((t) => t.dispose());
  const r = rowsOf(m);
  rows.push(...r);
  progress(s, rows, args.string('out'));
  console.log(`  ${c.name} ${c.shape}: ours ${r[0].ours_ms?.toFixed(2) ?? '-'} ms, ${r.map((q) => `${q.peer ?? '-'} ${q.peer_ms?.toFixed(2) ?? '-'} ms`).join(', ')}; checked ${m.checked?.toExponential(1) ?? '-'}${m.error ? `; ERROR ${m.error}` : ''}`);
}

finishStep(s, rows, { options: { full, groups, budget, maxReps } }, args.string('out'));
// Dawn's instance can keep Node's event loop alive; the work is done.
process.exit(0);

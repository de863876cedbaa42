// Single operations, side by side with TensorFlow.js's WebGPU backend on the same Dawn adapter:
// matmul, conv2d forward / backprop-input / backprop-filter (small-channel explainer layers and a
// mid-size one), and elementwise chains (what IG's interpolation, SHAP's masking and a backward
// pass's ReLU mask are made of). "before" is backlight as it was before fused elementwise chains,
// the stride-1 backprop-input-as-conv path and the per-shape conv and matmul register blocks
// (fusion off, backpropInputViaConv false, convBlock and matmulBlock 4x4), on the same adapter,
// for the rows those change.
//
//   npx tsx bench/ops.ts [--rows matmul,conv,convBackpropInput,convBackpropFilter,chain]
//       [--reps N] [--warmup N] [--inner N] [--engines backlight,backlight-before,tfjs]
//       [--no-check] [--readback] [--seed S] [--out DIR]
//
// Every row is checked first: both engines' outputs against the float64 CPU backend (max |diff|
// relative to the largest |value|, 1e-3). Then `warmup` untimed reps, `reps` timed ones, engines
// interleaved rep by rep in a rotating order (so a load spike on the shared machine hits all of
// them, and no engine always goes first); a rep runs
// the op `inner` times, submits and waits for the GPU (with --readback: also reads the last
// result back, which on a CPU adapter can cost as much as the op), and the table shows the
// median per op. Writes bench/results/ops.json (or DIR/ops.json).
import { availableParallelism, loadavg } from 'node:os';
import * as bl from '../engine/index.ts';
import type { WebGpuBackend } from '../engine/webgpu/backend.ts';
import { Args } from './lib/args.ts';
import { fmt, median, table, writeResults } from './lib/report.ts';
import { mulberry32 } from './lib/rng.ts';
import { nchwToNhwc, nhwcToNchw, oihwToHwio, hwioToOihw } from './lib/smallcnn.ts';
import { setupTfjs, type Tf } from './lib/tfjs.ts';

const NAME = 'ops';
const TOL = 1e-3;
type Engine = 'backlight' | 'backlight-before' | 'tfjs';
type RowKind = 'matmul' | 'conv' | 'convBackpropInput' | 'convBackpropFilter' | 'chain';

const args = new Args();
args.checkKnown(['rows', 'reps', 'warmup', 'inner', 'engines', 'no-check', 'readback', 'seed', 'out']);
const kinds = (args.list('rows') ?? ['matmul', 'conv', 'convBackpropInput', 'convBackpropFilter', 'chain']) as RowKind[];
const engines = (args.list('engines') ?? ['backlight', 'backlight-before', 'tfjs']) as Engine[];
const reps = args.int('reps') ?? 5;
const warmup = args.int('warmup') ?? 2;
const inner = Math.max(1, args.int('inner') ?? 3);
const seed = args.int('seed') ?? 7;
const check = !args.flag('no-check');
const readback = args.flag('readback');
const log = (s = '') => console.log(s);
const load = () => loadavg().map((v) => v.toFixed(2)).join(' ');
const loadBefore = load();

// ---- engines ----

const fused = (await bl.init({ setDefault: false })) as WebGpuBackend;
const before = engines.includes('backlight-before') ? ((await bl.init({ setDefault: false, fusion: false })) as WebGpuBackend) : undefined;
if (before) {
  before.backpropInputViaConv = false;
  before.convBlock = [4, 4];
  before.matmulBlock = [4, 4];
}
const cpu = await bl.init({ backend: 'cpu', setDefault: false });
const info = fused.info;
log(`${NAME}: single ops, Node ${process.version}, ${availableParallelism()} cores`);
log(`backlight adapter: ${info.adapter} (${info.vendor} / ${info.architecture} / ${info.description})`);
const peer = engines.includes('tfjs') ? await setupTfjs('webgpu') : undefined;
const tf: Tf | undefined = peer?.backend === 'webgpu' ? peer.tf : undefined;
if (peer) {
  if (tf) log(`TF.js ${peer.version} WebGPU adapter: ${peer.adapter?.adapter} (${peer.adapter?.description})${peer.adapter?.description === info.description ? '  [same adapter]' : '  [DIFFERENT adapter]'}`);
  else log(`TF.js: no WebGPU (${peer.fallbackReason}); TF.js rows left out`);
}

// ---- rows ----

type Host = Float32Array;
interface Row {
  kind: RowKind;
  name: string;
  /** Floating-point work per op (2 per multiply-add; 1 per elementwise step), for GFLOP/s. */
  flops: number;
  /** Bytes an ideal kernel moves (inputs read once, output written once), for GB/s. */
  bytes: number;
  inputs: { shape: number[]; lo: number; hi: number }[];
  /** backlight, on NCHW / OIHW host inputs. */
  bl: (xs: bl.Tensor[]) => bl.Tensor;
  /** TF.js: its layout of the inputs, the op, and its output back in backlight's layout. */
  tf?: {
    layout: (xs: Host[]) => { data: Host; shape: number[] }[];
    run: (tf: Tf, xs: unknown[]) => unknown;
    back: (y: Host) => Host;
  };
}

const nchw = (s: number[]) => (x: Host) => ({ data: nchwToNhwc(x, s), shape: [s[0], s[2], s[3], s[1]] });
const oihw = (s: number[]) => (x: Host) => ({ data: oihwToHwio(x, s), shape: [s[2], s[3], s[1], s[0]] });
const same = (s: number[]) => (x: Host) => ({ data: x, shape: s });

function matmulRow(m: number, k: number, n: number): Row {
  return {
    kind: 'matmul', name: `matmul ${m}x${k} @ ${k}x${n}`, flops: 2 * m * k * n, bytes: 4 * (m * k + k * n + m * n),
    inputs: [{ shape: [m, k], lo: -1, hi: 1 }, { shape: [k, n], lo: -1, hi: 1 }],
    bl: ([a, b]) => bl.matmul(a, b),
    tf: { layout: ([a, b]) => [same([m, k])(a), same([k, n])(b)], run: (tf, [a, b]) => tf.matMul(a as never, b as never), back: (y) => y },
  };
}

/** conv2d 3x3, stride 1, padding 1 ('same'), on x [n, c, h, w] with o output channels. */
function convRows(n: number, c: number, h: number, w: number, o: number): Row[] {
  const xs = [n, c, h, w], ws = [o, c, 3, 3], ys = [n, o, h, w];
  const macs = n * o * h * w * c * 9;
  const tag = `${n}x${c}x${h}x${w} k3 -> ${o}`;
  const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
  const conv: Row = {
    kind: 'conv', name: `conv2d ${tag}`, flops: 2 * macs, bytes: 4 * (size(xs) + size(ws) + size(ys)),
    inputs: [{ shape: xs, lo: -1, hi: 1 }, { shape: ws, lo: -0.5, hi: 0.5 }],
    bl: ([x, k]) => bl.conv2d(x, k, { padding: 1 }),
    tf: { layout: ([x, k]) => [nchw(xs)(x), oihw(ws)(k)], run: (tf, [x, k]) => tf.conv2d(x as never, k as never, 1, 'same'), back: (y) => nhwcToNchw(y, ys) },
  };
  const bpi: Row = {
    kind: 'convBackpropInput', name: `conv2d backprop-input ${tag}`, flops: 2 * macs, bytes: conv.bytes,
    inputs: [{ shape: ys, lo: -1, hi: 1 }, { shape: ws, lo: -0.5, hi: 0.5 }],
    bl: ([dy, k]) => bl.conv2dBackpropInput(dy, k, xs, { padding: 1 }),
    tf: {
      layout: ([dy, k]) => [nchw(ys)(dy), oihw(ws)(k)],
      run: (tf, [dy, k]) => tf.conv2dTranspose(dy as never, k as never, [n, h, w, c], 1, 'same'),
      back: (y) => nhwcToNchw(y, xs),
    },
  };
  const bpf: Row = {
    kind: 'convBackpropFilter', name: `conv2d backprop-filter ${tag}`, flops: 2 * macs, bytes: conv.bytes,
    inputs: [{ shape: xs, lo: -1, hi: 1 }, { shape: ys, lo: -1, hi: 1 }],
    bl: ([x, dy]) => bl.conv2dBackpropFilter(x, dy, ws, { padding: 1 }),
    tf: {
      layout: ([x, dy]) => [nchw(xs)(x), nchw(ys)(dy)],
      // TF.js has no public op for it; its kernel is what tf.grad of conv2d runs.
      run: (tf, [x, dy]) =>
        tf.engine().runKernel('Conv2DBackpropFilter', { x: x as never, dy: dy as never }, { strides: 1, pad: 'same', dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape: [3, 3, c, o] } as never),
      back: (y) => hwioToOihw(y, ws),
    },
  };
  return [conv, bpi, bpf];
}

/** Elementwise chains over [n, c, h, w]: bias + ReLU, and IG's interpolation step of a path
 * (baseline + alpha * (x - baseline)) times a ReLU-masked cotangent. */
function chainRows(n: number, c: number, h: number, w: number): Row[] {
  const s = [n, c, h, w], b = [1, c, 1, 1];
  const e = n * c * h * w;
  const biasRelu: Row = {
    kind: 'chain', name: `bias + relu [${s}] + [${b}] (2 ops)`, flops: 2 * e, bytes: 4 * (2 * e + c),
    inputs: [{ shape: s, lo: -1, hi: 1 }, { shape: b, lo: -1, hi: 1 }],
    bl: ([x, bias]) => bl.relu(bl.add(x, bias)),
    tf: { layout: ([x, bias]) => [nchw(s)(x), { data: bias, shape: [c] }], run: (tf, [x, bias]) => tf.relu(tf.add(x as never, bias as never)), back: (y) => nhwcToNchw(y, s) },
  };
  const ig: Row = {
    kind: 'chain', name: `(base + 0.3 (x - base)) * step(z) * g [${s}] (6 ops)`, flops: 6 * e, bytes: 4 * 5 * e,
    inputs: [{ shape: s, lo: -1, hi: 1 }, { shape: s, lo: -1, hi: 1 }, { shape: s, lo: -1, hi: 1 }, { shape: s, lo: -1, hi: 1 }],
    bl: ([x, base, z, g]) => bl.mul(bl.mul(bl.add(base, bl.mul(bl.sub(x, base), 0.3)), bl.step(z)), g),
    tf: {
      layout: (xs) => xs.map((x) => nchw(s)(x)),
      run: (tf, [x, base, z, g]) =>
        tf.mul(tf.mul(tf.add(base as never, tf.mul(tf.sub(x as never, base as never), 0.3)), tf.step(z as never)), g as never),
      back: (y) => nhwcToNchw(y, s),
    },
  };
  return [biasRelu, ig];
}

const allRows: Row[] = [
  matmulRow(256, 256, 256),
  matmulRow(512, 512, 512),
  matmulRow(1024, 64, 1024),
  ...convRows(1024, 1, 12, 12, 8), // the explainer CNN's first layer at batch 1024
  ...convRows(1024, 8, 12, 12, 16),
  ...convRows(8, 16, 32, 32, 32),
  ...chainRows(1024, 8, 12, 12),
  ...chainRows(64, 32, 32, 32),
];
const rows = allRows.filter((r) => kinds.includes(r.kind));

// ---- running ----

const rand = mulberry32(seed);
function hostData(shape: number[], lo: number, hi: number): Host {
  const n = shape.reduce((a, b) => a * b, 1);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * rand();
  return a;
}

function maxRelDiff(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  let scale = 0, d = 0;
  for (let i = 0; i < ref.length; i++) scale = Math.max(scale, Math.abs(ref[i]));
  for (let i = 0; i < ref.length; i++) d = Math.max(d, Math.abs(a[i] - ref[i]));
  return ref.length !== a.length ? Infinity : d / Math.max(scale, 1e-30);
}

interface Contender {
  engine: Engine;
  /** One timed rep: the op `inner` times, the last result read back. */
  rep: () => Promise<void>;
  output: () => Promise<Host>;
  dispose: () => void;
}

function blContender(engine: Engine, b: WebGpuBackend, row: Row, host: Host[]): Contender {
  const xs = host.map((h, i) => bl.tensor(h, row.inputs[i].shape, b));
  return {
    engine,
    rep: async () => {
      const ys: bl.Tensor[] = [];
      for (let k = 0; k < inner; k++) ys.push(bl.withBackend(b, () => bl.tidy(() => row.bl(xs))));
      // sync() submits every result (pending fused chains included) and waits for the GPU.
      if (readback) await ys[ys.length - 1].data();
      await b.sync();
      ys.forEach((y) => y.dispose());
    },
    output: async () => {
      const y = bl.withBackend(b, () => bl.tidy(() => row.bl(xs)));
      const d = Float32Array.from(await y.data());
      y.dispose();
      return d;
    },
    dispose: () => xs.forEach((x) => x.dispose()),
  };
}

/** Submit TF.js's recorded work and wait for the GPU, without a read-back (its WebGPU backend's
 * own methods: TF.js has no public "sync"). */
async function tfSync(t: Tf): Promise<void> {
  const be = t.backend() as unknown as {
    ensureCommandEncoderReady(): void; endComputePassEncoder(): void; submitQueue(): void; device: GPUDevice;
  };
  be.ensureCommandEncoderReady();
  be.endComputePassEncoder();
  be.submitQueue();
  await be.device.queue.onSubmittedWorkDone();
}

function tfContender(row: Row, host: Host[]): Contender {
  const t = tf!;
  const xs = row.tf!.layout(host).map((l) => t.tensor(l.data, l.shape));
  type T = { data: () => Promise<Float32Array>; dispose: () => void };
  return {
    engine: 'tfjs',
    rep: async () => {
      const ys: T[] = [];
      for (let k = 0; k < inner; k++) ys.push(t.tidy(() => row.tf!.run(t, xs) as never) as T);
      if (readback) await ys[ys.length - 1].data();
      await tfSync(t);
      ys.forEach((y) => y.dispose());
    },
    output: async () => {
      const y = t.tidy(() => row.tf!.run(t, xs) as never) as T;
      const d = row.tf!.back(Float32Array.from(await y.data()));
      y.dispose();
      return d;
    },
    dispose: () => xs.forEach((x) => x.dispose()),
  };
}

interface Result {
  row: string;
  kind: RowKind;
  engine: Engine;
  msPerOp: number;
  msAll: number[];
  gflops: number;
  gbps: number;
  maxRelDiffVsCpu?: number;
}
const results: Result[] = [];
const failures: string[] = [];

for (const row of rows) {
  const host = row.inputs.map((s) => hostData(s.shape, s.lo, s.hi));
  const cs: Contender[] = [];
  for (const e of engines) {
    if (e === 'backlight') cs.push(blContender(e, fused, row, host));
    else if (e === 'backlight-before' && row.kind !== 'convBackpropFilter' && before) cs.push(blContender(e, before, row, host));
    else if (e === 'tfjs' && tf && row.tf) cs.push(tfContender(row, host));
  }
  const diffs = new Map<Engine, number>();
  if (check) {
    const xs = host.map((h, i) => bl.tensor(h, row.inputs[i].shape, cpu));
    const y = bl.withBackend(cpu, () => bl.tidy(() => row.bl(xs)));
    const ref = await y.data();
    y.dispose();
    xs.forEach((x) => x.dispose());
    for (const c of cs) {
      const d = maxRelDiff(await c.output(), ref);
      diffs.set(c.engine, d);
      if (!(d <= TOL)) failures.push(`${row.name}: ${c.engine} differs from the CPU backend by ${d.toExponential(2)} (relative to the largest |value|)`);
    }
  }
  for (let i = 0; i < warmup; i++) for (const c of cs) await c.rep();
  const ms = new Map<Engine, number[]>(cs.map((c) => [c.engine, []]));
  for (let i = 0; i < reps; i++) {
    // The engine order rotates rep by rep: on a CPU adapter whichever runs first after a pause
    // (or right after another engine's long rep) pays for waking the driver's threads, which
    // measured up to 1.7x on a 30-90 ms op; a fixed order billed that to one engine every time.
    for (const c of [...cs.slice(i % cs.length), ...cs.slice(0, i % cs.length)]) {
      const t0 = performance.now();
      await c.rep();
      ms.get(c.engine)!.push((performance.now() - t0) / inner);
    }
  }
  for (const c of cs) {
    const m = median(ms.get(c.engine)!);
    results.push({ row: row.name, kind: row.kind, engine: c.engine, msPerOp: m, msAll: ms.get(c.engine)!, gflops: row.flops / m / 1e6, gbps: row.bytes / m / 1e6, maxRelDiffVsCpu: diffs.get(c.engine) });
    c.dispose();
  }
  const got = (e: Engine) => results.find((r) => r.row === row.name && r.engine === e);
  const b0 = got('backlight'), t0 = got('tfjs'), u0 = got('backlight-before');
  log(`${row.name}: backlight ${fmt(b0?.msPerOp)} ms${u0 ? `, before ${fmt(u0.msPerOp)} ms` : ''}${t0 ? `, tfjs ${fmt(t0.msPerOp)} ms` : ''}`);
}

// ---- report ----

const header = ['op', 'backlight ms', 'GFLOP/s', 'GB/s', 'before ms', 'tfjs ms', 'tfjs GFLOP/s', 'vs tfjs'];
const body = rows.map((row) => {
  const got = (e: Engine) => results.find((r) => r.row === row.name && r.engine === e);
  const b0 = got('backlight'), t0 = got('tfjs'), u0 = got('backlight-before');
  return [row.name, fmt(b0?.msPerOp), fmt(b0?.gflops), fmt(b0?.gbps), fmt(u0?.msPerOp), fmt(t0?.msPerOp), fmt(t0?.gflops),
    b0 && t0 ? `${fmt(t0.msPerOp / b0.msPerOp)}x` : '-'];
});
log('');
log(`adapter: ${info.adapter} (${info.description}); medians of ${reps} reps x ${inner} ops after ${warmup} warm-up reps, ${readback ? 'with' : 'without'} read-back; load ${loadBefore} -> ${load()}`);
log(table(header, body));
log('"vs tfjs": TF.js time / backlight time (above 1: backlight is faster). "before": backlight without fused chains,');
log('backprop-input-as-conv and the per-shape conv/matmul blocks (the rows they change), same adapter. GFLOP/s counts 2 per multiply-add, 1 per elementwise step.');
const path = writeResults(NAME, {
  bench: NAME, date: new Date().toISOString(), node: process.version, cores: availableParallelism(), load: { before: loadBefore, after: load() },
  adapter: info, tfjs: peer ? { version: peer.version, backend: peer.backend, adapter: peer.adapter, fallbackReason: peer.fallbackReason } : null,
  reps, warmup, inner, readback, tolerance: TOL, results, failures,
}, args.string('out'));
log(`wrote ${path}`);
if (failures.length) {
  console.error(`\nresults that disagree with the CPU backend:\n  ${failures.join('\n  ')}`);
  process.exitCode = 1;
}
fused.destroy();
before?.destroy();

// Dispatch overhead: what the host pays per kernel, and what it adds to a small model's latency.
//   recording  host CPU time per dispatch: K tiny ops issued back to back without waiting for the
//              GPU (the clock stops before the queue is awaited), divided by K. An unfused
//              elementwise op (a second backend with `fusion: false`), a fused chain of four
//              elementwise ops (one kernel), a small conv and a small matmul; the same ops on
//              TF.js's WebGPU backend on the same adapter (the chain there is four kernels). The
//              runtime's own submits when its uniform arena fills up are part of recording.
//   latency    the end-to-end latency of a batch-1 forward of the bundled digits-cnn, logits read
//              back, against TF.js (the same network rebuilt, bench/lib/explain-tfjs.ts) and
//              onnxruntime-node's CPU provider (bench/lib/onnx-export.ts).
// Every op and the forward are checked against the float64 CPU backend before timing.
//
//   npx tsx bench/overhead.ts [--k 1000] [--reps 7] [--budget S] [--no-tfjs] [--no-ort] [--weights DIR] [--out DIR]
//
// Writes bench/results/overhead.json. `ours_ms` / `peer_ms` of a recording row are milliseconds
// per call (x 1000: microseconds); the JSON's `dispatches_per_call` says how many kernels a call
// is on backlight (counted by the runtime).
import * as bl from '../engine/index.ts';
import type { WebGpuBackend } from '../engine/webgpu/backend.ts';
import { Args } from './lib/args.ts';
import { median } from './lib/report.ts';
import { loadModel, testImages, weightsDir } from './lib/explain-models.ts';
import { tfModelFrom } from './lib/explain-tfjs.ts';
import { exportOnnx } from './lib/onnx-export.ts';
import { loadOrt } from './lib/ort.ts';
import { finishStep, maxRelErr, measure, openStep, progress, rowsOf, type BenchRow, type Measured } from './lib/suite.ts';
import { tfSync, type Tf } from './lib/tfjs.ts';

const args = new Args();
args.checkKnown(['k', 'reps', 'budget', 'no-tfjs', 'no-ort', 'weights', 'out']);
const K = args.int('k') ?? 1000;
const REPS = args.int('reps') ?? 7;
const budget = args.int('budget') ?? 8;
const out = args.string('out');

const s = await openStep('overhead', { tfjs: !args.flag('no-tfjs') });
const { cpu, tf } = s;
const fused = s.backend as WebGpuBackend;
if (!('rt' in fused)) throw new Error('overhead: needs the WebGPU backend (got the CPU one)');
const unfused = (await bl.init({ backend: 'webgpu', fusion: false, setDefault: false })) as WebGpuBackend;
type TfT = ReturnType<Tf['tensor']>;
// TF.js's WebGPU backend runs ops on tensors under 1000 elements whose data is still on the host
// with its CPU kernels (WEBGPU_CPU_FORWARD): the one-element round trip would then never reach the
// GPU. Off here, so every TF.js row measures GPU dispatches.
if (tf) tf.env().set('WEBGPU_CPU_FORWARD', false);

// ---- the ops ----

interface OpCase {
  name: string;
  shape: string;
  backend: WebGpuBackend;
  /** Host inputs. */
  inputs: { data: Float32Array; shape: number[] }[];
  ours: (xs: bl.Tensor[]) => bl.Tensor;
  /** The computation on the CPU reference, where `ours` does more than compute (default: ours). */
  ref?: (xs: bl.Tensor[]) => bl.Tensor;
  /** The same computation in TF.js (NHWC where it matters; checked in backlight's layout). */
  peer?: (t: Tf, xs: TfT[]) => TfT;
  /** TF.js inputs from the host inputs (layout conversion), and its output back to backlight's layout. */
  tfInputs?: (t: Tf) => TfT[];
  fromTf?: (d: Float32Array) => Float32Array;
}

let seed = 7;
const rand = (n: number, lo = -1, hi = 1) => {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    a[i] = lo + ((seed / 2 ** 32) * (hi - lo));
  }
  return a;
};

const E = 1024; // elements of the elementwise rows
const ew = rand(E);
const conv = { x: rand(1 * 4 * 8 * 8), w: rand(8 * 4 * 3 * 3) };
const mm = { a: rand(16 * 16), b: rand(16 * 16) };
const nchwToNhwc = (d: Float32Array, [n, c, h, w]: number[]) => {
  const o = new Float32Array(d.length);
  for (let i = 0; i < n; i++) for (let ch = 0; ch < c; ch++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) o[((i * h + y) * w + x) * c + ch] = d[((i * c + ch) * h + y) * w + x];
  return o;
};
const nhwcToNchw = (d: Float32Array, [n, c, h, w]: number[]) => {
  const o = new Float32Array(d.length);
  for (let i = 0; i < n; i++) for (let ch = 0; ch < c; ch++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) o[((i * c + ch) * h + y) * w + x] = d[((i * h + y) * w + x) * c + ch];
  return o;
};
const oihwToHwio = (d: Float32Array, [o, i, h, w]: number[]) => {
  const r = new Float32Array(d.length);
  for (let a = 0; a < o; a++) for (let b = 0; b < i; b++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) r[((y * w + x) * i + b) * o + a] = d[((a * i + b) * h + y) * w + x];
  return r;
};

const chain = (x: bl.Tensor) => bl.mul(bl.relu(bl.add(bl.mul(x, 1.5), 0.25)), 2);
/** `y` with its kernel issued now, as a consumer would make it: a conv, a matmul or a chain is
 * recorded lazily and, unread and disposed, would never run (0 dispatches timed). */
const issued = (y: bl.Tensor): bl.Tensor => {
  fused.realise(y.storageFor('overhead') as never);
  return y;
};
const cases: OpCase[] = [
  {
    name: 'host time per dispatch: elementwise mul (fusion off)', shape: `${E}`, backend: unfused,
    inputs: [{ data: ew, shape: [E] }],
    ours: ([x]) => bl.mul(x, 1.5),
    peer: (t, [x]) => t.mul(x, 1.5),
    tfInputs: (t) => [t.tensor1d(ew)],
  },
  {
    name: 'host time per dispatch: fused chain (mul add relu mul: 1 kernel; TF.js 4)', shape: `${E}`, backend: fused,
    inputs: [{ data: ew, shape: [E] }],
    // realised at once (what a consumer triggers), so each call is one kernel issued now
    ours: ([x]) => issued(bl.tidy(() => chain(x))),
    ref: ([x]) => chain(x),
    peer: (t, [x]) => t.tidy(() => t.mul(t.relu(t.add(t.mul(x, 1.5), 0.25)), 2)),
    tfInputs: (t) => [t.tensor1d(ew)],
  },
  {
    name: 'host time per dispatch: conv2d 3x3', shape: '1x4x8x8 -> 8', backend: fused,
    inputs: [{ data: conv.x, shape: [1, 4, 8, 8] }, { data: conv.w, shape: [8, 4, 3, 3] }],
    ours: ([x, w]) => issued(bl.conv2d(x, w, { padding: 1 })),
    peer: (t, [x, w]) => t.conv2d(x as never, w as never, 1, 'same'),
    tfInputs: (t) => [t.tensor4d(nchwToNhwc(conv.x, [1, 4, 8, 8]), [1, 8, 8, 4]), t.tensor4d(oihwToHwio(conv.w, [8, 4, 3, 3]), [3, 3, 4, 8])],
    fromTf: (d) => nhwcToNchw(d, [1, 8, 8, 8]),
  },
  {
    name: 'host time per dispatch: matmul', shape: '16x16 @ 16x16', backend: fused,
    inputs: [{ data: mm.a, shape: [16, 16] }, { data: mm.b, shape: [16, 16] }],
    ours: ([a, b]) => issued(bl.matmul(a, b)),
    peer: (t, [a, b]) => t.matMul(a as never, b as never),
    tfInputs: (t) => [t.tensor2d(mm.a, [16, 16]), t.tensor2d(mm.b, [16, 16])],
  },
];

/** Issue k calls back to back; return host ms per call (the GPU is awaited after the clock stops). */
type Issue = (k: number) => number;

const rows: BenchRow[] = [];
const perCall: Record<string, { dispatchesPerCall: number; submitsPer1000: number }> = {};

for (const c of cases) {
  const m: Measured = { group: 'overhead', name: c.name, shape: c.shape, adapter: s.adapter, peers: {} };
  try {
    const xs = c.inputs.map((i) => bl.tensor(i.data, i.shape, c.backend));
    const cx = c.inputs.map((i) => bl.tensor(i.data, i.shape, cpu));
    // check: the chain's realise is a WebGPU step; on the CPU the same ops
    const ref = Float64Array.from(await bl.withBackend(cpu, async () => {
      const r = bl.tidy(() => (c.ref ?? c.ours)(cx));
      const d = await r.data();
      r.dispose();
      return d;
    }));
    const got = await bl.withBackend(c.backend, async () => {
      const r = c.ours(xs);
      const d = Float32Array.from(await r.data());
      r.dispose();
      return d;
    });
    m.checked = maxRelErr(got, ref);
    let tx: TfT[] = [];
    if (tf && c.peer) {
      tx = c.tfInputs!(tf);
      const r = c.peer(tf, tx);
      const d = Float32Array.from((await r.data()) as Float32Array);
      r.dispose();
      m.peerChecked = { 'tfjs-webgpu': maxRelErr(c.fromTf ? c.fromTf(d) : d, ref) };
    }
    const rt = c.backend.rt;
    const issueOurs: Issue = (k) => bl.withBackend(c.backend, () => {
      const t0 = performance.now();
      for (let i = 0; i < k; i++) c.ours(xs).dispose();
      return (performance.now() - t0) / k;
    });
    const issueTf: Issue | undefined = tf && c.peer ? (k) => {
      const t0 = performance.now();
      for (let i = 0; i < k; i++) tf.dispose(c.peer!(tf, tx));
      return (performance.now() - t0) / k;
    } : undefined;
    // warm-up (pipelines, pools), then interleaved reps (A B, B A, ...)
    issueOurs(Math.min(K, 50));
    await c.backend.sync();
    if (issueTf) {
      issueTf(Math.min(K, 50));
      await tfSync(tf!);
    }
    const d0 = rt.dispatchCount, s0 = rt.submitCount;
    const ours: number[] = [], peer: number[] = [];
    for (let r = 0; r < REPS; r++) {
      const order: [Issue, number[], () => Promise<void>][] = [[issueOurs, ours, () => c.backend.sync()]];
      if (issueTf) order.push([issueTf, peer, () => tfSync(tf!)]);
      if (r % 2) order.reverse();
      for (const [issue, into, wait] of order) {
        into.push(issue(K));
        await wait();
      }
    }
    perCall[c.name] = { dispatchesPerCall: (rt.dispatchCount - d0) / (REPS * K), submitsPer1000: ((rt.submitCount - s0) / (REPS * K)) * 1000 };
    m.ours = ours;
    if (issueTf) m.peers['tfjs-webgpu'] = peer;
    else m.peers['tfjs-webgpu'] = s.peerReason ?? 'TF.js unavailable';
    const pc = perCall[c.name];
    m.note = `${K} calls per rep issued without waiting; ${pc.dispatchesPerCall.toFixed(2)} dispatches per call on backlight, ${pc.submitsPer1000.toFixed(1)} submits per 1000 calls (uniform arena of 512 slots)`;
    xs.forEach((t) => t.dispose());
    cx.forEach((t) => t.dispose());
    if (tf) tf.dispose(tx);
  } catch (e) {
    m.error = (e as Error).message.split('\n')[0];
  }
  const r = rowsOf(m);
  rows.push(...r);
  progress(s, rows, out);
  console.log(`  ${c.name}: ours ${((r[0].ours_ms ?? NaN) * 1000).toFixed(1)} us, tfjs ${((r[0].peer_ms ?? NaN) * 1000).toFixed(1)} us per call`);
}

// ---- one read-back round trip: a one-element op, submitted and mapped ----

{
  const m: Measured = { group: 'overhead', name: 'read-back round trip (one-element op, then data())', shape: '1', adapter: s.adapter, peers: {} };
  try {
    const xg = bl.tensor([3], [1], fused);
    const oursRun = async () => {
      const y = bl.withBackend(fused, () => bl.mul(xg, 2));
      const d = await y.data();
      y.dispose();
      return Float32Array.from(d);
    };
    m.checked = maxRelErr(await oursRun(), [6]);
    const cs = [{ engine: 'ours', run: async () => void (await oursRun()) }];
    let tx: TfT | undefined;
    if (tf) {
      tx = tf.tensor1d([3]);
      const tfRun = async () => {
        const y = tf.mul(tx!, 2);
        const d = Float32Array.from((await y.data()) as Float32Array);
        y.dispose();
        return d;
      };
      m.peerChecked = { 'tfjs-webgpu': maxRelErr(await tfRun(), [6]) };
      cs.push({ engine: 'tfjs-webgpu', run: async () => void (await tfRun()) });
    } else m.peers['tfjs-webgpu'] = s.peerReason ?? 'TF.js unavailable';
    const t = await measure(cs, { warmup: 3, reps: 50, minReps: 5, budget: budget / 2 });
    m.ours = t.get('ours');
    for (const [k, v] of t) if (k !== 'ours') m.peers[k] = v;
    xg.dispose();
    if (tx) tf!.dispose(tx);
  } catch (e) {
    m.error = (e as Error).message.split('\n')[0];
  }
  const r = rowsOf(m);
  rows.push(...r);
  progress(s, rows, out);
  console.log(`  read-back round trip: ours ${r[0].ours_ms?.toFixed(2)} ms, tfjs ${r[0].peer_ms?.toFixed(2) ?? '-'} ms`);
}

// ---- digits-cnn batch-1 forward, end to end ----

{
  const wdir = weightsDir(args.string('weights'));
  const lm = bl.withBackend(fused, () => loadModel('digits-cnn', wdir));
  const cm = bl.withBackend(cpu, () => loadModel('digits-cnn', wdir).model);
  const im = testImages(lm.spec, 1);
  const m: Measured = { group: 'overhead', name: 'digits-cnn forward, batch 1 (logits read back)', shape: `1x${lm.spec.inputShape.join('x')}`, adapter: s.adapter, items: 1, peers: {} };
  const shape = [1, ...lm.spec.inputShape];
  try {
    const ref = Float64Array.from(await bl.withBackend(cpu, async () => {
      const x = bl.tensor(im.x, shape);
      const y = bl.tidy(() => cm.call(x));
      const d = await y.data();
      x.dispose();
      y.dispose();
      return d;
    }));
    const xg = bl.tensor(im.x, shape, fused);
    const recordMs: number[] = [];
    const oursRun = async () => {
      const t0 = performance.now();
      const y = bl.withBackend(fused, () => bl.tidy(() => lm.model.call(xg)));
      const p = y.data(); // records the copy and submits
      recordMs.push(performance.now() - t0);
      const d = await p;
      y.dispose();
      return Float32Array.from(d);
    };
    m.checked = maxRelErr(await oursRun(), ref);
    const cs = [{ engine: 'ours', run: async () => void (await oursRun()) }];
    const host = new Map<string, Float32Array>();
    for (const [k, t] of lm.model.stateDict()) host.set(k, Float32Array.from(await t.data()));
    const [, c, h, w] = shape;
    let tfx: TfT | undefined, tfm: ReturnType<typeof tfModelFrom> | undefined;
    if (tf) {
      tfm = tfModelFrom(tf, lm.model, host, 'features');
      tfx = tf.tensor4d(nchwToNhwc(im.x, shape), [1, h, w, c]);
      const tfRun = async () => {
        const y = tf.tidy(() => tfm!.forward(tfx!));
        const d = Float32Array.from((await y.data()) as Float32Array);
        y.dispose();
        return d;
      };
      m.peerChecked = { 'tfjs-webgpu': maxRelErr(await tfRun(), ref) };
      cs.push({ engine: 'tfjs-webgpu', run: async () => void (await tfRun()) });
    } else m.peers['tfjs-webgpu'] = s.peerReason ?? 'TF.js unavailable';
    const ort = args.flag('no-ort') ? 'not run (--no-ort)' : await loadOrt();
    if (typeof ort === 'string') m.peers['ort-cpu'] = ort;
    else {
      const classes = lm.spec.classes?.length ?? 10;
      const session = await ort.InferenceSession.create(exportOnnx(lm.model, host, lm.spec.inputShape, classes), { executionProviders: ['cpu'] });
      const ortRun = async () => {
        const r = await session.run({ input: new ort.Tensor('float32', im.x, shape) });
        return r[session.outputNames[0]].data as Float32Array;
      };
      m.peerChecked = { ...m.peerChecked, 'ort-cpu': maxRelErr(await ortRun(), ref) };
      cs.push({ engine: 'ort-cpu', run: async () => void (await ortRun()) });
    }
    const t = await measure(cs, { warmup: 3, reps: 50, minReps: 5, budget });
    m.ours = t.get('ours');
    for (const [k, v] of t) if (k !== 'ours') m.peers[k] = v;
    const rt = fused.rt;
    const d0 = rt.dispatchCount, s0 = rt.submitCount, r0 = rt.readbackCount;
    await oursRun();
    m.note = `per forward on backlight: ${rt.dispatchCount - d0} dispatches, ${rt.submitCount - s0} submit, ${rt.readbackCount - r0} read-back; host time to record and submit it ${median(recordMs).toFixed(2)} ms (median), the rest is the GPU and the read-back`;
    xg.dispose();
    if (tfm) tf!.dispose([...tfm.weights, tfx!]);
  } catch (e) {
    m.error = (e as Error).message.split('\n')[0];
  }
  const r = rowsOf(m);
  rows.push(...r);
  console.log(`  digits-cnn forward: ours ${r[0].ours_ms?.toFixed(2)} ms; ${r.map((q) => `${q.peer} ${q.peer_ms?.toFixed(2) ?? '-'} ms`).join(', ')}`);
}

finishStep(s, rows, { options: { K, REPS, budget }, perCall, medians_us: Object.fromEntries(rows.map((r) => [`${r.name} vs ${r.peer}`, { ours: (r.ours_ms ?? NaN) * 1000, peer: (r.peer_ms ?? NaN) * 1000 }])) }, out);
unfused.destroy();
process.exit(0);

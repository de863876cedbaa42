// One training step (forward + backward of softmax cross-entropy w.r.t. every weight) and one
// saliency step (gradient of the batch's summed logit 0 w.r.t. the input) of a small CNN, at
// batch 1, 64 and 1024, on backlight and on TensorFlow.js's WebGPU backend on the same adapter.
//
//   npx tsx bench/cnn-step.ts [--batches 1,64,1024] [--reps N] [--warmup N] [--full]
//       [--steps train,saliency] [--engines backlight,tfjs] [--peer webgpu|cpu]
//       [--check-batch N] [--no-check] [--no-f64] [--seed S] [--out DIR]
//
// Defaults: on a software adapter (SwiftShader, lavapipe) batches 1 and 64 with few reps, batch
// 1024 only with --full; on a hardware adapter 1, 64 and 1024. Writes bench/results/cnn-step.json
// (or DIR/cnn-step.json). Packable for a lent GPU machine: ../shared/device/pack.sh bench/cnn-step.ts
import { availableParallelism, loadavg } from 'node:os';
import * as bl from '../engine/index.ts';
import { Args } from './lib/args.ts';
import { fmt, median, table, timeReps, writeResults } from './lib/report.ts';
import {
  PARAMS, blLoss, blScore, flopsPerImage, hwioToOihw, initParams, makeBatch, nchwToNhwc, nhwcToNchw, tfLoss, tfParams, tfScore,
  IMAGE, CLASSES, type Batch,
} from './lib/smallcnn.ts';
import { setupTfjs, type Tf, type TfjsPeer } from './lib/tfjs.ts';

const NAME = 'cnn-step';
type TfTensor4D = ReturnType<Tf['tensor4d']>;
const TOL = 1e-3;
type Step = 'train' | 'saliency';
type Engine = 'backlight' | 'tfjs';

const args = new Args();
args.checkKnown(['batches', 'reps', 'warmup', 'full', 'steps', 'engines', 'peer', 'check-batch', 'no-check', 'no-f64', 'seed', 'out']);
const full = args.flag('full');
const seed = args.int('seed') ?? 1234;
const steps = (args.list('steps') ?? ['train', 'saliency']) as Step[];
const engines = (args.list('engines') ?? ['backlight', 'tfjs']) as Engine[];
for (const s of steps) if (s !== 'train' && s !== 'saliency') throw new Error(`--steps: unknown step '${s}' (train, saliency)`);
for (const e of engines) if (e !== 'backlight' && e !== 'tfjs') throw new Error(`--engines: unknown engine '${e}' (backlight, tfjs)`);
const peerPref = args.string('peer') ?? 'webgpu';
if (peerPref !== 'webgpu' && peerPref !== 'cpu') throw new Error(`--peer must be webgpu or cpu, got '${peerPref}'`);

const t00 = performance.now();
const log = (s = '') => console.log(s);
const load = () => loadavg().map((v) => v.toFixed(2)).join(' ');
const loadBefore = load();

// ---- engines and adapters ----

const backend = await bl.init();
const info = backend.info;
log(`${NAME}: small CNN (3x32x32 -> conv32 conv32 pool conv64 conv64 pool gap fc10), Node ${process.version}`);
log(`backlight adapter: ${info.vendor} / ${info.architecture} / ${info.device} / ${info.description}${info.software ? ' (software)' : ''}`);

let peer: TfjsPeer | undefined;
if (engines.includes('tfjs')) {
  peer = await setupTfjs(peerPref);
  if (peer.backend === 'webgpu') {
    const a = peer.adapter!;
    const same = a.vendor === info.vendor && a.architecture === info.architecture && a.device === info.device && a.description === info.description;
    log(`TF.js ${peer.version} adapter:  ${a.vendor} / ${a.architecture} / ${a.device} / ${a.description} (TF.js reports ${JSON.stringify(peer.tfjsAdapterInfo)})` +
      (same ? '  [same adapter as backlight]' : '  [DIFFERENT adapter from backlight]'));
  } else {
    log(`TF.js ${peer.version}: using tfjs-core's 'cpu' backend as the peer${peer.fallbackReason ? ` because ${peer.fallbackReason}` : ' (--peer cpu)'}`);
  }
}
const tf: Tf | undefined = peer?.tf;
const peerLabel = peer?.label ?? 'tfjs';

// ---- the same weights on both engines ----

const hostParams = initParams(seed);
const blParams = hostParams.map((a, i) => bl.tensor(a, PARAMS[i].shape));
const tfVars = tf ? tfParams(tf, hostParams) : [];

// ---- helpers per engine ----

interface Grads {
  loss: number;
  grads: Float32Array[]; // backlight layout
  score: number;
  saliency: Float32Array; // NCHW
}

async function blGradients(b: bl.Backend, batch: Batch): Promise<Grads> {
  const ps = b === backend ? blParams : hostParams.map((a, i) => bl.tensor(a, PARAMS[i].shape, b));
  const x = bl.tensor(batch.x, [batch.n, ...IMAGE], b);
  const oh = bl.tensor(batch.oneHot, [batch.n, CLASSES], b);
  const r = bl.tidy(() => {
    const [loss, grads] = bl.valueAndGrad((...ws: bl.Tensor[]) => blLoss(x, oh, ws))(...ps);
    const [score, [sal]] = bl.valueAndGrad((xx: bl.Tensor) => blScore(xx, ps))(x);
    return { loss, grads, score, sal };
  });
  const f32 = async (t: bl.Tensor) => Float32Array.from(await t.data());
  const out = {
    loss: (await r.loss.data())[0],
    grads: await Promise.all(r.grads.map(f32)),
    score: (await r.score.data())[0],
    saliency: await f32(r.sal),
  };
  for (const t of [r.loss, r.score, r.sal, ...r.grads, x, oh]) t.dispose();
  if (ps !== blParams) ps.forEach((t) => t.dispose());
  return out;
}

async function tfGradients(batch: Batch): Promise<Grads> {
  const T = tf!;
  const nchw = [batch.n, ...IMAGE];
  const x = T.tensor4d(nchwToNhwc(batch.x, nchw), [batch.n, IMAGE[1], IMAGE[2], IMAGE[0]]);
  const oh = T.tensor2d(batch.oneHot, [batch.n, CLASSES]);
  const r = T.tidy(() => {
    const { value, grads } = T.variableGrads(() => tfLoss(T, x, oh, tfVars), tfVars);
    const s = T.valueAndGrad((xx: typeof x) => tfScore(T, xx, tfVars))(x);
    return { value, grads: PARAMS.map((p) => grads[p.name]), score: s.value, sal: s.grad };
  });
  const grads = await Promise.all(
    r.grads.map(async (g, i) => {
      const d = (await g.data()) as Float32Array;
      return PARAMS[i].shape.length === 4 ? hwioToOihw(d, PARAMS[i].shape) : Float32Array.from(d);
    }),
  );
  const out = {
    loss: (await r.value.data())[0],
    grads,
    score: (await r.score.data())[0],
    saliency: nhwcToNchw((await r.sal.data()) as Float32Array, nchw),
  };
  T.dispose([r.value, r.score, r.sal, ...r.grads, x, oh]);
  return out;
}

/** max |a - ref| / max |ref| (the error relative to the tensor's scale). */
function relErr(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < ref.length; i++) {
    num = Math.max(num, Math.abs(a[i] - ref[i]));
    den = Math.max(den, Math.abs(ref[i]));
  }
  return den === 0 ? num : num / den;
}

// ---- correctness, once, before timing ----

interface CheckRow { quantity: string; blVsTf?: number; blVsF64?: number; tfVsF64?: number; ok: boolean }
let check: { batch: number; tolerance: number; rows: CheckRow[]; samples: Record<string, Record<string, number[]>>; pass: boolean; seconds: number } | undefined;

if (!args.flag('no-check') && engines.includes('backlight') && tf) {
  const n = args.int('check-batch') ?? 4;
  const t0 = performance.now();
  const batch = makeBatch(n, seed + 1);
  const g: Record<string, Grads> = { backlight: await blGradients(backend, batch), [peerLabel]: await tfGradients(batch) };
  if (!args.flag('no-f64')) {
    const cpu = await bl.init({ backend: 'cpu', setDefault: false });
    g['backlight-cpu-f64'] = await blGradients(cpu, batch);
    cpu.destroy();
  }
  const ref = g['backlight-cpu-f64'];
  const qty: [string, (r: Grads) => ArrayLike<number>][] = [
    ['loss', (r) => [r.loss]],
    ...PARAMS.map((p, i) => [`d loss / d ${p.name}`, (r: Grads) => r.grads[i]] as [string, (r: Grads) => ArrayLike<number>]),
    ['logit-0 sum (saliency value)', (r) => [r.score]],
    ['d logit-0 sum / d input', (r) => r.saliency],
  ];
  const rows: CheckRow[] = qty.map(([name, get]) => {
    const a = get(g.backlight), b = get(g[peerLabel]);
    const row: CheckRow = { quantity: name, blVsTf: relErr(a, b), ok: true };
    if (ref) {
      row.blVsF64 = relErr(a, get(ref));
      row.tfVsF64 = relErr(b, get(ref));
    }
    row.ok = [row.blVsTf, row.blVsF64, row.tfVsF64].every((e) => e === undefined || e <= TOL);
    return row;
  });
  const pick = (r: Grads) => ({
    loss: [r.loss],
    'conv1.weight grad [0..3]': Array.from(r.grads[0].slice(0, 3)),
    'conv4.bias grad [0..3]': Array.from(r.grads[7].slice(0, 3)),
    'fc.bias grad [0..3]': Array.from(r.grads[9].slice(0, 3)),
    'saliency [0..3]': Array.from(r.saliency.slice(0, 3)),
  });
  const samples = Object.fromEntries(Object.entries(g).map(([k, r]) => [k, pick(r)]));
  const pass = rows.every((r) => r.ok);
  check = { batch: n, tolerance: TOL, rows, samples, pass, seconds: (performance.now() - t0) / 1000 };
  log(`\ncorrectness at batch ${n} (same weights and inputs; error = max|a-b| / max|b| over the tensor; tolerance ${TOL}):`);
  log(table(
    ['quantity', 'ok', `backlight vs ${peerLabel}`, ...(ref ? ['backlight vs f64', `${peerLabel} vs f64`] : [])],
    rows.map((r) => [r.quantity, r.ok ? 'ok' : 'MISMATCH', r.blVsTf!.toExponential(2), ...(ref ? [r.blVsF64!.toExponential(2), r.tfVsF64!.toExponential(2)] : [])]),
  ));
  log('sample values:');
  const keys = Object.keys(samples[peerLabel]);
  log(table(['value', 'engine', 'numbers'], keys.flatMap((k) => Object.entries(samples).map(([e, s]) => [k, e, (s as Record<string, number[]>)[k].map((v) => v.toPrecision(7)).join(', ')]))));
  log(pass ? `check passed (${check.seconds.toFixed(1)} s)` : `CHECK FAILED: see MISMATCH rows above (${check.seconds.toFixed(1)} s)`);
}

// ---- timing ----

const software = info.software;
const batches = args.ints('batches') ?? (software && !full ? [1, 64] : [1, 64, 1024]);
const repsFor = (n: number) => args.int('reps') ?? (software ? (n <= 8 ? 5 : n <= 64 ? 3 : 1) : 20);
const warmup = args.int('warmup') ?? (software ? 1 : 3);
log(`\nload average ${load()} on ${availableParallelism()} cores (other processes' work slows a software adapter down)`);
log(`timing: batches ${batches.join(', ')}; warmup ${warmup}; reps ${batches.map(repsFor).join(', ')}; engines' reps interleaved (A B, B A, ...); ` +
  'each rep ends by reading the step\'s scalar back (both engines submit in order, so the read waits for the whole step); median of reps');

interface Row {
  step: Step; batch: number; engine: string; reps: number; warmup: number;
  msMedian: number; msMin: number; msAll: number[]; imagesPerSec: number; gflops: number;
  memoryBefore: Record<string, number>; memoryAfter: Record<string, number>;
}
const rows: Row[] = [];

const blMem = () => ({ ...backend.memory() }) as unknown as Record<string, number>;
const tfMem = () => {
  const m = tf!.memory() as unknown as Record<string, unknown>;
  return { numTensors: m.numTensors as number, numBytes: m.numBytes as number, ...(typeof m.numBytesInGPU === 'number' ? { numBytesInGPU: m.numBytesInGPU } : {}) };
};

interface Contender { engine: string; run: () => Promise<void>; mem: () => Record<string, number> }

/**
 * Time the engines on one (step, batch) with their reps interleaved, in ABBA order (A B, B A,
 * A B, ...), so that load from other processes drifting over time falls on both alike.
 */
async function measure(step: Step, batch: number, cs: Contender[]) {
  const reps = repsFor(batch);
  const before = cs.map((c) => c.mem());
  for (let i = 0; i < warmup; i++) for (const c of cs) await c.run();
  const ms: number[][] = cs.map(() => []);
  for (let i = 0; i < reps; i++) {
    const order = cs.map((_, k) => k);
    if (i % 2 === 1) order.reverse();
    for (const k of order) ms[k].push((await timeReps(cs[k].run, 0, 1))[0]);
  }
  cs.forEach((c, k) => {
    const m = median(ms[k]);
    rows.push({
      step, batch, engine: c.engine, reps, warmup, msMedian: m, msMin: Math.min(...ms[k]), msAll: ms[k],
      imagesPerSec: batch / (m / 1000), gflops: (flopsPerImage(step) * batch) / (m / 1000) / 1e9, memoryBefore: before[k], memoryAfter: c.mem(),
    });
    log(`  ${step.padEnd(8)} batch ${String(batch).padStart(4)}  ${c.engine.padEnd(11)} ${fmt(m)} ms/step (reps ${ms[k].map((v) => fmt(v)).join(' ')})`);
  });
}

for (const n of batches) {
  const batch = makeBatch(n, seed + 2);
  const nchw = [n, ...IMAGE];
  const bx = bl.tensor(batch.x, nchw);
  const boh = bl.tensor(batch.oneHot, [n, CLASSES]);
  const tx = tf?.tensor4d(nchwToNhwc(batch.x, nchw), [n, IMAGE[1], IMAGE[2], IMAGE[0]]);
  const toh = tf?.tensor2d(batch.oneHot, [n, CLASSES]);
  for (const step of steps) {
    const cs: Contender[] = engines.map((engine) => {
      if (engine === 'backlight') {
        const f = step === 'train'
          ? () => bl.valueAndGrad((...ws: bl.Tensor[]) => blLoss(bx, boh, ws))(...blParams)[0]
          : () => bl.valueAndGrad((xx: bl.Tensor) => blScore(xx, blParams))(bx)[0];
        const run = async () => {
          const v = bl.tidy(f);
          await v.data();
          v.dispose();
        };
        return { engine: 'backlight', run, mem: blMem };
      }
      const T = tf!;
      const f = step === 'train'
        ? () => T.variableGrads(() => tfLoss(T, tx!, toh!, tfVars), tfVars).value
        : () => T.valueAndGrad((xx: TfTensor4D) => tfScore(T, xx, tfVars))(tx!).value;
      const run = async () => {
        const v = T.tidy(f);
        await v.data();
        v.dispose();
      };
      return { engine: peerLabel, run, mem: tfMem };
    });
    await measure(step, n, cs);
  }
  bx.dispose();
  boh.dispose();
  tx?.dispose();
  toh?.dispose();
}

// ---- report ----

const get = (s: Step, n: number, e: string) => rows.find((r) => r.step === s && r.batch === n && r.engine === e);
const tableRows: string[][] = [];
for (const s of steps) {
  for (const n of batches) {
    const a = get(s, n, 'backlight'), b = get(s, n, peerLabel);
    tableRows.push([
      s, String(n),
      fmt(a?.msMedian), fmt(a?.imagesPerSec), fmt(a?.gflops),
      fmt(b?.msMedian), fmt(b?.imagesPerSec), fmt(b?.gflops),
      a && b ? `${fmt(b.msMedian / a.msMedian)}x` : '-',
    ]);
  }
}
const adapterLine = `${info.vendor} / ${info.architecture} / ${info.device}${info.software ? ' (software)' : ''}`;
log(`\n${NAME} on ${adapterLine}; median ms per step; GFLOP/s counts conv+linear multiply-adds x2`);
log(table(
  ['step', 'batch', 'backlight ms', 'img/s', 'GFLOP/s', `${peerLabel} ms`, 'img/s', 'GFLOP/s', `${peerLabel}/backlight`],
  tableRows,
));

log('\nmemory before warm-up / after the last rep (backlight: live GPU buffers; TF.js: live tensors):');
log(table(
  ['step', 'batch', 'engine', 'before', 'after', 'flat'],
  rows.map((r) => {
    const k = r.engine === 'backlight' ? 'liveBuffers' : 'numTensors';
    return [r.step, String(r.batch), r.engine, String(r.memoryBefore[k]), String(r.memoryAfter[k]), r.memoryBefore[k] === r.memoryAfter[k] ? 'yes' : 'NO'];
  }),
));

const loadAfter = load();
log(`\nload average (1, 5, 15 min): ${loadBefore} at the start, ${loadAfter} at the end`);

const path = writeResults(NAME, {
  name: NAME,
  date: new Date().toISOString(),
  node: process.version,
  cores: availableParallelism(),
  loadAverage: { start: loadBefore, end: loadAfter },
  model: 'conv(3,32,3,p1) relu conv(32,32,3,p1) relu maxpool2 conv(32,64,3,p1) relu conv(64,64,3,p1) relu maxpool2 gap linear(64,10); input 3x32x32',
  steps: {
    train: 'forward + backward of mean softmax cross-entropy w.r.t. all weights and biases',
    saliency: 'gradient of sum over the batch of logit 0 w.r.t. the input batch',
  },
  timing: 'wall clock per step including a read-back of the step\'s scalar; engines\' reps interleaved A B, B A, ...; median of reps after warm-up',
  flopsPerImage: { train: flopsPerImage('train'), saliency: flopsPerImage('saliency') },
  adapter: { backlight: info, tfjs: peer ? { backend: peer.backend, adapter: peer.adapter, tfjsAdapterInfo: peer.tfjsAdapterInfo, fallbackReason: peer.fallbackReason, version: peer.version } : undefined },
  options: { batches, warmup, reps: Object.fromEntries(batches.map((n) => [n, repsFor(n)])), full, seed, steps, engines },
  check,
  rows,
  totalSeconds: (performance.now() - t00) / 1000,
}, args.string('out'));
log(`\nwrote ${path} (${((performance.now() - t00) / 1000).toFixed(0)} s in all)`);

// Dawn's instance can keep Node's event loop alive; the work is done.
process.exit(check && !check.pass ? 1 : 0);

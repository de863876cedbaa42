// KernelSHAP throughput: model evaluations per second (perturbed inputs through the model, scored
// and reduced) on the bundled digits-cnn, shapes-cnn and breast-cancer-mlp, at several chunk sizes
// (rows per model call), side by side in one run with:
//   backlight      explain/kernelShap: perturbed batches built on the device, one submit per
//                  chunk, scores reduced on the device, one read-back per call;
//   tfjs           TensorFlow.js's WebGPU backend on the same adapter, the same coalitions built
//                  into the same perturbed batches on its device (gather of the coalition rows by
//                  the feature mask, a blend with the reference), its forward, the target score,
//                  and one matrix product per chunk reducing the scores, one read-back per call;
//   ort            an onnxruntime-node CPU session of the same model and weights (written to ONNX
//                  by bench/lib/onnx-export.ts), the same coalitions blended on the host in chunks;
//   backlight+ort  backlight's kernelShap with that session as a black-box model (blackBox()):
//                  the batches are built on backlight's device and read back for the session.
// Before timing, the engines' scores for the first coalitions are compared with backlight's
// float64 CPU backend (and the exported ONNX file is read back by backlight's own loader). After
// timing, memory: backlight's peak live GPU buffers/bytes at 10x the samples, same chunk size.
//
//   npx tsx bench/kernel-shap.ts [--models digits-cnn,shapes-cnn,breast-cancer-mlp] [--batches 64,512]
//       [--samples N] [--reps N] [--engines backlight,tfjs,ort,backlight+ort] [--full] [--weights DIR] [--out DIR]
//
// Defaults: software adapter (SwiftShader, lavapipe) 512 samples (coalitions) per explanation,
// chunks of 64 and 512 rows, 1 rep; --full or a hardware adapter: 2M + 2048 samples (SHAP's
// default), chunks 64, 256, 1024, 4096, 3 reps. Features: digits 2x2 cells (16), shapes 4x4 cells
// (64), breast cancer its 30 columns with 8 background rows from the training split (so 8
// evaluations per coalition), images against a zero baseline. Writes bench/results/kernel-shap.json.
import { availableParallelism } from 'node:os';
import type * as OrtTypes from 'onnxruntime-node';
import * as bl from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import * as ex from '../explain/index.ts';
import { coalitionPerturbations, type FeatureGroups } from '../explain/perturbation/maskers.ts';
import { kernelShapCoalitions } from '../explain/perturbation/kernel-shap.ts';
import { loadOnnx } from '../models/io/onnx.ts';
import { datasetSplits } from '../models/data/index.ts';
import type { Module } from '../models/module.ts';
import { Sequential } from '../models/containers.ts';
import { Dropout, Linear, ReLU } from '../models/layers.ts';
import { Standardize } from '../models/zoo/index.ts';
import { Args } from './lib/args.ts';
import { fmt, median, table, writeResults } from './lib/report.ts';
import { setupTfjs, type Tf, type TfjsPeer } from './lib/tfjs.ts';
import { loadModel, testImages, weightsDir, type LoadedModel } from './lib/explain-models.ts';
import { tfModelFrom } from './lib/explain-tfjs.ts';
import { exportOnnx } from './lib/onnx-export.ts';
import { loadOrt } from './lib/ort.ts';
import { loadNow, maxRelErr } from './lib/suite.ts';

const NAME = 'kernel-shap';
const TOL = 1e-3;
type Engine = 'backlight' | 'tfjs' | 'ort' | 'backlight+ort';
type TfTensor = ReturnType<Tf['tensor']>;

const args = new Args();
// bench/run.ts passes one command line to every benchmark; others' options are ignored here.
const FOREIGN = ['steps', 'seed', 'methods', 'ig-steps', 'ig-method', 'target', 'layer', 'peer', 'check-batch', 'no-check', 'no-f64', 'warmup', 'budget'];
args.checkKnown([...FOREIGN, 'models', 'batches', 'samples', 'reps', 'engines', 'full', 'weights', 'out']);
const t00 = performance.now();
const log = (s = '') => console.log(s);
const load = loadNow;
const loadBefore = load();

const backend = await bl.init();
const info = backend.info;
const full = args.flag('full') || !info.software;
const modelNames = args.list('models') ?? ['digits-cnn', 'shapes-cnn', 'breast-cancer-mlp'];
const batches = args.ints('batches') ?? (full ? [64, 256, 1024, 4096] : [64, 512]);
const reps = args.int('reps') ?? (full ? 3 : 1);
let engines = (args.list('engines') ?? ['backlight', 'tfjs', 'ort', 'backlight+ort']) as Engine[];
for (const e of engines) if (!['backlight', 'tfjs', 'ort', 'backlight+ort'].includes(e)) throw new Error(`--engines: unknown engine '${e}' (backlight, tfjs, ort, backlight+ort)`);
// Loaded by a computed name (bench/lib/ort.ts): a bundle for a lent GPU runs without it.
const ortLoaded = await loadOrt();
if (typeof ortLoaded === 'string') {
  log(`${ortLoaded}: the ort and backlight+ort engines are left out`);
  engines = engines.filter((e) => e !== 'ort' && e !== 'backlight+ort');
}
const ort = (typeof ortLoaded === 'string' ? undefined : ortLoaded) as typeof OrtTypes;
log(`${NAME}: KernelSHAP model evaluations per second on ${modelNames.join(', ')}; Node ${process.version}, ${availableParallelism()} cores`);
log(`backlight adapter: ${info.vendor} / ${info.architecture} / ${info.device} / ${info.description}${info.software ? ' (software)' : ''}`);

let peer: TfjsPeer | undefined;
if (engines.includes('tfjs')) {
  peer = await setupTfjs('webgpu');
  if (peer.backend === 'webgpu') {
    const a = peer.adapter!;
    const same = a.vendor === info.vendor && a.architecture === info.architecture && a.device === info.device && a.description === info.description;
    log(`TF.js ${peer.version} adapter:  ${a.vendor} / ${a.architecture} / ${a.device} / ${a.description}${same ? '  [same adapter as backlight]' : '  [DIFFERENT adapter from backlight]'}`);
  } else log(`TF.js ${peer.version}: WebGPU unavailable (${peer.fallbackReason}); the peer runs on tfjs-core's cpu backend`);
}
const tf = peer?.tf;
if (ort) log(`onnxruntime-node ${ort.env.versions?.common ?? ''} (CPU execution provider)`);

// ---- models, inputs, features ----

interface Case {
  lm: LoadedModel;
  host: Map<string, Float32Array>;
  x: Float32Array;
  item: number[];
  p: number;
  features: FeatureGroups;
  /** Reference rows [B, P]: one zero row, or background rows. */
  ref: Float32Array;
  b: number;
  target: number;
  classes: number;
  onnx: Uint8Array;
  session?: OrtTypes.InferenceSession;
  tfForward?: (x: TfTensor) => TfTensor;
  tfWeights: TfTensor[];
}

/** An MLP (Standardize, Linear, ReLU, Dropout in Sequentials) in TF.js. */
function tfMlp(t: Tf, model: Module, host: Map<string, Float32Array>): { forward: (x: TfTensor) => TfTensor; weights: TfTensor[] } {
  const weights: TfTensor[] = [];
  const keep = <T extends TfTensor>(v: T) => (weights.push(v), v);
  const build = (m: Module): ((x: TfTensor) => TfTensor) => {
    if (m instanceof Sequential) {
      const fs = m.layers.map(build);
      return (x) => fs.reduce((h, f) => f(h), x);
    }
    if (m instanceof Dropout) return (x) => x;
    if (m instanceof ReLU) return (x) => t.relu(x);
    if (m instanceof Standardize) {
      const mean = keep(t.tensor1d(host.get(`${m.path}.mean`)!)), std = keep(t.tensor1d(host.get(`${m.path}.std`)!));
      return (x) => t.div(t.sub(x, mean), std);
    }
    if (m instanceof Linear) {
      const w = host.get(`${m.path}.weight`)!, bias = host.get(`${m.path}.bias`);
      const out = m.stateDict().get(`${m.path}.weight`)!.shape[0];
      const wt = keep(t.transpose(t.tensor2d(w, [out, w.length / out])));
      const bt = bias ? keep(t.tensor1d(bias)) : undefined;
      return (x) => (bt ? t.add(t.matMul(x, wt), bt) : t.matMul(x, wt));
    }
    throw new Error(`tfMlp: layer '${m.path}' (${m.kind}) not translated`);
  };
  return { forward: build(model), weights };
}

const wdir = weightsDir(args.string('weights'));
const cases: Case[] = [];
for (const name of modelNames) {
  const lm = loadModel(name, wdir);
  const host = new Map<string, Float32Array>();
  for (const [k, t] of lm.model.stateDict()) host.set(k, Float32Array.from(await t.data()));
  const item = [...lm.spec.inputShape];
  const p = item.reduce((a, b) => a * b, 1);
  let x: Float32Array, ref: Float32Array, b: number, features: FeatureGroups;
  if (item.length === 1) {
    const sp = datasetSplits(lm.spec.dataset);
    x = sp.test.x.slice(0, p);
    b = 8;
    ref = sp.train.x.slice(0, b * p);
    features = (await ex.featureGroupsFor(NAME, ex.columns(), bl.tensor(x, [1, ...item])))[0];
  } else {
    x = testImages(lm.spec, 1).x;
    b = 1;
    ref = new Float32Array(p);
    features = (await ex.featureGroupsFor(NAME, ex.grid(item[1] >= 32 ? 4 : 2), bl.tensor(x, [1, ...item])))[0];
  }
  const out = await lm.model.call(bl.tensor(x, [1, ...item])).data();
  const classes = out.length;
  const target = Array.from(out).indexOf(Math.max(...out));
  const onnx = exportOnnx(lm.model, host, item, classes);
  const session = ort ? await ort.InferenceSession.create(onnx, { executionProviders: ['cpu'] }) : undefined;
  let tfForward: ((x: TfTensor) => TfTensor) | undefined;
  let tfWeights: TfTensor[] = [];
  if (tf) {
    if (item.length === 1) ({ forward: tfForward, weights: tfWeights } = tfMlp(tf, lm.model, host));
    else {
      const m = tfModelFrom(tf, lm.model, host, 'features');
      tfForward = m.forward;
      tfWeights = m.weights;
    }
  }
  cases.push({ lm, host, x, item, p, features, ref, b, target, classes, onnx, session, tfForward, tfWeights });
  log(`  ${name}: input [${item}], ${features.m} features, ${b === 1 ? 'zero baseline' : `${b} background rows`}, explaining class ${target}; ONNX ${(onnx.length / 1024).toFixed(0)} KiB`);
}

// ---- the engines, evaluating coalitions z [C, M] ----

/** The reference as explainer options, made once per case (tensors the bench owns). */
const refs = new Map<Case, { baseline: Tensor } | { background: Tensor }>();
const refTensor = (c: Case) => {
  if (!refs.has(c)) refs.set(c, c.b === 1 ? { baseline: bl.tensor(c.ref, c.item) } : { background: bl.tensor(c.ref, [c.b, ...c.item]) });
  return refs.get(c)!;
};

/** TF.js: the same perturbed batches from the same coalitions, scored, reduced by one product per chunk. */
async function tfEvaluate(c: Case, z: Float32Array, count: number, chunk: number, reduceCols: number, rowsOf: (s: number, n: number) => Float32Array): Promise<Float32Array> {
  const t = tf!;
  const m = c.features.m;
  const labels = t.tensor1d(c.features.labels, 'int32');
  const xs = t.tensor2d(c.x, [1, c.p]);
  const refs = t.tensor2d(c.ref, [c.b, c.p]);
  const perCall = Math.max(1, Math.floor(chunk / c.b));
  let acc: TfTensor = t.zeros([1, reduceCols]);
  for (let c0 = 0; c0 < count; c0 += perCall) {
    const nc = Math.min(perCall, count - c0);
    const next = t.tidy(() => {
      const keep = t.gather(t.tensor2d(z.subarray(c0 * m, (c0 + nc) * m), [nc, m]), labels, 1); // [nc, P]
      const k3 = t.reshape(keep, [nc, 1, c.p]);
      const batch = t.add(refs, t.mul(k3, t.sub(xs, refs))); // [nc, B, P]
      let input = t.reshape(batch, [nc * c.b, ...c.item]);
      if (c.item.length === 3) input = t.transpose(input, [0, 2, 3, 1]); // NCHW -> NHWC
      const out = c.tfForward!(input) as ReturnType<Tf['tensor2d']>;
      const s = t.reshape(t.slice(out, [0, c.target], [nc * c.b, 1]), [nc, c.b]);
      const v = t.reshape(t.mean(s, 1), [1, nc]);
      return t.add(acc, t.matMul(v, t.tensor2d(rowsOf(c0, nc), [nc, reduceCols])));
    });
    acc.dispose();
    acc = next;
  }
  const r = (await acc.data()) as Float32Array;
  for (const v of [acc, labels, xs, refs]) v.dispose();
  return r;
}

/** onnxruntime-node: batches blended on the host, session.run per chunk, reduced on the host. */
async function ortEvaluate(c: Case, z: Float32Array, count: number, chunk: number, reduceCols: number, rowsOf: (s: number, n: number) => Float32Array): Promise<Float64Array> {
  const m = c.features.m, P = c.p, B = c.b, L = c.features.labels;
  const perCall = Math.max(1, Math.floor(chunk / B));
  const acc = new Float64Array(reduceCols);
  const buf = new Float32Array(perCall * B * P);
  for (let c0 = 0; c0 < count; c0 += perCall) {
    const nc = Math.min(perCall, count - c0);
    for (let i = 0; i < nc; i++) {
      const zr = (c0 + i) * m;
      for (let b = 0; b < B; b++) {
        const o = (i * B + b) * P, r = b * P;
        for (let q = 0; q < P; q++) buf[o + q] = z[zr + L[q]] ? c.x[q] : c.ref[r + q];
      }
    }
    const rows = nc * B;
    const res = await c.session!.run({ input: new ort.Tensor('float32', buf.subarray(0, rows * P), [rows, ...c.item]) });
    const out = res[c.session!.outputNames[0]].data as Float32Array;
    const R = rowsOf(c0, nc);
    for (let i = 0; i < nc; i++) {
      let v = 0;
      for (let b = 0; b < B; b++) v += out[(i * B + b) * c.classes + c.target];
      v /= B;
      for (let k = 0; k < reduceCols; k++) acc[k] += v * R[i * reduceCols + k];
    }
  }
  return acc;
}

const ortBox = (c: Case) =>
  ex.blackBox(async (batch, shape) => {
    const res = await c.session!.run({ input: new ort.Tensor('float32', batch, shape) });
    return res[c.session!.outputNames[0]].data as Float32Array;
  });

// ---- correctness: scores of the first coalitions on every engine vs the float64 CPU backend ----

const relErr = maxRelErr;

const cpu = await bl.init({ backend: 'cpu', setDefault: false });
const checks: Record<string, unknown>[] = [];
for (const c of cases) {
  const d = kernelShapCoalitions(c.features.m, 48, 1);
  const count = d.count;
  const identity = (s: number, n: number) => {
    const r = new Float32Array(n * count);
    for (let i = 0; i < n; i++) r[i * count + s + i] = 1;
    return r;
  };
  const scoresOn = async (b: bl.Backend, model: ex.PerturbationModel) =>
    bl.withBackend(b, async () => {
      const x = bl.tensor(c.x, [1, ...c.item]);
      const ref = c.b === 1 ? { baseline: bl.tensor(c.ref, c.item) } : { background: bl.tensor(c.ref, [c.b, ...c.item]) };
      const runner = await ex.PerturbationRunner.create('check', model, x, ref, { target: c.target, batchSize: 32 });
      const pert = coalitionPerturbations(c.features, d.z, count, b);
      const v = await runner.evaluate(0, 1, pert);
      const r = Float64Array.from(await v.data());
      v.dispose();
      pert.dispose();
      runner.dispose();
      return r;
    });
  const cpuModel = bl.withBackend(cpu, () => loadModel(c.lm.name, wdir).model);
  const f64 = await scoresOn(cpu, cpuModel);
  const row: Record<string, unknown> = { model: c.lm.name, coalitions: count };
  row.backlight = relErr(await scoresOn(backend, c.lm.model), f64);
  // backlight's ONNX loader on the exported file: the export means what it says.
  const back = loadOnnx(c.onnx, { source: 'exported' });
  row['backlight(onnx file)'] = relErr(await scoresOn(backend, back), f64);
  back.dispose();
  if (c.session) {
    row.ort = relErr(await ortEvaluate(c, d.z, count, 32, count, identity), f64);
    row['backlight+ort'] = relErr(await scoresOn(backend, ortBox(c)), f64);
  }
  if (tf) row[peer!.label] = relErr(await tfEvaluate(c, d.z, count, 32, count, identity), f64);
  row.ok = Object.entries(row).every(([k, v]) => typeof v !== 'number' || k === 'coalitions' || v <= TOL);
  checks.push(row);
  cpuModel.dispose();
}
cpu.destroy();
log(`\nagreement: scores of the first coalitions vs backlight's float64 CPU backend (max |a - f64| / max |f64|; tolerance ${TOL}):`);
const checkCols = Object.keys(checks[0]).filter((k) => k !== 'model' && k !== 'ok' && k !== 'coalitions');
log(table(['model', 'coalitions', ...checkCols, 'ok'], checks.map((r) => [String(r.model), String(r.coalitions), ...checkCols.map((k) => (r[k] as number).toExponential(2)), r.ok ? 'ok' : 'MISMATCH'])));
const pass = checks.every((r) => r.ok);

// ---- timing ----

interface Row { model: string; engine: Engine; batch: number; samples: number; evaluations: number; msMedian: number; evalsPerSec: number; reps: number }
const rows: Row[] = [];
for (const c of cases) {
  const m = c.features.m;
  const samples = args.int('samples') ?? (full ? 2 * m + 2048 : 512);
  const d = kernelShapCoalitions(m, samples, 0);
  const evals = d.count * c.b;
  // The reduction TF.js and ORT use: [z | 1], the size of KernelSHAP's normal equations.
  const K = m + 1;
  const rowsOf = (s: number, n: number) => {
    const r = new Float32Array(n * K);
    for (let i = 0; i < n; i++) {
      r.set(d.z.subarray((s + i) * m, (s + i + 1) * m), i * K);
      r[i * K + m] = 1;
    }
    return r;
  };
  const x = bl.tensor(c.x, [1, ...c.item]);
  for (const batch of batches) {
    const run: Record<Engine, () => Promise<void>> = {
      backlight: async () => {
        const r = await ex.kernelShap(c.lm.model, x, { features: { data: c.features.labels, shape: c.item }, ...refTensor(c), samples, seed: 0, target: c.target, batchSize: batch });
        await r.data();
        r.dispose();
      },
      tfjs: async () => void (await tfEvaluate(c, d.z, d.count, batch, K, rowsOf)),
      ort: async () => void (await ortEvaluate(c, d.z, d.count, batch, K, rowsOf)),
      'backlight+ort': async () => {
        const r = await ex.kernelShap(ortBox(c), x, { features: { data: c.features.labels, shape: c.item }, ...refTensor(c), samples, seed: 0, target: c.target, batchSize: batch });
        await r.data();
        r.dispose();
      },
    };
    for (const e of engines) {
      if (e === 'tfjs' && !tf) continue;
      await run[e](); // warm-up: pipelines, sessions
      const ms: number[] = [];
      for (let i = 0; i < reps; i++) {
        const t0 = performance.now();
        await run[e]();
        ms.push(performance.now() - t0);
      }
      const med = median(ms);
      rows.push({ model: c.lm.name, engine: e, batch, samples, evaluations: evals, msMedian: med, evalsPerSec: (evals / med) * 1000, reps });
      log(`  ${c.lm.name} batch ${batch} ${e}: ${fmt(med)} ms, ${fmt((evals / med) * 1000)} evaluations/s`);
    }
  }
  x.dispose();
}

// ---- memory: 10x the samples, the same chunk size ----

const memory: Record<string, unknown>[] = [];
if (engines.includes('backlight')) {
  const c = cases[0];
  const x = bl.tensor(c.x, [1, ...c.item]);
  const peakOf = async (samples: number) => {
    let buffers = 0, bytes = 0;
    const r = await ex.kernelShap(c.lm.model, x, {
      features: { data: c.features.labels, shape: c.item }, ...refTensor(c), samples, seed: 0, target: c.target, batchSize: 256,
      onProgress: () => {
        const mm = bl.memory();
        buffers = Math.max(buffers, mm.liveBuffers);
        bytes = Math.max(bytes, mm.liveBytes);
      },
    });
    r.dispose();
    return { samples, peakLiveBuffers: buffers, peakLiveBytes: bytes, after: bl.memory().liveBuffers };
  };
  refTensor(c);
  const base = bl.memory().liveBuffers;
  const small = await peakOf(400), big = await peakOf(4000);
  memory.push({ model: c.lm.name, batch: 256, liveBuffersBefore: base, ...{ small, big }, flat: big.peakLiveBuffers <= small.peakLiveBuffers + 4 && big.after === base });
  x.dispose();
  log(`\nmemory (${c.lm.name}, chunks of 256): peak live buffers ${small.peakLiveBuffers} / bytes ${small.peakLiveBytes} at 400 samples; ${big.peakLiveBuffers} / ${big.peakLiveBytes} at 4000; ${big.after} live after (${base} before)`);
}

// ---- report ----

const adapterLine = `${info.vendor} / ${info.architecture} / ${info.device} (${info.description})${info.software ? ', software' : ''}`;
log(`\n${NAME} on ${adapterLine}; model evaluations per second (coalitions x background rows / wall time of a whole call incl. the read-back)`);
log(table(
  ['model', 'samples', 'evals/call', 'batch', 'engine', 'ms/call', 'evals/s', 'vs backlight'],
  rows.map((r) => {
    const b = rows.find((q) => q.model === r.model && q.batch === r.batch && q.engine === 'backlight');
    return [r.model, String(r.samples), String(r.evaluations), String(r.batch), r.engine === 'tfjs' ? peer?.label ?? 'tfjs' : r.engine, fmt(r.msMedian), fmt(r.evalsPerSec), b ? `${fmt(r.evalsPerSec / b.evalsPerSec)}x` : '-'];
  }),
));
log("'vs backlight': this engine's evaluations/s over backlight's at the same chunk size (below 1: backlight is faster)");
const loadAfter = load();
log(`\nload average (1, 5, 15 min): ${loadBefore} at the start, ${loadAfter} at the end`);
const path = writeResults(NAME, {
  name: NAME,
  date: new Date().toISOString(),
  node: process.version,
  cores: availableParallelism(),
  loadAverage: { start: loadBefore, end: loadAfter },
  adapter: { backlight: info, tfjs: peer ? { backend: peer.backend, adapter: peer.adapter, version: peer.version, fallbackReason: peer.fallbackReason } : undefined, ort: ort ? { version: ort.env.versions?.common, executionProvider: 'cpu' } : { unavailable: ortLoaded } },
  options: { models: modelNames, batches, reps, engines, full },
  cases: cases.map((c) => ({ model: c.lm.name, inputShape: c.item, features: c.features.m, referenceRows: c.b, target: c.target })),
  check: { tolerance: TOL, rows: checks, pass },
  rows,
  memory,
  totalSeconds: (performance.now() - t00) / 1000,
}, args.string('out'));
log(`\nwrote ${path} (${((performance.now() - t00) / 1000).toFixed(0)} s in all)`);
process.exit(pass ? 0 : 1);

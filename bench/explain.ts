// Integrated Gradients (64 steps) and Grad-CAM on the bundled CNNs (digits-cnn, shapes-cnn) and a
// residual net with BatchNorm (resnet-bn): images explained per second on backlight
// (explain/integratedGradients, explain/gradCam) and, side by side on the same adapter, on the same
// architectures with the same weights rebuilt in TensorFlow.js, with the gradients from tf.grad.
//
//   npx tsx bench/explain.ts [--models digits-cnn,shapes-cnn,resnet-bn] [--methods ig,gradcam]
//       [--batches 1,16] [--reps N] [--warmup N] [--budget SECONDS] [--full] [--ig-steps 64]
//       [--ig-method gausslegendre|riemann_trapezoid|...] [--target predicted|label]
//       [--layer features] [--engines backlight,tfjs] [--peer webgpu|cpu]
//       [--check-batch N] [--no-check] [--no-f64] [--weights DIR] [--out DIR]
//
// Defaults: on a software adapter (SwiftShader, lavapipe) batches 1 and 16 with few reps, each
// (model, method, batch) cell's reps stopping after --budget seconds (60; at least one rep);
// --full (or a hardware adapter) adds 64 and 256. Before timing, each model is checked once: backlight
// and TF.js (and backlight's float64 CPU backend) must agree on the IG attributions (both
// quadratures, the timed target) and on the upsampled Grad-CAM maps (predicted and label targets) within 1e-3 of
// each map's largest magnitude. Each timed call ends by reading the whole result back to the
// host, on both engines. Writes bench/results/explain.json (or DIR/explain.json).
// Packable for a lent GPU machine: ../shared/device/pack.sh bench/explain.ts, then run it from
// the repository root (the weights are read from ./models/weights unless --weights says otherwise).
import { availableParallelism } from 'node:os';
import * as bl from '../engine/index.ts';
import * as ex from '../explain/index.ts';
import type { Module } from '../models/module.ts';
import { Args } from './lib/args.ts';
import { fmt, median, table, timeReps, writeResults } from './lib/report.ts';
import { nchwToNhwc, nhwcToNchw } from './lib/smallcnn.ts';
import { setupTfjs, type Tf, type TfjsPeer } from './lib/tfjs.ts';
import { loadModel, testImages, weightsDir, type Images, type LoadedModel } from './lib/explain-models.ts';
import { tfGradCam, tfIntegratedGradients, tfModelFrom, type TfModel } from './lib/explain-tfjs.ts';
import { loadNow } from './lib/suite.ts';

const NAME = 'explain';
const TOL = 1e-3;
type Method = 'ig' | 'gradcam';
type Engine = 'backlight' | 'tfjs';
type TargetKind = 'predicted' | 'label';
type TfTensor = ReturnType<Tf['tensor']>;

const args = new Args();
// bench/run.ts passes one command line to every benchmark: cnn-step.ts's --steps (its list of
// steps) and --seed are accepted here and ignored (IG's step count is --ig-steps).
const FOREIGN = ['steps', 'seed'];
args.checkKnown([...FOREIGN, 'models', 'methods', 'batches', 'reps', 'warmup', 'budget', 'full', 'ig-steps', 'ig-method', 'target', 'layer', 'engines', 'peer', 'check-batch', 'no-check', 'no-f64', 'weights', 'out']);
const full = args.flag('full');
const modelNames = args.list('models') ?? ['digits-cnn', 'shapes-cnn', 'resnet-bn'];
const methods = (args.list('methods') ?? ['ig', 'gradcam']) as Method[];
const engines = (args.list('engines') ?? ['backlight', 'tfjs']) as Engine[];
for (const m of methods) if (m !== 'ig' && m !== 'gradcam') throw new Error(`--methods: unknown method '${m}' (ig, gradcam)`);
for (const e of engines) if (e !== 'backlight' && e !== 'tfjs') throw new Error(`--engines: unknown engine '${e}' (backlight, tfjs)`);
const steps = args.int('ig-steps') ?? 64;
const igMethod = (args.string('ig-method') ?? 'gausslegendre') as ex.IntegrationMethod;
ex.quadrature(igMethod, steps); // validates the name and the step count
const targetKind = (args.string('target') ?? 'predicted') as TargetKind;
if (targetKind !== 'predicted' && targetKind !== 'label') throw new Error(`--target must be predicted or label, got '${targetKind}'`);
const layer = args.string('layer') ?? 'features';
const peerPref = args.string('peer') ?? 'webgpu';
if (peerPref !== 'webgpu' && peerPref !== 'cpu') throw new Error(`--peer must be webgpu or cpu, got '${peerPref}'`);

const t00 = performance.now();
const log = (s = '') => console.log(s);
for (const f of FOREIGN) if (args.has(f)) log(`(--${f} is another benchmark's option; ignored here)`);
const load = loadNow;
const loadBefore = load();

// ---- engines and adapters ----

const backend = await bl.init();
const info = backend.info;
log(`${NAME}: integrated gradients (${steps} steps, ${igMethod}) and Grad-CAM (layer '${layer}', upsampled) on ${modelNames.join(', ')}; Node ${process.version}`);
log(`backlight adapter: ${info.vendor} / ${info.architecture} / ${info.device} / ${info.description}${info.software ? ' (software)' : ''}`);

let peer: TfjsPeer | undefined;
if (engines.includes('tfjs')) {
  peer = await setupTfjs(peerPref);
  if (peer.backend === 'webgpu') {
    const a = peer.adapter!;
    const same = a.vendor === info.vendor && a.architecture === info.architecture && a.device === info.device && a.description === info.description;
    log(`TF.js ${peer.version} adapter:  ${a.vendor} / ${a.architecture} / ${a.device} / ${a.description}` +
      (same ? '  [same adapter as backlight]' : '  [DIFFERENT adapter from backlight]'));
  } else {
    log(`TF.js ${peer.version}: using tfjs-core's 'cpu' backend as the peer${peer.fallbackReason ? ` because ${peer.fallbackReason}` : ' (--peer cpu)'}`);
  }
}
const tf: Tf | undefined = peer?.tf;
const peerLabel = peer?.label ?? 'tfjs';

// ---- models: backlight from the safetensors files, TF.js rebuilt from the state dict ----

const wdir = weightsDir(args.string('weights'));
log(`weights from ${wdir}`);

interface Entry { lm: LoadedModel; tfm?: TfModel; params: number }
const entries: Entry[] = [];
for (const name of modelNames) {
  const lm = loadModel(name, wdir);
  const host = new Map<string, Float32Array>();
  for (const [k, t] of lm.model.stateDict()) host.set(k, Float32Array.from(await t.data()));
  const tfm = tf ? tfModelFrom(tf, lm.model, host, layer) : undefined;
  const params = lm.model.parameters().reduce((s, t) => s + t.size, 0);
  entries.push({ lm, tfm, params });
  log(`  ${name}: input [${lm.spec.inputShape}], ${lm.spec.classes.length} classes, ${params} parameters${tfm ? `; TF.js: ${tfm.layers.length} layers translated` : ''}`);
}

// ---- helpers ----

const blTarget = (kind: TargetKind, im: Images): ex.Target => (kind === 'predicted' ? 'predicted' : Array.from(im.labels));
const tfTarget = (kind: TargetKind, im: Images): Int32Array | null => (kind === 'predicted' ? null : im.labels);

async function blExplain(model: Module, x: bl.Tensor, method: Method, kind: TargetKind, im: Images, quad: ex.IntegrationMethod): Promise<bl.Tensor> {
  const target = blTarget(kind, im);
  return method === 'ig'
    ? ex.integratedGradients(model, x, { target, steps, method: quad })
    : ex.gradCam(model, x, { target, layer, upsample: true });
}

function tfExplain(m: TfModel, x: TfTensor, method: Method, kind: TargetKind, im: Images, quad: ex.IntegrationMethod): TfTensor {
  const { alphas, weights } = ex.quadrature(quad, steps);
  return method === 'ig' ? tfIntegratedGradients(tf!, m, x, tfTarget(kind, im), alphas, weights) : tfGradCam(tf!, m, x, tfTarget(kind, im), true);
}

/** The worst over items of max|a_i - ref_i| / max|ref_i| (absolute where a reference map is all zero). */
function mapErr(a: ArrayLike<number>, ref: ArrayLike<number>, n: number): { err: number; zeroMaps: number } {
  const per = ref.length / n;
  let worst = 0, zeroMaps = 0;
  for (let i = 0; i < n; i++) {
    let num = 0, den = 0;
    for (let j = i * per; j < (i + 1) * per; j++) {
      num = Math.max(num, Math.abs(a[j] - ref[j]));
      den = Math.max(den, Math.abs(ref[j]));
    }
    if (den === 0) zeroMaps++;
    worst = Math.max(worst, den === 0 ? num : num / den);
  }
  return { err: worst, zeroMaps };
}

const toNhwc = (x: Float32Array, shape: number[]) => nchwToNhwc(x, shape);
const tfInput = (im: Images) => tf!.tensor4d(toNhwc(im.x, im.shape), [im.shape[0], im.shape[2], im.shape[3], im.shape[1]]);
/** A TF.js result (NHWC; [N, H, W, 1] for CAMs) as NCHW. */
const tfToNchw = (d: Float32Array, s: readonly number[]) => nhwcToNchw(d, [s[0], s[3], s[1], s[2]]);

// ---- correctness, once per model, before timing ----

interface CheckRow {
  model: string; method: string; quadrature?: string; target: TargetKind;
  blVsTf?: number; blVsF64?: number; tfVsF64?: number; zeroMaps: number; predictedAgree?: boolean;
  /** Quadratures with a node at alpha = 0 (the baseline itself): how far the engines' input gradients at the baseline differ (relative). */
  baselineGradDiff?: number;
  /** backlight vs TF.js once TF.js's alpha = 0 term is replaced by backlight's (only the other nodes compared). */
  blVsTfOffBaseline?: number;
  /** 'ok'; 'tie at baseline' (they differ only through the gradient at alpha = 0, see the note); 'MISMATCH'. */
  status: string;
  ok: boolean;
}
let check: { batch: number; tolerance: number; rows: CheckRow[]; pass: boolean; seconds: number; samples: Record<string, Record<string, number[]>> } | undefined;

if (!args.flag('no-check') && engines.includes('backlight') && tf) {
  const n = args.int('check-batch') ?? 2;
  const t0 = performance.now();
  const useF64 = !args.flag('no-f64');
  const cpu = useF64 ? await bl.init({ backend: 'cpu', setDefault: false }) : undefined;
  const rows: CheckRow[] = [];
  const samples: Record<string, Record<string, number[]>> = {};
  for (const e of entries) {
    const im = testImages(e.lm.spec, n);
    const bx = bl.tensor(im.x, im.shape);
    const tx = tfInput(im);
    const cpuModel = cpu ? bl.withBackend(cpu, () => loadModel(e.lm.name, wdir).model) : undefined;
    const cx = cpu ? bl.tensor(im.x, im.shape, cpu) : undefined;
    // Do both engines predict the same classes?
    const blPred = Array.from(await bl.tidy(() => bl.argmax(e.lm.model.call(bx), 1)).data()).map(Math.round);
    const tfPredT = tf.tidy(() => tf.argMax(e.tfm!.forward(tx), 1));
    const tfPred = Array.from(await tfPredT.data());
    tfPredT.dispose();
    const predictedAgree = blPred.every((v, i) => v === tfPred[i]);
    const configs: { method: Method; quad?: ex.IntegrationMethod; target: TargetKind }[] = [];
    if (methods.includes('ig')) for (const q of ['riemann_trapezoid', 'gausslegendre'] as const) configs.push({ method: 'ig', quad: q, target: targetKind });
    if (methods.includes('gradcam')) for (const t of ['predicted', 'label'] as const) configs.push({ method: 'gradcam', target: t });
    for (const c of configs) {
      const quad = c.quad ?? igMethod;
      const r = await blExplain(e.lm.model, bx, c.method, c.target, im, quad);
      const a = Float32Array.from(await r.data());
      r.dispose();
      const tr = tfExplain(e.tfm!, tx, c.method, c.target, im, quad);
      const b = tfToNchw((await tr.data()) as Float32Array, tr.shape);
      tr.dispose();
      let ref: Float64Array | undefined;
      if (cpu) {
        const rc = await bl.withBackend(cpu, () => blExplain(cpuModel!, cx!, c.method, c.target, im, quad));
        ref = Float64Array.from(await rc.data());
        rc.dispose();
      }
      const bt = mapErr(a, b, n);
      const row: CheckRow = { model: e.lm.name, method: c.method, quadrature: c.quad, target: c.target, blVsTf: bt.err, zeroMaps: bt.zeroMaps, predictedAgree, status: '', ok: true };
      if (ref) {
        row.blVsF64 = mapErr(a, ref, n).err;
        row.tfVsF64 = mapErr(b, ref, n).err;
      }
      const { alphas, weights } = ex.quadrature(quad, steps);
      if (c.method === 'ig' && alphas[0] === 0) {
        // The baseline (all zeros) is a node: there ties in max pooling are common (constant
        // feature maps), and the engines may break them differently. Compare the gradients there,
        // and the attributions with TF.js's alpha = 0 term swapped for backlight's.
        const classes = c.target === 'predicted' ? blPred : Array.from(im.labels);
        const z = bl.zeros(im.shape);
        const g0 = await ex.saliency(e.lm.model, z, { target: classes, abs: false });
        const gbl = Float32Array.from(await g0.data());
        z.dispose();
        g0.dispose();
        const tg = tf.tidy(() => {
          const oh = tf.oneHot(tf.tensor1d(Int32Array.from(classes), 'int32'), e.tfm!.classes);
          return tf.grad((p: TfTensor) => tf.sum(tf.mul(e.tfm!.forward(p), oh)))(tf.zeros([im.shape[0], im.shape[2], im.shape[3], im.shape[1]]));
        });
        const gtf = tfToNchw((await tg.data()) as Float32Array, tg.shape);
        tg.dispose();
        row.baselineGradDiff = mapErr(gtf, gbl, n).err;
        const swapped = b.map((v, i) => v + weights[0] * im.x[i] * (gbl[i] - gtf[i]));
        row.blVsTfOffBaseline = mapErr(a, swapped, n).err;
      }
      const within = (v: number | undefined) => v === undefined || v <= TOL;
      const predOk = c.target !== 'predicted' || predictedAgree;
      if (within(row.blVsTf) && within(row.blVsF64) && within(row.tfVsF64) && predOk) row.status = 'ok';
      else if (predOk && within(row.blVsF64) && row.blVsTfOffBaseline !== undefined && within(row.blVsTfOffBaseline) && !within(row.baselineGradDiff)) row.status = 'tie at baseline';
      else row.status = 'MISMATCH';
      row.ok = row.status !== 'MISMATCH';
      rows.push(row);
      const key = `${e.lm.name} ${c.method}${c.quad ? ` ${c.quad}` : ''} ${c.target}`;
      // A few values from the middle of item 0's map.
      const mid = Math.floor(a.length / n / 2);
      samples[key] = { backlight: Array.from(a.slice(mid, mid + 3)), [peerLabel]: Array.from(b.slice(mid, mid + 3)), ...(ref ? { 'backlight-cpu-f64': Array.from(ref.slice(mid, mid + 3)) } : {}) };
    }
    bx.dispose();
    tx.dispose();
    cx?.dispose();
    cpuModel?.dispose();
    log(`  checked ${e.lm.name} on ${n} images of ${im.source}: predicted classes backlight [${blPred}] ${peerLabel} [${tfPred}], labels [${Array.from(im.labels)}]`);
  }
  cpu?.destroy();
  const pass = rows.every((r) => r.ok);
  check = { batch: n, tolerance: TOL, rows, pass, seconds: (performance.now() - t0) / 1000, samples };
  log(`\nagreement at batch ${n} (same weights and images; error = worst over items of max|a-b| / max|b| of the item's map; tolerance ${TOL}):`);
  const e2 = (v: number | undefined) => (v === undefined ? '-' : v.toExponential(2));
  log(table(
    ['model', 'method', 'target', 'status', `backlight vs ${peerLabel}`, ...(cpu ? ['backlight vs f64', `${peerLabel} vs f64`] : []), 'grad at baseline', 'vs, alpha>0 only', 'zero maps'],
    rows.map((r) => [
      r.model, r.method === 'ig' ? `ig ${r.quadrature}` : 'gradcam (upsampled)', r.target, r.status,
      e2(r.blVsTf), ...(cpu ? [e2(r.blVsF64), e2(r.tfVsF64)] : []), e2(r.baselineGradDiff), e2(r.blVsTfOffBaseline), String(r.zeroMaps),
    ]),
  ));
  log("'grad at baseline': backlight vs TF.js input gradient at the all-zero baseline (IG nodes at alpha = 0 only); 'vs, alpha>0 only': backlight vs TF.js\n" +
    "with TF.js's alpha = 0 term replaced by backlight's. 'tie at baseline': they differ only there: at a constant input, max pooling windows tie, and\n" +
    'backlight (like PyTorch, and its float64 reference) sends the gradient to the first maximum of a window, TF.js to the last; both are valid subgradients.');
  log('sample values (item 0, middle of its map):');
  log(table(['config', 'engine', 'values'], Object.entries(samples).flatMap(([k, s]) => Object.entries(s).map(([eng, v]) => [k, eng, v.map((z) => z.toPrecision(7)).join(', ')]))));
  const ties = rows.filter((r) => r.status === 'tie at baseline').length;
  log(pass ? `check passed${ties ? ` (${ties} row${ties > 1 ? 's' : ''} differing only by max-pool tie-breaking at the baseline)` : ''} (${check.seconds.toFixed(1)} s)` : `CHECK FAILED: see MISMATCH rows above (${check.seconds.toFixed(1)} s)`);
}

// ---- timing ----

const software = info.software;
const batches = args.ints('batches') ?? (software && !full ? [1, 16] : [1, 16, 64, 256]);
const repsFor = (n: number) => args.int('reps') ?? (software ? (n <= 4 ? 5 : n <= 16 ? 3 : n <= 64 ? 2 : 1) : 20);
const warmupArg = args.int('warmup');
const warmupDefault = software ? 1 : 3;
// On a software adapter one call can take minutes (TF.js's IG on shapes-cnn at batch 16): the
// reps of a cell stop at the budget (at least one), and a cell that the smaller batch predicts to
// take over SKIP_WARMUP_MS per call skips its warm-up (the smaller batch compiled its pipelines).
const budgetMs = (args.int('budget') ?? (software ? 60 : 600)) * 1000;
const SKIP_WARMUP_MS = 10_000;
log(`\nload average ${load()} on ${availableParallelism()} cores (other processes' work slows a software adapter down)`);
log(`timing: target ${targetKind}; batches ${batches.join(', ')}; warmup ${warmupArg ?? warmupDefault}${warmupArg === undefined && software ? ` (none where a call is predicted to take over ${SKIP_WARMUP_MS / 1000} s)` : ''}; ` +
  `reps up to ${batches.map(repsFor).join(', ')} within ${budgetMs / 1000} s per cell (at least 1); engines' reps interleaved (A B, B A, ...); ` +
  'each call ends by reading the whole attribution / map back to the host; median of reps');

interface Row {
  model: string; method: Method; batch: number; engine: string; reps: number; warmup: number;
  msMedian: number; msMin: number; msAll: number[]; imagesPerSec: number;
  memoryBefore: Record<string, number>; memoryAfter: Record<string, number>;
}
const rows: Row[] = [];
const blMem = () => ({ ...backend.memory() }) as unknown as Record<string, number>;
const tfMem = () => {
  const m = tf!.memory() as unknown as Record<string, unknown>;
  return { numTensors: m.numTensors as number, numBytes: m.numBytes as number };
};

interface Contender { engine: string; run: () => Promise<void>; mem: () => Record<string, number> }

/** The slowest engine's median ms per call at the last batch measured, per model and method. */
const lastCost = new Map<string, { batch: number; ms: number }>();

/** The engines' reps interleaved in ABBA order, so that drifting load falls on both alike. */
async function measure(model: string, method: Method, batch: number, cs: Contender[]) {
  const maxReps = repsFor(batch);
  const prev = lastCost.get(`${model}/${method}`);
  const predicted = prev ? (prev.ms * batch) / prev.batch : 0;
  const warmup = warmupArg ?? (software && predicted > SKIP_WARMUP_MS ? 0 : warmupDefault);
  const before = cs.map((c) => c.mem());
  for (let i = 0; i < warmup; i++) for (const c of cs) await c.run();
  const ms: number[][] = cs.map(() => []);
  let reps = maxReps;
  for (let i = 0; i < reps; i++) {
    const order = cs.map((_, k) => k);
    if (i % 2 === 1) order.reverse();
    let round = 0;
    for (const k of order) {
      const t = (await timeReps(cs[k].run, 0, 1))[0];
      ms[k].push(t);
      round += t;
    }
    if (i === 0) reps = Math.max(1, Math.min(maxReps, Math.floor(budgetMs / round)));
  }
  lastCost.set(`${model}/${method}`, { batch, ms: Math.max(...ms.map(median)) });
  cs.forEach((c, k) => {
    const m = median(ms[k]);
    rows.push({ model, method, batch, engine: c.engine, reps: ms[k].length, warmup, msMedian: m, msMin: Math.min(...ms[k]), msAll: ms[k], imagesPerSec: batch / (m / 1000), memoryBefore: before[k], memoryAfter: c.mem() });
    log(`  ${model.padEnd(10)} ${method.padEnd(7)} batch ${String(batch).padStart(3)}  ${c.engine.padEnd(11)} ${fmt(m)} ms/call (reps ${ms[k].map((v) => fmt(v)).join(' ')})`);
  });
}

for (const e of entries) {
  for (const n of batches) {
    const im = testImages(e.lm.spec, n);
    const bx = bl.tensor(im.x, im.shape);
    const tx = tf ? tfInput(im) : undefined;
    for (const method of methods) {
      const cs: Contender[] = engines.map((engine): Contender => {
        if (engine === 'backlight') {
          return {
            engine: 'backlight', mem: blMem,
            run: async () => {
              const r = await blExplain(e.lm.model, bx, method, targetKind, im, igMethod);
              await r.data();
              r.dispose();
            },
          };
        }
        return {
          engine: peerLabel, mem: tfMem,
          run: async () => {
            const r = tfExplain(e.tfm!, tx!, method, targetKind, im, igMethod);
            await r.data();
            r.dispose();
          },
        };
      });
      await measure(e.lm.name, method, n, cs);
    }
    bx.dispose();
    tx?.dispose();
  }
}

// ---- report ----

const adapterLine = `${info.vendor} / ${info.architecture} / ${info.device} (${info.description})${info.software ? ', software' : ''}`;
const methodLabel = (m: Method) => (m === 'ig' ? `IG ${steps} steps` : 'Grad-CAM');
const memKey = (engine: string) => (engine === 'backlight' ? 'liveBuffers' : 'numTensors');
log(`\n${NAME} on ${adapterLine}; target ${targetKind}; IG ${igMethod}, zero baseline; Grad-CAM at '${layer}', upsampled; median ms per call`);
log(table(
  ['model', 'method', 'batch', 'engine', 'ms/call', 'images/s', 'vs other', 'reps', 'memory before -> after', 'flat'],
  rows.map((r) => {
    const o = rows.find((q) => q.model === r.model && q.method === r.method && q.batch === r.batch && q.engine !== r.engine);
    const k = memKey(r.engine);
    return [
      r.model, methodLabel(r.method), String(r.batch), r.engine, fmt(r.msMedian), fmt(r.imagesPerSec),
      o ? `${fmt(o.msMedian / r.msMedian)}x` : '-', `${r.reps}${r.warmup ? '' : ' (no warm-up)'}`,
      `${r.memoryBefore[k]} -> ${r.memoryAfter[k]} ${r.engine === 'backlight' ? 'buffers' : 'tensors'}`,
      r.memoryBefore[k] === r.memoryAfter[k] ? 'yes' : 'NO',
    ];
  }),
));
log("'vs other': the other engine's ms/call divided by this one's (above 1: this engine is faster)");

const loadAfter = load();
log(`\nload average (1, 5, 15 min): ${loadBefore} at the start, ${loadAfter} at the end`);

const path = writeResults(NAME, {
  name: NAME,
  date: new Date().toISOString(),
  node: process.version,
  cores: availableParallelism(),
  loadAverage: { start: loadBefore, end: loadAfter },
  models: entries.map((e) => ({ name: e.lm.name, description: e.lm.spec.description, inputShape: e.lm.spec.inputShape, classes: e.lm.spec.classes.length, parameters: e.params, weights: e.lm.path, tfjsLayers: e.tfm?.layers })),
  methods: {
    ig: `integratedGradients, ${steps} steps, ${igMethod}, zero baseline, every step of the batch in one forward/backward (backlight: explain/integratedGradients; TF.js: tf.grad at the same scaled inputs)`,
    gradcam: `gradCam at '${layer}', upsampled bilinearly to the input (backlight: explain/gradCam; TF.js: tf.grad of the head w.r.t. the feature map)`,
  },
  target: targetKind,
  timing: 'wall clock per call including the read-back of the whole result; engines\' reps interleaved A B, B A, ...; median of reps after warm-up',
  adapter: { backlight: info, tfjs: peer ? { backend: peer.backend, adapter: peer.adapter, tfjsAdapterInfo: peer.tfjsAdapterInfo, fallbackReason: peer.fallbackReason, version: peer.version } : undefined },
  options: { batches, warmup: warmupArg ?? warmupDefault, skipWarmupAboveMs: warmupArg === undefined && software ? SKIP_WARMUP_MS : undefined, budgetSecondsPerCell: budgetMs / 1000, maxReps: Object.fromEntries(batches.map((n) => [n, repsFor(n)])), full, steps, igMethod, layer, methods, engines },
  check,
  rows,
  totalSeconds: (performance.now() - t00) / 1000,
}, args.string('out'));
log(`\nwrote ${path} (${((performance.now() - t00) / 1000).toFixed(0)} s in all)`);

// Dawn's instance can keep Node's event loop alive; the work is done.
process.exit(check && !check.pass ? 1 : 0);

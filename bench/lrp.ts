// LRP throughput: images explained per second by explain/lrp (composites epsilon, epsilon-plus-flat,
// epsilon-gamma-box; BatchNorm folded) on the bundled CNNs, side by side on the same adapter with
// a plain gradient (explain/saliency, backlight) and TF.js's tf.grad of the same network (the peer;
// TF.js has no LRP). The issue's target: LRP at most about 2x the cost of a gradient.
//
//   npx tsx bench/lrp.ts [--models digits-cnn,shapes-cnn,resnet-bn] [--batches 1,16] [--reps N]
//       [--warmup N] [--budget SECONDS] [--full] [--composites epsilon,epsilon-plus-flat,...]
//       [--no-tfjs] [--weights DIR] [--out DIR]
//
// Before timing, each model's LRP on WebGPU is checked against the float64 CPU backend (within
// 1e-3 of each map's largest magnitude) and TF.js's gradient against backlight's. Each timed call
// reads its whole result back. Writes bench/results/lrp.json.
import { availableParallelism } from 'node:os';
import * as bl from '../engine/index.ts';
import * as ex from '../explain/index.ts';
import { Args } from './lib/args.ts';
import { fmt, median, table, timeReps, writeResults } from './lib/report.ts';
import { nchwToNhwc, nhwcToNchw } from './lib/smallcnn.ts';
import { setupTfjs, type TfjsPeer } from './lib/tfjs.ts';
import { loadModel, testImages, weightsDir } from './lib/explain-models.ts';
import { tfModelFrom, type TfModel } from './lib/explain-tfjs.ts';
import { loadNow, maxRelErrPerItem } from './lib/suite.ts';

const NAME = 'lrp';
const TOL = 1e-3;
const args = new Args();
// bench/run.ts passes one command line to every benchmark; other benchmarks' options are ignored.
const FOREIGN = ['steps', 'seed', 'methods', 'ig-steps', 'ig-method', 'target', 'layer', 'engines', 'peer', 'check-batch', 'no-check', 'no-f64'];
args.checkKnown([...FOREIGN, 'models', 'batches', 'reps', 'warmup', 'budget', 'full', 'composites', 'no-tfjs', 'weights', 'out']);
const full = args.flag('full');
const modelNames = args.list('models') ?? ['digits-cnn', 'shapes-cnn', 'resnet-bn'];
const composites = args.list('composites') ?? ['epsilon', 'epsilon-plus-flat', 'epsilon-gamma-box'];
for (const c of composites) if (!ex.COMPOSITES[c]) throw new Error(`--composites: unknown composite '${c}' (${Object.keys(ex.COMPOSITES).join(', ')})`);
const log = (s = '') => console.log(s);
const load = loadNow;
const loadBefore = load();

const backend = await bl.init();
const info = backend.info;
const software = !!info.software;
const batches = args.list('batches')?.map(Number) ?? (full || !software ? [1, 16, 64, 256] : [1, 16]);
const reps = args.int('reps') ?? (software ? 3 : 10);
const warmup = args.int('warmup') ?? 1;
const budget = (args.int('budget') ?? (software ? 30 : 60)) * 1000;
log(`${NAME}: LRP (${composites.join(', ')}) vs a plain gradient on ${modelNames.join(', ')}; batches ${batches.join(', ')}; Node ${process.version}`);
log(`backlight adapter: ${info.vendor} / ${info.architecture} / ${info.device} / ${info.description}${info.software ? ' (software)' : ''}`);

let peer: TfjsPeer | undefined;
if (!args.flag('no-tfjs')) {
  peer = await setupTfjs('webgpu');
  const a = peer.adapter;
  log(peer.backend === 'webgpu' && a ? `TF.js ${peer.version} adapter: ${a.vendor} / ${a.architecture} / ${a.device} / ${a.description}` : `TF.js ${peer.version}: '${peer.backend}' backend (${peer.fallbackReason ?? ''})`);
}
const tf = peer?.tf;
const cpu = await bl.init({ backend: 'cpu', setDefault: false });
const wdir = weightsDir(args.string('weights'));

/** The worst over items of max|a - ref| / max|ref|. */
const mapErr = maxRelErrPerItem;

type Row = { model: string; batch: number; method: string; engine: string; ms: number; imgPerS: number; vsGradient: number | null };
const rows: Row[] = [];
const checks: Record<string, number> = {};

for (const name of modelNames) {
  const lm = loadModel(name, wdir);
  const lmCpu = bl.withBackend(cpu, () => loadModel(name, wdir));
  const host = new Map<string, Float32Array>();
  for (const [k, t] of lm.model.stateDict()) host.set(k, Float32Array.from(await t.data()));
  const tfm: TfModel | undefined = tf ? tfModelFrom(tf, lm.model, host, 'features') : undefined;
  const maxBatch = Math.max(...batches);
  const images = testImages(lm.spec, maxBatch);
  const per = images.x.length / images.shape[0];
  const labels = Array.from(images.labels);
  // correctness first: WebGPU vs float64 CPU for each composite, TF.js gradient vs ours
  {
    const n = Math.min(4, maxBatch);
    const xs = images.x.subarray(0, n * per);
    const shape = [n, ...images.shape.slice(1)];
    for (const c of composites) {
      const g = await (await ex.lrp(lm.model, bl.tensor(xs, shape), { target: labels.slice(0, n), composite: c })).data();
      const r = await (await ex.lrp(lmCpu.model, bl.tensor(xs, shape, cpu), { target: labels.slice(0, n), composite: c })).data();
      const e = mapErr(g, r, n);
      checks[`${name} lrp ${c} webgpu vs cpu`] = e;
      if (!(e <= TOL)) throw new Error(`${name} ${c}: WebGPU LRP differs from the float64 CPU backend by ${e} (tolerance ${TOL})`);
    }
    if (tf && tfm) {
      const ours = await (await ex.saliency(lm.model, bl.tensor(xs, shape), { target: labels.slice(0, n), abs: false })).data();
      const oh = tf.oneHot(tf.tensor1d(labels.slice(0, n), 'int32'), lm.spec.classes.length);
      const xt = tf.tensor4d(nchwToNhwc(xs, shape), [n, shape[2], shape[3], shape[1]]);
      const gt = tf.grad((p) => tf.sum(tf.mul(tfm.forward(p), oh)))(xt);
      const theirs = nhwcToNchw(await gt.data() as Float32Array, shape);
      const e = mapErr(theirs, ours, n);
      checks[`${name} gradient tfjs vs backlight`] = e;
      if (!(e <= TOL)) throw new Error(`${name}: TF.js's gradient differs from backlight's by ${e}`);
      tf.dispose([oh, xt, gt]);
    }
  }
  for (const batch of batches) {
    const xs = images.x.subarray(0, batch * per);
    const shape = [batch, ...images.shape.slice(1)];
    const target = labels.slice(0, batch);
    const x = bl.tensor(xs, shape);
    const time = async (step: () => Promise<void>) => {
      const t0 = performance.now();
      const ts: number[] = [];
      for (let i = 0; i < warmup; i++) await step();
      for (let i = 0; i < reps && (i === 0 || performance.now() - t0 < budget); i++) ts.push(...(await timeReps(step, 0, 1)));
      return median(ts);
    };
    const grad = await time(async () => {
      const r = await ex.saliency(lm.model, x, { target, abs: false });
      await r.data();
      r.dispose();
    });
    rows.push({ model: name, batch, method: 'gradient', engine: 'backlight', ms: grad, imgPerS: (1000 * batch) / grad, vsGradient: 1 });
    if (tf && tfm) {
      const xt = tf.tensor4d(nchwToNhwc(xs, shape), [batch, shape[2], shape[3], shape[1]]);
      const oh = tf.oneHot(tf.tensor1d(target, 'int32'), lm.spec.classes.length);
      const ms = await time(async () => {
        const g = tf.grad((p) => tf.sum(tf.mul(tfm.forward(p), oh)))(xt);
        await g.data();
        g.dispose();
      });
      rows.push({ model: name, batch, method: 'gradient', engine: peer!.label, ms, imgPerS: (1000 * batch) / ms, vsGradient: ms / grad });
      tf.dispose([xt, oh]);
    }
    for (const c of composites) {
      const ms = await time(async () => {
        const r = await ex.lrp(lm.model, x, { target, composite: c });
        await r.data();
        r.dispose();
      });
      rows.push({ model: name, batch, method: `lrp ${c}`, engine: 'backlight', ms, imgPerS: (1000 * batch) / ms, vsGradient: ms / grad });
    }
    x.dispose();
    log(`  ${name} batch ${batch} done`);
  }
  tfm?.weights.forEach((w) => w.dispose());
}

log('');
log(table(['model', 'batch', 'method', 'engine', 'ms', 'img/s', 'time / backlight gradient'], rows.map((r) => [r.model, String(r.batch), r.method, r.engine, fmt(r.ms), fmt(r.imgPerS), r.vsGradient === null ? '-' : fmt(r.vsGradient)])));
log(`checks (max relative map error): ${Object.entries(checks).map(([k, v]) => `${k} ${v.toExponential(1)}`).join('; ')}`);
log(`load average before ${loadBefore}, after ${load()} (${availableParallelism()} cores)`);
const file = writeResults(NAME, { adapter: info, tfjs: peer ? { version: peer.version, backend: peer.backend, adapter: peer.adapter } : null, batches, reps, composites, checks, rows, loadBefore, loadAfter: load() }, args.string('out'));
log(`wrote ${file}`);

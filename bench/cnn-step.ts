// The small CNN of ../shared/device/torch_reference.py (3x32x32 -> conv32 conv32 pool conv64
// conv64 pool gap fc10, bench/lib/smallcnn.ts) with the same seeded weights on every engine:
//   forward       logits at batch 1, 64, 1024, read back (what an explainer's model call is);
//                 peers TF.js WebGPU (same adapter) and an onnxruntime-node CPU session of the
//                 same weights (exported by bench/lib/onnx-export.ts);
//   train         forward + backward of mean softmax cross-entropy w.r.t. every weight, batch 64;
//   saliency      gradient of the summed logit 0 w.r.t. the input, batch 64 (--full).
// Before timing, every engine's logits and gradients at batch 4 are checked against backlight's
// float64 CPU backend (the timed batches run the same kernels on larger grids).
//
//   npx tsx bench/cnn-step.ts [--full] [--batches 1,64,1024] [--steps forward,train,saliency]
//       [--budget S] [--no-tfjs] [--no-ort] [--seed S] [--out DIR]
//
// Writes bench/results/cnn-step.json. Packable for a lent GPU: ../shared/device/pack.sh bench/cnn-step.ts
import * as bl from '../engine/index.ts';
import { Sequential } from '../models/containers.ts';
import { Conv2d, GlobalAvgPool, Linear, MaxPool2d, ReLU } from '../models/layers.ts';
import { Args } from './lib/args.ts';
import { exportOnnx } from './lib/onnx-export.ts';
import { loadOrt } from './lib/ort.ts';
import {
  CLASSES, IMAGE, PARAMS, blForward, blLoss, blScore, flopsPerImage, hwioToOihw, initParams, makeBatch, nchwToNhwc, nhwcToNchw,
  tfForward, tfLoss, tfParams, tfScore,
} from './lib/smallcnn.ts';
import { finishStep, progress, maxRelErr, measure, openStep, rowsOf, type BenchRow, type Contender, type Measured } from './lib/suite.ts';
import { tfSync, type Tf } from './lib/tfjs.ts';

const args = new Args();
args.checkKnown(['full', 'batches', 'steps', 'budget', 'no-tfjs', 'no-ort', 'seed', 'out']);
const full = args.flag('full');
const seed = args.int('seed') ?? 1234;
type StepKind = 'forward' | 'train' | 'saliency';
const steps = (args.list('steps') ?? (full ? ['forward', 'train', 'saliency'] : ['forward', 'train'])) as StepKind[];
for (const k of steps) if (!['forward', 'train', 'saliency'].includes(k)) throw new Error(`--steps: unknown step '${k}' (forward, train, saliency)`);

const gradBatch = 64;
const budget = args.int('budget') ?? 10;

const s = await openStep('cnn-step', { tfjs: !args.flag('no-tfjs') });
// Batch 1024 is 50 GFLOP per engine call: tens of seconds to minutes on a software adapter on 2
// cores, so there the default run stops at 256 and --full adds 1024.
const fwdBatches = args.ints('batches') ?? (s.info.software && !full ? [1, 64, 256] : [1, 64, 1024]);
if (s.info.software && !full && !args.has('batches')) console.log('software adapter: forward at batch 1, 64, 256 (batch 1024 with --full)');
const { backend, cpu, tf } = s;
type TfT = ReturnType<Tf['tensor']>;

// ---- the same weights everywhere ----

const hostParams = initParams(seed);
const blParams = hostParams.map((a, i) => bl.tensor(a, PARAMS[i].shape));
const cpuParams = hostParams.map((a, i) => bl.tensor(a, PARAMS[i].shape, cpu));
const tfVars = tf ? tfParams(tf, hostParams) : [];

// onnxruntime: the network as project layers (built on the CPU backend, only to be exported).
let ortSession: { run: (x: Float32Array, n: number) => Promise<Float32Array> } | undefined;
let ortReason: string | undefined;
if (!args.flag('no-ort')) {
  const ort = await loadOrt();
  if (typeof ort === 'string') ortReason = ort;
  else {
    const model = bl.withBackend(cpu, () => new Sequential(
      new Conv2d(3, 32, 3, { padding: 1 }), new ReLU(), new Conv2d(32, 32, 3, { padding: 1 }), new ReLU(), new MaxPool2d({ kernel: 2 }),
      new Conv2d(32, 64, 3, { padding: 1 }), new ReLU(), new Conv2d(64, 64, 3, { padding: 1 }), new ReLU(), new MaxPool2d({ kernel: 2 }),
      new GlobalAvgPool(), new Linear(64, CLASSES),
    ));
    // PARAMS' order is the layers' order: conv1..conv4 (weight, bias), fc (weight, bias).
    const names = ['0', '2', '5', '7', '11'].flatMap((l) => [`${l}.weight`, `${l}.bias`]);
    const hostMap = new Map(names.map((n, i) => [n, hostParams[i]]));
    const session = await ort.InferenceSession.create(exportOnnx(model, hostMap, IMAGE, CLASSES), { executionProviders: ['cpu'] });
    model.dispose();
    ortSession = {
      run: async (x, n) => {
        const r = await session.run({ input: new ort.Tensor('float32', x, [n, ...IMAGE]) });
        return r[session.outputNames[0]].data as Float32Array;
      },
    };
    console.log(`onnxruntime-node ${ort.env.versions?.common ?? ''} (CPU execution provider)`);
  }
} else ortReason = 'not run (--no-ort)';

// ---- each engine's step, returning the quantities to check ----

const f32 = async (t: bl.Tensor) => Float32Array.from(await t.data());

async function blStep(kind: StepKind, b: bl.Backend, ps: bl.Tensor[], x: Float32Array, oh: Float32Array, n: number): Promise<Float32Array[]> {
  return bl.withBackend(b, async () => {
    const xt = bl.tensor(x, [n, ...IMAGE]);
    const ot = bl.tensor(oh, [n, CLASSES]);
    const outs = bl.tidy(() => {
      if (kind === 'forward') return [blForward(xt, ps)];
      if (kind === 'train') {
        const [loss, grads] = bl.valueAndGrad((...ws: bl.Tensor[]) => blLoss(xt, ot, ws))(...ps);
        return [loss, ...grads];
      }
      const [v, [g]] = bl.valueAndGrad((xx: bl.Tensor) => blScore(xx, ps))(xt);
      return [v, g];
    });
    const r = await Promise.all(outs.map(f32));
    [...outs, xt, ot].forEach((t) => t.dispose());
    return r;
  });
}

function tfCompute(t: Tf, kind: StepKind, x: TfT, oh: TfT): TfT[] {
  return t.tidy(() => {
    if (kind === 'forward') return [tfForward(t, x, tfVars)];
    if (kind === 'train') {
      const { value, grads } = t.variableGrads(() => tfLoss(t, x, oh, tfVars), tfVars);
      return [value, ...PARAMS.map((p) => grads[p.name])];
    }
    const r = t.valueAndGrad((xx: TfT) => tfScore(t, xx, tfVars))(x);
    return [r.value, r.grad];
  });
}

const tfX = (t: Tf, x: Float32Array, n: number) => t.tensor4d(nchwToNhwc(x, [n, ...IMAGE]), [n, IMAGE[1], IMAGE[2], IMAGE[0]]);

/** TF.js's outputs in backlight's layouts (OIHW filters, NCHW gradients). */
async function tfStep(kind: StepKind, x: Float32Array, oh: Float32Array, n: number): Promise<Float32Array[]> {
  const t = tf!;
  const xt = tfX(t, x, n), ot = t.tensor2d(oh, [n, CLASSES]);
  const outs = tfCompute(t, kind, xt, ot);
  const r = await Promise.all(outs.map(async (o, i) => {
    const d = Float32Array.from((await o.data()) as Float32Array);
    if (kind === 'train' && i > 0 && PARAMS[i - 1].shape.length === 4) return hwioToOihw(d, PARAMS[i - 1].shape);
    if (kind === 'saliency' && i === 1) return nhwcToNchw(d, [n, ...IMAGE]);
    return d;
  }));
  t.dispose([...outs, xt, ot]);
  return r;
}

/** The worst relative error over the step's outputs (each output against its own scale). */
const worst = (a: Float32Array[], ref: Float32Array[]) => Math.max(...ref.map((r, i) => maxRelErr(a[i] ?? [], r)));

// ---- check at batch 4, then time ----

const CHECK_N = 4;
const rows: BenchRow[] = [];
const label: Record<StepKind, string> = { forward: 'small CNN forward', train: 'small CNN forward+backward (train step)', saliency: 'small CNN saliency (input gradient)' };

for (const kind of steps) {
  const cb = makeBatch(CHECK_N, seed + 1);
  const ref = await blStep(kind, cpu, cpuParams, cb.x, cb.oneHot, CHECK_N);
  const checked = worst(await blStep(kind, backend, blParams, cb.x, cb.oneHot, CHECK_N), ref);
  const peerChecked: Record<string, number> = {};
  if (tf) peerChecked['tfjs-webgpu'] = worst(await tfStep(kind, cb.x, cb.oneHot, CHECK_N), ref);
  if (kind === 'forward' && ortSession) peerChecked['ort-cpu'] = maxRelErr(await ortSession.run(cb.x, CHECK_N), ref[0]);

  for (const n of kind === 'forward' ? fwdBatches : [gradBatch]) {
    const b = makeBatch(n, seed + 2);
    const m: Measured = {
      group: 'cnn', name: label[kind], shape: `${n}x${IMAGE.join('x')}`, adapter: s.adapter, items: n,
      flops: n * (kind === 'forward' ? flopsPerImage('saliency') / 2 : flopsPerImage(kind === 'train' ? 'train' : 'saliency')),
      peers: {}, checked, peerChecked, checkedAt: n === CHECK_N ? undefined : `batch ${CHECK_N}`,
    };
    const xt = bl.tensor(b.x, [n, ...IMAGE]), ot = bl.tensor(b.oneHot, [n, CLASSES]);
    const cs: Contender[] = [{
      engine: 'ours',
      run: async () => {
        const outs = bl.tidy(() => {
          if (kind === 'forward') return [blForward(xt, blParams)];
          if (kind === 'train') {
            const [loss, grads] = bl.valueAndGrad((...ws: bl.Tensor[]) => blLoss(xt, ot, ws))(...blParams);
            return [loss, ...grads];
          }
          const [v, [g]] = bl.valueAndGrad((xx: bl.Tensor) => blScore(xx, blParams))(xt);
          return [v, g];
        });
        // A forward call reads its logits back (an explainer needs them); gradient steps wait for
        // every gradient to be computed (sync submits pending fused chains too).
        if (kind === 'forward') await outs[0].data();
        else await backend.sync();
        outs.forEach((o) => o.dispose());
      },
    }];
    let tx: TfT | undefined, tot: TfT | undefined;
    if (tf) {
      tx = tfX(tf, b.x, n);
      tot = tf.tensor2d(b.oneHot, [n, CLASSES]);
      cs.push({
        engine: 'tfjs-webgpu',
        run: async () => {
          const outs = tfCompute(tf, kind, tx!, tot!);
          if (kind === 'forward') await outs[0].data();
          else await tfSync(tf);
          tf.dispose(outs);
        },
      });
    } else m.peers['tfjs-webgpu'] = s.peerReason ?? 'TF.js unavailable';
    if (kind === 'forward') {
      if (ortSession) cs.push({ engine: 'ort-cpu', run: async () => void (await ortSession!.run(b.x, n)) });
      else m.peers['ort-cpu'] = ortReason ?? 'onnxruntime unavailable';
    }
    // Batch 1024 forward on a software adapter takes tens of seconds per call: its pipelines are
    // the batch-64 ones (shapes are uniforms), so it runs without a warm-up, one rep per engine.
    const big = s.info.software && n * flopsPerImage('saliency') > 20e9;
    try {
      const t = await measure(cs, big ? { warmup: 0, reps: 1 } : { budget, reps: 5 });
      m.ours = t.get('ours');
      for (const [k, v] of t) if (k !== 'ours') m.peers[k] = v;
      if (big) m.note = 'one rep, no warm-up (pipelines compiled at the smaller batches)';
    } catch (e) {
      m.error = (e as Error).message.split('\n')[0];
    }
    [xt, ot].forEach((q) => q.dispose());
    if (tx) tf!.dispose([tx, tot!]);
    const r = rowsOf(m);
    rows.push(...r);
    progress(s, rows, args.string('out'));
    console.log(`  ${label[kind]} batch ${n}: ${r.map((q) => `${q.peer ?? '-'} ${q.peer_ms?.toFixed(1) ?? '-'} ms`).join(', ')}; ours ${r[0].ours_ms?.toFixed(1) ?? '-'} ms; checked ${checked.toExponential(1)}`);
  }
}

finishStep(s, rows, {
  model: 'conv(3,32,3,p1) relu conv(32,32,3,p1) relu maxpool2 conv(32,64,3,p1) relu conv(64,64,3,p1) relu maxpool2 gap linear(64,10); input 3x32x32',
  options: { full, steps, fwdBatches, gradBatch, budget, seed },
}, args.string('out'));
process.exit(0);

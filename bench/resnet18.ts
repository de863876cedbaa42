// A ResNet-18 (torchvision's layout: 7x7/2 stem, 3x3/2 max pool, four stages of two BasicBlocks,
// global average pool, fc 1000) built from the project's own layers with seeded random weights
// and randomised BatchNorm statistics, on 224x224 RGB inputs:
//   forward                        logits at batch 1 and 8, read back;
//   forward+backward               the input gradient of the summed target logit (a saliency
//                                  map, what an explainer at full size runs), read back, batch 1
//                                  (and 8 with --full).
// Peers: TF.js's WebGPU backend on the same adapter (the same network rebuilt from the state dict,
// bench/lib/explain-tfjs.ts), and an onnxruntime-node CPU session of the same weights for the
// forward rows (bench/lib/onnx-export.ts). Checked before timing against the float64 CPU backend
// at 1x3x64x64 (the same layers; 224x224 costs the CPU backend minutes), and at the timed 224x224
// batch-1 forward against onnxruntime (an independent float32 implementation).
//
//   npx tsx bench/resnet18.ts [--full] [--batches 1,8] [--budget S] [--no-tfjs] [--no-ort] [--out DIR]
//
// Writes bench/results/resnet18.json. Packable for a lent GPU: ../shared/device/pack.sh bench/resnet18.ts
import * as bl from '../engine/index.ts';
import { Residual, Sequential } from '../models/containers.ts';
import { BatchNorm2d, Conv2d, GlobalAvgPool, Linear, MaxPool2d, ReLU } from '../models/layers.ts';
import type { Module } from '../models/module.ts';
import { Args } from './lib/args.ts';
import { tfModelFrom, type TfModel } from './lib/explain-tfjs.ts';
import { exportOnnx } from './lib/onnx-export.ts';
import { loadOrt } from './lib/ort.ts';
import { normal, uniform } from './lib/rng.ts';
import { nchwToNhwc, nhwcToNchw } from './lib/smallcnn.ts';
import { finishStep, progress, maxRelErr, maxRelErrPerItem, measure, openStep, rowsOf, type BenchRow, type Contender, type Measured } from './lib/suite.ts';
import type { Tf } from './lib/tfjs.ts';

const args = new Args();
args.checkKnown(['full', 'batches', 'budget', 'no-tfjs', 'no-ort', 'out']);
const full = args.flag('full');
const batches = args.ints('batches') ?? [1, 8];
const gradBatches = full ? batches : batches.filter((n) => n === 1);
const budget = args.int('budget') ?? 15;
const SIZE = 224, CHECK_SIZE = 64, CLASSES = 1000, TARGET = 7;

const s = await openStep('resnet18', { tfjs: !args.flag('no-tfjs') });
const { backend, cpu, tf } = s;
type TfT = ReturnType<Tf['tensor']>;

// ---- the network ----

function basicBlock(cin: number, cout: number, stride: number): Module {
  const body = new Sequential(
    new Conv2d(cin, cout, 3, { stride, padding: 1, bias: false }), new BatchNorm2d(cout), new ReLU(),
    new Conv2d(cout, cout, 3, { padding: 1, bias: false }), new BatchNorm2d(cout),
  );
  const shortcut = stride !== 1 || cin !== cout ? new Sequential(new Conv2d(cin, cout, 1, { stride, bias: false }), new BatchNorm2d(cout)) : undefined;
  // torchvision's BasicBlock: relu(body(x) + shortcut(x)).
  return new Sequential(new Residual(body, shortcut), new ReLU());
}

function resnet18(): Sequential {
  const features = new Sequential(
    new Conv2d(3, 64, 7, { stride: 2, padding: 3, bias: false }), new BatchNorm2d(64), new ReLU(), new MaxPool2d({ kernel: 3, stride: 2, padding: 1 }),
    basicBlock(64, 64, 1), basicBlock(64, 64, 1), basicBlock(64, 128, 2), basicBlock(128, 128, 1),
    basicBlock(128, 256, 2), basicBlock(256, 256, 1), basicBlock(256, 512, 2), basicBlock(512, 512, 1),
  );
  return new Sequential(['features', features], ['pool', new GlobalAvgPool()], ['fc', new Linear(512, CLASSES)]);
}

/** Seeded weights: convs Kaiming-normal (fan out, as torchvision), BatchNorm affine and running statistics random (so they matter), fc uniform. */
function hostWeights(model: Module): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  let k = 0;
  for (const [name, t] of model.stateDict()) {
    const n = t.size, seed = 1301 + 7919 * k++;
    let v: Float32Array;
    if (name.endsWith('running_var')) v = uniform(n, 0.5, 1.5, seed);
    else if (name.endsWith('running_mean')) v = uniform(n, -0.2, 0.2, seed);
    else if (t.rank === 4) {
      const std = Math.sqrt(2 / (t.shape[0] * t.shape[2] * t.shape[3]));
      v = normal(n, seed).map((z) => z * std);
    } else if (name.startsWith('fc.')) v = uniform(n, -1 / Math.sqrt(512), 1 / Math.sqrt(512), seed);
    else if (name.endsWith('weight')) v = uniform(n, 0.5, 1.5, seed); // BatchNorm gamma
    else v = uniform(n, -0.1, 0.1, seed); // BatchNorm beta
    out.set(name, v);
  }
  return out;
}

function build(b: bl.Backend, host: Map<string, Float32Array>): Sequential {
  return bl.withBackend(b, () => {
    const m = resnet18().eval();
    m.loadStateDict(new Map([...m.stateDict()].map(([k, t]) => [k, bl.tensor(host.get(k)!, t.shape)])));
    return m;
  });
}

/** Multiply-adds of the convolutions and the fc layer for one [c, h, w] input. */
function macs(m: Module, shape: number[]): { macs: number; out: number[] } {
  if (m instanceof Sequential) return m.layers.reduce((acc, l) => { const r = macs(l, acc.out); return { macs: acc.macs + r.macs, out: r.out }; }, { macs: 0, out: shape });
  if (m instanceof Residual) {
    const a = macs(m.block, shape), b = m.shortcut ? macs(m.shortcut, shape) : { macs: 0, out: shape };
    return { macs: a.macs + b.macs, out: a.out };
  }
  const [c, h, w] = shape;
  const conv = (o: number, k: number, st: number, p: number) => {
    const oh = Math.floor((h + 2 * p - k) / st) + 1, ow = Math.floor((w + 2 * p - k) / st) + 1;
    return { oh, ow, macs: o * oh * ow * c * k * k };
  };
  if (m instanceof Conv2d) {
    const wt = m.stateDict().get(`${m.path}.weight`)!;
    const st = Number(m.opts.stride ?? 1), p = Number(m.opts.padding ?? 0);
    const r = conv(m.outChannels, wt.shape[2], st, p);
    return { macs: r.macs, out: [m.outChannels, r.oh, r.ow] };
  }
  if (m instanceof MaxPool2d) {
    const r = conv(c, Number(m.opts.kernel), Number(m.opts.stride), Number(m.opts.padding ?? 0));
    return { macs: 0, out: [c, r.oh, r.ow] };
  }
  if (m instanceof GlobalAvgPool) return { macs: 0, out: [c] };
  if (m instanceof Linear) return { macs: m.inFeatures * m.outFeatures, out: [m.outFeatures] };
  return { macs: 0, out: shape };
}

const host = hostWeights(bl.withBackend(cpu, () => resnet18()));
const model = build(backend, host);
const cpuModel = build(cpu, host);
const fwdFlops = 2 * macs(model, [3, SIZE, SIZE]).macs;
console.log(`ResNet-18: ${[...host.values()].reduce((a, v) => a + v.length, 0)} weights, ${(fwdFlops / 1e9).toFixed(2)} GFLOP per 224x224 forward`);

let tfm: TfModel | undefined;
if (tf) tfm = tfModelFrom(tf, model, host, 'features');

let ort: { run: (x: Float32Array, n: number, size: number) => Promise<Float32Array> } | undefined;
let ortReason: string | undefined;
if (!args.flag('no-ort')) {
  const o = await loadOrt();
  if (typeof o === 'string') ortReason = o;
  else {
    // The batch and the spatial size are symbolic in the export, so one session serves both sizes.
    const onnx = exportOnnx(model, host, [3, 'H', 'W'], CLASSES);
    const session = await o.InferenceSession.create(onnx, { executionProviders: ['cpu'] });
    console.log(`onnxruntime-node ${o.env.versions?.common ?? ''} (CPU execution provider); ONNX ${(onnx.length / 2 ** 20).toFixed(1)} MiB`);
    ort = {
      run: async (x, n, size) => {
        const r = await session.run({ input: new o.Tensor('float32', x, [n, 3, size, size]) });
        return r[session.outputNames[0]].data as Float32Array;
      },
    };
  }
} else ortReason = 'not run (--no-ort)';

// ---- the two computations on each engine ----

type Kind = 'forward' | 'gradient';
const blCompute = (m: Module, x: bl.Tensor, kind: Kind): bl.Tensor =>
  bl.tidy(() => {
    if (kind === 'forward') return m.call(x);
    const n = x.shape[0];
    return bl.grad((xx: bl.Tensor) => bl.sum(bl.slice(m.call(xx), [0, TARGET], [n, 1])))(x);
  });
const tfCompute = (x: TfT, kind: Kind): TfT =>
  tf!.tidy(() => {
    if (kind === 'forward') return tfm!.forward(x);
    const n = x.shape[0];
    return tf!.grad((p: TfT) => tf!.sum(tf!.slice(tfm!.forward(p), [0, TARGET], [n, 1])))(x);
  });
const tfInput = (x: Float32Array, n: number, size: number) => tf!.tensor4d(nchwToNhwc(x, [n, 3, size, size]), [n, size, size, 3]);
const tfOut = async (t: TfT, kind: Kind, n: number, size: number) => {
  const d = Float32Array.from((await t.data()) as Float32Array);
  return kind === 'forward' ? d : nhwcToNchw(d, [n, 3, size, size]);
};
const images = (n: number, size: number, seed: number) => normal(n * 3 * size * size, seed);

// ---- checks: float64 CPU at 64x64, onnxruntime at 224x224 ----

const checks: Record<Kind, { checked: number; peer: Record<string, number> }> = { forward: { checked: NaN, peer: {} }, gradient: { checked: NaN, peer: {} } };
{
  const n = 1;
  const x = images(n, CHECK_SIZE, 5);
  for (const kind of ['forward', 'gradient'] as Kind[]) {
    const t0 = performance.now();
    const cr = blCompute(cpuModel, bl.tensor(x, [n, 3, CHECK_SIZE, CHECK_SIZE], cpu), kind);
    const ref = await cr.data();
    cr.dispose();
    const ours = blCompute(model, bl.tensor(x, [n, 3, CHECK_SIZE, CHECK_SIZE]), kind);
    checks[kind].checked = maxRelErrPerItem(await ours.data(), ref, n);
    ours.dispose();
    if (tfm) {
      const tx = tfInput(x, n, CHECK_SIZE), ty = tfCompute(tx, kind);
      checks[kind].peer['tfjs-webgpu'] = maxRelErrPerItem(await tfOut(ty, kind, n, CHECK_SIZE), ref, n);
      tf!.dispose([tx, ty]);
    }
    if (kind === 'forward' && ort) checks[kind].peer['ort-cpu'] = maxRelErr(await ort.run(x, n, CHECK_SIZE), ref);
    console.log(`  check ${kind} at ${n}x3x${CHECK_SIZE}x${CHECK_SIZE} vs cpu-f64: ours ${checks[kind].checked.toExponential(1)}, ${Object.entries(checks[kind].peer).map(([k, v]) => `${k} ${v.toExponential(1)}`).join(', ')} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  }
}
let vsOrt224: number | undefined;
if (ort) {
  const x = images(1, SIZE, 6);
  const ours = blCompute(model, bl.tensor(x, [1, 3, SIZE, SIZE]), 'forward');
  vsOrt224 = maxRelErr(await ours.data(), await ort.run(x, 1, SIZE));
  ours.dispose();
  console.log(`  check forward at 1x3x224x224 vs onnxruntime: ${vsOrt224.toExponential(1)}`);
}

// ---- timing ----

const rows: BenchRow[] = [];
const label: Record<Kind, string> = { forward: 'ResNet-18 forward', gradient: 'ResNet-18 forward+backward (input gradient)' };
for (const kind of ['forward', 'gradient'] as Kind[]) {
  for (const n of kind === 'forward' ? batches : gradBatches) {
    const x = images(n, SIZE, 100 + n);
    const m: Measured = {
      group: 'resnet18', name: label[kind], shape: `${n}x3x${SIZE}x${SIZE}`, adapter: s.adapter, items: n,
      flops: n * fwdFlops * (kind === 'forward' ? 1 : 2), peers: {},
      checked: checks[kind].checked, peerChecked: checks[kind].peer, checkedAt: `1x3x${CHECK_SIZE}x${CHECK_SIZE}`,
      note: kind === 'forward' && vsOrt224 !== undefined ? `224x224 forward vs onnxruntime ${vsOrt224.toExponential(1)}` : undefined,
    };
    const bx = bl.tensor(x, [n, 3, SIZE, SIZE]);
    const cs: Contender[] = [{ engine: 'ours', run: async () => { const r = blCompute(model, bx, kind); await r.data(); r.dispose(); } }];
    let tx: TfT | undefined;
    if (tfm) {
      tx = tfInput(x, n, SIZE);
      cs.push({ engine: 'tfjs-webgpu', run: async () => { const r = tfCompute(tx!, kind); await r.data(); r.dispose(); } });
    } else m.peers['tfjs-webgpu'] = s.peerReason ?? 'TF.js unavailable';
    if (kind === 'forward') {
      if (ort) cs.push({ engine: 'ort-cpu', run: async () => void (await ort!.run(x, n, SIZE)) });
      else m.peers['ort-cpu'] = ortReason ?? 'onnxruntime unavailable';
    }
    // On a software adapter a batch-8 call takes tens of seconds: its pipelines are batch 1's
    // (shapes are uniforms), so it runs one rep without a warm-up.
    const big = s.info.software && n > 1;
    try {
      const t = await measure(cs, big ? { warmup: 0, reps: 1 } : { budget, reps: s.info.software ? 3 : 10 });
      m.ours = t.get('ours');
      for (const [k, v] of t) if (k !== 'ours') m.peers[k] = v;
      if (big) m.note = [m.note, 'one rep, no warm-up (pipelines compiled at batch 1)'].filter(Boolean).join('; ');
    } catch (e) {
      m.error = (e as Error).message.split('\n')[0];
    }
    bx.dispose();
    tx?.dispose();
    const r = rowsOf(m);
    rows.push(...r);
    progress(s, rows, args.string('out'));
    console.log(`  ${label[kind]} batch ${n}: ours ${r[0].ours_ms?.toFixed(0) ?? '-'} ms; ${r.map((q) => `${q.peer ?? '-'} ${q.peer_ms?.toFixed(0) ?? '-'} ms`).join(', ')}`);
  }
}

finishStep(s, rows, {
  model: 'ResNet-18 (torchvision layout) from models/ layers, seeded weights, random BatchNorm statistics, eval mode',
  gflopPerImage: fwdFlops / 1e9, target: TARGET, checkSize: CHECK_SIZE, forwardVsOrt224: vsOrt224,
  options: { full, batches, gradBatches, budget },
}, args.string('out'));
process.exit(0);

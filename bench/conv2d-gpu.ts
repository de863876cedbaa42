// The implicit-GEMM conv kernels (shaders/conv2d-gpu.ts: forward, backprop-input, split-K
// backprop-filter, each block configuration) against the backend's register-tiled conv kernels (through
// bl.conv2d / bl.conv2dBackpropInput / bl.conv2dBackpropFilter) and TF.js's WebGPU backend (NHWC,
// inputs converted once, outside the timing, as bench/kernels.ts) on the same adapter.
// Standalone (not a suite step). Every contender's result is checked on the first and last
// CHECK elements of its output (whole output buffer order, NCHW / OIHW) against a float64 JS
// reference computed from the definition before timing; a timed call records `--inner` ops and
// waits for the GPU (no read-back). GFLOP/s = 2 N O OH OW (C/groups) KH KW / time, for each op.
// backprop-filter's time for our kernel covers the partial sums [S, O, Cg, KH, KW] only; adding
// them (the backend's sum reduction, S * |dw| floats read) is not included.
//
//   npx tsx bench/conv2d-gpu.ts [--layers all|a,b] [--ops forward,input,filter] [--configs all|a,b] [--inner N] [--budget S] [--reps N] [--no-tfjs] [--out DIR]
//
// Layers: on a GPU the ResNet ones (64x56x56 -> 64 k3 at batch 1 and 32, 256x14x14 -> 256 k3 at
// batch 32, the 7x7/2 stem at batch 32) and a small CNN's (16x32x32 -> 32 k3 at batch 1024); on a
// software adapter small ones. Writes bench/results/conv2d-gpu.json (or DIR/conv2d-gpu.json). On
// a lent GPU machine:
//   bash bench/gpu.sh    (here; then carry [".gpu"])
//   bash .gpu/run.sh .gpu/conv2d-gpu.mjs --out $OUT    (there)
import * as bl from '../engine/index.ts';
import type { WebGpuBackend } from '../engine/webgpu/backend.ts';
import type { GpuBuf } from '../engine/webgpu/runtime.ts';
import { Args } from './lib/args.ts';
import { mulberry32 } from './lib/rng.ts';
import { hwioToOihw, nchwToNhwc, nhwcToNchw, oihwToHwio } from './lib/smallcnn.ts';
import { finishStep, maxRelErr, measure, progress, openStep, rowsOf, type BenchRow, type Contender, type Measured } from './lib/suite.ts';
import { tfSync, type Tf } from './lib/tfjs.ts';
import {
  CONV_GPU_CONFIGS, conv2dGpuBackpropFilterWorkgroups, conv2dGpuBackpropInputWorkgroups, conv2dGpuFilterSplit, conv2dGpuFor, conv2dGpuOptions,
  conv2dGpuWorkgroupBytes, conv2dGpuWorkgroups, packConv2dGpu, packConv2dGpuBackpropFilter, packConv2dGpuBackpropInput,
  type ConvGpuConfig, type ConvGpuKind, type ConvGpuParams, type ConvGpuShapes,
} from '../shaders/conv2d-gpu.ts';

const args = new Args();
args.checkKnown(['layers', 'ops', 'configs', 'inner', 'budget', 'reps', 'no-tfjs', 'out']);
const s = await openStep('conv2d-gpu', { tfjs: !args.flag('no-tfjs') });
const backend = s.backend as WebGpuBackend;
if (backend.name !== 'webgpu') throw new Error('bench/conv2d-gpu.ts needs the WebGPU backend');
const rt = backend.rt;
const software = s.info.software;
const tf = s.peerReason ? undefined : s.tf;

interface Layer { name: string; N: number; C: number; H: number; W: number; O: number; k: number; stride: number; pad: number }
const L = (name: string, N: number, C: number, H: number, W: number, O: number, k: number, stride = 1, pad = (k - 1) / 2): Layer => ({ name, N, C, H, W, O, k, stride, pad });
const gpuLayers = [
  L('resnet-64-b1', 1, 64, 56, 56, 64, 3), L('resnet-64-b32', 32, 64, 56, 56, 64, 3), L('resnet-256-b32', 32, 256, 14, 14, 256, 3),
  L('resnet-stem-b32', 32, 3, 224, 224, 64, 7, 2, 3), L('smallcnn-b1024', 1024, 16, 32, 32, 32, 3),
];
const softLayers = [
  L('resnet-64-small', 1, 16, 28, 28, 32, 3), L('resnet-256-small', 2, 64, 14, 14, 64, 3), L('resnet-stem-small', 1, 3, 56, 56, 16, 7, 2, 3), L('smallcnn-b16', 16, 16, 32, 32, 32, 3),
];
const known = [...gpuLayers, ...softLayers];
const ll = args.list('layers');
const layers = !ll ? (software ? softLayers : gpuLayers) : ll[0] === 'all' ? gpuLayers : ll.map((n) => {
  const l = known.find((x) => x.name === n);
  if (!l) throw new Error(`unknown layer '${n}'; have ${known.map((x) => x.name).join(', ')}`);
  return l;
});
const ops = (args.list('ops') ?? ['forward', 'input', 'filter']) as ConvGpuKind[];
const allConfigs = Object.keys(CONV_GPU_CONFIGS) as ConvGpuConfig[];
const cl = args.list('configs');
const configs = !cl ? (software ? (['128x128-8x8-k16-db', '64x64-4x4-k16-db'] as ConvGpuConfig[]) : allConfigs) : cl[0] === 'all' ? allConfigs : (cl as ConvGpuConfig[]);
for (const c of configs) if (!(c in CONV_GPU_CONFIGS)) throw new Error(`unknown config '${c}'; have ${allConfigs.join(', ')}`);
const budget = args.int('budget') ?? (software ? 10 : 8);
const maxReps = args.int('reps') ?? 5;
const limit = rt.device.limits.maxComputeWorkgroupStorageSize;
const CHECK = 256;

const rand = mulberry32(5);
const host = (n: number) => Float32Array.from({ length: n }, () => 2 * rand() - 1);
const size = (sh: readonly number[]) => sh.reduce((a, b) => a * b, 1);
type TfT = ReturnType<Tf['tensor']>;

/** One element of y, dx or dw (flat NCHW / OIHW index) from the definition, in float64. */
function refAt(kind: ConvGpuKind, l: Layer, sh: ConvGpuShapes, x: Float32Array, w: Float32Array, dy: Float32Array, idx: number): number {
  const [N, C, H, W] = sh.x, [O, , KH, KW] = sh.w, [, , OH, OW] = sh.y;
  let acc = 0;
  if (kind === 'forward') {
    const j = idx % OW, i = Math.floor(idx / OW) % OH, o = Math.floor(idx / (OW * OH)) % O, n = Math.floor(idx / (OW * OH * O));
    for (let c = 0; c < C; c++) for (let p = 0; p < KH; p++) for (let q = 0; q < KW; q++) {
      const h = i * l.stride - l.pad + p, v = j * l.stride - l.pad + q;
      if (h >= 0 && h < H && v >= 0 && v < W) acc += x[((n * C + c) * H + h) * W + v] * w[((o * C + c) * KH + p) * KW + q];
    }
  } else if (kind === 'input') {
    const v = idx % W, h = Math.floor(idx / W) % H, c = Math.floor(idx / (W * H)) % C, n = Math.floor(idx / (W * H * C));
    for (let o = 0; o < O; o++) for (let i = 0; i < OH; i++) for (let j = 0; j < OW; j++) {
      const p = h - (i * l.stride - l.pad), q = v - (j * l.stride - l.pad);
      if (p >= 0 && p < KH && q >= 0 && q < KW) acc += dy[((n * O + o) * OH + i) * OW + j] * w[((o * C + c) * KH + p) * KW + q];
    }
  } else {
    const q = idx % KW, p = Math.floor(idx / KW) % KH, c = Math.floor(idx / (KW * KH)) % C, o = Math.floor(idx / (KW * KH * C));
    for (let n = 0; n < N; n++) for (let i = 0; i < OH; i++) for (let j = 0; j < OW; j++) {
      const h = i * l.stride - l.pad + p, v = j * l.stride - l.pad + q;
      if (h >= 0 && h < H && v >= 0 && v < W) acc += dy[((n * O + o) * OH + i) * OW + j] * x[((n * C + c) * H + h) * W + v];
    }
  }
  return acc;
}

const rows: BenchRow[] = [];
const summary: Record<string, Record<string, number | string>> = {};
const opName = { forward: 'conv2d forward', input: 'conv2d backprop-input', filter: 'conv2d backprop-filter' } as const;

for (const l of layers) {
  const OH = Math.floor((l.H + 2 * l.pad - l.k) / l.stride) + 1, OW = Math.floor((l.W + 2 * l.pad - l.k) / l.stride) + 1;
  const sh: ConvGpuShapes = { x: [l.N, l.C, l.H, l.W], w: [l.O, l.C, l.k, l.k], y: [l.N, l.O, OH, OW] };
  const p: ConvGpuParams = { stride: [l.stride, l.stride], padding: [l.pad, l.pad, l.pad, l.pad], dilation: [1, 1], groups: 1 };
  const flops1 = 2 * l.N * l.O * OH * OW * l.C * l.k * l.k;
  const inner = args.int('inner') ?? (software ? 1 : Math.max(1, Math.min(20, Math.round(2e10 / flops1))));
  const flops = flops1 * inner;
  const shape = `${l.N}x${l.C}x${l.H}x${l.W} k${l.k}${l.stride > 1 ? ` s${l.stride}` : ''} -> ${l.O}${inner > 1 ? ` (x${inner} per call)` : ''}`;
  console.log(`${l.name}: ${shape}`);
  const x = host(size(sh.x)), w = host(size(sh.w)).map((v) => v * 0.3), dy = host(size(sh.y));
  const bufX = rt.acquire(x.byteLength), bufW = rt.acquire(w.byteLength), bufDy = rt.acquire(dy.byteLength);
  rt.writeBuffer(bufX, x);
  rt.writeBuffer(bufW, w);
  rt.writeBuffer(bufDy, dy);
  const tx = bl.tensor(x, sh.x), tw = bl.tensor(w, sh.w), tdy = bl.tensor(dy, sh.y);
  const opts = { stride: l.stride, padding: l.pad };
  let tfx: TfT[] | undefined;
  if (tf) tfx = [tf.tensor(nchwToNhwc(x, sh.x), [l.N, l.H, l.W, l.C]), tf.tensor(oihwToHwio(w, sh.w), [l.k, l.k, l.C, l.O]), tf.tensor(nchwToNhwc(dy, sh.y), [l.N, OH, OW, l.O])];
  const tfAttrs = { strides: l.stride, pad: l.pad, dataFormat: 'NHWC', dimRoundingMode: undefined };

  for (const kind of ops) {
    const outShape = kind === 'forward' ? sh.y : kind === 'input' ? sh.x : sh.w;
    const n = size(outShape);
    const at = [...new Set([...Array(Math.min(CHECK, n)).keys(), ...Array.from({ length: Math.min(CHECK, n) }, (_, i) => n - 1 - i)])];
    const want = at.map((i) => refAt(kind, l, sh, x, w, dy, i));
    const err = (got: ArrayLike<number>) => maxRelErr(at.map((i) => got[i]), want);
    const contenders: Contender[] = [];
    const checked: Record<string, number> = {};
    const skipped: Record<string, string> = {};
    const notes: Record<string, string> = {};
    const outs: GpuBuf[] = [];

    for (const c of configs) {
      const o = conv2dGpuOptions(kind, c);
      const engine = `gpu ${c}`;
      if (conv2dGpuWorkgroupBytes(o) > limit) { skipped[engine] = `needs ${conv2dGpuWorkgroupBytes(o)} B of workgroup memory, the device has ${limit}`; continue; }
      const wgsl = conv2dGpuFor(o);
      let once: () => void, out: GpuBuf, read: () => Promise<Float32Array>;
      if (kind === 'forward') {
        out = rt.acquire(n * 4);
        const params = packConv2dGpu(p, sh), wg = conv2dGpuWorkgroups(o, p, sh);
        once = () => rt.dispatch({ label: `conv2d-gpu forward ${c} ${l.name}`, wgsl, params, output: out, inputs: [bufX, bufW], workgroups: wg });
        read = () => rt.readback(out, n * 4);
      } else if (kind === 'input') {
        out = rt.acquire(n * 4);
        const params = packConv2dGpuBackpropInput(p, sh), wg = conv2dGpuBackpropInputWorkgroups(o, p, sh);
        once = () => rt.dispatch({ label: `conv2d-gpu backprop-input ${c} ${l.name}`, wgsl, params, output: out, inputs: [bufDy, bufW], workgroups: wg });
        read = () => rt.readback(out, n * 4);
      } else {
        const sp = conv2dGpuFilterSplit(o, p, sh, software ? { target: 16 } : {});
        notes[engine] = `S=${sp.S}, chunk ${sp.chunk}`;
        out = rt.acquire(sp.S * n * 4);
        const params = packConv2dGpuBackpropFilter(p, sh, sp), wg = conv2dGpuBackpropFilterWorkgroups(o, p, sh, sp);
        once = () => rt.dispatch({ label: `conv2d-gpu backprop-filter ${c} ${l.name}`, wgsl, params, output: out, inputs: [bufX, bufDy], workgroups: wg });
        read = async () => {
          const parts = await rt.readback(out, sp.S * n * 4);
          const sum = new Float32Array(n);
          for (let k = 0; k < sp.S; k++) for (let i = 0; i < n; i++) sum[i] += parts[k * n + i];
          return sum;
        };
      }
      outs.push(out);
      once();
      checked[engine] = err(await read());
      await rt.checkErrors();
      contenders.push({ engine, run: async () => { for (let i = 0; i < inner; i++) once(); await rt.sync(); } });
    }

    // The backend's register-tiled kernels (its default on CPU adapters; on GPUs its default is
    // these gemm kernels), for the comparison this bench exists for.
    const ours = (): bl.Tensor => {
      const saved = backend.convVariant;
      backend.convVariant = 'tiled';
      try {
        // (a lazily recorded forward conv keeps the variant it was recorded with)
        return kind === 'forward' ? bl.conv2d(tx, tw, opts) : kind === 'input' ? bl.conv2dBackpropInput(tdy, tw, sh.x, opts) : bl.conv2dBackpropFilter(tx, tdy, sh.w, opts);
      } finally {
        backend.convVariant = saved;
      }
    };
    const y = ours();
    checked.backend = err(await y.data());
    y.dispose();
    contenders.push({ engine: 'backend', run: async () => { const ys = bl.tidy(() => Array.from({ length: inner }, ours)); await backend.sync(); ys.forEach((t) => t.dispose()); } });

    if (tf && tfx) {
      const [fx, fw, fdy] = tfx;
      const run = (): TfT => kind === 'forward' ? tf.conv2d(fx as never, fw as never, l.stride, l.pad)
        : kind === 'input' ? tf.engine().runKernel('Conv2DBackpropInput', { dy: fdy as never, filter: fw as never }, { ...tfAttrs, inputShape: [l.N, l.H, l.W, l.C] } as never) as TfT
          : tf.engine().runKernel('Conv2DBackpropFilter', { x: fx as never, dy: fdy as never }, { ...tfAttrs, filterShape: [l.k, l.k, l.C, l.O] } as never) as TfT;
      const ty = run();
      const d = await ty.data() as Float32Array;
      ty.dispose();
      checked['tfjs-webgpu'] = err(kind === 'forward' ? nhwcToNchw(d, sh.y) : kind === 'input' ? nhwcToNchw(d, sh.x) : hwioToOihw(d, sh.w));
      contenders.push({ engine: 'tfjs-webgpu', run: async () => { const r = tf.tidy(() => Array.from({ length: inner }, run)); await tfSync(tf); r.forEach((t) => t.dispose()); } });
    }

    const t = await measure(contenders, { budget, reps: maxReps, warmup: 1 });
    const tfTimes = t.get('tfjs-webgpu');
    const line: Record<string, number | string> = {};
    for (const [engine, ms] of t) {
      if (engine === 'tfjs-webgpu') continue;
      const m: Measured = {
        group: 'conv2d-gpu', name: `${opName[kind]} ${engine}`, shape, adapter: s.adapter, ours: ms, flops, checked: checked[engine],
        checkedAt: `first and last ${Math.min(CHECK, n)} elements`, note: notes[engine],
        peers: tfTimes ? { 'tfjs-webgpu': tfTimes } : { 'tfjs-webgpu': s.peerReason ?? 'TF.js not run' },
        peerChecked: tfTimes ? { 'tfjs-webgpu': checked['tfjs-webgpu'] } : undefined,
      };
      rows.push(...rowsOf(m));
    }
    for (const [engine, why] of Object.entries(skipped)) rows.push(...rowsOf({ group: 'conv2d-gpu', name: `${opName[kind]} ${engine}`, shape, adapter: s.adapter, peers: {}, error: why }));
    for (const [engine, ms] of t) {
      const sorted = [...ms].sort((a, b) => a - b);
      const med = sorted[sorted.length >> 1];
      line[engine] = Number((flops / med / 1e6).toFixed(1));
      console.log(`  ${kind.padEnd(8)} ${engine.padEnd(24)} ${(flops / med / 1e6).toFixed(1).padStart(9)} GFLOP/s  (median ${med.toFixed(2)} ms of ${ms.length}; checked ${checked[engine]?.toExponential(1)}${notes[engine] ? `; ${notes[engine]}` : ''})`);
    }
    summary[`${l.name} ${kind} GFLOP/s`] = line;
    progress(s, rows, args.string('out'));
    await rt.sync();
    outs.forEach((v) => rt.release(v));
  }

  tx.dispose();
  tw.dispose();
  tdy.dispose();
  tfx?.forEach((v) => v.dispose());
  [bufX, bufW, bufDy].forEach((v) => rt.release(v));
}

finishStep(s, rows, { options: { layers: layers.map((l) => l.name), ops, configs, budget, maxReps }, gflops: summary }, args.string('out'));
process.exit(0);

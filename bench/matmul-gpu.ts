// The GPU matmul (shaders/matmul-gpu.ts, each block configuration) against the kernels the
// backend has today (workgroupTiled, registerTiled, run through bl.matmul with the backend's
// variant switched) and TF.js's WebGPU matMul on the same adapter, on square float32 matmuls.
// Standalone (not a suite step). Every contender's result is checked on its first rows (and its
// last) against a float64 JS reference before timing; a timed call records `--inner` matmuls and
// waits for the GPU (no read-back). GFLOP/s = 2 M N K / time.
//
//   npx tsx bench/matmul-gpu.ts [--sizes 1024,2048,4096] [--configs all|a,b] [--inner N] [--budget S] [--reps N] [--no-tfjs] [--out DIR]
//
// Default sizes: 1024, 2048, 4096 on a GPU; 128, 256 on a software adapter. Writes
// bench/results/matmul-gpu.json (or DIR/matmul-gpu.json). On a lent GPU machine:
//   bash ../shared/device/pack.sh bench/matmul-gpu.ts    (here; then carry [".gpu"])
//   bash .gpu/run.sh .gpu/matmul-gpu.mjs --out $OUT       (there)
import * as bl from '../engine/index.ts';
import type { WebGpuBackend } from '../engine/webgpu/backend.ts';
import { Args } from './lib/args.ts';
import { mulberry32 } from './lib/rng.ts';
import { finishStep, maxRelErr, measure, openStep, progress, rowsOf, type BenchRow, type Contender, type Measured } from './lib/suite.ts';
import { tfSync } from './lib/tfjs.ts';
import {
  MATMUL_GPU_CONFIGS, matmulGpuFor, matmulGpuOptions, matmulGpuWorkgroupBytes, matmulGpuWorkgroups, packMatmulGpu, type MatmulGpuConfig,
} from '../shaders/matmul-gpu.ts';

const args = new Args();
args.checkKnown(['sizes', 'configs', 'inner', 'budget', 'reps', 'no-tfjs', 'out']);
const s = await openStep('matmul-gpu', { tfjs: !args.flag('no-tfjs') });
const backend = s.backend as WebGpuBackend;
if (backend.name !== 'webgpu') throw new Error('bench/matmul-gpu.ts needs the WebGPU backend');
const rt = backend.rt;
const software = s.info.software;
const sizes = (args.list('sizes') ?? (software ? ['128', '256'] : ['1024', '2048', '4096'])).map(Number);
const allConfigs = Object.keys(MATMUL_GPU_CONFIGS) as MatmulGpuConfig[];
const cl = args.list('configs');
const configs = !cl || cl[0] === 'all' ? allConfigs : (cl as MatmulGpuConfig[]);
for (const c of configs) if (!(c in MATMUL_GPU_CONFIGS)) throw new Error(`unknown config '${c}'; have ${allConfigs.join(', ')}`);
const budget = args.int('budget') ?? (software ? 20 : 10);
const maxReps = args.int('reps') ?? 5;
const limit = rt.device.limits.maxComputeWorkgroupStorageSize;
const CHECK_ROWS = 4;

const rand = mulberry32(7);
const host = (n: number) => Float32Array.from({ length: n }, () => 2 * rand() - 1);

/** Reference rows of A @ B (float64), and a comparison of a result's same rows. */
function refRows(a: Float32Array, b: Float32Array, n: number, rows: number[]): Float64Array {
  const out = new Float64Array(rows.length * n);
  rows.forEach((i, r) => {
    for (let k = 0; k < n; k++) {
      const av = a[i * n + k], bo = k * n, o = r * n;
      for (let j = 0; j < n; j++) out[o + j] += av * b[bo + j];
    }
  });
  return out;
}
const pick = (c: ArrayLike<number>, n: number, rows: number[]) => {
  const o = new Float64Array(rows.length * n);
  rows.forEach((i, r) => { for (let j = 0; j < n; j++) o[r * n + j] = c[i * n + j]; });
  return o;
};

const rows: BenchRow[] = [];
const summary: Record<string, Record<string, number | string>> = {};
for (const n of sizes) {
  const inner = args.int('inner') ?? (software ? 1 : Math.max(1, Math.round((4096 / n) ** 2 / 2)));
  const flops = 2 * n * n * n * inner;
  const shape = `${n}x${n} @ ${n}x${n}${inner > 1 ? ` (x${inner} per call)` : ''}`;
  console.log(`${n}^3: ${inner} matmul(s) per timed call`);
  const a = host(n * n), b = host(n * n);
  const check = [...new Set([...Array(Math.min(CHECK_ROWS, n)).keys(), n - 1])];
  const want = refRows(a, b, n, check);
  const err = (got: ArrayLike<number>) => maxRelErr(pick(got, n, check), want);

  const bufA = rt.acquire(n * n * 4), bufB = rt.acquire(n * n * 4), bufC = rt.acquire(n * n * 4);
  rt.writeBuffer(bufA, a);
  rt.writeBuffer(bufB, b);
  const params = packMatmulGpu({ M: n, N: n, K: n, batchShape: [], aStrides: [], bStrides: [] });
  const contenders: Contender[] = [];
  const checked: Record<string, number> = {};
  const skipped: Record<string, string> = {};

  for (const c of configs) {
    const o = matmulGpuOptions(c, n, n);
    if (matmulGpuWorkgroupBytes(o) > limit) { skipped[c] = `needs ${matmulGpuWorkgroupBytes(o)} B of workgroup memory, the device has ${limit}`; continue; }
    const wgsl = matmulGpuFor(o);
    const once = () => rt.dispatch({ label: `matmul-gpu ${c} ${n}^3`, wgsl, params, output: bufC, inputs: [bufA, bufB], workgroups: matmulGpuWorkgroups(o, n, n, 1) });
    once();
    checked[`gpu ${c}`] = err(await rt.readback(bufC, n * n * 4));
    await rt.checkErrors();
    contenders.push({ engine: `gpu ${c}`, run: async () => { for (let i = 0; i < inner; i++) once(); await rt.sync(); } });
  }

  // The backend's own kernels, through the public op with its variant switched.
  const ta = bl.tensor(a, [n, n]), tb = bl.tensor(b, [n, n]);
  const saved = backend.matmulVariant;
  for (const v of ['workgroupTiled', 'registerTiled'] as const) {
    const use = () => { backend.matmulVariant = v; };
    use();
    const y = bl.matmul(ta, tb);
    checked[v] = err(await y.data());
    y.dispose();
    contenders.push({ engine: v, run: async () => { use(); const ys = bl.tidy(() => Array.from({ length: inner }, () => bl.matmul(ta, tb))); await backend.sync(); ys.forEach((t) => t.dispose()); } });
  }
  let tfx: ReturnType<NonNullable<typeof s.tf>['tensor']>[] | undefined;
  if (s.tf && !s.peerReason) {
    const tf = s.tf;
    tfx = [tf.tensor(a, [n, n]), tf.tensor(b, [n, n])];
    const ty = tf.matMul(tfx[0] as never, tfx[1] as never);
    checked['tfjs-webgpu'] = err(await ty.data());
    ty.dispose();
    contenders.push({ engine: 'tfjs-webgpu', run: async () => { const r = tf.tidy(() => Array.from({ length: inner }, () => tf.matMul(tfx![0] as never, tfx![1] as never))); await tfSync(tf); r.forEach((t) => t.dispose()); } });
  }

  const t = await measure(contenders, { budget, reps: maxReps, warmup: 1 });
  backend.matmulVariant = saved;
  const tfTimes = t.get('tfjs-webgpu');
  const line: Record<string, number | string> = {};
  for (const [engine, ms] of t) {
    if (engine === 'tfjs-webgpu') continue;
    const m: Measured = {
      group: 'matmul-gpu', name: engine, shape, adapter: s.adapter, ours: ms, flops, checked: checked[engine], checkedAt: `rows ${check.join(',')}`,
      peers: tfTimes ? { 'tfjs-webgpu': tfTimes } : { 'tfjs-webgpu': s.peerReason ?? 'TF.js not run' },
      peerChecked: tfTimes ? { 'tfjs-webgpu': checked['tfjs-webgpu'] } : undefined,
    };
    rows.push(...rowsOf(m));
  }
  for (const [engine, why] of Object.entries(skipped)) rows.push(...rowsOf({ group: 'matmul-gpu', name: `gpu ${engine}`, shape, adapter: s.adapter, peers: {}, error: why }));
  for (const [engine, ms] of t) {
    const sorted = [...ms].sort((x, y) => x - y);
    const med = sorted[sorted.length >> 1];
    line[engine] = Number((flops / med / 1e6).toFixed(1));
    console.log(`  ${engine.padEnd(26)} ${(flops / med / 1e6).toFixed(1).padStart(9)} GFLOP/s  (median ${med.toFixed(2)} ms of ${ms.length}; checked ${checked[engine]?.toExponential(1)})`);
  }
  summary[`${n}^3 GFLOP/s`] = line;
  progress(s, rows, args.string('out'));

  ta.dispose();
  tb.dispose();
  tfx?.forEach((x) => x.dispose());
  [bufA, bufB, bufC].forEach((x) => rt.release(x));
}

finishStep(s, rows, { options: { sizes, configs, budget, maxReps }, gflops: summary }, args.string('out'));
process.exit(0);

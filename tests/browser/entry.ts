// Runs in a real browser (bundled by tests/browser/browser.test.ts): a few ops on WebGPU through
// navigator.gpu and on the float64 CPU backend, from the same float32 inputs. It reports the
// adapter and each op's error to `window.__backlight`; the test asserts on them.
import {
  init,
  tensor,
  add,
  mul,
  sub,
  div,
  exp,
  maximum,
  tanh,
  matmul,
  conv2d,
  maxPool2d,
  sum,
  resizeBilinear,
  type AdapterInfo,
  type Backend,
  type Tensor,
  withBackend,
} from '../../engine/index.ts';
// LRP runs in the page from the same code as in Node (explain/lrp has no Node built-ins).
import { lrp } from '../../explain/lrp/index.ts';
import { BatchNorm2d, Conv2d, GlobalAvgPool, Linear, MaxPool2d, ReLU, setInitSeed } from '../../models/layers.ts';
import { Residual, Sequential } from '../../models/containers.ts';

export interface CaseResult {
  name: string;
  shape: number[];
  /** max |gpu - cpu| */
  maxAbs: number;
  /** max |gpu - cpu| / max(1, |cpu|): relative error for values above 1, absolute below */
  maxRel: number;
  /** the GPU output has no NaN or infinity */
  finite: boolean;
}

export interface BrowserReport {
  done: true;
  error?: string;
  adapter?: AdapterInfo;
  userAgent: string;
  results: CaseResult[];
}

declare global {
  interface Window {
    __backlight?: BrowserReport;
  }
}

type Inputs = Record<string, { data: Float32Array; shape: number[] }>;

interface Case {
  name: string;
  inputs: Inputs;
  fn: (x: Record<string, Tensor>) => Tensor;
}

/** mulberry32: seeded test data made in JS (not by the engine under test), uniform in [-1, 1). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let r = Math.imul(a ^ (a >>> 15), 1 | a);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}
const next = rng(20240611);
function input(...shape: number[]): { data: Float32Array; shape: number[] } {
  const data = new Float32Array(shape.reduce((a, d) => a * d, 1));
  for (let i = 0; i < data.length; i++) data[i] = 2 * next() - 1;
  return { data, shape };
}

// Odd sizes on purpose: not multiples of 4 or of a workgroup.
const cases: Case[] = [
  {
    name: 'elementwise: tanh(a * b + exp(a)) - max(b, 0) / 3',
    inputs: { a: input(3, 5, 7), b: input(3, 5, 7) },
    fn: ({ a, b }) => sub(tanh(add(mul(a, b), exp(a))), div(maximum(b, 0), 3)),
  },
  {
    name: 'elementwise broadcast: a [3,5,7] + b [5,1]',
    inputs: { a: input(3, 5, 7), b: input(5, 1) },
    fn: ({ a, b }) => add(a, b),
  },
  {
    name: 'matmul [17,23] @ [23,19]',
    inputs: { a: input(17, 23), b: input(23, 19) },
    fn: ({ a, b }) => matmul(a, b),
  },
  {
    name: 'batched matmul [3,9,13] @ [13,11]',
    inputs: { a: input(3, 9, 13), b: input(13, 11) },
    fn: ({ a, b }) => matmul(a, b),
  },
  {
    name: 'conv2d [2,3,9,11] * [5,3,3,3] stride 2 padding 1 + bias',
    inputs: { x: input(2, 3, 9, 11), w: input(5, 3, 3, 3), b: input(5) },
    fn: ({ x, w, b }) => conv2d(x, w, { stride: 2, padding: 1, bias: b }),
  },
  {
    name: 'conv2d [1,4,7,7] * [6,2,3,3] groups 2, same padding',
    inputs: { x: input(1, 4, 7, 7), w: input(6, 2, 3, 3) },
    fn: ({ x, w }) => conv2d(x, w, { groups: 2, padding: 'same' }),
  },
  {
    name: 'maxPool2d [2,3,9,11] kernel 3 stride 2',
    inputs: { x: input(2, 3, 9, 11) },
    fn: ({ x }) => maxPool2d(x, { kernel: 3, stride: 2 }),
  },
  {
    name: 'sum [4,7,9] over axis 1',
    inputs: { x: input(4, 7, 9) },
    fn: ({ x }) => sum(x, 1),
  },
  {
    name: 'sum [37,29] over all axes',
    inputs: { x: input(37, 29) },
    fn: ({ x }) => sum(x),
  },
  {
    name: 'resizeBilinear [1,2,5,7] -> [9,4]',
    inputs: { x: input(1, 2, 5, 7) },
    fn: ({ x }) => resizeBilinear(x, [9, 4]),
  },
  {
    name: 'resizeBilinear [2,1,4,3] -> [7,8] alignCorners',
    inputs: { x: input(2, 1, 4, 3) },
    fn: ({ x }) => resizeBilinear(x, [7, 8], { alignCorners: true }),
  },
];

async function runOn(b: Backend, c: Case): Promise<{ data: Float32Array | Float64Array; shape: number[] }> {
  const ts: Record<string, Tensor> = {};
  for (const [k, v] of Object.entries(c.inputs)) ts[k] = tensor(v.data, v.shape, b);
  const y = c.fn(ts);
  const data = await y.data();
  const shape = [...y.shape];
  y.dispose();
  for (const t of Object.values(ts)) t.dispose();
  return { data, shape };
}

/**
 * LRP of a small conv net with BatchNorm (folded by the canonizer) and a residual block, built
 * with the same seeded (Philox) weights on backend b.
 */
async function lrpOn(b: Backend, composite: string, x: { data: Float32Array; shape: number[] }) {
  return withBackend(b, async () => {
    setInitSeed(5);
    const m = new Sequential(
      new Conv2d(2, 4, 3, { padding: 1, bias: false }), new BatchNorm2d(4), new ReLU(), new MaxPool2d({ kernel: 2 }),
      new Residual(new Sequential(new Conv2d(4, 4, 3, { padding: 1 }), new ReLU())), new GlobalAvgPool(), new Linear(4, 3),
    );
    const r = await lrp(m, tensor(x.data, x.shape, b), { target: [0, 2], composite });
    const data = await r.data();
    const shape = [...r.shape];
    r.dispose();
    m.dispose();
    return { data, shape };
  });
}

async function main(): Promise<BrowserReport> {
  const results: CaseResult[] = [];
  const report: BrowserReport = { done: true, userAgent: navigator.userAgent, results };
  try {
    const gpu = await init({ backend: 'webgpu' });
    // Every kernel output starts as NaN, so an element a kernel skips cannot pass as a near-zero.
    (gpu as unknown as { poisonOutputs: boolean }).poisonOutputs = true;
    report.adapter = gpu.info;
    const cpu = await init({ backend: 'cpu', setDefault: false });
    for (const c of cases) {
      const g = await runOn(gpu, c);
      const r = await runOn(cpu, c);
      if (g.shape.join() !== r.shape.join() || g.data.length !== r.data.length) {
        throw new Error(`${c.name}: GPU shape [${g.shape}] differs from CPU shape [${r.shape}]`);
      }
      let maxAbs = 0;
      let maxRel = 0;
      let finite = true;
      for (let i = 0; i < r.data.length; i++) {
        if (!Number.isFinite(g.data[i])) finite = false;
        const d = Math.abs(g.data[i] - r.data[i]);
        maxAbs = Math.max(maxAbs, d);
        maxRel = Math.max(maxRel, d / Math.max(1, Math.abs(r.data[i])));
      }
      results.push({ name: c.name, shape: g.shape, maxAbs, maxRel, finite });
    }
    for (const composite of ['epsilon-plus-flat', 'epsilon-gamma-box']) {
      const x = input(2, 2, 7, 7);
      const g = await lrpOn(gpu, composite, x);
      const r = await lrpOn(cpu, composite, x);
      // relevances are small: errors relative to the map's largest magnitude
      const scale = Math.max(...Array.from(r.data, Math.abs));
      let maxAbs = 0;
      for (let i = 0; i < r.data.length; i++) maxAbs = Math.max(maxAbs, Math.abs(g.data[i] - r.data[i]));
      results.push({ name: `lrp ${composite}: conv-bn-relu-pool-residual-gap-linear`, shape: g.shape, maxAbs, maxRel: scale > 0 ? maxAbs / scale : Infinity, finite: Array.from(g.data).every(Number.isFinite) });
    }
    gpu.destroy();
  } catch (e) {
    report.error = e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e);
  }
  return report;
}

main().then((r) => {
  window.__backlight = r;
});

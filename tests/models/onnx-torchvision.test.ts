// torchvision classification models exported by torch.onnx.export (torch 1.13) at opsets 11, 13
// and 17 with a dynamic batch axis and seeded random weights, against PyTorch's logits and input
// gradients (tests/fixtures/make_torchvision_fixtures.py). The small ones are committed
// (tests/fixtures/onnx/); the large ones are generated at test time (tests/models/onnx-generated.ts)
// and skipped, with the reason printed, where /usr/bin/python3 has no torch.
//
// Tolerances, both relative to the reference's scale (its largest magnitude):
//   logits:          max |ours - torch| <= 1e-4 * max(1, max |torch|)
//   input gradients: max |ours - torch| <= 1e-3 * max |torch|     (d sum(logits[:, T]) / dx)
// on the float64 CPU backend and on WebGPU (float32).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../engine/backend.ts';
import { grad, init, memory, slice, sum, tensor, withBackend, type Tensor } from '../../engine/index.ts';
import { loadOnnx } from '../../models/io/onnx.ts';
import { parseNpy } from '../../models/io/npy.ts';
import { generated } from './onnx-generated.ts';

const COMMITTED = fileURLToPath(new URL('../fixtures/onnx/', import.meta.url));

const cpu = await init({ backend: 'cpu', setDefault: false });
const gpu = await init({ backend: 'webgpu', setDefault: false });
afterAll(() => {
  gpu.destroy();
  cpu.destroy();
});

/** max |a - b| / scale, and the index of the worst element. */
function scaledMaxErr(a: ArrayLike<number>, b: ArrayLike<number>, scale: number): [number, number] {
  expect(a.length).toBe(b.length);
  let worst = 0, at = -1;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i] - b[i]);
    if (!(e <= worst)) [worst, at] = [Number.isNaN(e) ? Infinity : e, i];
  }
  return [worst / scale, at];
}
function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

interface Case {
  name: string;
  dir: string;
  opset: number;
  target: number;
}

async function check(c: Case, backend: Backend, opts: { batch?: number; gradient: boolean }) {
  const npy = (f: string) => parseNpy(new Uint8Array(readFileSync(c.dir + f)), f);
  const x0 = npy(`${c.name}_input.npy`);
  const logits = npy(`${c.name}_logits.npy`);
  const g0 = npy(`${c.name}_grad.npy`);
  const file = `${c.name}_opset${c.opset}.onnx`;
  const before = memory(backend).liveBuffers;
  // (withBackend sets the backend for synchronous code only: each step between awaits is wrapped)
  const on = <T>(fn: () => T) => withBackend(backend, fn);
  const m = on(() => loadOnnx(new Uint8Array(readFileSync(c.dir + file)), { source: file }));
  // the first `batch` items (the dynamic batch axis: the exports compute shapes from the input's)
  const b = Math.min(opts.batch ?? x0.shape[0], x0.shape[0]);
  const per = x0.data.length / x0.shape[0], k = logits.shape[1];
  const x = on(() => tensor(x0.data.subarray(0, b * per), [b, ...x0.shape.slice(1)]));
  const y = on(() => m.forward(x));
  expect(y.shape).toEqual([b, k]);
  const want = logits.data.subarray(0, b * k);
  // (a reference that is all zeros, or the same for every class, would let a broken model pass)
  expect(new Set(want).size, `${file}: the PyTorch logits are degenerate`).toBeGreaterThan(b);
  const [le, li] = scaledMaxErr(await y.data(), want, Math.max(1, maxAbs(want)));
  y.dispose();
  expect(le, `${file} on ${backend.name}: logits differ by ${le} (scaled) at ${li}`).toBeLessThanOrEqual(1e-4);
  if (opts.gradient) {
    const g = on(() => grad((xi: Tensor) => sum(slice(m.forward(xi), [0, c.target], [b, 1])))(x));
    const wantG = g0.data.subarray(0, b * per);
    expect(maxAbs(wantG), `${file}: the PyTorch gradient is zero`).toBeGreaterThan(0);
    const [ge, gi] = scaledMaxErr(await g.data(), wantG, maxAbs(wantG));
    g.dispose();
    expect(ge, `${file} on ${backend.name}: input gradient differs by ${ge} of its scale at ${gi}`).toBeLessThanOrEqual(1e-3);
  }
  x.dispose();
  m.dispose();
  expect(memory(backend).liveBuffers, 'tensors left behind').toBe(before);
}

const committed = JSON.parse(readFileSync(COMMITTED + 'torchvision_manifest.json', 'utf8')) as Record<string, { opsets: number[]; target: number }>;
const large = generated('large');
if ('skip' in large) console.log(`onnx-torchvision: skipping the generated (large) models: ${large.skip}`);

const cases: Case[] = [
  ...Object.entries(committed).flatMap(([name, v]) => v.opsets.map((opset) => ({ name, dir: COMMITTED, opset, target: v.target }))),
  ...('skip' in large ? [] : Object.entries(large.manifest).flatMap(([name, v]) => v.opsets.map((opset) => ({ name, dir: large.dir, opset, target: v.target })))),
];
const label = (c: Case) => `${c.name} opset ${c.opset}`;
const firstOpset = (c: Case) => (c.dir === COMMITTED ? committed : (large as { manifest: typeof committed }).manifest)[c.name].opsets[0] === c.opset;

// Time: every case at every opset on both backends takes ~10 minutes on 2 CPU cores (the float64
// CPU backend needs ~50 s for one ResNet-18 forward at 32x32). By default the generated models run
// on WebGPU (the gradient at each model's first opset, logits at the others) and the two cheapest on
// the CPU backend; BACKLIGHT_ONNX_FULL=1 runs them all on both, gradients everywhere.
const FULL = process.env.BACKLIGHT_ONNX_FULL === '1';
const CHEAP_ON_CPU = new Set(['shufflenet_v2_x0_5', 'squeezenet1_0']);
if (!FULL && !('skip' in large)) console.log('onnx-torchvision: generated models on the CPU backend: only ' + [...CHEAP_ON_CPU].join(', ') + ' (BACKLIGHT_ONNX_FULL=1 for all)');

describe('torchvision exports on the CPU backend (float64)', () => {
  // one item (the float64 backend is slow); the gradient at each model's first opset
  const cpuCases = cases.filter((c) => FULL || c.dir === COMMITTED || (CHEAP_ON_CPU.has(c.name) && firstOpset(c)));
  it.each(cpuCases.map((c) => [label(c), c] as const))('%s', async (_, c) => {
    await check(c, cpu, { batch: 1, gradient: firstOpset(c) });
  }, 300_000);
});

describe('torchvision exports on WebGPU', () => {
  it.each(cases.map((c) => [label(c), c] as const))('%s', async (_, c) => {
    await check(c, gpu, { gradient: FULL || c.dir === COMMITTED || firstOpset(c) });
  }, 300_000);
});

describe.skipIf('skip' in large)('generated fixtures', () => {
  it('cover every opset 11, 13, 17 with several models', () => {
    for (const k of [11, 13, 17]) expect(cases.filter((c) => c.opset === k).length, `opset ${k}`).toBeGreaterThanOrEqual(3);
  });
});

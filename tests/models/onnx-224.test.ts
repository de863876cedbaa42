// 224x224 end to end: a full-width torchvision ResNet-18 (random weights, BatchNorm kept,
// exported at opset 13; tests/fixtures/make_torchvision_fixtures.py --group e2e, generated at test
// time, skipped without torch) explained on WebGPU with saliency, Integrated Gradients (few steps,
// chunked), Grad-CAM at an ONNX node name and occlusion, against PyTorch where PyTorch has the
// same quantity (logits, input gradient, Grad-CAM at layer4, occlusion window scores), and with
// the backend's live memory bounded: the same peak for 1 and 2 IG steps at one step per pass, and
// nothing left behind (BACKLIGHT_ONNX_FULL=1 also checks 2 steps in one pass against two).
//   logits, occlusion scores: max |ours - torch| <= 1e-4 * max(1, max |torch|)
//   gradient, Grad-CAM:       max |ours - torch| <= 1e-3 * max |torch|
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { init, memory, tensor, type Tensor } from '../../engine/index.ts';
import { gradCam, integratedGradients, occlusion, saliency } from '../../explain/index.ts';
import { loadOnnx } from '../../models/io/onnx.ts';
import { parseNpy } from '../../models/io/npy.ts';
import { generated } from './onnx-generated.ts';

const gen = generated('e2e');
if ('skip' in gen) console.log(`onnx-224: skipping the 224x224 end-to-end test: ${gen.skip}`);
const NAME = 'resnet18_224';
// layer4's output: the second block's last ReLU (torchvision reuses one ReLU module: relu, relu_1)
const LAYER = '/layer4/layer4.1/relu_1/Relu';

/** max |a - b| / scale. */
function scaledErr(a: ArrayLike<number>, b: ArrayLike<number>, scale: number): number {
  expect(a.length).toBe(b.length);
  let w = 0;
  for (let i = 0; i < a.length; i++) w = Math.max(w, Number.isNaN(a[i]) ? Infinity : Math.abs(a[i] - b[i]));
  return w / scale;
}
const maxAbs = (a: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
};

describe.skipIf('skip' in gen)('ResNet-18 at 224x224 on WebGPU, end to end', async () => {
  if ('skip' in gen) return;
  // this file runs on WebGPU alone, so it is the default backend (explainers make their targets there)
  const gpu = await init({ backend: 'webgpu' });
  afterAll(() => gpu.destroy());
  const npy = (f: string) => parseNpy(new Uint8Array(readFileSync(gen.dir + f)), f);
  const T = gen.manifest[NAME].target;
  const x0 = npy(`${NAME}_input.npy`);
  const file = `${NAME}_opset13.onnx`;
  const m = loadOnnx(new Uint8Array(readFileSync(gen.dir + file)), { source: file });
  const x = tensor(x0.data, x0.shape);
  const base = memory(gpu).liveBuffers;
  afterAll(() => {
    x.dispose();
    m.dispose();
  });

  it('loads at 224x224; logits and saliency match PyTorch', async () => {
    expect(x.shape).toEqual([1, 3, 224, 224]);
    const want = npy(`${NAME}_logits.npy`).data;
    const y = m.forward(x);
    const le = scaledErr(await y.data(), want, Math.max(1, maxAbs(want)));
    y.dispose();
    expect(le).toBeLessThanOrEqual(1e-4);
    const g = await saliency(m, x, { target: T, abs: false });
    const wantG = npy(`${NAME}_grad.npy`).data;
    const ge = scaledErr(await g.data(), wantG, maxAbs(wantG));
    g.dispose();
    console.log(`onnx-224: logits error ${le.toExponential(2)}, input gradient error ${ge.toExponential(2)} (of scale)`);
    expect(ge).toBeLessThanOrEqual(1e-3);
    expect(memory(gpu).liveBuffers).toBe(base);
  }, 300_000);

  it('Integrated Gradients one step per pass: the peak live memory does not grow with steps', async () => {
    // the model as a function that notes the backend's live bytes after each forward (the tape
    // holds that pass's activations until its backward)
    let peak = 0;
    const f = (t: Tensor) => {
      const y = m.forward(t);
      peak = Math.max(peak, memory(gpu).liveBytes);
      return y;
    };
    const run = async (steps: number, internalBatchSize: number) => {
      peak = 0;
      const r = (await integratedGradients(f, x, { target: T, steps, internalBatchSize, returnDelta: true })) as { attributions: Tensor; delta: Tensor };
      const out = { a: await r.attributions.data(), delta: (await r.delta.data())[0], peak };
      r.attributions.dispose();
      r.delta.dispose();
      return out;
    };
    // one step per pass: 1 and 2 steps; BACKLIGHT_ONNX_FULL=1 adds 2 steps in one pass (each
    // pass at 224x224 takes ~20 s on 2 contended CPU cores under lavapipe)
    const one1 = await run(1, 1);
    const two1 = await run(2, 1);
    expect(two1.a.length).toBe(3 * 224 * 224);
    console.log(`onnx-224: IG peak live bytes ${(one1.peak / 2 ** 20).toFixed(1)} MiB (1 step), ${(two1.peak / 2 ** 20).toFixed(1)} MiB (2 steps); completeness delta ${two1.delta.toExponential(2)} at 2 steps`);
    // at one step per pass, more steps reuse the same memory (a few percent for the accumulator
    // and the pool's size classes)
    expect(two1.peak).toBeLessThanOrEqual(one1.peak * 1.05);
    if (process.env.BACKLIGHT_ONNX_FULL === '1') {
      const two2 = await run(2, 2);
      expect(scaledErr(two1.a, two2.a, maxAbs(two2.a)), 'IG, 1 step per pass vs 2').toBeLessThanOrEqual(1e-4);
      console.log(`onnx-224: IG peak live bytes ${(two2.peak / 2 ** 20).toFixed(1)} MiB (2 steps in one pass)`);
      // both steps in one pass need more
      expect(two2.peak).toBeGreaterThan(two1.peak);
    }
    expect(Number.isFinite(two1.delta)).toBe(true);
    expect(memory(gpu).liveBuffers).toBe(base);
  }, 300_000);

  it(`Grad-CAM at the ONNX node '${LAYER}' matches PyTorch's at layer4`, async () => {
    const cam = await gradCam(m, x, { target: T, layer: LAYER });
    expect(cam.shape).toEqual([1, 1, 7, 7]);
    const want = npy(`${NAME}_gradcam.npy`).data;
    expect(maxAbs(want)).toBeGreaterThan(0);
    expect(scaledErr(await cam.data(), want, maxAbs(want))).toBeLessThanOrEqual(1e-3);
    cam.dispose();
    // the same layer by its output tensor name, upsampled to the input
    const up = await gradCam(m, x, { target: T, layer: `${LAYER}_output_0`, upsample: true });
    expect(up.shape).toEqual([1, 1, 224, 224]);
    up.dispose();
    expect(memory(gpu).liveBuffers).toBe(base);
  }, 300_000);

  it('occlusion (112x112 windows, 2 rows per model call) matches PyTorch', async () => {
    const W = gen.manifest[NAME].occlusionWindow ?? 112;
    const calls: number[] = [];
    const a = await occlusion(m, x, { target: T, window: W, stride: W, batchSize: 2, onProgress: (p) => calls.push(p.done) });
    expect(a.shape).toEqual([1, 3, 224, 224]);
    const want = npy(`${NAME}_occlusion.npy`);
    const got = await a.data();
    a.dispose();
    const n = 224 / W;
    // every pixel of window (i, j) carries that window's score
    const picked = new Float32Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) picked[i * n + j] = got[(i * W + 3) * 224 + j * W + 5];
    expect(scaledErr(picked, want.data, Math.max(1, maxAbs(want.data)))).toBeLessThanOrEqual(1e-4);
    for (let c = 0; c < 3; c++) for (let i = 0; i < 224; i += 37) for (let j = 0; j < 224; j += 41) expect(got[(c * 224 + i) * 224 + j]).toBeCloseTo(picked[Math.floor(i / W) * n + Math.floor(j / W)], 5);
    expect(calls.length).toBeGreaterThan(1);
    expect(memory(gpu).liveBuffers).toBe(base);
  }, 300_000);
});

// Saliency, integrated gradients, guided backprop and Grad-CAM on the bundled digits-cnn against
// golden values computed by PyTorch (tests/fixtures/make_explain_fixtures.py: torch autograd and
// hooks, float64, from the same safetensors weights). Tests never need Python.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import type { Backend, Tensor } from '../../engine/index.ts';
import * as ex from '../../explain/index.ts';
import { parseNpy64 } from '../../models/io/npy.ts';
import { loadBundled } from '../../models/zoo/index.ts';
import type { Module } from '../../models/module.ts';
import { expectClose } from '../helpers.ts';

const dir = new URL('../fixtures/explain/', import.meta.url);
const npy = (name: string) => parseNpy64(new Uint8Array(readFileSync(new URL(`digits_${name}.npy`, dir))), name);
const meta = JSON.parse(readFileSync(new URL('digits_meta.json', dir), 'utf8')) as { targets: number[]; igSteps: number; layer: string; weightsSha256: string };

let cpu: Backend;
let gpu: Backend;
beforeAll(async () => {
  cpu = await bl.init({ backend: 'cpu', setDefault: false });
  gpu = await bl.init({ backend: 'webgpu', setDefault: false });
});
afterAll(() => gpu?.destroy());

async function modelOn(b: Backend): Promise<Module> {
  bl.setDefaultBackend(b); // loadBundled builds on the default backend
  return loadBundled('digits-cnn');
}

const methods: [string, (m: Module, x: Tensor) => Promise<Tensor>][] = [
  ['logits', async (m, x) => m.call(x)],
  ['saliency', (m, x) => ex.saliency(m, x, { target: meta.targets })],
  ['ig', (m, x) => ex.integratedGradients(m, x, { target: meta.targets, steps: meta.igSteps, method: 'gausslegendre' })],
  ['guided', (m, x) => ex.guidedBackprop(m, x, { target: meta.targets })],
  ['gradcam', (m, x) => ex.gradCam(m, x, { target: meta.targets, layer: meta.layer })],
];

describe('PyTorch golden explanations for digits-cnn', () => {
  it('the fixtures were made from the committed weights', async () => {
    const { createHash } = await import('node:crypto');
    const sha = createHash('sha256').update(readFileSync(new URL('../../models/weights/digits-cnn.safetensors', import.meta.url))).digest('hex');
    expect(sha, 'digits-cnn weights changed: regenerate tests/fixtures/explain with make_explain_fixtures.py').toBe(meta.weightsSha256);
  });
  for (const [name, run] of methods) {
    for (const where of ['cpu', 'webgpu'] as const) {
      it(`${name} on ${where}`, async () => {
        const b = where === 'cpu' ? cpu : gpu;
        const m = await modelOn(b);
        const xs = npy('x');
        const x = bl.tensor(xs.data, xs.shape, b);
        const got = await run(m, x);
        const want = npy(name);
        expect(got.shape).toEqual(want.shape);
        const scale = Math.max(...Array.from(want.data, Math.abs));
        // float64 here vs float64 in PyTorch (same float32 weights and inputs): agreement to
        // rounding; float32 on the GPU: 1e-4 relative to the map's scale.
        const tol = where === 'cpu' ? 1e-10 : 1e-4;
        expectClose(await got.data(), want.data, tol, tol * scale, `${name} (${where})`);
        m.dispose();
      });
    }
  }
});

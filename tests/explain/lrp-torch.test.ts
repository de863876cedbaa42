// LRP on the bundled digits-cnn against golden relevances from an independent implementation
// (tests/fixtures/make_lrp_fixtures.py: the rules written out layer by layer in torch float64,
// z = layer(x; w', b'), s = R / stab(z), c = J^T s by conv_transpose2d / matmul, R_in = x * c;
// no code shared with explain/lrp). Composites 'epsilon' (epsilon 1e-6 on every conv and the
// linear layer) and 'epsilon-plus' (z-plus in Zennit's two-term form on the convs, epsilon on the
// linear layer), 'logit' seed, target = the predicted class. Checked: the input relevance and the
// relevance at every layer's output summed per item. Tests never need Python.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import type { Backend } from '../../engine/index.ts';
import * as ex from '../../explain/index.ts';
import { loadBundled } from '../../models/zoo/index.ts';
import type { Module } from '../../models/module.ts';
import { expectClose } from '../helpers.ts';

interface CompositeGolden {
  attribution: number[];
  attributionSum: number[];
  layerSums: Record<string, number[]>;
}
const golden = JSON.parse(readFileSync(new URL('../fixtures/explain/lrp_digits.json', import.meta.url), 'utf8')) as {
  targets: number[];
  shape: number[];
  x: number[];
  logits: number[];
  layers: string[];
  weightsSha256: string;
  composites: Record<'epsilon' | 'epsilon-plus', CompositeGolden>;
};

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

/** Per-item sums of a [N, ...] tensor's values. */
function itemSums(data: ArrayLike<number>, n: number): number[] {
  const per = data.length / n;
  return Array.from({ length: n }, (_, i) => {
    let s = 0;
    for (let j = 0; j < per; j++) s += data[i * per + j];
    return s;
  });
}

const maxAbs = (a: ArrayLike<number>) => Math.max(...Array.from(a, Math.abs));

// float64 here vs float64 in PyTorch (the same float32 weights, inputs k/16 exact in both): the
// two differ only in summation order, i.e. rounding; float32 on the GPU: 1e-4 relative to scale.
const TOL = { cpu: 1e-9, webgpu: 1e-4 } as const;

describe('LRP on digits-cnn matches an independent PyTorch implementation', () => {
  it('the fixture was made from the committed weights', async () => {
    const { createHash } = await import('node:crypto');
    const sha = createHash('sha256').update(readFileSync(new URL('../../models/weights/digits-cnn.safetensors', import.meta.url))).digest('hex');
    expect(sha, 'digits-cnn weights changed: regenerate with tests/fixtures/make_lrp_fixtures.py').toBe(golden.weightsSha256);
  });

  for (const where of ['cpu', 'webgpu'] as const) {
    it(`the logits and predicted targets on ${where}`, async () => {
      const b = where === 'cpu' ? cpu : gpu;
      const m = await modelOn(b);
      const x = bl.tensor(golden.x, golden.shape, b);
      const out = m.call(x);
      const got = await out.data();
      expectClose(got, golden.logits, TOL[where], TOL[where] * maxAbs(golden.logits), `logits (${where})`);
      const n = golden.shape[0];
      const pred = Array.from({ length: n }, (_, i) => {
        const row = Array.from(got.slice(i * 10, i * 10 + 10));
        return row.indexOf(Math.max(...row));
      });
      expect(pred).toEqual(golden.targets);
      m.dispose();
    });

    for (const composite of ['epsilon', 'epsilon-plus'] as const) {
      it(`${composite} on ${where}: input relevance and per-layer relevance sums`, async () => {
        const b = where === 'cpu' ? cpu : gpu;
        const tol = TOL[where];
        const want = golden.composites[composite];
        const n = golden.shape[0];
        const m = await modelOn(b);
        const x = bl.tensor(golden.x, golden.shape, b);
        const res = await ex.lrp(m, x, { target: golden.targets, composite, seedOutput: 'logit', returnLayers: true });

        expect(res.attribution.shape).toEqual(golden.shape);
        const attr = await res.attribution.data();
        expectClose(attr, want.attribution, tol, tol * maxAbs(want.attribution), `${composite} input relevance (${where})`);
        expectClose(itemSums(attr, n), want.attributionSum, tol, tol * maxAbs(want.attributionSum), `${composite} input relevance sums (${where})`);

        expect(Object.keys(res.layers).sort()).toEqual([...golden.layers].sort());
        for (const path of golden.layers) {
          const t = res.layers[path];
          expect(t.shape[0], path).toBe(n);
          const sums = itemSums(await t.data(), n);
          const w = want.layerSums[path];
          expectClose(sums, w, tol, tol * maxAbs(w), `${composite} relevance sum at ${path} (${where})`);
        }
        res.attribution.dispose();
        for (const t of Object.values(res.layers)) t.dispose();
        m.dispose();
      });
    }
  }
});

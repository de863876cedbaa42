// LRP on the bundled digits-cnn and resnet-bn against golden relevances from an independent
// implementation (tests/fixtures/make_lrp_fixtures.py: the rules written out layer by layer in
// torch float64, z_k = layer(x_k; w_k, b_k), s_k = g_k(R, z), c_k = J_k^T s_k by
// conv_transpose2d / matmul, R_in = sum_k a_k x_k c_k; BatchNorm folded by hand; the residual sums
// split by the epsilon formula; no code shared with explain/lrp). Cases: inputs 'plain' (digits in
// [0, 1]) and 'signed' (digits - 0.5, so the x- terms of z+, alpha-beta and gamma meet the first
// layer) x composites 'epsilon', 'epsilon-plus', 'epsilon-plus-flat', 'epsilon-gamma-box' (z-box
// bounds [0, 1] / [-0.5, 0.5]), 'epsilon-alpha2-beta1' and 'gamma-all' (a spec: gamma 0.25 on
// every conv, the first one too), 'logit' seed, target = the predicted class. Checked: the input
// relevance, the relevance at every layer's output summed per item, and the full relevance at a
// few layers' outputs. Tests never need Python.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import type { Backend } from '../../engine/index.ts';
import * as ex from '../../explain/index.ts';
import { loadBundled } from '../../models/zoo/index.ts';
import type { Module } from '../../models/module.ts';
import { expectClose } from '../helpers.ts';

interface InputGolden {
  x: number[];
  low: number;
  high: number;
  logits: number[];
  targets: number[];
}
interface CaseGolden {
  input: 'plain' | 'signed';
  composite: string;
  params: { low?: number; high?: number };
  attribution: number[];
  attributionSum: number[];
  layerSums: Record<string, number[]>;
  maps: Record<string, number[]>;
}
interface Golden {
  model: string;
  shape: number[];
  inputs: Record<'plain' | 'signed', InputGolden>;
  layers: string[];
  cases: CaseGolden[];
  weightsSha256: string;
}
const load = (f: string) => JSON.parse(readFileSync(new URL(`../fixtures/explain/${f}`, import.meta.url), 'utf8')) as Golden;
const GOLDENS = [load('lrp_digits.json'), load('lrp_resnet_bn.json')];

let cpu: Backend;
let gpu: Backend;
beforeAll(async () => {
  cpu = await bl.init({ backend: 'cpu', setDefault: false });
  gpu = await bl.init({ backend: 'webgpu', setDefault: false });
});

async function modelOn(name: string, b: Backend): Promise<Module> {
  bl.setDefaultBackend(b); // loadBundled builds on the default backend
  return loadBundled(name);
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
/** max |got - want| over the golden's scale (max |want|). */
const scaledErr = (got: ArrayLike<number>, want: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < want.length; i++) m = Math.max(m, Math.abs(got[i] - want[i]));
  return m / maxAbs(want);
};

/** The composite option of a case: a named composite, or the 'gamma-all' spec. */
function compositeOf(name: string): ex.LrpOptions['composite'] {
  if (name === 'gamma-all') return { layers: { Conv2d: ex.lrpRules.gamma(0.25), Linear: ex.lrpRules.epsilon(1e-6) } };
  return name;
}

// float64 here vs float64 in PyTorch (the same float32 weights, inputs k/16 exact in both): the
// two differ only in summation order, i.e. rounding; float32 on the GPU: 1e-4 relative to scale.
const TOL = { cpu: 1e-9, webgpu: 1e-4 } as const;

// The worst scaled difference per backend, model and case, and per what was compared: the input
// relevance ('input'), the per-item relevance sums at the input and every layer ('sums'), the
// full maps at the fixture's layers ('maps'); printed at the end.
const PARTS = ['input', 'sums', 'maps'] as const;
const worst: Record<string, Record<(typeof PARTS)[number], number>> = {};
const note = (key: string, part: (typeof PARTS)[number], e: number) => {
  const w = (worst[key] ??= { input: 0, sums: 0, maps: 0 });
  w[part] = Math.max(w[part], e);
};
afterAll(() => {
  const rows = Object.entries(worst).map(([k, w]) => `  ${k.padEnd(48)} ${PARTS.map((p) => w[p].toExponential(2).padStart(9)).join(' ')}`);
  console.log(`LRP vs PyTorch, max |difference| / max |golden|:\n  ${''.padEnd(48)} ${PARTS.map((p) => p.padStart(9)).join(' ')}\n${rows.join('\n')}`);
  gpu?.destroy();
});

for (const golden of GOLDENS) {
  describe(`LRP on ${golden.model} matches an independent PyTorch implementation`, () => {
    const n = golden.shape[0];
    it('the fixture was made from the committed weights', async () => {
      const { createHash } = await import('node:crypto');
      const sha = createHash('sha256').update(readFileSync(new URL(`../../models/weights/${golden.model}.safetensors`, import.meta.url))).digest('hex');
      expect(sha, `${golden.model} weights changed: regenerate with tests/fixtures/make_lrp_fixtures.py`).toBe(golden.weightsSha256);
    });

    it('covers signed inputs and every composite asked of it', () => {
      const signed = golden.inputs.signed.x;
      expect(Math.min(...signed)).toBeLessThan(0);
      expect(Math.max(...signed)).toBeGreaterThan(0);
      const names = new Set(golden.cases.map((c) => `${c.input}/${c.composite}`));
      for (const c of ['epsilon', 'epsilon-plus-flat']) for (const i of ['plain', 'signed']) expect(names.has(`${i}/${c}`), `${i}/${c}`).toBe(true);
      for (const c of ['epsilon-plus', 'epsilon-gamma-box', 'epsilon-alpha2-beta1', 'gamma-all']) expect(names.has(`signed/${c}`), c).toBe(true);
      for (const c of golden.cases) expect(Object.keys(c.maps).length).toBeGreaterThan(0);
    });

    for (const where of ['cpu', 'webgpu'] as const) {
      for (const input of ['plain', 'signed'] as const) {
        it(`the logits and predicted targets of the ${input} inputs on ${where}`, async () => {
          const b = where === 'cpu' ? cpu : gpu;
          const want = golden.inputs[input];
          const m = await modelOn(golden.model, b);
          const x = bl.tensor(want.x, golden.shape, b);
          const out = m.call(x);
          const got = await out.data();
          expectClose(got, want.logits, TOL[where], TOL[where] * maxAbs(want.logits), `${golden.model} ${input} logits (${where})`);
          const pred = Array.from({ length: n }, (_, i) => {
            const row = Array.from(got.slice(i * 10, i * 10 + 10));
            return row.indexOf(Math.max(...row));
          });
          expect(pred).toEqual(want.targets);
          x.dispose();
          out.dispose();
          m.dispose();
        });
      }

      for (const c of golden.cases) {
        it(`${c.composite} on ${c.input} inputs on ${where}: input relevance, per-layer sums, maps at ${Object.keys(c.maps).join(', ')}`, async () => {
          const b = where === 'cpu' ? cpu : gpu;
          const tol = TOL[where];
          const inp = golden.inputs[c.input];
          const key = `${where} ${golden.model} ${c.input} ${c.composite}`;
          const what = `${golden.model} ${c.input} ${c.composite}`;
          const m = await modelOn(golden.model, b);
          const x = bl.tensor(inp.x, golden.shape, b);
          const res = await ex.lrp(m, x, { target: inp.targets, composite: compositeOf(c.composite), ...c.params, seedOutput: 'logit', returnLayers: true });
          try {
            expect(res.attribution.shape).toEqual(golden.shape);
            const attr = await res.attribution.data();
            note(key, 'input', scaledErr(attr, c.attribution));
            expectClose(attr, c.attribution, tol, tol * maxAbs(c.attribution), `${what} input relevance (${where})`);
            const sums = itemSums(attr, n);
            note(key, 'sums', scaledErr(sums, c.attributionSum));
            expectClose(sums, c.attributionSum, tol, tol * maxAbs(c.attributionSum), `${what} input relevance sums (${where})`);

            expect(Object.keys(res.layers).sort()).toEqual([...golden.layers].sort());
            for (const path of golden.layers) {
              const t = res.layers[path];
              expect(t.shape[0], path).toBe(n);
              const data = await t.data();
              const s = itemSums(data, n);
              const w = c.layerSums[path];
              note(key, 'sums', scaledErr(s, w));
              expectClose(s, w, tol, tol * maxAbs(w), `${what} relevance sum at ${path} (${where})`);
              const full = c.maps[path];
              if (full) {
                note(key, 'maps', scaledErr(data, full));
                expectClose(data, full, tol, tol * maxAbs(full), `${what} relevance at ${path} (${where})`);
              }
            }
          } finally {
            x.dispose();
            res.attribution.dispose();
            for (const t of Object.values(res.layers)) t.dispose();
            m.dispose();
          }
        });
      }
    }
  });
}

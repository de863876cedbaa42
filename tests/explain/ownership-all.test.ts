// Ownership (issue 15): no public function disposes or changes a tensor it did not create, nor the
// caller's model or options. Each public explainer, metric, sanity check, uncertainty and
// embedding function is called here on caller-made tensors; afterwards every one of them must be
// alive with the same values, the model's parameters and training flag the same, and the options
// object the same keys and values. CPU backend (the contract is backend-independent; the
// WebGPU side of it is in reliability.test.ts and the *-webgpu tests).
import { beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import * as ex from '../../explain/index.ts';
import { Conv2d, Dropout, Flatten, GlobalAvgPool, Linear, ReLU, Sequential, setInitSeed } from '../../models/index.ts';
import { randArray, rng } from '../helpers.ts';

beforeAll(async () => {
  await bl.init({ backend: 'cpu' });
});

function cnn() {
  setInitSeed(91);
  return new Sequential(
    ['features', new Sequential(new Conv2d(1, 3, 3, { padding: 1 }), new ReLU(), new Conv2d(3, 4, 3, { padding: 1 }), new ReLU())],
    ['pool', new GlobalAvgPool()],
    ['flat', new Flatten()],
    ['drop', new Dropout(0.2)],
    ['fc', new Linear(4, 3)],
  );
}

interface World {
  m: Sequential;
  x: Tensor;
  bg: Tensor;
  attr: Tensor;
  masks: Tensor;
  target: Tensor;
}

type Call = [string, (w: World) => { run: () => Promise<unknown>; opts?: object }];

const calls: Call[] = [
  // gradients
  ['saliency', (w) => { const opts = { target: w.target }; return { run: () => ex.saliency(w.m, w.x, opts), opts }; }],
  ['inputXGradient', (w) => { const opts = { target: 0 } as const; return { opts, run: () => ex.inputXGradient(w.m, w.x, opts) }; }],
  ['guidedBackprop', (w) => { const opts = { target: 1 } as const; return { opts, run: () => ex.guidedBackprop(w.m, w.x, opts) }; }],
  ['deconvnet', (w) => { const opts = { target: 1 } as const; return { opts, run: () => ex.deconvnet(w.m, w.x, opts) }; }],
  ['integratedGradients', (w) => { const opts = { target: w.target, baseline: w.bg.shape[0] === 2 ? w.bg : 0, steps: 4, returnDelta: true } as const; return { run: () => ex.integratedGradients(w.m, w.x, opts), opts }; }],
  ['smoothGrad', (w) => { const opts = { target: 2, samples: 3, stdev: 0.1, seed: 1 }; return { run: () => ex.smoothGrad(w.m, w.x, opts), opts }; }],
  ['deepLift', (w) => { const opts = { target: w.target, baseline: w.bg, returnDelta: true } as const; return { opts, run: () => ex.deepLift(w.m, w.x, opts) }; }],
  ['deepLiftShap', (w) => { const opts = { target: 0, baselines: w.bg, returnDelta: true } as const; return { opts, run: () => ex.deepLiftShap(w.m, w.x, opts) }; }],
  ['gradientShap', (w) => { const opts = { target: 0, baselines: w.bg, samples: 3, stdev: 0.1, seed: 2, returnDelta: true } as const; return { opts, run: () => ex.gradientShap(w.m, w.x, opts) }; }],
  // layers and CAMs
  ['cam', (w) => { const opts = { target: 0, layer: 'features.3' } as const; return { opts, run: () => ex.cam(w.m, w.x, opts) }; }],
  ['gradCam', (w) => { const opts = { target: w.target, layer: w.m.module('features.3'), upsample: true } as const; return { opts, run: () => ex.gradCam(w.m, w.x, opts) }; }],
  ['hiResCam', (w) => { const opts = { target: 1, layer: 'features.3' } as const; return { opts, run: () => ex.hiResCam(w.m, w.x, opts) }; }],
  ['xGradCam', (w) => { const opts = { target: 1, layer: 'features.3' } as const; return { opts, run: () => ex.xGradCam(w.m, w.x, opts) }; }],
  ['layerCam', (w) => { const opts = { target: 1, layer: 'features.1' } as const; return { opts, run: () => ex.layerCam(w.m, w.x, opts) }; }],
  ['scoreCam', (w) => { const opts = { target: 1, layer: 'features.3' } as const; return { opts, run: () => ex.scoreCam(w.m, w.x, opts) }; }],
  ['guidedGradCam', (w) => { const opts = { target: 1, layer: 'features.3' } as const; return { opts, run: () => ex.guidedGradCam(w.m, w.x, opts) }; }],
  ['gradCamPlusPlus', (w) => { const opts = { target: 1, layer: 'features.3' } as const; return { opts, run: () => ex.gradCamPlusPlus(w.m, w.x, opts) }; }],
  ['layerActivation', (w) => { const opts = { layer: 'features.1' } as const; return { opts, run: () => ex.layerActivation(w.m, w.x, opts) }; }],
  ['layerGradientXActivation', (w) => { const opts = { target: 1, layer: 'features.1' } as const; return { opts, run: () => ex.layerGradientXActivation(w.m, w.x, opts) }; }],
  ['layerIntegratedGradients', (w) => { const opts = { target: 1, layer: 'features.1', steps: 3, baseline: w.bg.shape[0] === 2 ? w.bg : 0 } as const; return { opts, run: () => ex.layerIntegratedGradients(w.m, w.x, opts) }; }],
  ['neuronGradient', (w) => { const opts = { layer: 'features.1', neuron: [1, 2, 2] } as const; return { opts, run: () => ex.neuronGradient(w.m, w.x, opts) }; }],
  ['lrp', (w) => { const opts = { target: w.target, composite: 'epsilon-gamma-box', returnLayers: true, returnDelta: true } as const; return { opts, run: () => ex.lrp(w.m, w.x, opts) }; }],
  // perturbation and Shapley
  ['occlusion', (w) => { const opts = { target: w.target, window: 3, stride: 3, baseline: w.bg } as const; return { opts, run: () => ex.occlusion(w.m, w.x, opts) }; }],
  ['predictionDifference', (w) => { const opts = { target: 0, background: w.bg, window: 3, stride: 3, samples: 2 } as const; return { opts, run: () => ex.predictionDifference(w.m, w.x, opts) }; }],
  ['featureAblation', (w) => { const opts = { target: 0, features: w.masks, baseline: w.bg } as const; return { opts, run: () => ex.featureAblation(w.m, w.x, opts) }; }],
  ['featurePermutation', (w) => { const opts = { target: 0, features: ex.grid(3), seed: 1 } as const; return { opts, run: () => ex.featurePermutation(w.m, w.x, opts) }; }],
  ['kernelShap', (w) => { const opts = { target: w.target, features: ex.grid(3), samples: 20, background: w.bg, returnDetails: true, returnDelta: true } as const; return { opts, run: () => ex.kernelShap(w.m, w.x, opts) }; }],
  ['shapleySampling', (w) => { const opts = { target: 0, features: ex.grid(3), samples: 2, baseline: w.bg, returnDelta: true } as const; return { opts, run: () => ex.shapleySampling(w.m, w.x, opts) }; }],
  ['shapleyExact', (w) => { const opts = { target: 0, features: ex.grid(3), baseline: w.bg } as const; return { opts, run: () => ex.shapleyExact(w.m, w.x, opts) }; }],
  ['lime', (w) => { const opts = { target: 0, features: ex.grid(3), samples: 20, seed: 3, baseline: w.bg } as const; return { opts, run: () => ex.lime(w.m, w.x, opts) }; }],
  ['meaningfulPerturbation', (w) => { const opts = { target: 0, steps: 2, baseline: w.bg } as const; return { opts, run: () => ex.meaningfulPerturbation(w.m, w.x, opts) }; }],
  // metrics on the caller's attributions
  ['sparseness', (w) => ({ run: () => ex.sparseness(w.attr, w.x.shape) })],
  ['complexity', (w) => ({ run: () => ex.complexity(w.attr, w.x.shape) })],
  ['pointingGame', (w) => ({ run: () => ex.pointingGame(w.attr, w.x.shape, w.masks) })],
  ['relevanceMass', (w) => ({ run: () => ex.relevanceMass(w.attr, w.x.shape, w.masks) })],
  ['relevanceRank', (w) => ({ run: () => ex.relevanceRank(w.attr, w.x.shape, w.masks) })],
  ['topKIntersection', (w) => { const opts = { k: 5 } as const; return { opts, run: () => ex.topKIntersection(w.attr, w.x.shape, w.masks, opts) }; }],
  ['deletion', (w) => { const opts = { target: w.target, steps: 4 } as const; return { opts, run: () => ex.deletion(w.m, w.x, w.attr, opts) }; }],
  ['insertion', (w) => { const opts = { target: 0, steps: 4, imputation: 'road', seed: 1 } as const; return { opts, run: () => ex.insertion(w.m, w.x, w.attr, opts) }; }],
  ['regionPerturbation', (w) => { const opts = { target: 0, steps: 3 } as const; return { opts, run: () => ex.regionPerturbation(w.m, w.x, w.attr, opts) }; }],
  ['pixelFlipping', (w) => { const opts = { target: 0, steps: 3 } as const; return { opts, run: () => ex.pixelFlipping(w.m, w.x, w.attr, opts) }; }],
  ['faithfulnessCorrelation', (w) => { const opts = { target: 0 } as const; return { opts, run: () => ex.faithfulnessCorrelation(w.m, w.x, w.attr, opts) }; }],
  ['infidelity', (w) => { const opts = { target: w.target, samples: 4, seed: 1 } as const; return { opts, run: () => ex.infidelity(w.m, w.x, w.attr, opts) }; }],
  ['sensitivityMax', (w) => { const opts = { target: [0, 1], samples: 2, seed: 1 } as const; return { opts, run: () => ex.sensitivityMax((x, t) => ex.saliency(w.m, x, { target: t }), w.x, opts) }; }],
  // sanity, uncertainty, embeddings, rendering
  ['modelRandomisation', (w) => { const opts = { ssim: { window: 3 } } as const; return { opts, run: () => ex.modelRandomisation(w.m, w.x, (m, x) => ex.saliency(m, x, { target: 0 }), opts) }; }],
  ['mcDropout', (w) => { const opts = { samples: 3, seed: 1 } as const; return { opts, run: () => ex.mcDropout(w.m, w.x, opts) }; }],
  ['ensemble', (w) => ({ run: () => ex.ensemble([w.m, w.m], w.x) })],
  ['pca', (w) => { const opts = { components: 2 } as const; return { opts, run: () => ex.pca(bl.reshape(w.bg, [3, 36]), opts) }; }],
  ['normalizedMaps', (w) => ({ run: () => ex.normalizedMaps(w.attr) })],
  ['heatmapPng', (w) => ({ run: () => ex.heatmapPng(w.attr, w.x) })],
];

/** A deep copy of an options object for comparison: tensors, modules and functions by identity, the rest by value. */
function snapshot(v: unknown): unknown {
  if (v === null || typeof v !== 'object' || v instanceof bl.Tensor) return v;
  if (Array.isArray(v)) return v.map(snapshot);
  if (Object.getPrototypeOf(v) !== Object.prototype) return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, snapshot(x)]));
}

/** Every tensor (at any depth) of a result, to free what the call handed over. */
function tensorsIn(v: unknown, out: Tensor[] = [], seen = new Set<unknown>()): Tensor[] {
  if (v instanceof bl.Tensor) out.push(v);
  else if (v && typeof v === 'object' && !seen.has(v) && !ArrayBuffer.isView(v)) {
    seen.add(v);
    for (const x of Array.isArray(v) ? v : Object.values(v)) tensorsIn(x, out, seen);
  }
  return out;
}

describe('no public function disposes or changes what the caller owns', () => {
  for (const [name, call] of calls) {
    it(name, async () => {
      const m = cnn();
      m.train(); // a caller mid-training: explainers run in eval mode and give the flag back
      const r = rng(name.length * 7 + 1);
      const bgRows = ['integratedGradients', 'layerIntegratedGradients', 'deepLift', 'occlusion', 'featureAblation', 'shapleySampling', 'shapleyExact', 'lime', 'meaningfulPerturbation'].includes(name) ? 2 : 3;
      const w: World = {
        m,
        x: bl.tensor(randArray(r, 2 * 36, 0, 1), [2, 1, 6, 6]),
        bg: bl.tensor(randArray(r, bgRows * 36, 0, 0.5), [bgRows, 1, 6, 6]),
        attr: bl.tensor(randArray(r, 2 * 36, -1, 1), [2, 1, 6, 6]),
        masks: bl.tensor(Array.from({ length: 72 }, (_, i) => (i % 36 < 12 ? 1 : 0)), [2, 1, 6, 6]),
        target: bl.tensor([2, 0], [2]),
      };
      const owned: [string, Tensor][] = [['x', w.x], ['bg', w.bg], ['attr', w.attr], ['masks', w.masks], ['target', w.target], ...m.namedParameters().map(([p, t]) => [`param ${p}`, t] as [string, Tensor])];
      const before = await Promise.all(owned.map(async ([, t]) => Array.from(await t.data())));
      const params = m.namedParameters();
      const { run, opts } = call(w);
      const optsBefore = snapshot(opts);
      const result = await run();
      for (const [i, [what, t]] of owned.entries()) {
        expect(t.disposed, `${name} disposed the caller's ${what}`).toBe(false);
        expect(Array.from(await t.data()), `${name} changed the caller's ${what}`).toEqual(before[i]);
      }
      expect(snapshot(opts), `${name} changed its options object`).toEqual(optsBefore);
      // the same parameter tensors, not equal-valued replacements (a swap left undone)
      const after = m.namedParameters();
      expect(after.map(([p]) => p)).toEqual(params.map(([p]) => p));
      after.forEach(([p, t], i) => expect(t === params[i][1], `${name} replaced the parameter ${p}`).toBe(true));
      for (const [p, sub] of m.namedModules()) expect(sub.training, `${name} changed the training flag of '${p}'`).toBe(true);
      for (const t of tensorsIn(result)) if (!owned.some(([, o]) => o === t)) t.dispose();
    });
  }
});

// The main job: explain a bundled model's predictions on the available adapter (WebGPU, or the
// float64 CPU backend when there is none), check the results against the CPU reference, and write
// an HTML report with heatmaps.
//
//   npm run demo            (writes demo-output/report.html)
import { mkdirSync, writeFileSync } from 'node:fs';
import * as bl from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import * as ex from '../explain/index.ts';
import { datasetSplits } from '../models/data/index.ts';
import { loadBundled } from '../models/zoo/index.ts';
import { heatmapPng } from '../explain/heatmap.ts';

const t0 = performance.now();
const backend = await bl.init({ backend: 'auto' });
const i = backend.info;
console.log(`adapter: ${i.backend} | vendor ${i.vendor || '-'} | architecture ${i.architecture || '-'} | device ${i.device || '-'} | ${i.description || ''}${i.software ? ' (software)' : ''}`);

// Four held-out images of the synthetic shapes set (where the evidence is: the shape).
const split = datasetSplits('shapes').test;
const n = 4;
const per = split.sampleShape.reduce((a, b) => a * b, 1);
const x = bl.tensor(split.x.subarray(0, n * per), [n, ...split.sampleShape]);
const labels = Array.from(split.y.subarray(0, n));
const model = await loadBundled('shapes-cnn');
const names = split.classNames ?? [];

const probs = await bl.tidy(() => bl.softmax(model.call(x), 1)).data();
const pred = labels.map((_, k) => {
  const row = Array.from(probs.subarray(k * 4, k * 4 + 4));
  return row.indexOf(Math.max(...row));
});
console.log(`shapes-cnn on ${n} held-out images: ${pred.map((p, k) => `${names[p] ?? p} (${(probs[k * 4 + p] * 100).toFixed(1)}%, label ${names[labels[k]] ?? labels[k]})`).join(', ')}`);

const methods: [string, () => Promise<Tensor>][] = [
  ['saliency', () => ex.saliency(model, x, { target: 'predicted' })],
  ['integrated gradients (32 steps)', () => ex.integratedGradients(model, x, { target: 'predicted', steps: 32 })],
  ['guided backprop', () => ex.guidedBackprop(model, x, { target: 'predicted' })],
  ['Grad-CAM', () => ex.gradCam(model, x, { target: 'predicted', layer: 'features', upsample: true })],
  ['Grad-CAM++ (exact derivatives)', () => ex.gradCamPlusPlus(model, x, { target: 'predicted', layer: 'features', upsample: true })],
  ['LRP (epsilon-plus-flat, BN folded)', () => ex.lrp(model, x, { target: 'predicted' })],
  ['KernelSHAP (8x8 grid, 256 samples)', () => ex.kernelShap(model, x, { target: 'predicted', features: ex.grid(8), samples: 256, seed: 0 })],
];
const results: [string, Tensor][] = [];
for (const [name, run] of methods) {
  const s = performance.now();
  const r = await run();
  results.push([name, r]);
  console.log(`  ${name.padEnd(32)} ${((performance.now() - s) / 1000).toFixed(2)} s`);
}

// IG's completeness check, and the same Grad-CAM on the float64 CPU reference.
// (ReLU and max-pool kinks along the path make the integrand piecewise constant: the error shrinks
// with more steps, slowly.)
const ig = await ex.integratedGradients(model, x, { target: 'predicted', steps: 32, returnDelta: true });
const sums = await bl.tidy(() => bl.sum(bl.reshape(ig.attributions, [n, -1]), 1)).data();
const deltas = await ig.delta.data();
console.log(`integrated gradients completeness at 32 steps, per image: F(x) - F(0) = ${Array.from(sums, (s2, k) => (s2 - deltas[k]).toFixed(3)).join(', ')}; sum(attr) - (F(x) - F(0)) = ${Array.from(deltas, (d) => d.toFixed(3)).join(', ')}`);
if (backend.name !== 'cpu') {
  const cpu = await bl.init({ backend: 'cpu', setDefault: false });
  bl.setDefaultBackend(cpu);
  const mc = await loadBundled('shapes-cnn');
  const gc = await ex.gradCam(mc, bl.tensor(split.x.subarray(0, n * per), [n, ...split.sampleShape]), { target: 'predicted', layer: 'features', upsample: true });
  const a = await results[3][1].data(), b = await gc.data();
  const scale = Math.max(...Array.from(b, Math.abs));
  const diff = Math.max(...Array.from(a, (v, k) => Math.abs(v - b[k])));
  console.log(`Grad-CAM on ${i.architecture || i.backend} vs the float64 CPU reference: max |diff| = ${diff.toExponential(2)} (map scale ${scale.toFixed(3)})`);
  bl.setDefaultBackend(backend);
  if (!(diff <= 1e-4 * Math.max(1, scale))) {
    console.error('demo: the WebGPU result differs from the CPU reference');
    process.exit(1);
  }
}

// Which explanation is faithful? Deletion AUC (lower is better: the predicted class's probability
// falls fastest when what the method calls relevant is removed) and the relevance mass on the
// shape (the data set's ground-truth masks), against a random attribution.
const masks = { data: (split as unknown as { masks: Float32Array }).masks.subarray(0, n * 32 * 32), shape: [n, 32, 32] };
const random = bl.rand(x.shape, { seed: 1 });
const scored: [string, Tensor][] = [...results, ['random (reference)', random]];
const trust: string[] = [];
for (const [name, t] of scored) {
  const del = await ex.deletion(model, x, t, { target: pred });
  const mass = await ex.relevanceMass(t, x.shape, masks);
  const mean = (v: Float64Array) => v.reduce((a2, b2) => a2 + b2, 0) / v.length;
  trust.push(`<tr><th>${name}</th><td>${mean(del.auc).toFixed(3)}</td><td>${mean(mass).toFixed(3)}</td></tr>`);
  console.log(`  ${name.padEnd(36)} deletion AUC ${mean(del.auc).toFixed(3)}  relevance mass on the shape ${mean(mass).toFixed(3)}`);
}

// The report: one row per method, the inputs and heatmaps over them.
const enc = (b: Uint8Array) => `data:image/png;base64,${Buffer.from(b).toString('base64')}`;
const rows: string[] = [];
const cell = async (t: Tensor, k: number, alpha?: number) => `<td><img src="${enc(await heatmapPng(bl.slice(t, [k], [1]), bl.slice(x, [k], [1]), alpha === undefined ? {} : { alpha }))}"></td>`;
rows.push(`<tr><th>input</th>${(await Promise.all(labels.map((_, k) => cell(x, k, 0)))).join('')}</tr>`);
rows.push(`<tr><th>prediction</th>${pred.map((p, k) => `<td>${names[p] ?? p} (${(probs[k * 4 + p] * 100).toFixed(0)}%)</td>`).join('')}</tr>`);
for (const [name, t] of results) rows.push(`<tr><th>${name}</th>${(await Promise.all(labels.map((_, k) => cell(t, k)))).join('')}</tr>`);
const html = `<!doctype html><meta charset="utf-8"><title>backlight demo</title>
<style>body{font-family:system-ui,sans-serif;margin:1.5em}td,th{padding:6px;border:1px solid #ddd;text-align:center}img{width:128px;image-rendering:pixelated}table{border-collapse:collapse}</style>
<h1>backlight: why did shapes-cnn say that?</h1><p>Adapter: ${i.backend} ${i.architecture} ${i.description}. Heatmaps are normalised per image.</p><table>${rows.join('\n')}</table>
<h2>Which explanation to trust?</h2><table><tr><th>method</th><th>deletion AUC (&darr; lower is better)</th><th>relevance mass on the shape (&uarr; higher is better)</th></tr>${trust.join('\n')}</table>
<p>Deletion: the mean probability of the predicted class as pixels are set to 0 most relevant first (20 steps). Relevance mass: the share of the positive relevance on the shape's mask. For a full comparison: <code>npx backlight evaluate --model shapes-cnn --out report.html</code>.</p>`;
mkdirSync('demo-output', { recursive: true });
writeFileSync('demo-output/report.html', html);
console.log(`wrote demo-output/report.html; total ${((performance.now() - t0) / 1000).toFixed(1)} s`);
process.exit(0);

// The main job: explain the bundled models with every family of methods on the available adapter
// (WebGPU, or the float64 CPU backend when there is none), check the GPU against the CPU
// reference, and write one self-contained HTML report (explain/report) that says what each map
// shows.
//
//   npm run demo                     (writes demo-output/report.html and prints a file:// link)
//   npx tsx examples/demo.ts --quick (fewer items and samples: what the test runs)
//
// Sections: shapes-cnn under every image method with its completeness checks; "why was this a
// wolf?" (spurious-cnn learned the background texture, the maps show it, relevance mass and
// accuracy under a flipped background measure it); faithfulness and localisation scores against a
// random attribution; breast-cancer-mlp's KernelSHAP values as waterfall and beeswarm plots and
// its MC-dropout uncertainty; digits-cnn's calibration.
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as bl from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import * as ex from '../explain/index.ts';
import { encodePng } from '../explain/heatmap.ts';
import { renderReport, type AttributionMap, type ImageItem, type MethodInfo, type ReportDocument, type ReportSection, type TabularRow } from '../explain/report/index.ts';
import { datasetSplits, subset, type SpuriousDataset, type TabularDataset } from '../models/data/index.ts';
import type { Dataset } from '../models/train.ts';
import { loadBundled } from '../models/zoo/index.ts';

export interface DemoOptions {
  /** Folder of the report (default demo-output). */
  outDir?: string;
  /** The same as outDir (what `backlight demo --out DIR` passes). */
  out?: string;
  /** Fewer items, steps and samples (seconds instead of a minute; the test uses it). */
  quick?: boolean;
  /** 'auto' (default): WebGPU, else the float64 CPU backend. */
  backend?: 'auto' | 'webgpu' | 'cpu';
  /** Where progress lines go (default console.log). */
  print?: (line: string) => void;
}

export interface DemoResult {
  reportPath: string;
  reportUrl: string;
  seconds: number;
  adapter: string;
  /** Section titles, in order. */
  sections: string[];
  /** Max |WebGPU - CPU| of Grad-CAM, null on the CPU backend. */
  gpuVsCpu: number | null;
}

type Masked = Dataset & { masks: Float32Array };

const per = (d: Dataset) => d.sampleShape.reduce((a, b) => a * b, 1);

function rows(d: Dataset, idx: number[]): Tensor {
  const p = per(d);
  const out = new Float32Array(idx.length * p);
  idx.forEach((i, k) => out.set(d.x.subarray(i * p, (i + 1) * p), k * p));
  return bl.tensor(out, [idx.length, ...d.sampleShape]);
}

function maskRows(d: Masked, idx: number[]): { data: Float32Array; shape: number[] } {
  const [, h, w] = d.sampleShape;
  const out = new Float32Array(idx.length * h * w);
  idx.forEach((i, k) => out.set(d.masks.subarray(i * h * w, (i + 1) * h * w), k * h * w));
  return { data: out, shape: [idx.length, h, w] };
}

function softmaxRows(logits: ArrayLike<number>, n: number, c: number): number[][] {
  return Array.from({ length: n }, (_, i) => {
    const z = Array.from({ length: c }, (_, j) => logits[i * c + j]);
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  });
}

const argmax = (p: number[]) => p.indexOf(Math.max(...p));
const mean = (v: ArrayLike<number>) => Array.from(v).reduce((a, b) => a + b, 0) / v.length;

/** One explanation method: how to run it on a batch, and what its caption must say. */
interface Method {
  info: MethodInfo;
  run: (x: Tensor, target: number[]) => Promise<Tensor>;
  /** IG and DeepLIFT claim sum(attr) = f(x) - f(baseline): the report checks it. */
  completeness?: boolean;
}

/** Runs every method on x, timing each; returns the host copies (per item) and the tensors. */
async function explainAll(methods: Method[], x: Tensor, target: number[], print: (l: string) => void, label: string): Promise<{ maps: Float32Array[][]; tensors: Tensor[] }> {
  const maps: Float32Array[][] = [];
  const tensors: Tensor[] = [];
  const n = x.shape[0];
  for (const m of methods) {
    const s = performance.now();
    const t = await m.run(x, target);
    const data = Float32Array.from(await t.data());
    m.info.seconds = (performance.now() - s) / 1000;
    const k = data.length / n;
    maps.push(Array.from({ length: n }, (_, i) => data.subarray(i * k, (i + 1) * k)));
    tensors.push(t);
    print(`  ${label}: ${m.info.name.padEnd(34)} ${m.info.seconds.toFixed(2)} s`);
  }
  return { maps, tensors };
}

export async function runDemo(opts: DemoOptions = {}): Promise<DemoResult> {
  const print = opts.print ?? ((l: string) => console.log(l));
  const quick = opts.quick ?? false;
  const outDir = opts.outDir ?? opts.out ?? 'demo-output';
  const t0 = performance.now();
  const backend = await bl.init({ backend: opts.backend ?? 'auto' });
  const i = backend.info;
  const adapter = backend.name === 'cpu' ? 'float64 CPU backend (no WebGPU adapter)' : `${i.adapter ?? 'WebGPU'} (${[i.vendor, i.architecture, i.description].filter(Boolean).join(', ')})${i.software ? ', software' : ''}`;
  print(`adapter: ${adapter}`);
  const sections: ReportSection[] = [];
  const nShow = quick ? 2 : 4;
  const nEval = quick ? 4 : 8;
  const igSteps = quick ? 16 : 32;
  const shapSamples = quick ? 128 : 512;

  // ---------------------------------------------------------------- shapes-cnn, every image method
  const shapes = datasetSplits('shapes').test as Masked;
  const shapesCnn = await loadBundled('shapes-cnn');
  const sIdx = Array.from({ length: nEval }, (_, k) => k);
  const xs = rows(shapes, sIdx);
  const sLogits = await bl.tidy(() => shapesCnn.call(xs)).data();
  const sNames = shapes.classNames ?? [];
  const sProbs = softmaxRows(sLogits, nEval, sNames.length);
  const sPred = sProbs.map(argmax);
  const zeroLogits = await bl.tidy(() => shapesCnn.call(bl.zeros(xs.shape))).data();
  print(`shapes-cnn on ${nEval} test images: ${sPred.map((p, k) => `${sNames[p]} ${(100 * sProbs[k][p]).toFixed(0)}%`).join(', ')}`);

  const imageMethods = (model: typeof shapesCnn): Method[] => [
    { info: { name: 'Saliency', sign: 'absolute', question: 'Which pixels would change the score most if nudged? (|gradient|; 1 backward pass)' }, run: (x, t) => ex.saliency(model, x, { target: t }) },
    { info: { name: 'Integrated gradients', sign: 'signed', steps: igSteps, baseline: 'black image (zeros)', question: 'How much did each pixel move the score from the baseline\'s? (path integral of gradients)' }, run: (x, t) => ex.integratedGradients(model, x, { target: t, steps: igSteps }), completeness: true },
    { info: { name: 'DeepLIFT (rescale)', sign: 'signed', baseline: 'black image (zeros)', question: 'The same question as IG, by finite-difference multipliers in one backward pass' }, run: (x, t) => ex.deepLift(model, x, { target: t }), completeness: true },
    { info: { name: 'Guided backprop', sign: 'signed', rules: 'guided ReLU (positive gradient where the input was positive)', question: 'Which pixels excite the class, by a rectified backward pass (sharp, but weakly tied to the weights)' }, run: (x, t) => ex.guidedBackprop(model, x, { target: t }) },
    { info: { name: 'Grad-CAM', sign: 'positive', layer: 'features', upsampled: true, question: 'Which regions of the last conv layer\'s map support the class? (ReLU of gradient-weighted channels)' }, run: (x, t) => ex.gradCam(model, x, { target: t, layer: 'features', upsample: true }) },
    { info: { name: 'Grad-CAM++', sign: 'positive', layer: 'features', upsampled: true, notes: ['exact higher-order derivatives'], question: 'Grad-CAM with per-position weights, better for several instances' }, run: (x, t) => ex.gradCamPlusPlus(model, x, { target: t, layer: 'features', upsample: true }) },
    { info: { name: 'LRP', sign: 'signed', rules: 'epsilon-plus-flat (z+ in convs, epsilon in linear, flat first layer)', canonizers: 'BatchNorm folded into the convs', question: 'How does the logit redistribute backwards, layer by layer? (relevance sums to the logit)' }, run: (x, t) => ex.lrp(model, x, { target: t }) },
    { info: { name: 'Occlusion', sign: 'signed', baseline: '0', features: '8 x 8 windows, stride 4', question: 'How much does the score drop when a patch is blacked out? (one forward pass per window)' }, run: (x, t) => ex.occlusion(model, x, { target: t, window: [1, 8, 8], stride: [1, 4, 4], baseline: 0 }) },
    { info: { name: 'KernelSHAP', sign: 'signed', samples: shapSamples, baseline: '0', features: '8 x 8 grid of 4 x 4 cells', question: 'What is each cell\'s Shapley value for the score? (weighted regression over coalitions)' }, run: (x, t) => ex.kernelShap(model, x, { target: t, features: ex.grid(8), samples: shapSamples, seed: 0, baseline: 0 }) },
  ];
  const sMethods = imageMethods(shapesCnn);
  const sRes = await explainAll(sMethods, xs, sPred, print, 'shapes-cnn');
  const imageItems = (d: Dataset, idx: number[], probs: number[][], pred: number[], res: { maps: Float32Array[][] }, methods: Method[], fx: ArrayLike<number>, fb: ArrayLike<number>, notes?: string[], show = nShow): ImageItem[] => {
    const c = probs[0].length;
    const shape = d.sampleShape as [number, number, number];
    return idx.slice(0, show).map((di, k) => ({
      label: `${d === shapes ? 'shapes test' : 'image'} #${di}: ${d.classNames?.[d.y[di]] ?? d.y[di]}`,
      input: { values: d.x.subarray(di * per(d), (di + 1) * per(d)), shape },
      prediction: { probabilities: probs[k], trueClass: d.y[di], target: pred[k] },
      maps: methods.map((m, j): AttributionMap => ({
        values: res.maps[j][k],
        shape: res.maps[j][k].length === per(d) ? shape : [1, shape[1], shape[2]],
        ...(m.completeness ? { completeness: { fx: fx[k * c + pred[k]], fBaseline: fb[k * c + pred[k]] } } : {}),
      })),
      note: notes?.[k],
    }));
  };
  sections.push({
    kind: 'images', title: 'shapes-cnn: where is the evidence, by each method?',
    intro: 'A CNN (three conv-BatchNorm-ReLU blocks, global average pooling, a linear layer) that tells four shapes apart on noise. The evidence is the shape itself (the data set has its masks), so a faithful map lights it up. Every map explains the predicted class.',
    classNames: sNames, methods: sMethods.map((m) => m.info),
    items: imageItems(shapes, sIdx, sProbs, sPred, sRes, sMethods, sLogits, zeroLogits),
  });

  // ------------------------------------------------------------------ trust: deletion, relevance mass
  const sMasks = maskRows(shapes, sIdx);
  const random = bl.rand(xs.shape, { seed: 1 });
  const trustRows: (string | number)[][] = [];
  for (const [j, m] of [...sMethods.map((m, j) => [j, m.info.name] as const), [-1, 'random (reference)'] as const]) {
    const t = j < 0 ? random : sRes.tensors[j];
    const del = await ex.deletion(shapesCnn, xs, t, { target: sPred });
    const mass = await ex.relevanceMass(t, xs.shape, sMasks);
    trustRows.push([m, mean(del.auc), mean(mass)]);
  }
  print(`  trust: ${trustRows.map((r) => `${r[0]} del ${(r[1] as number).toFixed(3)} mass ${(r[2] as number).toFixed(3)}`).join('; ')}`);

  // The same Grad-CAM on the float64 CPU reference: the GPU's numbers are checked, not trusted.
  let gpuVsCpu: number | null = null;
  if (backend.name !== 'cpu') {
    const cpu = await bl.init({ backend: 'cpu', setDefault: false });
    bl.setDefaultBackend(cpu);
    try {
      const mc = await loadBundled('shapes-cnn');
      const xc = rows(shapes, sIdx);
      const gc = await ex.gradCam(mc, xc, { target: sPred, layer: 'features', upsample: true });
      const b = await gc.data();
      const a = await sRes.tensors[4].data();
      gpuVsCpu = Math.max(...Array.from(a, (v, k) => Math.abs(v - b[k])));
      const scale = Math.max(...Array.from(b, Math.abs));
      print(`  Grad-CAM on ${i.adapter ?? 'WebGPU'} vs the float64 CPU reference: max |diff| ${gpuVsCpu.toExponential(2)} (map scale ${scale.toFixed(3)})`);
      gc.dispose(); xc.dispose(); mc.dispose();
      if (!(gpuVsCpu <= 1e-4 * Math.max(1, scale))) throw new Error(`demo: Grad-CAM on WebGPU differs from the CPU reference by ${gpuVsCpu}`);
    } finally {
      bl.setDefaultBackend(backend);
    }
  }

  // -------------------------------------------------------------- why was this a wolf? (spurious-cnn)
  const sp = datasetSplits('spurious');
  const spTest = sp.test as SpuriousDataset, spRev = sp.reversed as SpuriousDataset;
  const spNames = spTest.classNames ?? [];
  const tex = spTest.textureNames;
  const spurious = await loadBundled('spurious-cnn');
  const accuracy = async (d: Dataset, n: number) => {
    let right = 0;
    for (let s = 0; s < n; s += 100) {
      const idx = Array.from({ length: Math.min(100, n - s) }, (_, k) => s + k);
      const xb = rows(d, idx);
      const lg = await bl.tidy(() => spurious.call(xb)).data();
      xb.dispose();
      idx.forEach((di, k) => { if ((lg[2 * k + 1] > lg[2 * k] ? 1 : 0) === d.y[di]) right++; });
    }
    return right / n;
  };
  const nAcc = quick ? 100 : 400;
  const accTest = await accuracy(spTest, nAcc), accRev = await accuracy(spRev, nAcc);
  print(`spurious-cnn accuracy: ${(100 * accTest).toFixed(1)}% when the background agrees with the class 95% of the time, ${(100 * accRev).toFixed(1)}% when it never does`);
  // Two test images whose texture matches the class, then the flipped-background ones.
  const firstOf = (d: SpuriousDataset, want: (k: number) => boolean) => { for (let k = 0; k < d.n; k++) if (want(k)) return k; throw new Error('demo: no such image'); };
  const agree = [0, 1].map((c) => firstOf(spTest, (k) => spTest.y[k] === c && spTest.textures[k] === c));
  const revIdx = Array.from({ length: nEval }, (_, k) => k);
  const xw = bl.concat([rows(spTest, agree), rows(spRev, revIdx)], 0);
  const wLogits = await bl.tidy(() => spurious.call(xw)).data();
  const wZero = await bl.tidy(() => spurious.call(bl.zeros(xw.shape))).data();
  const wProbs = softmaxRows(wLogits, xw.shape[0], 2);
  const wPred = wProbs.map(argmax);
  const wMethods = imageMethods(spurious).filter((m) => ['Integrated gradients', 'Grad-CAM', 'LRP', 'Occlusion'].includes(m.info.name));
  const wRes = await explainAll(wMethods, xw, wPred, print, 'spurious-cnn');
  const allW = [...agree.map((k) => ({ d: spTest, k })), ...revIdx.map((k) => ({ d: spRev, k }))];
  const wItems: ImageItem[] = [0, 1, 2, 3].map((b) => {
    const { d, k } = allW[b];
    const c = d.y[k], t = d.textures[k];
    const items = imageItems(d, [k], [wProbs[b]], [wPred[b]], { maps: wRes.maps.map((m) => [m[b]]) }, wMethods, wLogits.subarray(2 * b, 2 * b + 2), wZero.subarray(2 * b, 2 * b + 2), undefined, 1);
    items[0].label = `${spNames[c]} on ${tex[t]} (${d === spTest ? 'test: texture agrees with the class' : 'flipped: the other class\'s texture'})`;
    items[0].note = `In training, ${tex[t]} went with "${spNames[t]}" 95% of the time. The model says "${spNames[wPred[b]]}".`;
    return items[0];
  });
  // Relevance mass on the object: spurious-cnn on flipped backgrounds vs shapes-cnn on its own data.
  const wMasks = maskRows(spRev, revIdx);
  const revSlice = (t: Tensor) => bl.slice(t, [2], [nEval]);
  const wolfRows: (string | number)[][] = [];
  const wRandom = bl.rand([nEval, ...spRev.sampleShape], { seed: 2 });
  for (const [j, name] of [...wMethods.map((m, j) => [j, m.info.name] as const), [-1, 'random (reference)'] as const]) {
    const tw = j < 0 ? wRandom : revSlice(wRes.tensors[j]);
    const mw = mean(await ex.relevanceMass(tw, [nEval, ...spRev.sampleShape], wMasks));
    const sj = j < 0 ? -1 : sMethods.findIndex((m) => m.info.name === name);
    const ms = mean(await ex.relevanceMass(sj < 0 ? random : sRes.tensors[sj], xs.shape, sMasks));
    wolfRows.push([name, mw, ms]);
    if (j >= 0) tw.dispose();
  }
  const objFrac = mean(wMasks.data);
  const wolfImages: ReportSection = {
    kind: 'images', title: 'Why was this a wolf? spurious-cnn looks at the background',
    intro: `spurious-cnn tells a circle from a square (the small bright object). In its training data 95% of circles sat on stripes and 95% of squares on dots, like huskies photographed on grass and wolves on snow. It scores ${(100 * accTest).toFixed(1)}% on test images with the same correlation and ${(100 * accRev).toFixed(1)}% when every background belongs to the other class: it learned the texture. The maps show where it looks; the table below measures it: on flipped backgrounds ${(100 * (wolfRows[0][1] as number)).toFixed(1)}% of integrated gradients' positive relevance falls on the object (${(100 * objFrac).toFixed(1)}% of the image), against ${(100 * (wolfRows[0][2] as number)).toFixed(1)}% on the shape for shapes-cnn.`,
    classNames: spNames, methods: wMethods.map((m) => m.info), items: wItems,
  };
  sections.push(wolfImages);
  sections.push({
    kind: 'table', title: 'Measured: how much of the positive relevance falls on the object?',
    intro: `Relevance mass (Arras et al. 2022): the share of positive relevance inside the object's mask, mean over ${nEval} images. The object covers ${(100 * objFrac).toFixed(1)}% of a spurious image, so a map that ignores it scores about that (the random row).`,
    columns: ['method', 'spurious-cnn, flipped backgrounds', 'shapes-cnn, shapes on noise'], rows: wolfRows, best: [null, 'max', 'max'],
    caption: 'The same methods put much of the relevance on the shape for shapes-cnn and little on the object for spurious-cnn, whose evidence is the texture around it.',
  });
  sections.push({
    kind: 'table', title: 'Which explanation of shapes-cnn to trust?',
    intro: `Deletion AUC (Petsiuk et al. 2018): the predicted class's probability as pixels are set to 0, most relevant first, averaged over the curve; lower is more faithful. Relevance mass on the shape: higher is better localised. Mean over ${nEval} test images, against a random attribution.`,
    columns: ['method', 'deletion AUC (lower is better)', 'relevance mass on the shape (higher is better)'], rows: trustRows, best: [null, 'min', 'max'],
    caption: `Grad-CAM on the ${backend.name === 'cpu' ? 'CPU backend (no GPU check)' : `GPU matches the float64 CPU backend to ${gpuVsCpu!.toExponential(1)}`}.`,
  });

  // --------------------------------------------------------- tabular: KernelSHAP and MC dropout
  const bc = datasetSplits('breast-cancer');
  const bcTest = bc.test as TabularDataset, bcTrain = bc.train as TabularDataset;
  const mlp = await loadBundled('breast-cancer-mlp');
  const nTab = quick ? 6 : 24;
  // Half malignant, half benign rows of the test split; the background every 10th training row.
  const byClass = (c: number) => Array.from({ length: bcTest.n }, (_, k) => k).filter((k) => bcTest.y[k] === c).slice(0, nTab / 2);
  const tIdx = [0, 1].flatMap((c) => byClass(c)).sort((a, b) => a - b);
  const xt = rows(bcTest, tIdx);
  const bg = rows(bcTrain, Array.from({ length: quick ? 12 : 40 }, (_, k) => 10 * k));
  // The explained output: the log-odds of malignant, logit 0 - logit 1 (one logit of a two-class
  // softmax alone has an arbitrary offset).
  const logOdds = (out: Tensor) => bl.reshape(bl.sub(bl.slice(out, [0, 0], [out.shape[0], 1]), bl.slice(out, [0, 1], [out.shape[0], 1])), [out.shape[0]]);
  const st = performance.now();
  const shapSamples2 = quick ? 256 : 1024;
  const shap = await ex.kernelShap(mlp, xt, { target: logOdds, features: ex.columns(), background: bg, samples: shapSamples2, seed: 0, returnDetails: true });
  const shapInfo: MethodInfo = { name: 'KernelSHAP', sign: 'signed', samples: shapSamples2, baseline: `mean over ${bg.shape[0]} training rows (interventional)`, features: 'one per column', question: 'How much did each measurement move the log-odds of malignant from its average over the background?', seconds: (performance.now() - st) / 1000 };
  print(`  breast-cancer-mlp: KernelSHAP on ${nTab} rows ${shapInfo.seconds!.toFixed(2)} s`);
  const names = bcTest.featureNames ?? Array.from({ length: 30 }, (_, k) => `x${k}`);
  const tabRows: TabularRow[] = tIdx.map((di, k) => ({
    label: `test row ${di} (${bcTest.classNames?.[bcTest.y[di]] ?? bcTest.y[di]}, P(malignant) ${(100 / (1 + Math.exp(-shap.prediction[k]))).toFixed(1)}%)`,
    values: shap.values[k], featureValues: bcTest.x.subarray(di * 30, (di + 1) * 30), baseValue: shap.baseValue[k], prediction: shap.prediction[k],
  }));
  sections.push({
    kind: 'tabular', title: 'breast-cancer-mlp: which measurements drove the diagnosis?',
    intro: 'An MLP on the 30 raw features of the Wisconsin breast-cancer data. KernelSHAP values of the log-odds of malignant (logit 0 - logit 1): the waterfalls add each feature\'s value to the background average, ending at the model\'s output; the beeswarm shows every explained row.',
    method: shapInfo, outputName: 'log-odds of malignant', featureNames: names, rows: tabRows, waterfall: [0, tabRows.findIndex((r, k) => bcTest.y[tIdx[k]] !== bcTest.y[tIdx[0]])], maxDisplay: 10,
  });
  // MC dropout: the same rows, and uniform noise in the features' ranges (inputs it never saw).
  const mcRows: (string | number)[][] = [];
  const u = await ex.mcDropout(mlp, xt, { samples: 32, seed: 0 });
  const [um, us, ue, ui] = await Promise.all([u.mean.data(), u.std.data(), u.entropy.data(), u.mutualInformation.data()]);
  for (let k = 0; k < Math.min(nTab, 6); k++) mcRows.push([`test row ${tIdx[k]} (${bcTest.classNames?.[bcTest.y[tIdx[k]]] ?? bcTest.y[tIdx[k]]})`, um[2 * k], us[2 * k], ue[k], ui[k]]);
  // Noise: uniform in the box of +-3 training standard deviations around the training mean.
  const mu = new Float64Array(30), sd = new Float64Array(30);
  for (let r = 0; r < bcTrain.n; r++) for (let f = 0; f < 30; f++) mu[f] += bcTrain.x[r * 30 + f] / bcTrain.n;
  for (let r = 0; r < bcTrain.n; r++) for (let f = 0; f < 30; f++) sd[f] += (bcTrain.x[r * 30 + f] - mu[f]) ** 2 / bcTrain.n;
  const noiseT = bl.rand([nTab, 30], { seed: 3 });
  const noiseU = await noiseT.data();
  noiseT.dispose();
  const noise = bl.tensor(Float32Array.from(noiseU, (v, k) => mu[k % 30] + (6 * v - 3) * Math.sqrt(sd[k % 30])), [nTab, 30]);
  const un = await ex.mcDropout(mlp, noise, { samples: 32, seed: 0 });
  const [ne, ni, ns] = await Promise.all([un.entropy.data(), un.mutualInformation.data(), un.std.data()]);
  mcRows.push([`mean over the ${nTab} test rows`, mean(Array.from({ length: nTab }, (_, k) => um[2 * k])), mean(Array.from({ length: nTab }, (_, k) => us[2 * k])), mean(ue), mean(ui)]);
  mcRows.push([`mean over ${nTab} rows of noise (+-3 sd box)`, null as unknown as number, mean(Array.from({ length: nTab }, (_, k) => ns[2 * k])), mean(ne), mean(ni)]);
  print(`  MC dropout entropy: test ${mean(ue).toFixed(3)}, noise ${mean(ne).toFixed(3)} nats`);
  sections.push({
    kind: 'table', title: 'breast-cancer-mlp: how sure is it? (MC dropout, 32 samples)',
    intro: 'Dropout kept on at prediction time (Gal & Ghahramani 2016): the spread of 32 stochastic predictions. Entropy is the total uncertainty; mutual information the part the samples disagree on (what more data would reduce).',
    columns: ['rows', 'P(malignant), mean', 'std', 'entropy (nats)', 'mutual information (nats)'], rows: mcRows, digits: 3,
    caption: `Measured: mean entropy ${mean(ue).toFixed(3)} nats on test rows, ${mean(ne).toFixed(3)} on noise. ${mean(ne) > mean(ue) ? 'Inputs unlike the training data get less certain predictions here' : 'Here the noise is not flagged'}; a ReLU network can still be confidently wrong far from its data, which is what out-of-distribution scores are for.`,
  });

  // ------------------------------------------------------------------- calibration (digits-cnn)
  const digits = datasetSplits('digits').test;
  const digitsCnn = await loadBundled('digits-cnn');
  const half = Math.floor(digits.n / 2);
  const cal = await ex.calibrationReport(digitsCnn, subset(digits, Array.from({ length: half }, (_, k) => k)), subset(digits, Array.from({ length: digits.n - half }, (_, k) => half + k)));
  print(`digits-cnn calibration: ECE ${(100 * cal.ece).toFixed(2)}% -> ${(100 * cal.ece_after_temperature).toFixed(2)}% at T = ${cal.temperature.toFixed(2)}`);
  sections.push({ kind: 'figure', title: 'digits-cnn: are its probabilities honest? (before temperature scaling)', svg: ex.reliabilityDiagramSvg(cal.bins_before, { title: 'digits-cnn, test half 2, T = 1' }), caption: `Accuracy against confidence in 15 bins; the diagonal is perfect calibration. ECE ${(100 * cal.ece).toFixed(2)}%, accuracy ${(100 * cal.accuracy).toFixed(1)}%.` });
  sections.push({ kind: 'figure', title: `After temperature scaling (T = ${cal.temperature.toFixed(2)}, fitted on test half 1)`, svg: ex.reliabilityDiagramSvg(cal.bins_after, { title: `digits-cnn, T = ${cal.temperature.toFixed(2)}` }), caption: `ECE ${(100 * cal.ece_after_temperature).toFixed(2)}%. T < 1 sharpens the probabilities: the model was underconfident.` });

  // ------------------------------------------------------------------------------ the report
  const seconds = (performance.now() - t0) / 1000;
  const doc: ReportDocument = {
    title: 'backlight: why did the models say that?',
    subtitle: 'Every family of explanation methods on the bundled models, with what each map shows and how far to trust it.',
    meta: [
      { label: 'adapter', value: adapter },
      { label: 'models', value: 'shapes-cnn, spurious-cnn, breast-cancer-mlp, digits-cnn (bundled, trained by the project)' },
      { label: 'mode', value: quick ? 'quick (fewer items, steps and samples)' : 'full' },
      { label: 'time', value: `${seconds.toFixed(1)} s` },
    ],
    sections: [
      { kind: 'text', title: 'How to read this report', paragraphs: [
        'Each heatmap has its own colour bar with values. Signed maps (red for the class, blue against, white at 0) use a diverging scale symmetric about 0; absolute and positive maps use a sequential one from 0. The caption of each method says what it answers and how it was run.',
        'Integrated gradients and DeepLIFT promise that the attributions add up to f(x) - f(baseline) for the explained logit; each of their maps states the gap, flagged when it exceeds 5%.',
      ] },
      ...sections,
    ],
  };
  const html = await renderReport(doc, { encodePng });
  mkdirSync(outDir, { recursive: true });
  const reportPath = resolve(join(outDir, 'report.html'));
  writeFileSync(reportPath, html);
  const reportUrl = pathToFileURL(reportPath).href;
  print(`wrote ${reportUrl} (${(html.length / 1024).toFixed(0)} KiB); total ${seconds.toFixed(1)} s`);

  for (const t of [xs, random, xw, wRandom, xt, bg, noise, ...sRes.tensors, ...wRes.tensors, shap.attributions, u.mean, u.std, u.entropy, u.mutualInformation, un.mean, un.std, un.entropy, un.mutualInformation]) t.dispose();
  for (const m of [shapesCnn, spurious, mlp, digitsCnn]) m.dispose();
  return { reportPath, reportUrl, seconds, adapter, sections: doc.sections.map((s) => ('title' in s ? s.title ?? '' : '')), gpuVsCpu };
}

// `npx tsx examples/demo.ts [--quick] [--out DIR] [--backend auto|webgpu|cpu]`
if (process.argv[1] && /examples[\\/]demo\.ts$/.test(process.argv[1])) {
  const arg = (name: string) => { const k = process.argv.indexOf(name); return k > 0 ? process.argv[k + 1] : undefined; };
  const b = arg('--backend') ?? 'auto';
  if (!['auto', 'webgpu', 'cpu'].includes(b)) {
    console.error(`demo: --backend must be auto, webgpu or cpu, got '${b}'`);
    process.exit(2);
  }
  await runDemo({ quick: process.argv.includes('--quick'), outDir: arg('--out'), backend: b as DemoOptions['backend'] });
  process.exit(0);
}

// The app's page: pick a model and an input (a sample, a drawing, a dropped image), see the
// prediction, and one heatmap per explanation method, recomputed whenever the input, the target,
// the backward rule or a setting changes. State lives here; the explanations are methods.ts's,
// the pixels render.ts's, the inputs draw-pad.ts's and dropped-files.ts's.
//
// window.__backlightApp reports what the page did (for the browser test and for curious users in
// the devtools console): the adapter, the input, the prediction, and each method's attribution.
import * as bl from '../../engine/index.ts';
import type { Module } from '../../models/index.ts';
import { APP_MODELS, bundledModel, modelInfo, type ModelInfo } from './catalog.ts';
import { METHODS, LRP_COMPOSITES, RULE_CHOICES, type MethodSpec, type RunSettings } from './methods.ts';
import { heatmapPixels, imagePixels } from './render.ts';
import { colorOf } from '../../explain/index.ts';
import { DrawPad } from './draw-pad.ts';
import { decodeImage, isImageFile, isOnnxFile, onnxModel } from './dropped-files.ts';
import { fetchSampleSets, sampleImage, type LoadedSampleSet } from './samples.ts';

export interface MethodResult {
  shape: number[];
  data: number[];
  /** The refresh that computed it, and what it was computed for. */
  refresh: number;
  target: number;
  camLayer: string;
  rule: string;
  composite: string;
  igSteps: number;
  shapSamples: number;
  /** Progress reports (perturbation methods), and the last one's done / total model evaluations. */
  progress: { calls: number; done: number; total: number };
  ms: number;
}

export interface AppReport {
  ready: boolean;
  /** Refreshes asked for, and the last one that finished with every enabled card drawn. */
  requested: number;
  completed: number;
  busy: boolean;
  /** Inputs being read (a model's weights, a dropped file) before they ask for a refresh. */
  pending: number;
  adapter?: bl.AdapterInfo;
  model?: string;
  input?: number[];
  inputShape?: number[];
  probabilities?: number[];
  target?: number;
  results: Record<string, MethodResult>;
  errors: string[];
}

declare global {
  interface Window {
    __backlightApp?: AppReport;
  }
}

const report: AppReport = { ready: false, requested: 0, completed: 0, busy: false, pending: 0, results: {}, errors: [] };
window.__backlightApp = report;

const $ = <T extends HTMLElement>(id: string) => {
  const e = document.getElementById(id);
  if (!e) throw new Error(`index.html has no #${id}`);
  return e as T;
};

interface Current {
  model: Module;
  info: ModelInfo;
  input: Float32Array;
  /** The class the user clicked, or null: explain the predicted class. */
  pinned: number | null;
}

let current: Current | null = null;
let sets: LoadedSampleSet[] = [];
const onnxModels = new Map<string, { model: Module; info: ModelInfo }>();

const status = (msg: string) => ($('status').textContent = msg);

function fail(where: string, e: unknown): void {
  const msg = `${where}: ${e instanceof Error ? e.message : String(e)}`;
  report.errors.push(msg);
  // Loud on purpose: shown in the page and in the console (the browser test fails on console errors).
  console.error(msg, e);
  status(msg);
}

// ---- cards ----

interface Card {
  spec: MethodSpec;
  root: HTMLElement;
  enabled: HTMLInputElement;
  canvas: HTMLCanvasElement;
  progress: HTMLProgressElement;
  caption: HTMLElement;
  time: HTMLElement;
  error: HTMLElement;
  /** The colour bar's end labels. */
  lo: HTMLElement;
  hi: HTMLElement;
}

const cards: Card[] = METHODS.map((spec) => {
  const root = document.createElement('article');
  root.className = 'card';
  root.dataset.method = spec.id;
  root.dataset.family = spec.family;
  root.dataset.state = 'idle';
  root.innerHTML = `<header><label><input type="checkbox" checked> ${spec.label}</label><span class="time"></span></header>
    <canvas width="8" height="8"></canvas><progress max="1" value="0" hidden></progress>
    <div class="legend"><span class="lo"></span><span class="ramp" style="background:${legendGradient(spec.sign)}"></span><span class="hi"></span></div>
    <p class="caption"></p><p class="error"></p>`;
  const q = <T extends Element>(s: string) => root.querySelector(s) as T;
  return { spec, root, enabled: q('input'), canvas: q('canvas'), progress: q('progress'), caption: q('.caption'), time: q('.time'), error: q('.error'), lo: q('.lo'), hi: q('.hi') };
});

/** The colour bar: the colormaps overlayPixels uses (jet from 0 to the max, blue-white-red from -max to +max). */
function legendGradient(sign: 'signed' | 'positive'): string {
  const stops = Array.from({ length: 11 }, (_, i) => {
    const [r, g, b] = colorOf(i / 10, sign === 'signed' ? 'bwr' : 'jet');
    return `rgb(${r},${g},${b}) ${i * 10}%`;
  });
  return `linear-gradient(to right, ${stops.join(', ')})`;
}

/** An empty card (switched off: an old map would belong to another input). */
function clearCard(card: Card, w: number, h: number): void {
  card.canvas.width = w;
  card.canvas.height = h;
  card.time.textContent = card.lo.textContent = card.hi.textContent = '';
}

/** A map's scale for the colour bar's ends: its largest magnitude (each map is normalised by it). */
function showScale(card: Card, data: ArrayLike<number>): void {
  let m = 0;
  for (let i = 0; i < data.length; i++) m = Math.max(m, card.spec.sign === 'signed' ? Math.abs(data[i]) : data[i]);
  const f = (v: number) => (v === 0 ? '0' : Math.abs(v) >= 0.01 && Math.abs(v) < 1000 ? v.toPrecision(2) : v.toExponential(1));
  card.lo.textContent = card.spec.sign === 'signed' ? f(-m) : '0';
  card.hi.textContent = f(m);
}

// ---- refresh loop: one pass at a time; a change while a pass runs makes it stop between methods ----

let running: Promise<void> | null = null;

// Models replaced while a pass may still be explaining with them: freed between passes.
const retired: Module[] = [];
function disposeRetired(): void {
  for (const m of retired.splice(0)) {
    if (m === current?.model) retired.push(m); // still shown: freed once replaced
    else m.dispose();
  }
}

function refresh(): void {
  report.requested++;
  for (const c of cards) if (c.root.dataset.state === 'done') c.root.dataset.state = 'stale';
  if (!running) {
    report.busy = true;
    running = (async () => {
      try {
        while (report.completed < report.requested) {
          disposeRetired();
          const n = report.requested;
          if (await pass(n)) report.completed = n;
        }
      } finally {
        disposeRetired();
        running = null;
        report.busy = false;
      }
    })();
  }
}

function settings(target: number, card?: Card, progress?: MethodResult['progress']): RunSettings {
  const num = (id: string, lo: number, hi: number, dflt: number) => {
    const v = Math.round(Number($<HTMLInputElement>(id).value));
    return Number.isFinite(v) ? Math.min(hi, Math.max(lo, v)) : dflt;
  };
  return {
    target,
    camLayer: current!.info.camLayer,
    rule: $<HTMLSelectElement>('rule').value,
    composite: $<HTMLSelectElement>('composite').value,
    igSteps: num('ig-steps', 1, 256, 16),
    shapSamples: num('shap-samples', 8, 8192, 256),
    onProgress: card
      ? (p) => {
          card.progress.hidden = false;
          card.progress.value = p.total > 0 ? p.done / p.total : 0;
          if (progress) Object.assign(progress, { calls: progress.calls + 1, done: p.done, total: p.total });
        }
      : undefined,
  };
}

/** Predict and explain for refresh n; false when a newer refresh was asked for meanwhile. */
async function pass(n: number): Promise<boolean> {
  const cur = current;
  if (!cur) return true;
  const [c, h, w] = cur.info.inputShape;
  const stale = () => report.requested !== n || current !== cur;
  const x = bl.tensor(cur.input, [1, c, h, w]);
  try {
    const probs = bl.tidy(() => bl.softmax(bl.reshape(cur.model.call(x), [1, -1]), -1));
    const p = Array.from(await probs.data());
    probs.dispose();
    if (stale()) return false;
    const predicted = p.indexOf(Math.max(...p));
    const target = cur.pinned !== null && cur.pinned < p.length ? cur.pinned : predicted;
    showPrediction(cur.info, p, predicted, target);
    Object.assign(report, { input: Array.from(cur.input), inputShape: [c, h, w], probabilities: p, target, model: cur.info.name });
    for (const card of cards) {
      card.caption.textContent = card.spec.caption(cur.info.inputShape, settings(target));
      if (!card.enabled.checked) {
        if (card.root.dataset.state !== 'off') clearCard(card, w, h);
        card.root.dataset.state = 'off';
        delete report.results[card.spec.id];
        continue;
      }
      card.root.dataset.state = 'running';
      card.error.textContent = '';
      card.progress.value = 0;
      card.progress.hidden = card.spec.family !== 'perturbation';
      const progress = { calls: 0, done: 0, total: 0 };
      const s = settings(target, card, progress);
      const t0 = performance.now();
      let attr: bl.Tensor | null = null;
      try {
        attr = await card.spec.run(cur.model, x, s);
        const px = await heatmapPixels(attr, cur.input, c, card.spec.sign);
        const ms = performance.now() - t0;
        const data = await attr.data();
        report.results[card.spec.id] = { shape: [...attr.shape], data: Array.from(data), refresh: n, target, camLayer: s.camLayer, rule: s.rule, composite: s.composite, igSteps: s.igSteps, shapSamples: s.shapSamples, progress, ms };
        if (stale()) return false;
        card.canvas.width = px.w;
        card.canvas.height = px.h;
        card.canvas.getContext('2d', { willReadFrequently: true })!.putImageData(new ImageData(px.rgba, px.w, px.h), 0, 0);
        card.time.textContent = `${ms.toFixed(0)} ms`;
        showScale(card, data);
        card.root.dataset.state = 'done';
      } catch (e) {
        card.root.dataset.state = 'error';
        card.error.textContent = e instanceof Error ? e.message : String(e);
        fail(card.spec.label, e);
      } finally {
        attr?.dispose();
        card.progress.hidden = true;
      }
      if (stale()) return false;
    }
    status(`${cur.info.name}: explained class ${cur.info.classes[target]} with ${cards.filter((k) => k.enabled.checked).length} methods`);
    return true;
  } finally {
    x.dispose();
  }
}

function showPrediction(info: ModelInfo, p: number[], predicted: number, target: number): void {
  const ol = $('probs');
  ol.replaceChildren(
    ...p.map((v, i) => {
      const li = document.createElement('li');
      li.dataset.class = String(i);
      li.classList.toggle('predicted', i === predicted);
      li.classList.toggle('target', i === target);
      li.innerHTML = `<span class="name"></span><span class="bar"><span style="width:${(100 * v).toFixed(1)}%"></span></span><span class="p">${(100 * v).toFixed(1)}%</span>`;
      li.querySelector('.name')!.textContent = info.classes[i] ?? String(i);
      li.addEventListener('click', () => {
        if (!current) return;
        current.pinned = current.pinned === i ? null : i;
        refresh();
      });
      return li;
    }),
  );
  $('target').textContent = `Explaining: ${info.classes[target]}${target === predicted ? ' (predicted)' : ` (pinned; predicted ${info.classes[predicted]})`}`;
}

// ---- models, samples, inputs ----

/** Count fn as pending from its first (synchronous) step until it settles. */
async function pendingWhile<T>(fn: () => Promise<T>): Promise<T> {
  report.pending++;
  try {
    return await fn();
  } finally {
    report.pending--;
  }
}

const selectModel = (name: string) => pendingWhile(() => loadModel(name));

async function loadModel(name: string): Promise<void> {
  let model: Module, info: ModelInfo;
  const onnx = onnxModels.get(name);
  if (onnx) {
    ({ model, info } = onnx);
  } else {
    info = modelInfo(name);
    model = await bundledModel(name);
  }
  // ONNX models stay loaded (their bytes are gone); bundled ones are rebuilt from the bundled weights.
  if (current && !onnxModels.has(current.info.name)) {
    retired.push(current.model);
    if (!running) disposeRetired();
  }
  const [c, h, w] = info.inputShape;
  const set = setFor(info);
  current = { model, info, input: set ? Float32Array.from(sampleImage(set, 0)) : new Float32Array(c * h * w), pinned: null };
  $<HTMLSelectElement>('model').value = name;
  $('model-info').textContent = `${info.description}. Input ${c}x${h}x${w}${info.accuracy !== null ? `, test accuracy ${(100 * info.accuracy).toFixed(1)}%` : ''}.`;
  showSamples(set, set ? 0 : -1);
  pad.show(current.input, c, h, w);
  refresh();
}

function setFor(info: ModelInfo): LoadedSampleSet | undefined {
  return sets.find((s) => s.name === info.dataset) ?? sets.find((s) => s.shape.join() === info.inputShape.join());
}

function showSamples(set: LoadedSampleSet | undefined, selected: number): void {
  $('samples-title').textContent = set ? `Samples: ${set.name} (${set.split})` : 'Samples: none for this input shape';
  const [c, h, w] = set?.shape ?? [1, 1, 1];
  $('samples').replaceChildren(
    ...(set?.labels ?? []).map((label, i) => {
      const cv = document.createElement('canvas');
      cv.width = w;
      cv.height = h;
      cv.dataset.index = String(i);
      cv.title = `${set!.classes[label]} (sample ${i})`;
      cv.classList.toggle('selected', i === selected);
      cv.getContext('2d')!.putImageData(new ImageData(imagePixels(sampleImage(set!, i), c, h, w), w, h), 0, 0);
      cv.addEventListener('click', () => {
        if (!current) return;
        current.input = Float32Array.from(sampleImage(set!, i));
        for (const t of Array.from($('samples').children)) t.classList.toggle('selected', t === cv);
        pad.show(current.input, c, h, w);
        refresh();
      });
      return cv;
    }),
  );
}

function setInput(image: Float32Array): void {
  if (!current) return;
  const [c, h, w] = current.info.inputShape;
  current.input = image;
  for (const t of Array.from($('samples').children)) t.classList.remove('selected');
  pad.show(image, c, h, w);
  refresh();
}

// Drawing refreshes at most every 250 ms while the stroke goes on, and once when it ends.
let lastStroke = 0;
const pad = new DrawPad($<HTMLCanvasElement>('pad'), (final) => {
  if (!current) return;
  const now = performance.now();
  if (!final && now - lastStroke < 250) return;
  lastStroke = now;
  const [c, h, w] = current.info.inputShape;
  current.input = pad.read(c, h, w);
  for (const t of Array.from($('samples').children)) t.classList.remove('selected');
  refresh();
});

const openFiles = (files: FileList | File[]) => pendingWhile(() => readFiles(files));

async function readFiles(files: FileList | File[]): Promise<void> {
  const list = Array.from(files);
  // The model first, so that an image dropped with it is read at the new model's input size.
  for (const f of list.filter(isOnnxFile)) {
    try {
      const { model, info } = onnxModel(new Uint8Array(await f.arrayBuffer()), f.name);
      const old = onnxModels.get(f.name)?.model;
      onnxModels.set(f.name, { model, info });
      if (old) retired.push(old);
      if (!Array.from($<HTMLSelectElement>('model').options).some((o) => o.value === f.name)) $('model').append(new Option(`${f.name} (ONNX)`, f.name));
      await selectModel(f.name);
    } catch (e) {
      fail(`ONNX file ${f.name}`, e);
    }
  }
  for (const f of list.filter(isImageFile)) {
    try {
      setInput(await decodeImage(f, current!.info.inputShape));
    } catch (e) {
      fail(`image ${f.name}`, e);
    }
  }
  for (const f of list.filter((f) => !isOnnxFile(f) && !isImageFile(f))) fail(f.name, new Error('not a PNG, JPEG or .onnx file'));
}

function wireControls(): void {
  for (const id of ['rule', 'composite']) {
    const sel = $<HTMLSelectElement>(id);
    const choices = id === 'rule' ? RULE_CHOICES : LRP_COMPOSITES;
    sel.replaceChildren(...choices.map((v) => new Option(v, v)));
    sel.value = id === 'rule' ? 'default' : 'epsilon-plus-flat';
    sel.addEventListener('change', refresh);
  }
  for (const id of ['ig-steps', 'shap-samples']) $(id).addEventListener('change', refresh);
  for (const c of cards) c.enabled.addEventListener('change', refresh);
  $('cards').replaceChildren(...cards.map((c) => c.root));
  $<HTMLSelectElement>('model').addEventListener('change', (e) => selectModel((e.target as HTMLSelectElement).value).catch((err) => fail('model', err)));
  $('clear').addEventListener('click', () => current && setInput(new Float32Array(current.input.length)));
  $('invert').addEventListener('click', () => current && setInput(current.input.map((v) => 1 - v)));
  $<HTMLInputElement>('file').addEventListener('change', (e) => {
    const input = e.target as HTMLInputElement;
    const files = Array.from(input.files ?? []);
    input.value = ''; // so that picking the same file again reads it again
    if (files.length) openFiles(files).catch((err) => fail('files', err));
  });
  const drop = $('drop');
  document.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  document.addEventListener('dragleave', () => drop.classList.remove('over'));
  document.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    if (e.dataTransfer?.files.length) openFiles(e.dataTransfer.files).catch((err) => fail('files', err));
  });
}

async function start(): Promise<void> {
  wireControls();
  let backend: bl.Backend;
  try {
    backend = await bl.init({ backend: 'webgpu' });
  } catch (e) {
    // Still useful without WebGPU, only slower: the float64 CPU backend runs the same code.
    backend = await bl.init({ backend: 'cpu' });
    const b = $('banner');
    b.hidden = false;
    b.textContent = `WebGPU is not available here (${(e as Error).message}); running on the CPU backend (float64, slower).`;
  }
  report.adapter = backend.info;
  const a = backend.info;
  $('adapter').textContent = `${a.backend}${a.vendor || a.architecture ? `: ${[a.vendor, a.architecture, a.description].filter(Boolean).join(' ')}` : ''}`;
  sets = await fetchSampleSets();
  $('model').replaceChildren(...APP_MODELS.map((m) => new Option(m, m)));
  await selectModel(APP_MODELS[0]);
  report.ready = true;
}

start().catch((e) => fail('start', e));

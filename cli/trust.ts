// `backlight evaluate` with --methods / --metrics / --out: the trust report. Every explainer on the
// same inputs, scored by every metric (explain/evaluation), plus calibration (ECE before and
// after temperature scaling) and uncertainty (MC dropout on the inputs vs noise), as JSON or as
// an HTML report with tables and plots.
import * as bl from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import * as ex from '../explain/index.ts';
import { type Dataset } from '../models/train.ts';
import { parseNpy } from '../models/io/npy.ts';
import { UsageError, suggest } from './args.ts';
import { METHODS, type Ctx } from './methods.ts';
import { esc } from './report.ts';
import { readInputFile } from './input.ts';
import { writeOut } from './options.ts';
import type { ResolvedModel } from './model.ts';

export interface TrustOptions {
  methods?: string;
  metrics?: string;
  n?: number;
  seed?: number;
  out?: string;
  json?: boolean;
}

/** Methods that are references rather than attribution methods. */
const REFERENCE_METHODS = ['random'] as const;

export interface TrustReport {
  model: string;
  data: string;
  split: string | null;
  n: number;
  accuracy: number | null;
  methods: Record<string, Record<string, number>>;
  higher_is_better: Record<string, boolean>;
  metric_descriptions: Record<string, string>;
  seconds: Record<string, number>;
  calibration: ex.CalibrationReport | { reason: string };
  uncertainty: ex.UncertaintyReport;
}

function parseList(v: string | undefined, known: readonly string[], what: string): string[] | undefined {
  if (v === undefined) return undefined;
  const names = v.split(',').map((s) => s.trim()).filter(Boolean);
  if (!names.length) throw new UsageError(`option '--${what}' names no ${what}`);
  for (const n of names) {
    if (!known.includes(n)) {
      const hint = suggest(n, known);
      throw new UsageError(`option '--${what}': unknown ${what === 'methods' ? 'method' : 'metric'} '${n}'${hint ? ` (did you mean '${hint}'?)` : ''}; known: ${known.join(', ')}`);
    }
  }
  return names;
}

/** Check the options before any work (the GPU starts after this). */
export function checkTrustOptions(o: TrustOptions): { methods?: string[]; metrics?: string[]; outKind: 'json' | 'html' | null } {
  const methods = parseList(o.methods, [...Object.keys(METHODS), ...REFERENCE_METHODS], 'methods');
  const metrics = parseList(o.metrics, Object.keys(ex.METRICS), 'metrics');
  const out = o.out;
  const outKind = out === undefined ? null : /\.json$/i.test(out) ? 'json' : /\.html?$/i.test(out) ? 'html' : null;
  if (out !== undefined && !outKind) throw new UsageError(`option '--out' must end in .json or .html, got '${out}'`);
  if (o.n !== undefined && (!Number.isInteger(o.n) || o.n < 1)) throw new UsageError(`option '--n' must be a positive integer, got ${o.n}`);
  return { methods, metrics, outKind };
}

/** The methods run by default: the gradient family, CAM where there is a feature map, LRP, random. */
function defaultMethods(m: ResolvedModel, image: boolean): string[] {
  const hasFeatures = m.kind !== 'onnx' && m.model.namedModules().some(([p]) => p === 'features');
  return ['saliency', 'integrated-gradients', ...(image && hasFeatures ? ['grad-cam'] : []), 'lrp', 'random'];
}

function ctxFor(m: ResolvedModel, target: number[], seed: number): Ctx {
  const layer = m.kind !== 'onnx' && m.model.namedModules().some(([p]) => p === 'features') ? 'features' : undefined;
  return { layer, upsample: true, target, steps: 32, samples: 10, stdev: 0.1, seed, stepsGiven: false, p: {}, lrp: {} };
}

/** The first n items of a split (or of a .npy file), with labels and masks where it has them. */
function itemsOf(d: Dataset & { masks?: Float32Array }, n: number): { x: Tensor; y: number[]; masks?: { data: Float32Array; shape: number[] } } {
  const k = Math.min(n, d.n);
  const per = d.sampleShape.reduce((a, b) => a * b, 1);
  const x = bl.tensor(d.x.subarray(0, k * per), [k, ...d.sampleShape]);
  const y = Array.from(d.y.subarray(0, k));
  const maskPer = d.sampleShape.length === 3 ? d.sampleShape[1] * d.sampleShape[2] : 0;
  const masks = d.masks && maskPer ? { data: d.masks.subarray(0, k * maskPer), shape: [k, d.sampleShape[1], d.sampleShape[2]] } : undefined;
  return { x, y, masks };
}

export interface TrustInput {
  /** A labelled split (calibration runs on it), or inputs from a file (no labels, no masks). */
  split?: Dataset & { masks?: Float32Array };
  splitName?: string;
  file?: string;
  data: string;
}

/** Run the trust evaluation; write JSON or HTML, or print the table. */
export async function trustEvaluate(m: ResolvedModel, input: TrustInput, o: TrustOptions, log: (s: string) => void, stdout: (s: string) => void): Promise<TrustReport> {
  const { methods: chosen, metrics, outKind } = checkTrustOptions(o);
  const n = o.n ?? 16;
  const seed = o.seed ?? 0;
  let x: Tensor, y: number[] | null = null, masks: { data: Float32Array; shape: number[] } | undefined;
  if (input.split) ({ x, y, masks } = itemsOf(input.split, n));
  else {
    const a = parseNpy(readInputFile(input.file!, '--data'), input.file);
    const k = Math.min(n, a.shape[0]);
    const per = a.data.length / a.shape[0];
    x = bl.tensor(a.data.subarray(0, k * per), [k, ...a.shape.slice(1)]);
  }
  const image = x.rank === 4;
  const names = chosen ?? defaultMethods(m, image);
  const methods: Record<string, ex.ComparedExplainer> = {};
  for (const name of names) {
    if (name === 'random') methods[name] = ex.randomExplainer(seed + 1);
    else {
      const spec = METHODS[name];
      methods[name] = async (model, xx, target) => {
        const r = await spec.run(model, xx, ctxFor(m, target, seed));
        if (r.shape[0] !== xx.shape[0] || (image && (r.shape[2] !== xx.shape[2] || r.shape[3] !== xx.shape[3]))) {
          r.dispose();
          throw new UsageError(`method '${name}' gives maps of shape [${r.shape}] for inputs [${xx.shape}]; metrics need input-sized attributions`);
        }
        return r;
      };
    }
  }
  const chosenMetrics = metrics ?? ex.applicableMetrics(m.model, masks !== undefined);
  for (const k of chosenMetrics) if (ex.METRICS[k].masks && !masks) throw new UsageError(`metric '${k}' needs ground-truth masks; data set '${input.data}' has none (the shapes and spurious sets do)`);
  log(`evaluating ${names.join(', ')} on ${x.shape[0]} items of ${input.data}${input.splitName ? `/${input.splitName}` : ''}: ${chosenMetrics.join(', ')}\n`);
  try {
  const cmp = await ex.compareExplainers(m.model, x, {
    methods, metrics: chosenMetrics, masks, seed,
    onProgress: (p) => log(`  ${p.method} ${p.metric} (${p.done}/${p.total})\n`),
  });
  let accuracy: number | null = null;
  if (y) accuracy = cmp.target.reduce((s, t, i) => s + (t === y![i] ? 1 : 0), 0) / y.length;
  // calibration: fit the temperature on the first half of the split, measure on the second
  let calibration: TrustReport['calibration'];
  if (input.split && input.split.n >= 20 && input.split.numClasses !== undefined) {
    const d = input.split;
    const half = Math.floor(d.n / 2);
    const per = d.sampleShape.reduce((a, b) => a * b, 1);
    const part = (a: number, b: number): Dataset => ({ ...d, x: d.x.subarray(a * per, b * per), y: d.y.subarray(a, b), n: b - a });
    calibration = await ex.calibrationReport(m.model, part(0, half), part(half, d.n));
  } else calibration = { reason: input.split ? 'the split is too small or unlabelled' : 'inputs from a file have no labels' };
  const ood = await ex.oodInputs(x, { kind: image ? 'uniform' : 'box-noise', seed });
  let uncertainty: ex.UncertaintyReport;
  try {
    uncertainty = await ex.uncertaintyReport(m.model, x, ood, { seed });
  } finally {
    ood.dispose();
  }
  const report: TrustReport = {
    model: m.name, data: input.data, split: input.splitName ?? null, n: x.shape[0], accuracy,
    methods: cmp.methods, higher_is_better: cmp.higherIsBetter,
    metric_descriptions: Object.fromEntries(chosenMetrics.map((k) => [k, ex.METRICS[k].description])),
    seconds: cmp.seconds, calibration, uncertainty,
  };
  if (outKind === 'json') writeOut(o.out!, JSON.stringify(report, null, 2) + '\n');
  else if (outKind === 'html') writeOut(o.out!, await trustHtml({ ...report, modelRef: m.model }, cmp, x, masks, methods));
  // --json: the report on stdout (also when it is written to --out), and nothing else there.
  if (o.json) stdout(JSON.stringify(report, null, 2) + '\n');
  else stdout(tableText(report));
  if (o.out) log(`wrote ${o.out}\n`);
  return report;
  } finally {
    x.dispose();
  }
}

/** A note when the fitted temperature hit its search range: the validation half is separable. */
const atBound = (c: ex.CalibrationReport) => (c.temperature_at_bound ? '; at the search bound: the validation half is separated perfectly, so the fit is not informative' : '');

const fmt = (v: number | undefined | null) => (v === undefined || v === null || !Number.isFinite(v) ? '-' : Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(3));

/** The best method per metric (ignoring the reference rows when there are real methods). */
function bestOf(r: TrustReport, metric: string): string | null {
  const rows = Object.entries(r.methods).filter(([k, v]) => !(REFERENCE_METHODS as readonly string[]).includes(k) && Number.isFinite(v[metric]));
  if (!rows.length) return null;
  const hi = r.higher_is_better[metric];
  return rows.reduce((a, b) => ((hi ? b[1][metric] > a[1][metric] : b[1][metric] < a[1][metric]) ? b : a))[0];
}

function tableText(r: TrustReport): string {
  const metrics = Object.keys(r.higher_is_better);
  const head = ['method', ...metrics.map((m) => `${m} ${r.higher_is_better[m] ? '(up)' : '(down)'}`)];
  const rows = Object.entries(r.methods).map(([k, v]) => [k, ...metrics.map((m) => fmt(v[m]) + (bestOf(r, m) === k ? ' *' : ''))]);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(w[i])).join('  ');
  const cal = 'ece' in r.calibration ? `calibration: ECE ${fmt(r.calibration.ece)} -> ${fmt(r.calibration.ece_after_temperature)} after temperature scaling (T = ${fmt(r.calibration.temperature)}${atBound(r.calibration)})` : `calibration: ${r.calibration.reason}`;
  const mc = r.uncertainty.mc_dropout ? `MC dropout entropy: ${fmt(r.uncertainty.mc_dropout.in_mean_entropy)} on the inputs, ${fmt(r.uncertainty.mc_dropout.ood_mean_entropy)} on noise (AUROC ${fmt(r.uncertainty.mc_dropout.auroc_entropy)})` : `MC dropout: ${r.uncertainty.reason ?? 'n/a'}`;
  return `${r.model} on ${r.data}${r.split ? `/${r.split}` : ''}, ${r.n} items${r.accuracy !== null ? `, accuracy ${(100 * r.accuracy).toFixed(1)}%` : ''} (* best; up: higher is better, down: lower)\n${line(head)}\n${rows.map(line).join('\n')}\n${cal}\n${mc}\n`;
}

// ---- HTML ----

const COLOURS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

/** Lines over x in [0, 1] (deletion / insertion curves), one per method. */
function curvesSvg(title: string, series: [string, number[]][]): string {
  const W = 360, H = 220, L = 40, B = 30, T = 24;
  const all = series.flatMap(([, s]) => s);
  const lo = Math.min(0, ...all), hi = Math.max(1e-9, ...all);
  const px = (i: number, n: number) => L + ((W - L - 10) * i) / (n - 1);
  const py = (v: number) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
  const lines = series.map(([name, s], k) => `<polyline fill="none" stroke="${COLOURS[k % COLOURS.length]}" stroke-width="2" points="${s.map((v, i) => `${px(i, s.length).toFixed(1)},${py(v).toFixed(1)}`).join(' ')}"><title>${esc(name)}</title></polyline>`);
  const legend = series.map(([name], k) => `<text x="${W - 8}" y="${T + 14 * (k + 1)}" text-anchor="end" font-size="11" fill="${COLOURS[k % COLOURS.length]}">${esc(name)}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif"><text x="${L}" y="16" font-size="13">${esc(title)}</text>
<line x1="${L}" y1="${H - B}" x2="${W - 10}" y2="${H - B}" stroke="#444"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#444"/>
<text x="${L}" y="${H - 10}" font-size="11">0</text><text x="${W - 10}" y="${H - 10}" font-size="11" text-anchor="end">fraction of pixels 1</text>
<text x="${L - 4}" y="${py(hi) + 4}" font-size="11" text-anchor="end">${fmt(hi)}</text><text x="${L - 4}" y="${py(lo) + 4}" font-size="11" text-anchor="end">${fmt(lo)}</text>
${lines.join('\n')}${legend.join('')}</svg>`;
}

/** One bar per method for a metric. */
function barsSvg(metric: string, r: TrustReport): string {
  const rows = Object.entries(r.methods).map(([k, v]) => [k, v[metric]] as const).filter(([, v]) => Number.isFinite(v));
  const W = 360, rowH = 18, L = 150, H = 30 + rowH * rows.length;
  const lo = Math.min(0, ...rows.map(([, v]) => v)), hi = Math.max(1e-9, ...rows.map(([, v]) => v));
  const sx = (v: number) => L + ((W - L - 50) * (v - lo)) / (hi - lo);
  const best = bestOf(r, metric);
  const bars = rows.map(([k, v], i) => {
    const y = 24 + i * rowH;
    return `<text x="${L - 6}" y="${y + 12}" font-size="11" text-anchor="end">${esc(k)}</text><rect x="${Math.min(sx(0), sx(v))}" y="${y + 2}" width="${Math.abs(sx(v) - sx(0)).toFixed(1)}" height="${rowH - 5}" fill="${k === best ? '#2ca02c' : '#1f77b4'}"/><text x="${Math.max(sx(0), sx(v)) + 4}" y="${y + 12}" font-size="11">${fmt(v)}</text>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif"><text x="4" y="15" font-size="13">${esc(metric)} (${r.higher_is_better[metric] ? 'higher' : 'lower'} is better)</text>${bars.join('')}</svg>`;
}

async function trustHtml(r: TrustReport & { modelRef: ex.Model }, cmp: ex.ExplainerComparison, x: Tensor, masks?: { data: Float32Array; shape: number[] }, methods?: Record<string, ex.ComparedExplainer>): Promise<string> {
  const metrics = Object.keys(r.higher_is_better);
  const th = metrics.map((m) => `<th title="${esc(r.metric_descriptions[m])}">${esc(m)}<br><small>${r.higher_is_better[m] ? '&uarr; higher is better' : '&darr; lower is better'}</small></th>`).join('');
  const trs = Object.entries(r.methods).map(([k, v]) => `<tr><th>${esc(k)}${(REFERENCE_METHODS as readonly string[]).includes(k) ? ' <small>(reference)</small>' : ''}</th>${metrics.map((m) => `<td class="${bestOf(r, m) === k ? 'best' : ''}">${fmt(v[m])}</td>`).join('')}<td>${fmt(r.seconds[k])}</td></tr>`).join('\n');
  const curves = ['deletion', 'insertion'].filter((m) => metrics.includes(m)).map((m) => curvesSvg(`${m}: mean probability of the explained class`, Object.entries(cmp.curves).filter(([, c]) => c[m]).map(([k, c]) => [k, c[m]])));
  const bars = metrics.map((m) => barsSvg(m, r));
  const sanity = Object.entries(cmp.randomisation).map(([k, rows]) => ex.randomisationPlotSvg(rows, { title: `${k}: similarity to the original explanation as layers are randomised (top down)`, width: 560, height: 340 }));
  const cal = 'ece' in r.calibration
    ? `<p>Expected calibration error on the second half of the split: <b>${fmt(r.calibration.ece)}</b>, after temperature scaling fitted on the first half (T = ${fmt(r.calibration.temperature)}${esc(atBound(r.calibration))}): <b>${fmt(r.calibration.ece_after_temperature)}</b>.</p>${ex.reliabilityDiagramSvg(r.calibration.bins_before, { title: 'before temperature scaling' })}${ex.reliabilityDiagramSvg(r.calibration.bins_after, { title: `after (T = ${fmt(r.calibration.temperature)})` })}`
    : `<p>${esc(r.calibration.reason)}</p>`;
  const mc = r.uncertainty.mc_dropout;
  const unc = mc
    ? `<table><tr><th></th><th>inputs</th><th>uniform noise</th></tr><tr><th>predictive entropy</th><td>${fmt(mc.in_mean_entropy)}</td><td>${fmt(mc.ood_mean_entropy)}</td></tr><tr><th>mutual information</th><td>${fmt(mc.in_mean_mi)}</td><td>${fmt(mc.ood_mean_mi)}</td></tr><tr><th>probability std</th><td>${fmt(mc.in_mean_std)}</td><td>${fmt(mc.ood_mean_std)}</td></tr></table><p>AUROC of entropy as an out-of-distribution detector: ${fmt(mc.auroc_entropy)} (${mc.samples} dropout samples).</p>`
    : `<p>MC dropout: ${esc(r.uncertainty.reason ?? 'not available')}.</p>`;
  // example maps: the first items, each method
  const k = Math.min(4, x.shape[0]);
  const enc = (b: Uint8Array) => `data:image/png;base64,${Buffer.from(b).toString('base64')}`;
  let examples = '';
  if (x.rank === 4) {
    const rows: string[] = [];
    const xs = bl.slice(x, [0], [k]);
    // heatmapPng of one item's slice; the slices are freed at once
    const png = async (t: Tensor, i: number, over?: Tensor, alpha?: number) => {
      const a = bl.slice(t, [i], [1]);
      const b = over ? bl.slice(over, [i], [1]) : undefined;
      try {
        return enc(await ex.heatmapPng(a, b, alpha === undefined ? {} : { alpha }));
      } finally {
        a.dispose();
        b?.dispose();
      }
    };
    rows.push(`<tr><th>input</th>${await Promise.all(Array.from({ length: k }, async (_, i) => `<td><img src="${await png(xs, i, xs, 0)}"><div>class ${cmp.target[i]}</div></td>`)).then((a) => a.join(''))}</tr>`);
    if (masks) {
      const mt = bl.tensor(masks.data.subarray(0, k * masks.shape[1] * masks.shape[2]), [k, 1, masks.shape[1], masks.shape[2]]);
      rows.push(`<tr><th>object mask</th>${await Promise.all(Array.from({ length: k }, async (_, i) => `<td><img src="${await png(mt, i)}"></td>`)).then((a) => a.join(''))}</tr>`);
      mt.dispose();
    }
    for (const [name, run] of Object.entries(methods ?? {})) {
      const a = await run(r.modelRef, xs, cmp.target.slice(0, k));
      rows.push(`<tr><th>${esc(name)}</th>${await Promise.all(Array.from({ length: k }, async (_, i) => `<td><img src="${await png(a, i, xs)}"></td>`)).then((v) => v.join(''))}</tr>`);
      a.dispose();
    }
    xs.dispose();
    examples = `<h2>Example explanations</h2><table>${rows.join('')}</table><p>Heatmaps normalised per map; channels summed as absolute values.</p>`;
  }
  return `<!doctype html><html><head><meta charset="utf-8"><title>backlight trust report: ${esc(r.model)}</title>
<style>body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1200px}table{border-collapse:collapse;margin:.5em 0}td,th{padding:5px 8px;border:1px solid #ddd;text-align:center}th{background:#f5f5f5}td.best{background:#dff0d8;font-weight:bold}img{width:120px;image-rendering:pixelated}svg{margin:4px}small{color:#555;font-weight:normal}</style></head>
<body><h1>Trust report: ${esc(r.model)}</h1>
<p>${r.n} items of ${esc(r.data)}${r.split ? `/${esc(r.split)}` : ''}${r.accuracy !== null ? `; accuracy on them ${(100 * r.accuracy).toFixed(1)}%` : ''}. Each method explains the predicted class of each item; metrics are means over the items. The best real method per metric is highlighted; <i>random</i> is a uniform random attribution, the floor every method should beat.</p>
<h2>Explainers by metric</h2><div style="overflow-x:auto"><table><tr><th>method</th>${th}<th>seconds</th></tr>${trs}</table></div>
<ul>${metrics.map((m) => `<li><b>${esc(m)}</b>: ${esc(r.metric_descriptions[m])}</li>`).join('')}</ul>
${curves.join('')}<div>${bars.join('')}</div>
${sanity.length ? `<h2>Sanity check: cascading model randomisation (Adebayo et al. 2018)</h2><p>A method whose explanation stays similar while the model's weights are replaced by random ones does not explain the model.</p><div>${sanity.join('')}</div>` : ''}
${examples}
<h2>Calibration</h2>${cal}
<h2>Uncertainty</h2>${unc}
</body></html>`;
}

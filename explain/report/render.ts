// renderReport: a ReportDocument -> one self-contained HTML file. No scripts, no external fonts,
// images inline as data URLs and charts as inline SVG, so the file opens anywhere, offline, and
// cannot fetch anything. Every number a caption states is computed here from the values given.
import type { Colormap } from '../heatmap.ts';
import type {
  AttributionMap, ChannelReduction, Completeness, EncodedImage, FigureSection, ImageItem, ImageLike, ImageSection, MapSign,
  MethodInfo, Prediction, RasterImage, RenderOptions, ReportDocument, ReportSection, TableSection, TabularSection, TextSection,
} from './model.ts';
import { defaultColormap, defaultReduction, inputRgba, mapRgba, mapScale, rawSum, reduceChannels, rgbaDataUrl } from './raster.ts';
import { beeswarmSvg, colourBar, esc, fmt, pct, probabilityBars, waterfallSvg, type Bar } from './svg.ts';

/** The completeness error of one item: |sum(attr) - (f(x) - f(baseline))|, absolute and relative. */
export function completenessError(c: Completeness, map?: AttributionMap): { attributionSum: number; outputDelta: number; absolute: number; relative: number } {
  const attributionSum = c.attributionSum ?? (map ? rawSum(map) : NaN);
  const outputDelta = c.fx - c.fBaseline;
  const absolute = Math.abs(attributionSum - outputDelta);
  // relative to the change being decomposed; a tiny change makes any error large, as it should
  const relative = absolute / Math.max(Math.abs(outputDelta), 1e-12);
  return { attributionSum, outputDelta, absolute, relative };
}

const SIGN_TEXT: Record<MapSign, string> = {
  signed: 'Signed: red is evidence for the explained class, blue against it, white 0 (diverging colours centred at 0, the scale symmetric about 0).',
  absolute: 'Absolute values |attribution|: brighter is more relevant, either direction (sequential colours from 0).',
  positive: 'Positive part only (values below 0 shown as 0): brighter is more relevant (sequential colours from 0).',
};

const REDUCTION_TEXT: Record<ChannelReduction, string> = {
  sum: 'summed over channels (signed)',
  'abs-sum': 'absolute values summed over channels',
  'max-abs': 'largest absolute value over channels',
};

/**
 * The caption of a method: what its colours are, how channels were reduced, and its settings.
 * For 'tabular' plots the colour sentences are left out (waterfalls and beeswarms say their own).
 */
export function methodCaption(m: MethodInfo, channels = 1, kind: 'map' | 'tabular' = 'map'): string {
  const parts: string[] = [];
  if (m.question) parts.push(m.question.trim().replace(/([^.?!])$/, '$1.'));
  if (kind === 'map') parts.push(SIGN_TEXT[m.sign]);
  if (channels > 1) parts.push(`The ${channels} input channels are ${REDUCTION_TEXT[m.reduction ?? defaultReduction(m.sign)]}.`);
  if (m.layer) parts.push(`Layer ${m.layer}${m.upsampled === true ? ', upsampled to the input (bilinear)' : m.upsampled === false ? ', at the layer\'s resolution' : ''}.`);
  const set: string[] = [];
  if (m.steps !== undefined) set.push(`${m.steps} steps`);
  if (m.samples !== undefined) set.push(`${m.samples} samples`);
  if (m.baseline) set.push(`baseline ${m.baseline}`);
  if (m.features) set.push(`features ${m.features}`);
  if (m.rules) set.push(`rules ${m.rules}`);
  if (m.canonizers) set.push(`canonizers ${m.canonizers}`);
  if (set.length) parts.push(`${set.join(', ')[0].toUpperCase()}${set.join(', ').slice(1)}.`);
  for (const n of m.notes ?? []) parts.push(n.trim().replace(/([^.?!])$/, '$1.'));
  if (kind === 'map') parts.push('Colour scale per map: the bar beside it gives the values.');
  if (m.seconds !== undefined) parts.push(`Took ${fmt(m.seconds, 2)} s.`);
  return parts.join(' ');
}

function isEncoded(img: ImageLike): img is EncodedImage {
  return typeof (img as EncodedImage).dataUrl === 'string';
}

function checkDataUrl(url: string): string {
  if (!/^data:image\/(png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/=]*$/.test(url)) {
    throw new Error(`report: an encoded image must be a base64 data:image/(png|jpeg|gif|webp|svg+xml) URL, got '${url.slice(0, 40)}...'`);
  }
  return url;
}

/** CSS size of a picture whose longer side is `size` px (nearest-neighbour scaling in CSS). */
function cssSize(w: number, h: number, size: number): { w: number; h: number } {
  const s = size / Math.max(w, h);
  return { w: Math.round(w * s), h: Math.round(h * s) };
}

function imgTag(src: string, w: number, h: number, alt: string): string {
  return `<img src="${src}" width="${w}" height="${h}" alt="${esc(alt)}">`;
}

function className(names: string[] | undefined, k: number): string {
  return names?.[k] ?? `class ${k}`;
}

function argmax(p: ArrayLike<number>): number {
  let b = 0;
  for (let i = 1; i < p.length; i++) if (p[i] > p[b]) b = i;
  return b;
}

function predictionHtml(p: Prediction, names: string[] | undefined): string {
  const probs = Array.from(p.probabilities);
  if (!probs.length || probs.some((v) => !Number.isFinite(v))) throw new Error('report: a prediction needs finite probabilities');
  const predicted = argmax(probs);
  const target = p.target ?? predicted;
  const order = probs.map((_, i) => i).sort((a, b) => probs[b] - probs[a] || a - b);
  const keep = new Set(order.slice(0, p.top ?? 10));
  keep.add(target);
  if (p.trueClass !== undefined) keep.add(p.trueClass);
  const std = p.uncertainty?.std ? Array.from(p.uncertainty.std) : undefined;
  const bars: Bar[] = order.filter((i) => keep.has(i)).map((i) => ({
    label: className(names, i), value: probs[i], std: std?.[i], highlight: i === target,
    note: i === p.trueClass ? '(true)' : undefined,
  }));
  const lines = [`<div class="pred">predicted <b>${esc(className(names, predicted))}</b> (${esc(pct(probs[predicted]))})${p.trueClass !== undefined ? `, true class <b>${esc(className(names, p.trueClass))}</b>${p.trueClass === predicted ? '' : ' <span class="warn">wrong</span>'}` : ''}</div>`];
  if (target !== predicted) lines.push(`<div class="pred">maps explain <b>${esc(className(names, target))}</b></div>`);
  lines.push(probabilityBars(bars));
  const u = p.uncertainty;
  if (u) {
    const bits: string[] = [];
    if (u.entropy !== undefined) bits.push(`entropy ${fmt(u.entropy)} nats`);
    if (u.mutualInformation !== undefined) bits.push(`mutual information ${fmt(u.mutualInformation)} nats`);
    if (std) bits.push('whiskers: &plusmn;1 std of each probability');
    lines.push(`<div class="unc">${esc(u.method)}: ${bits.map((b) => (b.includes('&plusmn;') ? b : esc(b))).join(', ')}</div>`);
  }
  return lines.join('');
}

async function inputHtml(img: ImageLike, size: number, enc: RenderOptions['encodePng']): Promise<{ html: string; raster?: ReturnType<typeof inputRgba> }> {
  if (isEncoded(img)) {
    const s = cssSize(img.width, img.height, size);
    return { html: `<figure class="input">${imgTag(checkDataUrl(img.dataUrl), s.w, s.h, 'input')}<figcaption>input</figcaption></figure>` };
  }
  const r = inputRgba(img as RasterImage);
  const s = cssSize(r.width, r.height, size);
  const channels = img.shape.length === 3 ? img.shape[0] : 1;
  const range = r.stretched ? `, stretched from [${fmt(r.lo)}, ${fmt(r.hi)}] to black..white` : r.lo === 0 && r.hi === 1 ? '' : `, [${fmt(r.lo)}, ${fmt(r.hi)}] as black..white`;
  const cap = `input ${r.width}&times;${r.height}${channels === 1 ? ', grey' : ', RGB'}${esc(range)}`;
  return { html: `<figure class="input">${imgTag(await rgbaDataUrl(r, enc), s.w, s.h, 'input')}<figcaption>${cap}</figcaption></figure>`, raster: r };
}

async function mapHtml(m: MethodInfo, map: AttributionMap, size: number, enc: RenderOptions['encodePng'], under: ReturnType<typeof inputRgba> | undefined): Promise<string> {
  const red = reduceChannels(map, m.reduction ?? defaultReduction(m.sign));
  const scale = mapScale(red.values, m.sign);
  const cmap: Colormap = m.colormap ?? defaultColormap(m.sign);
  const px = mapRgba(red.values, red.width, red.height, m.sign, scale, cmap, m.overlay ? under : undefined);
  const s = cssSize(px.width, px.height, size);
  const lines = [`<b>${esc(m.name)}</b>`, esc(m.sign === 'signed' ? 'signed' : m.sign === 'absolute' ? '|value|' : 'positive part') + (red.applied ? `, ${esc(REDUCTION_TEXT[red.applied])}` : '') + (m.layer ? `, ${esc(m.layer)}` : '')];
  if (map.completeness) {
    const c = completenessError(map.completeness, map);
    const tol = m.completenessTolerance ?? 0.05;
    const bad = !(c.relative <= tol);
    lines.push(`<span class="${bad ? 'warn' : 'ok'}" data-completeness="${c.relative}">completeness: sum ${esc(fmt(c.attributionSum))} vs f(x) &minus; f(baseline) ${esc(fmt(c.outputDelta))}, error ${esc(fmt(c.absolute, 2))} (${esc(pct(c.relative, 1))})${bad ? ` &gt; ${esc(pct(tol, 0))}: more steps or another baseline` : ''}</span>`);
  }
  return `<figure class="map"><div class="pic">${imgTag(await rgbaDataUrl(px, enc), s.w, s.h, m.name)}${colourBar(scale, m.sign, cmap, s.h)}</div><figcaption>${lines.join('<br>')}</figcaption></figure>`;
}

async function imageSection(sec: ImageSection, enc: RenderOptions['encodePng']): Promise<string> {
  const size = sec.displaySize ?? 160;
  for (const [i, it] of sec.items.entries()) {
    if (it.maps.length !== sec.methods.length) throw new Error(`report: section '${sec.title}', item ${i}: ${it.maps.length} maps for ${sec.methods.length} methods`);
  }
  const legend = sec.methods.map((m, j) => {
    const channels = Math.max(1, ...sec.items.map((it) => { const mp = it.maps[j]; return mp && mp.shape.length === 3 ? mp.shape[0] : 1; }));
    return `<dt>${esc(m.name)}</dt><dd>${esc(methodCaption(m, channels))}</dd>`;
  }).join('');
  const items: string[] = [];
  for (const it of sec.items) {
    const inp = await inputHtml(it.input, size, enc);
    const cells: string[] = [inp.html];
    if (it.prediction) cells.push(`<figure class="prediction">${predictionHtml(it.prediction, sec.classNames)}</figure>`);
    for (const [j, mp] of it.maps.entries()) if (mp) cells.push(await mapHtml(sec.methods[j], mp, size, enc, inp.raster));
    items.push(`<div class="item">${it.label ? `<h3>${esc(it.label)}</h3>` : ''}<div class="row">${cells.join('')}</div>${it.note ? `<p class="note">${esc(it.note)}</p>` : ''}</div>`);
  }
  return `${sec.intro ? `<p>${esc(sec.intro)}</p>` : ''}<details open><summary>What each map shows</summary><dl class="legend">${legend}</dl></details>${items.join('')}`;
}

function tabularSection(sec: TabularSection): string {
  const nf = sec.featureNames.length;
  sec.rows.forEach((r, i) => {
    if (r.values.length !== nf) throw new Error(`report: section '${sec.title}', row ${i}: ${r.values.length} values for ${nf} features`);
    if (r.featureValues && r.featureValues.length !== nf) throw new Error(`report: section '${sec.title}', row ${i}: ${r.featureValues.length} feature values for ${nf} features`);
  });
  const outputName = sec.outputName ?? 'the output';
  const maxDisplay = sec.maxDisplay ?? 10;
  const parts: string[] = [];
  if (sec.intro) parts.push(`<p>${esc(sec.intro)}</p>`);
  parts.push(`<p class="caption">${esc(methodCaption(sec.method, 1, 'tabular'))} Red pushes ${esc(outputName)} up, blue down.</p>`);
  for (const i of sec.waterfall ?? (sec.rows.length ? [0] : [])) {
    const r = sec.rows[i];
    if (!r) throw new Error(`report: section '${sec.title}': waterfall row ${i} does not exist (${sec.rows.length} rows)`);
    let sum = r.baseValue;
    for (let k = 0; k < nf; k++) sum += r.values[k];
    let check = '';
    if (r.prediction !== undefined) {
      const gap = Math.abs(sum - r.prediction);
      const bad = gap > 1e-3 * Math.max(1, Math.abs(r.prediction));
      check = ` <span class="${bad ? 'warn' : 'ok'}">E[f(x)] + sum of values = ${esc(fmt(sum, 4))}, f(x) = ${esc(fmt(r.prediction, 4))}${bad ? ` (off by ${esc(fmt(gap, 2))}: the values do not add up)` : ''}</span>`;
    }
    parts.push(`<figure class="chart"><figcaption><b>${esc(r.label ?? `row ${i}`)}</b>: waterfall${check}</figcaption>${waterfallSvg({ featureNames: sec.featureNames, values: r.values, featureValues: r.featureValues, baseValue: r.baseValue, maxDisplay, outputName })}</figure>`);
  }
  if (sec.rows.length > 1) {
    parts.push(`<figure class="chart"><figcaption><b>All ${sec.rows.length} rows</b>: beeswarm (features by mean |value|, a dot per row)</figcaption>${beeswarmSvg({ featureNames: sec.featureNames, rows: sec.rows, maxDisplay, outputName })}</figure>`);
  }
  return parts.join('');
}

function tableSection(sec: TableSection): string {
  const digits = sec.digits ?? 3;
  const best = (sec.best ?? []).map((b, c) => {
    if (!b) return -1;
    let bi = -1;
    sec.rows.forEach((r, i) => {
      const v = r[c];
      if (typeof v !== 'number' || !Number.isFinite(v)) return;
      const cur = bi >= 0 ? (sec.rows[bi][c] as number) : NaN;
      if (bi < 0 || (b === 'max' ? v > cur : v < cur)) bi = i;
    });
    return bi;
  });
  const cell = (v: string | number | null, r: number, c: number) => {
    const s = v === null ? '&ndash;' : typeof v === 'number' ? esc(Number.isFinite(v) ? v.toFixed(digits) : String(v)) : esc(v);
    const tag = c === 0 ? 'th' : 'td';
    return `<${tag}${typeof v === 'number' ? ' class="num"' : ''}>${best[c] === r ? `<b>${s}</b>` : s}</${tag}>`;
  };
  return `${sec.intro ? `<p>${esc(sec.intro)}</p>` : ''}<table><thead><tr>${sec.columns.map((c) => `<th>${esc(c)}</th>`).join('')}</tr></thead><tbody>${sec.rows.map((r, i) => `<tr>${r.map((v, c) => cell(v, i, c)).join('')}</tr>`).join('')}</tbody></table>${sec.caption ? `<p class="caption">${esc(sec.caption)}</p>` : ''}`;
}

function textSection(sec: TextSection): string {
  return sec.paragraphs.map((p) => `<p>${esc(p)}</p>`).join('');
}

/** Inline SVG made elsewhere: refused when it could run code or fetch anything. */
export function safeSvg(svg: string): string {
  const s = svg.trim();
  if (!/^<svg[\s>]/i.test(s)) throw new Error('report: a figure must be one <svg> element');
  if (/<script|<foreignObject|<iframe|<image|\son\w+\s*=|javascript:|@import/i.test(s)) throw new Error('report: a figure may not hold scripts, event handlers, foreign objects or images');
  if (/(href|src)\s*=\s*["'](?!#)/i.test(s) || /url\(\s*["']?(?!#)/i.test(s)) throw new Error('report: a figure may only reference its own elements (#id)');
  // inside HTML the SVG namespace is implied; dropping it keeps the file free of any URL
  return s.replace(/\sxmlns(:\w+)?\s*=\s*"[^"]*"/g, '');
}

function figureSection(sec: FigureSection): string {
  return `<figure class="chart">${safeSvg(sec.svg)}${sec.caption ? `<figcaption>${esc(sec.caption)}</figcaption>` : ''}</figure>`;
}

const CSS = `body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:24px;color:#222;max-width:1500px;line-height:1.4}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}h3{font-size:15px;margin:10px 0 6px}
.sub{color:#555;margin:0 0 8px}.meta{display:grid;grid-template-columns:max-content auto;gap:2px 14px;font-size:13px;margin:8px 0 16px}.meta dt{color:#666}.meta dd{margin:0}
.item{border:1px solid #e3e3e3;border-radius:6px;padding:8px 12px;margin:10px 0}.row{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}
figure{margin:0}figcaption{font-size:12px;color:#444;max-width:240px}.map figcaption{max-width:230px}
img{image-rendering:pixelated;border:1px solid #ccc;display:block}.pic{display:flex;gap:4px;align-items:flex-start}
svg text{font-size:11px;fill:#222}svg .tick{font-size:10px;fill:#444}svg .num{font-variant-numeric:tabular-nums}svg .hl{font-weight:bold}
.pred,.unc{font-size:12px;margin-bottom:4px}.unc{color:#555;max-width:260px}.warn{color:#b00020;font-weight:bold}.ok{color:#2a7a2a}
dl.legend{font-size:13px;margin:6px 0}dl.legend dt{font-weight:bold;margin-top:6px}dl.legend dd{margin:0 0 0 16px;color:#333}
table{border-collapse:collapse;font-size:13px;margin:8px 0}td,th{border:1px solid #ddd;padding:4px 8px}td.num{text-align:right;font-variant-numeric:tabular-nums}thead th{background:#f5f5f5}
.caption,.note{font-size:13px;color:#444}.chart{margin:10px 0}.chart figcaption{max-width:none;font-size:13px;margin-bottom:4px}summary{cursor:pointer;font-size:13px;color:#333}
footer{margin-top:32px;font-size:12px;color:#777}`;

/**
 * Renders a report document to one HTML string. Raster images are PNG data URLs when
 * `opts.encodePng` is given (pngjs in Node, a canvas in a browser), exact inline SVG otherwise.
 */
export async function renderReport(doc: ReportDocument, opts: RenderOptions = {}): Promise<string> {
  const body: string[] = [];
  for (const sec of doc.sections) body.push(await renderSection(sec, opts));
  const meta = doc.meta?.length ? `<dl class="meta">${doc.meta.map((m) => `<dt>${esc(m.label)}</dt><dd>${esc(m.value)}</dd>`).join('')}</dl>` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<link rel="icon" href="data:,"><title>${esc(doc.title)}</title><style>${CSS}</style></head>
<body><h1>${esc(doc.title)}</h1>${doc.subtitle ? `<p class="sub">${esc(doc.subtitle)}</p>` : ''}${meta}
${body.join('\n')}
<footer>Made by backlight. This file is self-contained: no scripts, no network requests.</footer></body></html>
`;
}

async function renderSection(sec: ReportSection, opts: RenderOptions): Promise<string> {
  const title = 'title' in sec && sec.title ? `<h2>${esc(sec.title)}</h2>` : '';
  let inner: string;
  switch (sec.kind) {
    case 'images': inner = await imageSection(sec, opts.encodePng); break;
    case 'tabular': inner = tabularSection(sec); break;
    case 'table': inner = tableSection(sec); break;
    case 'text': inner = textSection(sec); break;
    case 'figure': inner = figureSection(sec); break;
    default: throw new Error(`report: unknown section kind '${String((sec as { kind: unknown }).kind)}' (images, tabular, table, text, figure)`);
  }
  return `<section class="${sec.kind}">${title}${inner}</section>`;
}

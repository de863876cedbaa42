// The report's charts as inline SVG (no xmlns needed inside HTML, so the file holds no URL):
// probability bars, colour bars with value ticks, SHAP-style waterfall and beeswarm plots.
import { colorOf, type Colormap } from '../heatmap.ts';
import type { MapSign } from './model.ts';
import { scalePosition } from './raster.ts';

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A number in a few significant digits, without a trailing '.0' or exponent for plain sizes. */
export function fmt(v: number, digits = 3): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e-3 && a < 1e5) return String(Number(v.toPrecision(digits)));
  return v.toExponential(Math.max(0, digits - 1)).replace('e+', 'e');
}

export function pct(p: number, digits = 1): string {
  return `${(100 * p).toFixed(digits)}%`;
}

const SHAP_RED = '#ff0051';
const SHAP_BLUE = '#008bfb';
const rgb = (c: [number, number, number]) => `rgb(${c[0]},${c[1]},${c[2]})`;

export interface Bar { label: string; value: number; std?: number; highlight?: boolean; note?: string }

/** Horizontal probability bars with labels in percent and optional +-std whiskers. */
export function probabilityBars(bars: Bar[], width = 300): string {
  const rowH = 18, labelW = 92, valueW = 96, barW = width - labelW - valueW;
  const h = bars.length * rowH + 4;
  const out: string[] = [`<svg class="bars" width="${width}" height="${h}" viewBox="0 0 ${width} ${h}" role="img" aria-label="class probabilities">`];
  bars.forEach((b, i) => {
    const y = 2 + i * rowH;
    const w = Math.max(0, Math.min(1, b.value)) * barW;
    out.push(`<text x="${labelW - 4}" y="${y + 13}" text-anchor="end" class="${b.highlight ? 'hl' : ''}">${esc(b.label)}</text>`);
    out.push(`<rect x="${labelW}" y="${y + 3}" width="${barW}" height="${rowH - 6}" fill="#eee"/>`);
    out.push(`<rect x="${labelW}" y="${y + 3}" width="${w.toFixed(2)}" height="${rowH - 6}" fill="${b.highlight ? '#d62728' : '#7f7f7f'}"/>`);
    if (b.std !== undefined && Number.isFinite(b.std)) {
      const x0 = labelW + Math.max(0, b.value - b.std) * barW, x1 = labelW + Math.min(1, b.value + b.std) * barW;
      out.push(`<line x1="${x0.toFixed(2)}" x2="${x1.toFixed(2)}" y1="${y + rowH / 2}" y2="${y + rowH / 2}" stroke="#000" stroke-width="1.2"/>`);
    }
    out.push(`<text x="${labelW + barW + 4}" y="${y + 13}" class="num">${esc(pct(b.value))}${b.note ? ` ${esc(b.note)}` : ''}</text>`);
  });
  out.push('</svg>');
  return out.join('');
}

/** Tick values of a colour bar: -m, -m/2, 0, m/2, m for signed scales; 0, m/2, m otherwise. */
export function colourBarTicks(scale: { lo: number; hi: number }): number[] {
  const { lo, hi } = scale;
  return lo < 0 ? [lo, lo / 2, 0, hi / 2, hi] : [lo, (lo + hi) / 2, hi];
}

let gradientId = 0;
/** A vertical colour bar for one map: the colours of its scale with value ticks. */
export function colourBar(scale: { lo: number; hi: number }, sign: MapSign, colormap: Colormap, height: number): string {
  const id = `cb${gradientId++}`;
  const stops: string[] = [];
  for (let i = 0; i <= 16; i++) {
    const t = i / 16;
    const v = scale.hi - t * (scale.hi - scale.lo); // top = high
    stops.push(`<stop offset="${t.toFixed(4)}" stop-color="${rgb(colorOf(scalePosition(v, sign, scale), colormap))}"/>`);
  }
  const barW = 12, w = 64, top = 6, bh = height - 12;
  const ticks = colourBarTicks(scale).map((v) => {
    const y = top + ((scale.hi - v) / (scale.hi - scale.lo)) * bh;
    const label = fmt(v, 2);
    return `<line x1="${barW}" x2="${barW + 4}" y1="${y.toFixed(2)}" y2="${y.toFixed(2)}" stroke="#333"/><text x="${barW + 6}" y="${(y + 3.5).toFixed(2)}" class="tick">${esc(label)}</text>`;
  });
  return `<svg class="cbar" width="${w}" height="${height}" viewBox="0 0 ${w} ${height}" role="img" aria-label="colour scale ${esc(fmt(scale.lo))} to ${esc(fmt(scale.hi))}"><defs><linearGradient id="${id}" x1="0" y1="0" x2="0" y2="1">${stops.join('')}</linearGradient></defs><rect x="0" y="${top}" width="${barW}" height="${bh}" fill="url(#${id})" stroke="#333" stroke-width="0.5"/>${ticks.join('')}</svg>`;
}

/** Nice axis ticks over [lo, hi]. */
export function axisTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

export interface WaterfallInput {
  featureNames: string[];
  values: ArrayLike<number>;
  featureValues?: ArrayLike<number>;
  baseValue: number;
  maxDisplay: number;
  outputName: string;
}

/** Features by |value|, the first maxDisplay - 1 on their own and the rest summed into one line. */
export function waterfallSteps(values: ArrayLike<number>, names: string[], maxDisplay: number, featureValues?: ArrayLike<number>): { label: string; value: number }[] {
  const idx = Array.from({ length: values.length }, (_, i) => i).sort((a, b) => Math.abs(values[b]) - Math.abs(values[a]) || a - b);
  const shown = idx.length > maxDisplay ? idx.slice(0, maxDisplay - 1) : idx;
  const steps = shown.map((i) => ({ label: featureValues ? `${names[i]} = ${fmt(featureValues[i])}` : names[i], value: values[i] }));
  if (idx.length > shown.length) {
    const rest = idx.slice(shown.length);
    steps.push({ label: `${rest.length} other features`, value: rest.reduce((s, i) => s + values[i], 0) });
  }
  return steps;
}

/**
 * SHAP's waterfall: from E[f(x)] at the bottom, each feature's value as an arrow-shaped bar (red
 * pushes the output up, blue down), most important at the top, ending at f(x).
 */
export function waterfallSvg(w: WaterfallInput): string {
  const steps = waterfallSteps(w.values, w.featureNames, w.maxDisplay, w.featureValues);
  const total = steps.reduce((s, d) => s + d.value, 0);
  const fx = w.baseValue + total;
  // cumulative from the base, bottom (least important) upwards, as shap draws it
  const rows = [...steps].reverse();
  let acc = w.baseValue;
  const spans = rows.map((d) => { const a = acc; acc += d.value; return { ...d, from: a, to: acc }; });
  let lo = Math.min(w.baseValue, fx), hi = Math.max(w.baseValue, fx);
  for (const s of spans) { lo = Math.min(lo, s.from, s.to); hi = Math.max(hi, s.from, s.to); }
  const pad = (hi - lo || 1) * 0.08; lo -= pad; hi += pad;
  // label column sized to the longest label (about 6.3 px per character at 11 px)
  const labelW = Math.max(120, Math.ceil(Math.max(...steps.map((d) => d.label.length)) * 6.3) + 14), plotW = 340, rowH = 22, top = 24, W = labelW + plotW + 20;
  const H = top + spans.length * rowH + 60;
  const margin = 52; // room for a value label beside the outermost bars
  const X = (v: number) => labelW + margin + ((v - lo) / (hi - lo)) * (plotW - 2 * margin);
  const out: string[] = [`<svg class="waterfall" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="waterfall plot">`];
  // labels centred on their line, but kept inside the plot
  const labelX = (v: number) => Math.min(W - 90, Math.max(labelW + 60, X(v))).toFixed(1);
  out.push(`<text x="${labelX(fx)}" y="14" text-anchor="middle" class="num">f(x) = ${esc(fmt(fx))}</text>`);
  out.push(`<line x1="${X(fx).toFixed(1)}" x2="${X(fx).toFixed(1)}" y1="17" y2="${top}" stroke="#888" stroke-dasharray="2,2"/>`);
  // top row = most important: draw reversed spans from the top
  [...spans].reverse().forEach((s, i) => {
    const y = top + i * rowH;
    const x0 = X(Math.min(s.from, s.to)), x1 = X(Math.max(s.from, s.to));
    const up = s.value >= 0;
    const tip = Math.min(6, Math.max(0, x1 - x0));
    const pts = up
      ? `${x0},${y + 3} ${x1 - tip},${y + 3} ${x1},${y + rowH / 2} ${x1 - tip},${y + rowH - 3} ${x0},${y + rowH - 3}`
      : `${x1},${y + 3} ${x0 + tip},${y + 3} ${x0},${y + rowH / 2} ${x0 + tip},${y + rowH - 3} ${x1},${y + rowH - 3}`;
    out.push(`<text x="${labelW - 6}" y="${y + 15}" text-anchor="end">${esc(s.label)}</text>`);
    out.push(`<polygon points="${pts}" fill="${up ? SHAP_RED : SHAP_BLUE}"/>`);
    const tx = up ? x1 + 4 : x0 - 4;
    out.push(`<text x="${tx.toFixed(1)}" y="${y + 15}" text-anchor="${up ? 'start' : 'end'}" class="num" fill="${up ? SHAP_RED : SHAP_BLUE}">${up ? '+' : '\u2212'}${esc(fmt(Math.abs(s.value)))}</text>`);
    out.push(`<line x1="${labelW}" x2="${labelW + plotW}" y1="${y + rowH}" y2="${y + rowH}" stroke="#f0f0f0"/>`);
  });
  const axisY = top + spans.length * rowH + 4;
  out.push(`<line x1="${labelW}" x2="${labelW + plotW}" y1="${axisY}" y2="${axisY}" stroke="#333"/>`);
  for (const t of axisTicks(lo, hi)) out.push(`<line x1="${X(t).toFixed(1)}" x2="${X(t).toFixed(1)}" y1="${axisY}" y2="${axisY + 4}" stroke="#333"/><text x="${X(t).toFixed(1)}" y="${axisY + 15}" text-anchor="middle" class="tick">${esc(fmt(t, 2))}</text>`);
  out.push(`<line x1="${X(w.baseValue).toFixed(1)}" x2="${X(w.baseValue).toFixed(1)}" y1="${top}" y2="${axisY}" stroke="#888" stroke-dasharray="2,2"/>`);
  out.push(`<text x="${labelX(w.baseValue)}" y="${axisY + 30}" text-anchor="middle" class="num">E[f(x)] = ${esc(fmt(w.baseValue))}</text>`);
  out.push(`<text x="${(labelW + plotW / 2).toFixed(1)}" y="${axisY + 46}" text-anchor="middle">${esc(w.outputName)}</text>`);
  out.push('</svg>');
  return out.join('');
}

export interface BeeswarmInput {
  featureNames: string[];
  rows: { values: ArrayLike<number>; featureValues?: ArrayLike<number> }[];
  maxDisplay: number;
  outputName: string;
}

/** Features ordered by mean |value| over the rows, most important first. */
export function beeswarmOrder(rows: { values: ArrayLike<number> }[], nFeatures: number): { index: number; meanAbs: number }[] {
  const m = Array.from({ length: nFeatures }, (_, j) => ({ index: j, meanAbs: rows.reduce((s, r) => s + Math.abs(r.values[j]), 0) / Math.max(1, rows.length) }));
  return m.sort((a, b) => b.meanAbs - a.meanAbs || a.index - b.index);
}

/**
 * SHAP's beeswarm: a row per feature (by mean |value|), a dot per explained row at its value,
 * stacked where dots collide, coloured by the feature's value from low (blue) to high (red).
 */
export function beeswarmSvg(b: BeeswarmInput): string {
  const order = beeswarmOrder(b.rows, b.featureNames.length).slice(0, b.maxDisplay);
  let lo = 0, hi = 0;
  for (const r of b.rows) for (const o of order) { lo = Math.min(lo, r.values[o.index]); hi = Math.max(hi, r.values[o.index]); }
  const pad = (hi - lo || 1) * 0.05; lo -= pad; hi += pad;
  const labelW = Math.max(100, Math.ceil(Math.max(...order.map((o) => b.featureNames[o.index].length)) * 6.3) + 16), plotW = 360, rowH = 28, top = 10, W = labelW + plotW + 130;
  const H = top + order.length * rowH + 40;
  const X = (v: number) => labelW + ((v - lo) / (hi - lo)) * plotW;
  const out: string[] = [`<svg class="beeswarm" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="beeswarm plot">`];
  const zeroX = X(0);
  out.push(`<line x1="${zeroX.toFixed(1)}" x2="${zeroX.toFixed(1)}" y1="${top}" y2="${top + order.length * rowH}" stroke="#999"/>`);
  const dotR = 2.6;
  order.forEach((o, i) => {
    const yc = top + i * rowH + rowH / 2;
    out.push(`<text x="${labelW - 8}" y="${yc + 4}" text-anchor="end">${esc(b.featureNames[o.index])}</text>`);
    out.push(`<line x1="${labelW}" x2="${labelW + plotW}" y1="${yc}" y2="${yc}" stroke="#eee"/>`);
    let fmin = Infinity, fmax = -Infinity;
    for (const r of b.rows) if (r.featureValues) { fmin = Math.min(fmin, r.featureValues[o.index]); fmax = Math.max(fmax, r.featureValues[o.index]); }
    // deterministic swarm: dots sorted by x; each takes the lowest free offset in its neighbourhood
    const dots = b.rows.map((r) => ({ x: X(r.values[o.index]), f: r.featureValues ? r.featureValues[o.index] : NaN })).sort((p, q) => p.x - q.x);
    const placed: { x: number; dy: number }[] = [];
    for (const d of dots) {
      let k = 0, dy = 0;
      const near = placed.filter((p) => Math.abs(p.x - d.x) < 2 * dotR);
      for (;;) {
        dy = (k % 2 === 0 ? 1 : -1) * Math.ceil(k / 2) * 2 * dotR * 0.9;
        if (Math.abs(dy) > rowH / 2 - dotR) { dy = 0; break; } // a full row: overlap at the centre
        if (!near.some((p) => Math.abs(p.dy - dy) < 1.8 * dotR)) break;
        k++;
      }
      placed.push({ x: d.x, dy });
      const t = Number.isFinite(d.f) && fmax > fmin ? (d.f - fmin) / (fmax - fmin) : NaN;
      const fill = Number.isFinite(t) ? rgb(blend(t)) : '#777';
      out.push(`<circle cx="${d.x.toFixed(1)}" cy="${(yc + dy).toFixed(1)}" r="${dotR}" fill="${fill}" fill-opacity="0.85"/>`);
    }
  });
  const axisY = top + order.length * rowH + 4;
  out.push(`<line x1="${labelW}" x2="${labelW + plotW}" y1="${axisY}" y2="${axisY}" stroke="#333"/>`);
  for (const t of axisTicks(lo, hi)) out.push(`<line x1="${X(t).toFixed(1)}" x2="${X(t).toFixed(1)}" y1="${axisY}" y2="${axisY + 4}" stroke="#333"/><text x="${X(t).toFixed(1)}" y="${axisY + 15}" text-anchor="middle" class="tick">${esc(fmt(t, 2))}</text>`);
  out.push(`<text x="${labelW + plotW / 2}" y="${axisY + 32}" text-anchor="middle">attribution to ${esc(b.outputName)}</text>`);
  // feature-value colour legend
  const lx = labelW + plotW + 30, ly = top + 4, lh = Math.max(40, order.length * rowH - 8);
  const stops = Array.from({ length: 9 }, (_, i) => `<stop offset="${(i / 8).toFixed(3)}" stop-color="${rgb(blend(1 - i / 8))}"/>`).join('');
  const id = `bs${gradientId++}`;
  out.push(`<defs><linearGradient id="${id}" x1="0" y1="0" x2="0" y2="1">${stops}</linearGradient></defs><rect x="${lx}" y="${ly}" width="10" height="${lh}" fill="url(#${id})"/>`);
  out.push(`<text x="${lx + 14}" y="${ly + 9}" class="tick">high</text><text x="${lx + 14}" y="${ly + lh}" class="tick">low</text><text x="${lx + 14}" y="${ly + lh / 2 + 4}" class="tick">feature value</text>`);
  out.push('</svg>');
  return out.join('');
}

// shap's feature-value colours run from its blue to its red through purple
function blend(t: number): [number, number, number] {
  const a = [0x00, 0x8b, 0xfb], b = [0xff, 0x00, 0x51];
  return [0, 1, 2].map((i) => Math.round(a[i] + t * (b[i] - a[i]))) as [number, number, number];
}

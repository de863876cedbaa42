// A self-contained SVG scatter plot of a 2-D embedding coloured by label (with a legend), an HTML
// page around it, and the leave-one-out k-NN accuracy that says how well an embedding separates
// the classes.

import { checkOptions, optionKeys } from '../options.ts';

export interface ScatterOptions {
  /** Class names by label index (default the label numbers). */
  classNames?: readonly string[];
  title?: string;
  /** Plot area width and height in pixels (default 640). */
  size?: number;
  /** Point radius (default: 3, smaller for many points). */
  radius?: number;
}

export interface ScatterHtmlOptions extends ScatterOptions {
  /** A paragraph under the plot. */
  caption?: string;
}
const SCATTER_KEYS = optionKeys<ScatterOptions>()(['classNames', 'title', 'size', 'radius']);
const SCATTER_HTML_KEYS = optionKeys<ScatterHtmlOptions>()(['classNames', 'title', 'size', 'radius', 'caption']);

/** Ten categorical colours (Tableau 10), then golden-angle hues. */
const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
function colour(c: number): string {
  return c < PALETTE.length ? PALETTE[c] : `hsl(${(c * 137.508) % 360}, 65%, 50%)`;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * One `<circle>` per point (x = column 0, y = column 1 of the row-major [N, 2] `coords`, y up), each
 * with a `<title>` naming its row and label; a legend with one entry per label present.
 */
export function scatterSvg(coords: ArrayLike<number>, labels: ArrayLike<number>, opts: ScatterOptions = {}): string {
  checkOptions('scatterSvg', opts, SCATTER_KEYS);
  return scatter('scatterSvg', coords, labels, opts);
}

function scatter(op: string, coords: ArrayLike<number>, labels: ArrayLike<number>, opts: ScatterOptions): string {
  // Below 40 pixels the 20-pixel padding leaves no plot area.
  if (opts.size !== undefined && !(typeof opts.size === 'number' && Number.isFinite(opts.size) && opts.size >= 40)) throw new Error(`${op}: option 'size' must be a number of pixels >= 40, got ${String(opts.size)}`);
  if (opts.radius !== undefined && !(typeof opts.radius === 'number' && Number.isFinite(opts.radius) && opts.radius > 0)) throw new Error(`${op}: option 'radius' must be a finite number > 0, got ${String(opts.radius)}`);
  const N = labels.length;
  if (coords.length !== 2 * N) throw new Error(`${op}: expected ${2 * N} coordinates ([N, 2] for ${N} labels), got ${coords.length}`);
  const size = opts.size ?? 640, pad = 20, legendW = 150, titleH = opts.title ? 28 : 0;
  const r = opts.radius ?? (N > 2000 ? 1.6 : N > 500 ? 2.4 : 3.2);
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (let i = 0; i < N; i++) {
    const x = coords[2 * i], y = coords[2 * i + 1];
    if (!Number.isFinite(x) || !Number.isFinite(y)) throw new Error(`${op}: point ${i} has a non-finite coordinate (${x}, ${y})`);
    x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
  }
  const span = Math.max(x1 - x0, y1 - y0) || 1;
  const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
  const inner = size - 2 * pad;
  const px = (x: number) => pad + inner / 2 + ((x - cx) / span) * inner;
  const py = (y: number) => titleH + pad + inner / 2 - ((y - cy) / span) * inner;
  const name = (c: number) => opts.classNames?.[c] ?? String(c);
  const present = [...new Set(Array.from(labels))].sort((a, b) => a - b);
  const out: string[] = [];
  const W = size + legendW, H = size + titleH;
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="white"/>`);
  if (opts.title) out.push(`<text x="${W / 2}" y="19" text-anchor="middle" font-size="15">${esc(opts.title)}</text>`);
  out.push(`<rect x="${pad / 2}" y="${titleH + pad / 2}" width="${size - pad}" height="${size - pad}" fill="none" stroke="#ccc"/>`);
  out.push('<g fill-opacity="0.8" stroke="white" stroke-width="0.4">');
  for (let i = 0; i < N; i++) {
    const c = labels[i];
    out.push(`<circle cx="${px(coords[2 * i]).toFixed(2)}" cy="${py(coords[2 * i + 1]).toFixed(2)}" r="${r}" fill="${colour(c)}"><title>#${i}: ${esc(name(c))}</title></circle>`);
  }
  out.push('</g>');
  out.push(`<g class="legend">`);
  present.forEach((c, k) => {
    const y = titleH + pad + 18 * k;
    out.push(`<rect x="${size + 10}" y="${y}" width="12" height="12" fill="${colour(c)}"/><text x="${size + 28}" y="${y + 10}">${esc(name(c))}</text>`);
  });
  out.push('</g></svg>');
  return out.join('\n');
}

/** An HTML page holding the scatter plot (no external resources) and a caption. */
export function scatterHtml(coords: ArrayLike<number>, labels: ArrayLike<number>, opts: ScatterHtmlOptions = {}): string {
  checkOptions('scatterHtml', opts, SCATTER_HTML_KEYS);
  const { caption, ...plot } = opts; // the plot gets its own options only
  return [
    '<!doctype html>',
    '<html><head><meta charset="utf-8">',
    `<title>${esc(opts.title ?? 'embedding')}</title>`,
    '<style>body{font-family:sans-serif;margin:24px;color:#222}p{max-width:800px}</style>',
    '</head><body>',
    scatter('scatterHtml', coords, labels, plot),
    caption ? `<p>${esc(caption)}</p>` : '',
    '</body></html>',
    '',
  ].join('\n');
}

/**
 * Leave-one-out k-nearest-neighbour accuracy of labels in an embedding (row-major [N, dim]): each
 * point takes the majority label of its k nearest other points (Euclidean; ties go to the label
 * whose nearest member is closest).
 */
export function knnAccuracy(coords: ArrayLike<number>, labels: ArrayLike<number>, k = 5, dim = 2): number {
  const N = labels.length;
  if (coords.length !== N * dim) throw new Error(`knnAccuracy: expected ${N * dim} coordinates, got ${coords.length}`);
  if (!Number.isInteger(k) || k < 1 || k >= N) throw new Error(`knnAccuracy: k must be an integer in [1, ${N - 1}], got ${k}`);
  let correct = 0;
  const d = new Float64Array(N);
  const idx = Array.from({ length: N }, (_, i) => i);
  for (let i = 0; i < N; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let c = 0; c < dim; c++) s += (coords[i * dim + c] - coords[j * dim + c]) ** 2;
      d[j] = j === i ? Infinity : s;
    }
    const nn = idx.slice().sort((a, b) => d[a] - d[b] || a - b).slice(0, k);
    const votes = new Map<number, number>();
    for (const j of nn) votes.set(labels[j], (votes.get(labels[j]) ?? 0) + 1);
    let best = -1, bestVotes = -1;
    for (const j of nn) {
      const v = votes.get(labels[j])!;
      if (v > bestVotes) (best = labels[j]), (bestVotes = v);
    }
    if (best === labels[i]) correct++;
  }
  return correct / N;
}

// The figure of a randomisation test, as in Adebayo et al. 2018 (Fig. 2 / Fig. 4): similarity
// between the original and the randomised explanation against the randomised layer, from
// 'original' (nothing randomised; similarity 1 by definition) through the layers top down, one
// line per measure. Plain SVG text, no dependencies (embeds in the HTML report or stands alone).

import { checkOptions, optionKeys } from '../options.ts';

export type SimilarityMeasure = 'spearman' | 'spearmanAbs' | 'ssim';

export interface RandomisationPlotRow {
  layer: string;
  spearman: number;
  spearmanAbs: number;
  ssim: number;
}

export interface RandomisationPlotOptions {
  title?: string;
  /** Default 640 x 400. */
  width?: number;
  height?: number;
  /** The lines to draw (default all three). */
  measures?: SimilarityMeasure[];
}

const LABELS: Record<SimilarityMeasure, string> = {
  spearman: 'Spearman (signed)',
  spearmanAbs: 'Spearman (absolute)',
  ssim: 'SSIM',
};
const COLORS: Record<SimilarityMeasure, string> = { spearman: '#1f77b4', spearmanAbs: '#ff7f0e', ssim: '#2ca02c' };
const DASH: Record<SimilarityMeasure, string> = { spearman: '', spearmanAbs: '6 3', ssim: '2 3' };

/** Escape text for SVG/XML content and attribute values. */
function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

const fmt = (v: number) => (Math.round(v * 100) / 100).toString();

const PLOT_KEYS = optionKeys<RandomisationPlotOptions>()(['title', 'width', 'height', 'measures']);

/**
 * An SVG line chart of randomisation results (modelRandomisation's rows, or any rows with `layer`
 * and the three measures): x is 'original' then each row's layer, y the similarity from
 * min(0, lowest value) to 1. A NaN value leaves a gap in its line.
 */
export function randomisationPlotSvg(results: readonly RandomisationPlotRow[], opts: RandomisationPlotOptions = {}): string {
  const op = 'randomisationPlotSvg';
  checkOptions(op, opts, PLOT_KEYS);
  const W = opts.width ?? 640, H = opts.height ?? 400;
  // The margins take 246 x 152 pixels; a smaller figure would draw with negative sizes.
  for (const [k, v, min] of [['width', W, 300], ['height', H, 200]] as const) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) throw new Error(`${op}: option '${k}' must be a number of pixels >= ${min}, got ${String(opts[k])}`);
  }
  if (opts.measures !== undefined && !Array.isArray(opts.measures)) throw new Error(`${op}: option 'measures' must be an array of ${Object.keys(LABELS).join(', ')}, got ${typeof opts.measures}`);
  const measures = opts.measures ?? (['spearman', 'spearmanAbs', 'ssim'] as SimilarityMeasure[]);
  for (const m of measures) if (!(m in LABELS)) throw new Error(`randomisationPlotSvg: unknown measure '${String(m)}' (known: ${Object.keys(LABELS).join(', ')})`);
  const cats = ['original', ...results.map((r) => r.layer)];
  const series = measures.map((m) => ({ m, values: [1, ...results.map((r) => r[m])] }));
  const finite = series.flatMap((s) => s.values).filter(Number.isFinite);
  const lo = Math.max(-1, Math.min(0, Math.floor(Math.min(...finite) * 5) / 5));
  const ml = 56, mr = 190, mt = opts.title ? 40 : 16, mb = 96;
  const pw = W - ml - mr, ph = H - mt - mb;
  const xOf = (i: number) => ml + (cats.length === 1 ? pw / 2 : (i * pw) / (cats.length - 1));
  const yOf = (v: number) => mt + ((1 - v) / (1 - lo)) * ph;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  if (opts.title) out.push(`<text x="${ml + pw / 2}" y="24" text-anchor="middle" font-size="15">${esc(opts.title)}</text>`);
  // y grid and ticks, every 0.2
  for (let k = Math.round(lo * 5); k <= 5; k++) {
    const v = k / 5, y = yOf(v).toFixed(1);
    out.push(`<line x1="${ml}" x2="${ml + pw}" y1="${y}" y2="${y}" stroke="${v === 0 ? '#999' : '#e5e5e5'}"/>`);
    out.push(`<text x="${ml - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${fmt(v)}</text>`);
  }
  out.push(`<text transform="translate(14 ${mt + ph / 2}) rotate(-90)" text-anchor="middle">similarity to the original explanation</text>`);
  // x axis: categories, labels rotated
  out.push(`<line x1="${ml}" x2="${ml + pw}" y1="${mt + ph}" y2="${mt + ph}" stroke="#333"/>`);
  cats.forEach((c, i) => {
    const x = xOf(i).toFixed(1);
    out.push(`<line x1="${x}" x2="${x}" y1="${mt + ph}" y2="${mt + ph + 4}" stroke="#333"/>`);
    out.push(`<text transform="translate(${x} ${mt + ph + 10}) rotate(40)" text-anchor="start">${esc(c)}</text>`);
  });
  out.push(`<text x="${ml + pw / 2}" y="${H - 8}" text-anchor="middle">layers randomised, from the top (logits) down</text>`);
  // one line per measure (a NaN starts a new segment), with markers
  for (const { m, values } of series) {
    let d = '', pen = false;
    values.forEach((v, i) => {
      if (!Number.isFinite(v)) {
        pen = false;
        return;
      }
      d += `${pen ? 'L' : 'M'}${xOf(i).toFixed(1)} ${yOf(v).toFixed(1)} `;
      pen = true;
    });
    out.push(`<g data-measure="${m}" stroke="${COLORS[m]}" fill="${COLORS[m]}">`);
    if (d) out.push(`<path d="${d.trim()}" fill="none" stroke-width="2"${DASH[m] ? ` stroke-dasharray="${DASH[m]}"` : ''}/>`);
    values.forEach((v, i) => {
      if (Number.isFinite(v)) out.push(`<circle cx="${xOf(i).toFixed(1)}" cy="${yOf(v).toFixed(1)}" r="3"><title>${esc(`${cats[i]}: ${LABELS[m]} ${v.toFixed(3)}`)}</title></circle>`);
    });
    out.push('</g>');
  }
  // legend
  series.forEach(({ m }, k) => {
    const y = mt + 10 + k * 20, x = ml + pw + 24;
    out.push(`<line x1="${x}" x2="${x + 24}" y1="${y}" y2="${y}" stroke="${COLORS[m]}" stroke-width="2"${DASH[m] ? ` stroke-dasharray="${DASH[m]}"` : ''}/>`);
    out.push(`<text x="${x + 30}" y="${y}" dominant-baseline="middle">${esc(LABELS[m])}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

// What `backlight explain` writes for people: heatmap PNGs at a readable size (nearest-neighbour
// magnification, so an 8x8 digit stays eight crisp cells, not a blur and not 8 pixels) and the
// HTML report with the prediction. The report is self-contained (inline PNGs, no network).
import type { Tensor } from '../engine/index.ts';
import * as ex from '../explain/index.ts';
import { encodePng, overlayPixels } from '../explain/heatmap.ts';

export function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

/** Default magnification: tiles of about 256 pixels on their longer side, never below 1. */
export function defaultScale(h: number, w: number): number {
  return Math.max(1, Math.floor(256 / Math.max(h, w)));
}

/** RGBA (h x w x 4) magnified s times by pixel replication. */
export function magnify(px: Uint8Array, w: number, h: number, s: number): Uint8Array {
  if (s === 1) return px;
  const W = w * s;
  const out = new Uint8Array(W * h * s * 4);
  for (let y = 0; y < h * s; y++) {
    const sy = Math.floor(y / s);
    for (let x = 0; x < W; x++) {
      const from = (sy * w + Math.floor(x / s)) * 4, to = (y * W + x) * 4;
      out[to] = px[from];
      out[to + 1] = px[from + 1];
      out[to + 2] = px[from + 2];
      out[to + 3] = px[from + 3];
    }
  }
  return out;
}

/** Host images [N, C, H, W] (values in [0, 1]) to show under the maps. */
export interface HostImages {
  data: Float32Array;
  shape: number[];
}

/** RGBA tiles, one per item: the map over the image (or the image alone with alpha 0). */
async function tiles(attr: Tensor | null, images: HostImages | undefined, opts: ex.OverlayOptions): Promise<{ px: Uint8Array[]; h: number; w: number }> {
  const size: [number, number] | undefined = images && images.shape.length === 4 ? [images.shape[2], images.shape[3]] : undefined;
  let maps: Float32Array[], h: number, w: number;
  if (attr) ({ maps, h, w } = await ex.normalizedMaps(attr, { ...opts, size }));
  else {
    [h, w] = size!;
    maps = Array.from({ length: images!.shape[0] }, () => new Float32Array(h * w));
  }
  const c = images?.shape[1] ?? 1;
  const px = maps.map((m, i) =>
    overlayPixels(m, h, w, images && size ? { data: images.data.subarray(i * c * h * w, (i + 1) * c * h * w), channels: c } : undefined, attr ? opts : { ...opts, alpha: 0 }),
  );
  return { px, h, w };
}

/** Tiles side by side with a white gap, magnified `scale` times. */
function strip(px: Uint8Array[], h: number, w: number, scale: number): { px: Uint8Array; w: number; h: number } {
  const gap = px.length > 1 ? Math.max(2, scale >> 1) : 0;
  const tw = w * scale, th = h * scale;
  const W = px.length * tw + (px.length - 1) * gap;
  const out = new Uint8Array(W * th * 4).fill(255);
  px.forEach((p, i) => {
    const big = magnify(p, w, h, scale);
    for (let y = 0; y < th; y++) out.set(big.subarray(y * tw * 4, (y + 1) * tw * 4), (y * W + i * (tw + gap)) * 4);
  });
  return { px: out, w: W, h: th };
}

/**
 * One PNG for a batch of attributions ([N, C, H, W] or [N, H, W]): each item's map (upsampled
 * bilinearly to the image when one is given) over its image, side by side, magnified `scale`
 * times. Returns the bytes and the size in pixels.
 */
export async function heatmapStripPng(attr: Tensor, images: HostImages | undefined, scale: number, opts: ex.OverlayOptions = {}): Promise<{ bytes: Uint8Array; w: number; h: number }> {
  const t = await tiles(attr, images, opts);
  const s = strip(t.px, t.h, t.w, scale);
  return { bytes: await encodePng(s.px, s.w, s.h), w: s.w, h: s.h };
}

/** One PNG per item (for the report's cells). */
async function itemPngs(attr: Tensor | null, images: HostImages | undefined, scale: number): Promise<string[]> {
  const t = await tiles(attr, images, {});
  const out: string[] = [];
  for (const p of t.px) out.push(`data:image/png;base64,${Buffer.from(await encodePng(magnify(p, t.w, t.h, scale), t.w * scale, t.h * scale)).toString('base64')}`);
  return out;
}

export interface Prediction {
  class: number;
  label: string;
  probability: number;
  /** The most probable classes, best first. */
  top: { class: number; label: string; probability: number }[];
}

/** argmax and the top-k softmax probabilities per row of [n, c] logits (or probabilities). */
export function predictionsOf(v: ArrayLike<number>, n: number, c: number, classes: string[] | null, isProb = false, k = 3): Prediction[] {
  return Array.from({ length: n }, (_, i) => {
    const row = Array.from({ length: c }, (_, j) => v[i * c + j]);
    let p = row;
    if (!isProb) {
      const mx = Math.max(...row);
      const e = row.map((x) => Math.exp(x - mx));
      const z = e.reduce((a, b) => a + b, 0);
      p = e.map((x) => x / z);
    }
    const order = p.map((x, j) => j).sort((a, b) => p[b] - p[a] || a - b);
    const lab = (j: number) => classes?.[j] ?? String(j);
    return { class: order[0], label: lab(order[0]), probability: p[order[0]], top: order.slice(0, Math.min(k, c)).map((j) => ({ class: j, label: lab(j), probability: p[j] })) };
  });
}

export interface ExplainReport {
  title: string;
  model: string;
  labels: string[];
  images?: HostImages;
  predictions: Prediction[] | null;
  /** The class each item's maps explain. */
  targets: number[] | null;
  results: { method: string; map: Tensor; caption: string }[];
  info: string[];
  scale: number;
}

/** The explain command's HTML report: input, prediction with probabilities, one row per method. */
export async function explainHtml(r: ExplainReport): Promise<string> {
  const items = r.labels.length;
  const rows: string[] = [];
  const inputs = r.images ? await itemPngs(null, r.images, r.scale) : null;
  rows.push(`<tr><th>input</th>${r.labels.map((l, i) => `<td>${inputs ? `<img src="${inputs[i]}" alt="input ${i}">` : ''}<div>${esc(l)}</div></td>`).join('')}</tr>`);
  if (r.predictions) {
    rows.push(
      `<tr><th>prediction</th>${r.predictions
        .map((p, i) => `<td><b>${esc(p.label)}</b> (${(100 * p.probability).toFixed(1)}%)<div>${p.top.map((t) => `${esc(t.label)}: ${(100 * t.probability).toFixed(1)}%`).join('<br>')}</div>${r.targets && r.targets[i] !== p.class ? `<div>explained class: ${esc(String(r.targets[i]))}</div>` : ''}</td>`)
        .join('')}</tr>`,
    );
  }
  for (const res of r.results) {
    const cells = res.map.rank === 4 || res.map.rank === 3 ? (await itemPngs(res.map, r.images, r.scale)).map((s, i) => `<img src="${s}" alt="${esc(res.method)} ${i}">`) : Array.from({ length: items }, () => `<code>[${res.map.shape.slice(1).join(', ')}]</code>`);
    rows.push(`<tr><th>${esc(res.method)}<div>${esc(res.caption)}</div></th>${cells.map((c) => `<td>${c}</td>`).join('')}</tr>`);
  }
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(r.title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{padding:6px;border:1px solid #ddd;text-align:center;vertical-align:top}
img{image-rendering:pixelated;max-width:320px}th{background:#f5f5f5;max-width:14em}div{font-size:12px;color:#555;font-weight:normal}</style></head>
<body><h1>${esc(r.title)}</h1><ul>${r.info.map((s) => `<li>${esc(s)}</li>`).join('')}</ul><table>${rows.join('\n')}</table>
<p>Heatmaps: per item, normalised to its largest value; channels of input-shaped maps reduced by summing absolute values (jet colour map, over the input). Prediction: softmax of the model's output, top ${r.predictions?.[0]?.top.length ?? 0} classes.</p></body></html>`;
}

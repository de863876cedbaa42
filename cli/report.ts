// What `backlight explain` writes for people: heatmap PNGs at a readable size (nearest-neighbour
// magnification, so an 8x8 digit stays eight crisp cells, not a blur and not 8 pixels) and the
// HTML report: the results as a document for explain/report's renderer (self-contained: inline
// PNGs, no network), with the prediction, its probabilities and a caption per method.
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

// ---- the HTML report through explain/report's renderer ----

/** How each CLI method's map reads (explain/report's MapSign) and what it answers. */
const METHOD_FACTS: Record<string, { sign: ex.MapSign; name: string; question?: string }> = {
  saliency: { sign: 'absolute', name: 'Saliency', question: 'How strongly does each input value change the output (|gradient|)?' },
  'input-x-gradient': { sign: 'signed', name: 'Input x gradient' },
  'integrated-gradients': { sign: 'signed', name: 'Integrated gradients', question: 'How much does each input value add to the output, compared with the baseline?' },
  smoothgrad: { sign: 'absolute', name: 'SmoothGrad' },
  'smoothgrad-sq': { sign: 'positive', name: 'SmoothGrad squared' },
  vargrad: { sign: 'positive', name: 'VarGrad' },
  'guided-backprop': { sign: 'signed', name: 'Guided backprop' },
  deconvnet: { sign: 'signed', name: 'Deconvnet' },
  deeplift: { sign: 'signed', name: 'DeepLIFT (rescale)' },
  'gradient-shap': { sign: 'signed', name: 'GradientSHAP' },
  lrp: { sign: 'signed', name: 'LRP', question: 'Where does the relevance of the output come from, layer by layer?' },
  cam: { sign: 'positive', name: 'CAM' },
  'grad-cam': { sign: 'positive', name: 'Grad-CAM', question: 'Which regions of the layer speak for the class?' },
  'grad-cam-plus-plus': { sign: 'positive', name: 'Grad-CAM++' },
  'hires-cam': { sign: 'positive', name: 'HiResCAM' },
  'xgrad-cam': { sign: 'positive', name: 'XGrad-CAM' },
  'layer-cam': { sign: 'positive', name: 'LayerCAM' },
  'score-cam': { sign: 'positive', name: 'Score-CAM' },
  'guided-grad-cam': { sign: 'signed', name: 'Guided Grad-CAM' },
  occlusion: { sign: 'signed', name: 'Occlusion', question: 'How much does the output drop when a window is covered?' },
  'kernel-shap': { sign: 'signed', name: 'KernelSHAP' },
  lime: { sign: 'signed', name: 'LIME' },
  'attention-rollout': { sign: 'positive', name: 'Attention rollout', question: 'Where does the class token attend, through all layers?' },
  'attention-relevance': { sign: 'positive', name: 'Attention relevance (Chefer et al.)' },
};

/** Methods whose attributions should sum to f(x) - f(baseline): the report checks it. */
export const COMPLETE_METHODS = new Set(['integrated-gradients', 'deeplift']);

/** Methods whose per-feature values add up from a base value (drawn as SHAP-style waterfalls for tabular inputs). */
export const ADDITIVE_METHODS = new Set(['integrated-gradients', 'deeplift', 'deeplift-shap', 'kernel-shap', 'shapley-sampling', 'shapley-exact', 'gradient-shap']);

export interface ReportInput {
  title: string;
  meta: { label: string; value: string }[];
  notes: string[];
  labels: string[];
  /** Host images [N, C, H, W] for image inputs. */
  images?: HostImages;
  classNames: string[] | null;
  /** Softmax probabilities per item, and the explained class per item. */
  probabilities: Float32Array[] | null;
  targets: number[] | null;
  /** f(x) and f(baseline) of each item's target, for the methods in COMPLETE_METHODS. */
  outputs?: { fx: number[]; fBaseline: number[] };
  methods: { method: string; values: Float32Array; shape: number[]; info: Omit<ex.MethodInfo, 'name' | 'sign'>; }[];
  /** CSS pixels of each picture's longer side (default 192). */
  displaySize?: number;
  /** Names of the features of tabular inputs, and the inputs' values ([N, F]). */
  featureNames?: string[];
  inputs?: Float32Array;
}

/** The explain command's results as explain/report's document. */
export function explainDocument(r: ReportInput): ex.ReportDocument {
  const sections: ex.ReportSection[] = [];
  if (r.notes.length) sections.push({ kind: 'text', title: 'Inputs', paragraphs: r.notes });
  const n = r.labels.length;
  const facts = (m: string) => METHOD_FACTS[m] ?? { sign: 'signed' as const, name: m };
  const imageMethods = r.methods.filter((m) => m.shape.length === 4 || m.shape.length === 3);
  if (r.images && imageMethods.length) {
    const [, c, h, w] = r.images.shape;
    sections.push({
      kind: 'images',
      title: 'Explanations',
      classNames: r.classNames ?? undefined,
      methods: imageMethods.map((m) => ({ ...m.info, name: facts(m.method).name, sign: facts(m.method).sign, question: facts(m.method).question })),
      items: Array.from({ length: n }, (_, i): ex.ImageItem => ({
        label: r.labels[i],
        input: { values: r.images!.data.subarray(i * c * h * w, (i + 1) * c * h * w), shape: [c, h, w] },
        prediction: r.probabilities ? { probabilities: r.probabilities[i], target: r.targets?.[i], top: 5 } : undefined,
        maps: imageMethods.map((m) => {
          const item = m.shape.slice(1);
          const per = item.reduce((a, b) => a * b, 1);
          const values = m.values.subarray(i * per, (i + 1) * per);
          const shape = (item.length === 3 ? item : [item[0], item[1]]) as [number, number] | [number, number, number];
          const completeness = COMPLETE_METHODS.has(m.method) && r.outputs ? { fx: r.outputs.fx[i], fBaseline: r.outputs.fBaseline[i] } : undefined;
          return { values, shape, completeness };
        }),
      })),
      displaySize: r.displaySize ?? 192,
    });
  }
  // Tabular inputs [N, F]: additive methods as waterfalls (from f(baseline) to f(x)) and a beeswarm.
  const tabular = (m: ReportInput['methods'][number]) => !r.images && m.shape.length === 2 && ADDITIVE_METHODS.has(m.method) && r.outputs !== undefined;
  for (const m of r.methods.filter(tabular)) {
    const f = m.shape[1];
    sections.push({
      kind: 'tabular',
      title: `${facts(m.method).name} per feature`,
      method: { ...m.info, name: facts(m.method).name, sign: facts(m.method).sign },
      outputName: r.targets ? `logit of the explained class` : undefined,
      featureNames: r.featureNames?.length === f ? r.featureNames : Array.from({ length: f }, (_, j) => `feature ${j}`),
      rows: Array.from({ length: n }, (_, i) => ({
        label: `${r.labels[i]}${r.targets && r.classNames ? ` (class ${r.classNames[r.targets[i]] ?? r.targets[i]})` : ''}`,
        values: m.values.subarray(i * f, (i + 1) * f),
        featureValues: r.inputs?.subarray(i * f, (i + 1) * f),
        baseValue: r.outputs!.fBaseline[i],
        prediction: r.outputs!.fx[i],
      })),
      waterfall: Array.from({ length: Math.min(n, 3) }, (_, i) => i),
    });
  }
  // Other maps that are not images (tabular saliency, prototype attention): one table per method.
  for (const m of r.methods.filter((x) => (!imageMethods.includes(x) || !r.images) && !tabular(x))) {
    const per = m.values.length / n;
    const cols = Math.min(per, 32);
    sections.push({
      kind: 'table',
      title: `${facts(m.method).name} [${m.shape.join(', ')}]`,
      columns: ['input', ...(r.probabilities ? ['prediction'] : []), ...Array.from({ length: cols }, (_, j) => `#${j}`)],
      rows: Array.from({ length: n }, (_, i) => {
        const p = r.probabilities?.[i];
        const k = p ? p.indexOf(Math.max(...p)) : -1;
        return [r.labels[i], ...(p ? [`${r.classNames?.[k] ?? k} (${(100 * p[k]).toFixed(1)}%)`] : []), ...Array.from(m.values.subarray(i * per, i * per + cols))];
      }),
      caption: per > cols ? `the first ${cols} of ${per} values per input` : undefined,
    });
  }
  return { title: r.title, meta: r.meta, sections };
}

// SLIC superpixels (Achanta, Shaji, Smith, Lucchi, Fua & Susstrunk 2012, "SLIC superpixels
// compared to state-of-the-art superpixel methods", TPAMI 34(11)), as a masker: each image of
// the batch gets its own segmentation, so the perturbation methods explain it per item.
//
// k-means on (channel values, y, x) with the distance D^2 = d_c^2 + (d_s / S)^2 m^2, each centre
// searching a 2S x 2S window (S = sqrt(HW / K), the grid step), centres seeded on a regular grid
// and moved to the lowest gradient in their 3x3 neighbourhood; then connectivity is enforced
// (components smaller than S^2 / 4 join an adjacent segment, the paper's post-processing).
// Channel values are used as given (no CIELAB conversion: inputs are arbitrary tensors, not
// sRGB), after scaling each image to [0, 1] so that `compactness` means the same for any input
// range: 0.1 (default) balances colour and space on [0, 1] data, larger is more square.
import { denseGroups, imageDims, type FeatureGroups, type Masker } from './maskers.ts';

export interface SlicOptions {
  /** Approximate number of superpixels (default 16). */
  segments?: number;
  compactness?: number;
  iterations?: number;
}

export function slic(segmentsOrOpts: number | SlicOptions = {}): Masker {
  const o = typeof segmentsOrOpts === 'number' ? { segments: segmentsOrOpts } : segmentsOrOpts;
  const k = o.segments ?? 16, m = o.compactness ?? 0.1, iters = o.iterations ?? 10;
  if (!Number.isInteger(k) || k < 1) throw new Error(`slic: segments must be a positive integer, got ${String(o.segments)}`);
  if (!(m > 0)) throw new Error(`slic: compactness must be positive, got ${String(o.compactness)}`);
  if (!Number.isInteger(iters) || iters < 1) throw new Error(`slic: iterations must be a positive integer, got ${String(o.iterations)}`);
  return {
    name: `slic:${k}`,
    masks(x, shape) {
      const { c, h, w } = imageDims('slic', shape);
      const n = shape[0], per = c * h * w;
      const out: FeatureGroups[] = [];
      for (let i = 0; i < n; i++) {
        const img = Float64Array.from({ length: per }, (_, j) => x[i * per + j]);
        const labels = slicLabels(img, c, h, w, k, m, iters);
        // Channels share the superpixel.
        const full = new Float64Array(per);
        for (let ch = 0; ch < c; ch++) full.set(labels, ch * h * w);
        out.push(denseGroups('slic', full));
      }
      return out;
    },
  };
}

/** SLIC labels [H * W] of one CHW image. */
export function slicLabels(img: Float64Array, c: number, h: number, w: number, k: number, m: number, iters: number): Int32Array {
  const hw = h * w;
  let lo = Infinity, hi = -Infinity;
  for (const v of img) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const scale = hi > lo ? 1 / (hi - lo) : 0;
  const val = (ch: number, p: number) => (img[ch * hw + p] - lo) * scale;
  const step = Math.max(1, Math.sqrt(hw / k));
  // Seed centres on a grid, each moved to the lowest gradient of its 3x3 neighbourhood.
  const grad = (y: number, x: number) => {
    let g = 0;
    for (let ch = 0; ch < c; ch++) {
      const dx = val(ch, y * w + Math.min(w - 1, x + 1)) - val(ch, y * w + Math.max(0, x - 1));
      const dy = val(ch, Math.min(h - 1, y + 1) * w + x) - val(ch, Math.max(0, y - 1) * w + x);
      g += dx * dx + dy * dy;
    }
    return g;
  };
  const centres: number[][] = []; // [y, x, ...channels]
  for (let y = step / 2; y < h; y += step) {
    for (let x = step / 2; x < w; x += step) {
      let by = Math.min(h - 1, Math.floor(y)), bx = Math.min(w - 1, Math.floor(x)), bg = Infinity;
      // The arg-min, first in raster order on ties (deterministic).
      let best: [number, number] = [by, bx];
      for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) {
        const yy = by + dy, xx = bx + dx;
        if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
        const g = grad(yy, xx);
        if (g < bg) [bg, best] = [g, [yy, xx]];
      }
      [by, bx] = best;
      centres.push([by, bx, ...Array.from({ length: c }, (_, ch) => val(ch, by * w + bx))]);
    }
  }
  const labels = new Int32Array(hw).fill(-1);
  const dist = new Float64Array(hw);
  const sw = (m / step) ** 2;
  for (let it = 0; it < iters; it++) {
    dist.fill(Infinity);
    labels.fill(-1);
    centres.forEach((ct, ci) => {
      const y0 = Math.max(0, Math.floor(ct[0] - step)), y1 = Math.min(h - 1, Math.ceil(ct[0] + step));
      const x0 = Math.max(0, Math.floor(ct[1] - step)), x1 = Math.min(w - 1, Math.ceil(ct[1] + step));
      for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) {
        const p = y * w + x;
        let dc = 0;
        for (let ch = 0; ch < c; ch++) dc += (val(ch, p) - ct[2 + ch]) ** 2;
        const d = dc + sw * ((y - ct[0]) ** 2 + (x - ct[1]) ** 2);
        if (d < dist[p]) {
          dist[p] = d;
          labels[p] = ci;
        }
      }
    });
    // A pixel no centre's window reached (centres drift) goes to the nearest centre.
    for (let p = 0; p < hw; p++) {
      if (labels[p] >= 0) continue;
      const y = Math.floor(p / w), x = p % w;
      let best = 0, bd = Infinity;
      centres.forEach((ct, ci) => {
        let dc = 0;
        for (let ch = 0; ch < c; ch++) dc += (val(ch, p) - ct[2 + ch]) ** 2;
        const d = dc + sw * ((y - ct[0]) ** 2 + (x - ct[1]) ** 2);
        if (d < bd) [bd, best] = [d, ci];
      });
      labels[p] = best;
    }
    const sums = centres.map(() => new Float64Array(3 + c));
    for (let p = 0; p < hw; p++) {
      const s = sums[labels[p]];
      s[0]++;
      s[1] += Math.floor(p / w);
      s[2] += p % w;
      for (let ch = 0; ch < c; ch++) s[3 + ch] += val(ch, p);
    }
    sums.forEach((s, ci) => {
      if (s[0] > 0) for (let j = 0; j < 2 + c; j++) centres[ci][j] = s[1 + j] / s[0];
    });
  }
  return enforceConnectivity(labels, h, w, Math.max(1, Math.floor((step * step) / 4)));
}

/** Relabel 4-connected components; those under `minSize` join the previous adjacent component. */
function enforceConnectivity(labels: Int32Array, h: number, w: number, minSize: number): Int32Array {
  const out = new Int32Array(h * w).fill(-1);
  let next = 0;
  const stack: number[] = [];
  for (let p0 = 0; p0 < h * w; p0++) {
    if (out[p0] >= 0) continue;
    // An adjacent, already labelled component to merge into if this one is small.
    let adjacent = -1;
    for (const q of [p0 - 1, p0 - w]) if (q >= 0 && (q !== p0 - 1 || p0 % w > 0) && out[q] >= 0) adjacent = out[q];
    const comp: number[] = [];
    out[p0] = next;
    stack.push(p0);
    while (stack.length) {
      const p = stack.pop()!;
      comp.push(p);
      const y = Math.floor(p / w), x = p % w;
      for (const [yy, xx] of [[y - 1, x], [y + 1, x], [y, x - 1], [y, x + 1]]) {
        if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
        const q = yy * w + xx;
        if (out[q] < 0 && labels[q] === labels[p0]) {
          out[q] = next;
          stack.push(q);
        }
      }
    }
    if (comp.length < minSize && adjacent >= 0) for (const p of comp) out[p] = adjacent;
    else next++;
  }
  return out;
}

// Attributions and images as pixels: the library's heatmap code (explain/heatmap.ts: channel
// reduction, normalisation by the largest magnitude, colormap, overlay) turned into RGBA for a
// canvas. Pure functions of tensors and arrays, so the browser test computes the very same pixels
// in Node from the CPU backend's attribution.
import type { Tensor } from '../../engine/index.ts';
import { normalizedMaps, overlayPixels } from '../../explain/index.ts';

export interface HeatmapPixels {
  /** RGBA, h x w x 4. */
  rgba: Uint8ClampedArray<ArrayBuffer>;
  /** The normalised map ([0, 1], or [-1, 1] when signed), h x w. */
  map: Float32Array;
  h: number;
  w: number;
}

/**
 * One item's attribution ([1, C, H, W] or [1, 1, H, W]) as a heatmap over its image ([C, H, W]
 * in [0, 1]): channels summed (signed maps) or absolute values summed (positive ones), scaled by
 * the largest magnitude, jet for positive maps and blue-white-red for signed ones, at alpha 0.5.
 */
export async function heatmapPixels(attr: Tensor, image: Float32Array, channels: number, sign: 'signed' | 'positive'): Promise<HeatmapPixels> {
  const { maps, h, w } = await normalizedMaps(attr, { sign, reduce: sign === 'signed' ? 'sum' : 'abs-sum' });
  const px = overlayPixels(maps[0], h, w, { data: image, channels }, { sign, alpha: 0.5 });
  return { rgba: new Uint8ClampedArray(px), map: maps[0], h, w };
}

/** An image [C, H, W] in [0, 1] (1 or 3 channels) as RGBA. */
export function imagePixels(image: ArrayLike<number>, channels: number, h: number, w: number): Uint8ClampedArray<ArrayBuffer> {
  const px = new Uint8ClampedArray(h * w * 4);
  for (let k = 0; k < h * w; k++) {
    for (let c = 0; c < 3; c++) px[4 * k + c] = Math.round(255 * image[(channels === 3 ? c : 0) * h * w + k]);
    px[4 * k + 3] = 255;
  }
  return px;
}

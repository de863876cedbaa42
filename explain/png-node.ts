// PNG files in Node (the package's Node entry, backlight/node): pngjs imported directly, and
// heatmaps written to disk. explain/heatmap.ts's encodePng is the browser-safe one (a canvas in a
// browser, pngjs in Node); this file is for Node programs that want the plain dependency.
import { writeFileSync } from 'node:fs';
import pngjs from 'pngjs';
import type { Tensor } from '../engine/index.ts';
import { heatmapPng, type OverlayOptions } from './heatmap.ts';

/** Encode RGBA pixels (w x h x 4) as PNG bytes with pngjs. */
export function encodePngSync(px: Uint8Array, w: number, h: number): Uint8Array {
  if (px.length !== w * h * 4) throw new Error(`encodePngSync: ${px.length} bytes of pixels for ${w} x ${h} RGBA (expected ${w * h * 4})`);
  const png = new pngjs.PNG({ width: w, height: h });
  png.data.set(px);
  return new Uint8Array(pngjs.PNG.sync.write(png));
}

/** Decode PNG bytes to RGBA pixels with pngjs. */
export function decodePng(bytes: Uint8Array): { width: number; height: number; data: Uint8Array } {
  const png = pngjs.PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  return { width: png.width, height: png.height, data: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength) };
}

/** heatmapPng (the items side by side, over the input when given), written to a file; returns the bytes. */
export async function writeHeatmapPng(path: string, attr: Tensor, input?: Tensor, opts: OverlayOptions = {}): Promise<Uint8Array> {
  const bytes = await heatmapPng(attr, input, opts);
  writeFileSync(path, bytes);
  return bytes;
}

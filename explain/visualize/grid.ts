// Tiles as one image: [T, C, h, w] -> [1, C, rows * (h + pad) - pad, cols * (w + pad) - pad],
// row by row, with `pad` pixels of `padValue` between tiles (and in unused cells). Engine ops
// only (pad, reshape, transpose), so it runs where the tiles are.
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { fmtShape } from '../../engine/shape.ts';
import { checkOptions, optionKeys } from '../options.ts';

export interface GridOptions {
  /** Tiles per row (default ceil(sqrt(T))). */
  cols?: number;
  /** Pixels between tiles (default 1). */
  pad?: number;
  /** Their value (default 1: white in [0, 1] images). */
  padValue?: number;
  /** Integer nearest-neighbour magnification of each tile (default 1). */
  scale?: number;
}

const GRID_KEYS = optionKeys<GridOptions>()(['cols', 'pad', 'padValue', 'scale']);

export function imageGrid(tiles: Tensor, opts: GridOptions = {}): Tensor {
  checkOptions('imageGrid', opts, GRID_KEYS);
  if (!(tiles instanceof bl.Tensor) || tiles.rank !== 4) throw new Error(`imageGrid: tiles must be [T, C, h, w], got ${tiles instanceof bl.Tensor ? fmtShape(tiles.shape) : typeof tiles}`);
  const [T, C, h0, w0] = tiles.shape;
  const cols = opts.cols ?? Math.ceil(Math.sqrt(T));
  const pad = opts.pad ?? 1;
  const scale = opts.scale ?? 1;
  if (!Number.isInteger(cols) || cols < 1) throw new Error(`imageGrid: cols must be a positive integer, got ${opts.cols}`);
  if (!Number.isInteger(pad) || pad < 0) throw new Error(`imageGrid: pad must be a non-negative integer, got ${opts.pad}`);
  if (!Number.isInteger(scale) || scale < 1) throw new Error(`imageGrid: scale must be a positive integer, got ${opts.scale}`);
  const padValue = opts.padValue ?? 1;
  if (typeof padValue !== 'number' || !Number.isFinite(padValue)) throw new Error(`imageGrid: padValue must be a finite number, got ${String(opts.padValue)}`);
  const rows = Math.ceil(T / cols);
  return bl.tidy(() => {
    let t = tiles;
    if (scale > 1) {
      // Nearest neighbour: repeat each pixel scale x scale times.
      t = bl.reshape(bl.broadcastTo(bl.reshape(t, [T, C, h0, 1, w0, 1]), [T, C, h0, scale, w0, scale]), [T, C, h0 * scale, w0 * scale]);
    }
    const [h, w] = [h0 * scale, w0 * scale];
    t = bl.pad(t, [[0, rows * cols - T], [0, 0], [0, pad], [0, pad]], padValue);
    const g = bl.transpose(bl.reshape(t, [rows, cols, C, h + pad, w + pad]), [2, 0, 3, 1, 4]);
    const full = bl.reshape(g, [1, C, rows * (h + pad), cols * (w + pad)]);
    return bl.slice(full, [0, 0, 0, 0], [1, C, rows * (h + pad) - pad, cols * (w + pad) - pad]);
  });
}

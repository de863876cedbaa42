// Filter and activation views: a convolution's filters as a normalised image grid (the first
// layer's filters are directly interpretable as image patches, Krizhevsky et al. 2012; Zeiler &
// Fergus 2014), and any layer's activation maps, one per channel.
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { fmtShape } from '../../engine/shape.ts';
import { Module } from '../../models/module.ts';
import { type Model, checkInput, forwardOf } from '../common.ts';
import { type GridOptions, imageGrid } from './grid.ts';
import { forwardWithActivation } from './units.ts';
import { checkOptions, optionKeys } from '../options.ts';

const FILTER_KEYS = optionKeys<FilterImageOptions>()(['cols', 'pad', 'padValue', 'scale', 'normalize', 'shared']);
const MAP_KEYS = optionKeys<ActivationMapOptions>()(['normalize', 'upsample']);

export interface FilterImageOptions extends GridOptions {
  /**
   * 'symmetric' (default): 0.5 + w / (2 max|w|), so 0 is mid-grey and the sign shows;
   * 'minmax': (w - min) / (max - min).
   */
  normalize?: 'symmetric' | 'minmax';
  /** One scale for all filters (default false: each filter its own). */
  shared?: boolean;
}

/** The convolution at `layer` (default: the model's first module with a 4-D weight). */
function convWeight(op: string, model: Module, layer: string | undefined): { path: string; weight: Tensor } {
  if (!(model instanceof Module)) throw new Error(`${op}: model must be a backlight Module (its layers' weights are read), got ${typeof model}`);
  const has4d = (m: Module) => m.optParam('weight')?.rank === 4;
  if (layer === undefined) {
    const first = model.namedModules().find(([, m]) => has4d(m));
    if (!first) throw new Error(`${op}: the model has no convolution (no layer with a 4-D weight)`);
    return { path: first[0], weight: first[1].param('weight') };
  }
  if (typeof layer !== 'string') throw new Error(`${op}: layer must be a layer name, got ${typeof layer}`);
  let m: Module;
  try {
    m = model.module(layer);
  } catch (e) {
    throw new Error(`${op}: ${(e as Error).message} (option layer)`);
  }
  if (!has4d(m)) throw new Error(`${op}: layer '${layer}' (${m.kind}) has no 4-D convolution weight (option layer); convolutions: ${model.namedModules().filter(([, x]) => has4d(x)).map(([p]) => p).join(', ') || 'none'}`);
  return { path: layer, weight: m.param('weight') };
}

/**
 * Filters of a convolution as one image grid [1, C, Hg, Wg] in [0, 1]. With 1 or 3 input
 * channels each filter is one tile (grey or RGB), in output-channel order; otherwise every
 * (output, input) slice is a grey tile, a row per output channel and a column per input channel.
 */
export function filterImages(model: Module, layer?: string, opts: FilterImageOptions = {}): Tensor {
  const op = 'filterImages';
  checkOptions(op, opts, FILTER_KEYS);
  const { weight } = convWeight(op, model, layer);
  const norm = opts.normalize ?? 'symmetric';
  if (norm !== 'symmetric' && norm !== 'minmax') throw new Error(`${op}: normalize must be 'symmetric' or 'minmax', got '${String(norm)}'`);
  const [O, I, kh, kw] = weight.shape;
  const perFilter = I === 1 || I === 3;
  return bl.tidy(() => {
    const tiles = perFilter ? weight : bl.reshape(weight, [O * I, 1, kh, kw]);
    const axes = opts.shared ? [0, 1, 2, 3] : [1, 2, 3];
    let v: Tensor;
    if (norm === 'symmetric') {
      const m = bl.max(bl.abs(tiles), axes, { keepDims: true });
      v = bl.add(bl.div(tiles, bl.mul(bl.where(bl.greater(m, 0), m, 1), 2)), 0.5);
    } else {
      const lo = bl.min(tiles, axes, { keepDims: true });
      const r = bl.sub(bl.max(tiles, axes, { keepDims: true }), lo);
      v = bl.div(bl.sub(tiles, lo), bl.where(bl.greater(r, 0), r, 1));
    }
    return imageGrid(v, { cols: opts.cols ?? (perFilter ? undefined : I), pad: opts.pad, padValue: opts.padValue, scale: opts.scale });
  });
}

export interface ActivationMapOptions {
  /** Scale each map to [0, 1] by its own min and max (constant maps become 0; default false). */
  normalize?: boolean;
  /** Bilinearly resize the maps to the input's spatial size (default false). */
  upsample?: boolean;
}

/** The activation maps of `layer` for inputs x: [N, C, h, w] (no gradient attached). */
export async function activationMaps(model: Model, input: Tensor, layer: string, opts: ActivationMapOptions = {}): Promise<Tensor> {
  const op = 'activationMaps';
  checkOptions(op, opts, MAP_KEYS);
  for (const k of ['normalize', 'upsample'] as const) {
    if (opts[k] !== undefined && typeof opts[k] !== 'boolean') throw new Error(`${op}: option '${k}' must be a boolean, got ${String(opts[k])}`);
  }
  const x = checkInput(op, input);
  if (typeof layer !== 'string' || !layer) throw new Error(`${op}: the layer (a layer name such as 'features.3') is required`);
  const f = forwardOf(model);
  const r = bl.tidy(() => {
    const { A } = forwardWithActivation(op, model, f, x, layer);
    if (A.rank !== 4) throw new Error(`${op}: layer '${layer}' has shape ${fmtShape(A.shape)}; activation maps need an NCHW layer`);
    let a = bl.stopGradient(A);
    if (opts.upsample) {
      if (x.rank !== 4) throw new Error(`${op}: upsample needs an NCHW input, got ${fmtShape(x.shape)}`);
      a = bl.resizeBilinear(a, [x.shape[2], x.shape[3]]);
    }
    if (opts.normalize) {
      const lo = bl.min(a, [2, 3], { keepDims: true });
      const rg = bl.sub(bl.max(a, [2, 3], { keepDims: true }), lo);
      a = bl.where(bl.greater(rg, 0), bl.div(bl.sub(a, lo), bl.where(bl.greater(rg, 0), rg, 1)), 0);
    }
    return a;
  });
  await r.backend.sync();
  return r;
}

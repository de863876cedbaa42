// Option checks shared by the commands. Each runs before any device work (a command calls these,
// then `ctx.backend()`), and each error names the option, what it expects and what it got.
import { accessSync, constants, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { IMAGENET_MEAN, IMAGENET_STD } from '../models/preprocess.ts';
import { UsageError, type OptionSpec } from './args.ts';
import type { InputOptions } from './input.ts';

/** --input-shape C,H,W (or any rank when `rank` is not given): positive integers. */
export function parseInputShape(v: unknown, rank?: number, option = '--input-shape'): number[] | null {
  if (v === undefined) return null;
  const s = String(v);
  const dims = s.split(',').map((p) => p.trim());
  const nums = dims.map(Number);
  const want = rank === 3 ? 'three positive integers C,H,W' : 'positive integers separated by commas (C,H,W for images, F for features)';
  if (!dims.length || dims.some((d) => d === '') || nums.some((d) => !Number.isInteger(d) || d < 1) || (rank !== undefined && nums.length !== rank)) {
    throw new UsageError(`option '${option}' expects ${want}, without the batch axis; got '${s}'`);
  }
  return nums;
}

/** An integer option that must be at least `min`; undefined stays undefined. */
export function intOption(o: Record<string, unknown>, name: string, min: number): number | undefined {
  const v = o[name];
  if (v === undefined) return undefined;
  const x = Number(v);
  if (typeof v === 'boolean' || String(v).trim() === '' || !Number.isInteger(x) || x < min) {
    throw new UsageError(`option '--${name}' expects an integer >= ${min}, got '${String(v)}'`);
  }
  return x;
}

/**
 * The folder an output file goes to must exist and be writable: checked before the work starts,
 * so that a typo in a path does not cost the whole computation.
 */
export function checkOutPath(file: string, option = '--out'): void {
  const dir = dirname(resolve(file));
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    throw new UsageError(`option '${option}': the folder ${dir} does not exist (for ${file}); create it first`);
  }
  if (!isDir) throw new UsageError(`option '${option}': ${dir} is not a folder (for ${file})`);
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new UsageError(`option '${option}': the folder ${dir} is not writable (for ${file})`);
  }
  try {
    if (statSync(file).isDirectory()) throw new UsageError(`option '${option}': ${file} is a folder, expected a file name`);
  } catch (e) {
    if (e instanceof UsageError) throw e;
  }
}

/** Write a file, with an error that names the option and the file. */
export function writeOut(file: string, bytes: Uint8Array | string, option = '--out'): void {
  try {
    writeFileSync(file, bytes);
  } catch (e) {
    throw new Error(`${option} ${file}: cannot write the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/** The output kind by extension, or a usage error listing the accepted ones. */
export function outKind<K extends string>(file: string, kinds: Record<K, RegExp>, option = '--out'): K {
  for (const [k, re] of Object.entries(kinds) as [K, RegExp][]) if (re.test(file)) return k;
  throw new UsageError(`option '${option}' must end in ${Object.keys(kinds).map((k) => `.${k}`).join(', ')}; got '${file}'`);
}

// ---- the input options (every command that reads inputs takes these) ----

export const INPUT_OPTIONS: Record<string, OptionSpec> = {
  'input-shape': { type: 'string', valueName: 'C,H,W', description: "one input's shape, where the model does not say it (ONNX with open sizes) or says it wrongly" },
  resize: { type: 'string', valueName: 'N', description: "image inputs: resize the shorter side to N pixels (bilinear), then --crop; default: straight to the model's size" },
  crop: { type: 'string', valueName: 'N|H,W', description: 'image inputs: centre crop to N x N (or H x W) after --resize' },
  normalize: { type: 'string', valueName: 'imagenet|none|M,S', description: "(x - mean) / std per channel: imagenet (RGB mean 0.485,0.456,0.406, std 0.229,0.224,0.225), none (default), M,S for every channel, or M1..MC,S1..SC" },
  invert: { type: 'boolean', description: 'feed 1 - value, before --normalize (dark-on-light images for the digits models)' },
};

export interface ParsedInputOptions {
  forcedShape: number[] | null;
  resize?: number;
  crop?: [number, number];
  /** Per channel, or one value for all channels (expanded by `inputOptionsFor`). */
  normalize?: { mean: number[]; std: number[]; name: string };
  invert: boolean;
}

/** The input options, checked (no files read). */
export function parseInputOptions(o: Record<string, unknown>): ParsedInputOptions {
  const forcedShape = parseInputShape(o['input-shape']);
  const resize = intOption(o, 'resize', 1);
  let crop: [number, number] | undefined;
  if (o.crop !== undefined) {
    const parts = String(o.crop).split(',').map((p) => p.trim());
    const v = parts.map(Number);
    if (!(parts.length === 1 || parts.length === 2) || parts.some((p) => p === '') || v.some((d) => !Number.isInteger(d) || d < 1)) {
      throw new UsageError(`option '--crop' expects N (a square) or H,W, positive integers; got '${String(o.crop)}'`);
    }
    crop = parts.length === 1 ? [v[0], v[0]] : [v[0], v[1]];
  }
  let normalize: ParsedInputOptions['normalize'];
  if (o.normalize !== undefined && o.normalize !== 'none') {
    const s = String(o.normalize);
    if (s === 'imagenet') normalize = { mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD], name: 'imagenet' };
    else {
      const parts = s.split(',').map((p) => p.trim());
      const v = parts.map(Number);
      if (parts.length < 2 || parts.length % 2 || parts.some((p) => p === '') || v.some((x) => !Number.isFinite(x))) {
        throw new UsageError(`option '--normalize' expects imagenet, none, M,S (one mean and std for every channel) or M1,..,MC,S1,..,SC; got '${s}'`);
      }
      const half = parts.length / 2;
      const std = v.slice(half);
      if (std.some((x) => !(x > 0))) throw new UsageError(`option '--normalize': the standard deviations must be positive; got ${std.join(', ')} in '${s}'`);
      normalize = { mean: v.slice(0, half), std, name: s };
    }
  }
  return { forcedShape, resize, crop, normalize, invert: !!o.invert };
}

/** The InputOptions for loadInputs once the sample shape is known (channel count on axis 0). */
export function inputOptionsFor(p: ParsedInputOptions, sampleShape: readonly number[] | null): InputOptions {
  const r: InputOptions = { resize: p.resize, crop: p.crop, invert: p.invert };
  if (p.normalize) {
    const c = sampleShape && sampleShape.length >= 2 ? sampleShape[0] : null;
    const k = p.normalize.mean.length;
    if (k === 1 && c !== null) [r.mean, r.std] = [Array(c).fill(p.normalize.mean[0]), Array(c).fill(p.normalize.std[0])];
    else if (c === null || k === c) [r.mean, r.std] = [p.normalize.mean, p.normalize.std];
    else throw new UsageError(`option '--normalize ${p.normalize.name}' gives ${k} channel means and stds; the model's inputs ${sampleShape ? `[${sampleShape.join(', ')}]` : ''} have ${c} channels`);
  }
  if ((p.resize !== undefined || p.crop) && sampleShape && sampleShape.length !== 3) {
    throw new UsageError(`options '--resize' and '--crop' are for image models ([C, H, W] inputs); this model's input is [${sampleShape.join(', ')}]`);
  }
  return r;
}

// `backlight visualize`: feature visualisation by activation maximisation (explain/visualize/),
// written as a PNG (one tile per channel, in a grid) or the raw images as .npy.
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { fmtShape } from '../../engine/shape.ts';
import * as vis from '../../explain/visualize/index.ts';
import { encodePng } from '../../explain/heatmap.ts';
import { serializeNpy } from '../../models/io/npy.ts';
import { UsageError } from '../args.ts';
import { loadInputs } from '../input.ts';
import { peekModel, resolveModel } from '../model.ts';
import { checkOutPath, parseInputShape, writeOut } from '../options.ts';
import type { Command } from '../registry.ts';

/** --channel: 'N', 'N,N,...', or 'all' (null: resolved against the layer later). */
export function parseChannels(s: string | undefined): number[] | 'all' | undefined {
  if (s === undefined) return undefined;
  if (s.trim() === 'all') return 'all';
  const parts = s.split(',').map((p) => p.trim());
  const v = parts.map(Number);
  if (!parts.length || parts.some((p) => p === '') || v.some((c) => !Number.isInteger(c) || c < 0)) {
    throw new UsageError(`option '--channel' expects a non-negative integer, a comma-separated list of them, or 'all'; got '${s}'`);
  }
  return v;
}

function numberPair(name: string, s: string | undefined): [number, number] | undefined {
  if (s === undefined) return undefined;
  const v = s.split(',').map((p) => Number(p.trim()));
  if (v.length !== 2 || !v.every((x) => Number.isFinite(x) && x > 0) || v[0] > v[1]) throw new UsageError(`option '--${name}' expects LO,HI with 0 < LO <= HI; got '${s}'`);
  return [v[0], v[1]];
}

/** RGBA pixels of a [1, C, H, W] image in [lo, hi]: grey for one channel, RGB for three, else the channel mean. */
export async function imagePixels(img: Tensor, range: readonly [number, number] = [0, 1]): Promise<{ px: Uint8Array; w: number; h: number }> {
  const [, C, H, W] = img.shape;
  const d = await img.data();
  const px = new Uint8Array(H * W * 4);
  const byte = (v: number) => Math.max(0, Math.min(255, Math.round(((v - range[0]) / (range[1] - range[0])) * 255)));
  for (let i = 0; i < H * W; i++) {
    let rgb: number[];
    if (C === 3) rgb = [d[i], d[H * W + i], d[2 * H * W + i]];
    else {
      let s = 0;
      for (let c = 0; c < C; c++) s += d[c * H * W + i];
      rgb = [s / C, s / C, s / C];
    }
    px.set([byte(rgb[0]), byte(rgb[1]), byte(rgb[2]), 255], i * 4);
  }
  return { px, w: W, h: H };
}

export const visualizeCommand: Command = {
  name: 'visualize',
  summary: 'feature visualisation: the input that maximises a channel, neuron or layer (activation maximisation); write PNG or .npy',
  description:
    'Gradient ascent on the input (Adam) through the model, from small noise (or --from), with optional L2 and total-variation\n' +
    'penalties and random jitter/rotation/scale per step; pixel or Fourier (1/f-scaled, Olah et al. 2017) parameters;\n' +
    'images kept in [0, 1] by a sigmoid. --channel N, N,N,... or all (one image per channel, a grid in the PNG);\n' +
    "without --channel the objective is the layer's mean squared activation (DeepDream). OUT.png is magnified by\n" +
    '--upscale (default: tiles of at least 64 pixels); OUT.npy gets the images [N, C, H, W] as float32.',
  options: {
    model: { type: 'string', valueName: 'M', required: true, description: 'bundled name, .safetensors or .onnx file' },
    layer: { type: 'string', valueName: 'L', required: true, description: 'the layer (features.3; ONNX: node or tensor name)' },
    out: { type: 'string', valueName: 'V.png|V.npy', required: true, description: 'where to write the images' },
    channel: { type: 'string', valueName: 'K|K,K,..|all', description: 'channel(s) (features of a dense layer) to maximise' },
    objective: { type: 'string', valueName: 'O', choices: ['channel', 'neuron', 'layer'], description: "channel (spatial mean; default with --channel), neuron (the centre position), layer (DeepDream; default without)" },
    steps: { type: 'int', valueName: 'N', description: 'optimisation steps (default 256)' },
    lr: { type: 'number', valueName: 'LR', description: 'Adam step size (default 0.05)' },
    seed: { type: 'int', valueName: 'S', description: 'seed of the start noise and the transforms (default 0)' },
    parameterization: { type: 'string', valueName: 'P', choices: ['pixel', 'fourier'], description: 'pixel (default) or fourier (decorrelated, 1/f-scaled)' },
    l2: { type: 'number', valueName: 'W', description: 'weight of the L2 penalty mean(x^2) (default 0)' },
    tv: { type: 'number', valueName: 'W', description: 'weight of the total-variation penalty (default 0)' },
    jitter: { type: 'int', valueName: 'PX', description: 'random shift per step, up to +-PX pixels (default 0)' },
    rotate: { type: 'number', valueName: 'DEG', description: 'random rotation per step, up to +-DEG degrees (default 0)' },
    'scale-range': { type: 'string', valueName: 'LO,HI', description: 'random scale per step, uniform in [LO, HI] (default none)' },
    from: { type: 'string', valueName: 'X.png|X.npy', description: 'start image(s) instead of noise (converted to the model\'s input shape)' },
    'input-shape': { type: 'string', valueName: 'C,H,W', description: "the model's input shape, where the model does not say (ONNX with open sizes)" },
    upscale: { type: 'int', valueName: 'N', description: 'PNG magnification per pixel (default: tiles of at least 64 pixels)' },
  },
  async run(args, ctx) {
    const o = args.options;
    const out = String(o.out);
    const kind = /\.png$/i.test(out) ? 'png' : /\.npy$/i.test(out) ? 'npy' : null;
    if (!kind) throw new UsageError(`option '--out' must end in .png or .npy, got '${out}'`);
    const channels = parseChannels(o.channel as string | undefined);
    const objective = o.objective as vis.VisObjective | undefined;
    if (objective === 'layer' && channels !== undefined) throw new UsageError(`option '--channel' does not go with --objective layer (DeepDream maximises the whole layer)`);
    if ((objective === 'channel' || objective === 'neuron') && channels === undefined) throw new UsageError(`--objective ${objective} needs option '--channel'`);
    const posInt = (k: string) => {
      const v = o[k] as number | undefined;
      if (v !== undefined && v < 1) throw new UsageError(`option '--${k}' must be at least 1, got ${v}`);
      return v;
    };
    const steps = posInt('steps'), upscale = posInt('upscale');
    const seed = o.seed as number | undefined;
    if (seed !== undefined && seed < 0) throw new UsageError(`option '--seed' must be non-negative, got ${seed}`);
    const nonNeg = (k: string) => {
      const v = o[k] as number | undefined;
      if (v !== undefined && !(v >= 0)) throw new UsageError(`option '--${k}' must be a number >= 0, got ${v}`);
      return v;
    };
    const lr = o.lr as number | undefined;
    if (lr !== undefined && !(lr > 0)) throw new UsageError(`option '--lr' must be a number > 0, got ${lr}`);
    const l2 = nonNeg('l2'), tv = nonNeg('tv'), rotate = nonNeg('rotate');
    const jitter = o.jitter as number | undefined;
    if (jitter !== undefined && jitter < 0) throw new UsageError(`option '--jitter' must be non-negative, got ${jitter}`);
    const scale = numberPair('scale-range', o['scale-range'] as string | undefined);
    const forced = parseInputShape(o['input-shape'], 3);
    checkOutPath(out);
    // The model's input shape is known on the host; the start images are read before the device starts.
    const facts = peekModel(String(o.model));
    const shape = forced ?? facts.inputShape;
    if (!shape || shape.length !== 3) throw new UsageError(`option '--model' ${facts.name}: its input is not an image of known shape ${shape ? fmtShape(shape) : ''}; pass --input-shape C,H,W`);
    const fromBatch = o.from !== undefined ? loadInputs(String(o.from), shape, '--from') : undefined;
    for (const n of fromBatch?.notes ?? []) ctx.stderr(`note: ${n}\n`);
    if (fromBatch && Array.isArray(channels) && fromBatch.shape[0] !== 1 && fromBatch.shape[0] !== channels.length) throw new UsageError(`option '--from' holds ${fromBatch.shape[0]} images for ${channels.length} channels (give one, or one per channel)`);
    await ctx.backend();
    const m = await resolveModel(o.model as string);
    try {
      const layer = String(o.layer);
      let chs: number[] | undefined;
      if (channels === 'all') {
        const a = vis.layerShape(m.model, layer, shape);
        if (a.length < 2) throw new UsageError(`--channel all: layer '${layer}' has shape ${fmtShape(a)}, no channel axis`);
        chs = Array.from({ length: a[1] }, (_, i) => i);
      } else chs = channels;
      let from: Tensor | undefined;
      if (fromBatch) {
        const b = fromBatch;
        const n = chs?.length ?? b.shape[0];
        if (b.shape[0] !== 1 && b.shape[0] !== n) throw new UsageError(`option '--from' holds ${b.shape[0]} images for ${n} channels (give one, or one per channel)`);
        from = bl.tensor(b.data, b.shape);
        if (b.shape[0] === 1 && n > 1) {
          const one = from;
          from = bl.tidy(() => bl.add(bl.broadcastTo(one, [n, ...shape]), 0));
          one.dispose();
        }
      }
      const n = chs?.length ?? from?.shape[0] ?? 1;
      const t0 = performance.now();
      const r = await vis.activationMaximization(m.model, {
        layer,
        channel: chs,
        objective,
        inputShape: [n, ...shape],
        from,
        steps,
        lr,
        seed,
        parameterization: o.parameterization as 'pixel' | 'fourier' | undefined,
        regularizers: { l2, tv, jitter, rotate, scale },
      }).finally(() => from?.dispose());
      const secs = ((performance.now() - t0) / 1000).toFixed(1);
      try {
        const what = chs ? chs.map((c, i) => `channel ${c}: ${r.final[i].toFixed(4)}`).join(', ') : `layer objective ${r.final[0].toFixed(4)}`;
        ctx.stderr(`${m.name} ${layer}: ${what} after ${r.history.length} steps (${secs}s; started at ${r.history[0].toFixed(4)})\n`);
        let bytes: Uint8Array;
        let info: string;
        if (kind === 'npy') {
          bytes = serializeNpy(r.image.shape, Float32Array.from(await r.image.data()));
          info = fmtShape(r.image.shape);
        } else {
          const [, , H, W] = r.image.shape;
          const s = upscale ?? Math.max(1, Math.ceil(64 / Math.max(H, W)));
          const grid = vis.imageGrid(r.image, { pad: Math.max(1, s >> 2), padValue: 1, scale: s });
          try {
            const { px, w, h } = await imagePixels(grid);
            bytes = await encodePng(px, w, h);
            info = `${w} x ${h} pixels`;
          } finally {
            grid.dispose();
          }
        }
        writeOut(out, bytes);
        ctx.stderr(`wrote ${out} (${info})\n`);
        if (ctx.json) {
          ctx.stdout(JSON.stringify({ command: 'visualize', model: m.name, layer, channels: chs ?? null, objective: objective ?? (chs ? 'channel' : 'layer'), steps: r.history.length, start: r.history[0], final: r.final, seconds: Number(secs), out, shape: [...r.image.shape], written: info }, null, 2) + '\n');
        }
      } finally {
        r.image.dispose();
      }
    } finally {
      m.model.dispose();
    }
  },
};

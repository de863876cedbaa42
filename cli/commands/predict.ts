// `backlight predict`: run a model on inputs; print the predicted classes, write the logits.
import * as bl from '../../engine/index.ts';
import { fmtShape } from '../../engine/shape.ts';
import { serializeNpy } from '../../models/io/npy.ts';
import { UsageError } from '../args.ts';
import { loadInputs } from '../input.ts';
import { peekModel, resolveModel } from '../model.ts';
import { INPUT_OPTIONS, checkOutPath, inputOptionsFor, intOption, parseInputOptions, writeOut } from '../options.ts';
import type { Command } from '../registry.ts';
import { predictionsOf } from '../report.ts';

export const predictCommand: Command = {
  name: 'predict',
  summary: 'run a model on inputs; print the predicted classes, write the logits as .npy',
  description:
    'M: a bundled model name (see `backlight models`), a .safetensors file written by backlight (its metadata\n' +
    'names the architecture), or an .onnx file. X: a float32 .npy ([N, C, H, W] images or [N, features], or one\n' +
    "sample without the batch axis), or PNG / JPEG files (comma-separated), converted to the model's channels and\n" +
    'size (bilinear; a note on stderr says what was done) and scaled to [0, 1]; --resize/--crop/--normalize for\n' +
    'the torchvision-style pipeline.',
  options: {
    model: { type: 'string', valueName: 'M', required: true, description: 'bundled name, .safetensors or .onnx file' },
    input: { type: 'string', valueName: 'X', required: true, description: '.npy file, or PNG / JPEG file(s) separated by commas' },
    ...INPUT_OPTIONS,
    out: { type: 'string', valueName: 'OUT.npy', description: 'write the logits [N, classes] (float32) here' },
    softmax: { type: 'boolean', description: 'write probabilities instead of logits' },
    top: { type: 'string', valueName: 'K', description: 'how many classes to list per input with --json (default 3)' },
    'batch-size': { type: 'string', valueName: 'N', description: 'inputs per forward pass (default 256)' },
  },
  examples: ['backlight predict --model digits-cnn --input digit.png', 'backlight predict --model model.onnx --input photo.jpg --resize 256 --crop 224 --normalize imagenet --json'],
  async run(args, ctx) {
    const o = args.options;
    const out = o.out as string | undefined;
    if (out !== undefined && !/\.npy$/i.test(out)) throw new UsageError(`option '--out' must name a .npy file, got '${out}'`);
    if (out !== undefined) checkOutPath(out);
    const top = intOption(o, 'top', 1) ?? 3, bs = intOption(o, 'batch-size', 1) ?? 256;
    const inOpts = parseInputOptions(o);
    const facts = peekModel(String(o.model));
    const sample = inOpts.forcedShape ?? facts.inputShape;
    const batch = loadInputs(String(o.input), sample, '--input', inputOptionsFor(inOpts, sample));
    for (const n of batch.notes) ctx.stderr(`note: ${n}\n`);
    await ctx.backend();
    const m = await resolveModel(String(o.model));
    try {
      const per = batch.data.length / batch.shape[0];
      const chunks: Float32Array[] = [];
      let outShape: number[] = [];
      for (let s = 0; s < batch.shape[0]; s += bs) {
        const k = Math.min(bs, batch.shape[0] - s);
        const y = bl.tidy(() => {
          const x = bl.tensor(batch.data.subarray(s * per, (s + k) * per), [k, ...batch.shape.slice(1)]);
          const logits = m.model.call(x);
          return o.softmax ? bl.softmax(logits, -1) : logits;
        });
        outShape = [...y.shape];
        chunks.push(Float32Array.from(await y.data()));
        y.dispose();
      }
      const n = batch.shape[0];
      const all = new Float32Array(chunks.reduce((a, c) => a + c.length, 0));
      let off = 0;
      for (const c of chunks) (all.set(c, off), (off += c.length));
      outShape[0] = n;
      if (out !== undefined) {
        writeOut(out, serializeNpy(outShape, all));
        ctx.stderr(`wrote ${out} ${fmtShape(outShape)} (${o.softmax ? 'probabilities' : 'logits'})\n`);
      }
      const preds = outShape.length === 2 ? predictionsOf(all, n, outShape[1], m.classes, !!o.softmax, top) : null;
      if (ctx.json) {
        ctx.stdout(JSON.stringify({ command: 'predict', model: m.name, inputShape: batch.shape, outputShape: outShape, out: out ?? null, notes: batch.notes, predictions: preds?.map((p, i) => ({ input: batch.labels[i], ...p })) ?? null }, null, 2) + '\n');
      } else if (preds) {
        preds.forEach((p, i) => ctx.stdout(`${batch.labels[i]}\t${p.label}\t(class ${p.class}, p=${p.probability.toFixed(4)})\n`));
      } else {
        ctx.stdout(`output ${fmtShape(outShape)}\n`);
      }
    } finally {
      m.model.dispose();
    }
  },
};

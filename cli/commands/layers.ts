// `backlight layers --model M`: every layer (module path) or ONNX node with its op type and its
// output shape for one input, so that --layer can be picked without guessing (models/describe.ts).
import * as bl from '../../engine/index.ts';
import { fmtShape } from '../../engine/shape.ts';
import { describeLayers } from '../../models/describe.ts';
import { UsageError } from '../args.ts';
import { peekModel, resolveModel } from '../model.ts';
import { parseInputShape } from '../options.ts';
import type { Command } from '../registry.ts';

export const layersCommand: Command = {
  name: 'layers',
  summary: "list a model's layers / ONNX nodes with their op types and output shapes (names for --layer)",
  description:
    "Runs the model once on zeros of its input shape (batch 1) and lists every layer in order: for bundled and\n" +
    "backlight .safetensors models the module paths (features.3) and kinds (Conv2d); for ONNX models the node names\n" +
    "and op types (Conv) with their output tensor names (either name works as --layer). ONNX models with open input\n" +
    'sizes need --input-shape.',
  options: {
    model: { type: 'string', valueName: 'M', required: true, description: 'bundled name, .safetensors or .onnx file' },
    'input-shape': { type: 'string', valueName: 'C,H,W', description: "one input's shape, where the model does not say it (ONNX with open sizes)" },
  },
  examples: ['backlight layers --model digits-cnn', 'backlight layers --model resnet.onnx --input-shape 3,224,224 --json'],
  async run(args, ctx) {
    const o = args.options;
    const forced = parseInputShape(o['input-shape']);
    const facts = peekModel(String(o.model));
    const shape = forced ?? facts.inputShape;
    if (!shape) throw new UsageError(`option '--input-shape' is needed: ${facts.name} does not say its input size (pass C,H,W for one input, without the batch axis)`);
    await ctx.backend();
    const m = await resolveModel(String(o.model));
    try {
      const x = bl.zeros([1, ...shape]);
      let layers;
      try {
        layers = describeLayers(m.model, x);
      } finally {
        x.dispose();
      }
      if (ctx.json) {
        ctx.stdout(JSON.stringify({ command: 'layers', model: m.name, kind: m.kind, inputShape: [1, ...shape], layers }, null, 2) + '\n');
        return;
      }
      const rows = layers.map((l) => [l.name, l.op, l.outputShape ? fmtShape(l.outputShape) : '-', l.outputs && !(l.outputs.length === 1 && l.outputs[0] === l.name) ? l.outputs.join(', ') : '']);
      const head = ['name', 'op', 'output shape', ...(m.kind === 'onnx' ? ['output tensors'] : [])];
      const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
      ctx.stdout(`${m.name}: ${layers.length} ${m.kind === 'onnx' ? 'nodes' : 'layers'}, input ${fmtShape([1, ...shape])}\n`);
      for (const r of [head, ...rows]) ctx.stdout(r.slice(0, head.length).map((c, i) => c.padEnd(w[i])).join('  ').trimEnd() + '\n');
    } finally {
      m.model.dispose();
    }
  },
};

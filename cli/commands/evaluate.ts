// `backlight evaluate`: accuracy and loss of a model on a data set's split; with
// --methods/--metrics/--n/--out, the trust report (cli/trust.ts).
import { fmtShape } from '../../engine/shape.ts';
import * as ex from '../../explain/index.ts';
import { DATASETS, datasetSplits } from '../../models/data/index.ts';
import { evaluate } from '../../models/train.ts';
import { UsageError, suggest } from '../args.ts';
import { peekModel, resolveModel } from '../model.ts';
import { checkOutPath } from '../options.ts';
import type { Command } from '../registry.ts';
import { checkTrustOptions, trustEvaluate, type TrustOptions } from '../trust.ts';

export const evaluateCommand: Command = {
  name: 'evaluate',
  summary: "accuracy and loss of a model on a data set's split; with --methods/--metrics/--out, the trust report",
  description:
    `Data sets: ${Object.keys(DATASETS).join(', ')}. Bundled and backlight .safetensors models know theirs; ONNX models need --data.\n` +
    'With --methods, --metrics, --n or --out: every explainer scored by every metric on the first N items of the split\n' +
    `(methods: those of \`explain\` and random; metrics: ${Object.keys(ex.METRICS).join(', ')}),\n` +
    'plus calibration (ECE before/after temperature scaling) and MC-dropout uncertainty; JSON or an HTML report.',
  options: {
    model: { type: 'string', valueName: 'M', required: true, description: 'bundled name, .safetensors or .onnx file' },
    split: { type: 'string', valueName: 'SPLIT', description: "train, test (default), or heldout / reversed where the data set has them" },
    data: { type: 'string', valueName: 'NAME|X.npy', description: "the data set (default: the model's own), or inputs in a .npy file (trust report only)" },
    'batch-size': { type: 'int', valueName: 'N', description: 'samples per forward pass (default 256)' },
    methods: { type: 'string', valueName: 'M1,M2', description: 'explainers to compare (default saliency, integrated-gradients, grad-cam, lrp, random)' },
    metrics: { type: 'string', valueName: 'K1,K2', description: 'metrics (default: all that apply; localisation ones need a data set with masks)' },
    n: { type: 'int', valueName: 'N', description: 'items to explain (default 16)' },
    seed: { type: 'int', valueName: 'S', description: 'random seed (default 0)' },
    out: { type: 'string', valueName: 'R.json|R.html', description: 'write the trust report' },
  },
  examples: ['backlight evaluate --model spurious-cnn --split heldout', 'backlight evaluate --model digits-cnn --methods saliency,grad-cam --n 8 --out trust.html'],
  async run(args, ctx) {
    const o = args.options;
    const dataName = o.data as string | undefined;
    const trust = ['methods', 'metrics', 'n', 'out'].some((k) => o[k] !== undefined);
    const trustOpts: TrustOptions = { methods: o.methods as string | undefined, metrics: o.metrics as string | undefined, n: o.n as number | undefined, seed: o.seed as number | undefined, out: o.out as string | undefined, json: ctx.json };
    if (trust) checkTrustOptions(trustOpts);
    if (trustOpts.out !== undefined) checkOutPath(trustOpts.out);
    const fromFile = trust && dataName !== undefined && /\.npy$/i.test(dataName);
    if (dataName !== undefined && !fromFile && !DATASETS[dataName]) {
      const hint = suggest(dataName, Object.keys(DATASETS));
      throw new UsageError(`option '--data' must be one of ${Object.keys(DATASETS).join(', ')}${trust ? ' or a .npy file' : ''}; got '${dataName}'${hint ? ` (did you mean '${hint}'?)` : ''}`);
    }
    if (o.seed !== undefined && (o.seed as number) < 0) throw new UsageError(`option '--seed' must be a non-negative integer, got ${o.seed}`);
    if (o['batch-size'] !== undefined && (o['batch-size'] as number) < 1) throw new UsageError(`option '--batch-size' must be at least 1, got ${o['batch-size']}`);
    // The data set and split are checked against the model's own facts before the device starts.
    const facts = peekModel(String(o.model));
    let ds: string | undefined, split: string | undefined;
    if (!fromFile) {
      ds = dataName ?? facts.dataset ?? undefined;
      if (!ds) throw new UsageError(`${facts.name} does not say what data it was trained on; pass --data (one of ${Object.keys(DATASETS).join(', ')}${trust ? ', or X.npy' : ''})`);
      const splits = datasetSplits(ds);
      split = (o.split as string | undefined) ?? 'test';
      if (!splits[split]) throw new UsageError(`option '--split' must be one of ${Object.keys(splits).filter((k) => splits[k]).join(', ')} for data set '${ds}'; got '${split}'`);
      const sampleShape = splits[split]!.sampleShape;
      if (!trust && facts.inputShape && facts.inputShape.join() !== sampleShape.join()) {
        throw new UsageError(`${facts.name} takes inputs ${fmtShape(facts.inputShape)}, data set '${ds}' (option '--data') has ${fmtShape(sampleShape)}`);
      }
    }
    await ctx.backend();
    const m = await resolveModel(String(o.model));
    try {
      if (trust) {
        if (fromFile) await trustEvaluate(m, { file: dataName, data: dataName! }, trustOpts, (s) => ctx.stderr(s), (s) => ctx.stdout(s));
        else await trustEvaluate(m, { split: datasetSplits(ds!)[split!]!, splitName: split, data: ds! }, trustOpts, (s) => ctx.stderr(s), (s) => ctx.stdout(s));
        return;
      }
      const d = datasetSplits(ds!)[split!]!;
      const t0 = performance.now();
      const r = await evaluate(m.model, d, { batchSize: (o['batch-size'] as number | undefined) ?? 256 });
      const seconds = (performance.now() - t0) / 1000;
      const correct = Math.round(r.accuracy * d.n);
      if (ctx.json) ctx.stdout(JSON.stringify({ command: 'evaluate', model: m.name, data: ds, split, n: d.n, correct, accuracy: r.accuracy, loss: r.loss, seconds }, null, 2) + '\n');
      else ctx.stdout(`${m.name} on ${ds}/${split}: accuracy ${(r.accuracy * 100).toFixed(2)}% (${correct}/${d.n}), loss ${r.loss.toFixed(4)}\n`);
    } finally {
      m.model.dispose();
    }
  },
};

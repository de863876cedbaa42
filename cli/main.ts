// backlight's command line. Commands live in one table (`commands`): each has its options, a
// summary for --help, and `run`. Adding one (the `explain` command, say) is a registerCommand call
// with its spec; parsing, --help, --backend and error reporting come with the table.
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as bl from '../engine/index.ts';
import type { Backend } from '../engine/index.ts';
import { fmtShape } from '../engine/shape.ts';
import * as ex from '../explain/index.ts';
import { checkTrustOptions, trustEvaluate, type TrustOptions } from './evaluate.ts';
import { serializeNpy } from '../models/io/npy.ts';
import { evaluate } from '../models/train.ts';
import { DATASETS, datasetSplits } from '../models/data/index.ts';
import { listModels, ZOO } from '../models/zoo/index.ts';
import { trainBundled } from '../models/zoo/train.ts';
import { formatOptions, parseArgs, UsageError, type OptionSpec, type ParsedArgs, type PositionalSpec } from './args.ts';
import { loadInputs } from './input.ts';
import { resolveModel } from './model.ts';
import { explainCommand } from './explain.ts';
import { influenceCommand } from './influence.ts';
import { visualizeCommand } from './visualize.ts';
import { embedCommand } from './embed.ts';

export interface CliIo {
  stdout(s: string): void;
  stderr(s: string): void;
}

export interface CliContext extends CliIo {
  /** The backend (created once, from --backend; default 'auto'), its adapter printed on stderr. */
  backend(): Promise<Backend>;
}

export interface Command {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Longer text for `backlight CMD --help`. */
  description?: string;
  options: Record<string, OptionSpec>;
  positionals?: PositionalSpec[];
  /** The backend a command uses when --backend is not given (default 'auto'). */
  defaultBackend?: 'auto' | 'webgpu' | 'cpu';
  /** Returns the exit code (default 0). */
  run(args: ParsedArgs, ctx: CliContext): Promise<number | void>;
}

/** Options every command takes. */
const COMMON: Record<string, OptionSpec> = {
  backend: { type: 'string', choices: ['auto', 'webgpu', 'cpu'], description: "where to compute: 'auto' (WebGPU, else the CPU), 'webgpu', or 'cpu' (float64 reference)" },
  help: { type: 'boolean', alias: 'h', description: 'show this help' },
};

export const commands = new Map<string, Command>();

export function registerCommand(c: Command): void {
  if (commands.has(c.name)) throw new Error(`registerCommand: '${c.name}' is already registered`);
  for (const k of Object.keys(c.options)) if (k in COMMON) throw new Error(`registerCommand: '${c.name}' redefines the common option '--${k}'`);
  commands.set(c.name, c);
}


// ---- models ----

registerCommand({
  name: 'models',
  summary: 'list the bundled models (name, input shape, classes, accuracy)',
  options: { json: { type: 'boolean', description: 'print JSON' } },
  async run(args, ctx) {
    const ms = listModels();
    if (args.options.json) {
      ctx.stdout(JSON.stringify(ms, null, 2) + '\n');
      return;
    }
    const rows = ms.map((m) => [
      m.name,
      fmtShape(m.inputShape),
      `${m.classes.length}: ${m.classes.length > 4 ? `${m.classes.slice(0, 3).join(', ')}, ...` : m.classes.join(', ')}`,
      m.accuracy === null ? 'not trained' : `${(m.accuracy * 100).toFixed(1)}%${m.accuracies?.heldout !== undefined ? ` (held-out ${(m.accuracies.heldout * 100).toFixed(1)}%)` : ''}`,
    ]);
    const head = ['name', 'input', 'classes', 'test accuracy'];
    const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    for (const r of [head, ...rows]) ctx.stdout(r.map((c, i) => c.padEnd(w[i])).join('  ').trimEnd() + '\n');
  },
});

// ---- predict ----

registerCommand({
  name: 'predict',
  summary: 'run a model on inputs; write the logits as .npy',
  description:
    'M: a bundled model name (see `backlight models`), a .safetensors file written by backlight (its metadata\n' +
    'names the architecture), or an .onnx file. X: a float32 .npy ([N, C, H, W] images or [N, features], or one\n' +
    'sample without the batch axis), or PNG files (comma-separated), converted to the model\'s channels and\n' +
    'size (bilinear) and scaled to [0, 1].',
  options: {
    model: { type: 'string', valueName: 'M', required: true, description: 'bundled name, .safetensors or .onnx file' },
    input: { type: 'string', valueName: 'X', required: true, description: '.npy file, or .png file(s) separated by commas' },
    out: { type: 'string', valueName: 'OUT.npy', description: 'write the logits [N, classes] (float32) here' },
    softmax: { type: 'boolean', description: 'write probabilities instead of logits' },
    invert: { type: 'boolean', description: 'feed 1 - value (dark-on-light images for models trained on light-on-dark, like the digits)' },
    'input-shape': { type: 'string', valueName: 'C,H,W', description: "the model's input shape, where the model does not say (ONNX with open sizes)" },
    json: { type: 'boolean', description: 'print the predictions as JSON' },
  },
  async run(args, ctx) {
    const o = args.options;
    const out = o.out as string | undefined;
    if (out !== undefined && !/\.npy$/i.test(out)) throw new UsageError(`option '--out' must name a .npy file, got '${out}'`);
    let forced: number[] | null = null;
    if (o['input-shape'] !== undefined) {
      forced = String(o['input-shape']).split(',').map(Number);
      if (!forced.length || forced.some((d) => !Number.isInteger(d) || d < 1)) throw new UsageError(`option '--input-shape' expects positive integers separated by commas (C,H,W), got '${o['input-shape']}'`);
    }
    await ctx.backend();
    const m = await resolveModel(o.model as string);
    try {
      const batch = loadInputs(o.input as string, forced ?? m.inputShape);
      if (o.invert) for (let i = 0; i < batch.data.length; i++) batch.data[i] = 1 - batch.data[i];
      const bs = 256, per = batch.data.length / batch.shape[0];
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
        try {
          writeFileSync(out, serializeNpy(outShape, all));
        } catch (e) {
          throw new Error(`--out ${out}: cannot write the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
        }
        ctx.stderr(`wrote ${out} ${fmtShape(outShape)} (${o.softmax ? 'probabilities' : 'logits'})\n`);
      }
      const preds = outShape.length === 2 ? predictions(all, n, outShape[1], m.classes, !!o.softmax) : null;
      if (o.json) {
        ctx.stdout(JSON.stringify({ model: m.name, inputShape: batch.shape, outputShape: outShape, predictions: preds?.map((p, i) => ({ input: batch.labels[i], ...p })) ?? null }, null, 2) + '\n');
      } else if (preds) {
        preds.forEach((p, i) => ctx.stdout(`${batch.labels[i]}\t${p.label}\t(class ${p.class}, p=${p.probability.toFixed(4)})\n`));
      } else {
        ctx.stdout(`output ${fmtShape(outShape)}\n`);
      }
    } finally {
      m.model.dispose();
    }
  },
});

/** argmax and its softmax probability per row. */
function predictions(v: Float32Array, n: number, c: number, classes: string[] | null, isProb: boolean) {
  return Array.from({ length: n }, (_, i) => {
    const row = v.subarray(i * c, (i + 1) * c);
    let k = 0;
    for (let j = 1; j < c; j++) if (row[j] > row[k]) k = j;
    let p = row[k];
    if (!isProb) {
      let z = 0;
      for (let j = 0; j < c; j++) z += Math.exp(row[j] - row[k]);
      p = 1 / z;
    }
    return { class: k, label: classes?.[k] ?? String(k), probability: p };
  });
}

// ---- evaluate ----

registerCommand({
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
    json: { type: 'boolean', description: 'print JSON' },
    methods: { type: 'string', valueName: 'M1,M2', description: 'explainers to compare (default saliency, integrated-gradients, grad-cam, lrp, random)' },
    metrics: { type: 'string', valueName: 'K1,K2', description: 'metrics (default: all that apply; localisation ones need a data set with masks)' },
    n: { type: 'int', valueName: 'N', description: 'items to explain (default 16)' },
    seed: { type: 'int', valueName: 'S', description: 'random seed (default 0)' },
    out: { type: 'string', valueName: 'R.json|R.html', description: 'write the trust report' },
  },
  async run(args, ctx) {
    const o = args.options;
    const dataName = o.data as string | undefined;
    const trust = ['methods', 'metrics', 'n', 'out'].some((k) => o[k] !== undefined);
    const trustOpts: TrustOptions = { methods: o.methods as string | undefined, metrics: o.metrics as string | undefined, n: o.n as number | undefined, seed: o.seed as number | undefined, out: o.out as string | undefined, json: !!o.json };
    if (trust) checkTrustOptions(trustOpts);
    const fromFile = trust && dataName !== undefined && /\.npy$/i.test(dataName);
    if (dataName !== undefined && !fromFile && !DATASETS[dataName]) throw new UsageError(`option '--data' must be one of ${Object.keys(DATASETS).join(', ')}${trust ? ' or a .npy file' : ''}; got '${dataName}'`);
    if (trust) {
      await ctx.backend();
      const m = await resolveModel(o.model as string);
      try {
        if (fromFile) {
          await trustEvaluate(m, { file: dataName, data: dataName! }, trustOpts, (s) => ctx.stderr(s), (s) => ctx.stdout(s));
          return;
        }
        const ds = dataName ?? m.dataset;
        if (!ds) throw new UsageError(`${m.name} does not say what data it was trained on; pass --data (one of ${Object.keys(DATASETS).join(', ')}, or X.npy)`);
        const splits = datasetSplits(ds);
        const split = (o.split as string | undefined) ?? 'test';
        const d = splits[split];
        if (!d) throw new UsageError(`option '--split' must be one of ${Object.keys(splits).filter((k) => splits[k]).join(', ')} for data set '${ds}'; got '${split}'`);
        await trustEvaluate(m, { split: d, splitName: split, data: ds }, trustOpts, (s) => ctx.stderr(s), (s) => ctx.stdout(s));
      } finally {
        m.model.dispose();
      }
      return;
    }
    if (o['batch-size'] !== undefined && (o['batch-size'] as number) < 1) throw new UsageError(`option '--batch-size' must be at least 1, got ${o['batch-size']}`);
    await ctx.backend();
    const m = await resolveModel(o.model as string);
    try {
      const ds = dataName ?? m.dataset;
      if (!ds) throw new UsageError(`${m.name} does not say what data it was trained on; pass --data (one of ${Object.keys(DATASETS).join(', ')})`);
      const splits = datasetSplits(ds);
      const split = (o.split as string | undefined) ?? 'test';
      const d = splits[split];
      if (!d) throw new UsageError(`option '--split' must be one of ${Object.keys(splits).filter((k) => splits[k]).join(', ')} for data set '${ds}'; got '${split}'`);
      if (m.inputShape && m.inputShape.join() !== d.sampleShape.join()) {
        throw new Error(`${m.name} takes inputs ${fmtShape(m.inputShape)}, data set '${ds}' has ${fmtShape(d.sampleShape)}`);
      }
      const t0 = performance.now();
      const r = await evaluate(m.model, d, { batchSize: (o['batch-size'] as number | undefined) ?? 256 });
      const seconds = (performance.now() - t0) / 1000;
      const correct = Math.round(r.accuracy * d.n);
      if (o.json) ctx.stdout(JSON.stringify({ model: m.name, data: ds, split, n: d.n, correct, accuracy: r.accuracy, loss: r.loss, seconds }, null, 2) + '\n');
      else ctx.stdout(`${m.name} on ${ds}/${split}: accuracy ${(r.accuracy * 100).toFixed(2)}% (${correct}/${d.n}), loss ${r.loss.toFixed(4)}\n`);
    } finally {
      m.model.dispose();
    }
  },
});

// ---- train ----

registerCommand({
  name: 'train',
  summary: 'train a bundled model from scratch and write its weights (models/weights/NAME.*)',
  description: `Models: ${Object.keys(ZOO).join(', ')}. Trains on the CPU float64 backend unless --backend says otherwise\n(deterministic: the same seed gives the same weights).`,
  options: {
    epochs: { type: 'int', valueName: 'N', description: "override the recipe's number of epochs" },
    seed: { type: 'int', valueName: 'S', description: "override the recipe's seed" },
    out: { type: 'string', valueName: 'DIR', description: 'output folder (default models/weights/)' },
    json: { type: 'boolean', description: 'print the summary as JSON' },
  },
  positionals: [{ name: 'NAME', required: true, description: 'the bundled model to train' }],
  defaultBackend: 'cpu',
  async run(args, ctx) {
    const name = args.positionals[0];
    if (!ZOO[name]) throw new UsageError(`unknown model '${name}' (bundled: ${Object.keys(ZOO).join(', ')})`);
    const o = args.options;
    if (o.epochs !== undefined && (o.epochs as number) < 1) throw new UsageError(`option '--epochs' must be at least 1, got ${o.epochs}`);
    if (o.seed !== undefined && (o.seed as number) < 0) throw new UsageError(`option '--seed' must be non-negative, got ${o.seed}`);
    await ctx.backend();
    const s = await trainBundled(name, { epochs: o.epochs as number | undefined, seed: o.seed as number | undefined, outDir: o.out as string | undefined });
    if (o.json) ctx.stdout(JSON.stringify(s, null, 2) + '\n');
    else ctx.stdout(`${name}: ${Object.entries(s.accuracies).map(([k, v]) => `${k} ${(v * 100).toFixed(2)}%`).join(', ')}; ${s.epochs} epochs in ${s.trainSeconds}s on ${s.backend}\n`);
  },
});

// ---- help and dispatch ----

function version(): string {
  try {
    return (createRequire(import.meta.url)('../package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export function generalHelp(): string {
  const w = Math.max(...[...commands.keys()].map((k) => k.length));
  return [
    'backlight: a WebGPU tensor and autodiff engine, with explainability methods',
    '',
    'usage: backlight COMMAND [options]        (backlight COMMAND --help for its options)',
    '',
    'commands:',
    ...[...commands.values()].map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`),
    '',
    'common options:',
    formatOptions({ ...COMMON, version: { type: 'boolean', description: 'print the version' } }),
    '',
    'examples:',
    '  backlight models',
    '  backlight predict --model digits-cnn --input digit.png',
    '  backlight predict --model model.onnx --input batch.npy --out logits.npy',
    '  backlight evaluate --model spurious-cnn --split heldout',
    '  backlight train digits-cnn',
    '',
  ].join('\n');
}

export function commandHelp(c: Command): string {
  const pos = (c.positionals ?? []).map((p) => (p.required ? p.name : `[${p.name}]`)).join(' ');
  const req = Object.entries(c.options).filter(([, s]) => s.required).map(([n, s]) => `--${n} ${s.valueName ?? 'VALUE'}`).join(' ');
  return [
    `usage: backlight ${c.name}${pos ? ` ${pos}` : ''}${req ? ` ${req}` : ''} [options]`,
    '',
    c.summary,
    ...(c.description ? ['', c.description] : []),
    '',
    'options:',
    formatOptions({ ...c.options, ...COMMON }, c.positionals),
    '',
  ].join('\n');
}

function describeAdapter(b: Backend): string {
  const i = b.info;
  if (i.backend === 'cpu') return 'cpu (float64 reference backend)';
  return `webgpu: ${[i.vendor, i.architecture, i.device].filter(Boolean).join(' ')}${i.description ? ` (${i.description})` : ''}${i.software ? ', software' : ''}`;
}

const defaultIo: CliIo = {
  stdout: (s) => void process.stdout.write(s),
  stderr: (s) => void process.stderr.write(s),
};

/** Run the command line `argv` (without node and the script); returns the exit code. */
registerCommand(explainCommand);
registerCommand(influenceCommand);
registerCommand(visualizeCommand);
registerCommand(embedCommand);

export async function main(argv: readonly string[], io: CliIo = defaultIo): Promise<number> {
  let backend: Backend | null = null;
  try {
    const [name, ...rest] = argv;
    if (name === undefined) {
      io.stderr(generalHelp());
      return 2;
    }
    if (name === '--help' || name === '-h' || name === 'help') {
      const c = rest[0] !== undefined ? commands.get(rest[0]) : undefined;
      io.stdout(c ? commandHelp(c) : generalHelp());
      return 0;
    }
    if (name === '--version') {
      io.stdout(`backlight ${version()}\n`);
      return 0;
    }
    const cmd = commands.get(name);
    if (!cmd) {
      const hint = name.startsWith('-') ? ' (options go after the command: backlight COMMAND [options])' : '';
      throw new UsageError(`unknown command '${name}'${hint}; commands: ${[...commands.keys()].join(', ')}`);
    }
    const args = parseArgs(name, rest, { ...cmd.options, ...COMMON }, cmd.positionals);
    if (args.options.help) {
      io.stdout(commandHelp(cmd));
      return 0;
    }
    const ctx: CliContext = {
      ...io,
      async backend() {
        if (!backend) {
          const kind = (args.options.backend as 'auto' | 'webgpu' | 'cpu' | undefined) ?? cmd.defaultBackend ?? 'auto';
          backend = await bl.init({ backend: kind });
          io.stderr(`backlight: ${describeAdapter(backend)}\n`);
        }
        return backend;
      },
    };
    return (await cmd.run(args, ctx)) ?? 0;
  } catch (e) {
    const err = e as Error;
    if (err instanceof UsageError) {
      const cmd = err.command ?? (commands.has(argv[0]) ? argv[0] : undefined);
      io.stderr(`backlight${cmd ? ` ${cmd}` : ''}: ${err.message}\n(run 'backlight ${cmd ? `${cmd} ` : ''}--help' for usage)\n`);
      return 2;
    }
    io.stderr(`backlight: ${process.env.BACKLIGHT_DEBUG ? err.stack ?? err.message : err.message ?? String(e)}\n`);
    return 1;
  } finally {
    (backend as Backend | null)?.destroy();
  }
}


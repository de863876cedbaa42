// Training the bundled models: `npm run train:<name>` (or `backlight train <name>`).
// Builds the seeded architecture, trains it on its data set's fixed training split with the
// spec's recipe, measures the accuracy on every split, and writes
// models/weights/<name>.safetensors (with metadata) and models/weights/<name>.json.
//
//   npx tsx models/zoo/train.ts digits-cnn [--backend cpu|webgpu] [--epochs N] [--out DIR]
import { mkdirSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import * as bl from '../../engine/index.ts';
import { getBackend } from '../../engine/index.ts';
import { Adam, SGD, type Optimizer } from '../optim.ts';
import { evaluate, fit, type EpochLog } from '../train.ts';
import { saveWeights } from '../io/weights.ts';
import { datasetSplits } from '../data/index.ts';
import { WEIGHTS_DIR, zooSpec, type ModelSummary, type TrainRecipe } from './index.ts';

export interface TrainBundledOptions {
  /** Output folder (default models/weights/). */
  outDir?: string;
  /** Override the recipe's epochs (e.g. for a quick check). */
  epochs?: number;
  /** Override the recipe's seed. */
  seed?: number;
  /** Progress lines on stderr (default: per epoch). */
  progress?: boolean | 'epoch';
  /** Write the files (default true). */
  write?: boolean;
}

/** Cosine decay from lr to lr * finalLrFraction over the epochs (epoch counted from 1). */
export function learningRate(r: TrainRecipe, epoch: number): number {
  const f = r.finalLrFraction ?? 1;
  const t = r.epochs > 1 ? (epoch - 1) / (r.epochs - 1) : 0;
  return r.lr * (f + (1 - f) * 0.5 * (1 + Math.cos(Math.PI * t)));
}

function describeBackend(): string {
  const i = getBackend().info;
  return i.backend === 'cpu' ? 'cpu (float64 reference)' : `webgpu (${[i.vendor, i.architecture, i.description].filter(Boolean).join(', ')})`;
}

/** Train bundled model `name` on the current default backend; returns its summary. */
export async function trainBundled(name: string, opts: TrainBundledOptions = {}): Promise<ModelSummary> {
  const spec = zooSpec(name);
  const recipe: TrainRecipe = { ...spec.recipe, ...(opts.epochs ? { epochs: opts.epochs } : {}), ...(opts.seed !== undefined ? { seed: opts.seed } : {}) };
  const splits = datasetSplits(spec.dataset);
  const model = spec.build(recipe.seed);
  spec.prepare?.(model, splits.train);
  const optimizer: Optimizer = recipe.optimizer === 'adam'
    ? new Adam({ lr: recipe.lr, weightDecay: recipe.weightDecay })
    : new SGD({ lr: recipe.lr, momentum: recipe.momentum, weightDecay: recipe.weightDecay });
  const setLr = (lr: number) => ((optimizer as Adam | SGD).opts.lr = lr);
  setLr(learningRate(recipe, 1));
  const t0 = performance.now(), cpu0 = process.cpuUsage();
  const history: EpochLog[] = await fit(model, splits.train, {
    epochs: recipe.epochs,
    batchSize: recipe.batchSize,
    optimizer,
    seed: recipe.seed,
    validation: splits.test,
    progress: opts.progress ?? 'epoch',
    onEpoch: (e) => setLr(learningRate(recipe, e.epoch + 1)),
  });
  const trainSeconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const trainCpuSeconds = (cpu.user + cpu.system) / 1e6;
  optimizer.dispose();
  const accuracies: Record<string, number> = {}, losses: Record<string, number> = {};
  for (const [split, d] of Object.entries(splits)) {
    if (!d) continue;
    const r = await evaluate(model, d);
    accuracies[split] = r.accuracy;
    losses[split] = r.loss;
  }
  const backend = describeBackend();
  const parameters = model.parameters().reduce((a, t) => a + t.size, 0);
  const meta: Record<string, string> = {
    format: 'backlight',
    name,
    architecture: name,
    description: spec.description,
    dataset: spec.dataset,
    input_shape: JSON.stringify(spec.inputShape),
    classes: JSON.stringify(spec.classes),
    accuracy: String(accuracies.test),
    accuracies: JSON.stringify(accuracies),
    seed: String(recipe.seed),
    backend,
    recipe: JSON.stringify(recipe),
  };
  const bytes = await saveWeights(model, meta);
  const summary: ModelSummary = {
    name,
    architecture: name,
    description: spec.description,
    dataset: spec.dataset,
    inputShape: spec.inputShape,
    classes: spec.classes,
    accuracy: accuracies.test,
    accuracies,
    losses,
    seed: recipe.seed,
    backend,
    recipe,
    epochs: history.length,
    trainSeconds: Math.round(trainSeconds * 10) / 10,
    trainCpuSeconds: Math.round(trainCpuSeconds * 10) / 10,
    parameters,
    weightsBytes: bytes.byteLength,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    history: history.map((h) => ({
      epoch: h.epoch,
      loss: round(h.loss),
      accuracy: round(h.accuracy),
      valLoss: h.valLoss === undefined ? undefined : round(h.valLoss),
      valAccuracy: h.valAccuracy === undefined ? undefined : round(h.valAccuracy),
      seconds: Math.round(h.seconds * 10) / 10,
    })),
  };
  if (opts.write ?? true) {
    const dir = opts.outDir ?? WEIGHTS_DIR;
    mkdirSync(dir, { recursive: true });
    const base = `${dir.replace(/\/?$/, '/')}${name}`;
    writeFileSync(`${base}.safetensors`, bytes);
    writeFileSync(`${base}.json`, JSON.stringify(summary, null, 2) + '\n');
    process.stderr.write(`wrote ${base}.safetensors (${bytes.byteLength} bytes) and ${base}.json\n`);
  }
  model.dispose();
  return summary;
}

const round = (v: number) => Math.round(v * 1e6) / 1e6;

// Run directly: tsx models/zoo/train.ts NAME [--backend cpu|webgpu] [--epochs N] [--out DIR]
if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('models/zoo/train.ts')) {
  const args = process.argv.slice(2);
  const name = args.find((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--'));
  const opt = (k: string) => {
    const i = args.indexOf(`--${k}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  if (!name) {
    console.error('usage: tsx models/zoo/train.ts NAME [--backend cpu|webgpu] [--epochs N] [--out DIR]');
    process.exit(2);
  }
  const backend = await bl.init({ backend: (opt('backend') ?? 'cpu') as 'cpu' | 'webgpu' });
  const s = await trainBundled(name, { outDir: opt('out'), epochs: opt('epochs') ? Number(opt('epochs')) : undefined });
  console.log(JSON.stringify({ name: s.name, accuracies: s.accuracies, trainSeconds: s.trainSeconds, backend: s.backend }, null, 2));
  backend.destroy();
}

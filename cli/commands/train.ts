// `backlight train NAME`: train a bundled model from scratch and write its weights.
import { ZOO } from '../../models/zoo/index.ts';
import { trainBundled } from '../../models/zoo/train.ts';
import { UsageError, suggest } from '../args.ts';
import type { Command } from '../registry.ts';

export const trainCommand: Command = {
  name: 'train',
  summary: 'train a bundled model from scratch and write its weights (models/weights/NAME.*)',
  description: `Models: ${Object.keys(ZOO).join(', ')}. Trains on the CPU float64 backend unless --backend says otherwise\n(deterministic: the same seed gives the same weights).`,
  options: {
    epochs: { type: 'int', valueName: 'N', description: "override the recipe's number of epochs" },
    seed: { type: 'int', valueName: 'S', description: "override the recipe's seed" },
    out: { type: 'string', valueName: 'DIR', description: 'output folder (default models/weights/; created if missing)' },
  },
  positionals: [{ name: 'NAME', required: true, description: 'the bundled model to train' }],
  examples: ['backlight train digits-cnn', 'backlight train digits-cnn --epochs 2 --out /tmp/weights --json'],
  defaultBackend: 'cpu',
  async run(args, ctx) {
    const name = args.positionals[0];
    if (!ZOO[name]) {
      const hint = suggest(name, Object.keys(ZOO));
      throw new UsageError(`unknown model '${name}'${hint ? ` (did you mean '${hint}'?)` : ''} (bundled: ${Object.keys(ZOO).join(', ')})`);
    }
    const o = args.options;
    if (o.epochs !== undefined && (o.epochs as number) < 1) throw new UsageError(`option '--epochs' must be at least 1, got ${o.epochs}`);
    if (o.seed !== undefined && (o.seed as number) < 0) throw new UsageError(`option '--seed' must be non-negative, got ${o.seed}`);
    await ctx.backend();
    const s = await trainBundled(name, { epochs: o.epochs as number | undefined, seed: o.seed as number | undefined, outDir: o.out as string | undefined });
    if (ctx.json) ctx.stdout(JSON.stringify(s, null, 2) + '\n');
    else ctx.stdout(`${name}: ${Object.entries(s.accuracies).map(([k, v]) => `${k} ${(v * 100).toFixed(2)}%`).join(', ')}; ${s.epochs} epochs in ${s.trainSeconds}s on ${s.backend}\n`);
  },
};

// `backlight models`: the bundled models (name, input shape, classes, accuracy). No device needed.
import { fmtShape } from '../../engine/shape.ts';
import { listModels } from '../../models/zoo/index.ts';
import type { Command } from '../registry.ts';

export const modelsCommand: Command = {
  name: 'models',
  summary: 'list the bundled models (name, input shape, classes, accuracy)',
  options: {},
  examples: ['backlight models', 'backlight models --json'],
  async run(_args, ctx) {
    const ms = listModels();
    if (ctx.json) {
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
};

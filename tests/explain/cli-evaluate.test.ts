// `backlight evaluate` as the trust report: the JSON schema the issue fixes, values equal to the
// in-process comparison, calibration and uncertainty always present, options checked up front.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import * as ex from '../../explain/index.ts';
import { loadBundled } from '../../models/zoo/index.ts';
import { datasetSplits } from '../../models/data/index.ts';
import { expectClose } from '../helpers.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'backlight-evaluate-'));
const cli = (...args: string[]) => {
  const r = spawnSync(process.execPath, [join(root, 'bin/backlight.mjs'), 'evaluate', '--backend', 'cpu', ...args], { cwd: root, encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
beforeAll(async () => {
  await bl.init({ backend: 'cpu' });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('backlight evaluate (trust report)', () => {
  it('writes the JSON of every method by every metric, with calibration and uncertainty sections', async () => {
    const out = join(dir, 'r.json');
    const r = cli('--model', 'digits-cnn', '--n', '4', '--methods', 'saliency,random', '--metrics', 'deletion,sparseness', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(readFileSync(out, 'utf8'));
    expect(j.model).toBe('digits-cnn');
    expect(j.n).toBe(4);
    expect(Object.keys(j.methods)).toEqual(['saliency', 'random']);
    expect(Object.keys(j.methods.saliency)).toEqual(['deletion', 'sparseness']);
    expect(j.higher_is_better).toEqual({ deletion: false, sparseness: true });
    expect(typeof j.calibration.ece).toBe('number');
    expect(typeof j.calibration.ece_after_temperature).toBe('number');
    expect(j.uncertainty.mc_dropout).toBeNull();
    expect(j.uncertainty.reason).toMatch(/no Dropout/);
    // saliency beats the random reference on deletion (lower AUC), and the table marks it best
    expect(j.methods.saliency.deletion).toBeLessThan(j.methods.random.deletion);
    expect(r.stdout).toMatch(/saliency .*\*/);
    // the numbers are the in-process comparison's
    const m = await loadBundled('digits-cnn');
    const d = datasetSplits('digits').test;
    const x = bl.tensor(d.x.slice(0, 4 * 64), [4, 1, 8, 8]);
    const c = await ex.compareExplainers(m, x, { metrics: ['deletion', 'sparseness'], methods: { saliency: (mm, xx, t) => ex.saliency(mm, xx, { target: t }) } });
    expectClose([j.methods.saliency.deletion, j.methods.saliency.sparseness], [c.methods.saliency.deletion, c.methods.saliency.sparseness], 1e-9);
  });

  it('a model with dropout reports MC-dropout uncertainty; an HTML report has its sections', () => {
    const out = join(dir, 'r.html');
    const r = cli('--model', 'breast-cancer-mlp', '--n', '6', '--methods', 'saliency,random', '--metrics', 'faithfulness-correlation,complexity,randomisation', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const html = readFileSync(out, 'utf8');
    for (const s of ['Explainers by metric', 'faithfulness-correlation', '&darr; lower is better', 'Calibration', 'Uncertainty', 'predictive entropy', 'cascading model randomisation', '<svg']) expect(html).toContain(s);
    expect(r.stdout).toMatch(/MC dropout entropy: [0-9.]+ on the inputs, [0-9.]+ on noise/);
  });

  it('bad options name the problem before any work', () => {
    const bad: [string[], RegExp][] = [
      [['--methods', 'saliency,lrpp'], /unknown method 'lrpp' \(did you mean 'lrp'\?\)/],
      [['--metrics', 'deletin'], /unknown metric 'deletin' \(did you mean 'deletion'\?\)/],
      [['--metrics', 'pointing-game'], /'pointing-game' needs ground-truth masks; data set 'digits' has none/],
      [['--out', join(dir, 'r.txt')], /'--out' must end in \.json or \.html/],
      [['--n', '0'], /'--n' must be a positive integer/],
    ];
    for (const [args, msg] of bad) {
      const r = cli('--model', 'digits-cnn', ...args);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr).toMatch(msg);
    }
    expect(existsSync(join(dir, 'r.txt'))).toBe(false);
  });
});

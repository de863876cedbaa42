// `backlight influence` as a child process: the JSON schema, the ranking equals the in-process
// influence() on the same data, text output, and bad options name the problem.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import * as ex from '../../explain/index.ts';
import { datasetSplits, subset } from '../../models/data/index.ts';
import { loadBundled } from '../../models/zoo/index.ts';
import { expectClose } from '../helpers.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = (...args: string[]) => {
  const r = spawnSync(process.execPath, [join(root, 'bin/backlight.mjs'), 'influence', '--backend', 'cpu', ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

beforeAll(async () => {
  await bl.init({ backend: 'cpu' });
});

describe('backlight influence', () => {
  it('--json: test point, solver report, top-k helpful/harmful training rows equal to influence()', async () => {
    const r = cli('--model', 'prototype-digits', '--test-index', '5', '--params', 'prototypes', '--top', '4', '--train-n', '300', '--json');
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(Object.keys(j).sort()).toEqual(['command', 'damping', 'data', 'harmful', 'helpful', 'method', 'model', 'nTrain', 'parameters', 'params', 'predicted', 'probability', 'seconds', 'solve', 'solver', 'testIndex', 'testLabel', 'testLoss'].sort());
    expect(j).toMatchObject({ model: 'prototype-digits', data: 'digits', testIndex: 5, solver: 'cg', damping: 0.01, params: ['prototypes'], parameters: 480, nTrain: 300, method: 'influence-functions' });
    const splits = datasetSplits('digits');
    expect(j.testLabel).toBe(splits.test.y[5]);
    expect(j.solve.converged).toBe(true);
    expect(j.helpful).toHaveLength(4);
    expect(j.harmful).toHaveLength(4);
    for (const row of [...j.helpful, ...j.harmful]) {
      expect(Object.keys(row).sort()).toEqual(['className', 'index', 'influence', 'label', 'removalEffect']);
      expect(row.label).toBe(splits.train.y[row.index]);
      expect(row.removalEffect).toBeCloseTo(-row.influence / 300, 15);
    }
    // Helpful: most negative first; harmful: most positive first.
    expect(j.helpful[0].influence).toBeLessThanOrEqual(j.helpful[3].influence);
    expect(j.harmful[0].influence).toBeGreaterThanOrEqual(j.harmful[3].influence);
    expect(j.harmful[3].influence).toBeGreaterThan(j.helpful[3].influence);
    // The same numbers in-process.
    const m = await loadBundled('prototype-digits');
    const train = subset(splits.train, Array.from({ length: 300 }, (_, i) => i));
    const [scores] = await ex.influence(m, train, subset(splits.test, [5]), { params: ['prototypes'] });
    const hh = ex.helpfulHarmful(scores, 4);
    expect(j.helpful.map((h: { index: number }) => h.index)).toEqual(hh.helpful.map((h) => h.index));
    expect(j.harmful.map((h: { index: number }) => h.index)).toEqual(hh.harmful.map((h) => h.index));
    expectClose(j.helpful.map((h: { influence: number }) => h.influence), hh.helpful.map((h) => h.score), 1e-9, 1e-12, 'CLI vs in-process');
  }, 120_000);

  it('text output, and bad options exit 2 naming the problem', () => {
    const t = cli('--model', 'prototype-digits', '--test-index', '0', '--params', 'prototypes', '--top', '2', '--train-n', '100', '--solver', 'lissa', '--depth', '20');
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toMatch(/test row 0: label \d, predicted \d/);
    expect(t.stdout).toMatch(/lissa 20 iterations/);
    expect(t.stdout).toMatch(/most helpful:\n  train +\d+/);
    const big = cli('--model', 'prototype-digits', '--test-index', '100000');
    expect(big.code).toBe(2);
    expect(big.stderr).toMatch(/--test-index' must be a row of digits's test split, 0\.\.358/);
    const sol = cli('--model', 'prototype-digits', '--test-index', '0', '--solver', 'newton');
    expect(sol.code).toBe(2);
    expect(sol.stderr).toMatch(/solver/);
    const par = cli('--model', 'prototype-digits', '--test-index', '0', '--params', 'nope');
    expect(par.code).toBe(1);
    expect(par.stderr).toMatch(/'nope' names no parameter or layer/);
  }, 120_000);
});

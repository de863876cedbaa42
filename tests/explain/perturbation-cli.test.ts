// `backlight explain` with the perturbation methods, as a child process: .npy output equals the
// in-process explainers; --shard splits the inputs; streamed output resumes after an interruption;
// bad options name the problem.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import * as ex from '../../explain/index.ts';
import { parseNpy, serializeNpy } from '../../models/index.ts';
import { loadDigits } from '../../models/data/tabular.ts';
import { loadBundled } from '../../models/zoo/index.ts';
import { expectClose } from '../helpers.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'backlight-perturb-'));
const cli = (...args: string[]) => {
  const r = spawnSync(process.execPath, [join(root, 'bin/backlight.mjs'), 'explain', '--backend', 'cpu', ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
const readNpy = (f: string) => parseNpy(new Uint8Array(readFileSync(f)));

const input = join(dir, 'digits3.npy');
const bgFile = join(dir, 'bg.npy');
let x: Float32Array, bg: Float32Array;
beforeAll(async () => {
  await bl.init({ backend: 'cpu' });
  const d = loadDigits().x;
  x = d.slice(0, 3 * 64);
  bg = d.slice(100 * 64, 104 * 64);
  writeFileSync(input, serializeNpy([3, 1, 8, 8], x));
  writeFileSync(bgFile, serializeNpy([4, 1, 8, 8], bg));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('backlight explain: perturbation methods', () => {
  it('kernel-shap, occlusion and shapley-sampling .npy files equal the in-process explainers', async () => {
    const out = join(dir, 'k.npy');
    const r = cli('--model', 'digits-cnn', '--input', input, '--method', 'kernel-shap,occlusion,shapley-sampling', '--features', 'grid:3', '--background', bgFile,
      '--samples', '20', '--seed', '2', '--window', '3', '--stride', '2', '--target', '1,2,3', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const m = await loadBundled('digits-cnn');
    const xt = bl.tensor(x, [3, 1, 8, 8]), bt = bl.tensor(bg, [4, 1, 8, 8]);
    const want = {
      'kernel-shap': await ex.kernelShap(m, xt, { features: ex.grid(3), background: bt, samples: 20, seed: 2, target: [1, 2, 3] }),
      occlusion: await ex.occlusion(m, xt, { window: 3, stride: 2, target: [1, 2, 3] }),
      'shapley-sampling': await ex.shapleySampling(m, xt, { features: ex.grid(3), background: bt, samples: 20, seed: 2, target: [1, 2, 3] }),
    };
    for (const [name, t] of Object.entries(want)) {
      const f = readNpy(join(dir, `k.${name}.npy`));
      expect(f.shape, name).toEqual([3, 1, 8, 8]);
      expectClose(f.data, await t.data(), 1e-6, 1e-6, name);
    }
  });

  it('--shard K/N explains a contiguous block; shards together equal the whole run', () => {
    const args = ['--model', 'digits-cnn', '--input', input, '--method', 'feature-ablation', '--features', 'grid:4', '--target', '5'];
    const whole = join(dir, 'whole.npy'), s1 = join(dir, 's1.npy'), s2 = join(dir, 's2.npy');
    expect(cli(...args, '--out', whole).code).toBe(0);
    const r1 = cli(...args, '--shard', '1/2', '--out', s1);
    const r2 = cli(...args, '--shard', '2/2', '--out', s2);
    expect(r1.code, r1.stderr).toBe(0);
    expect(r2.stderr).toMatch(/shard 2\/2: inputs 1\.\.2 of 3/);
    const a = readNpy(s1), b = readNpy(s2), w = readNpy(whole);
    expect(a.shape).toEqual([1, 1, 8, 8]);
    expect(b.shape).toEqual([2, 1, 8, 8]);
    expect([...a.data, ...b.data]).toEqual([...w.data]);
  });

  it('a rerun resumes after the rows already written, and skips a finished file', () => {
    const out = join(dir, 'resume.npy');
    const args = ['--model', 'digits-cnn', '--input', input, '--method', 'lime', '--features', 'grid:4', '--samples', '30', '--target', '0', '--out', out];
    expect(cli(...args).code).toBe(0);
    const full = readNpy(out);
    // Simulate an interruption after the first item: the sidecar says 1 done, later rows are lost.
    const side = `${out}.progress.json`;
    const s = JSON.parse(readFileSync(side, 'utf8'));
    expect(s.done).toBe(3);
    writeFileSync(side, JSON.stringify({ ...s, done: 1 }));
    const bytes = readFileSync(out);
    writeFileSync(out, bytes.subarray(0, bytes.length - 2 * 64 * 4));
    const r = cli(...args);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/resuming .*resume\.npy after 1 of 3 items/);
    expect([...readNpy(out).data]).toEqual([...full.data]);
    const again = cli(...args);
    expect(again.stderr).toMatch(/\(3 items already done\)/);
    // Other options: not the same job, it starts again.
    const other = cli(...args.slice(0, -2), '--seed', '9', '--out', out);
    expect(other.stderr).not.toMatch(/resuming/);
  });

  it('--out OUT.jsonl: one line of per-feature values per input, equal to returnDetails; reruns skip done items', async () => {
    const out = join(dir, 'values.jsonl');
    const args = ['--model', 'digits-cnn', '--input', input, '--method', 'kernel-shap', '--features', 'grid:4', '--target', '1,2,3', '--shard', '2/2', '--out', out];
    const r = cli(...args);
    expect(r.code, r.stderr).toBe(0);
    const lines = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.index)).toEqual([1, 2]); // shard 2/2 of 3 inputs
    const m = await loadBundled('digits-cnn');
    const want = await ex.kernelShap(m, bl.tensor(x.slice(64), [2, 1, 8, 8]), { features: ex.grid(4), target: [2, 3], returnDetails: true });
    for (let i = 0; i < 2; i++) {
      expect(lines[i].features).toEqual([0, 1, 2, 3]);
      expectClose(lines[i].values, want.values[i], 1e-6);
      expect(lines[i].exact).toBe(true);
      expect(lines[i].values.reduce((a: number, b: number) => a + b, 0)).toBeCloseTo(lines[i].prediction - lines[i].baseValue, 5);
    }
    expect(cli(...args).stderr).toMatch(/\(2 already done\)/);
    expect(readFileSync(out, 'utf8').trim().split('\n').length).toBe(2);
    expect(cli('--model', 'digits-cnn', '--input', input, '--method', 'occlusion', '--out', out).stderr).toMatch(/option '--out' \.jsonl .* is for kernel-shap, shapley-sampling, shapley-exact, lime; got --method occlusion/);
  });

  it('deeplift-shap takes several baseline rows from --baseline B.npy', async () => {
    const out = join(dir, 'dls.npy');
    const r = cli('--model', 'digits-cnn', '--input', input, '--method', 'deeplift-shap', '--baseline', bgFile, '--target', '4', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const m = await loadBundled('digits-cnn');
    const want = await ex.deepLiftShap(m, bl.tensor(x, [3, 1, 8, 8]), { baselines: bl.tensor(bg, [4, 1, 8, 8]), target: 4 });
    expectClose(readNpy(out).data, await want.data(), 1e-6);
  });

  it('bad options name the option, what it expects and what it got', () => {
    const base = ['--model', 'digits-cnn', '--input', input, '--out', join(dir, 'bad.npy')];
    expect(cli(...base, '--method', 'kernel-shap', '--features', 'grid:x').stderr).toMatch(/option '--features' expects grid:N .* got 'grid:x'/);
    expect(cli(...base, '--method', 'occlusion', '--shard', '3/2').stderr).toMatch(/option '--shard' expects K\/N with 1 <= K <= N .* got '3\/2'/);
    expect(cli(...base, '--method', 'prediction-difference').stderr).toMatch(/method 'prediction-difference' needs --background B\.npy/);
    const r = cli(...base, '--method', 'kernel-shap', '--background', input.replace('digits3', 'nope'));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--background/);
    expect(cli(...base, '--method', 'kernal-shap').stderr).toMatch(/unknown method 'kernal-shap' \(did you mean 'kernel-shap'\?\)/);
  });
});

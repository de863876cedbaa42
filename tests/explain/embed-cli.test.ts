// `backlight embed` as a child process: float32 [N, 2] coordinates equal to the in-process
// embedding, the labels file beside them, an HTML scatter plot with one circle per point, and bad
// options that name the problem before any work.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import * as ex from '../../explain/index.ts';
import { parseNpy, serializeNpy } from '../../models/index.ts';
import { datasetSplits } from '../../models/data/index.ts';
import { loadBundled } from '../../models/zoo/index.ts';
import { main } from '../../cli/main.ts';
import { expectClose } from '../helpers.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'backlight-embed-'));
const cli = (...args: string[]) => {
  const r = spawnSync(process.execPath, [join(root, 'bin/backlight.mjs'), 'embed', '--backend', 'cpu', ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
/** The same command in this process (cli/main.ts's main with captured output): quick for the error cases. */
async function inProcess(...args: string[]) {
  let stdout = '', stderr = '';
  const code = await main(['embed', '--backend', 'cpu', ...args], { stdout: (s) => void (stdout += s), stderr: (s) => void (stderr += s) });
  await bl.init({ backend: 'cpu' }); // main() destroys its backend when done
  return { code, stdout, stderr };
}
const readNpy = (p: string) => parseNpy(new Uint8Array(readFileSync(p)));

beforeAll(async () => {
  await bl.init({ backend: 'cpu' });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('backlight embed', () => {
  it('PCA of digits-cnn at its default layer (pool) over the whole test split: [N, 2] float32 + labels, as in-process', async () => {
    const out = join(dir, 'pca.npy');
    const r = cli('--model', 'digits-cnn', '--data', 'digits', '--method', 'pca', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/layer 'pool' \[359, 32\]/);
    const bytes = readFileSync(out);
    expect(bytes.toString('latin1', 0, 64)).toMatch(/'descr': '<f4'/);
    const e = readNpy(out), l = readNpy(join(dir, 'pca.labels.npy'));
    const d = datasetSplits('digits').test;
    expect(e.shape).toEqual([d.n, 2]);
    expect(l.shape).toEqual([d.n]);
    expect(Array.from(l.data)).toEqual(Array.from(d.y));
    const m = await loadBundled('digits-cnn');
    const a = await ex.layerActivations(m, bl.tensor(d.x, [d.n, 1, 8, 8]), { layer: 'pool' });
    const want = await (await ex.pca(a)).coords.data();
    expectClose(e.data, Float32Array.from(want), 1e-6, 1e-6);
    m.dispose();
  });

  it('t-SNE to HTML: one circle per point, a legend entry per class; the seed fixes the .npy', () => {
    const html = join(dir, 'e.html');
    const r = cli('--model', 'digits-cnn', '--data', 'digits', '--n', '60', '--method', 'tsne', '--perplexity', '10', '--iterations', '60', '--out', html);
    expect(r.code, r.stderr).toBe(0);
    const text = readFileSync(html, 'utf8');
    expect(text.match(/<circle /g)?.length).toBe(60);
    expect(text).toMatch(/<svg /);
    expect(text).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/); // self-contained
    const labels = new Set(datasetSplits('digits').test.y.subarray(0, 60));
    expect(text.match(/<g class="legend">[\s\S]*?<\/g>/)![0].match(/<rect /g)?.length).toBe(labels.size);
    const [a, b] = [join(dir, 'a.npy'), join(dir, 'b.npy')];
    for (const p of [a, b]) expect(cli('--model', 'digits-cnn', '--n', '40', '--method', 'tsne', '--perplexity', '8', '--iterations', '40', '--seed', '3', '--out', p).code).toBe(0);
    expect(readFileSync(a).equals(readFileSync(b))).toBe(true);
  });

  it('Barnes-Hut t-SNE of the raw digits (--layer input, whole test split) separates the classes', () => {
    const out = join(dir, 'bh.npy');
    const r = cli('--layer', 'input', '--data', 'digits', '--method', 'tsne', '--tsne-method', 'barnes-hut', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/Barnes-Hut \(theta 0\.5\)/);
    const e = readNpy(out), l = readNpy(join(dir, 'bh.labels.npy'));
    expect(e.shape).toEqual([359, 2]);
    expect(ex.knnAccuracy(e.data, l.data, 5)).toBeGreaterThan(0.9);
  });

  it('MDS of inputs from a .npy (--layer input, no model) with --labels', () => {
    const x = new Float32Array(12 * 3);
    for (let i = 0; i < 12; i++) [x[3 * i], x[3 * i + 1], x[3 * i + 2]] = [i % 4, Math.floor(i / 4), 0];
    const xp = join(dir, 'x.npy'), lp = join(dir, 'l.npy');
    writeFileSync(xp, serializeNpy([12, 3], x));
    writeFileSync(lp, serializeNpy([12], Float32Array.from({ length: 12 }, (_, i) => i % 2)));
    const out = join(dir, 'mds.npy');
    const r = cli('--layer', 'input', '--data', xp, '--labels', lp, '--method', 'mds', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const e = readNpy(out);
    expect(e.shape).toEqual([12, 2]);
    // A 4 x 3 grid in a plane: MDS keeps every distance.
    for (let i = 0; i < 12; i++) for (let j = 0; j < 12; j++) {
      const want = Math.hypot(x[3 * i] - x[3 * j], x[3 * i + 1] - x[3 * j + 1]);
      expect(Math.abs(Math.hypot(e.data[2 * i] - e.data[2 * j], e.data[2 * i + 1] - e.data[2 * j + 1]) - want)).toBeLessThan(1e-5);
    }
    expect(Array.from(readNpy(join(dir, 'mds.labels.npy')).data)).toEqual(Array.from({ length: 12 }, (_, i) => i % 2));
  });

  it('bad options name the problem (exit 2) and write nothing', async () => {
    const out = join(dir, 'bad.npy');
    const cases: [string[], RegExp][] = [
      [['--model', 'digits-cnn', '--method', 'umap', '--out', out], /'--method' must be one of pca, mds, tsne; got 'umap'/],
      [['--model', 'digits-cnn', '--method', 'tnse', '--out', out], /did you mean 'tsne'/],
      [['--model', 'digits-cnn', '--method', 'pca', '--out', join(dir, 'e.png')], /'--out' must name a .npy or .html file/],
      [['--model', 'digits-cnn', '--method', 'pca', '--perplexity', '5', '--out', out], /'--perplexity' belongs to --method tsne/],
      [['--model', 'digits-cnn', '--method', 'tsne', '--perplexity', '0', '--out', out], /'--perplexity' must be at least 1/],
      [['--model', 'digits-cnn', '--method', 'tsne', '--iterations', '0', '--out', out], /'--iterations' must be at least 1/],
      [['--model', 'digits-cnn', '--method', 'tsne', '--tsne-method', 'exact', '--theta', '0.3', '--out', out], /'--theta' belongs to --tsne-method barnes-hut/],
      [['--model', 'digits-cnn', '--method', 'tsne', '--tsne-method', 'fast', '--out', out], /tsne-method/],
      [['--model', 'digits-cnn', '--method', 'mds', '--theta', '0.3', '--out', out], /'--theta' belongs to --method tsne/],
      [['--model', 'digits-cnn', '--data', 'digitz', '--method', 'pca', '--out', out], /did you mean 'digits'/],
      [['--model', 'digits-cnn', '--split', 'val', '--method', 'pca', '--out', out], /'--split' must be one of train, test/],
      [['--method', 'pca', '--out', out], /'--model' is required \(unless --layer input/],
      [['--model', 'digits-cnn', '--method', 'pca'], /--out/],
      [['--model', 'digits-cnn', '--labels', 'l.npy', '--method', 'pca', '--out', out], /'--labels' goes with --data X.npy/],
    ];
    for (const [args, re] of cases) {
      const r = await inProcess(...args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(re);
    }
    // Run-time errors: exit 1 with the reason.
    const r1 = await inProcess('--model', 'digits-cnn', '--layer', 'features.9', '--method', 'pca', '--out', out);
    expect(r1.code).toBe(1);
    expect(r1.stderr).toMatch(/no layer 'features\.9'; layers: features, features\.0, .*pool, classifier, or 'input'/);
    const r2 = await inProcess('--model', 'digits-cnn', '--n', '10', '--method', 'tsne', '--out', out);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/perplexity 30 must be below N - 1 = 9/);
    const r3 = await inProcess('--model', 'digits-cnn', '--data', 'shapes', '--method', 'pca', '--out', out);
    expect(r3.code).toBe(1);
    expect(r3.stderr).toMatch(/takes inputs \[1, 8, 8\], data set 'shapes' has \[1, 32, 32\]/);
    expect(existsSync(out)).toBe(false);
    // And through the real executable.
    const r4 = cli('--model', 'digits-cnn', '--method', 'umap', '--out', out);
    expect(r4.code).toBe(2);
    expect(r4.stderr).toMatch(/backlight embed: option '--method' must be one of pca, mds, tsne/);
  });
});

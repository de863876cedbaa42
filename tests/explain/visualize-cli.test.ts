// `backlight visualize` as a child process (CPU backend): a PNG of the right size (one tile, a
// grid for several channels), .npy images equal to the in-process call, and bad options named.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../cli/main.ts';
import * as bl from '../../engine/index.ts';
import * as vis from '../../explain/visualize/index.ts';
import { parseNpy } from '../../models/index.ts';
import { loadBundled } from '../../models/zoo/index.ts';
import { expectClose } from '../helpers.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'backlight-visualize-'));
const cli = (...args: string[]) => {
  const r = spawnSync(process.execPath, [join(root, 'bin/backlight.mjs'), 'visualize', '--backend', 'cpu', ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

/** In process (fast): the same command table and error reporting as the binary. */
async function inProcess(...args: string[]) {
  let stderr = '';
  const code = await main(['visualize', '--backend', 'cpu', ...args], { stdout: () => {}, stderr: (s) => void (stderr += s) });
  await bl.init({ backend: 'cpu' }); // main() destroys its backend when done
  return { code, stderr };
}

beforeAll(async () => {
  await bl.init({ backend: 'cpu' });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('backlight visualize', () => {
  it('writes one channel as an upscaled PNG, and several as a grid', () => {
    const one = join(dir, 'one.png');
    const r = cli('--model', 'digits-cnn', '--layer', 'features', '--channel', '3', '--steps', '8', '--out', one);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/digits-cnn features: channel 3: [\d.]+ after 8 steps/);
    const a = PNG.sync.read(readFileSync(one));
    expect([a.width, a.height]).toEqual([64, 64]); // 8 x 8 magnified 8 times
    const grid = join(dir, 'grid.png');
    const g = cli('--model', 'digits-cnn', '--layer', 'features.2', '--channel', '0,1,2,3,4', '--steps', '4', '--upscale', '4', '--parameterization', 'fourier', '--jitter', '1', '--out', grid);
    expect(g.code, g.stderr).toBe(0);
    const b = PNG.sync.read(readFileSync(grid));
    // 5 tiles of 32 pixels, 3 per row, separators of max(1, 4 >> 2) = 1 pixel: 3 * 33 - 1 by 2 * 33 - 1.
    expect([b.width, b.height]).toEqual([98, 65]);
    // A separator pixel is white; the unused sixth cell too.
    const at = (x: number, y: number) => Array.from(b.data.subarray((y * b.width + x) * 4, (y * b.width + x) * 4 + 4));
    expect(at(32, 10)).toEqual([255, 255, 255, 255]);
    expect(at(90, 50)).toEqual([255, 255, 255, 255]);
  });

  it('writes .npy images equal to activationMaximization with the same options (DeepDream without --channel)', async () => {
    const out = join(dir, 'dream.npy');
    const r = cli('--model', 'digits-cnn', '--layer', 'features', '--steps', '6', '--seed', '3', '--tv', '0.5', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/layer objective/);
    const f = parseNpy(new Uint8Array(readFileSync(out)));
    expect(f.shape).toEqual([1, 1, 8, 8]);
    const m = await loadBundled('digits-cnn');
    const want = await vis.activationMaximization(m, { layer: 'features', inputShape: [1, 1, 8, 8], steps: 6, seed: 3, regularizers: { tv: 0.5 } });
    expectClose(f.data, await want.image.data(), 1e-6);
  });

  it('--channel all makes one tile per channel of the layer', () => {
    const out = join(dir, 'all.npy');
    const r = cli('--model', 'digits-cnn', '--layer', 'features.0', '--channel', 'all', '--steps', '2', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    expect(parseNpy(new Uint8Array(readFileSync(out))).shape).toEqual([8, 1, 8, 8]);
  });

  it('bad input: errors name the option (exit 2 for usage, 1 for what the layer rejects)', async () => {
    const out = join(dir, 'x.png');
    const cases: [string[], RegExp, number][] = [
      [['--model', 'digits-cnn', '--channel', '3', '--out', out], /--layer/, 2],
      [['--model', 'digits-cnn', '--layer', 'features', '--out', join(dir, 'v.jpg')], /option '--out' must end in \.png or \.npy/, 2],
      [['--model', 'digits-cnn', '--layer', 'features', '--channel', 'x', '--out', out], /option '--channel' expects a non-negative integer/, 2],
      [['--model', 'digits-cnn', '--layer', 'features', '--objective', 'pixels', '--out', out], /--objective/, 2],
      [['--model', 'digits-cnn', '--layer', 'features', '--channel', '1', '--objective', 'layer', '--out', out], /option '--channel' does not go with --objective layer/, 2],
      [['--model', 'digits-cnn', '--layer', 'features', '--steps', '0', '--out', out], /option '--steps' must be at least 1/, 2],
      [['--model', 'digits-cnn', '--layer', 'features', '--scale-range', '2,1', '--out', out], /option '--scale-range' expects LO,HI/, 2],
      [['--model', 'digits-cnn', '--layer', 'features', '--parameterization', 'dct', '--out', out], /--parameterization/, 2],
      [['--model', 'digits-cnn', '--layer', 'features', '--channel', '99', '--steps', '1', '--out', out], /channel 99 is out of range for layer 'features' with 32 channels/, 1],
      [['--model', 'digits-cnn', '--layer', 'nope', '--steps', '1', '--out', out], /no layer named 'nope' \(option layer\)/, 1],
    ];
    for (const [args, re, code] of cases) {
      const r = await inProcess(...args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(code);
      expect(r.stderr).toMatch(re);
    }
  });
});

// `backlight explain` as a child process: .npy output equals the in-process explainer, PNG and
// HTML outputs are well formed, several methods give one file each, and bad options name the problem.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import * as ex from '../../explain/index.ts';
import { parseNpy, serializeNpy } from '../../models/index.ts';
import { loadDigits } from '../../models/data/tabular.ts';
import { loadBundled } from '../../models/zoo/index.ts';
import { loadOnnx } from '../../models/io/onnx.ts';
import { expectClose } from '../helpers.ts';
import { main } from '../../cli/main.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'backlight-explain-'));
const cli = (...args: string[]) => {
  const r = spawnSync(process.execPath, [join(root, 'bin/backlight.mjs'), 'explain', '--backend', 'cpu', ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

const input = join(dir, 'digits3.npy');
let x: Float32Array;
beforeAll(async () => {
  await bl.init({ backend: 'cpu' });
  x = loadDigits().x.slice(0, 3 * 64);
  writeFileSync(input, serializeNpy([3, 1, 8, 8], x));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('backlight explain', () => {
  it('writes .npy attributions equal to the in-process explainers (one file per method)', async () => {
    const out = join(dir, 'a.npy');
    const r = cli('--model', 'digits-cnn', '--input', input, '--method', 'integrated-gradients,grad-cam', '--target', '1,2,3', '--steps', '12', '--no-upsample', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const m = await loadBundled('digits-cnn');
    const xt = bl.tensor(x, [3, 1, 8, 8]);
    const ig = await ex.integratedGradients(m, xt, { target: [1, 2, 3], steps: 12 });
    const gc = await ex.gradCam(m, xt, { target: [1, 2, 3], layer: 'features' });
    const igFile = parseNpy(new Uint8Array(readFileSync(join(dir, 'a.integrated-gradients.npy'))));
    const gcFile = parseNpy(new Uint8Array(readFileSync(join(dir, 'a.grad-cam.npy'))));
    expect(igFile.shape).toEqual([3, 1, 8, 8]);
    expect(gcFile.shape).toEqual([3, 1, 4, 4]);
    expectClose(igFile.data, await ig.data(), 1e-6);
    expectClose(gcFile.data, await gc.data(), 1e-6);
  });

  it('writes a PNG overlay (items side by side) and an HTML report', () => {
    const png = join(dir, 'gc.png');
    expect(cli('--model', 'digits-cnn', '--input', input, '--method', 'grad-cam-plus-plus', '--out', png).code).toBe(0);
    const img = PNG.sync.read(readFileSync(png));
    // magnified to readable tiles by default: 8x8 digits at 32x (256 px), 16 px white gaps between items
    expect([img.width, img.height]).toEqual([3 * 256 + 2 * 16, 256]);
    const html = join(dir, 'r.html');
    const r = cli('--model', 'digits-cnn', '--input', input, '--method', 'saliency,guided-backprop,score-cam', '--out', html);
    expect(r.code, r.stderr).toBe(0);
    const text = readFileSync(html, 'utf8');
    // One input row and three method rows, one image per item.
    expect(text.match(/<img /g)?.length).toBe(4 * 3);
    expect(text).toMatch(/score-cam/);
  });

  it('explains an ONNX model at a layer named by its output tensor', async () => {
    const onnx = join(root, 'tests/fixtures/onnx/resnet_opset13.onnx');
    const inp = join(root, 'tests/fixtures/onnx/resnet_input.npy');
    const out = join(dir, 'onnx.npy');
    const r = cli('--model', onnx, '--input', inp, '--method', 'grad-cam', '--layer', '/layer1/conv1/Conv_output_0', '--no-upsample', '--target', '0', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const a = parseNpy(new Uint8Array(readFileSync(out)));
    expect(a.shape.slice(1, 2)).toEqual([1]);
    expect(a.shape.length).toBe(4);
    // The same as the in-process explainer on the loaded ONNX model.
    const m = loadOnnx(new Uint8Array(readFileSync(onnx)), { source: onnx });
    const xin = parseNpy(new Uint8Array(readFileSync(inp)));
    const want = await ex.gradCam(m, bl.tensor(xin.data, xin.shape), { layer: '/layer1/conv1/Conv_output_0', target: 0 });
    expect(a.shape).toEqual(want.shape);
    expectClose(a.data, await want.data(), 1e-6);
    m.dispose();
    // Without --layer an ONNX model's layer methods say what to give.
    expect(cli('--model', onnx, '--input', inp, '--method', 'grad-cam', '--out', out).stderr).toMatch(/needs --layer/);
  });

  it('lrp with a composite and its parameters equals the in-process explainer', async () => {
    const out = join(dir, 'lrp.npy');
    const r = cli('--model', 'resnet-bn', '--input', input, '--method', 'lrp', '--rules', 'epsilon-gamma-box', '--gamma', '0.5', '--low', '-0.5', '--high', '2', '--epsilon', '0.01', '--seed-output', 'one-hot', '--canonizers', 'none', '--target', '3', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const a = parseNpy(new Uint8Array(readFileSync(out)));
    const m = await loadBundled('resnet-bn');
    const xin = parseNpy(new Uint8Array(readFileSync(input)));
    const want = await ex.lrp(m, bl.tensor(xin.data, xin.shape), { target: 3, composite: 'epsilon-gamma-box', gamma: 0.5, low: -0.5, high: 2, epsilon: 0.01, seedOutput: 'one-hot', canonizers: 'none' });
    // and the options changed the result (defaults give another map)
    const dflt = await ex.lrp(m, bl.tensor(xin.data, xin.shape), { target: 3, composite: 'epsilon-gamma-box', seedOutput: 'one-hot' });
    expect(Array.from(await dflt.data()).some((v, i) => Math.abs(v - a.data[i]) > 1e-4)).toBe(true);
    expect(a.shape).toEqual(want.shape);
    expectClose(a.data, await want.data(), 1e-5);
  });

  it('bad options name the problem (in-process: exit 2 before any backend is created)', async () => {
    const bad = [
      [['--method', 'grad-cm'], /unknown method 'grad-cm' \(did you mean 'grad-cam'\?\)/],
      [['--method', 'saliency', '--target', '1,2'], /'--target' gives 2 classes for 3 inputs/],
      [['--method', 'saliency', '--steps', '0'], /'--steps' expects an integer >= 1, got '0'/],
      [['--method', 'lrp', '--rules', 'epsilon-plus-flatt'], /unknown composite 'epsilon-plus-flatt' \(did you mean 'epsilon-plus-flat'\?\)/],
      [['--method', 'lrp', '--alpha', '3'], /alpha - beta = 1 \(got alpha 3, beta 1\)/],
      [['--method', 'lrp', '--seed-output', 'ones'], /'--seed-output' expects logit or one-hot/],
      [['--method', 'saliency', '--rules', 'epsilon'], /'--rules' belongs to --method lrp/],
      [['--method', 'saliency', '--baseline', 'nope'], /'--baseline' expects zeros, blur/],
    ] as const;
    for (const [args, msg] of bad) {
      let stderr = '', inits = 0;
      const code = await main(['explain', '--model', 'digits-cnn', '--input', input, ...args, '--out', join(dir, 'bad.npy')], {
        stdout: () => {},
        stderr: (t) => void (stderr += t),
        init: async () => {
          inits++;
          throw new Error('backend created');
        },
      });
      expect(code, `${args.join(' ')}: ${stderr}`).toBe(2);
      expect(stderr).toMatch(msg);
      expect(inits).toBe(0);
    }
    // a layer name is checked against the built model: after the start, as an error naming the layers
    const r = cli('--model', 'digits-cnn', '--input', input, '--method', 'grad-cam', '--layer', 'features.9', '--out', join(dir, 'bad.npy'));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/no layer\/activation named 'features\.9'.*available: .*features\.0/);
    expect(existsSync(join(dir, 'bad.npy'))).toBe(false);
  });
});

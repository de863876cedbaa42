// The command line, run as a child process (node bin/backlight.mjs ...): listing, predictions
// written as .npy equal to the in-process model's, PNG inputs, evaluation, and usage errors that
// name the option or file. Plus the PNG conversion and the bilinear resize, in-process.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import { evaluate, parseNpy, serializeNpy } from '../../models/index.ts';
import { datasetSplits } from '../../models/data/index.ts';
import { ZOO, loadBundled } from '../../models/zoo/index.ts';
import { parseArgs, UsageError } from '../../cli/args.ts';
import { pngSample, resizeBilinear } from '../../cli/input.ts';
import { expectClose } from '../helpers.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'backlight-cli-'));

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [join(root, 'bin/backlight.mjs'), ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  await bl.init({ backend: 'cpu' });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The in-process model's logits (CPU float64). */
async function logits(name: string, x: Float32Array, shape: number[]): Promise<Float64Array | Float32Array> {
  const m = await loadBundled(name);
  const y = await bl.tidy(() => m.call(bl.tensor(x, shape))).data();
  m.dispose();
  return y;
}

describe('backlight (child process)', () => {
  it('models --json lists the bundled models', () => {
    const r = cli('models', '--json');
    expect(r.code, r.stderr).toBe(0);
    const ms = JSON.parse(r.stdout) as { name: string; inputShape: number[]; classes: string[]; accuracy: number }[];
    // every zoo entry, in its order (the zoo grows: the list is the zoo's, with the first six fixed)
    expect(ms.map((m) => m.name)).toEqual(Object.keys(ZOO));
    expect(ms.map((m) => m.name).slice(0, 6)).toEqual(['digits-cnn', 'shapes-cnn', 'spurious-cnn', 'breast-cancer-mlp', 'resnet-bn', 'prototype-digits']);
    expect(ms[0]).toMatchObject({ inputShape: [1, 8, 8], classes: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'] });
    expect(ms[0].accuracy).toBeGreaterThanOrEqual(0.95);
    const table = cli('models');
    expect(table.stdout).toMatch(/digits-cnn\s+\[1, 8, 8\]/);
  });

  it('predict on a .npy writes logits equal to the in-process model output (default backend, adapter on stderr)', async () => {
    const test = datasetSplits('digits').test;
    const n = 5, x = test.x.slice(0, n * 64);
    const input = join(dir, 'digits.npy'), out = join(dir, 'logits.npy');
    writeFileSync(input, serializeNpy([n, 1, 8, 8], x));
    const r = cli('predict', '--model', 'digits-cnn', '--input', input, '--out', out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/backlight: (webgpu|cpu)/); // the adapter
    const got = parseNpy(new Uint8Array(readFileSync(out)));
    expect(got.shape).toEqual([n, 10]);
    expectClose(got.data, await logits('digits-cnn', x, [n, 1, 8, 8]), 1e-4, 1e-4, 'CLI logits vs in-process');
    // one line per input with its predicted class
    expect(r.stdout.trim().split('\n')).toHaveLength(n);
    expect(r.stdout).toContain(`${input}[0]\t${test.y[0]}\t`);
    // the same model named by its .safetensors file (the metadata names the architecture)
    const out2 = join(dir, 'logits2.npy');
    const r2 = cli('predict', '--model', join(root, 'models/weights/digits-cnn.safetensors'), '--input', input, '--out', out2, '--backend', 'cpu', '--softmax');
    expect(r2.code, r2.stderr).toBe(0);
    const probs = parseNpy(new Uint8Array(readFileSync(out2))).data;
    const ref = await logits('digits-cnn', x, [n, 1, 8, 8]);
    for (let i = 0; i < n; i++) {
      const row = Array.from(ref.subarray(i * 10, (i + 1) * 10));
      const z = row.reduce((a, v) => a + Math.exp(v), 0);
      expectClose(probs.subarray(i * 10, (i + 1) * 10), row.map((v) => Math.exp(v) / z), 1e-6, 1e-6, `softmax row ${i}`);
    }
  });

  it('predict on a PNG: grey 8-bit pixels scaled to [0, 1], the same logits as the model on those values', async () => {
    const d = datasetSplits('shapes').test;
    const png = new PNG({ width: 32, height: 32 });
    const q = new Float32Array(32 * 32);
    for (let i = 0; i < 32 * 32; i++) {
      const v = Math.round(d.x[i] * 255);
      q[i] = v / 255;
      png.data.set([v, v, v, 255], i * 4);
    }
    const file = join(dir, 'shape.png'), out = join(dir, 'shape.npy');
    writeFileSync(file, PNG.sync.write(png));
    const r = cli('predict', '--model', 'shapes-cnn', '--input', file, '--out', out, '--backend', 'cpu', '--json');
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { predictions: { input: string; class: number; label: string }[] };
    expect(j.predictions[0]).toMatchObject({ input: file, class: d.y[0], label: d.classNames![d.y[0]] });
    expectClose(parseNpy(new Uint8Array(readFileSync(out))).data, await logits('shapes-cnn', q, [1, 1, 32, 32]), 1e-5, 1e-5, 'PNG logits');
  });

  it('predict with an .onnx model matches PyTorch', () => {
    const fx = join(root, 'tests/fixtures/onnx');
    const out = join(dir, 'onnx.npy');
    const r = cli('predict', '--model', join(fx, 'resnet_opset13.onnx'), '--input', join(fx, 'resnet_input.npy'), '--out', out, '--backend', 'cpu');
    expect(r.code, r.stderr).toBe(0);
    const want = parseNpy(new Uint8Array(readFileSync(join(fx, 'resnet_output.npy'))));
    const got = parseNpy(new Uint8Array(readFileSync(out)));
    expect(got.shape).toEqual(want.shape);
    expectClose(got.data, want.data, 1e-4, 1e-4, 'ONNX logits vs PyTorch');
  });

  it('evaluate reports the accuracy the in-process evaluation gives', async () => {
    const r = cli('evaluate', '--model', 'breast-cancer-mlp', '--split', 'test', '--json', '--backend', 'cpu');
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { accuracy: number; n: number; split: string };
    const m = await loadBundled('breast-cancer-mlp');
    const want = await evaluate(m, datasetSplits('breast-cancer').test);
    expect(j).toMatchObject({ split: 'test', n: 113 });
    expect(j.accuracy).toBe(want.accuracy);
    const bad = cli('evaluate', '--model', 'breast-cancer-mlp', '--split', 'heldout', '--backend', 'cpu');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--split' must be one of train, test for data set 'breast-cancer'; got 'heldout'/);
  });

  it('usage errors exit 2 and name the option; bad files exit 1 and name the file', () => {
    const unknown = cli('predict', '--model', 'digits-cnn', '--frobnicate', '3');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown option '--frobnicate'");
    const typo = cli('predict', '--modle', 'digits-cnn');
    expect(typo.stderr).toContain("did you mean '--model'?");
    const noValue = cli('predict', '--input', 'x.npy', '--model');
    expect(noValue.code).toBe(2);
    expect(noValue.stderr).toContain("option '--model' needs a value");
    const missing = cli('predict', '--model', 'digits-cnn');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("missing required option '--input'");
    const noFile = cli('predict', '--model', 'digits-cnn', '--input', join(dir, 'nope.npy'), '--backend', 'cpu');
    expect(noFile.code).toBe(1);
    expect(noFile.stderr).toContain(`--input ${join(dir, 'nope.npy')}: cannot read the file (no such file)`);
    const badModel = cli('predict', '--model', 'lenet', '--input', 'x.npy', '--backend', 'cpu');
    expect(badModel.code).toBe(1);
    expect(badModel.stderr).toMatch(/--model lenet: no such bundled model or file \(bundled: digits-cnn/);
    const cmd = cli('explian');
    expect(cmd.code).toBe(2);
    expect(cmd.stderr).toContain("unknown command 'explian'");
  });

  it('a .npy of the wrong shape names the file and both shapes', () => {
    const f = join(dir, 'wrong.npy');
    writeFileSync(f, serializeNpy([2, 3, 8, 8], new Float32Array(2 * 3 * 64)));
    const r = cli('predict', '--model', 'digits-cnn', '--input', f, '--backend', 'cpu');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${f}: array of shape [2, 3, 8, 8] does not fit the model's input [1, 8, 8]`);
  });

  it('--help prints the commands; COMMAND --help its options', () => {
    const r = cli('--help');
    expect(r.code).toBe(0);
    for (const c of ['models', 'predict', 'evaluate', 'train']) expect(r.stdout).toContain(`  ${c} `);
    const p = cli('predict', '--help');
    expect(p.code).toBe(0);
    expect(p.stdout).toContain('--model M');
    expect(p.stdout).toContain('--input X');
  });
});

describe('argument parser and input conversion (in-process)', () => {
  const spec = { n: { type: 'int' as const, description: 'count' }, mode: { type: 'string' as const, choices: ['a', 'b'], description: 'mode' }, v: { type: 'boolean' as const, description: 'flag' } };

  it('parses --k v, --k=v, flags and positionals; rejects bad values by name', () => {
    expect(parseArgs('t', ['--n', '3', '--mode=b', '--v', 'pos'], spec, [{ name: 'P', description: 'p' }])).toEqual({ options: { n: 3, mode: 'b', v: true }, positionals: ['pos'] });
    expect(() => parseArgs('t', ['--n', 'x'], spec)).toThrow(UsageError);
    expect(() => parseArgs('t', ['--n', '1.5'], spec)).toThrow("option '--n' expects an integer, got '1.5'");
    expect(() => parseArgs('t', ['--mode', 'c'], spec)).toThrow("option '--mode' must be one of a, b; got 'c'");
    expect(() => parseArgs('t', ['--n', '1', '--n', '2'], spec)).toThrow("option '--n' is given more than once");
    expect(() => parseArgs('t', ['extra'], spec)).toThrow("unexpected argument 'extra'");
    expect(parseArgs('t', ['--n', '-2'], spec).options.n).toBe(-2); // a negative number is a value
  });

  it('bilinear resize with half-pixel centres (PyTorch align_corners=False)', () => {
    // F.interpolate(torch.tensor([[[[0., 1.], [2., 3.]]]]), size=(4, 4), mode='bilinear', align_corners=False)
    const up = resizeBilinear(new Float32Array([0, 1, 2, 3]), 1, 2, 2, 4, 4);
    expect(Array.from(up)).toEqual([0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3]);
    // 2x downsampling averages each 2x2 block
    const down = resizeBilinear(new Float32Array([0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30]), 1, 4, 4, 2, 2);
    expect(Array.from(down)).toEqual([5, 9, 21, 25]);
  });

  it('PNG to channels: RGB or BT.601 grey, alpha over black, resized to the model size', () => {
    const png = new PNG({ width: 4, height: 2 });
    for (let i = 0; i < 8; i++) png.data.set(i < 4 ? [255, 0, 0, 255] : [0, 0, 255, 0], i * 4);
    const bytes = new Uint8Array(PNG.sync.write(png));
    const rgb = pngSample(bytes, 'p.png', [3, 2, 4]);
    expect(Array.from(rgb)).toEqual([1, 1, 1, 1, 0, 0, 0, 0, /* G */ 0, 0, 0, 0, 0, 0, 0, 0, /* B (transparent) */ 0, 0, 0, 0, 0, 0, 0, 0]);
    const grey = pngSample(bytes, 'p.png', [1, 1, 2]);
    // each output pixel samples the middle of a 2x2 block: half red (0.299), half black
    expect(Array.from(grey).map((v) => +v.toFixed(6))).toEqual([0.1495, 0.1495]);
    expect(() => pngSample(bytes, 'p.png', [30])).toThrow(/p\.png: image inputs need an image model/);
    expect(() => pngSample(new Uint8Array([1, 2, 3]), 'q.png', [1, 2, 2])).toThrow(/q\.png: not a readable PNG/);
  });
});

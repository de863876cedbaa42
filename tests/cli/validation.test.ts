// Every option is checked before any device work: a usage error exits with 2, names the option,
// what it expects and what it got, and the backend is never created. Observed in-process through
// main()'s `init` hook (a recorder that fails the test's expectation if it is ever called), and once
// in a child process through the adapter line the CLI prints when a backend starts.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../cli/main.ts';
import { commands } from '../../cli/registry.ts';
import { serializeNpy } from '../../models/io/npy.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'backlight-cli-validate-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const onnx = join(root, 'tests/fixtures/onnx/resnet_opset13.onnx'); // input [N, 3, 12, 12], 5 classes
const digits = join(dir, 'digits.npy');
writeFileSync(digits, serializeNpy([2, 1, 8, 8], new Float32Array(128).fill(0.5)));
const onnxIn = join(dir, 'onnx.npy');
writeFileSync(onnxIn, serializeNpy([1, 3, 12, 12], new Float32Array(432)));

/** Run in-process; `inits` counts backend creations (each one fails, so a late check shows as exit 1). */
async function run(...argv: string[]) {
  let stdout = '', stderr = '', inits = 0;
  const code = await main(argv, {
    stdout: (s) => void (stdout += s),
    stderr: (s) => void (stderr += s),
    init: async () => {
      inits++;
      throw new Error('the backend was created');
    },
  });
  return { code, stdout, stderr, inits };
}

const explain = (...more: string[]) => ['explain', '--model', 'digits-cnn', '--input', digits, '--out', join(dir, 'a.npy'), ...more];

describe('usage errors before any device work', () => {
  const cases: [string[], RegExp][] = [
    [explain('--method', 'saliency', '--baseline', 'foo'), /option '--baseline' expects zeros, blur, a number or a \.npy file; got 'foo'/],
    [explain('--method', 'saliency', '--target', '10'), /option '--target' expects class indices 0\.\.9 \(the model has 10 classes\); got 10/],
    [explain('--method', 'saliency', '--target', '1,2,3'), /option '--target' gives 3 classes for 2 inputs/],
    [['explain', '--model', onnx, '--input', onnxIn, '--method', 'saliency', '--target', '5', '--out', join(dir, 'b.npy')], /class indices 0\.\.4 \(the model has 5 classes\); got 5/],
    [['explain', '--model', 'digits-cnn', '--input', digits, '--method', 'saliency', '--out', join(dir, 'no/such/folder/a.npy')], /option '--out': the folder .*no\/such\/folder does not exist/],
    [explain('--method', 'salincy'), /option '--method': unknown method 'salincy' \(did you mean 'saliency'\?\)/],
    [explain('--method', 'integrated-gradients', '--steps', 'ten'), /option '--steps' expects an integer >= 1, got 'ten'/],
    [explain('--method', 'saliency', '--scale', '4'), /option '--scale' is for PNG and HTML output/],
    [['explain', '--model', 'digits-cnn', '--input', digits, '--method', 'saliency', '--out', join(dir, 'a.png'), '--scale', '0'], /option '--scale' expects an integer >= 1, got '0'/],
    [explain('--method', 'saliency', '--normalize', 'imagenet'), /option '--normalize imagenet' gives 3 channel means and stds; the model's inputs \[1, 8, 8\] have 1 channels/],
    [explain('--method', 'saliency', '--normalize', '0.5'), /option '--normalize' expects imagenet, none, M,S/],
    [explain('--method', 'saliency', '--crop', '0'), /option '--crop' expects N \(a square\) or H,W, positive integers; got '0'/],
    [explain('--method', 'saliency', '--input-shape', '1,8,x'), /option '--input-shape' expects positive integers .*got '1,8,x'/],
    [explain('--method', 'saliency', '--baseline', join(dir, 'onnx.npy')), /option '--baseline' .*onnx\.npy: an array of shape \[1, 3, 12, 12\] does not fit inputs \[2, 1, 8, 8\]/],
    [explain('--method', 'lrp', '--alpha', 'x'), /option '--alpha' expects a number, got 'x'/],
    [['predict', '--model', 'digits-cnn', '--input', digits, '--out', join(dir, 'nope/l.npy')], /option '--out': the folder .* does not exist/],
    [['predict', '--model', 'digits-cnn', '--input', digits, '--top', '0'], /option '--top' expects an integer >= 1, got '0'/],
    [['layers', '--model', 'digits-cnn', '--input-shape', '0,8,8'], /option '--input-shape' expects positive integers/],
    [['evaluate', '--model', 'digits-cnn', '--split', 'heldout'], /option '--split' must be one of train, test for data set 'digits'; got 'heldout'/],
    [['evaluate', '--model', 'digits-cnn', '--data', 'digts'], /option '--data' must be one of .*; got 'digts' \(did you mean 'digits'\?\)/],
    [['evaluate', '--model', 'digits-cnn', '--methods', 'saliency', '--out', join(dir, 'r.txt')], /option '--out' must end in \.json or \.html, got/],
    [['evaluate', '--model', 'digits-cnn', '--methods', 'saliency', '--seed', '-1'], /option '--seed' must be a non-negative integer, got -1/],
    [['influence', '--model', 'breast-cancer-mlp', '--test-index', '100000'], /option '--test-index' must be a row of breast-cancer's test split, 0\.\.\d+; got 100000/],
    [['visualize', '--model', 'digits-cnn', '--layer', 'features.0', '--out', join(dir, 'none/v.png')], /option '--out': the folder .* does not exist/],
    [['embed', '--model', 'digits-cnn', '--method', 'pca', '--split', 'nope', '--out', join(dir, 'e.npy')], /option '--split' must be one of train, test/],
    [['predict', '--model', onnx, '--input', join(root, 'tests/fixtures/onnx/resnet_input.npy'), '--resize', '16'], /options '--resize' and '--crop' apply to image files; --input .*resnet_input\.npy is a \.npy/],
    [explain('--method', 'saliency', '--head-fusion', 'max'), /option '--head-fusion' belongs to --method attention-rollout/],
    [explain('--method', 'attention-rollout', '--discard-ratio', '1'), /option '--discard-ratio' expects a number in \[0, 1\), got '1'/],
    [['train', 'digits-cn'], /unknown model 'digits-cn' \(did you mean 'digits-cnn'\?\)/],
    [['predict', '--model', 'digits-cnn', '--input', digits, '--json=maybe'], /option '--json' is a flag/],
  ];
  it.each(cases.map(([a, re]) => [a.slice(0, 1).concat(a.filter((s) => s.startsWith('--') && !['--model', '--input', '--out'].includes(s))).join(' '), a, re] as const))('%s', async (_name, argv, re) => {
    const r = await run(...argv);
    expect(r.stderr).toMatch(re);
    expect(r.code, r.stderr).toBe(2);
    expect(r.inits).toBe(0);
    expect(r.stdout).toBe('');
  });

  it('a child process prints no adapter line (no backend started) on a usage error', () => {
    const r = spawnSync(process.execPath, [join(root, 'bin/backlight.mjs'), ...explain('--method', 'saliency', '--baseline', 'foo')], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/backlight explain: option '--baseline' expects/);
    expect(r.stderr).not.toMatch(/^backlight: (webgpu|cpu)/m);
  });
});

describe('help and --json on every command', () => {
  it('each command has --help with its usage and options, and takes --json', async () => {
    expect(commands.size).toBeGreaterThanOrEqual(10);
    for (const name of commands.keys()) {
      const r = await run(name, '--help');
      expect(r.code, name).toBe(0);
      expect(r.stdout).toContain(`usage: backlight ${name}`);
      expect(r.stdout).toMatch(/--json\s+print the result as one JSON document/);
      expect(r.inits).toBe(0);
    }
    for (const name of ['layers', 'demo', 'explain', 'predict']) expect(commands.has(name)).toBe(true);
    const h = await run('help', 'explain');
    expect(h.stdout).toContain('--resize N');
    expect(h.stdout).toContain('--normalize imagenet|none|M,S');
    expect(h.stdout).toContain('--scale N');
    expect((await run('help', 'nope')).code).toBe(2);
  });
});

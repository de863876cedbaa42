// Each subcommand end to end, in-process through main() on the CPU backend (a child process per
// call would cost seconds each on 2 cores; bin/backlight.mjs itself is run by the other CLI
// suites), on a bundled model and on an ONNX model (tests/fixtures/onnx/resnet_opset13.onnx:
// input [N, 3, 12, 12], 5 classes), with the outputs parsed back.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import * as ex from '../../explain/index.ts';
import { main } from '../../cli/main.ts';
import { parseNpy, serializeNpy } from '../../models/io/npy.ts';
import { datasetSplits } from '../../models/data/index.ts';
import { loadBundled } from '../../models/zoo/index.ts';
import { loadOnnx } from '../../models/io/onnx.ts';
import { IMAGENET_MEAN, IMAGENET_STD, centerCrop, normalize, resizeShorter, rgbaToChannels } from '../../models/preprocess.ts';
import { expectClose } from '../helpers.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const fx = join(root, 'tests/fixtures/onnx');
const onnx = join(fx, 'resnet_opset13.onnx');
const dir = mkdtempSync(join(tmpdir(), 'backlight-cli-e2e-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function run(...argv: string[]) {
  let stdout = '', stderr = '';
  const code = await main([...argv, '--backend', 'cpu'], { stdout: (s) => void (stdout += s), stderr: (s) => void (stderr += s) });
  return { code, stdout, stderr, json: () => JSON.parse(stdout) };
}

const digits = join(dir, 'digits.npy');
const test = datasetSplits('digits').test;
writeFileSync(digits, serializeNpy([2, 1, 8, 8], test.x.slice(0, 128)));

/** The bundled model's softmax on x, computed here (CPU backend). */
async function probs(name: string, x: Float32Array, shape: number[]): Promise<number[]> {
  await bl.init({ backend: 'cpu' });
  const m = await loadBundled(name);
  const p = bl.tidy(() => bl.softmax(m.call(bl.tensor(x, shape)), -1));
  const v = Array.from(await p.data());
  p.dispose();
  m.dispose();
  return v;
}

describe('backlight subcommands end to end', () => {
  it('models --json', async () => {
    const r = await run('models', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.json().map((m: { name: string }) => m.name)).toContain('digits-cnn');
  });

  it('layers: a bundled model (module paths) and an ONNX model (nodes), as JSON and as a table', async () => {
    const b = await run('layers', '--model', 'digits-cnn', '--json');
    expect(b.code, b.stderr).toBe(0);
    const j = b.json();
    expect(j.inputShape).toEqual([1, 1, 8, 8]);
    expect(j.layers.find((l: { name: string }) => l.name === 'classifier')).toEqual({ name: 'classifier', op: 'Linear', outputShape: [1, 10] });
    const o = await run('layers', '--model', onnx);
    expect(o.code, o.stderr).toBe(0);
    expect(o.stdout).toMatch(/^\/conv1\/Conv\s+Conv\s+\[1, 8, 12, 12\]\s+\/conv1\/Conv_output_0$/m);
    // --input-shape overrides the model's size (the graph has a fixed 12x12 input, but its ops take 16x16 too)
    const big = await run('layers', '--model', onnx, '--input-shape', '3,16,16', '--json');
    expect(big.json().layers[0].outputShape).toEqual([1, 8, 16, 16]);
  });

  it('predict: a JPEG photo for a grey 8x8 model, with a note saying it was converted and resized', async () => {
    // a flat mid-grey-ish colour survives JPEG almost exactly; it is RGB (not grey) on purpose
    const w = 40, h = 30;
    const px = new Uint8Array(w * h * 4);
    for (let i = 0; i < w * h; i++) px.set([200, 100, 50, 255], i * 4);
    const file = join(dir, 'photo.jpg');
    writeFileSync(file, jpeg.encode({ data: px, width: w, height: h }, 95).data);
    const r = await run('predict', '--model', 'digits-cnn', '--input', file, '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`note: ${file}: 40x30 RGB JPEG: RGB -> grey (BT.601 luma); resized 40x30 -> 8x8 (bilinear, aspect ratio not kept)`);
    const j = r.json();
    expect(j.notes).toHaveLength(1);
    // the model on the flat grey image the note describes: 0.299 * 200 + 0.587 * 100 + 0.114 * 50 = 124.2 of 255
    const want = await probs('digits-cnn', new Float32Array(64).fill(124.2 / 255), [1, 1, 8, 8]);
    const p = j.predictions[0];
    expect(p.class).toBe(want.indexOf(Math.max(...want)));
    expect(p.probability).toBeCloseTo(Math.max(...want), 2);
    expect(p.top).toHaveLength(3);
  });

  it('predict: ONNX with --out, logits parsed back equal PyTorch', async () => {
    const out = join(dir, 'onnx-logits.npy');
    const r = await run('predict', '--model', onnx, '--input', join(fx, 'resnet_input.npy'), '--out', out, '--json');
    expect(r.code, r.stderr).toBe(0);
    const want = parseNpy(new Uint8Array(readFileSync(join(fx, 'resnet_output.npy'))));
    const got = parseNpy(new Uint8Array(readFileSync(out)));
    expectClose(got.data, want.data, 1e-4, 1e-4, 'ONNX logits');
    expect(r.json()).toMatchObject({ command: 'predict', outputShape: [2, 5], out });
  });

  it('predict: --resize/--crop/--normalize imagenet on a PNG for the ONNX model, as the preprocessing functions give', async () => {
    const w = 30, h = 20;
    const px = new Uint8Array(w * h * 4);
    for (let i = 0; i < w * h; i++) px.set([(i * 7) % 256, (i * 13) % 256, (i * 29) % 256, 255], i * 4);
    const png = new PNG({ width: w, height: h });
    png.data.set(px);
    const file = join(dir, 'rgb.png'), out = join(dir, 'rgb-logits.npy');
    writeFileSync(file, PNG.sync.write(png));
    const r = await run('predict', '--model', onnx, '--input', file, '--resize', '16', '--crop', '12', '--normalize', 'imagenet', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`note: ${file}: 30x20 RGB PNG: resized 30x20 -> 24x16 (shorter side 16, bilinear); centre-cropped 24x16 -> 12x12; normalised (mean 0.485, 0.456, 0.406; std 0.229, 0.224, 0.225)`);
    // the same steps by hand: shorter side 20 -> 16 (30 -> 24), crop offsets round(2) = 2 and round(6) = 6
    const rs = resizeShorter(rgbaToChannels(px, w, h, 3), 3, h, w, 16);
    const x = normalize(centerCrop(rs.data, 3, 16, 24, 12, 12), 3, IMAGENET_MEAN, IMAGENET_STD);
    await bl.init({ backend: 'cpu' });
    const m = loadOnnx(new Uint8Array(readFileSync(onnx)));
    const want = await bl.tidy(() => m.call(bl.tensor(x, [1, 3, 12, 12]))).data();
    m.dispose();
    expectClose(parseNpy(new Uint8Array(readFileSync(out))).data, want, 1e-5, 1e-5, 'logits of the preprocessed PNG');
  });

  it('explain: bundled model to a magnified PNG (--scale) and an HTML report with the prediction; --json', async () => {
    const png = join(dir, 'sal.png');
    const r = await run('explain', '--model', 'digits-cnn', '--input', digits, '--method', 'saliency', '--out', png, '--scale', '10', '--json');
    expect(r.code, r.stderr).toBe(0);
    const img = PNG.sync.read(readFileSync(png));
    expect([img.width, img.height]).toEqual([2 * 80 + 5, 80]); // two 8x8 items at 10x, a 5 px gap
    const j = r.json();
    expect(j.outputs).toEqual([expect.objectContaining({ method: 'saliency', file: png, shape: [2, 1, 8, 8] })]);
    expect(j.predictions.map((p: { class: number }) => p.class)).toEqual([test.y[0], test.y[1]]);
    const html = join(dir, 'r.html');
    const h = await run('explain', '--model', 'digits-cnn', '--input', digits, '--method', 'saliency,grad-cam', '--out', html);
    expect(h.code, h.stderr).toBe(0);
    const text = readFileSync(html, 'utf8');
    const want = await probs('digits-cnn', test.x.slice(0, 64), [1, 1, 8, 8]);
    const top = want.indexOf(Math.max(...want));
    expect(text).toContain(`predicted <b>${top}</b> (${(100 * want[top]).toFixed(1)}%)`);
    expect(text.match(/<img /g)?.length).toBe(2 * 3); // per item: the input and two maps
    expect(text).not.toMatch(/https?:\/\//); // self-contained
  });

  it('explain: HTML report checks integrated gradients\' completeness against the model\'s outputs', async () => {
    const html = join(dir, 'ig.html');
    const r = await run('explain', '--model', 'digits-cnn', '--input', digits, '--method', 'integrated-gradients', '--steps', '64', '--out', html);
    expect(r.code, r.stderr).toBe(0);
    const errs = [...readFileSync(html, 'utf8').matchAll(/data-completeness="([^"]+)"/g)].map((m) => Number(m[1]));
    expect(errs).toHaveLength(2);
    for (const e of errs) expect(e).toBeLessThan(0.05); // 64 steps on a small ReLU net: well inside 5%
  });

  it('explain: a tabular model\'s HTML report draws additive methods as waterfalls from f(baseline) to f(x)', async () => {
    const bc = join(dir, 'bc.npy'), html = join(dir, 'bc.html');
    writeFileSync(bc, serializeNpy([2, 30], datasetSplits('breast-cancer').test.x.slice(0, 60)));
    const r = await run('explain', '--model', 'breast-cancer-mlp', '--input', bc, '--method', 'integrated-gradients,saliency', '--out', html);
    expect(r.code, r.stderr).toBe(0);
    const text = readFileSync(html, 'utf8');
    expect(text).toContain('<h2>Integrated gradients per feature</h2>');
    expect(text).toMatch(/>(mean|worst) [a-z ]+ = [-0-9.]+</); // the data set's feature names, with the row's values
    expect(text).not.toContain('feature 0');
    expect(text).toContain('<h2>Saliency [2, 30]</h2>'); // not additive: a table
  });

  it('explain: a perturbation method streamed to .npy with a per-block blur baseline equals the in-process call', async () => {
    const out = join(dir, 'occ.npy');
    const r = await run('explain', '--model', 'digits-cnn', '--input', digits, '--method', 'occlusion', '--window', '4', '--stride', '4', '--baseline', 'blur', '--target', '3', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    await bl.init({ backend: 'cpu' });
    const m = await loadBundled('digits-cnn');
    const x = bl.tensor(test.x.slice(0, 128), [2, 1, 8, 8]);
    const blur = ex.gaussianBlur(x, 1); // the CLI's blur: sigma min(H, W) / 8, at least 1
    const want = await ex.occlusion(m, x, { target: 3, baseline: blur, window: 4, stride: 4 });
    expectClose(parseNpy(new Uint8Array(readFileSync(out))).data, await want.data(), 1e-6, 1e-6, 'occlusion');
    for (const t of [x, blur, want]) t.dispose();
    m.dispose();
  });

  it('explain: ONNX model, saliency as .npy parsed back; gradient of the target logit', async () => {
    const out = join(dir, 'onnx-sal.npy');
    const r = await run('explain', '--model', onnx, '--input', join(fx, 'resnet_input.npy'), '--method', 'saliency', '--target', '0', '--out', out, '--json');
    expect(r.code, r.stderr).toBe(0);
    const a = parseNpy(new Uint8Array(readFileSync(out)));
    expect(a.shape).toEqual([2, 3, 12, 12]);
    expect(a.data.some((v) => v !== 0)).toBe(true);
    expect(r.json().predictions).toHaveLength(2);
  });

  it('explain --method attention-rollout,attention-relevance on a torchvision ViT (ONNX) equals the NumPy replica', async () => {
    // tests/fixtures/make_attention_fixtures.py: torchvision's ViT (random weights) and its rollout
    // (max head fusion, discard 0.5) and Chefer relevance for targets 2 and 4, on a 3 x 3 patch grid
    const at = join(root, 'tests/fixtures/attention');
    const out = join(dir, 'att.npy');
    const r = await run('explain', '--model', join(at, 'tv_vit.onnx'), '--input', join(at, 'tv_input.npy'), '--method', 'attention-rollout,attention-relevance', '--head-fusion', 'max', '--discard-ratio', '0.5', '--target', '2,4', '--no-upsample', '--out', out, '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.json().outputs.map((o: { method: string; shape: number[] }) => [o.method, o.shape])).toEqual([['attention-rollout', [2, 1, 3, 3]], ['attention-relevance', [2, 1, 3, 3]]]);
    const got = (m: string) => parseNpy(new Uint8Array(readFileSync(join(dir, `att.${m}.npy`)))).data;
    const want = (f: string) => parseNpy(new Uint8Array(readFileSync(join(at, f)))).data;
    expectClose(got('attention-rollout'), want('tv_rollout.npy'), 1e-5, 1e-5, 'rollout');
    expectClose(got('attention-relevance'), want('tv_relevance.npy'), 1e-5, 1e-5, 'relevance');
  });

  it('train writes weights that predict then loads as a .safetensors model (its metadata names the architecture)', async () => {
    const wd = join(dir, 'weights');
    const t = await run('train', 'breast-cancer-mlp', '--epochs', '1', '--out', wd, '--json');
    expect(t.code, t.stderr).toBe(0);
    expect(t.json()).toMatchObject({ name: 'breast-cancer-mlp', epochs: 1 });
    const bc = join(dir, 'bc2.npy');
    const d = datasetSplits('breast-cancer').test;
    writeFileSync(bc, serializeNpy([3, 30], d.x.slice(0, 90)));
    const p = await run('predict', '--model', join(wd, 'breast-cancer-mlp.safetensors'), '--input', bc, '--json');
    expect(p.code, p.stderr).toBe(0);
    const j = p.json();
    expect(j.outputShape).toEqual([3, 2]);
    expect(j.predictions.map((x: { label: string }) => x.label).every((l: string) => d.classNames!.includes(l))).toBe(true);
  });

  it('evaluate (bundled) and visualize / embed (ONNX) with --json', async () => {
    const e = await run('evaluate', '--model', 'breast-cancer-mlp', '--json');
    expect(e.code, e.stderr).toBe(0);
    expect(e.json()).toMatchObject({ command: 'evaluate', split: 'test', n: 113 });
    const v = join(dir, 'v.png');
    const vis = await run('visualize', '--model', onnx, '--layer', '/conv1/Conv', '--channel', '0', '--steps', '2', '--out', v, '--json');
    expect(vis.code, vis.stderr).toBe(0);
    expect(vis.json()).toMatchObject({ command: 'visualize', layer: '/conv1/Conv', channels: [0], steps: 2 });
    expect(PNG.sync.read(readFileSync(v)).width).toBeGreaterThanOrEqual(64);
    const emb = join(dir, 'e.npy');
    const em = await run('embed', '--model', onnx, '--data', join(fx, 'resnet_input.npy'), '--layer', '/pool/MaxPool', '--method', 'pca', '--out', emb, '--json');
    expect(em.code, em.stderr).toBe(0);
    expect(em.json()).toMatchObject({ command: 'embed', n: 2, activationShape: [2, 8 * 6 * 6] });
    expect(parseNpy(new Uint8Array(readFileSync(emb))).shape).toEqual([2, 2]);
  });
});

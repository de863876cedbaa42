// The browser app (examples/app) in a real browser: built with its own build (esbuild, no Node
// built-ins), served on 127.0.0.1, loaded in Debian's headless Chromium with WebGPU on SwiftShader
// (tests/browser/chromium.ts), and driven through its page as a user would: a sample picked, a
// backward rule and an LRP composite switched, a digit drawn. Every heatmap the page computed on
// WebGPU is compared with the same explanation computed here, in Node, on the float64 CPU backend,
// from the bundled weights read by models/zoo (not by the app's loader), and the page's canvas
// pixels with the pixels examples/app/render.ts makes from that Node result.
//
// BACKLIGHT_SKIP_BROWSER=1 skips this file; BACKLIGHT_CHROMIUM names another Chromium.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import type { Server } from 'node:http';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as bl from '../../engine/index.ts';
import { loadBundled } from '../../models/zoo/index.ts';
import { datasetSplits } from '../../models/data/index.ts';
import { loadOnnx } from '../../models/io/onnx.ts';
import type { Module } from '../../models/module.ts';
import { build } from 'esbuild';
import { browserOnly, buildApp, bundleApp, sampleSets } from '../../examples/app/build.ts';
import { serveDir } from '../../examples/app/serve.ts';
import { METHODS, methodById } from '../../examples/app/methods.ts';
import { heatmapPixels } from '../../examples/app/render.ts';
import type { AppReport, MethodResult } from '../../examples/app/main.ts';
import { closeServer, launchChromium, SKIP_BROWSER } from './chromium.ts';

// Attribution values: WebGPU computes in float32, the CPU backend in float64, so each map differs
// by float32 rounding accumulated through a few dozen ops (forward, backward, and for IG 16 path
// points, for Grad-CAM++ third derivatives, for KernelSHAP a least-squares solve on the host).
// Measured on SwiftShader: max |gpu - cpu| / max |cpu| between 5e-8 and 6e-7 for every method
// here. 1e-4 of the map's largest magnitude leaves a 100x margin for other adapters (other FMA
// contraction, other reduction orders) and is still far below anything visible, while a wrong
// rule, target, layer, weight or input changes maps by tens of percent.
const VALUE_TOL = 1e-4;
// Pixels: maps within 1e-4 move a colour channel by at most 0.05 levels (jet rises by 4 x 255 per
// unit, at alpha 0.5), so only a rounding flip is allowed: 1 level of 255 (measured: 0).
const PIXEL_TOL = 1;

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe.skipIf(SKIP_BROWSER)('browser app (examples/app, headless Chromium, WebGPU)', () => {
  let dir: string;
  let server: Server | undefined;
  let url: string;
  let browser: Browser | undefined;
  let page: Page;
  const consoleErrors: string[] = [];
  const pageLog: string[] = [];
  const offsite: string[] = [];
  const failedRequests: string[] = [];
  const models = new Map<string, Module>();

  const appReport = () => page.evaluate(() => window.__backlightApp!) as Promise<AppReport>;

  /** Wait until every input is read and every refresh asked for has finished (each UI change asks for one). */
  // Generous: SwiftShader compiles every new kernel on 2 cores that a full `npm test` shares.
  async function settled(timeout = 90_000): Promise<AppReport> {
    try {
      await page.waitForFunction(() => {
        const r = window.__backlightApp;
        return !!r && r.ready && !r.busy && r.pending === 0 && r.completed === r.requested;
      }, null, { timeout, polling: 100 });
    } catch (e) {
      throw new Error(`the app did not settle: ${(e as Error).message}\n${pageLog.join('\n')}`);
    }
    return appReport();
  }

  // The ONNX file the test drops on the page, loaded here by the same loader from the same bytes.
  const ONNX_FILE = join(ROOT, 'tests/fixtures/onnx/resnet_opset13.onnx');
  async function model(name: string): Promise<Module> {
    if (!models.has(name)) models.set(name, name.endsWith('.onnx') ? loadOnnx(new Uint8Array(readFileSync(ONNX_FILE))) : await loadBundled(name));
    return models.get(name)!;
  }

  /** The page's canvas pixels of one card. */
  const cardPixels = (id: string) =>
    page.evaluate((id) => {
      const c = document.querySelector<HTMLCanvasElement>(`.card[data-method="${id}"] canvas`)!;
      return { w: c.width, h: c.height, px: Array.from(c.getContext('2d', { willReadFrequently: true })!.getImageData(0, 0, c.width, c.height).data) };
    }, id);

  /**
   * Recompute method `id` in Node on the CPU backend for what the page reports (its model, input,
   * target and settings) and compare the values and the card's pixels. Returns the worst errors.
   */
  async function compare(r: AppReport, id: string): Promise<{ id: string; rel: number; pixel: number }> {
    const res: MethodResult | undefined = r.results[id];
    expect(res, `the page has no ${id} result`).toBeDefined();
    expect(res!.refresh, `${id} is from an older refresh`).toBe(r.completed);
    const spec = methodById(id);
    const [c, h, w] = r.inputShape!;
    const input = Float32Array.from(r.input!);
    const x = bl.tensor(input, [1, c, h, w]);
    const attr = await spec.run(await model(r.model!), x, {
      target: res!.target, camLayer: res!.camLayer, rule: res!.rule, composite: res!.composite, igSteps: res!.igSteps, shapSamples: res!.shapSamples,
    });
    try {
      expect(res!.shape, id).toEqual([...attr.shape]);
      const want = await attr.data();
      const scale = Math.max(...Array.from(want, Math.abs));
      expect(scale, `${id}: the Node map is all zeros, so the comparison would prove nothing`).toBeGreaterThan(0);
      let maxAbs = 0;
      for (let i = 0; i < want.length; i++) maxAbs = Math.max(maxAbs, Math.abs(res!.data[i] - want[i]));
      const rel = maxAbs / scale;
      expect(rel, `${id}: max |page - node| = ${maxAbs.toExponential(2)} vs the map's max ${scale.toExponential(2)}`).toBeLessThanOrEqual(VALUE_TOL);

      const nodePx = await heatmapPixels(attr, input, c, spec.sign);
      const pagePx = await cardPixels(id);
      expect([pagePx.w, pagePx.h], `${id} canvas size`).toEqual([nodePx.w, nodePx.h]);
      let pixel = 0;
      for (let i = 0; i < nodePx.rgba.length; i++) pixel = Math.max(pixel, Math.abs(pagePx.px[i] - nodePx.rgba[i]));
      expect(pixel, `${id}: largest channel difference between the page's canvas and Node's pixels`).toBeLessThanOrEqual(PIXEL_TOL);
      return { id, rel, pixel };
    } finally {
      attr.dispose();
      x.dispose();
    }
  }

  const measured: { step: string; id: string; rel: number; pixel: number }[] = [];
  const timings: Record<string, unknown> = {};

  beforeAll(async () => {
    let t = performance.now();
    await bl.init({ backend: 'cpu' });
    dir = mkdtempSync(join(tmpdir(), 'backlight-app-'));
    await buildApp(dir);
    timings.build = performance.now() - t;
    ({ server, url } = await serveDir(dir));
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    page.on('console', (m) => {
      pageLog.push(`console.${m.type()}: ${m.text()}`);
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => {
      pageLog.push(`pageerror: ${e.message}`);
      consoleErrors.push(`uncaught: ${e.message}`);
    });
    page.on('request', (req) => {
      if (!req.url().startsWith(url) && !req.url().startsWith('data:') && !req.url().startsWith('blob:')) offsite.push(req.url());
    });
    page.on('requestfailed', (req) => failedRequests.push(`${req.url()}: ${req.failure()?.errorText}`));
    page.on('response', (res) => {
      if (res.status() >= 400) failedRequests.push(`${res.url()}: HTTP ${res.status()}`);
    });
    t = performance.now();
    await page.goto(url);
    await settled(150_000);
    timings.firstPass = performance.now() - t;
    timings.firstPassMethods = Object.fromEntries(Object.entries((await appReport()).results).map(([k, v]) => [k, Math.round(v.ms)]));
  }, 200_000);

  afterAll(async () => {
    if (process.env.BACKLIGHT_DEBUG?.split(',').includes('browser')) console.log({ timings, measured }, pageLog.join('\n'));
    await browser?.close();
    await closeServer(server);
    for (const m of models.values()) m.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it('the bundle has no Node built-ins, and the build guard fails on one', async () => {
    const files = await bundleApp();
    expect([...files.keys()]).toContain('main.js');
    const js = [...files].filter(([n]) => n.endsWith('.js')).map(([, b]) => new TextDecoder().decode(b)).join('\n');
    expect(js).not.toMatch(/from\s*["']node:|require\(["']node:|from\s*["'](fs|zlib|stream|util)["']/);
    // the bundled weights travel as data (one chunk per model), not as files the page must find
    expect(js).toContain('safetensorsBase64');
    await expect(build({ stdin: { contents: "import { readFileSync } from 'node:fs'; console.log(readFileSync);", resolveDir: ROOT }, bundle: true, write: false, platform: 'browser', plugins: [browserOnly], logLevel: 'silent' }))
      .rejects.toThrow(/Node built-in 'node:fs'/);
    await expect(build({ stdin: { contents: "import zlib from 'zlib'; console.log(zlib);", resolveDir: ROOT }, bundle: true, write: false, platform: 'browser', plugins: [browserOnly], logLevel: 'silent' }))
      .rejects.toThrow(/Node built-in 'zlib'/);
  });

  it('starts on WebGPU with the first bundled model and a test digit', async () => {
    const r = await appReport();
    expect(r.errors, pageLog.join('\n')).toEqual([]);
    expect(r.adapter?.backend).toBe('webgpu');
    expect(r.model).toBe('digits-cnn');
    // the input is the first 0 of the digits test split, read here from models/data's split
    // directly (not from the file the build wrote), and the page's first sample as the build wrote it
    const test = datasetSplits('digits').test;
    const first0 = Array.from(test.y).indexOf(0);
    expect(r.input).toEqual(Array.from(test.x.subarray(first0 * 64, (first0 + 1) * 64)));
    const digits = sampleSets().find((s) => s.set.name === 'digits')!;
    expect(r.input).toEqual(Array.from(digits.images.subarray(0, 64)));
    const p = r.probabilities!;
    expect(p.length).toBe(10);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    // the page's prediction is the Node model's
    const m = await model('digits-cnn');
    const q = bl.tidy(() => bl.softmax(m.call(bl.tensor(Float32Array.from(r.input!), [1, 1, 8, 8])), -1));
    const want = Array.from(await q.data());
    q.dispose();
    for (let i = 0; i < 10; i++) expect(Math.abs(p[i] - want[i])).toBeLessThan(1e-4);
    expect(r.target).toBe(want.indexOf(Math.max(...want)));
    // the probability bars show it
    expect(await page.locator('#probs li').count()).toBe(10);
    expect(await page.locator('#probs li.predicted .name').textContent()).toBe(String(r.target));
  });

  it(`every method family's heatmap matches Node's CPU result (values within ${VALUE_TOL} of the map's max, pixels within ${PIXEL_TOL}/255)`, async () => {
    const r = await appReport();
    expect(Object.keys(r.results).sort()).toEqual(METHODS.map((m) => m.id).sort());
    for (const m of METHODS) measured.push({ step: 'default', ...(await compare(r, m.id)) });
    // the perturbation methods drove their progress bars to the end
    for (const id of ['occlusion', 'kernel-shap']) {
      const p = r.results[id].progress;
      expect(p.calls, id).toBeGreaterThan(0);
      expect(p.done, id).toBe(p.total);
    }
    const families = new Set(METHODS.map((m) => m.family));
    expect([...families].sort()).toEqual(['cam', 'gradient', 'lrp', 'perturbation']);
  });

  it('switching the backward rule and the LRP composite changes the heatmaps as Node computes them', async () => {
    const before = await appReport();
    // perturbation methods ignore rules: switch them off for this step (and keep the test short)
    for (const id of ['occlusion', 'kernel-shap', 'grad-cam-plus-plus']) await page.locator(`.card[data-method="${id}"] input[type=checkbox]`).uncheck();
    await page.locator('#samples canvas[data-index="4"]').click();
    await page.selectOption('#rule', 'guided');
    await page.selectOption('#composite', 'epsilon-gamma-box');
    let r = await settled();
    expect(r.input).not.toEqual(before.input);
    expect(await page.locator('.card[data-method="occlusion"]').getAttribute('data-state')).toBe('off');
    for (const id of ['saliency', 'integrated-gradients', 'grad-cam', 'lrp']) measured.push({ step: 'guided, epsilon-gamma-box', ...(await compare(r, id)) });
    expect(r.results.saliency.rule).toBe('guided');
    expect(r.results.lrp.composite).toBe('epsilon-gamma-box');

    // the same input under the default rule: guided backprop's map differs from the gradient's
    const guided = r.results.saliency.data;
    await page.selectOption('#rule', 'default');
    r = await settled();
    const plain = r.results.saliency.data;
    const diff = Math.max(...plain.map((v, i) => Math.abs(v - guided[i]))) / Math.max(...plain.map(Math.abs));
    expect(diff, 'guided and plain saliency maps are the same').toBeGreaterThan(0.05);
    await page.selectOption('#rule', 'deconvnet');
    r = await settled();
    measured.push({ step: 'deconvnet', ...(await compare(r, 'saliency')) });
  }, 180_000);

  it('a digit drawn on the pad is classified and explained like in Node', async () => {
    const box = (await page.locator('#pad').boundingBox())!;
    await page.locator('#clear').click();
    // a vertical stroke down the middle: a "1"
    await page.mouse.move(box.x + box.width / 2, box.y + box.height * 0.15);
    await page.mouse.down();
    for (let k = 1; k <= 8; k++) await page.mouse.move(box.x + box.width / 2, box.y + box.height * (0.15 + 0.7 * (k / 8)));
    await page.mouse.up();
    const r = await settled();
    const ink = r.input!;
    expect(Math.max(...ink)).toBeGreaterThan(0.5);
    // the middle columns are inked, the border ones are not
    expect(ink[4 * 8 + 3] + ink[4 * 8 + 4]).toBeGreaterThan(0.5);
    expect(ink[4 * 8 + 0] + ink[4 * 8 + 7]).toBe(0);
    measured.push({ step: 'drawn', ...(await compare(r, 'saliency')) });
    measured.push({ step: 'drawn', ...(await compare(r, 'lrp')) });
    mkdirSync(join(ROOT, 'test-results'), { recursive: true });
    await page.screenshot({ path: join(ROOT, 'test-results', 'app.png'), fullPage: true });

  }, 120_000);

  it('an ONNX model and a PNG picked together: the model is loaded from its bytes, the image decoded at its input size', async () => {
    // a 12 x 12 RGB PNG (the ONNX model's input size, so the browser's resize is the identity)
    const png = new PNG({ width: 12, height: 12 });
    const byte = (k: number, c: number) => (k * 37 + c * 85 + ((k * k) % 23) * 7) % 256;
    for (let k = 0; k < 144; k++) {
      for (let c = 0; c < 3; c++) png.data[4 * k + c] = byte(k, c);
      png.data[4 * k + 3] = 255;
    }
    const pngFile = join(dir, 'pattern.png');
    writeFileSync(pngFile, PNG.sync.write(png));
    await page.locator('#file').setInputFiles([ONNX_FILE, pngFile]);
    const r = await settled();
    expect(r.errors, pageLog.join('\n')).toEqual([]);
    expect(r.model).toBe('resnet_opset13.onnx');
    expect(r.inputShape).toEqual([3, 12, 12]);
    expect(r.probabilities!.length).toBe(5);
    const want = Array.from({ length: 3 * 144 }, (_, i) => byte(i % 144, Math.floor(i / 144)) / 255);
    for (let i = 0; i < want.length; i++) expect(Math.abs(r.input![i] - want[i])).toBeLessThan(1e-6);
    // the page's probabilities are those of the model loaded here from the same file
    const m = await model(r.model!);
    const q = bl.tidy(() => bl.softmax(m.call(bl.tensor(Float32Array.from(r.input!), [1, 3, 12, 12])), -1));
    const p = Array.from(await q.data());
    q.dispose();
    for (let i = 0; i < 5; i++) expect(Math.abs(r.probabilities![i] - p[i])).toBeLessThan(1e-4);
    // the last Relu before global pooling is the CAM layer
    expect(r.results['grad-cam'].camLayer).toBe('/layer1/Relu_1');
    for (const id of ['saliency', 'integrated-gradients', 'grad-cam', 'lrp']) measured.push({ step: 'onnx', ...(await compare(r, id)) });

    await page.screenshot({ path: join(ROOT, 'test-results', 'app-onnx.png'), fullPage: true });
  }, 120_000);

  it('made no console errors, failed requests or requests outside 127.0.0.1', async () => {
    const r = await appReport();
    expect(r.errors).toEqual([]);
    expect(consoleErrors, pageLog.join('\n')).toEqual([]);
    expect(failedRequests).toEqual([]);
    expect(offsite).toEqual([]);
  });
});

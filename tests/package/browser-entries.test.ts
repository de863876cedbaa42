// The browser-safe entries in a real browser (headless Chromium, tests/browser/chromium.ts):
// a bundled model loaded from its weights-as-data module, saliency on the CPU and on WebGPU, and
// heatmapPng encoded through a canvas. The browser's PNG decodes (pngjs, here) to exactly the
// pixels Node's pngjs-encoded PNG holds for the same input; the saliency equals Node's.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import * as bl from '../../engine/index.ts';
import { loadBundled } from '../../models/zoo/index.ts';
import { heatmapPng, saliency } from '../../explain/index.ts';
import { decodePng } from '../../explain/png-node.ts';
import { SKIP_BROWSER, closeServer, launchChromium, serveLocal } from '../browser/chromium.ts';
import type { Server } from 'node:http';

type Run = { adapter: string; saliency: number[]; png: string };

describe.skipIf(SKIP_BROWSER)('browser entries in Chromium', () => {
  let browser: Browser | undefined;
  let server: Server | undefined;
  let url = '';

  beforeAll(async () => {
    const js = (await build({ entryPoints: [fileURLToPath(new URL('./browser/page.ts', import.meta.url))], bundle: true, platform: 'browser', format: 'esm', target: 'es2022', write: false, logLevel: 'silent' })).outputFiles[0].text;
    ({ server, url } = await serveLocal((req, res) => {
      if (req.url === '/page.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(js);
      else res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><script type="module" src="/page.js"></script>');
    }));
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await closeServer(server);
  });

  it('bundled weights as data, saliency (CPU, WebGPU) and a canvas PNG equal to Node\'s', async () => {
    const page = await browser!.newPage();
    const errors: string[] = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    const got = (await page.evaluate(() => (window as unknown as { result: Promise<unknown> }).result)) as { cpu: Run; webgpu: Run };
    expect(errors).toEqual([]);
    expect(got.cpu.adapter).toBe('cpu');
    expect(got.webgpu.adapter).not.toBe('cpu');

    await bl.init({ backend: 'cpu' });
    const model = await loadBundled('digits-cnn');
    const x = bl.mul(bl.add(bl.randn([2, 1, 8, 8], { seed: 7 }), 1), 0.5);
    const s = await saliency(model, x, { target: 3 });
    const node = Array.from(await s.data());
    expect(got.cpu.saliency).toEqual(node);
    expect(got.webgpu.saliency.every((v, i) => Math.abs(v - node[i]) <= 1e-3 * (1 + Math.abs(node[i])))).toBe(true);
    const mine = decodePng(await heatmapPng(s, x));
    const theirs = decodePng(new Uint8Array(Buffer.from(got.cpu.png, 'base64')));
    expect([theirs.width, theirs.height]).toEqual([16, 8]);
    expect(Buffer.from(theirs.data).equals(Buffer.from(mine.data))).toBe(true);
    model.dispose();
  }, 120_000);
});

// The engine in a real browser: tests/browser/entry.ts is bundled with esbuild, served from
// 127.0.0.1 and run in Debian's headless Chromium through playwright-core (tests/browser/chromium.ts
// holds the launch arguments and the server). WebGPU there runs on Chromium's SwiftShader. The GPU
// results must match the float64 CPU backend.
//
// Set BACKLIGHT_CHROMIUM to use another Chromium binary; BACKLIGHT_SKIP_BROWSER=1 skips this file.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from 'esbuild';
import type { Browser } from 'playwright-core';
import type { Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { BrowserReport } from './entry.ts';
import { closeServer, launchChromium, serveLocal, SKIP_BROWSER } from './chromium.ts';

const TOLERANCE = 1e-4;

describe.skipIf(SKIP_BROWSER)('browser (headless Chromium, navigator.gpu)', () => {
  let server: Server | undefined;
  let browser: Browser | undefined;
  let report: BrowserReport;
  const pageLog: string[] = [];

  beforeAll(async () => {
    const bundle = await build({
      entryPoints: [fileURLToPath(new URL('./entry.ts', import.meta.url))],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      write: false,
      // engine/webgpu/device.ts loads these only in Node.
      external: ['webgpu', 'node:*'],
      logLevel: 'silent',
    });
    const js = bundle.outputFiles[0].text;
    const html = '<!doctype html><meta charset="utf-8"><title>backlight browser test</title><script type="module" src="/entry.js"></script>';
    let url: string;
    ({ server, url } = await serveLocal((req, res) => {
      if (req.url === '/entry.js') {
        res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(js);
      } else if (req.url === '/' || req.url === '/index.html') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
      } else {
        res.writeHead(404).end();
      }
    }));

    browser = await launchChromium();
    const page = await browser.newPage();
    page.on('console', (m) => pageLog.push(`console.${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => pageLog.push(`pageerror: ${e.message}`));
    await page.goto(url);
    try {
      await page.waitForFunction(() => window.__backlight?.done === true, null, { timeout: 45_000 });
    } catch (e) {
      throw new Error(`the page did not finish: ${(e as Error).message}\n${pageLog.join('\n')}`);
    }
    report = (await page.evaluate(() => window.__backlight)) as BrowserReport;
    if (process.env.BACKLIGHT_DEBUG?.split(',').includes('browser')) console.log(JSON.stringify(report, null, 1), pageLog.join('\n'));
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await closeServer(server);
  }, 30_000);

  it('runs without errors and reports the WebGPU adapter', () => {
    expect(report.error, `${report.error}\n${pageLog.join('\n')}`).toBeUndefined();
    expect(report.adapter).toBeDefined();
    const a = report.adapter!;
    expect(a.backend).toBe('webgpu');
    // Chromium reveals vendor and architecture ('google', 'swiftshader'); device and
    // description are often empty there (privacy).
    expect(a.vendor.length + a.architecture.length).toBeGreaterThan(0);
  });

  it(`matches the float64 CPU backend within ${TOLERANCE} (relative above 1, absolute below)`, () => {
    expect(report.error).toBeUndefined();
    expect(report.results.length).toBeGreaterThanOrEqual(10);
    // LRP (explain/lrp with its composites and the BatchNorm canonizer) ran in the page too
    expect(report.results.filter((r) => r.name.startsWith('lrp ')).map((r) => r.shape)).toEqual([[2, 2, 7, 7], [2, 2, 7, 7]]);
    const bad = report.results.filter((r) => !r.finite || !(r.maxRel <= TOLERANCE));
    const table = report.results.map((r) => `  ${r.name} [${r.shape}]: max abs ${r.maxAbs.toExponential(2)}, max rel ${r.maxRel.toExponential(2)}${r.finite ? '' : ' NON-FINITE'}`);
    expect(bad, `ops over tolerance:\n${table.join('\n')}`).toEqual([]);
    for (const r of report.results) expect(r.shape.every((d) => d > 0)).toBe(true);
  });
});

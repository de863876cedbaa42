// The engine in a real browser: tests/browser/entry.ts is bundled with esbuild, served from
// 127.0.0.1 (a secure context, so navigator.gpu exists), and run in Debian's headless Chromium
// (/usr/bin/chromium, installed by scripts/setup.sh) through playwright-core. WebGPU there runs
// on Chromium's SwiftShader. The GPU results must match the float64 CPU backend.
//
// Set BACKLIGHT_CHROMIUM to use another Chromium binary; BACKLIGHT_SKIP_BROWSER=1 skips this file.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from 'esbuild';
import { chromium, type Browser } from 'playwright-core';
import { createServer, type Server } from 'node:http';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import type { BrowserReport } from './entry.ts';

const CHROMIUM = process.env.BACKLIGHT_CHROMIUM ?? '/usr/bin/chromium';

// Found by experiment with Debian's chromium 156 in a container without a GPU: only
// --enable-unsafe-webgpu is strictly needed (and a secure-context page: http://127.0.0.1, not
// about:blank); Chromium then picks its SwiftShader adapter by itself. The rest keep a headless
// run quiet and independent of the machine (no sandbox as root, no network, no GPU process
// sandbox, SwiftShader even where a GPU exists).
const CHROMIUM_ARGS = [
  '--enable-unsafe-webgpu',
  '--enable-unsafe-swiftshader',
  '--use-angle=swiftshader',
  '--use-webgpu-adapter=swiftshader',
  '--no-sandbox',
  '--disable-gpu-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

const TOLERANCE = 1e-4;

describe.skipIf(process.env.BACKLIGHT_SKIP_BROWSER === '1')('browser (headless Chromium, navigator.gpu)', () => {
  let server: Server | undefined;
  let browser: Browser | undefined;
  let report: BrowserReport;
  const pageLog: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} not found: run \`bash scripts/setup.sh\` (Debian: apt-get install chromium), set BACKLIGHT_CHROMIUM, or BACKLIGHT_SKIP_BROWSER=1`);
    }
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
    server = createServer((req, res) => {
      if (req.url === '/entry.js') {
        res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(js);
      } else if (req.url === '/' || req.url === '/index.html') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;

    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    const page = await browser.newPage();
    page.on('console', (m) => pageLog.push(`console.${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => pageLog.push(`pageerror: ${e.message}`));
    await page.goto(`http://127.0.0.1:${port}/`);
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
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
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

// The report in a real browser (Debian's headless Chromium through playwright-core): it opens
// with no console errors and no network requests (every image is a data URL and decodes), and the
// DOM holds what the file claims. The report is served from 127.0.0.1 like the other browser tests
// and every request the page makes is recorded; all but the document itself are failures.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import type { Server } from 'node:http';
import { closeServer, launchChromium, serveLocal, SKIP_BROWSER } from './chromium.ts';
import { renderReport } from '../../explain/report/index.ts';
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';
import { browserDoc as doc, browserDocProbabilities as probs } from '../examples/report-doc.ts';
import { encodePng } from '../../explain/heatmap.ts';

describe.skipIf(SKIP_BROWSER)('report in headless Chromium', () => {
  let browser: Browser | undefined;
  let server: Server | undefined;
  const pages: Record<string, string> = {};
  let base = '';

  beforeAll(async () => {
    pages['/png.html'] = await renderReport(doc(), { encodePng });
    pages['/svg.html'] = await renderReport(doc()); // no encoder: inline SVG rasters
    // The renderer itself in the page: bundled for the browser (no Node built-in may be needed)
    // and given a canvas PNG encoder of its own.
    const here = fileURLToPath(new URL('.', import.meta.url));
    const bundle = await build({
      stdin: {
        contents: `import { renderReport } from '../../explain/report/index.ts';
import { browserDoc } from '../examples/report-doc.ts';
const canvasPng = async (rgba, w, h) => {
  const c = new OffscreenCanvas(w, h);
  c.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(rgba), w, h), 0, 0);
  return new Uint8Array(await (await c.convertToBlob({ type: 'image/png' })).arrayBuffer());
};
renderReport(browserDoc(), { encodePng: canvasPng }).then((html) => { window.__report = html; }, (e) => { window.__report = 'error: ' + e.message; });`,
        resolveDir: here, sourcefile: 'report-entry.js', loader: 'js',
      },
      bundle: true, format: 'esm', platform: 'browser', target: 'es2022', write: false, logLevel: 'silent',
      external: ['webgpu'],
    });
    pages['/render.js'] = bundle.outputFiles[0].text;
    pages['/render.html'] = '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>render</title><script type="module" src="/render.js"></script>';
    const s = await serveLocal((req, res) => {
      const body = pages[req.url ?? ''];
      if (body) res.writeHead(200, { 'content-type': `${req.url!.endsWith('.js') ? 'text/javascript' : 'text/html'}; charset=utf-8` }).end(body);
      else res.writeHead(404).end();
    });
    server = s.server;
    base = s.url.replace(/\/$/, '');
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await closeServer(server);
  });

  for (const name of ['/png.html', '/svg.html']) {
    it(`${name}: opens with no console output, no requests, and every image decoded`, async () => {
      const page = await browser!.newPage();
      const log: string[] = [];
      const requests: string[] = [];
      page.on('console', (m) => log.push(`console.${m.type()}: ${m.text()}`));
      page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
      page.on('requestfailed', (r) => log.push(`requestfailed: ${r.url()}`));
      page.on('request', (r) => requests.push(r.url()));
      await page.goto(base + name, { waitUntil: 'load' });
      const dom = await page.evaluate(() => {
        const imgs = Array.from(document.images);
        return {
          images: imgs.length,
          decoded: imgs.filter((i) => i.complete && i.naturalWidth > 0).length,
          pixelated: imgs.filter((i) => getComputedStyle(i).imageRendering === 'pixelated').length,
          widths: imgs.map((i) => i.getBoundingClientRect().width),
          sections: Array.from(document.querySelectorAll("section")).map((s) => s.className),
          colourBars: document.querySelectorAll('svg.cbar').length,
          waterfalls: document.querySelectorAll('svg.waterfall').length,
          beeswarms: document.querySelectorAll('svg.beeswarm circle').length,
          warn: document.querySelector('.warn[data-completeness]')?.textContent ?? '',
          text: document.body.innerText,
        };
      });
      await page.close();
      expect(log).toEqual([]);
      // data: URLs are not network requests, but Chromium reports them as requests; none may be anything else
      expect(requests.filter((u) => u !== base + name && !u.startsWith('data:'))).toEqual([]);
      expect(dom.images).toBe(4); // input + 3 maps
      expect(dom.decoded).toBe(4);
      expect(dom.pixelated).toBe(4);
      for (const w of dom.widths) expect(w).toBeGreaterThanOrEqual(150); // readable, not 12 px
      expect(dom.sections).toEqual(['images', 'tabular', 'table']);
      expect(dom.colourBars).toBe(3);
      expect(dom.waterfalls).toBe(1);
      expect(dom.beeswarms).toBe(20 * 3);
      for (const p of probs) expect(dom.text).toContain(`${(100 * p).toFixed(1)}%`);
      // sum of sin(k / 5) over the 432 elements vs f(x) - f(0) = 3
      let sum = 0;
      for (let k = 0; k < 3 * 12 * 12; k++) sum += Math.fround(Math.sin(k / 5));
      const rel = Math.abs(sum - 3) / 3;
      expect(rel).toBeGreaterThan(0.05);
      expect(dom.warn).toContain(`(${(100 * rel).toFixed(1)}%)`);
    });
  }

  it('renders in the page with a canvas encoder: the same document as in Node, images aside', async () => {
    const page = await browser!.newPage();
    const log: string[] = [];
    page.on('console', (m) => log.push(`console.${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
    await page.goto(base + '/render.html');
    await page.waitForFunction(() => typeof (window as unknown as { __report?: string }).__report === 'string', null, { timeout: 30_000 });
    const inPage = await page.evaluate(() => (window as unknown as { __report: string }).__report);
    await page.close();
    expect(log).toEqual([]);
    expect(inPage.startsWith('error:') ? inPage : 'ok').toBe('ok');
    // PNG bytes differ between encoders (compression); everything else must be identical, and the
    // colour-bar gradient ids restart per render only within a process, so they are normalised too
    const norm = (h: string) => h.replace(/data:image\/png;base64,[^"]+/g, 'PNG').replace(/\b(cb|bs)\d+\b/g, '$1#');
    const pngCount = (h: string) => (h.match(/data:image\/png;base64,/g) ?? []).length;
    expect(pngCount(inPage)).toBe(4);
    expect(norm(inPage)).toBe(norm(pages['/png.html']));
  });
});

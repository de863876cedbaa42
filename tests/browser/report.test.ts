// The report in a real browser (Debian's headless Chromium through playwright-core): it opens
// with no console errors and no network requests (every image is a data URL and decodes), and the
// DOM holds what the file claims. The report is served from 127.0.0.1 like the other browser tests
// and every request the page makes is recorded; all but the document itself are failures.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import type { Server } from 'node:http';
import { closeServer, launchChromium, serveLocal, SKIP_BROWSER } from './chromium.ts';
import { renderReport, type ReportDocument } from '../../explain/report/index.ts';
import { encodePng } from '../../explain/heatmap.ts';

const softmax = (z: number[]) => { const m = Math.max(...z); const e = z.map((v) => Math.exp(v - m)); const s = e.reduce((a, b) => a + b, 0); return e.map((v) => v / s); };
const probs = softmax([0.3, 1.7, -0.4, 0.9]);

function doc(): ReportDocument {
  const n = 12;
  const rgb = Float32Array.from({ length: 3 * n * n }, (_, k) => ((k * 37) % 101) / 100);
  const signed = Float32Array.from({ length: 3 * n * n }, (_, k) => Math.sin(k / 5));
  return {
    title: 'browser report test', meta: [{ label: 'model', value: 'synthetic' }],
    sections: [
      {
        kind: 'images', title: 'Images', classNames: ['cat', 'wolf', 'husky', 'fox'],
        methods: [
          { name: 'Integrated gradients', sign: 'signed', steps: 8, baseline: 'zeros' },
          { name: 'Saliency', sign: 'absolute', overlay: true },
          { name: 'Grad-CAM', sign: 'positive', layer: 'features', upsampled: false },
        ],
        items: [{
          label: 'an RGB item', input: { values: rgb, shape: [3, n, n] },
          prediction: { probabilities: probs, trueClass: 2, uncertainty: { method: 'ensemble of 3', std: [0.02, 0.1, 0.05, 0.01], entropy: 1.1 } },
          maps: [{ values: signed, shape: [3, n, n], completeness: { fx: 3, fBaseline: 0 } }, { values: signed, shape: [3, n, n] }, { values: [0, 1, 2, 3, 4, 5, 6, 7, 8], shape: [3, 3] }],
        }],
      },
      {
        kind: 'tabular', title: 'Tabular', method: { name: 'KernelSHAP', sign: 'signed' }, featureNames: ['age', 'dose', 'weight'], outputName: 'logit',
        rows: Array.from({ length: 20 }, (_, i) => ({ values: [Math.sin(i), 0.3 * Math.cos(i), 0.01 * i], featureValues: [i, i % 3, 20 - i], baseValue: 0.5 })),
      },
      { kind: 'table', title: 'Scores', columns: ['method', 'AUC'], rows: [['IG', 0.1], ['random', 0.3]], best: [null, 'min'] },
    ],
  };
}

describe.skipIf(SKIP_BROWSER)('report in headless Chromium', () => {
  let browser: Browser | undefined;
  let server: Server | undefined;
  const pages: Record<string, string> = {};
  let base = '';

  beforeAll(async () => {
    pages['/png.html'] = await renderReport(doc(), { encodePng });
    pages['/svg.html'] = await renderReport(doc()); // no encoder: inline SVG rasters
    const s = await serveLocal((req, res) => {
      const body = pages[req.url ?? ''];
      if (body) res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(body);
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
});

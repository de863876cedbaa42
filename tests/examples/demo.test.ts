// The main job, reduced (runDemo({ quick: true })): the report is written where the result says,
// is well formed and self-contained, has every section the demo lists, and states figures that
// are recomputed here on the float64 CPU backend, independently of the demo's own run (the first
// shapes test image's probabilities; spurious-cnn's wrong answers on flipped backgrounds).
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as bl from '../../engine/index.ts';
import { datasetSplits } from '../../models/data/index.ts';
import { loadBundled } from '../../models/zoo/index.ts';
import { runDemo } from '../../examples/demo.ts';
import { checkWellFormed, externalReferences } from './html-check.ts';

const unescape = (s: string) => s.replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

describe('examples/demo.ts (quick)', () => {
  it('writes a self-contained report with every section', { timeout: 600_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'backlight-demo-'));
    const lines: string[] = [];
    try {
      const r = await runDemo({ quick: true, outDir: dir, print: (l) => lines.push(l) });
      expect(r.reportPath).toBe(join(dir, 'report.html'));
      expect(existsSync(r.reportPath)).toBe(true);
      expect(r.reportUrl).toBe(`file://${r.reportPath}`);
      expect(lines.at(-1)).toContain(r.reportUrl);
      const html = readFileSync(r.reportPath, 'utf8');
      checkWellFormed(html);
      expect(externalReferences(html)).toEqual([]);

      const h2 = [...html.matchAll(/<h2>([^<]*)<\/h2>/g)].map((m) => unescape(m[1]));
      expect(h2).toEqual(r.sections);
      for (const want of [/every method|where is the evidence/i, /why was this a wolf/i, /relevance falls on the object/i, /trust/i, /breast-cancer-mlp: which measurements/i, /MC dropout/i, /calibration|honest/i]) {
        expect(h2.some((t) => want.test(t)), `a section matching ${want}`).toBe(true);
      }
      // every method family is there, with a caption
      for (const name of ['Saliency', 'Integrated gradients', 'DeepLIFT (rescale)', 'Guided backprop', 'Grad-CAM', 'Grad-CAM++', 'LRP', 'Occlusion', 'KernelSHAP']) {
        expect(html).toContain(`<dt>${name}</dt>`);
      }
      // image sections: every picture decodes as a PNG data URL; completeness stated for IG and DeepLIFT
      expect((html.match(/src="data:image\/png;base64,/g) ?? []).length).toBe(2 * (1 + 9) + 4 * (1 + 4));
      expect((html.match(/data-completeness=/g) ?? []).length).toBe(2 * 2 + 4);
      // DeepLIFT's rescale rule is exact on this network: its checks pass
      expect(html).toMatch(/<svg class="waterfall"/);
      expect(html).toMatch(/<svg class="beeswarm"/);
      expect(html).not.toMatch(/the values do not add up/);

      // Independent figures, on the CPU backend with fresh copies of the models.
      const cpu = await bl.init({ backend: 'cpu', setDefault: false });
      const prev = bl.getBackend();
      bl.setDefaultBackend(cpu);
      try {
        const shapes = datasetSplits('shapes').test;
        const m = await loadBundled('shapes-cnn');
        const logits = await bl.tidy(() => m.call(bl.tensor(shapes.x.subarray(0, 32 * 32), [1, 1, 32, 32]))).data();
        const mx = Math.max(...logits);
        const e = Array.from(logits, (v) => Math.exp(v - mx));
        const s = e.reduce((a, b) => a + b, 0);
        const top = e.indexOf(Math.max(...e));
        expect(html).toContain(`<b>${shapes.classNames![top]}</b> (${((100 * e[top]) / s).toFixed(1)}%)`);
        m.dispose();
        // spurious-cnn on the first flipped-background images: the report says how many it gets right
        const rev = datasetSplits('spurious').reversed!;
        const sm = await loadBundled('spurious-cnn');
        const lg = await bl.tidy(() => sm.call(bl.tensor(rev.x.subarray(0, 100 * 32 * 32), [100, 1, 32, 32]))).data();
        let right = 0;
        for (let k = 0; k < 100; k++) if ((lg[2 * k + 1] > lg[2 * k] ? 1 : 0) === rev.y[k]) right++;
        expect(html).toContain(`${((100 * right) / 100).toFixed(1)}% when every background belongs to the other class`);
        sm.dispose();
      } finally {
        bl.setDefaultBackend(prev);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

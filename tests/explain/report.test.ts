// The report renderer: the HTML is well formed, self-contained, and states what was computed.
// Every expected figure is recomputed here from the document's own numbers (softmax of logits,
// completeness from the raw attribution, the colour scale from the map's extremes), and the
// heatmap pixels are decoded back from the PNG to check where 0 and the extremes land.
import { describe, expect, it } from 'vitest';
import { PNG } from 'pngjs';
import { renderReport, waterfallSteps, beeswarmOrder, safeSvg, methodCaption, type ReportDocument, type ImageSection } from '../../explain/report/index.ts';
import { colorOf, encodePng } from '../../explain/heatmap.ts';
import { checkWellFormed, externalReferences } from '../examples/html-check.ts';

const softmax = (z: number[]) => { const m = Math.max(...z); const e = z.map((v) => Math.exp(v - m)); const s = e.reduce((a, b) => a + b, 0); return e.map((v) => v / s); };

/** The PNG data URLs of the report, in document order, decoded to RGBA. */
function pngs(html: string): { w: number; h: number; data: Uint8Array }[] {
  return [...html.matchAll(/src="data:image\/png;base64,([^"]+)"/g)].map((m) => {
    const p = PNG.sync.read(Buffer.from(m[1], 'base64'));
    return { w: p.width, h: p.height, data: new Uint8Array(p.data) };
  });
}
const px = (img: { w: number; data: Uint8Array }, x: number, y: number) => Array.from(img.data.subarray(4 * (y * img.w + x), 4 * (y * img.w + x) + 3));
const ENTITIES: Record<string, string> = { minus: '\u2212', amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'", times: '\u00d7', plusmn: '\u00b1', ndash: '\u2013' };
/** The visible text of the body, entities decoded. */
const text = (html: string) => html.replace(/^[\s\S]*<body>/, '').replace(/<[^>]+>/g, ' ').replace(/&(#?\w+);/g, (m, e: string) => ENTITIES[e] ?? m).replace(/\s+/g, ' ');

// A 4 x 4 grey input and signed 3-channel-free maps with known extremes.
const logits = [2.0, 0.5, -1.0];
const probs = softmax(logits);
const signedMap = [-1, 0, 0.5, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]; // scale must be [-3, 3]
const fx = 2.4, fb = 0.4; // f(x) - f(baseline) = 2
const igBad = Float32Array.from({ length: 16 }, (_, k) => (k === 0 ? 1.5 : 0)); // sum 1.5 vs 2: 25% off
const igGood = Float32Array.from({ length: 16 }, (_, k) => (k < 4 ? 0.5005 : 0)); // sum 2.002: 0.1% off

function doc(): ReportDocument {
  const section: ImageSection = {
    kind: 'images', title: 'Digits', classNames: ['zero', 'one', 'two'],
    methods: [
      { name: 'Integrated gradients', sign: 'signed', steps: 16, baseline: 'zeros', question: 'Which pixels moved the score from the baseline?' },
      { name: 'Grad-CAM', sign: 'positive', layer: 'features.3', upsampled: false },
      { name: 'LRP', sign: 'signed', rules: 'epsilon-plus-flat', canonizers: 'BatchNorm folded' },
    ],
    items: [
      {
        label: 'item A', input: { values: Float32Array.from({ length: 16 }, (_, k) => k / 15), shape: [1, 4, 4] },
        prediction: { probabilities: probs, trueClass: 0, uncertainty: { method: 'MC dropout, 8 samples', std: [0.05, 0.04, 0.01], entropy: 0.61, mutualInformation: 0.02 } },
        maps: [{ values: igBad, shape: [1, 4, 4], completeness: { fx, fBaseline: fb } }, { values: [0, 1, 2, 4], shape: [2, 2] }, { values: signedMap, shape: [4, 4] }],
      },
      {
        label: 'item B', input: { values: Float32Array.from({ length: 3 * 16 }, (_, k) => (k < 16 ? 1 : 0)), shape: [3, 4, 4] }, // pure red
        prediction: { probabilities: probs, target: 2 },
        maps: [{ values: igGood, shape: [1, 4, 4], completeness: { fx, fBaseline: fb } }, null, null],
      },
    ],
  };
  return {
    title: 'Report <test> & "quotes"', subtitle: 'sub', meta: [{ label: 'adapter', value: 'cpu' }],
    sections: [
      section,
      {
        kind: 'tabular', title: 'Tabular', method: { name: 'KernelSHAP', sign: 'signed', samples: 512 }, outputName: 'logit',
        featureNames: ['a', 'b', 'c', 'd'],
        rows: [
          { label: 'patient 1', values: [0.5, -0.25, 0.125, 0.0625], featureValues: [1, 2, 3, 4], baseValue: 1, prediction: 1.4375 },
          { label: 'patient 2', values: [0.1, -0.2, 0.3, -0.4], featureValues: [0, 1, 0, 1], baseValue: 1, prediction: 2 }, // adds to 0.8
        ],
        waterfall: [0, 1], maxDisplay: 3,
      },
      { kind: 'table', title: 'Scores', columns: ['method', 'deletion AUC', 'mass'], rows: [['IG', 0.125, 0.5], ['random', 0.25, 0.75]], best: [null, 'min', 'max'] },
      { kind: 'text', title: 'Notes', paragraphs: ['a <b>not bold</b> paragraph'] },
      { kind: 'figure', title: 'Fig', svg: '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect id="r" width="5" height="5"/><use href="#r"/></svg>' },
    ],
  };
}

describe('renderReport', () => {
  it('is well formed, self-contained and escapes text', async () => {
    const html = await renderReport(doc(), { encodePng });
    expect(checkWellFormed(html).elements).toBeGreaterThan(100);
    expect(externalReferences(html)).toEqual([]);
    expect(html).toContain('<title>Report &lt;test&gt; &amp; &quot;quotes&quot;</title>');
    expect(html).toContain('a &lt;b&gt;not bold&lt;/b&gt; paragraph');
    expect(html).not.toMatch(/<script/i);
  });

  it('shows the probabilities, the prediction and the uncertainty', async () => {
    const t = text(await renderReport(doc(), { encodePng }));
    for (const p of probs) expect(t).toContain(`${(100 * p).toFixed(1)}%`);
    expect(t).toContain(`predicted zero (${(100 * probs[0]).toFixed(1)}%), true class zero`);
    expect(t).toContain('maps explain two'); // item B's target differs from its prediction
    expect(t).toContain('MC dropout, 8 samples: entropy 0.61 nats, mutual information 0.02 nats');
  });

  it('flags a large completeness error and passes a small one, with the figures computed from the map', async () => {
    const html = await renderReport(doc(), { encodePng });
    const marks = [...html.matchAll(/<span class="(warn|ok)" data-completeness="([^"]+)">([^<]*)/g)];
    expect(marks.length).toBe(2);
    const relBad = Math.abs(1.5 - (fx - fb)) / Math.abs(fx - fb);
    const relGood = Math.abs(4 * Math.fround(0.5005) - (fx - fb)) / Math.abs(fx - fb);
    expect(marks[0][1]).toBe('warn');
    expect(Number(marks[0][2])).toBeCloseTo(relBad, 12);
    expect(marks[0][3]).toContain(`(${(100 * relBad).toFixed(1)}%)`);
    expect(marks[1][1]).toBe('ok');
    expect(Number(marks[1][2])).toBeCloseTo(relGood, 6);
  });

  it('colours signed maps on a scale symmetric about 0, with ticks at its values', async () => {
    const html = await renderReport(doc(), { encodePng });
    const imgs = pngs(html);
    // order: item A input, IG, Grad-CAM, LRP; item B input, IG
    expect(imgs.length).toBe(6);
    const lrp = imgs[3];
    expect([lrp.w, lrp.h]).toEqual([4, 4]);
    expect(px(lrp, 1, 0)).toEqual([255, 255, 255]);                 // 0: white, the centre
    expect(px(lrp, 3, 0)).toEqual(colorOf(1, 'bwr'));               // +3 = +max: full red
    expect(px(lrp, 0, 0)).toEqual(colorOf((-1 + 3) / 6, 'bwr'));    // -1 on [-3, 3]
    expect(px(lrp, 3, 3)).toEqual(colorOf((2 + 3) / 6, 'bwr'));
    // the colour bar's tick labels of that map: -3, -1.5, 0, 1.5, 3
    const bars = [...html.matchAll(/<svg class="cbar"[\s\S]*?<\/svg>/g)].map((m) => [...m[0].matchAll(/class="tick">([^<]*)</g)].map((t) => t[1]));
    expect(bars[2]).toEqual(['-3', '-1.5', '0', '1.5', '3']);
    // Grad-CAM (positive, [0, 4]): ticks 0, 2, 4 and its 2 x 2 map kept at its own resolution
    expect(bars[1]).toEqual(['0', '2', '4']);
    expect([imgs[2].w, imgs[2].h]).toEqual([2, 2]);
    expect(px(imgs[2], 1, 1)).toEqual(colorOf(1, 'inferno'));
    expect(px(imgs[2], 0, 0)).toEqual(colorOf(0, 'inferno'));
  });

  it('renders grey inputs as grey and RGB inputs in colour', async () => {
    const imgs = pngs(await renderReport(doc(), { encodePng }));
    expect(px(imgs[0], 0, 0)).toEqual([0, 0, 0]);
    expect(px(imgs[0], 3, 3)).toEqual([255, 255, 255]);
    const g = Math.round(255 * (5 / 15));
    expect(px(imgs[0], 1, 1)).toEqual([g, g, g]);
    expect(px(imgs[4], 2, 2)).toEqual([255, 0, 0]);
  });

  it('captions say what is shown', async () => {
    const t = text(await renderReport(doc(), { encodePng }));
    expect(t).toContain('Which pixels moved the score from the baseline?');
    expect(t).toContain('Signed: red is evidence for the explained class');
    expect(t).toContain('16 steps, baseline zeros');
    expect(t).toContain('Layer features.3, at the layer\'s resolution');
    expect(t).toContain('Rules epsilon-plus-flat, canonizers BatchNorm folded');
    expect(methodCaption({ name: 's', sign: 'absolute' }, 3)).toContain('The 3 input channels are absolute values summed over channels');
    expect(methodCaption({ name: 's', sign: 'signed' }, 3)).toContain('summed over channels (signed)');
    expect(methodCaption({ name: 's', sign: 'signed' }, 1)).not.toContain('channels are');
    // tabular plots have no colour bar: their caption does not promise one
    expect(methodCaption({ name: 'k', sign: 'signed', samples: 64 }, 1, 'tabular')).toBe('64 samples.');
    expect(t).toContain("512 samples. Red pushes logit up, blue down.");
  });

  it('checks that a waterfall adds up and aggregates the smallest features', async () => {
    const t = text(await renderReport(doc(), { encodePng }));
    expect(t).toContain('E[f(x)] + sum of values = 1.438, f(x) = 1.438'); // 1 + 0.4375 (4 significant digits)
    expect(t).toMatch(/E\[f\(x\)\] \+ sum of values = 0\.8, f\(x\) = 2 \(off by 1\.2: the values do not add up\)/);
    expect(waterfallSteps([0.1, -0.5, 0.3, 0.05], ['a', 'b', 'c', 'd'], 3)).toEqual([
      { label: 'b', value: -0.5 }, { label: 'c', value: 0.3 }, { label: '2 other features', value: 0.1 + 0.05 },
    ]);
    expect(beeswarmOrder([{ values: [1, -3, 0] }, { values: [-1, 1, 0.5] }], 3).map((o) => o.index)).toEqual([1, 0, 2]);
  });

  it('marks the best row per column', async () => {
    const html = await renderReport(doc(), { encodePng });
    expect(html).toContain('<td class="num"><b>0.125</b></td>');
    expect(html).toContain('<td class="num"><b>0.750</b></td>');
    expect(html).toContain('<td class="num">0.250</td>');
  });

  it('without an encoder, rasters become exact inline SVG', async () => {
    const html = await renderReport(doc());
    expect(pngs(html)).toEqual([]);
    const svgs = [...html.matchAll(/src="data:image\/svg\+xml;base64,([^"]+)"/g)].map((m) => Buffer.from(m[1], 'base64').toString());
    expect(svgs.length).toBe(6);
    // the LRP map's first row: -1, 0, 0.5, +3 as four rectangles of their colours
    const hex = (c: number[]) => `#${c.map((v) => v.toString(16).padStart(2, '0')).join('')}`;
    expect(svgs[3]).toContain(`<rect x="0" y="0" width="1" height="1" fill="${hex(colorOf(2 / 6, 'bwr'))}"/><rect x="1" y="0" width="1" height="1" fill="#ffffff"/>`);
    expect(externalReferences(html)).toEqual([]);
  });

  it('refuses what would break the promise or the layout', async () => {
    const d = doc();
    (d.sections[0] as ImageSection).items[0].maps.pop();
    await expect(renderReport(d)).rejects.toThrow(/item 0: 2 maps for 3 methods/);
    const e = doc();
    (e.sections[0] as ImageSection).items[0].input = { dataUrl: 'https://example.com/x.png', width: 4, height: 4 };
    await expect(renderReport(e)).rejects.toThrow(/data:image/);
    expect(() => safeSvg('<svg><script>alert(1)</script></svg>')).toThrow(/scripts/);
    expect(() => safeSvg('<svg><image href="http://x/y.png"/></svg>')).toThrow();
    expect(() => safeSvg('<svg><use href="http://x/y.svg#a"/></svg>')).toThrow(/own elements/);
    expect(() => safeSvg('<svg><rect style="fill:url(http://x)"/></svg>')).toThrow(/own elements/);
    expect(safeSvg('<svg xmlns="http://www.w3.org/2000/svg"><use href="#a"/></svg>')).toBe('<svg><use href="#a"/></svg>');
    const f = doc();
    (f.sections[0] as ImageSection).items[0].maps[1] = { values: [1, 2, 3], shape: [2, 2] };
    await expect(renderReport(f)).rejects.toThrow(/\[2, 2\] needs 4 values, got 3/);
  });
});

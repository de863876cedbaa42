// compareExplainers: every method scored by every metric. The checks: on the spurious
// background set the metrics rank an explainer that highlights the object above a random one, and
// show that spurious-cnn's explanations fall on the background (unlike shapes-cnn's). CPU backend.
import { beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import * as ex from '../../explain/index.ts';
import { loadBundled } from '../../models/zoo/index.ts';
import { datasetSplits } from '../../models/data/index.ts';

beforeAll(async () => {
  await bl.init({ backend: 'cpu' });
});

async function setup(model: string, data: string, split: string, n: number) {
  const m = await loadBundled(model);
  const d = (datasetSplits(data) as unknown as Record<string, { x: Float32Array; masks: Float32Array }>)[split];
  const per = 32 * 32;
  const x = bl.tensor(d.x.slice(0, n * per), [n, 1, 32, 32]);
  const masks = { data: d.masks.slice(0, n * per), shape: [n, 32, 32] };
  return { m, x, masks };
}

describe('compareExplainers', () => {
  it("spurious-cnn: the object-highlighting reference beats random, and the model's own explanations sit on the background", async () => {
    const n = 6;
    const metrics = ['relevance-mass', 'pointing-game'];
    const methods = (masks: { data: Float32Array; shape: number[] }): Record<string, ex.ComparedExplainer> => ({
      'ground-truth': async (_m, x) => bl.tensor(masks.data, [x.shape[0], 1, 32, 32], x.backend),
      random: ex.randomExplainer(1),
      lrp: (mm, x, t) => ex.lrp(mm, x, { target: t }),
      'integrated-gradients': (mm, x, t) => ex.integratedGradients(mm, x, { target: t, steps: 8 }),
    });
    const sp = await setup('spurious-cnn', 'spurious', 'heldout', n);
    const rs = await ex.compareExplainers(sp.m, sp.x, { masks: sp.masks, metrics, methods: methods(sp.masks) });
    const sh = await setup('shapes-cnn', 'shapes', 'test', n);
    const rh = await ex.compareExplainers(sh.m, sh.x, { masks: sh.masks, metrics, methods: methods(sh.masks) });
    for (const [name, r] of [['spurious-cnn', rs], ['shapes-cnn', rh]] as const) {
      console.log(`${name}: relevance mass / pointing game per method`);
      for (const [k, v] of Object.entries(r.methods)) console.log(`  ${k.padEnd(22)} ${v['relevance-mass'].toFixed(3)} / ${v['pointing-game'].toFixed(3)}`);
    }
    expect(rs.methods['ground-truth']['relevance-mass']).toBe(1);
    expect(rs.methods['ground-truth']['relevance-mass']).toBeGreaterThan(rs.methods.random['relevance-mass'] + 0.5);
    expect(rs.higherIsBetter['relevance-mass']).toBe(true);
    // the shortcut: far less relevance on the object for spurious-cnn than for shapes-cnn
    for (const k of ['lrp', 'integrated-gradients']) {
      expect(rs.methods[k]['relevance-mass']).toBeLessThan(0.5 * rh.methods[k]['relevance-mass']);
      expect(rh.methods[k]['relevance-mass']).toBeGreaterThan(rh.methods.random['relevance-mass']);
    }
    expect(rs.perItem.lrp['relevance-mass']).toHaveLength(n);
  });

  it('deletion curves come back for plots; bad metric choices are errors naming the metric', async () => {
    const m = await loadBundled('digits-cnn');
    const d = datasetSplits('digits').test;
    const x = bl.tensor(d.x.slice(0, 3 * 64), [3, 1, 8, 8]);
    const r = await ex.compareExplainers(m, x, { metrics: ['deletion', 'sparseness'], methods: { saliency: (mm, xx, t) => ex.saliency(mm, xx, { target: t }) } });
    expect(r.curves.saliency.deletion).toHaveLength(21);
    expect(r.curves.saliency.deletion[0]).toBeGreaterThan(r.curves.saliency.deletion[20]);
    expect(ex.applicableMetrics(m, false)).not.toContain('relevance-mass');
    expect(ex.applicableMetrics((t: bl.Tensor) => m.call(t), false)).not.toContain('randomisation');
    const methods = { s: (mm: ex.Model, xx: bl.Tensor, t: number[]) => ex.saliency(mm, xx, { target: t }) };
    await expect(ex.compareExplainers(m, x, { metrics: ['delete'], methods })).rejects.toThrow(/unknown metric 'delete'; metrics: deletion/);
    await expect(ex.compareExplainers(m, x, { metrics: ['pointing-game'], methods })).rejects.toThrow(/'pointing-game' needs ground-truth masks/);
    await expect(ex.compareExplainers((t: bl.Tensor) => m.call(t), x, { metrics: ['randomisation'], methods })).rejects.toThrow(/'randomisation' randomises a backlight Module/);
  });
});

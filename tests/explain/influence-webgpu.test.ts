// Influence functions, TracIn and the prototype explanation on WebGPU (float32) against the float64
// CPU backend with the same weights, and no live GPU buffers left behind. Small cases (software
// Vulkan in CI): prototype-digits, 120 training digits, the prototypes as the parameters.
import { afterAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import type { Backend } from '../../engine/index.ts';
import * as ex from '../../explain/index.ts';
import { datasetSplits, subset } from '../../models/data/index.ts';
import { loadBundled } from '../../models/zoo/index.ts';
import { expectClose } from '../helpers.ts';

const s = datasetSplits('digits');
const train = subset(s.train, Array.from({ length: 120 }, (_, i) => i));
const test = subset(s.test, [3, 11]);

async function run() {
  const m = await loadBundled('prototype-digits');
  const inf = await ex.influence(m, train, test, { params: ['prototypes'] });
  const lissa = await ex.influence(m, train, test, { params: ['prototypes'], solver: 'lissa', lissa: { depth: 30, batchSize: 40, seed: 2 } });
  const tr = await ex.tracIn([m, m], [0.5, 0.25], train, test, { params: ['prototypes', 'embedding.3'] });
  const x = bl.tensor(test.x, [2, 1, 8, 8]);
  const e = await ex.explainByPrototypes(m, x, { k: 3 });
  x.dispose();
  m.dispose();
  return { inf, lissa, tr, e };
}

let gpu: Backend | undefined;
afterAll(() => gpu?.destroy());

describe('influence on WebGPU vs the CPU backend', () => {
  it('influence (CG, LiSSA), TracIn and explainByPrototypes agree to float32 rounding; no live buffers left', async () => {
    const cpu = await bl.init({ backend: 'cpu' });
    const c = await run();
    cpu.destroy();
    gpu = await bl.init({ backend: 'webgpu' });
    const before = gpu.memory().liveBuffers;
    const g = await run();
    expect(gpu.memory().liveBuffers).toBe(before);
    for (let j = 0; j < 2; j++) {
      const scale = Math.max(...c.inf[j].map(Math.abs));
      expectClose(g.inf[j], c.inf[j], 1e-4, 1e-4 * scale, `influence, test row ${j}`);
      expectClose(g.lissa[j], c.lissa[j], 1e-4, 1e-4 * Math.max(...c.lissa[j].map(Math.abs)), `LiSSA, test row ${j}`);
      expectClose(g.tr[j], c.tr[j], 1e-4, 1e-4 * Math.max(...c.tr[j].map(Math.abs)), `TracIn, test row ${j}`);
      expect(ex.spearman(g.inf[j], c.inf[j])).toBeGreaterThan(0.999);
      expect(g.e.items[j].top.map((h) => h.prototype)).toEqual(c.e.items[j].top.map((h) => h.prototype));
      expectClose(g.e.attention[j], c.e.attention[j], 1e-5, 1e-6, `attention, item ${j}`);
    }
  }, 120_000);
});

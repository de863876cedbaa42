// Bundled for the browser by tests/package/browser-entries.test.ts: the package's browser-safe
// entries (as a bundler resolves them) in a real Chromium. The bundled model's weights come as
// data (no file system), the PNG from a canvas; WebGPU is Chromium's (SwiftShader).
import * as bl from '../../../engine/index.ts';
import { loadBundled } from '../../../models/zoo/index.ts';
import { heatmapPng, saliency } from '../../../explain/index.ts';

async function explain(backend: 'cpu' | 'webgpu') {
  const b = await bl.init({ backend });
  const model = await loadBundled('digits-cnn');
  const x = bl.mul(bl.add(bl.randn([2, 1, 8, 8], { seed: 7 }), 1), 0.5);
  const s = await saliency(model, x, { target: 3 });
  const png = await heatmapPng(s, x);
  return { adapter: b.info.adapter ?? b.info.backend, saliency: Array.from(await s.data()), png: btoa(String.fromCharCode(...png)) };
}

(window as unknown as { result: Promise<unknown> }).result = (async () => ({ cpu: await explain('cpu'), webgpu: await explain('webgpu') }))();

// Run by tests/package/pack.test.ts with plain `node` in a project that installed the packed
// tarball: the package's entries import as compiled JavaScript, a bundled model runs forward and
// saliency on the CPU and on WebGPU, and a heatmap PNG comes out. Prints one JSON line.
import * as bl from 'backlight';
import { loadBundled, listModels } from 'backlight/models/zoo';
import * as ex from 'backlight/explain';
import { bundledWeights } from 'backlight/weights';
import { decodePng, readBundledWeights } from 'backlight/node';

const out = { models: listModels().map((m) => m.name) };
const disk = readBundledWeights('digits-cnn');
const data = await bundledWeights('digits-cnn');
out.weightsAsDataMatchDisk = disk.length === data.length && disk.every((v, i) => v === data[i]);
for (const backend of ['cpu', 'webgpu']) {
  const b = await bl.init({ backend });
  const model = await loadBundled('digits-cnn');
  const x = bl.mul(bl.add(bl.randn([2, 1, 8, 8], { seed: 7 }), 1), 0.5);
  const logits = await model.forward(x).data();
  const sal = await ex.saliency(model, x, { target: 3 });
  out[backend] = { adapter: b.info.adapter ?? b.info.backend, logits: Array.from(logits), saliency: Array.from(await sal.data()), shape: sal.shape };
  if (backend === 'webgpu') {
    const png = decodePng(await ex.heatmapPng(sal, x));
    out.png = [png.width, png.height];
  }
}
console.log(JSON.stringify(out));
process.exit(0); // a WebGPU device would otherwise keep the process alive

// A consumer's TypeScript, type-checked by tests/package/pack.test.ts against the installed
// package's .d.ts (no sources): every entry resolves and its types are real, not `any`.
import { init, tensor, tidy, type Backend, type Tensor } from 'backlight';
import { Linear, Sequential, loadOnnx, type Module } from 'backlight/models';
import { ZOO, fetchModel, loadBundled, type ZooSpec } from 'backlight/models/zoo';
import { bundledWeights, BUNDLED_WEIGHTS } from 'backlight/weights';
import { heatmapPng, integratedGradients, saliency } from 'backlight/explain';
import { decodePng, loadModelFile, readNpyFile } from 'backlight/node';

export async function run(): Promise<number[]> {
  const b: Backend = await init({ backend: 'cpu' });
  const m: Module = await loadBundled('digits-cnn');
  const x: Tensor = tensor(new Float32Array(64), [1, 1, 8, 8]);
  const s: Tensor = await saliency(m, x, { target: 0 });
  const ig: Tensor = await integratedGradients(m, x, { target: 0, steps: 8 });
  const png: Uint8Array = await heatmapPng(s, x);
  const { width }: { width: number } = decodePng(png);
  const spec: ZooSpec = ZOO['digits-cnn'];
  const bytes: Uint8Array = await bundledWeights(BUNDLED_WEIGHTS[0]);
  const { model } = await fetchModel(bytes);
  const mlp = new Sequential(new Linear(4, 2));
  void [b.info.backend, ig.shape, width, spec.inputShape, model, mlp, loadOnnx, loadModelFile, readNpyFile, tidy];
  // @ts-expect-error: the backend is a closed union (the types are real, not any)
  await init({ backend: 'gpu' });
  return s.shape.slice();
}

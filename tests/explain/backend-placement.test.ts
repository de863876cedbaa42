// Functions that make tensors of their own make them on the backend the model and data live on,
// not on the default one (a model on the CPU reference while WebGPU is the default, or the other
// way round): the same results whichever backend is the default.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import type { Backend } from '../../engine/index.ts';
import type { WebGpuBackend } from '../../engine/webgpu/backend.ts';
import * as ex from '../../explain/index.ts';
import { loadBundled } from '../../models/zoo/index.ts';
import { expectClose } from '../helpers.ts';
import { randArray } from '../engine/grad-cases.ts';

let cpu: Backend;
let gpu: WebGpuBackend;
beforeAll(async () => {
  cpu = await bl.init({ backend: 'cpu', setDefault: false });
  gpu = (await bl.init({ backend: 'webgpu', setDefault: false })) as WebGpuBackend;
});
afterAll(() => gpu?.destroy());

describe('tensors made where the model lives', () => {
  it('activation maximisation, the surrogate tree and a parameter-vector assignment run on a CPU model under a WebGPU default', async () => {
    const m = await bl.withBackend(cpu, () => loadBundled('digits-cnn'));
    const x = bl.tensor(Float32Array.from(randArray(6 * 64, 3, 0, 1)), [6, 1, 8, 8], cpu);
    const run = (b: Backend) =>
      bl.withBackend(b, async () => {
        const am = await ex.activationMaximization(m, { layer: 'features', channel: 2, inputShape: [1, 8, 8], steps: 4, seed: 1 });
        const tree = await ex.fitSurrogateTree(m, x, { maxDepth: 2, seed: 0 });
        return { image: Array.from(await am.image.data()), fidelity: tree.fidelity };
      });
    const a = await run(cpu);
    const b = await run(gpu);
    expectClose(b.image, a.image, 0, 0, 'the same image');
    expect(b.fidelity).toBe(a.fidelity);
    const pv = ex.parameterVector(m, ['classifier']);
    const before = await pv.values();
    await bl.withBackend(gpu, async () => pv.assign(before));
    expect(m.module('classifier').param('weight').backend).toBe(cpu);
  });
});

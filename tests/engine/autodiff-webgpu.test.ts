// Gradients on the WebGPU backend against the float64 CPU backend's, for every case of
// grad-cases.ts (every primitive's rule), with the GPU's output buffers poisoned with NaN.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import type { Backend, Tensor } from '../../engine/index.ts';
import type { WebGpuBackend } from '../../engine/webgpu/backend.ts';
import { cases, randArray, size } from './grad-cases.ts';
import { expectClose } from '../helpers.ts';

let cpu: Backend;
let gpu: WebGpuBackend;
beforeAll(async () => {
  cpu = await bl.init({ backend: 'cpu', setDefault: false });
  gpu = (await bl.init({ backend: 'webgpu', setDefault: false })) as WebGpuBackend;
  gpu.poisonOutputs = true;
});
afterAll(() => gpu?.destroy());

function gradsOn(b: Backend, c: (typeof cases)[number], inputs: number[][], w: number[], outShape: readonly number[]): Tensor[] {
  return bl.withBackend(b, () => {
    const xs = inputs.map((d, i) => bl.tensor(d, c.shapes[i]));
    const wt = bl.tensor(w, outShape);
    const g = bl.grad((...a: Tensor[]) => bl.sum(bl.mul(c.fn(...a), wt)))(...xs);
    return Array.isArray(g) ? g : [g];
  });
}

describe('WebGPU gradients match the CPU reference', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const seed = 4242;
      const inputs = c.shapes.map((s, i) => (c.gen ?? ((_i: number, n: number, sd: number) => randArray(n, sd)))(i, size(s), seed + 17 * i));
      const outShape = bl.withBackend(cpu, () => c.fn(...inputs.map((d, i) => bl.tensor(d, c.shapes[i]))).shape);
      const w = randArray(size([...outShape]), seed + 999, 0.5, 1.5);
      const gc = gradsOn(cpu, c, inputs, w, outShape);
      const gg = gradsOn(gpu, c, inputs, w, outShape);
      for (const i of c.wrt ?? c.shapes.map((_, k) => k)) {
        const a = await gg[i].data();
        const e = await gc[i].data();
        expect(a.length).toBe(e.length);
        // |gpu - cpu| <= 1e-4 * max(1, |cpu|); NaN (a poisoned, unwritten element) always fails.
        expectClose(a, e, 1e-4, 1e-4, `${c.name}: input ${i}`);
      }
    });
  }
});

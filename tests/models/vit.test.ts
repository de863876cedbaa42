// The vision transformer layers (models/vit.ts): shapes, layer names, each layer against a
// hand-written reference, gradients against central finite differences (float64), and the whole
// model against PyTorch (tests/fixtures/make_attention_fixtures.py: the same architecture in torch,
// float64, from the same float32 weights): logits, attention probabilities, input gradients.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import type { Backend, Tensor } from '../../engine/index.ts';
import { parseNpy64 } from '../../models/io/npy.ts';
import { loadWeights } from '../../models/io/weights.ts';
import { GELU, LayerNorm, MultiheadSelfAttention, PatchEmbed, VisionTransformer } from '../../models/vit.ts';
import { expectClose, randArray, rng } from '../helpers.ts';

const dir = new URL('../fixtures/attention/', import.meta.url);
const npy = (name: string) => parseNpy64(new Uint8Array(readFileSync(new URL(name, dir))), name);
const tinyConfig = { imageSize: [12, 16] as [number, number], patch: 4, inChannels: 3, classes: 5, dim: 16, depth: 3, heads: 2, mlpHidden: 32 };

let cpu: Backend;
let gpu: Backend;
beforeAll(async () => {
  cpu = await bl.init({ backend: 'cpu', setDefault: false });
  gpu = await bl.init({ backend: 'webgpu', setDefault: false });
});
afterAll(() => gpu?.destroy());

/** The fixture's tiny ViT with its weights, on backend b. */
export function tinyVit(b: Backend): VisionTransformer {
  return bl.withBackend(b, () => {
    const m = new VisionTransformer({ ...tinyConfig, seed: 3 });
    loadWeights(m, new Uint8Array(readFileSync(new URL('tiny_vit.safetensors', dir))), { source: 'tiny_vit.safetensors' });
    return m.eval();
  });
}

/** Central differences of a scalar f at x (float64 CPU backend). */
async function numericGrad(f: (x: Tensor) => Tensor, x0: Float64Array | Float32Array, shape: number[], h = 1e-5): Promise<Float64Array> {
  const g = new Float64Array(x0.length);
  for (let i = 0; i < x0.length; i++) {
    const at = async (d: number) => {
      const xs = Float64Array.from(x0);
      xs[i] += d;
      const x = bl.tensor(xs, shape, cpu);
      const y = f(x);
      const v = await y.item();
      x.dispose();
      y.dispose();
      return v;
    };
    g[i] = ((await at(h)) - (await at(-h))) / (2 * h);
  }
  return g;
}

describe('ViT layers on the CPU backend', () => {
  it('LayerNorm matches a hand-written normalisation', async () => {
    const data = randArray(rng(1), 2 * 3 * 5, -2, 2);
    const [ln, x] = bl.withBackend(cpu, () => {
      const l = new LayerNorm(5, 1e-5);
      l.setTensor('weight', bl.tensor([1, 2, 0.5, -1, 3]));
      l.setTensor('bias', bl.tensor([0, 0.1, -0.2, 0.3, 1]));
      return [l, bl.tensor(data, [2, 3, 5])] as const;
    });
    const got = await ln.call(x).data();
    const w = [1, 2, 0.5, -1, 3], b = [0, 0.1, -0.2, 0.3, 1];
    const want: number[] = [];
    for (let r = 0; r < 6; r++) {
      const row = Array.from(data.subarray(r * 5, r * 5 + 5));
      const mu = row.reduce((a, v) => a + v, 0) / 5;
      const v = row.reduce((a, u) => a + (u - mu) ** 2, 0) / 5;
      row.forEach((u, j) => want.push(((u - mu) / Math.sqrt(v + 1e-5)) * w[j] + b[j]));
    }
    expectClose(got, want, 1e-12);
  });

  it('GELU matches x * Phi(x) (erf to 1.2e-7) and the tanh form exactly', async () => {
    const xs = [-4, -2.5, -1, -0.3, 0, 0.2, 0.7, 1.5, 3, 6];
    const x = bl.tensor(xs, [xs.length], cpu);
    // Phi by Simpson's rule on the density (independent of any erf approximation).
    const phi = (z: number) => {
      const n = 2000, a = -12, h = (z - a) / n;
      let s = 0;
      for (let i = 0; i <= n; i++) s += (i === 0 || i === n ? 1 : i % 2 ? 4 : 2) * Math.exp(-((a + i * h) ** 2) / 2);
      return (s * h) / 3 / Math.sqrt(2 * Math.PI);
    };
    expectClose(await new GELU().call(x).data(), xs.map((v) => v * phi(v)), 0, 2e-7 * 6);
    const tanhForm = xs.map((v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
    expectClose(await new GELU('tanh').call(x).data(), tanhForm, 1e-14);
    expect(() => new GELU('exact' as never)).toThrow(/GELU: approximate must be 'none' or 'tanh'/);
  });

  it('PatchEmbed orders tokens row-major over the patch grid', async () => {
    const pe = bl.withBackend(cpu, () => {
      const p = new PatchEmbed(1, 1, 2);
      p.setTensor('proj.weight', bl.tensor([1, 0, 0, 0], [1, 1, 2, 2])); // picks each patch's top-left pixel
      p.setTensor('proj.bias', bl.tensor([0]));
      return p;
    });
    const img = Array.from({ length: 4 * 6 }, (_, i) => i); // 4x6 image, value = index
    const t = pe.call(bl.tensor(img, [1, 1, 4, 6], cpu));
    expect(t.shape).toEqual([1, 6, 1]);
    expect(Array.from(await t.data())).toEqual([0, 2, 4, 12, 14, 16]);
    expect(() => pe.call(bl.tensor(new Float32Array(5 * 6), [1, 1, 5, 6], cpu))).toThrow(/PatchEmbed.*multiples of the patch size 2/);
  });

  it('self-attention matches a hand-written per-head softmax(q k^T / sqrt(d)) v, and taps its probabilities', async () => {
    const [n, t, d, h] = [2, 5, 6, 3];
    const r = rng(7);
    const xData = randArray(r, n * t * d);
    const wq = randArray(r, 3 * d * d), bq = randArray(r, 3 * d), wp = randArray(r, d * d), bp = randArray(r, d);
    const attn = bl.withBackend(cpu, () => {
      const a = new MultiheadSelfAttention(d, h);
      a.setPath('attn');
      a.setTensor('qkv.weight', bl.tensor(wq, [3 * d, d]));
      a.setTensor('qkv.bias', bl.tensor(bq, [3 * d]));
      a.setTensor('proj.weight', bl.tensor(wp, [d, d]));
      a.setTensor('proj.bias', bl.tensor(bp, [d]));
      return a;
    });
    const x = bl.tensor(xData, [n, t, d], cpu);
    let probs: Tensor | null = null;
    const y = bl.withActivation('attn.softmax', (p) => ((probs = bl.keep(p)), p), () => attn.call(x));
    // Reference, in plain loops.
    const lin = (row: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number>, out: number) =>
      Array.from({ length: out }, (_, o) => b[o] + Array.from(row).reduce((s, v, i) => s + v * w[o * row.length + i], 0));
    const want: number[] = [], wantP: number[] = [];
    const dh = d / h;
    for (let b = 0; b < n; b++) {
      const qkv = Array.from({ length: t }, (_, i) => lin(xData.subarray((b * t + i) * d, (b * t + i + 1) * d), wq, bq, 3 * d));
      const o = Array.from({ length: t }, () => new Array(d).fill(0));
      const P: number[][][] = [];
      for (let hh = 0; hh < h; hh++) {
        P.push([]);
        for (let i = 0; i < t; i++) {
          const s = Array.from({ length: t }, (_, j) => {
            let acc = 0;
            for (let c = 0; c < dh; c++) acc += qkv[i][hh * dh + c] * qkv[j][d + hh * dh + c];
            return acc / Math.sqrt(dh);
          });
          const m = Math.max(...s);
          const e = s.map((v) => Math.exp(v - m));
          const z = e.reduce((a, v) => a + v, 0);
          const p = e.map((v) => v / z);
          P[hh].push(p);
          for (let c = 0; c < dh; c++) o[i][hh * dh + c] = p.reduce((a, pj, j) => a + pj * qkv[j][2 * d + hh * dh + c], 0);
        }
      }
      for (let hh = 0; hh < h; hh++) for (const row of P[hh]) wantP.push(...row);
      for (let i = 0; i < t; i++) want.push(...lin(o[i], wp, bp, d));
    }
    expect(y.shape).toEqual([n, t, d]);
    expectClose(await y.data(), want, 1e-12);
    const pr = probs as unknown as Tensor;
    expect(pr.shape).toEqual([n, h, t, t]);
    expectClose(await pr.data(), wantP, 1e-12);
  });

  it('VisionTransformer: shapes, names, attention layers and checks', async () => {
    const m = bl.withBackend(cpu, () => new VisionTransformer({ ...tinyConfig, seed: 1 }));
    expect(m.attentionLayers()).toEqual(['blocks.0.attn.softmax', 'blocks.1.attn.softmax', 'blocks.2.attn.softmax']);
    expect(m.grid).toEqual([3, 4]);
    const names = [...m.stateDict().keys()];
    expect(names.slice(0, 4)).toEqual(['cls_token', 'pos_embed', 'patch_embed.proj.weight', 'patch_embed.proj.bias']);
    expect(names).toContain('blocks.2.mlp.fc2.bias');
    expect(m.param('pos_embed').shape).toEqual([1, 13, 16]);
    const y = m.call(bl.zeros([3, 3, 12, 16], cpu));
    expect(y.shape).toEqual([3, 5]);
    expect(() => m.call(bl.zeros([1, 3, 16, 16], cpu))).toThrow(/expected \[N, 3, 12, 16\]/);
    expect(() => new VisionTransformer({ ...tinyConfig, imageSize: 14 })).toThrow(/multiples of the patch size 4/);
    expect(() => new VisionTransformer({ ...tinyConfig, heads: 3 })).toThrow(/dim 16 must be a multiple of heads 3/);
  });

  it('input gradient of a small ViT matches central finite differences (float64)', async () => {
    const m = bl.withBackend(cpu, () => new VisionTransformer({ imageSize: 4, patch: 2, inChannels: 1, classes: 3, dim: 4, depth: 2, heads: 2, mlpHidden: 6, seed: 5 }));
    const x0 = randArray(rng(3), 16);
    const f = (x: Tensor) => bl.tidy(() => bl.sum(bl.mul(m.call(x), bl.tensor([0.3, -1, 2], [1, 3], cpu))));
    const g = bl.grad(f)(bl.tensor(x0, [1, 1, 4, 4], cpu));
    expectClose(await g.data(), await numericGrad(f, x0, [1, 1, 4, 4]), 1e-6, 1e-8);
  });
});

describe('ViT against PyTorch (tiny_vit fixture)', () => {
  const targets = [3, 1];
  for (const where of ['cpu', 'webgpu'] as const) {
    // float64 vs float64 from the same float32 weights: rounding plus GELU's erf (1.2e-7);
    // float32 on WebGPU: 1e-4.
    const tol = where === 'cpu' ? 1e-5 : 1e-4;
    it(`logits, attention probabilities and input gradients on ${where}`, async () => {
      const b = where === 'cpu' ? cpu : gpu;
      const m = tinyVit(b);
      const xs = npy('tiny_input.npy');
      const x = bl.tensor(xs.data, xs.shape, b);
      const logits = m.call(x);
      expectClose(await logits.data(), npy('tiny_logits.npy').data, tol, tol, 'logits');
      const A = npy('tiny_attn.npy'); // [L, N, H, T, T]
      const per = A.data.length / 3;
      for (let l = 0; l < 3; l++) {
        let p: Tensor | null = null;
        bl.tidy(() => bl.withActivation(`blocks.${l}.attn.softmax`, (a) => ((p = bl.keep(a)), a), () => m.call(x)));
        const pt = p as unknown as Tensor;
        expect(pt.shape).toEqual([2, 2, 13, 13]);
        expectClose(await pt.data(), A.data.subarray(l * per, (l + 1) * per), tol, tol, `attention ${l}`);
        pt.dispose();
      }
      const oh = bl.tensor([0, 0, 0, 1, 0, 0, 1, 0, 0, 0], [2, 5], b);
      const g = bl.grad((xx: Tensor) => bl.sum(bl.mul(m.call(xx), oh)))(x);
      const want = npy('tiny_input_grad.npy');
      const scale = Math.max(...Array.from(want.data, Math.abs));
      expectClose(await g.data(), want.data, tol, tol * scale, `input gradient, targets ${targets}`);
      for (const t of [x, logits, oh, g]) t.dispose();
      m.dispose();
    });
  }
});

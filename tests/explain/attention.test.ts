// Attention maps, attention rollout and Chefer et al.'s relevance (explain/attention/) against an
// independent computation (tests/fixtures/make_attention_fixtures.py: the same tiny ViT in torch,
// float64; NumPy replica of the rollout; relevance from torch autograd's attention gradients), on
// the float64 CPU backend (1e-5) and WebGPU (1e-4); the torchvision ViT through ONNX; the
// detection of attention layers in a graph; option checks; batches; memory.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import type { Backend, Tensor } from '../../engine/index.ts';
import * as ex from '../../explain/index.ts';
import { attentionMaps, attentionRelevance, attentionRollout, upsampleToImage } from '../../explain/attention/index.ts';
import { parseNpy64 } from '../../models/io/npy.ts';
import { loadWeights } from '../../models/io/weights.ts';
import { loadOnnx } from '../../models/io/onnx.ts';
import { GraphModel, type GraphNode } from '../../models/containers.ts';
import { Conv2d, GlobalAvgPool, Linear, Sequential } from '../../models/index.ts';
import { VisionTransformer } from '../../models/vit.ts';
import { expectClose } from '../helpers.ts';

const dir = new URL('../fixtures/attention/', import.meta.url);
const npy = (name: string) => parseNpy64(new Uint8Array(readFileSync(new URL(name, dir))), name);
interface RolloutCase { headFusion: 'mean' | 'max' | 'min'; discardRatio: number; startLayer: number; residual?: boolean; file: string }
const cases = JSON.parse(readFileSync(new URL('cases.json', dir), 'utf8')) as {
  tiny: { targets: number[]; grid: [number, number]; rollout: RolloutCase[]; relevance: { startLayer: number; file: string }[] };
  tv: { targets: number[]; grid: [number, number]; rollout: RolloutCase; relevance: { startLayer: number; file: string } };
};

let cpu: Backend;
let gpu: Backend;
beforeAll(async () => {
  cpu = await bl.init({ backend: 'cpu', setDefault: false });
  gpu = await bl.init({ backend: 'webgpu', setDefault: false });
});
afterAll(() => gpu?.destroy());

function tinyVit(b: Backend): VisionTransformer {
  return bl.withBackend(b, () => {
    const m = new VisionTransformer({ imageSize: [12, 16], patch: 4, inChannels: 3, classes: 5, dim: 16, depth: 3, heads: 2, mlpHidden: 32 });
    loadWeights(m, new Uint8Array(readFileSync(new URL('tiny_vit.safetensors', dir))), { source: 'tiny_vit.safetensors' });
    return m.eval();
  });
}
const input = (b: Backend, name = 'tiny_input.npy') => {
  const xs = npy(name);
  return bl.tensor(xs.data, xs.shape, b);
};

/** a [L, N, H, T, T] fixture's class rows to the patches, per layer: [N, H, T-1] flattened. */
function classRows(A: { data: Float64Array; shape: number[] }, l: number): number[] {
  const [, N, H, T] = A.shape;
  const out: number[] = [];
  for (let n = 0; n < N; n++) for (let h = 0; h < H; h++) {
    const base = (((l * N + n) * H + h) * T + 0) * T;
    for (let j = 1; j < T; j++) out.push(A.data[base + j]);
  }
  return out;
}

for (const where of ['cpu', 'webgpu'] as const) {
  describe(`attention explainers against the torch/NumPy fixtures on ${where}`, () => {
    const tol = where === 'cpu' ? 1e-5 : 1e-4;
    const be = () => (where === 'cpu' ? cpu : gpu);

    it('attentionMaps: class-token rows per layer and head, full matrices, a head subset', async () => {
      const m = tinyVit(be()), x = input(be());
      const A = npy('tiny_attn.npy');
      const r = await attentionMaps(m, x, { full: true });
      expect(r.layers).toEqual(['blocks.0.attn.softmax', 'blocks.1.attn.softmax', 'blocks.2.attn.softmax']);
      expect(r.grid).toEqual([3, 4]);
      expect(r.heads).toEqual([0, 1]);
      const per = A.data.length / 3;
      for (let l = 0; l < 3; l++) {
        expect(r.maps[l].shape).toEqual([2, 2, 3, 4]);
        expectClose(await r.maps[l].data(), classRows(A, l), tol, tol, `map ${l}`);
        expectClose(await r.matrices![l].data(), A.data.subarray(l * per, (l + 1) * per), tol, tol, `matrix ${l}`);
      }
      const one = await attentionMaps(m, x, { heads: [1], layers: ['blocks.2.attn.softmax'] });
      expect(one.layers).toEqual(['blocks.2.attn.softmax']);
      expect(one.maps[0].shape).toEqual([2, 1, 3, 4]);
      const all = await r.maps[2].data();
      expect(Array.from(await one.maps[0].data())).toEqual([...Array.from(all.subarray(12, 24)), ...Array.from(all.subarray(36, 48))]);
      const up = upsampleToImage(r.maps[0], x);
      expect(up.shape).toEqual([2, 2, 12, 16]);
      expect(upsampleToImage(r.maps[0], [6, 8]).shape).toEqual([2, 2, 6, 8]);
      for (const t of [...r.maps, ...r.matrices!, ...one.maps, up, x]) t.dispose();
      m.dispose();
    });

    for (const [k, c] of cases.tiny.rollout.entries()) {
      it(`attentionRollout ${JSON.stringify({ ...c, file: undefined })} matches the NumPy replica`, async () => {
        const m = tinyVit(be()), x = input(be());
        const { file: _f, ...opts } = c;
        const got = await attentionRollout(m, x, { ...opts, upsample: false });
        expect(got.shape).toEqual([2, 1, 3, 4]);
        expectClose(await got.data(), npy(`tiny_rollout_${k}.npy`).data, tol, tol, `rollout case ${k}`);
        got.dispose();
        x.dispose();
        m.dispose();
      });
    }

    it('attentionRollout upsampled to the image matches torch interpolate (bilinear, align_corners=False)', async () => {
      const m = tinyVit(be()), x = input(be());
      const got = await attentionRollout(m, x);
      expect(got.shape).toEqual([2, 1, 12, 16]);
      expectClose(await got.data(), npy('tiny_rollout_up.npy').data, tol, tol, 'rollout upsampled');
      got.dispose();
      x.dispose();
      m.dispose();
    });

    for (const c of cases.tiny.relevance) {
      it(`attentionRelevance (startLayer ${c.startLayer}, targets ${cases.tiny.targets}) matches torch autograd`, async () => {
        const m = tinyVit(be()), x = input(be());
        const got = await attentionRelevance(m, x, { target: cases.tiny.targets, startLayer: c.startLayer, upsample: false });
        expect(got.shape).toEqual([2, 1, 3, 4]);
        const want = npy(c.file);
        expectClose(await got.data(), want.data, tol, tol, `relevance start ${c.startLayer}`);
        got.dispose();
        x.dispose();
        m.dispose();
      });
    }

    it('the torchvision ViT through ONNX: its Softmax nodes ([N*heads, T, T]) are found; rollout and relevance match', async () => {
      bl.setDefaultBackend(be());
      const m = await loadOnnx(new Uint8Array(readFileSync(new URL('tv_vit.onnx', dir))));
      const x = input(be(), 'tv_input.npy');
      const maps = await attentionMaps(m, x);
      expect(maps.layers).toEqual(['/encoder/layers/encoder_layer_0/self_attention/Softmax', '/encoder/layers/encoder_layer_1/self_attention/Softmax']);
      expect(maps.grid).toEqual(cases.tv.grid);
      const A = npy('tv_attn.npy');
      for (let l = 0; l < 2; l++) expectClose(await maps.maps[l].data(), classRows(A, l), tol, tol, `tv map ${l}`);
      const { file: _f, ...ro } = cases.tv.rollout;
      const roll = await attentionRollout(m, x, { ...ro, upsample: false });
      expectClose(await roll.data(), npy(cases.tv.rollout.file).data, tol, tol, 'tv rollout');
      const rel = await attentionRelevance(m, x, { target: cases.tv.targets, upsample: false });
      expectClose(await rel.data(), npy(cases.tv.relevance.file).data, tol, tol, 'tv relevance');
      // addressed by the Softmax's output tensor name too
      const byOutput = await attentionRollout(m, x, { ...ro, upsample: false, layers: m.nodes.filter((n) => n.op === 'Softmax').map((n) => n.outputs[0]) });
      expectClose(await byOutput.data(), await roll.data(), 0, 0, 'by output name');
      for (const t of [...maps.maps, roll, rel, byOutput, x]) t.dispose();
      m.dispose();
    });
  });
}

describe("the ONNX engineer's torchvision ViT fixture (tests/fixtures/onnx/vit_tiny_opset13/17)", () => {
  it('attention layers are found in both exports, and rollout, relevance and maps agree between opsets 13 and 17', async () => {
    bl.setDefaultBackend(cpu);
    const onnxDir = new URL('../fixtures/onnx/', import.meta.url);
    const load = async (k: number) => loadOnnx(new Uint8Array(readFileSync(new URL(`vit_tiny_opset${k}.onnx`, onnxDir))));
    const xs = parseNpy64(new Uint8Array(readFileSync(new URL('vit_tiny_input.npy', onnxDir))), 'vit_tiny_input.npy');
    const x = bl.tensor(xs.data, xs.shape, cpu);
    const out: (Float32Array | Float64Array)[][] = [];
    for (const k of [13, 17]) {
      const m = await load(k);
      const maps = await attentionMaps(m, x);
      expect(maps.layers).toHaveLength(2);
      expect(maps.grid).toEqual([4, 4]); // 32x32 image, 8x8 patches
      const ro = await attentionRollout(m, x, { headFusion: 'max', discardRatio: 0.3, upsample: false });
      const rel = await attentionRelevance(m, x, { target: 'predicted', upsample: false });
      out.push([...(await Promise.all(maps.maps.map((t) => t.data()))), await ro.data(), await rel.data()]);
      for (const t of [...maps.maps, ro, rel]) t.dispose();
      m.dispose();
    }
    out[0].forEach((a, i) => expectClose(out[1][i], a, 1e-9, 1e-12, `output ${i}`));
    x.dispose();
  });
});

describe('attention layers in a graph', () => {
  /**
   * A hand-made graph: 2x2 pixels as 4 patch tokens plus a zero class token, scores x x^T
   * duplicated for 2 heads in nn.MultiheadAttention's [N*heads, T, T] layout, a Softmax over them,
   * and a classifier Softmax [N, 3] that is not attention.
   */
  function graph(b: Backend): GraphModel {
    return bl.withBackend(b, () => {
      const node = (name: string, op: string, inputs: string[], run: (xs: Tensor[]) => Tensor): GraphNode => ({ name, op, inputs, outputs: [`${name}_out`], run: (xs) => [run(xs)] });
      const nodes: GraphNode[] = [
        node('tokens', 'Concat', ['input'], ([x]) => {
          const n = x.shape[0];
          return bl.concat([bl.zeros([n, 1, 1], x.backend), bl.reshape(x, [n, 4, 1])], 1);
        }),
        node('scores', 'MatMul', ['tokens_out'], ([t]) => {
          const s = bl.matmul(t, bl.transpose(t, [0, 2, 1]));
          const n = t.shape[0];
          return bl.reshape(bl.stack([s, bl.mul(s, 2)], 1), [n * 2, 5, 5]);
        }),
        node('attn', 'Softmax', ['scores_out'], ([s]) => bl.softmax(s, -1)),
        node('logits', 'ReduceSum', ['attn_out'], ([a]) => bl.reshape(bl.slice(bl.reshape(a, [-1, 50]), [0, 0], [a.shape[0] / 2, 3]), [a.shape[0] / 2, 3])),
        node('probs', 'Softmax', ['logits_out'], ([z]) => bl.softmax(z, -1)),
      ];
      return new GraphModel(nodes, ['input'], ['probs_out']);
    });
  }
  it('finds Softmax nodes with attention shapes, ignores the classifier Softmax, reads [N*heads, T, T] batch-major', async () => {
    const g = graph(cpu);
    const x = bl.tensor([1, 2, 3, 4, 0.5, -1, 0, 2], [2, 1, 2, 2], cpu);
    const r = await attentionMaps(g, x, { full: true });
    expect(r.layers).toEqual(['attn']);
    expect(r.grid).toEqual([2, 2]);
    expect(r.matrices![0].shape).toEqual([2, 2, 5, 5]);
    // class token (all zeros) attends uniformly in both heads and both items
    expectClose(await r.maps[0].data(), new Array(16).fill(0.2), 1e-12);
    // head 1 of item 1 is softmax(2 s) of item 1's scores: row 1 (token value 0.5)
    const m = await r.matrices![0].data();
    const toks = [0, 0.5, -1, 0, 2];
    const s = toks.map((t) => 2 * 0.5 * t);
    const z = s.reduce((a, v) => a + Math.exp(v), 0);
    expectClose(m.subarray(((1 * 2 + 1) * 5 + 1) * 5, ((1 * 2 + 1) * 5 + 2) * 5), s.map((v) => Math.exp(v) / z), 1e-12);
    await expect(attentionMaps(g, x, { layers: ['probs'] })).rejects.toThrow(/attentionMaps: layer 'probs' has shape \[2, 3\], not attention probabilities/);
    for (const t of [...r.maps, ...r.matrices!, x]) t.dispose();
  });
});

describe('attention explainers: options, errors, batches, memory', () => {
  const cnn = () => bl.withBackend(cpu, () => new Sequential(['features', new Conv2d(3, 4, 3)], ['pool', new GlobalAvgPool()], ['fc', new Linear(4, 5)]));

  it('clear errors naming the function and the option', async () => {
    const m = tinyVit(cpu), x = input(cpu);
    await expect(attentionRollout(m, x, { discardRatios: 0.5 } as never)).rejects.toThrow(/attentionRollout.*discardRatios/);
    await expect(attentionRollout(m, x, { headFusion: 'median' as never })).rejects.toThrow(/attentionRollout: headFusion must be 'mean', 'max' or 'min', got "median"/);
    for (const d of [1, -0.1, Number.NaN, '0.5' as unknown as number]) {
      await expect(attentionRollout(m, x, { discardRatio: d })).rejects.toThrow(/attentionRollout: discardRatio must be a number in \[0, 1\)/);
    }
    await expect(attentionRollout(m, x, { startLayer: 3 })).rejects.toThrow(/attentionRollout: startLayer must be an integer from 0 to 2 \(the model has 3 attention layers: blocks.0.attn.softmax, blocks.1.attn.softmax, blocks.2.attn.softmax\), got 3/);
    await expect(attentionRelevance(m, x, { target: 1, startLayer: 1.5 })).rejects.toThrow(/attentionRelevance: startLayer must be an integer/);
    await expect(attentionRollout(m, x, { layers: ['blocks.0.attn'] })).rejects.toThrow(/attentionRollout: layer 'blocks.0.attn' has shape \[2, 13, 16\], not attention probabilities.*attention layers: blocks.0.attn.softmax, blocks.1.attn.softmax, blocks.2.attn.softmax/);
    await expect(attentionRollout(m, x, { layers: ['blocks.9.attn.softmax'] })).rejects.toThrow(/attentionRollout: no layer named 'blocks.9.attn.softmax' was produced by the model \(the model's attention layers: blocks.0.attn.softmax, blocks.1/);
    await expect(attentionRelevance(m, x, { target: 1, layers: ['nope'] })).rejects.toThrow(/attentionRelevance: no layer\/activation named 'nope'.*attention layers: blocks.0.attn.softmax/);
    await expect(attentionRelevance(m, x, {})).rejects.toThrow(/attentionRelevance: the model has 5 outputs per item: give a target/);
    await expect(attentionRelevance(m, x, { target: 7 })).rejects.toThrow(/attentionRelevance: target 7 is out of range for 5 outputs/);
    await expect(attentionMaps(m, x, { heads: [2] })).rejects.toThrow(/attentionMaps: head 2 is out of range: the layers have 2 heads/);
    await expect(attentionMaps(m, x, { heads: 1 as never })).rejects.toThrow(/attentionMaps: heads must be a non-empty array of head indices, got 1/);
    await expect(attentionMaps(m, x, { layers: [] })).rejects.toThrow(/attentionMaps: layers must be a non-empty array/);
    await expect(attentionMaps(m, x, { grid: [4, 4] })).rejects.toThrow(/attentionMaps: grid \[4, 4\] has 16 cells, the attention has 12 patch tokens/);
    await expect(attentionMaps(m, bl.zeros([2, 3, 12], cpu))).rejects.toThrow(/attentionMaps: the input must be an image batch \[N, C, H, W\], got \[2, 3, 12\]/);
    await expect(attentionRollout(cnn(), bl.zeros([1, 3, 8, 8], cpu))).rejects.toThrow(/attentionRollout: the model has no attention layers/);
    await expect(attentionRollout((t: Tensor) => m.call(t), x)).rejects.toThrow(/attentionRollout: a model given as a function has no layers to search: name its attention layers with the layers option/);
    // a function model with named layers works (the names are the taps its modules make)
    const viaFn = await attentionRollout((t: Tensor) => m.call(t), x, { layers: m.attentionLayers(), upsample: false });
    expectClose(await viaFn.data(), npy('tiny_rollout_0.npy').data, 1e-5);
    viaFn.dispose();
    x.dispose();
    m.dispose();
  });

  it("relevance: a batch equals its items one by one; 'predicted' equals the argmax target; layers given as modules", async () => {
    const m = tinyVit(cpu), x = input(cpu);
    const logits = await m.call(x).data();
    const pred = [0, 1].map((i) => Array.from(logits.subarray(i * 5, i * 5 + 5)).reduce((b, v, j, a) => (v > a[b] ? j : b), 0));
    const batch = await attentionRelevance(m, x, { target: 'predicted' });
    expect(batch.shape).toEqual([2, 1, 12, 16]);
    const byIndex = await attentionRelevance(m, x, { target: pred, layers: m.attentionLayers().map((p) => m.module(p)) });
    expectClose(await batch.data(), await byIndex.data(), 1e-12);
    const b = await batch.data();
    for (let i = 0; i < 2; i++) {
      const xi = bl.slice(x, [i], [1]);
      const one = await attentionRelevance(m, xi, { target: pred[i] });
      expectClose(await one.data(), b.subarray(i * 192, (i + 1) * 192), 1e-12, 1e-12, `item ${i}`);
      one.dispose();
      xi.dispose();
    }
    // a different class gives a different map (the target reaches the gradient)
    const other = await attentionRelevance(m, x, { target: pred.map((p) => (p + 1) % 5) });
    expect(Math.max(...Array.from(await other.data(), (v, i) => Math.abs(v - b[i])))).toBeGreaterThan(1e-3);
    for (const t of [batch, byIndex, other, x]) t.dispose();
    m.dispose();
  });

  it('rollout with discardRatio drops exactly floor(T*T*ratio) entries below the rest (not [0, 0])', async () => {
    // Rollout of one layer without the residual is that layer's fused, discarded, row-normalised
    // matrix: its zeros are the discarded entries.
    const m = tinyVit(cpu), x = input(cpu);
    const r = await attentionMaps(m, x, { full: true, layers: ['blocks.1.attn.softmax'] });
    const A = await r.matrices![0].data(); // [2, 2, 13, 13]
    for (const ratio of [0.3, 0.75]) {
      const got = await attentionRollout(m, x, { layers: ['blocks.1.attn.softmax'], discardRatio: ratio, residual: false, headFusion: 'max', upsample: false });
      const g = await got.data(); // [2, 1, 3, 4]: class row to the patches
      for (let n = 0; n < 2; n++) {
        const fused = Array.from({ length: 169 }, (_, j) => Math.max(A[(n * 2 + 0) * 169 + j], A[(n * 2 + 1) * 169 + j]));
        const k = Math.floor(169 * ratio);
        const cut = [...fused].sort((a, b) => a - b)[k]; // the (k+1)-th smallest survives
        const kept = fused.map((v, j) => (v >= cut || j === 0 ? v : 0));
        const row = kept.slice(0, 13);
        const s = row.reduce((a, v) => a + v, 0);
        expectClose(g.subarray(n * 12, n * 12 + 12), row.slice(1).map((v) => v / s), 1e-12, 1e-12, `ratio ${ratio} item ${n}`);
      }
      got.dispose();
    }
    for (const t of [...r.maps, ...r.matrices!, x]) t.dispose();
    m.dispose();
  });

  for (const where of ['cpu', 'webgpu'] as const) {
    it(`no live buffers left, caller tensors intact (${where})`, async () => {
      const b = where === 'cpu' ? cpu : gpu;
      const m = tinyVit(b), x = input(b);
      const run = async () => {
        const maps = await attentionMaps(m, x, { full: true });
        const ro = await attentionRollout(m, x, { discardRatio: 0.5, headFusion: 'min' });
        const rel = await attentionRelevance(m, x, { target: 'predicted' });
        for (const t of [...maps.maps, ...maps.matrices!, ro, rel]) t.dispose();
        await expect(attentionRollout(m, x, { startLayer: 5 })).rejects.toThrow();
        await expect(attentionRelevance(m, x, { target: 1, layers: ['nope'] })).rejects.toThrow();
      };
      await b.sync();
      const before = bl.memory(b);
      for (let i = 0; i < 3; i++) await run();
      await b.sync();
      const after = bl.memory(b);
      expect(after.liveBuffers).toBe(before.liveBuffers);
      expect(after.liveBytes).toBe(before.liveBytes);
      // the input and the weights are still usable
      expect((await x.data()).length).toBe(2 * 3 * 12 * 16);
      expect(m.call(x).shape).toEqual([2, 5]);
      x.dispose();
      m.dispose();
    });
  }

  it('is exported from explain/index.ts', () => {
    expect(ex.attentionRollout).toBe(attentionRollout);
    expect(ex.attentionRelevance).toBe(attentionRelevance);
    expect(ex.attentionMaps).toBe(attentionMaps);
  });
});

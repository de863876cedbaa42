// LRP on imported ONNX graphs: every node is a layer composite whose kind rule sets address (Conv
// -> Conv2d, an Add of two activations -> ResidualSum, ...), BatchNormalization nodes are folded by
// the canonizer, and torch's Pad + AveragePool pair loads. The truth for each graph is lrp() on the
// same network built by hand from backlight layers with the graph's weights (its own LRP is checked
// against PyTorch and dense replicas elsewhere). Float64 CPU backend.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import * as ex from '../../explain/index.ts';
import { AvgPool2d, BatchNorm2d, Conv2d, Flatten, GlobalAvgPool, Linear, MaxPool2d, ReLU, Residual, ResidualSum, Sequential } from '../../models/index.ts';
import type { Module } from '../../models/module.ts';
import { loadOnnx, type OnnxModel } from '../../models/io/onnx.ts';
import { parseNpy } from '../../models/io/npy.ts';
import { expectClose } from '../helpers.ts';

const dir = fileURLToPath(new URL('../fixtures/onnx/', import.meta.url));
const load = (name: string) => loadOnnx(new Uint8Array(readFileSync(dir + name)), { source: name });
const npy = (name: string) => parseNpy(new Uint8Array(readFileSync(dir + name)));

beforeAll(async () => {
  await bl.init({ backend: 'cpu' });
});

const read = async (t: Tensor) => Float64Array.from(await t.data());

/** Copy the graph's parameters into `own` by their PyTorch names (the ONNX initializer names). */
function copyWeights(g: OnnxModel, own: Module, names: Record<string, string>): void {
  const state = g.stateDict();
  for (const [torchName, stateName] of g.info.parameterNames) {
    const prefix = Object.keys(names).find((p) => torchName.startsWith(p + '.'));
    if (!prefix) throw new Error(`no mapping for ${torchName}`);
    own.setTensor(`${names[prefix]}${torchName.slice(prefix.length)}`, bl.mul(state.get(stateName)!, 1));
  }
}

describe('LRP on ONNX imports', () => {
  it('a residual net with BatchNormalization nodes (opset 13): equal to the same net built from layers', async () => {
    const g = load('resnet_opset13.onnx');
    const block = new Sequential(new Conv2d(8, 8, 3, { padding: 1, bias: false }), new BatchNorm2d(8), new ReLU(), new Conv2d(8, 8, 3, { padding: 1, bias: false }), new BatchNorm2d(8, { eps: 1e-3 }));
    const own = new Sequential(new Conv2d(3, 8, 3, { padding: 1 }), new BatchNorm2d(8), new ReLU(), new MaxPool2d({ kernel: 2, stride: 2 }), new Residual(block), new ReLU(), new GlobalAvgPool(), new Linear(8, 5));
    copyWeights(g, own, { conv1: '0', bn1: '1', 'layer1.conv1': '4.block.0', 'layer1.bn1': '4.block.1', 'layer1.conv2': '4.block.3', 'layer1.bn2': '4.block.4', fc: '7' });
    const input = npy('resnet_input.npy');
    const x = bl.tensor(input.data, input.shape);
    expectClose(await read(own.call(x)), await read(g.call(x)), 1e-10, 1e-10, 'the two nets agree');
    const before = await Promise.all([...g.stateDict()].map(async ([k, t]) => [k, t, await read(t)] as const));
    for (const composite of ['epsilon-plus-flat', 'epsilon-gamma-box', 'epsilon']) {
      const bounds = composite === 'epsilon-gamma-box' ? { low: -3, high: 3 } : {};
      const a = await ex.lrp(g, x, { target: [1, 4], composite, ...bounds, returnLayers: true });
      const b = await ex.lrp(own, x, { target: [1, 4], composite, ...bounds });
      expectClose(await read(a.attribution), await read(b), 1e-9, 1e-12, composite);
      // the residual addition is a ResidualSum node, and relevance is reported at it
      expect(g.kindOf(g.nodes.find((n) => n.name === '/layer1/Add')!)).toBe('ResidualSum');
      expect(a.layers['/layer1/Add'].shape).toEqual([2, 8, 6, 6]);
    }
    // the BatchNorm folding was undone: the same tensors with the same values
    const now = g.stateDict();
    for (const [k, t, v] of before) {
      expect(now.get(k)).toBe(t);
      expect(await read(t)).toEqual(v);
    }
  });

  it("torch's Pad + AveragePool pair loads, matches PyTorch, and LRP through it equals the padded AvgPool2d's", async () => {
    const g = load('avgpool_pad_opset13.onnx');
    expect(g.nodes.map((n) => n.op)).toContain('Pad');
    const input = npy('pad_input.npy');
    const want = npy('pad_output.npy');
    const x = bl.tensor(input.data, input.shape);
    expectClose(await read(g.call(x)), want.data, 1e-5, 1e-6, 'logits vs PyTorch');
    const own = new Sequential(new Conv2d(2, 4, 3, { padding: 1 }), new ReLU(), new AvgPool2d({ kernel: 3, stride: 2, padding: 1, countIncludePad: true }), new Flatten(), new Linear(36, 3));
    copyWeights(g, own, { conv: '0', fc: '4' });
    const a = await read(await ex.lrp(g, x, { target: 'predicted', composite: 'epsilon-plus-flat' }));
    const b = await read(await ex.lrp(own, x, { target: 'predicted', composite: 'epsilon-plus-flat' }));
    expectClose(a, b, 1e-9, 1e-12, 'relevance');
  });

  it('a MatMul of two activations is not a linear layer, and Add(x, x) gives each slot its own relevance', async () => {
    // built by hand: y = (x W1) * (x W2) summed is bilinear; an Add of a tensor with itself
    const g = load('resnet_opset13.onnx');
    const add = g.nodes.find((n) => n.name === '/layer1/Add')!;
    expect(g.kindOf(add)).toBe('ResidualSum');
    expect(g.kindOf({ ...add, op: 'MatMul', module: undefined, kind: undefined })).toBe('MatMul');
    const conv = g.nodes.find((n) => n.op === 'Gemm')!;
    expect(g.kindOf(conv)).toBe('Linear');
    // Add(x, x) through a ResidualSum: epsilon gives x / (2x) of R to each slot, so R in total
    const s = new ResidualSum();
    const x = bl.tensor([[0.5, -2, 3]]);
    const R0 = bl.tensor([[1, 1, 1]]);
    const r = bl.withRules({ ResidualSum: ex.lrpRules.epsilon() }, () => {
      const v = bl.vjp((t: Tensor) => s.call(t, t), x);
      try {
        return v.vjp(R0)[0];
      } finally {
        v.dispose();
      }
    });
    expectClose(await read(r), [1, 1, 1], 1e-5, 1e-5, 'Add(x, x) relevance');
    const base = bl.withRules({ ResidualSum: (ct: Tensor, ctx: bl.RuleContext) => ctx.base!(ct) }, () => bl.grad((t: Tensor) => bl.sum(s.call(t, t)))(x));
    expect(Array.from(await read(base))).toEqual([2, 2, 2]);
  });

  it('a rule set keyed by the ONNX op type or node name reaches the node', async () => {
    const g = load('avgpool_pad_opset13.onnx');
    const x = bl.tensor(npy('pad_input.npy').data, [2, 2, 6, 6]);
    const seen: string[] = [];
    const spy = (tag: string): bl.Rule => (ct, ctx) => (seen.push(`${tag} ${ctx.layer!.path} ${ctx.layer!.kind}`), ctx.base!(ct));
    await ex.saliency(g, x, { target: 0, rules: { Gemm: spy('op'), '/conv/Conv': spy('path') } });
    expect(seen.sort()).toEqual(['op /fc/Gemm Linear', 'path /conv/Conv Conv2d']);
  });
});

// models/describe.ts: every layer's name, op type and output shape, for an own Module (module
// paths and kinds) and an ONNX import (node names and op types). The expected shapes are worked
// out from the architectures by hand; the ONNX one is tests/fixtures/make_onnx_fixtures.py's Net.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import { Sequential } from '../../models/containers.ts';
import { describeLayers } from '../../models/describe.ts';
import { loadOnnx, parseOnnx } from '../../models/io/onnx.ts';
import { Conv2d, Flatten, Linear, MaxPool2d, ReLU } from '../../models/layers.ts';

beforeAll(async () => {
  await bl.init({ backend: 'cpu' });
});

describe('describeLayers', () => {
  it('own modules: paths, kinds and output shapes; the input stays the caller\'s', () => {
    const net = new Sequential(['features', new Sequential(new Conv2d(3, 4, 3, { padding: 1 }), new ReLU(), new MaxPool2d({ kernel: 2 }))], ['flat', new Flatten()], ['head', new Linear(4 * 3 * 5, 7)]);
    const x = bl.zeros([2, 3, 6, 10]);
    const layers = describeLayers(net, x);
    expect(layers).toEqual([
      { name: 'features', op: 'Sequential', outputShape: [2, 4, 3, 5] },
      { name: 'features.0', op: 'Conv2d', outputShape: [2, 4, 6, 10] }, // 3x3, padding 1: same size
      { name: 'features.1', op: 'ReLU', outputShape: [2, 4, 6, 10] },
      { name: 'features.2', op: 'MaxPool2d', outputShape: [2, 4, 3, 5] }, // 2x2, stride 2
      { name: 'flat', op: 'Flatten', outputShape: [2, 60] },
      { name: 'head', op: 'Linear', outputShape: [2, 7] },
    ]);
    expect(x.disposed).toBe(false);
    // a batch shape instead of a tensor
    expect(describeLayers(net, [1, 3, 6, 10]).map((l) => l.outputShape?.[0])).toEqual([1, 1, 1, 1, 1, 1]);
    expect(() => describeLayers(net, [0, 3])).toThrow(/batch shape of positive integers/);
    x.dispose();
    net.dispose();
  });

  it('a module that is not called keeps no shape (and does not fail the listing)', () => {
    class Skips extends Sequential {
      override forward(x: bl.Tensor) {
        return this.module('a').call(x);
      }
    }
    const net = new Skips(['a', new ReLU()], ['b', new ReLU()]);
    expect(describeLayers(net, [1, 2])).toEqual([
      { name: 'a', op: 'ReLU', outputShape: [1, 2] },
      { name: 'b', op: 'ReLU', outputShape: null },
    ]);
  });

  it('ONNX: every node with its op type, output names and shape', () => {
    const path = fileURLToPath(new URL('../fixtures/onnx/resnet_opset13.onnx', import.meta.url));
    const bytes = new Uint8Array(readFileSync(path));
    const model = loadOnnx(bytes, { source: path });
    const layers = describeLayers(model, [1, 3, 12, 12]);
    // one row per node of the file, in its order
    const nodes = parseOnnx(bytes).graph!.node!;
    expect(layers.map((l) => l.op)).toEqual(nodes.map((n) => n.op_type));
    const by = (name: string) => layers.find((l) => l.name === name);
    // Net: conv1 3 -> 8 (3x3, padding 1) keeps 12x12; MaxPool2d(2) halves it; layer1 keeps 8 x 6 x 6; fc -> 5
    expect(by('/conv1/Conv')).toEqual({ name: '/conv1/Conv', op: 'Conv', outputShape: [1, 8, 12, 12], outputs: ['/conv1/Conv_output_0'] });
    expect(by('/pool/MaxPool')?.outputShape).toEqual([1, 8, 6, 6]);
    expect(by('/layer1/conv2/Conv')?.outputShape).toEqual([1, 8, 6, 6]);
    expect(layers[layers.length - 1]).toMatchObject({ op: 'Gemm', outputShape: [1, 5] });
    expect(layers.every((l) => l.outputShape !== null)).toBe(true);
    model.dispose();
  });
});

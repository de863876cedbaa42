// ONNX import (models/io/onnx.ts) against PyTorch: the fixtures in tests/fixtures/onnx/ were made
// offline by tests/fixtures/make_onnx_fixtures.py with Debian's torch 1.13 / onnx 1.12; see its
// header for what each file holds. Outputs must match PyTorch within
//   max |ours - torch| <= 1e-4 * max(1, |torch|)
// on the float64 CPU backend and on WebGPU (float32; SwiftShader in CI).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../engine/backend.ts';
import * as bl from '../../engine/index.ts';
import { init, memory, slice, sum, tensor, tidy, valueAndGradAt, withBackend } from '../../engine/index.ts';
import { BatchNorm2d, Conv2d, Dropout, Linear } from '../../models/layers.ts';
import { loadOnnx, OnnxModel, parseOnnx, SUPPORTED_ONNX_OPS } from '../../models/io/onnx.ts';
import { decodeMessage, type MessageSpec } from '../../models/io/protobuf.ts';
import { parseNpy } from '../../models/io/npy.ts';
import { loadWeights, saveWeights } from '../../models/io/weights.ts';
import { expectClose, rng } from '../helpers.ts';

const DIR = fileURLToPath(new URL('../fixtures/onnx/', import.meta.url));
const bytes = (f: string) => new Uint8Array(readFileSync(DIR + f));
const npy = (f: string) => parseNpy(bytes(f), f);
const load = (f: string) => loadOnnx(bytes(f), { source: f });
const TOL = 1e-4;
/**
 * err_unsupported_op.onnx (a Relu and an Erf node 'my_erf') with the op type 'Erf' rewritten to
 * 'Tan' (same length, so the protobuf stays valid): Erf is supported now, Tan is not.
 */
function unsupported(): Uint8Array {
  const b = bytes('err_unsupported_op.onnx');
  const at = Buffer.from(b).indexOf('Erf');
  expect(at).toBeGreaterThan(0);
  b.set(new TextEncoder().encode('Tan'), at);
  return b;
}

const cpu = await init({ backend: 'cpu', setDefault: false });
const gpu = await init({ backend: 'webgpu', setDefault: false });
const backends: [string, Backend][] = [
  ['cpu', cpu],
  ['webgpu', gpu],
];

afterAll(() => {
  gpu.destroy();
  cpu.destroy();
});

const input = npy('resnet_input.npy');
const expected = npy('resnet_output.npy');
const expectedGrad = npy('resnet_grad_layer1_conv1.npy');

describe.each(backends)('PyTorch exports on %s', (_, backend) => {
  const on = <T>(fn: () => T) => withBackend(backend, fn);

  it.each([11, 13, 17])('resnet at opset %i matches PyTorch', async (opset) => {
    const m = on(() => load(`resnet_opset${opset}.onnx`));
    expect(m.info.opset).toBe(opset);
    const y = on(() => m.forward(tensor(input.data, input.shape)));
    expect(y.shape).toEqual([2, 5]);
    expectClose(await y.data(), expected.data, TOL, TOL, `opset ${opset}`);
    y.dispose();
    // batch 1 (the opset 11/17 exports compute the flatten shape from the input's at run time)
    const y1 = on(() => tidy(() => m.forward(slice(tensor(input.data, input.shape), [1], [1]))));
    expect(y1.shape).toEqual([1, 5]);
    expectClose(await y1.data(), expected.data.subarray(5, 10), TOL, TOL, `opset ${opset}, batch 1`);
    y1.dispose();
    m.dispose();
  });

  it('activations by node name and output tensor name; the gradient matches PyTorch', async () => {
    const m = on(() => load('resnet_opset13.onnx'));
    const x = on(() => tensor(input.data, input.shape));
    const score = () => sum(slice(m.forward(x), [0, 0], [2, 1]));
    for (const name of ['/layer1/conv1/Conv_output_0', '/layer1/conv1/Conv']) {
      const r = on(() => valueAndGradAt(score, [name]));
      expect(r.activations[name].shape).toEqual([2, 8, 6, 6]);
      expect(r.grads[name].shape).toEqual(r.activations[name].shape);
      expectClose(await r.grads[name].data(), expectedGrad.data, TOL, TOL, `d logit0 / d ${name}`);
      for (const t of [r.value, ...Object.values(r.activations), ...Object.values(r.grads)]) t.dispose();
    }
    // later layers and the graph output by its tensor name, all in one call, each equal to what
    // a call for that name alone gives
    const shapes: Record<string, number[]> = { '/layer1/Relu_1_output_0': [2, 8, 6, 6], '/layer1/Add': [2, 8, 6, 6], '/fc/Gemm': [2, 5], logits: [2, 5] };
    const all = on(() => valueAndGradAt(score, Object.keys(shapes)));
    for (const [name, shape] of Object.entries(shapes)) {
      const r = on(() => valueAndGradAt(score, [name]));
      expect(r.grads[name].shape).toEqual(shape);
      expect(all.grads[name].shape).toEqual(shape);
      expectClose(await all.grads[name].data(), await r.grads[name].data(), 0, 0, `d logit0 / d ${name} (together vs alone)`);
      if (shape.length === 2) expect(Array.from(await r.grads[name].data())).toEqual([1, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
      for (const t of [r.value, ...Object.values(r.activations), ...Object.values(r.grads)]) t.dispose();
    }
    for (const t of [all.value, ...Object.values(all.activations), ...Object.values(all.grads)]) t.dispose();
    x.dispose();
    m.dispose();
  });

  it.each(['ops_conv_opset13', 'ops_misc_opset13', 'ops_softmax_opset11'])('%s: every output matches PyTorch', async (name) => {
    const m = on(() => load(`${name}.onnx`));
    const x = npy(`${name}_input.npy`);
    const ys = on(() => m.run([tensor(x.data, x.shape)]));
    expect(ys.length).toBe(m.outputNames.length);
    for (let k = 0; k < ys.length; k++) {
      const out = m.outputNames[k];
      const e = npy(`${name}_${out}.npy`);
      expect(ys[k].shape, out).toEqual(e.shape);
      expectClose(await ys[k].data(), e.data, TOL, TOL, `${name}: ${out}`);
      ys[k].dispose();
    }
    m.dispose();
  });

  it('repeated runs leave no tensors behind', async () => {
    const m = on(() => load('resnet_opset17.onnx'));
    const x = on(() => tensor(input.data, input.shape));
    const run = async () => {
      const y = on(() => m.forward(x));
      await y.data();
      y.dispose();
    };
    await run();
    const before = memory(backend).liveBuffers;
    for (let i = 0; i < 3; i++) await run();
    expect(memory(backend).liveBuffers).toBe(before);
    x.dispose();
    m.dispose();
  });
});

describe('model structure', () => {
  const on = <T>(fn: () => T) => withBackend(cpu, fn);

  it('layers are the project layers, with PyTorch parameters under the node names', async () => {
    const m = on(() => load('resnet_opset13.onnx'));
    expect(m).toBeInstanceOf(OnnxModel);
    expect(m.module('/layer1/conv1/Conv')).toBeInstanceOf(Conv2d);
    expect(m.module('/layer1/bn2/BatchNormalization')).toBeInstanceOf(BatchNorm2d);
    expect(m.module('/fc/Gemm')).toBeInstanceOf(Linear);
    expect((m.module('/layer1/bn2/BatchNormalization') as BatchNorm2d).eps).toBeCloseTo(1e-3, 9);
    const state = m.stateDict();
    expect(state.get('/conv1/Conv.weight')!.shape).toEqual([8, 3, 3, 3]);
    expect(state.get('/conv1/Conv.bias')!.shape).toEqual([8]);
    expect(state.has('/layer1/conv1/Conv.bias')).toBe(false); // bias=False in PyTorch
    expect(state.get('/layer1/bn1/BatchNormalization.running_var')!.shape).toEqual([8]);
    expect(state.get('/fc/Gemm.weight')!.shape).toEqual([5, 8]);
    expect(m.namedParameters().length).toBe(2 + 2 + 1 + 2 + 1 + 2 + 2); // conv1 w,b; bn1; layer1.conv1; bn; conv2; bn; fc
    expect(m.info.parameterNames.get('layer1.conv1.weight')).toBe('/layer1/conv1/Conv.weight');
    expect(m.info.parameterNames.get('bn1.running_mean')).toBe('/bn1/BatchNormalization.running_mean');
    expect(m.info.inputs).toEqual([{ name: 'input', shape: [2, 3, 12, 12] }]);
    expect(m.info.outputs[0].name).toBe('logits');
    expect(m.info.producer).toMatch(/^pytorch/);
    expect(m.layerNames().map((l) => l.node)).toContain('/layer1/Add');
    expect(m.layerNames().find((l) => l.node === '/layer1/conv1/Conv')!.outputs).toEqual(['/layer1/conv1/Conv_output_0']);
    // the dynamic-batch export keeps the batch size symbolic
    const m11 = on(() => load('resnet_opset11.onnx'));
    expect(m11.info.inputs[0].shape).toEqual(['batch', 3, 12, 12]);
    m11.dispose();
    m.dispose();
  });

  it('weights move through safetensors: a model saved and loaded into a fresh import gives the same output', async () => {
    const a = on(() => load('resnet_opset13.onnx'));
    const b = on(() => load('resnet_opset11.onnx'));
    // perturb b, then restore it from a's weights (both exports name nodes alike)
    on(() => b.setTensor('/fc/Gemm.bias', tensor([9, 9, 9, 9, 9], [5])));
    const file = await saveWeights(a);
    on(() => loadWeights(b, file, { source: 'a.safetensors' }));
    const y = on(() => b.forward(tensor(input.data, input.shape)));
    expectClose(await y.data(), expected.data, TOL, TOL);
    y.dispose();
    a.dispose();
    b.dispose();
  });

  it('Dropout is an identity at inference and a Dropout layer (MC dropout works)', async () => {
    const m = on(() => load('ops_misc_opset13.onnx'));
    const d = m.module('drop') as Dropout;
    expect(d).toBeInstanceOf(Dropout);
    expect(d.p).toBeCloseTo(0.3, 6);
    const x = npy('ops_misc_opset13_input.npy');
    const i = m.outputNames.indexOf('const_add');
    const e0 = npy('ops_misc_opset13_const_add.npy').data;
    const y0 = on(() => m.run([tensor(x.data, x.shape)]));
    expectClose(await y0[i].data(), e0, TOL, TOL, 'dropout at inference');
    y0.forEach((t) => t.dispose());
    d.mcDropout = true;
    const ys = on(() => m.run([tensor(x.data, x.shape)]));
    const got = await ys[i].data();
    const e = npy('ops_misc_opset13_const_add.npy').data;
    let differ = 0;
    for (let k = 0; k < e.length; k++) if (Math.abs(got[k] - e[k]) > 1e-4) differ++;
    expect(differ).toBeGreaterThan(0);
    ys.forEach((t) => t.dispose());
    m.dispose();
  });

  it('loading then disposing, or failing to load, leaves no tensors behind', () => {
    const before = memory(cpu).liveBuffers;
    for (const f of ['resnet_opset17.onnx', 'ops_misc_opset13.onnx', 'ops_conv_opset13.onnx']) on(() => load(f)).dispose();
    expect(() => on(() => loadOnnx(unsupported(), { source: 'tan.onnx' }))).toThrow();
    const full = bytes('resnet_opset13.onnx');
    expect(() => on(() => loadOnnx(full.subarray(0, full.length - 1)))).toThrow();
    expect(memory(cpu).liveBuffers).toBe(before);
  });

  it('the supported op list covers the brief', () => {
    for (const op of ['Conv', 'Relu', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'Gemm', 'MatMul', 'Add', 'Mul', 'Sub', 'Div', 'Flatten', 'Reshape',
      'BatchNormalization', 'Softmax', 'Dropout', 'Concat', 'Sigmoid', 'Tanh', 'Identity', 'Constant', 'Shape', 'Gather', 'Unsqueeze']) {
      expect(SUPPORTED_ONNX_OPS).toContain(op);
    }
  });
});

describe('errors', () => {
  const on = <T>(fn: () => T) => withBackend(cpu, fn);

  it('an unsupported op names the op, the node and the opset', () => {
    expect(() => on(() => loadOnnx(unsupported(), { source: 'err_unsupported_op.onnx' }))).toThrow(/err_unsupported_op\.onnx: unsupported ONNX op 'Tan' in node 'my_erf' \(opset 13\)/);
  });

  it('a missing initializer names the node and the input', () => {
    expect(() => on(() => load('err_missing_initializer.onnx'))).toThrow(
      /err_missing_initializer\.onnx: node 'conv_missing_w' \(Conv\) reads input 'w', which is not a graph input, an initializer or an earlier node's output/,
    );
  });

  it('external data is refused clearly', () => {
    expect(() => on(() => load('err_external_data.onnx'))).toThrow(/initializer 'w_ext': its data is stored outside the \.onnx file \(in 'weights\.bin'\)/);
  });

  it('MaxPool with ceil_mode = 1 (once refused) gives the ceil-rounded windows', async () => {
    // kernel 3, stride 2 on 4x4: ceil((4 - 3) / 2) + 1 = 2 windows per axis, the last one clipped
    // to rows / columns 2..3 (floor rounding would give 1)
    const x = Array.from({ length: 32 }, (_, i) => Math.sin(i * 1.7));
    const y = on(() => tidy(() => load('err_maxpool_ceil.onnx').forward(tensor(x, [1, 2, 4, 4]))));
    expect(y.shape).toEqual([1, 2, 2, 2]);
    const want: number[] = [];
    for (let c = 0; c < 2; c++)
      for (let i = 0; i < 2; i++)
        for (let j = 0; j < 2; j++) {
          let m = -Infinity;
          for (let u = 2 * i; u < Math.min(2 * i + 3, 4); u++) for (let v = 2 * j; v < Math.min(2 * j + 3, 4); v++) m = Math.max(m, x[c * 16 + u * 4 + v]);
          want.push(m);
        }
    expectClose(await y.data(), want, 1e-12, 1e-12, 'ceil-mode max pool');
    y.dispose();
  });

  it('a truncated file gives a clear error at every cut point, never a crash', () => {
    const full = bytes('resnet_opset13.onnx');
    const cuts = [0, 1, 2, 5, 17, 21, 100, 1000, 4000, full.length - 100, full.length - 3, full.length - 1];
    for (let n = 0; n < full.length; n += 97) cuts.push(n);
    for (const n of cuts) {
      let err: unknown = null;
      try {
        on(() => loadOnnx(full.subarray(0, n), { source: 'cut.onnx' }));
      } catch (e) {
        err = e;
      }
      expect(err, `cut at ${n}`).toBeInstanceOf(Error);
      expect((err as Error).message, `cut at ${n}`).toMatch(/^cut\.onnx: /);
      expect((err as Error).message, `cut at ${n}`).toMatch(/truncated|empty|no graph|opset/);
    }
  });

  it('corrupted bytes and non-ONNX files give errors, never crashes', () => {
    const full = bytes('resnet_opset13.onnx');
    const next = rng(99);
    let loaded = 0;
    for (let trial = 0; trial < 200; trial++) {
      const b = full.slice();
      for (let k = 0; k < 3; k++) b[Math.floor(next() * b.length)] = Math.floor(next() * 256);
      try {
        on(() => loadOnnx(b, { source: 'corrupt.onnx' })).dispose();
        loaded++;
      } catch (e) {
        expect(e).toBeInstanceOf(Error);
        expect((e as Error).message).toMatch(/corrupt\.onnx/);
      }
    }
    expect(loaded).toBeLessThan(200);
    expect(() => on(() => loadOnnx(bytes('resnet_input.npy'), { source: 'input.npy' }))).toThrow(/^input\.npy: /);
    expect(() => on(() => loadOnnx(new TextEncoder().encode('hello, world'), { source: 'text.onnx' }))).toThrow(/^text\.onnx: /);
  });

  it('a wrong input shape at run time names the node', () => {
    const m = on(() => load('resnet_opset13.onnx'));
    expect(() => on(() => m.forward(bl.zeros([1, 4, 12, 12])))).toThrow(/node '\/conv1\/Conv' \(Conv\).*\[1, 4, 12, 12\]/);
    m.dispose();
  });

  it('parseOnnx exposes the decoded protobuf', () => {
    const p = parseOnnx(bytes('resnet_opset17.onnx'));
    expect(p.opset_import?.find((o) => !o.domain)?.version).toBe(17);
    expect(p.graph?.node?.some((n) => n.op_type === 'Shape')).toBe(true);
    expect(p.graph?.initializer?.find((t) => t.name === 'fc.weight')?.dims).toEqual([5, 8]);
  });
});

describe('protobuf wire format', () => {
  // a tiny encoder, written here from the wire-format spec, to make test messages
  const varint = (v: bigint): number[] => {
    let u = BigInt.asUintN(64, v);
    const out: number[] = [];
    do {
      const b = Number(u & 0x7fn);
      u >>= 7n;
      out.push(u ? b | 0x80 : b);
    } while (u);
    return out;
  };
  const tag = (field: number, wire: number) => varint(BigInt(field * 8 + wire));
  const len = (field: number, body: number[]) => [...tag(field, 2), ...varint(BigInt(body.length)), ...body];
  const f32 = (v: number) => Array.from(new Uint8Array(Float32Array.of(v).buffer));
  const f64 = (v: number) => Array.from(new Uint8Array(Float64Array.of(v).buffer));
  const u8 = (xs: number[]) => Uint8Array.from(xs);

  const Inner: MessageSpec = { name: 'Inner', fields: { 1: { name: 's', type: 'string' } } };
  const Spec: MessageSpec = {
    name: 'Test',
    fields: {
      1: { name: 'i', type: 'int64' },
      2: { name: 'ints', type: 'int64', repeated: true },
      3: { name: 'f', type: 'float' },
      4: { name: 'd', type: 'double' },
      5: { name: 'z', type: 'sint64' },
      6: { name: 'fx', type: 'fixed64' },
      7: { name: 'inner', type: Inner, repeated: true },
      8: { name: 'floats', type: 'float', repeated: true },
      9: { name: 'b', type: 'bytes' },
      10: { name: 'ok', type: 'bool' },
    },
  };

  it('varints: 300, negative int64 (10 bytes), 2^53, zigzag sint64', () => {
    expect(varint(300n)).toEqual([0xac, 0x02]);
    expect(decodeMessage(Spec, u8([...tag(1, 0), 0xac, 0x02])).i).toBe(300);
    expect(varint(-1n).length).toBe(10);
    expect(decodeMessage(Spec, u8([...tag(1, 0), ...varint(-1n)])).i).toBe(-1);
    expect(decodeMessage(Spec, u8([...tag(1, 0), ...varint(-(2n ** 40n) - 7n)])).i).toBe(-(2 ** 40) - 7);
    expect(decodeMessage(Spec, u8([...tag(1, 0), ...varint(2n ** 53n)])).i).toBe(2 ** 53);
    for (const [v, enc] of [[0, 0n], [-1, 1n], [1, 2n], [-2, 3n], [2 ** 31, 2n ** 32n], [-(2 ** 40), 2n ** 41n - 1n]] as [number, bigint][]) {
      expect(decodeMessage(Spec, u8([...tag(5, 0), ...varint(enc)])).z).toBe(v);
    }
    expect(decodeMessage(Spec, u8([...tag(10, 0), 1])).ok).toBe(true);
  });

  it('fixed-width values, strings, sub-messages; the last scalar wins', () => {
    const m = decodeMessage(Spec, u8([
      ...tag(3, 5), ...f32(1.5), ...tag(4, 1), ...f64(-1 / 3), ...tag(6, 1), 5, 0, 0, 0, 1, 0, 0, 0,
      ...len(7, len(1, [...new TextEncoder().encode('héllo')])), ...len(7, []), ...len(9, [1, 2, 3]),
      ...tag(1, 0), 1, ...tag(1, 0), 2,
    ]));
    expect(m.f).toBe(1.5);
    expect(m.d).toBe(-1 / 3);
    expect(m.fx).toBe(2 ** 32 + 5);
    expect(m.inner).toEqual([{ s: 'héllo' }, {}]);
    expect(Array.from(m.b as Uint8Array)).toEqual([1, 2, 3]);
    expect(m.i).toBe(2);
  });

  it('repeated scalars packed and unpacked, merged in order', () => {
    const packedInts = len(2, [...varint(1n), ...varint(150n), ...varint(-2n)]);
    const m = decodeMessage(Spec, u8([...tag(2, 0), 7, ...packedInts, ...tag(2, 0), 9, ...len(8, [...f32(0.5), ...f32(-2)]), ...tag(8, 5), ...f32(3)]));
    expect(m.ints).toEqual([7, 1, 150, -2, 9]);
    expect(m.floats).toBeInstanceOf(Float32Array);
    expect(Array.from(m.floats as Float32Array)).toEqual([0.5, -2, 3]);
  });

  it('unknown fields of every wire type are skipped, groups included', () => {
    const m = decodeMessage(Spec, u8([
      ...tag(100, 0), ...varint(-5n), ...tag(101, 1), ...f64(1), ...len(102, [1, 2, 3]), ...tag(103, 5), ...f32(1),
      ...tag(104, 3), ...tag(1, 0), 5, ...tag(105, 3), ...tag(105, 4), ...tag(104, 4),
      ...tag(1, 0), 42,
    ]));
    expect(m).toEqual({ i: 42 });
  });

  it('malformed input: clear errors naming the source, the message and the field', () => {
    const bad: [number[], RegExp][] = [
      [[...tag(1, 0), 0x80, 0x80], /Test\.i at byte 1 runs past the end/],
      [[...tag(1, 0), ...Array(10).fill(0x80), 1], /longer than 10 bytes/],
      [[...len(9, [1, 2, 3]).slice(0, 4)], /Test\.b at byte 1 declares 3 bytes but only 2 remain/],
      [[...tag(3, 5), 0, 0], /Test\.f at byte 1 needs 4 bytes but only 2 remain/],
      [[...tag(1, 2), 0], /Test\.i \(field 1\) at byte 0 has wire type 2, expected 0/],
      [[...tag(100, 6), 0], /Test\.field 100: invalid wire type 6/],
      [[...tag(1, 6), 0], /Test\.i \(field 1\) at byte 0 has wire type 6, expected 0/],
      [[...tag(0, 0), 0], /field number 0/],
      [[...tag(104, 3), ...tag(1, 0), 5], /group 104 .* is not closed/],
      [[...tag(104, 4)], /unexpected end-group tag/],
      [[...len(8, [0, 0, 0])], /packed Test\.floats holds 3 bytes, not a multiple of 4/],
      [[...len(7, [...tag(1, 2), 9, 65])], /Inner\.s at byte \d+ declares 9 bytes but only 1 remain/],
    ];
    for (const [bytes, re] of bad) {
      expect(() => decodeMessage(Spec, u8(bytes), 'x.pb'), re.source).toThrow(/^x\.pb: malformed protobuf: /);
      expect(() => decodeMessage(Spec, u8(bytes), 'x.pb'), re.source).toThrow(re);
    }
  });
});

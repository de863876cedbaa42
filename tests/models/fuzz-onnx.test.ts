// Fuzzing the ONNX import (models/io/protobuf.ts, models/io/onnx/*.ts) with fast-check. Every case
// must either load (and dispose) or throw an Error whose message names the source, within CASE_MS,
// leaving no tensors behind. (a) The fixtures in tests/fixtures/onnx/ under random byte mutations,
// and with field-targeted edits: any varint the schema reads (a length, a dim, a data type, an
// attribute value) replaced by a boundary value; (b) graphs generated as objects and encoded here
// with a small protobuf writer: random ops wired to random names (undefined tensors, cycles, self
// references, outputs defined twice), initializers with hostile dims, data types and data lengths,
// NaN weights; plus properties that each such defect always gives its error. Fixed seeds and run
// counts; the regressions below name the bugs found.
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { INTERESTING, mutate, mutationArb, outcome as outcomeWithin } from './fuzz-helpers.ts';
import { init, memory, tidy, withBackend, zeros } from '../../engine/index.ts';
import { loadOnnx, parseOnnx } from '../../models/io/onnx.ts';
import { ModelProto } from '../../models/io/onnx/schema.ts';
import { decodeMessage, type MessageSpec } from '../../models/io/protobuf.ts';
import { encode, f32, i64, model, varint, type OnnxNode as Node, type OnnxTensor as Tensor } from './onnx-writer.ts';

const CASE_MS = 2000;
const outcome = <T>(fn: () => T, source: string, maxMs = CASE_MS) => outcomeWithin(fn, source, maxMs);
/** Byte ranges [start, end) of every varint value the schema reads (lengths included), for targeted edits. */
function varintSites(spec: MessageSpec, buf: Uint8Array, start: number, end: number, out: [number, number][] = []): [number, number][] {
  let p = start;
  const rd = () => {
    const s = p;
    while (p < end && buf[p] & 0x80) p++;
    p++;
    return s;
  };
  while (p < end) {
    rd();
    const tag = decodeVarint(buf, p - 1);
    const wire = tag & 7;
    const f = spec.fields[Math.floor(tag / 8)];
    if (wire === 0) out.push([rd(), p]);
    else if (wire === 1) p += 8;
    else if (wire === 5) p += 4;
    else if (wire === 2) {
      const s = rd();
      out.push([s, p]);
      const n = decodeVarint(buf, p - 1);
      if (f && typeof f.type !== 'string') varintSites(f.type, buf, p, p + n, out);
      p += n;
    } else break;
  }
  return out;
}

/** The varint ending at byte `last` (inclusive), read backwards to its start. */
function decodeVarint(buf: Uint8Array, last: number): number {
  let s = last;
  while (s > 0 && buf[s - 1] & 0x80) s--;
  let v = 0;
  for (let i = s, k = 0; i <= last; i++, k++) v += (buf[i] & 0x7f) * 2 ** (7 * k);
  return v;
}

// ---- fixtures and helpers ----

const DIR = fileURLToPath(new URL('../fixtures/onnx/', import.meta.url));
const files = readdirSync(DIR).filter((f) => f.endsWith('.onnx')).sort().map((f) => new Uint8Array(readFileSync(DIR + f)));
const cpu = await init({ backend: 'cpu', setDefault: false });
afterAll(() => cpu.destroy());

/** Load on the CPU backend and dispose; the outcome of the load. */
function tryLoad(bytes: Uint8Array, source: string) {
  return outcome(() => withBackend(cpu, () => loadOnnx(bytes, { source })).dispose(), source);
}

describe('fuzz: ONNX', () => {
  it('the writer and the site walker agree with the decoder on every fixture', () => {
    expect(files.length).toBeGreaterThanOrEqual(8);
    for (const f of files) {
      const d = parseOnnx(f, 'fixture.onnx');
      expect(Uint8Array.from(encode(ModelProto, d as Record<string, unknown>)).length).toBeGreaterThan(0);
      expect(varintSites(ModelProto, f, 0, f.length).length).toBeGreaterThan(5);
    }
    const small = model([{ op_type: 'Relu', input: ['x'], output: ['y'] }], [], ['y']);
    expect(withBackend(cpu, () => loadOnnx(small, { source: 'small.onnx' })).info.outputs[0].name).toBe('y');
  });

  it('(a) mutated fixtures: random flips, truncations, insertions, deletions and word overwrites', () => {
    const before = memory(cpu).liveBuffers;
    fc.assert(
      fc.property(fc.nat({ max: files.length - 1 }), fc.array(mutationArb(), { minLength: 1, maxLength: 5 }), (fi, ms) => {
        tryLoad(mutate(files[fi], ms), 'mutated.onnx');
      }),
      { seed: 15201, numRuns: 600 },
    );
    expect(memory(cpu).liveBuffers).toBe(before);
  });

  it('(a) mutated fixtures that still load also run on a small input, or fail with an Error naming the node', () => {
    const before = memory(cpu).liveBuffers;
    let ran = 0;
    fc.assert(
      fc.property(fc.nat({ max: files.length - 1 }), fc.array(fc.record({ at: fc.nat(), v: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 3 }), (fi, flips) => {
        const b = files[fi].slice();
        for (const { at, v } of flips) b[at % b.length] = v;
        const r = outcome(() => withBackend(cpu, () => loadOnnx(b, { source: 'run.onnx' })), 'run.onnx');
        if (!r.ok) return;
        const m = r.value;
        try {
          const shape = m.info.inputs[0]?.shape;
          if (!shape || !shape.every((d) => typeof d === 'number' && d > 0 && d <= 64) || (shape as number[]).reduce((a, d) => a * d, 1) > 4096) return;
          const t0 = performance.now();
          try {
            const y = withBackend(cpu, () => tidy(() => m.forward(zeros(shape as number[]))));
            for (const t of ([] as unknown[]).concat(y)) (t as { dispose(): void }).dispose();
            ran++;
          } catch (e) {
            expect(e).toBeInstanceOf(Error);
            expect((e as Error).message).toMatch(/node '/);
          }
          expect(performance.now() - t0).toBeLessThan(CASE_MS);
        } finally {
          m.dispose();
        }
      }),
      { seed: 15207, numRuns: 400 },
    );
    expect(ran).toBeGreaterThan(0);
    expect(memory(cpu).liveBuffers).toBe(before);
  });

  it('(a) field-targeted: a varint the schema reads (length, dim, type, attribute) replaced by a boundary value', () => {
    const sites = files.map((f) => varintSites(ModelProto, f, 0, f.length));
    const before = memory(cpu).liveBuffers;
    fc.assert(
      fc.property(
        fc.nat({ max: files.length - 1 }),
        fc.nat(),
        fc.oneof(fc.constantFrom(...INTERESTING, 3n, 16n, 100n, 1000n), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n })),
        (fi, si, v) => {
          const f = files[fi];
          const [s, e] = sites[fi][si % sites[fi].length];
          const enc: number[] = [];
          varint(v, enc);
          const b = new Uint8Array(f.length - (e - s) + enc.length);
          b.set(f.subarray(0, s));
          b.set(enc, s);
          b.set(f.subarray(e), s + enc.length);
          tryLoad(b, 'field.onnx');
        },
      ),
      { seed: 15202, numRuns: 600 },
    );
    expect(memory(cpu).liveBuffers).toBe(before);
  });

  // generated graphs
  const NAMES = ['x', 'w', 'b', 's', 'o0', 'o1', 'o2', 'o3', 'missing', ''];
  const dimsArb = fc.array(fc.oneof(fc.integer({ min: 0, max: 4 }), fc.constantFrom(-1, 2 ** 31, 2 ** 40, 2 ** 53 + 2)), { maxLength: 4 });
  const initArb = fc.record({
    name: fc.constantFrom('w', 'b', 's', 'x', 'o0'),
    dims: dimsArb,
    data_type: fc.constantFrom(1, 1, 1, 7, 7, 6, 11, 10, 16, 9, 0, 8, 14, 99),
    body: fc.oneof(
      fc.record({ raw: fc.uint8Array({ maxLength: 72 }) }),
      fc.record({ floats: fc.array(fc.oneof(fc.float({ min: -2, max: 2, noNaN: true }), fc.constantFrom(NaN, Infinity)), { maxLength: 20 }) }),
      fc.record({ ints: fc.array(fc.integer({ min: -3, max: 5 }), { maxLength: 6 }) }),
    ),
  }).map(({ name, dims, data_type, body }): Tensor => {
    const t: Tensor = { name, dims, data_type };
    if ('raw' in body) t.raw_data = body.raw;
    else if ('floats' in body) t.float_data = body.floats;
    else t.int64_data = body.ints;
    return t;
  });
  const attrArb = fc.oneof(
    fc.record({ name: fc.constant('axis'), type: fc.constant(2), i: fc.integer({ min: -5, max: 5 }) }),
    fc.record({ name: fc.constant('perm'), type: fc.constant(7), ints: fc.array(fc.integer({ min: -1, max: 4 }), { maxLength: 5 }) }),
    fc.record({ name: fc.constant('axes'), type: fc.constant(7), ints: fc.array(fc.integer({ min: -4, max: 4 }), { maxLength: 3 }) }),
    fc.record({ name: fc.constantFrom('kernel_shape', 'pads', 'strides'), type: fc.constant(7), ints: fc.array(fc.integer({ min: -1, max: 3 }), { maxLength: 4 }) }),
    fc.record({ name: fc.constant('value'), type: fc.constant(4), t: initArb }),
  );
  const nodeArb = fc.record({
    op_type: fc.constantFrom('Relu', 'Add', 'Mul', 'Identity', 'Reshape', 'Concat', 'Transpose', 'Gather', 'Shape', 'Unsqueeze', 'Squeeze', 'Conv', 'Gemm', 'MatMul', 'Flatten', 'Constant', 'Slice', 'Softmax', 'MaxPool', 'BatchNormalization', 'Cast', 'Erf'),
    input: fc.array(fc.constantFrom(...NAMES), { maxLength: 3 }),
    output: fc.array(fc.constantFrom('o0', 'o1', 'o2', 'o3', 'x', 'w', ''), { minLength: 1, maxLength: 2 }),
    attribute: fc.array(attrArb, { maxLength: 2 }),
  });

  it('(b) generated graphs: random ops, names, initializers and attributes load or give a named error', () => {
    const before = memory(cpu).liveBuffers;
    let loaded = 0;
    fc.assert(
      fc.property(fc.array(nodeArb, { maxLength: 6 }), fc.uniqueArray(initArb, { maxLength: 3, selector: (t) => t.name }), fc.array(fc.constantFrom(...NAMES), { minLength: 1, maxLength: 2 }), fc.constantFrom(7, 11, 13, 17, 3),
        (nodes, inits, outs, opset) => {
          if (tryLoad(model(nodes, inits, outs, opset), 'gen.onnx').ok) loaded++;
        }),
      { seed: 15203, numRuns: 1500 },
    );
    expect(loaded).toBeGreaterThan(0);
    expect(memory(cpu).liveBuffers).toBe(before);
  });

  it('(b) a cycle of any length is always refused as cyclic', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.nat(), (k, back) => {
        // x -> n0 -> ... -> n(k-1), and node j (j <= k - 1) also reads node (j + back % (k - j))'s output: a back edge
        const j = back % k;
        const to = j + (back % (k - j));
        const nodes: Node[] = Array.from({ length: k }, (_, i) => ({ name: `n${i}`, op_type: 'Add', input: [i ? `t${i - 1}` : 'x', i === j ? `t${to}` : 'x'], output: [`t${i}`] }));
        const r = tryLoad(model(nodes, [], [`t${k - 1}`]), 'cycle.onnx');
        expect(r.ok).toBe(false);
        if (!r.ok) expect(r.error.message).toMatch(new RegExp(`^cycle\\.onnx: node 'n${j}' \\(Add\\) reads input 't${to}'.*cyclic`));
      }),
      { seed: 15204, numRuns: 200 },
    );
  });

  it('(b) a node reading a tensor nothing produces is always refused, naming node and tensor', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.nat(), fc.string({ minLength: 1, maxLength: 8 }).filter((s) => !/^t\d$|^x$/.test(s)), (k, at, ghost) => {
        const j = at % k;
        const nodes: Node[] = Array.from({ length: k }, (_, i) => ({ name: `n${i}`, op_type: 'Relu', input: [i === j ? ghost : i ? `t${i - 1}` : 'x'], output: [`t${i}`] }));
        const r = tryLoad(model(nodes, [], [`t${k - 1}`]), 'ghost.onnx');
        expect(r.ok).toBe(false);
        if (!r.ok) expect(r.error.message).toContain(`ghost.onnx: node 'n${j}' (Relu) reads input '${ghost}', which is not a graph input`);
      }),
      { seed: 15205, numRuns: 200 },
    );
  });

  it('(b) initializers with huge or invalid dims, or data that does not match them, are refused before allocating', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.integer({ min: 1, max: 2 ** 20 }), fc.constantFrom(2 ** 31, 2 ** 53 + 2, -1)), { minLength: 1, maxLength: 4 }), fc.boolean(), (dims, raw) => {
        const n = dims.reduce((a, d) => a * d, 1);
        fc.pre(n > 64 || dims.some((d) => d < 0));
        const t: Tensor = { name: 'w', dims, data_type: 1, ...(raw ? { raw_data: f32([1, 2, 3]) } : { float_data: [1, 2, 3] }) };
        const r = tryLoad(model([{ name: 'a', op_type: 'Add', input: ['x', 'w'], output: ['y'] }], [t], ['y']), 'dims.onnx');
        expect(r.ok).toBe(false);
        if (!r.ok) expect(r.error.message).toMatch(/^dims\.onnx: initializer 'w': (invalid dims|.*over the 2\^31 limit|raw_data holds 12 bytes|holds 3 values)/);
      }),
      { seed: 15206, numRuns: 200 },
    );
  });
});

describe('ONNX regressions', () => {
  const relu = (input: string, output: string, name = 'r'): Node => ({ name, op_type: 'Relu', input: [input], output: [output] });

  it('a million nested start-group tags give a named error (was RangeError: Maximum call stack size exceeded)', () => {
    const b = new Uint8Array(1_000_000).fill(0x7b); // field 15 (unknown in ModelProto), wire type 3
    expect(() => parseOnnx(b, 'groups.onnx')).toThrow(/^groups\.onnx: malformed protobuf: groups in ModelProto\.field 15 are nested more than 100 deep/);
    // closed groups are still skipped
    expect(decodeMessage(ModelProto, Uint8Array.from([0x7b, 0x7b, 0x7c, 0x7c, 0x08, 0x07]), 'g.pb')).toEqual({ ir_version: 7 });
  });

  it('a node reading its own output, or a later node\'s, says the graph is cyclic', () => {
    expect(() => withBackend(cpu, () => loadOnnx(model([relu('y', 'y')], [], ['y']), { source: 'self.onnx' }))).toThrow(/^self\.onnx: node 'r' \(Relu\) reads input 'y'.*reads its own output: the graph is cyclic/);
    expect(() => withBackend(cpu, () => loadOnnx(model([relu('b', 'a', 'first'), relu('a', 'b', 'second')], [], ['b']), { source: 'loop.onnx' }))).toThrow(
      /^loop\.onnx: node 'first' \(Relu\) reads input 'b'.*produced by node 1 \('second'\), later: the graph is cyclic or its nodes are not topologically sorted/,
    );
  });

  it('a node output that redefines a graph input or an earlier output is refused (was silently shadowed)', () => {
    expect(() => withBackend(cpu, () => loadOnnx(model([relu('x', 'x')], [], ['x']), { source: 'ssa.onnx' }))).toThrow(/^ssa\.onnx: node 'r' \(Relu\) writes output 'x', which is already defined/);
    expect(() => withBackend(cpu, () => loadOnnx(model([relu('x', 'y', 'a'), relu('x', 'y', 'b')], [], ['y']), { source: 'ssa.onnx' }))).toThrow(/node 'b' \(Relu\) writes output 'y'/);
  });

  it('folding a broadcast of two constants into a huge host value is refused (was an 80 GB allocation)', () => {
    const a: Tensor = { name: 'a', dims: [100000, 1], data_type: 1, raw_data: f32(new Array(100000).fill(1)) };
    const b: Tensor = { name: 'b', dims: [1, 100000], data_type: 1, raw_data: f32(new Array(100000).fill(1)) };
    const m = model([{ name: 'big', op_type: 'Add', input: ['a', 'b'], output: ['y'] }], [a, b], ['y']);
    expect(() => withBackend(cpu, () => loadOnnx(m, { source: 'bomb.onnx' }))).toThrow(/^bomb\.onnx: node 'big' \(Add, opset 13\): .*\[100000, 100000\] \(10000000000 elements\), over the 33554432-element limit/);
  });

  it('a Transpose perm that is not a permutation of a constant\'s axes is refused (was a wrong empty result)', () => {
    const s: Tensor = { name: 's', dims: [2], data_type: 7, raw_data: i64([2, 3]) };
    const m = model([{ name: 't', op_type: 'Transpose', input: ['s'], output: ['y'], attribute: [{ name: 'perm', type: 7, ints: [3] }] }], [s], ['y']);
    expect(() => withBackend(cpu, () => loadOnnx(m, { source: 'perm.onnx' }))).toThrow(/^perm\.onnx: node 't' \(Transpose, opset 13\): perm \[3\] is not a permutation of the 1 axes/);
  });

  it('dims past 2^53 are refused: [0, 2^53 + 2] used to pass as an empty tensor', () => {
    const w: Tensor = { name: 'w', dims: [0, 2n ** 53n + 2n], data_type: 1 };
    expect(() => withBackend(cpu, () => loadOnnx(model([{ name: 'a', op_type: 'Add', input: ['x', 'w'], output: ['y'] }], [w], ['y']), { source: 'd.onnx' }))).toThrow(/^d\.onnx: initializer 'w': invalid dims/);
  });

  it('NaN or infinite weights are refused, naming the initializer (allowNonFinite: true loads them)', () => {
    const w: Tensor = { name: 'w', dims: [2], data_type: 1, raw_data: f32([1, NaN]) };
    const m = model([{ name: 'a', op_type: 'Add', input: ['x', 'w'], output: ['y'] }], [w], ['y']);
    expect(() => withBackend(cpu, () => loadOnnx(m, { source: 'nan.onnx' }))).toThrow(/^nan\.onnx: initializer 'w' holds NaN at flat index 1 \(of 2\)/);
    withBackend(cpu, () => loadOnnx(m, { source: 'nan.onnx', allowNonFinite: true })).dispose();
  });

  it('maxBytes and maxMessages are configurable limits; many opset entries do not overflow the stack', () => {
    const m = model([relu('x', 'y')], [], ['y']);
    expect(() => withBackend(cpu, () => loadOnnx(m, { source: 'lim.onnx', maxBytes: 10 }))).toThrow(/^lim\.onnx: the file has \d+ bytes, over the limit of 10 \(maxBytes\)/);
    expect(() => withBackend(cpu, () => loadOnnx(m, { source: 'lim.onnx', maxMessages: 3 }))).toThrow(/^lim\.onnx: malformed protobuf: more than 3 messages/);
    const many = Uint8Array.from(encode(ModelProto, { ...(parseOnnx(m) as Record<string, unknown>), opset_import: Array.from({ length: 300000 }, () => ({ domain: '', version: 13 })) }));
    withBackend(cpu, () => loadOnnx(many, { source: 'many.onnx' })).dispose();
  });
});

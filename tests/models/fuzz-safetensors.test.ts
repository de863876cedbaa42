// Fuzzing the safetensors reader (models/io/safetensors.ts) with fast-check. Every case must either
// parse to a consistent result (each tensor's data as long as its shape says, the spans tiling the
// data buffer) or throw an Error whose message names the source, within CASE_MS. (a) The bundled
// weights (models/weights/*.safetensors) and the io fixtures under random byte mutations, and with
// targeted edits of the header length and of one tensor's dtype, shape and data_offsets; (b)
// generated headers with overlapping, out-of-range, negative or non-integer offsets, huge shapes
// and odd JSON. Fixed seeds and run counts; the regressions name the bugs found.
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { INTERESTING, mutate, mutationArb, outcome as outcomeWithin } from './fuzz-helpers.ts';
import { parseSafetensors, serializeSafetensors } from '../../models/io/safetensors.ts';

const CASE_MS = 1000;
const outcome = <T>(fn: () => T, source: string, maxMs = CASE_MS) => outcomeWithin(fn, source, maxMs);
// ---- the safetensors reader ----

const WEIGHTS = fileURLToPath(new URL('../../models/weights/', import.meta.url));
const IO = fileURLToPath(new URL('../fixtures/io/', import.meta.url));
const files = [
  ...readdirSync(WEIGHTS).filter((f) => f.endsWith('.safetensors')).map((f) => WEIGHTS + f),
  ...readdirSync(IO).filter((f) => f.endsWith('.safetensors')).map((f) => IO + f),
].map((p) => new Uint8Array(readFileSync(p)));

const DTYPE_BYTES: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

function checkResult(r: ReturnType<typeof parseSafetensors>) {
  for (const [, t] of r.tensors) {
    expect(t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)).toBe(true);
    expect(t.data.length).toBe(t.shape.reduce((a, d) => a * d, 1));
    if (['F64', 'F32', 'F16', 'BF16'].includes(t.dtype)) expect(t.data.every(Number.isFinite)).toBe(true);
  }
  for (const v of Object.values(r.metadata)) expect(typeof v).toBe('string');
}

function stBytes(header: unknown, data: Uint8Array, headerLen?: bigint): Uint8Array {
  const h = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, headerLen ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

function split(b: Uint8Array): { header: Record<string, unknown>; data: Uint8Array } {
  const n = Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));
  return { header: JSON.parse(new TextDecoder().decode(b.subarray(8, 8 + n))), data: b.subarray(8 + n) };
}

const hostileNumber = fc.oneof(
  fc.integer({ min: -5, max: 5000 }),
  fc.constantFrom(-1, 0.5, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 1e300, -0, Number.MAX_SAFE_INTEGER),
  fc.constantFrom('4' as unknown as number, null as unknown as number, true as unknown as number, [1] as unknown as number),
);
const dtypeArb = fc.oneof(fc.constantFrom(...Object.keys(DTYPE_BYTES)), fc.constantFrom('F8', 'f32', '', 'constructor', '__proto__', 'toString', 'C64'), fc.constant(7 as unknown as string));

describe('fuzz: safetensors', () => {
  it('has fixtures to mutate', () => {
    expect(files.length).toBeGreaterThanOrEqual(5);
  });

  it('(a) mutated files: random flips, truncations, insertions, deletions and word overwrites', () => {
    fc.assert(
      fc.property(fc.nat({ max: files.length - 1 }), fc.array(mutationArb(), { minLength: 1, maxLength: 6 }), (fi, ms) => {
        const r = outcome(() => parseSafetensors(mutate(files[fi], ms), 'mutated.safetensors'), 'mutated.safetensors');
        if (r.ok) checkResult(r.value);
      }),
      { seed: 15101, numRuns: 800 },
    );
  });

  it('(a) field-targeted: the header length, and one tensor\'s dtype, shape and data_offsets', () => {
    const parsed = files.map(split);
    fc.assert(
      fc.property(
        fc.nat({ max: files.length - 1 }),
        fc.nat(),
        fc.option(dtypeArb),
        fc.option(fc.oneof(fc.array(hostileNumber, { maxLength: 4 }), fc.constantFrom(null, 'x', {}) as fc.Arbitrary<unknown>)),
        fc.option(fc.oneof(fc.tuple(hostileNumber, hostileNumber), fc.array(hostileNumber, { maxLength: 3 }), fc.constant(null) as fc.Arbitrary<unknown>)),
        fc.option(fc.oneof(fc.integer({ min: -16, max: 16 }).map(BigInt), fc.constantFrom(...INTERESTING))),
        (fi, ti, dtype, shape, offs, dlen) => {
          const { header, data } = parsed[fi];
          const h = structuredClone(header) as Record<string, Record<string, unknown>>;
          const names = Object.keys(h).filter((k) => k !== '__metadata__');
          const t = h[names[ti % names.length]];
          if (dtype !== null) t.dtype = dtype;
          if (shape !== null) t.shape = shape;
          if (offs !== null) t.data_offsets = offs;
          const json = JSON.stringify(h);
          const len = BigInt(new TextEncoder().encode(json).length);
          const hl = dlen === null ? len : dlen >= -16n && dlen <= 16n ? (len + dlen < 0n ? 0n : len + dlen) : dlen;
          const r = outcome(() => parseSafetensors(stBytes(json, data, hl), 'field.safetensors'), 'field.safetensors');
          if (r.ok) checkResult(r.value);
        },
      ),
      { seed: 15102, numRuns: 1000 },
    );
  });

  it('(b) generated headers: overlapping, out-of-range and hostile offsets, shapes and dtypes', () => {
    const entry = fc.record({ dtype: dtypeArb, shape: fc.array(hostileNumber, { maxLength: 3 }), data_offsets: fc.array(hostileNumber, { minLength: 2, maxLength: 2 }) });
    const header = fc.dictionary(fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('__proto__', '__metadata__', 'constructor')), fc.oneof(entry, fc.constantFrom(null, 1, 'x', [] as unknown)) as fc.Arbitrary<unknown>, { maxKeys: 5 });
    fc.assert(
      fc.property(header, fc.uint8Array({ maxLength: 64 }), (h, data) => {
        const r = outcome(() => parseSafetensors(stBytes(h, data), 'gen.safetensors'), 'gen.safetensors');
        if (r.ok) {
          checkResult(r.value);
          let covered = 0;
          for (const [, t] of r.value.tensors) covered += t.data.length * DTYPE_BYTES[t.dtype];
          expect(covered).toBe(data.length); // tiling: no gaps, no overlap
        }
      }),
      { seed: 15103, numRuns: 1500 },
    );
  });

  it('(b) a valid file with one tensor\'s offsets shifted always fails with a gap/overlap or size error', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 2, maxLength: 5 }), fc.nat(), fc.integer({ min: -8, max: 8 }).filter((d) => d !== 0), (sizes, which, delta) => {
        const m = new Map(sizes.map((n, i) => [`t${i}`, { shape: [n], data: new Float32Array(n).fill(1) }]));
        const { header, data } = split(serializeSafetensors(m));
        const t = header[`t${which % sizes.length}`] as { data_offsets: number[] };
        t.data_offsets = t.data_offsets.map((o) => o + delta * 4);
        const r = outcome(() => parseSafetensors(stBytes(header, data), 'shift.safetensors'), 'shift.safetensors');
        expect(r.ok).toBe(false);
        if (!r.ok) expect(r.error.message).toMatch(/^shift\.safetensors: .*(gaps or overlap|run past the data|invalid data_offsets|tensors cover)/);
      }),
      { seed: 15104, numRuns: 300 },
    );
  });
});

describe('safetensors regressions', () => {
  it('one span listed many times is refused before decoding anything (was ~400 KB of memory per entry: 2000 entries took 800 MB and 13 s)', () => {
    const h: Record<string, unknown> = {};
    for (let i = 0; i < 20000; i++) h[`t${i}`] = { dtype: 'F32', shape: [25000], data_offsets: [0, 100000] };
    const b = stBytes(h, new Uint8Array(100000));
    const t0 = performance.now();
    expect(() => parseSafetensors(b, 'dup.safetensors')).toThrow(/^dup\.safetensors: tensor 't1' starts at 0, expected 100000: .*without gaps or overlap/);
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('sizes and offsets past 2^53 are refused ([0, 2^53 + 2] used to pass as an empty tensor)', () => {
    expect(() => parseSafetensors(stBytes({ a: { dtype: 'F32', shape: [0, 2 ** 53 + 2], data_offsets: [0, 0] } }, new Uint8Array(0)), 'big.safetensors')).toThrow(/^big\.safetensors: tensor 'a': invalid shape/);
  });

  it('a tensor entry that is not an object, and inherited dtype names, give named errors', () => {
    expect(() => parseSafetensors(stBytes({ a: null }, new Uint8Array(0)), 'n.safetensors')).toThrow(/^n\.safetensors: tensor 'a': expected an object/);
    expect(() => parseSafetensors(stBytes({ a: { dtype: 'constructor', shape: [], data_offsets: [0, 0] } }, new Uint8Array(0)), 'c.safetensors')).toThrow(/^c\.safetensors: tensor 'a': unsupported dtype "constructor"/);
  });

  it('__metadata__ keys named __proto__ stay data; an array is not metadata', () => {
    const r = parseSafetensors(stBytes('{"__metadata__": {"__proto__": "x", "k": "v"}}', new Uint8Array(0)), 'm.safetensors');
    expect(Object.getPrototypeOf(r.metadata)).toBe(Object.prototype);
    expect(Object.keys(r.metadata).sort()).toEqual(['__proto__', 'k']);
    expect(() => parseSafetensors(stBytes({ __metadata__: ['x'] }, new Uint8Array(0)), 'ma.safetensors')).toThrow(/^ma\.safetensors: __metadata__ must be an object/);
  });

  it('NaN or infinite weights are refused, naming the tensor and the element; allowNonFinite reads them', () => {
    const b = serializeSafetensors(new Map([['w', { shape: [3], data: [1, NaN, 2] }]]));
    expect(() => parseSafetensors(b, 'nan.safetensors')).toThrow(/^nan\.safetensors: tensor 'w' holds NaN at flat index 1 \(of 3\)/);
    expect(parseSafetensors(b, 'nan.safetensors', { allowNonFinite: true }).tensors.get('w')!.data[1]).toBeNaN();
  });

  it('a deeply nested header is refused quickly (JSON.parse took ~0.5 s per MB of "[": ~50 s at the 100 MB header limit)', () => {
    const b = stBytes('['.repeat(4_000_000), new Uint8Array(0));
    const t0 = performance.now();
    expect(() => parseSafetensors(b, 'deep.safetensors')).toThrow(/^deep\.safetensors: header nests deeper than 16 levels at byte 24/);
    expect(performance.now() - t0).toBeLessThan(500);
    // brackets inside strings do not count
    expect(parseSafetensors(stBytes({ __metadata__: { k: '[[[[[[[[[[[[[[[[[[[[[[[[["\\' } }, new Uint8Array(0)), 's.safetensors').metadata.k).toBe('[[[[[[[[[[[[[[[[[[[[[[[[["\\');
  });

  it('maxHeaderBytes and maxBytes are configurable limits', () => {
    const b = serializeSafetensors(new Map([['w', { shape: [1000], data: new Float32Array(1000) }]]));
    expect(() => parseSafetensors(b, 'h.safetensors', { maxHeaderBytes: 10 })).toThrow(/^h\.safetensors: header length \d+ is implausibly large \(over maxHeaderBytes = 10\)/);
    expect(() => parseSafetensors(b, 'd.safetensors', { maxBytes: 3999 })).toThrow(/^d\.safetensors: the tensors decode to more than 3999 bytes .*maxBytes.* 'w'/);
    expect(parseSafetensors(b, 'd.safetensors', { maxBytes: 4000 }).tensors.get('w')!.data.length).toBe(1000);
  });
});

// Fuzzing the .npy reader (models/io/npy.ts) with fast-check. Every case must either parse to a
// consistent array or throw an Error whose message names the source, within CASE_MS, never a
// crash, a hang or a non-Error. (a) The project's .npy fixtures under random byte flips,
// truncations, insertions, deletions and overwrites, and with targeted edits of the header length,
// version, descr, fortran_order and shape; (b) generated headers with hostile shapes (products
// past 2^53, past the data, huge dims, malformed tuples). Fixed seeds and run counts keep it
// deterministic and a few seconds long; the regressions below name the bugs the fuzzing found.
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mutate, mutationArb, outcome as outcomeWithin } from './fuzz-helpers.ts';
import { parseNpy, parseNpy64, serializeNpy } from '../../models/io/npy.ts';
import { loadInputs } from '../../cli/input.ts';

const CASE_MS = 1000;
const outcome = <T>(fn: () => T, source: string, maxMs = CASE_MS) => outcomeWithin(fn, source, maxMs);
// ---- the .npy reader ----

const FIX = fileURLToPath(new URL('../fixtures/', import.meta.url));
const fixtures = ['io', 'onnx', 'explain'].flatMap((d) => {
  try {
    return readdirSync(FIX + d).filter((f) => f.endsWith('.npy')).map((f) => `${d}/${f}`);
  } catch {
    return [];
  }
});
const files = fixtures.slice(0, 40).map((f) => ({ name: f, bytes: new Uint8Array(readFileSync(FIX + f)) }));

/** A parse result is consistent: sizes are non-negative integers whose product is the data's length. */
function checkArray(a: { shape: number[]; data: ArrayLike<number>; descr: string }) {
  expect(a.shape.every((d) => Number.isSafeInteger(d) && d >= 0)).toBe(true);
  expect(a.data.length).toBe(a.shape.reduce((x, d) => x * d, 1));
  expect(typeof a.descr).toBe('string');
}

function npyBytes(header: string, data: Uint8Array, opts: { version?: number; hlen?: number } = {}): Uint8Array {
  const v = opts.version ?? 1;
  const h = new TextEncoder().encode(header);
  const pre = v === 1 ? 10 : 12;
  const out = new Uint8Array(pre + h.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, v, 0]);
  const dv = new DataView(out.buffer);
  const hlen = opts.hlen ?? h.length;
  if (v === 1) dv.setUint16(8, hlen & 0xffff, true);
  else dv.setUint32(8, hlen >>> 0, true);
  out.set(h, pre);
  out.set(data, pre + h.length);
  return out;
}

const descrArb = fc.constantFrom('<f4', '<f8', '<f2', '|i1', '<i2', '<i4', '<i8', '|u1', '<u2', '<u4', '<u8', '|b1', '>f4', '<c8', '<U4', 'O', '', "<f4'", '<f16', '=f4');
const dimArb = fc.oneof(
  fc.integer({ min: 0, max: 8 }).map(String),
  fc.constantFrom('-1', '0', '2147483648', '4294967296', '9007199254740993', '99999999999999999999999', '1e3', '3L', 'None', '', ' ', '1.5', '0x10', '(2)'),
  fc.bigInt({ min: 0n, max: 2n ** 70n }).map(String),
);
const shapeStrArb = fc.array(dimArb, { maxLength: 5 }).chain((ds) => fc.constantFrom(`(${ds.join(', ')})`, `(${ds.join(',')},)`, `(${ds.join(', ')}`, `[${ds.join(', ')}]`));
const headerArb = fc.record({ descr: descrArb, fortran: fc.constantFrom('False', 'True', 'false', '0'), shape: shapeStrArb, pad: fc.nat({ max: 80 }) }).map(
  ({ descr, fortran, shape, pad }) => `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }${' '.repeat(pad)}\n`,
);

describe('fuzz: .npy', () => {
  it('has fixtures to mutate', () => {
    expect(files.length).toBeGreaterThan(10);
  });

  it('(a) mutated fixtures: random flips, truncations, insertions, deletions and word overwrites', () => {
    fc.assert(
      fc.property(fc.nat({ max: files.length - 1 }), fc.array(mutationArb(), { minLength: 1, maxLength: 6 }), (fi, ms) => {
        const b = mutate(files[fi].bytes, ms);
        const r = outcome(() => parseNpy(b, 'mutated.npy'), 'mutated.npy');
        if (r.ok) checkArray(r.value);
        const r64 = outcome(() => parseNpy64(b, 'mutated.npy', { allowNonFinite: false }), 'mutated.npy');
        if (r64.ok) {
          checkArray(r64.value);
          expect(Array.from(r64.value.data).every(Number.isFinite)).toBe(true);
        }
      }),
      { seed: 15001, numRuns: 1500 },
    );
  });

  it('(a) field-targeted: header length, version, descr and shape of real fixtures', () => {
    const parts = files.map(({ bytes }) => {
      const v = bytes[6];
      const pre = v === 1 ? 10 : 12;
      const hlen = v === 1 ? bytes[8] | (bytes[9] << 8) : new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
      return { v, header: new TextDecoder('latin1').decode(bytes.subarray(pre, pre + hlen)), data: bytes.subarray(pre + hlen) };
    });
    fc.assert(
      fc.property(
        fc.nat({ max: files.length - 1 }),
        fc.option(descrArb),
        fc.option(shapeStrArb),
        fc.option(fc.oneof(fc.integer({ min: -20, max: 20 }), fc.constantFrom(0xffff, 0xffffffff, 2 ** 31))),
        fc.option(fc.integer({ min: 0, max: 5 })),
        fc.option(fc.nat({ max: 200 })),
        (fi, descr, shape, dh, version, cut) => {
          const p = parts[fi];
          let header = p.header;
          if (descr !== null) header = header.replace(/'descr':\s*'[^']*'/, `'descr': '${descr}'`);
          if (shape !== null) header = header.replace(/'shape':\s*\([^)]*\)/, `'shape': ${shape}`);
          const hb = new TextEncoder().encode(header).length;
          const hlen = dh === null ? hb : Math.abs(dh) > 100 ? dh : Math.max(0, hb + dh);
          let b = npyBytes(header, p.data, { version: version ?? p.v, hlen });
          if (cut !== null) b = b.subarray(0, Math.max(0, b.length - cut));
          const r = outcome(() => parseNpy(b, 'field.npy'), 'field.npy');
          if (r.ok) checkArray(r.value);
        },
      ),
      { seed: 15002, numRuns: 1500 },
    );
  });

  it('(b) generated headers with hostile shapes and dtypes: a consistent array or a named error', () => {
    fc.assert(
      fc.property(headerArb, fc.uint8Array({ maxLength: 96 }), fc.constantFrom(1, 2, 3), (header, data, version) => {
        const r = outcome(() => parseNpy(npyBytes(header, data, { version }), 'gen.npy'), 'gen.npy');
        if (r.ok) {
          checkArray(r.value);
          // never more elements than the data can hold
          expect(r.value.data.length).toBeLessThanOrEqual(data.length);
        }
      }),
      { seed: 15003, numRuns: 2000 },
    );
  });

  it('(b) a shape whose product exceeds the data, or overflows, is always a truncation error before any allocation', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 2 ** 40 }), { minLength: 1, maxLength: 4 }), fc.uint8Array({ maxLength: 64 }), (dims, data) => {
        fc.pre(dims.reduce((a, d) => a * d, 1) * 4 > data.length);
        const b = npyBytes(`{'descr': '<f4', 'fortran_order': False, 'shape': (${dims.join(', ')},), }\n`, data);
        const r = outcome(() => parseNpy(b, 'big.npy'), 'big.npy');
        expect(r.ok).toBe(false);
        if (!r.ok) expect(r.error.message).toMatch(/^big\.npy: (truncated data|bad shape)/);
      }),
      { seed: 15004, numRuns: 500 },
    );
  });

  it('round trip: whatever serializeNpy writes reads back exactly', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 4 }).chain((shape) =>
        fc.tuple(fc.constant(shape), fc.float32Array({ minLength: shape.reduce((a, d) => a * d, 1), maxLength: shape.reduce((a, d) => a * d, 1), noDefaultInfinity: true, noNaN: true }))), ([shape, data]) => {
        const a = parseNpy(serializeNpy(shape, data), 'rt.npy');
        expect(a.shape).toEqual(shape);
        expect(Array.from(a.data)).toEqual(Array.from(data));
      }),
      { seed: 15005, numRuns: 200 },
    );
  });
});

describe('npy regressions (found by the fuzzing or by reading the parser)', () => {
  const f4 = (shape: string, data = new Uint8Array(0), version = 1) => npyBytes(`{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, }\n`, data, { version });

  it('a version 2 file cut inside its 4-byte header length names the file (was a DataView RangeError)', () => {
    const b = f4('(1,)', new Uint8Array(4), 2).subarray(0, 11);
    expect(() => parseNpy(b, 'cut.npy')).toThrow(/^cut\.npy: truncated header/);
  });

  it('malformed tuples are refused, not read as another shape: "(,)" was a scalar, "(1,,2)" was [1, 2]', () => {
    expect(() => parseNpy(f4('(,)', new Uint8Array(4)), 'a.npy')).toThrow(/^a\.npy: bad shape \(,\)/);
    expect(() => parseNpy(f4('(1,,2)', new Uint8Array(8)), 'b.npy')).toThrow(/^b\.npy: bad shape/);
    expect(() => parseNpy(f4('(1e3,)', new Uint8Array(4000)), 'c.npy')).toThrow(/^c\.npy: bad shape/);
    expect(parseNpy(f4('(2,)', new Uint8Array(8)), 'ok.npy').shape).toEqual([2]);
    expect(parseNpy(f4('()', new Uint8Array(4)), 'ok.npy').shape).toEqual([]);
  });

  it('sizes past 2^53 are refused (their product is not exact): (0, 9007199254740993) used to give an empty array', () => {
    expect(() => parseNpy(f4('(0, 9007199254740993)'), 'huge.npy')).toThrow(/^huge\.npy: bad shape.*2\^53/);
  });

  it('a product that overflows to Infinity, or past the data, is a truncation error naming the shape', () => {
    expect(() => parseNpy(f4('(4294967296, 4294967296, 4294967296)'), 'ovf.npy')).toThrow(/^ovf\.npy: truncated data: 0 bytes for .* in shape \(4294967296, 4294967296, 4294967296\)/);
  });

  it('a huge malformed header is quoted in part only', () => {
    const b = npyBytes(`{'descr': ${'x'.repeat(60000)}}`, new Uint8Array(0));
    const msg = (() => {
      try {
        parseNpy(b, 'long.npy');
      } catch (e) {
        return (e as Error).message;
      }
      return '';
    })();
    expect(msg).toMatch(/^long\.npy: malformed header: .*\(60\d\d\d characters\)$/);
    expect(msg.length).toBeLessThan(400);
  });

  it('maxBytes bounds the decoded array; allowNonFinite: false names the first NaN', () => {
    const b = f4('(4,)', new Uint8Array(new Float32Array([1, 2, NaN, 4]).buffer));
    expect(() => parseNpy(b, 'lim.npy', { maxBytes: 8 })).toThrow(/^lim\.npy: 4 elements .* over the limit of 8 \(maxBytes\)/);
    expect(parseNpy(b, 'nan.npy').data.length).toBe(4); // data may hold NaN by default
    expect(() => parseNpy(b, 'nan.npy', { allowNonFinite: false })).toThrow(/^nan\.npy: holds NaN at flat index 2/);
  });

  it('the command line refuses NaN inputs, naming the file', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const dir = mkdtempSync(`${(await import('node:os')).tmpdir()}/fuzz-npy-`);
    writeFileSync(`${dir}/x.npy`, serializeNpy([1, 2], [0, Infinity]));
    expect(() => loadInputs(`${dir}/x.npy`, [2])).toThrow(/x\.npy: holds Infinity at flat index 1/);
  });
});

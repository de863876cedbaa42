// Weight and array files (models/io/safetensors.ts, npy.ts, weights.ts), checked against
// implementations other than the project's own:
//   - python_written.safetensors was written by hand with Python's struct + json per the format
//     (tests/fixtures/make_io_fixtures.py); we read it.
//   - what the project writes is parsed here by hand against the format's rules, and the committed
//     project_written.safetensors (still byte-identical to what the serializer writes) was checked by
//     the same Python script with json/struct/numpy when the fixtures were made.
//   - numpy_*.npy were written by numpy.save.
// Malformed files must give an error that names the file and the problem, never a crash.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import { init, tensor, withBackend } from '../../engine/index.ts';
import { BatchNorm2d, Conv2d, Flatten, GlobalAvgPool, Linear, ReLU, setInitSeed } from '../../models/layers.ts';
import { Sequential as Seq } from '../../models/containers.ts';
import { parseNpy, serializeNpy } from '../../models/io/npy.ts';
import { parseSafetensors, serializeSafetensors } from '../../models/io/safetensors.ts';
import { loadWeights, saveWeights } from '../../models/io/weights.ts';
import { expectClose } from '../helpers.ts';
import { PROJECT_FILE, PROJECT_METADATA, PROJECT_TENSORS, projectSafetensors } from '../fixtures/make_project_safetensors.ts';

const DIR = fileURLToPath(new URL('../fixtures/io/', import.meta.url));
const file = (f: string) => new Uint8Array(readFileSync(DIR + f));

const cpu = await init({ backend: 'cpu', setDefault: false });
afterAll(() => cpu.destroy());
const on = <T>(fn: () => T) => withBackend(cpu, fn);

/** A safetensors file from a header object and a data buffer, with no checks (to make bad ones). */
function rawSafetensors(header: unknown, data: Uint8Array, headerText?: string): Uint8Array {
  const hb = new TextEncoder().encode(headerText ?? JSON.stringify(header));
  const out = new Uint8Array(8 + hb.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  out.set(data, 8 + hb.length);
  return out;
}

function smallNet(): Seq {
  return new Seq(new Conv2d(2, 4, 3, { padding: 1 }), new BatchNorm2d(4), new ReLU(), new GlobalAvgPool(), new Flatten(), new Linear(4, 3));
}

describe('safetensors', () => {
  it('round trip: saveWeights, then loadWeights into a fresh model, gives equal tensors and outputs', async () => {
    const [a, b] = on(() => {
      setInitSeed(1);
      const a = smallNet();
      setInitSeed(2);
      return [a, smallNet()];
    });
    // non-trivial BatchNorm statistics
    on(() => {
      a.setTensor('1.running_mean', tensor([0.1, -0.2, 0.3, 0.05], [4]));
      a.setTensor('1.running_var', tensor([0.5, 1.5, 2, 0.75], [4]));
    });
    const bytes = await saveWeights(a, { epoch: '3' });
    expect(on(() => loadWeights(b, bytes, { source: 'a.safetensors' }))).toEqual({ epoch: '3' });
    const sa = a.stateDict();
    const sb = b.stateDict();
    expect([...sb.keys()]).toEqual([...sa.keys()]);
    // the file holds float32: equal to the float32 rounding of the (float64, on the CPU) originals
    for (const [k, t] of sa) expect(Array.from(await sb.get(k)!.data()), k).toEqual(Array.from(await t.data(), Math.fround));
    // and saving the loaded model gives the same bytes
    expect(Buffer.from(await saveWeights(b, { epoch: '3' })).equals(Buffer.from(bytes))).toBe(true);
    const x = on(() => bl.randn([2, 2, 5, 5], { seed: 3 }));
    const [ya, yb] = on(() => [a.forward(x), b.forward(x)]);
    expectClose(await yb.data(), await ya.data(), 1e-6);
    // a model of another shape is refused with the differences named
    const c = on(() => new Seq(new Linear(3, 2)));
    expect(() => on(() => loadWeights(c, bytes, { source: 'a.safetensors' }))).toThrow(/^a\.safetensors: does not fit the model: .*'0\.weight' has shape \[4, 2, 3, 3\] in the file, \[2, 3\] in the model.*unexpected '1\.weight'/);
    for (const m of [a, b, c]) m.dispose();
    for (const t of [x, ya, yb]) t.dispose();
  });

  it('reads a file written by hand in Python (struct + json): F32, F16, I64, 0-d and empty tensors, metadata', () => {
    const { tensors, metadata } = parseSafetensors(file('python_written.safetensors'), 'python_written.safetensors');
    expect(metadata).toEqual({ format: 'pt', written_by: 'make_io_fixtures.py' });
    expect([...tensors.keys()].sort()).toEqual(['empty', 'half', 'scalar', 'steps', 'weight_f32']);
    const w = tensors.get('weight_f32')!;
    expect(w.dtype).toBe('F32');
    expect(w.shape).toEqual([2, 3]);
    expect(Array.from(w.data)).toEqual([-1.5, 0, 0.25, 1e-3, 3.5, -7].map(Math.fround));
    const h = tensors.get('half')!;
    expect(h.dtype).toBe('F16');
    expect(Array.from(h.data)).toEqual([1.5, -2.25, 65504, 2 ** -14, 2 ** -24]);
    const s = tensors.get('steps')!;
    expect(s.dtype).toBe('I64');
    expect(Array.from(s.data)).toEqual([-3, 0, 7, 2 ** 40]);
    expect(tensors.get('scalar')!.shape).toEqual([]);
    expect(Array.from(tensors.get('scalar')!.data)).toEqual([2.5]);
    expect(tensors.get('empty')!.shape).toEqual([0, 3]);
    expect(tensors.get('empty')!.data.length).toBe(0);
  });

  it('what the project writes follows the format (parsed here by hand)', () => {
    const t = new Map([
      ['z.last', { shape: [2, 2], data: [1, 2, 3, 4] }],
      ['a.first', { shape: [3], data: [0.5, -0.25, 1e-3] }],
      ['m.scalar', { shape: [], data: [7] }],
    ]);
    const bytes = serializeSafetensors(t, { note: 'x y' });
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    // 8-byte little-endian header length (high word 0 for small files; both halves read explicitly)
    const n = dv.getUint32(0, true) + dv.getUint32(4, true) * 2 ** 32;
    expect(dv.getUint32(4, true)).toBe(0);
    expect(bytes[0]).toBe(n & 0xff);
    expect(8 + n).toBeLessThanOrEqual(bytes.length);
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    // the header is JSON, padded at the end with spaces only, so that the data starts 8-aligned
    const trimmed = text.replace(/ +$/, '');
    expect(text.slice(trimmed.length)).toMatch(/^ *$/);
    expect(trimmed.endsWith('}')).toBe(true);
    expect((8 + n) % 8).toBe(0);
    const header = JSON.parse(text) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> & { __metadata__?: Record<string, string> };
    expect(header.__metadata__).toEqual({ note: 'x y' });
    const data = bytes.subarray(8 + n);
    const names = Object.keys(header).filter((k) => k !== '__metadata__');
    expect(names.sort()).toEqual(['a.first', 'm.scalar', 'z.last']);
    // offsets contiguous from 0, covering the data exactly; dtype F32; values little-endian float32
    const spans = names.map((k) => [...header[k].data_offsets, k] as [number, number, string]).sort((p, q) => p[0] - q[0]);
    let at = 0;
    for (const [b, e, k] of spans) {
      expect(b, k).toBe(at);
      expect(header[k].dtype).toBe('F32');
      expect(header[k].shape).toEqual(t.get(k)!.shape);
      expect(e - b).toBe(4 * t.get(k)!.data.length);
      const vals = Array.from({ length: (e - b) / 4 }, (_, i) => new DataView(data.buffer, data.byteOffset + b + 4 * i, 4).getFloat32(0, true));
      expect(vals).toEqual(t.get(k)!.data.map(Math.fround));
      at = e;
    }
    expect(at).toBe(data.length);
  });

  it('the serializer still writes the committed file that Python checked', () => {
    const committed = new Uint8Array(readFileSync(PROJECT_FILE));
    const now = projectSafetensors();
    expect(
      Buffer.from(now).equals(Buffer.from(committed)),
      'serializeSafetensors output changed: regenerate with npx tsx tests/fixtures/make_project_safetensors.ts && /usr/bin/python3 tests/fixtures/make_io_fixtures.py',
    ).toBe(true);
    const { tensors, metadata } = parseSafetensors(committed, 'project_written.safetensors');
    expect(metadata).toEqual(PROJECT_METADATA);
    for (const [k, v] of PROJECT_TENSORS) expect(Array.from(tensors.get(k)!.data)).toEqual(v.data.map(Math.fround));
  });

  describe('malformed files give an error naming the file and the problem', () => {
    const good = file('python_written.safetensors');
    const f32 = (n: number) => new Uint8Array(4 * n);
    const cases: [string, Uint8Array, RegExp][] = [
      ['empty file', new Uint8Array(0), /truncated: 0 bytes/],
      ['shorter than the length field', good.subarray(0, 5), /truncated: 5 bytes/],
      ['truncated in the header', good.subarray(0, 40), /header length \d+ runs past the end of the file/],
      ['truncated in the data', good.subarray(0, good.length - 10), /run past the data|truncated/],
      ['non-JSON header', rawSafetensors(null, f32(1), '{"a": {"dtype": "F32", '), /header is not valid UTF-8 JSON/],
      ['header that is not an object', rawSafetensors([1, 2], f32(1)), /header is not a JSON object/],
      ['invalid UTF-8 in the header', rawSafetensors(null, new Uint8Array(0), 'x').map((b, i) => (i === 8 ? 0xff : b)), /not valid UTF-8 JSON/],
      ['offsets past the end', rawSafetensors({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } }, f32(3)), /tensor 'b'.*run past the data/],
      ['overlapping tensors', rawSafetensors({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, f32(3)), /tensor 'b' starts at 4, expected 8/],
      ['a gap between tensors', rawSafetensors({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }, f32(3)), /tensor 'b' starts at 8, expected 4/],
      ['wrong byte count for the shape', rawSafetensors({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, f32(2)), /tensor 'a': data_offsets \[0, 8\] hold 8 bytes, but F32 \[3\] needs 12/],
      ['data left over', rawSafetensors({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32(2)), /data buffer has 8 bytes but the tensors cover 4/],
      ['unsupported dtype', rawSafetensors({ a: { dtype: 'C64', shape: [1], data_offsets: [0, 8] } }, f32(2)), /tensor 'a': unsupported dtype "C64"/],
      ['negative shape', rawSafetensors({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, f32(1)), /tensor 'a': invalid shape/],
      ['reversed offsets', rawSafetensors({ a: { dtype: 'F32', shape: [0], data_offsets: [4, 0] } }, f32(1)), /tensor 'a': data_offsets \[4, 0\]/],
      ['a huge header length', (() => { const b = good.slice(); new DataView(b.buffer).setUint32(4, 0x7fffffff, true); return b; })(), /header length \d+ runs past the end/],
    ];
    it.each(cases)('%s', (_, bytes, problem) => {
      let err: unknown = null;
      try {
        parseSafetensors(bytes, 'bad.safetensors');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(/^bad\.safetensors: /);
      expect((err as Error).message).toMatch(problem);
    });

    it('loadWeights names the file too', () => {
      const m = on(() => new Seq(new Linear(2, 2)));
      expect(() => on(() => loadWeights(m, good.subarray(0, 30), { source: 'w.safetensors' }))).toThrow(/^w\.safetensors: /);
      m.dispose();
    });
  });
});

describe('npy', () => {
  it.each([
    ['numpy_f4.npy', '<f4', [2, 3], [0.5, -1.25, 3.0, 1e-7, -0.0, 65504.5].map(Math.fround)],
    ['numpy_f8.npy', '<f8', [3], [1 / 3, -2.5e-300, 1e300].map(Math.fround)],
    ['numpy_i8.npy', '<i8', [2, 2], [-(2 ** 40), -1, 0, 2 ** 40 + 1].map(Math.fround)],
    ['numpy_u1.npy', '|u1', [5], [0, 1, 127, 128, 255]],
    ['numpy_scalar_f4.npy', '<f4', [], [4.75]],
    ['numpy_v2_f4.npy', '<f4', [2, 2], [1, 2, 3, 4]],
  ] as [string, string, number[], number[]][])('%s written by numpy reads correctly', (f, descr, shape, values) => {
    const a = parseNpy(file(f), f);
    expect(a.descr).toBe(descr);
    expect(a.shape).toEqual(shape);
    expect(Array.from(a.data)).toEqual(values);
  });

  it('what the project writes has numpy\'s layout and reads back', () => {
    const bytes = serializeNpy([2, 3], [1, 2, 3, 4, 5, 6.5]);
    const hlen = bytes[8] | (bytes[9] << 8);
    expect((10 + hlen) % 64).toBe(0);
    const header = new TextDecoder('latin1').decode(bytes.subarray(10, 10 + hlen));
    expect(header).toMatch(/^\{'descr': '<f4', 'fortran_order': False, 'shape': \(2, 3\), \} *\n$/);
    expect(Array.from(parseNpy(bytes).data)).toEqual([1, 2, 3, 4, 5, 6.5]);
  });

  const numpyF4 = file('numpy_f4.npy');
  it.each([
    ['bad_complex.npy', file('bad_complex.npy'), /unsupported dtype '<c8'/],
    ['bad_unicode.npy', file('bad_unicode.npy'), /unsupported dtype '<U4'/],
    ['bad_fortran.npy', file('bad_fortran.npy'), /Fortran-order arrays are not supported/],
    ['bad_bigendian.npy', file('bad_bigendian.npy'), /big-endian dtype '>f4' is not supported/],
    ['bad_structured.npy', file('bad_structured.npy'), /malformed header/],
    ['truncated_data.npy', numpyF4.subarray(0, numpyF4.length - 5), /truncated data: 19 bytes for 6 x <f4 \(24 bytes\)/],
    ['truncated_header.npy', numpyF4.subarray(0, 40), /truncated header/],
    ['bad_magic.npy', new TextEncoder().encode('PK\u0003\u0004 not a numpy file'), /not a \.npy file \(bad magic\)/],
    ['bad_version.npy', numpyF4.map((b, i) => (i === 6 ? 9 : b)), /unsupported \.npy version 9/],
  ] as [string, Uint8Array, RegExp][])('%s: a clear error naming the file', (name, bytes, problem) => {
    let err: unknown = null;
    try {
      parseNpy(bytes, name);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message.startsWith(`${name}: `)).toBe(true);
    expect((err as Error).message).toMatch(problem);
  });
});

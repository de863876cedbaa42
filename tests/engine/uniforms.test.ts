// shaders/uniforms.ts: the packing must put every field where the WGSL compiler's own layout of
// the generated struct reads it. Checked on the GPU: a kernel copies each field out through
// `ref` and `at`, and the values must come back as packed (the layout rules are WGSL's, not ours).
import { afterAll, describe, expect, it } from 'vitest';
import { init } from '../../engine/init.ts';
import type { WebGpuBackend } from '../../engine/webgpu/backend.ts';
import { uniforms } from '../../shaders/uniforms.ts';

const gpu = (await init({ backend: 'webgpu', setDefault: false })) as WebGpuBackend;
afterAll(() => gpu.destroy());

// Scalars between arrays force padding; arrays of 1, 3, 5 and 8 elements end mid-vector and on it.
const schema = uniforms({
  count: 'u32',
  shift: 'i32',
  scale: 'f32',
  shape: ['u32', 5],
  after: 'u32',
  offsets: ['i32', 3],
  one: ['f32', 1],
  last: 'f32',
  strides: ['u32', 8],
});
const values = {
  count: 4000000000, // above 2^31: stays unsigned
  shift: -7,
  scale: 0.15625,
  shape: [2, 3, 5, 7, 11],
  after: 13,
  offsets: [-1, 0, 2147483647],
  one: [-2.5],
  last: 1e-30,
  strides: [1, 2, 4, 8, 16, 32, 64, 128],
};

/** Each field read by the kernel, widened to f32 (the exact integers are small or checked as bits). */
const reads: { expr: string; want: number }[] = [
  { expr: `f32(${schema.ref('count')} - 3999999000u)`, want: 1000 },
  { expr: `f32(${schema.ref('shift')})`, want: -7 },
  { expr: schema.ref('scale'), want: 0.15625 },
  ...values.shape.map((v, k) => ({ expr: `f32(${schema.ref('shape', k)})`, want: v })),
  { expr: `f32(${schema.ref('after')})`, want: 13 },
  { expr: `f32(${schema.ref('offsets', 0)})`, want: -1 },
  { expr: `f32(${schema.ref('offsets', 1)})`, want: 0 },
  { expr: `f32(${schema.ref('offsets', 2)} - 2147483000)`, want: 647 },
  { expr: schema.ref('one', 0), want: -2.5 },
  { expr: `${schema.ref('last')} * 1e30`, want: Math.fround(Math.fround(1e-30) * Math.fround(1e30)) },
  ...values.strides.map((v, k) => ({ expr: `f32(${schema.at('strides', `${k}u + zero`)})`, want: v })),
];

/** Run a one-invocation kernel over `structWgsl` that writes each of `exprs` (f32) to out; the values read back. */
async function readOnGpu(label: string, structWgsl: string, exprs: string[], params: Uint32Array): Promise<number[]> {
  const wgsl = `${structWgsl}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let zero = gid.x; // a run-time index for at()
${exprs.map((e, i) => `  out[${i}] = ${e};`).join('\n')}
}`;
  const output = gpu.rt.acquire(exprs.length * 4);
  try {
    gpu.rt.dispatch({ label, wgsl, params, output, inputs: [], workgroups: 1 });
    const got = Array.from(await gpu.rt.readback(output, exprs.length * 4));
    await gpu.rt.checkErrors();
    return got;
  } finally {
    gpu.rt.release(output);
  }
}

describe('uniform schema', () => {
  it('lays out fields as WGSL does', async () => {
    const got = await readOnGpu('uniform layout', schema.wgsl, reads.map((r) => r.expr), schema.pack(values));
    expect(got).toEqual(reads.map((r) => Math.fround(r.want)));
  });

  it('takes exactly the 64 words of one dispatch slot, and refuses 65', async () => {
    const scalars = Object.fromEntries(Array.from({ length: 64 }, (_, k) => [`w${k}`, 'u32'] as const));
    const full = uniforms(scalars);
    expect(full.words).toBe(64);
    expect(full.offsets.w63).toBe(63);
    const v = Object.fromEntries(Array.from({ length: 64 }, (_, k) => [`w${k}`, 1000 + k]));
    // the first and the last word, read by the kernel
    expect(await readOnGpu('uniform 64 words', full.wgsl, [`f32(${full.ref('w0')})`, `f32(${full.ref('w63')})`], full.pack(v))).toEqual([1000, 1063]);
    expect(() => uniforms({ ...scalars, w64: 'u32' })).toThrow(/65 words, over the 64/);
    // an array ending on the last word, and one word more (rounded up to a whole vector: 68)
    expect(uniforms({ a: ['u32', 64] }).words).toBe(64);
    expect(uniforms({ a: 'f32', b: ['u32', 60] }).words).toBe(64);
    expect(() => uniforms({ a: ['u32', 64], b: 'u32' })).toThrow(/68 words, over the 64/);
    expect(() => uniforms({ a: ['u32', 65] })).toThrow(/68 words, over the 64/);
  });

  it('rounds the size up to a whole vector when a scalar follows an array, and the kernel reads that scalar', async () => {
    const s = uniforms({ a: ['u32', 3], b: 'f32' });
    expect(s.offsets).toEqual({ a: 0, b: 4 });
    expect(s.words).toBe(8);
    const words = s.pack({ a: [7, 8, 9], b: 2.5 });
    expect(words.length).toBe(8);
    expect(await readOnGpu('uniform trailing scalar', s.wgsl, [s.ref('b'), `f32(${s.ref('a', 2)})`], words)).toEqual([2.5, 9]);
    const t = uniforms({ a: 'u32', b: ['i32', 5], c: 'u32', d: 'i32' });
    expect(t.offsets).toEqual({ a: 0, b: 4, c: 12, d: 13 });
    expect(t.words).toBe(16);
    expect(await readOnGpu('uniform trailing scalars', t.wgsl, [`f32(${t.ref('c')})`, `f32(${t.ref('d')})`], t.pack({ a: 1, b: [1, 2, 3, 4, 5], c: 6, d: -7 }))).toEqual([6, -7]);
  });

  it('packs missing trailing array elements as 0', async () => {
    const s = uniforms({ a: ['u32', 6], b: ['f32', 3], c: 'u32' });
    const words = s.pack({ a: [5, 6], b: [], c: 9 });
    expect(Array.from(words)).toEqual([5, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0]);
    const exprs = [
      ...Array.from({ length: 6 }, (_, k) => `f32(${s.ref('a', k)})`),
      ...Array.from({ length: 3 }, (_, k) => s.ref('b', k)),
      ...Array.from({ length: 6 }, (_, k) => `f32(${s.at('a', `${k}u + zero`)})`),
      `f32(${s.ref('c')})`,
    ];
    expect(await readOnGpu('uniform missing elements', s.wgsl, exprs, words)).toEqual([5, 6, 0, 0, 0, 0, 0, 0, 0, 5, 6, 0, 0, 0, 0, 9]);
  });

  it('names the WGSL struct by its second argument', async () => {
    expect(uniforms({ a: 'u32' }).wgsl).toMatch(/^struct Params \{ a: u32 \}\n@group\(0\) @binding\(0\) var<uniform> params: Params;/);
    const s = uniforms({ a: 'u32', v: ['f32', 2] }, 'ScaleUniforms');
    expect(s.wgsl).toMatch(/^struct ScaleUniforms \{ a: u32, v: array<vec4<f32>, 1> \}\n@group\(0\) @binding\(0\) var<uniform> params: ScaleUniforms;/);
    expect(s.wgsl).not.toMatch(/Params/);
    // a kernel with a struct of its own named so next to it compiles and reads through `params`
    const wgsl = `${s.wgsl}struct Params { x: f32 }\n`;
    expect(await readOnGpu('uniform struct name', wgsl, [`f32(${s.ref('a')}) + ${s.ref('v', 1)} + Params(0.5).x`], s.pack({ a: 3, v: [0, 0.25] }))).toEqual([3.75]);
  });

  it('reports offsets with padding before arrays and a size rounded to whole vectors', () => {
    expect(schema.offsets).toEqual({ count: 0, shift: 1, scale: 2, shape: 4, after: 12, offsets: 16, one: 20, last: 24, strides: 28 });
    expect(schema.words).toBe(36);
    expect(uniforms({ a: 'u32', b: 'u32', c: 'u32' }).words).toBe(3);
  });

  it('refuses bad declarations and values, naming the field', () => {
    expect(() => uniforms({ 'bad-name': 'u32' })).toThrow(/bad-name/);
    expect(() => uniforms({ a: ['u32', 0] })).toThrow(/'a' needs a length/);
    expect(() => uniforms({ a: ['u32', 61], b: 'u32' })).toThrow(/over the 64/);
    expect(() => schema.ref('nope' as 'count')).toThrow(/no field 'nope'/);
    expect(() => schema.ref('shape', 5)).toThrow(/'shape' has 5 elements/);
    expect(() => schema.ref('count', 0)).toThrow(/'count' is a scalar, read without an index/);
    expect(() => schema.ref('shape')).toThrow(/'shape' has 5 elements, asked for undefined/);
    expect(() => schema.at('count', '0u')).toThrow(/'count' is a scalar, not an array/);
    expect(() => schema.at('nope' as 'count', '0u')).toThrow(/no field 'nope'/);
    expect(() => schema.pack({ ...values, after: [13] as unknown as number })).toThrow(/'after' is a scalar, got an array/);
    expect(() => schema.pack({ ...values, shape: 2 as unknown as number[] })).toThrow(/'shape' is an array of 5, got a number/);
    expect(() => schema.pack({ ...values, shape: [1, 2, 3, 4, 5, 6] })).toThrow(/'shape' holds 5/);
    const { after: _drop, ...missing } = values;
    expect(() => schema.pack(missing as typeof values)).toThrow(/no value for 'after'/);
  });
});

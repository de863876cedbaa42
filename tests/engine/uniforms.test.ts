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

describe('uniform schema', () => {
  it('lays out fields as WGSL does', async () => {
    const wgsl = `${schema.wgsl}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let zero = gid.x; // a run-time index for at()
${reads.map((r, i) => `  out[${i}] = ${r.expr};`).join('\n')}
}`;
    const output = gpu.rt.acquire(reads.length * 4);
    gpu.rt.dispatch({ label: 'uniform layout', wgsl, params: schema.pack(values), output, inputs: [], workgroups: 1 });
    const got = Array.from(await gpu.rt.readback(output, reads.length * 4));
    gpu.rt.release(output);
    expect(got).toEqual(reads.map((r) => Math.fround(r.want)));
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
    expect(() => schema.ref('count', 0)).toThrow(/scalar/);
    expect(() => schema.pack({ ...values, shape: [1, 2, 3, 4, 5, 6] })).toThrow(/'shape' holds 5/);
    const { after: _drop, ...missing } = values;
    expect(() => schema.pack(missing as typeof values)).toThrow(/no value for 'after'/);
  });
});

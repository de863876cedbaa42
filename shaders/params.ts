// The uniform block every kernel reads its sizes, shapes and strides from. Shapes travel as
// uniforms (never as WGSL constants), so a new shape never compiles a new pipeline.
// Each dispatch owns one 256-byte slot: 64 words, read with pu(i) (u32), pi(i) (i32), pf(i) (f32).
// Binding 0 is always this block; binding 1 the output; bindings 2.. the inputs.
export const PARAM_WORDS = 64;

export const paramsBlock = /* wgsl */ `
struct Params { v: array<vec4<u32>, 16> }
@group(0) @binding(0) var<uniform> params: Params;
fn pu(i: u32) -> u32 { return params.v[i / 4u][i % 4u]; }
fn pi(i: u32) -> i32 { return bitcast<i32>(pu(i)); }
fn pf(i: u32) -> f32 { return bitcast<f32>(pu(i)); }
`;

/** The flat invocation index of a 1-D launch spread over a 2-D grid of workgroups (65535 limit). */
export const flatIndex = /* wgsl */ `
fn flat_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32, wg: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * wg + lid;
}
`;

export const launchArgs = '@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32';

export const MAX_RANK = 8;

// Constant-index reads of the uniform block, for generated (unrolled) code. SwiftShader compiles
// with Subzero, which neither inlines pu() nor resolves a dynamically indexed uniform array: in
// per-element loops, `params.v[2].z` is several times faster than `pu(10u + k)`.
export const U = (i: number) => `params.v[${i >> 2}].${'xyzw'[i & 3]}`;
export const I = (i: number) => `bitcast<i32>(${U(i)})`;
export const F = (i: number) => `bitcast<f32>(${U(i)})`;

// What every kernel shares. Its sizes, shapes and strides travel as uniforms (never as WGSL
// constants), so a new shape never compiles a new pipeline; each kernel declares its uniform
// words by name in one schema (shaders/uniforms.ts), exported next to its WGSL, and the backend
// packs them with that schema. Each dispatch owns one 256-byte slot: at most PARAM_WORDS words.
// Binding 0 is always the uniform block; binding 1 the output; bindings 2.. the inputs.
export const PARAM_WORDS = 64;

/** The flat invocation index of a 1-D launch spread over a 2-D grid of workgroups (65535 limit). */
export const flatIndex = /* wgsl */ `
fn flat_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32, wg: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * wg + lid;
}
`;

export const launchArgs = '@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32';

export const MAX_RANK = 8;

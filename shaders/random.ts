// Counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11). Element i uses counter
// (i, 0, 0, 0) and the 64-bit seed as key, so the numbers do not depend on launch shape and the
// CPU backend reproduces them.
import { mathLib } from './math.ts';
import { flatIndex, launchArgs } from './params.ts';
import { uniforms } from './uniforms.ts';

/** The 64-bit seed as two words; normal: 0 = uniform, 1 = normal. */
export const randomUniforms = uniforms({ count: 'u32', keyLo: 'u32', keyHi: 'u32', normal: 'u32' });
const P = randomUniforms;

export const randomShader = /* wgsl */ `${P.wgsl}${flatIndex}${mathLib}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
override WG: u32 = 64u;
// 32x32 -> 64-bit product as (hi, lo), from 16-bit halves: WGSL has no wide multiply.
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
  let a0 = a & 0xffffu; let a1 = a >> 16u; let b0 = b & 0xffffu; let b1 = b >> 16u;
  let p00 = a0 * b0; let p01 = a0 * b1; let p10 = a1 * b0; let p11 = a1 * b1;
  let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
  return vec2<u32>(p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u), a * b);
}
fn philox(ctr: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  var c = ctr; var k = key;
  for (var r = 0u; r < 10u; r++) {
    if (r > 0u) { k = k + vec2<u32>(0x9E3779B9u, 0xBB67AE85u); }
    let p0 = mulhilo(0xD2511F53u, c.x);
    let p1 = mulhilo(0xCD9E8D57u, c.z);
    c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
  }
  return c;
}
@compute @workgroup_size(WG)
fn main(${launchArgs}) {
  let i = flat_index(wid, nwg, lid, WG);
  if (i >= ${P.ref('count')}) { return; }
  let w = philox(vec4<u32>(i, 0u, 0u, 0u), vec2<u32>(${P.ref('keyLo')}, ${P.ref('keyHi')}));
  let inv = 1.0 / 16777216.0;
  if (${P.ref('normal')} == 0u) {
    out[i] = f32(w.x >> 8u) * inv;
  } else {
    let u1 = f32((w.x >> 8u) + 1u) * inv;
    let u2 = f32(w.y >> 8u) * inv;
    // ln(u1) for u1 near 1 by its series in d = 1 - u1 (exact here): a float32 log is only
    // required to be good to an absolute 2^-21 near 1 (Vulkan; SwiftShader's is ~3e-9), and
    // sqrt(-2 ln u1) turns that into errors up to ~1e-3 where ln u1 is ~1e-7.
    let d = f32(0xffffffu - (w.x >> 8u)) * inv;
    var lnu = log(u1);
    if (d < 0.03125) {
      lnu = -d * (1.0 + d * (0.5 + d * (0.3333333333 + d * (0.25 + d * (0.2 + d * 0.1666666667)))));
    }
    // cos_acc, not cos: SwiftShader's cos is only good to ~2e-4 (shaders/math.ts).
    out[i] = sqrt(-2.0 * lnu) * cos_acc(6.283185307179586 * u2);
  }
}
`;

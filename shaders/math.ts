// Float helpers shared by kernels that must follow the primitives' IEEE semantics
// (engine/primitives.ts) on every adapter.
//
// Why these exist (found by tests/engine/webgpu-ops.test.ts against the float64 CPU backend):
// - WGSL lets implementations assume NaN and infinity never occur, and SwiftShader does: there
//   `x != x` is false for NaN, `a != b` is false when either is NaN, exp(NaN) is +inf, log(NaN)
//   is a finite number, sign(NaN) is 0, and max/min drop NaN. So NaN and infinity are tested on
//   the bits, never with float comparisons.
// - WGSL only asks sin/cos for an absolute error of 2^-11 on [-pi, pi] (and nothing outside);
//   SwiftShader's are off by ~2e-4 on [-10, 10]. sin_acc/cos_acc reduce the argument by pi/2 in
//   three parts (Cody-Waite, as Cephes' sinf/cosf) and evaluate Cephes' minimax polynomials on
//   [-pi/4, pi/4]: a few float32 ulps for |x| up to ~1e4, the same on every adapter.
export const mathLib = /* wgsl */ `
fn f_inf() -> f32 { let bits = 0x7f800000u; return bitcast<f32>(bits); }
fn f_nan() -> f32 { let bits = 0x7fc00000u; return bitcast<f32>(bits); }
fn is_nan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
fn is_inf(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u; }
fn is_neg_zero(x: f32) -> bool { return bitcast<u32>(x) == 0x80000000u; }
// sin(r) and cos(r) for |r| <= pi/4 (slightly beyond is fine).
fn sin_poly(r: f32) -> f32 {
  let z = r * r;
  return ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1) * z * r + r;
}
fn cos_poly(r: f32) -> f32 {
  let z = r * r;
  return ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2) * z * z - 0.5 * z + 1.0;
}
// x = j * pi/2 + r with |r| <= ~pi/4; returns (r, j mod 4). pi/2 = P1 + P2 + P3, where P1 and P2
// have few significant bits so that j * P1 and j * P2 are exact for the j that matter.
fn reduce_half_pi(x: f32) -> vec2<f32> {
  let j = round(x * 0.63661977236758134);
  let r = ((x - j * 1.5703125) - j * 4.837512969970703125e-4) - j * 7.54978995489188216e-8;
  return vec2<f32>(r, f32(i32(j) & 3));
}
fn sin_acc(x: f32) -> f32 {
  if (is_nan(x) || is_inf(x)) { return f_nan(); }
  if (abs(x) > 1.0e5) { return sin(x); }
  let t = reduce_half_pi(x);
  let q = u32(t.y);
  let v = select(sin_poly(t.x), cos_poly(t.x), (q & 1u) == 1u);
  return select(v, -v, q >= 2u);
}
fn cos_acc(x: f32) -> f32 {
  if (is_nan(x) || is_inf(x)) { return f_nan(); }
  if (abs(x) > 1.0e5) { return cos(x); }
  let t = reduce_half_pi(x);
  let q = u32(t.y);
  let v = select(cos_poly(t.x), sin_poly(t.x), (q & 1u) == 1u);
  return select(v, -v, q == 1u || q == 2u);
}
`;

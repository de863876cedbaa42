// Elementwise kernels: unary maps, broadcasting binary maps and select.
// Each primitive's expression below is the whole of what differs between pipelines.
import { mathLib } from './math.ts';
import { flatIndex, launchArgs, MAX_RANK } from './params.ts';
import { uniforms } from './uniforms.ts';

// f_inf/f_nan/is_nan/is_inf and accurate sin/cos: shaders/math.ts (WGSL's constant evaluation
// rejects inf and NaN literals, and SwiftShader's float compares and builtins ignore NaN).
const specials = mathLib;

/** Expression of `x` for each unary primitive. Written to give JS Math's special values. */
export const UNARY_EXPR: Record<string, string> = {
  neg: '-x',
  // NaN tested on the bits: SwiftShader's exp(NaN) is +inf and its log(NaN) a finite number.
  exp: 'select(exp(x), x, is_nan(x))',
  log: 'select(select(select(log(x), -f_inf(), x == 0.0), f_nan(), x < 0.0), x, is_nan(x))',
  sqrt: 'select(sqrt(x), f_nan(), x < 0.0)',
  abs: 'abs(x)',
  sign: 'select(sign(x), x, is_nan(x))',
  // The builtins are only good to ~2e-4 on SwiftShader (WGSL asks for 2^-11): see shaders/math.ts.
  sin: 'sin_acc(x)',
  cos: 'cos_acc(x)',
  // tanh and sigmoid in forms that cannot overflow to inf/inf.
  tanh: 'sign(x) * (1.0 - exp(-2.0 * abs(x))) / (1.0 + exp(-2.0 * abs(x)))',
  sigmoid: 'select(exp(x) / (1.0 + exp(x)), 1.0 / (1.0 + exp(-x)), x >= 0.0)',
  step: 'select(0.0, 1.0, x > 0.0)',
  reciprocal: '1.0 / x',
  floor: 'floor(x)',
};

/** Expression of `a`, `b` for each binary primitive. */
export const BINARY_EXPR: Record<string, string> = {
  add: 'a + b',
  sub: 'a - b',
  mul: 'a * b',
  div: 'a / b',
  pow: 'pow_js(a, b)',
  // NaN propagates (Math.max/min); WGSL's max/min may drop it, and SwiftShader's do.
  maximum: 'select(max(a, b), f_nan(), is_nan(a) || is_nan(b))',
  minimum: 'select(min(a, b), f_nan(), is_nan(a) || is_nan(b))',
  eq: 'select(0.0, 1.0, a == b)',
  // NaN != anything; SwiftShader evaluates a != b as ordered (false when either is NaN).
  ne: 'select(0.0, 1.0, a != b || is_nan(a) || is_nan(b))',
  lt: 'select(0.0, 1.0, a < b)',
  le: 'select(0.0, 1.0, a <= b)',
  gt: 'select(0.0, 1.0, a > b)',
  ge: 'select(0.0, 1.0, a >= b)',
};

// WGSL's pow is exp2(b * log2(a)): undefined for a < 0 and NaN for 0^0. Math.pow semantics
// (ECMAScript Number::exponentiate): x^0 = 1 even for NaN x, otherwise NaN in gives NaN;
// |a| = 1 with b = +-inf is NaN; signed zeros and infinities keep the odd-integer sign rule;
// a negative finite base with a non-integer exponent is NaN.
export const powJs = /* wgsl */ `
fn pow_js(a: f32, b: f32) -> f32 {
  if (is_nan(b)) { return f_nan(); }
  if (b == 0.0) { return 1.0; }
  if (is_nan(a)) { return f_nan(); }
  let m = abs(a);
  if (is_inf(b)) {
    if (m == 1.0) { return f_nan(); }
    return select(0.0, f_inf(), (m > 1.0) == (b > 0.0));
  }
  let isInt = floor(b) == b;
  // Every float32 of magnitude >= 2^24 is an even integer.
  let odd = isInt && abs(b) < 16777216.0 && (i32(abs(b)) & 1) == 1;
  let negative = a < 0.0 || is_neg_zero(a);
  if (m == 0.0 || is_inf(a)) {
    // 0^b and inf^b: one of 0 and inf; the sign follows an odd exponent.
    let r = select(0.0, f_inf(), (m == 0.0) == (b < 0.0));
    return select(r, -r, negative && odd);
  }
  if (a < 0.0 && !isInt) { return f_nan(); }
  let r = exp2(b * log2(m));
  return select(r, -r, a < 0.0 && odd);
}
`;

/** Unary maps and same-shape binary maps: the element count. */
export const mapUniforms = uniforms({ count: 'u32' });

/** Broadcasting binary maps: the output's shape and each operand's strides (0 along broadcast
 * axes), read for the first `rank` axes (the walk is unrolled per rank). */
export const broadcastUniforms = uniforms({ count: 'u32', shape: ['u32', MAX_RANK], aStrides: ['u32', MAX_RANK], bStrides: ['u32', MAX_RANK] });

/** select: as broadcastUniforms plus the condition's strides. */
export const selectUniforms = uniforms({ count: 'u32', shape: ['u32', MAX_RANK], aStrides: ['u32', MAX_RANK], bStrides: ['u32', MAX_RANK], condStrides: ['u32', MAX_RANK] });

/** Fill with a constant. */
export const fillUniforms = uniforms({ count: 'u32', value: 'f32' });

export function unaryShader(expr: string): string {
  const P = mapUniforms;
  return /* wgsl */ `${P.wgsl}${flatIndex}${specials}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> inp: array<f32>;
override WG: u32 = 64u;
@compute @workgroup_size(WG)
fn main(${launchArgs}) {
  let i = flat_index(wid, nwg, lid, WG);
  if (i >= ${P.ref('count')}) { return; }
  let x = inp[i];
  out[i] = ${expr};
}
`;
}

/**
 * Binary map. `broadcast` selects the general kernel, which walks the output's coordinates and
 * reads each operand through its own strides (0 along broadcast axes); the other reads all three
 * arrays at the same index. Uniforms: broadcastUniforms, or mapUniforms.
 */
export function binaryShader(expr: string, broadcast: boolean, rank = 0): string {
  // Broadcasting: the coordinate walk is unrolled for the output's rank (constant reads, see
  // shaders/uniforms.ts).
  const P = broadcast ? broadcastUniforms : mapUniforms;
  const index = broadcast
    ? `
  var rem = i; var ia = 0u; var ib = 0u;${stridedWalk(broadcastUniforms, rank, ['aStrides', 'bStrides'], ['ia', 'ib'])}
  let a = lhs[ia]; let b = rhs[ib];`
    : `
  let a = lhs[i]; let b = rhs[i];`;
  return /* wgsl */ `${P.wgsl}${flatIndex}${specials}${expr.includes('pow_js') ? powJs : ''}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> lhs: array<f32>;
@group(0) @binding(3) var<storage, read> rhs: array<f32>;
override WG: u32 = 64u;
@compute @workgroup_size(WG)
fn main(${launchArgs}) {
  let i = flat_index(wid, nwg, lid, WG);
  if (i >= ${P.ref('count')}) { return; }${index}
  out[i] = ${expr};
}
`;
}

/** Unrolled walk over the output coordinates (`shape`), adding each operand's strides. */
function stridedWalk(P: { ref(name: string, k: number): string }, rank: number, strides: string[], vars: string[]): string {
  const ref = (name: string, k: number) => P.ref(name, k);
  let code = '';
  for (let k = rank - 1; k >= 0; k--) {
    code += `
  { let n = ${ref('shape', k)}; let c = rem % n; rem = rem / n; ${vars.map((v, j) => `${v} += c * ${ref(strides[j], k)};`).join(' ')} }`;
  }
  return code;
}

/** select(cond, a, b), always broadcasting. Uniforms: selectUniforms. */
export function selectShader(rank: number): string {
  const P = selectUniforms;
  return /* wgsl */ `${P.wgsl}${flatIndex}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> cond: array<f32>;
@group(0) @binding(3) var<storage, read> lhs: array<f32>;
@group(0) @binding(4) var<storage, read> rhs: array<f32>;
override WG: u32 = 64u;
@compute @workgroup_size(WG)
fn main(${launchArgs}) {
  let i = flat_index(wid, nwg, lid, WG);
  if (i >= ${P.ref('count')}) { return; }
  var rem = i; var ia = 0u; var ib = 0u; var ic = 0u;${stridedWalk(P, rank, ['aStrides', 'bStrides', 'condStrides'], ['ia', 'ib', 'ic'])}
  // cond != 0 holds for NaN too: test the bits (any bit but the sign set), as SwiftShader's
  // float != is false for NaN.
  out[i] = select(rhs[ib], lhs[ia], (bitcast<u32>(cond[ic]) & 0x7fffffffu) != 0u);
}
`;
}

/** Fill with a constant (fillUniforms). Used to poison outputs in tests. */
export const fillShader = /* wgsl */ `${fillUniforms.wgsl}${flatIndex}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
override WG: u32 = 64u;
@compute @workgroup_size(WG)
fn main(${launchArgs}) {
  let i = flat_index(wid, nwg, lid, WG);
  if (i >= ${fillUniforms.ref('count')}) { return; }
  out[i] = ${fillUniforms.ref('value')};
}
`;

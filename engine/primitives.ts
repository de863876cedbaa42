// The closed set of primitive operations. Every backend implements every primitive
// (`BackendImpls` below makes a missing one a compile error), and the autodiff rule table
// has one vjp rule per primitive. Everything else in the engine (relu, softmax, mean,
// batch norm, ...) is a composition of these.
//
// Conventions shared by all backends:
// - Tensors are float32 on the GPU, float64 on the CPU reference; storage is dense, row-major
//   ("C order"), so a tensor's layout is fully described by its shape.
// - Integer-valued data (indices, argmax results) is stored as float values holding integers.
// - The frontend validates shapes and parameters before calling a backend; a backend may assume
//   its inputs are well formed, and receives the output shape already computed.

export type Shape = readonly number[];

/** [top, bottom, left, right] padding of a 2-D spatial window op. */
export type Pad4 = readonly [number, number, number, number];
export type Pair = readonly [number, number];

export interface Conv2dParams {
  stride: Pair;
  padding: Pad4;
  dilation: Pair;
  groups: number;
}

export interface Pool2dParams {
  kernel: Pair;
  stride: Pair;
  padding: Pad4;
  dilation: Pair;
}

export type NoParams = Record<string, never>;

/**
 * Parameters of each primitive. Semantics, for every backend:
 *
 * Unary (out shape = input shape):
 *   neg -x | exp | log (natural; log(0) = -inf, log(<0) = NaN) | sqrt | abs | sign (-1, 0, 1)
 *   sin | cos | tanh | sigmoid 1/(1+exp(-x)) | step (x > 0 ? 1 : 0)
 *   reciprocal 1/x | floor
 * Binary (numpy broadcasting of the two inputs; out shape = broadcast shape):
 *   add sub mul div | pow (a^b, as Math.pow) | maximum minimum
 *   eq ne lt le gt ge (1 or 0)
 * select: inputs (cond, a, b) broadcast together; out = cond != 0 ? a : b.
 *
 * Reductions keep the reduced axes with size 1 (keepdims); `axes` is sorted, unique, non-empty.
 *   sum | max (-inf for... never empty: reduced sizes are >= 1) | argmax over one axis: the index
 *   (as a float) of the first maximum along `axis`; NaN compares as smaller than everything.
 *
 * Movement:
 *   reshape {shape}: same data, new shape (backends may share storage).
 *   permute {perm}: out.shape[i] = in.shape[perm[i]].
 *   expand {shape}: broadcast size-1 axes to `shape` (same rank as input).
 *   slice {begin, size}: out[i...] = in[begin + i ...]; step 1.
 *   pad {before, after, value}: constant padding per axis (non-negative).
 *   flip {axes}: reverse along the axes.
 *   concat {axis}: n >= 1 inputs with equal shapes except along axis.
 *
 * matmul: a [...batchA, M, K] x b [...batchB, K, N] -> [...broadcast(batchA, batchB), M, N];
 *   both ranks >= 2 (the frontend lifts 1-D operands).
 *
 * conv2d {stride, padding, dilation, groups}: x [N, C, H, W], w [O, C/groups, KH, KW]
 *   -> y [N, O, OH, OW], OH = floor((H + pt + pb - dh*(KH-1) - 1)/sh) + 1 (likewise OW);
 *   y[n,o,i,j] = sum_{c in group(o), p, q} x[n, g*Cg + c, i*sh - pt + p*dh, j*sw - pl + q*dw] * w[o,c,p,q]
 *   with out-of-range x reading as 0 (cross-correlation, as PyTorch/ONNX).
 * conv2dBackpropInput {conv params + inputShape}: inputs (dy [N,O,OH,OW], w) -> dx of inputShape:
 *   the transpose (adjoint) of conv2d with respect to x.
 * conv2dBackpropFilter {conv params + filterShape}: inputs (x, dy) -> dw of filterShape:
 *   the adjoint of conv2d with respect to w.
 *
 * maxPoolGather {kernel, stride, padding, dilation}: inputs (x, src), both [N,C,H,W]
 *   -> [N,C,OH,OW] (OH as conv2d with KH = kernel[0]): for each window, the value of `src` at the
 *   position of the window's maximum of `x`. Padded positions never win; ties go to the first
 *   position in row-major window order. maxPool2d(x) = maxPoolGather(x, x).
 * maxPoolScatter {pool params}: inputs (x [N,C,H,W], dy [N,C,OH,OW]) -> [N,C,H,W]: each dy value
 *   added at its window's argmax position of x (the same argmax as maxPoolGather). It is the adjoint
 *   of maxPoolGather with respect to src.
 * avgPool2d {pool params + countIncludePad}: divisor = KH*KW when countIncludePad, else the number
 *   of in-range positions of the window (dilation is always [1, 1] for average pooling).
 * avgPool2dBackprop {avg params + inputShape}: dy -> dx, the adjoint of avgPool2d.
 *
 * resizeBilinear {size: [OH, OW], alignCorners}: x [N,C,H,W] -> [N,C,OH,OW]. Source coordinate of
 *   output i: alignCorners ? i*(H-1)/(OH-1) (0 when OH == 1) : max(0, (i+0.5)*H/OH - 0.5)
 *   (PyTorch's F.interpolate(mode='bilinear')); the two neighbours are floor(s) and
 *   min(floor(s)+1, H-1), weights by the fractional part.
 * resizeBilinearBackprop {size: [H, W] of the input, alignCorners}: dy [N,C,OH,OW] -> dx [N,C,H,W],
 *   the adjoint of resizeBilinear.
 *
 * gather {axis}: inputs (x, indices); out shape = x.shape[:axis] ++ indices.shape ++ x.shape[axis+1:];
 *   out[pre, j..., post] = x[pre, indices[j...], post]; an index outside [0, x.shape[axis]) gives 0.
 * scatterAdd {axis, size}: inputs (updates, indices) with updates.shape =
 *   pre ++ indices.shape ++ post; out shape = pre ++ [size] ++ post; out[pre, k, post] = sum over j
 *   with indices[j] == k of updates[pre, j, post]. The adjoint of gather.
 *
 * random {seed, dist}: no inputs; element i (row-major) of the output comes from Philox4x32-10
 *   (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11; multipliers 0xD2511F53,
 *   0xCD9E8D57, key bumps 0x9E3779B9, 0xBB67AE85; 10 rounds, key bumped before rounds 2..10) with
 *   counter (i, 0, 0, 0) and key (seed mod 2^32, floor(seed / 2^32) mod 2^32), output words w0..w3:
 *   uniform: (w0 >>> 8) * 2^-24 in [0, 1); normal: Box-Muller,
 *   sqrt(-2 ln(((w0 >>> 8) + 1) * 2^-24)) * cos(2 pi (w1 >>> 8) * 2^-24).
 */
export interface PrimParams {
  neg: NoParams; exp: NoParams; log: NoParams; sqrt: NoParams; abs: NoParams; sign: NoParams;
  sin: NoParams; cos: NoParams; tanh: NoParams; sigmoid: NoParams; step: NoParams;
  reciprocal: NoParams; floor: NoParams;

  add: NoParams; sub: NoParams; mul: NoParams; div: NoParams; pow: NoParams;
  maximum: NoParams; minimum: NoParams;
  eq: NoParams; ne: NoParams; lt: NoParams; le: NoParams; gt: NoParams; ge: NoParams;
  select: NoParams;

  sum: { axes: readonly number[] };
  max: { axes: readonly number[] };
  argmax: { axis: number };

  reshape: { shape: Shape };
  permute: { perm: readonly number[] };
  expand: { shape: Shape };
  slice: { begin: readonly number[]; size: readonly number[] };
  pad: { before: readonly number[]; after: readonly number[]; value: number };
  flip: { axes: readonly number[] };
  concat: { axis: number };

  matmul: NoParams;

  conv2d: Conv2dParams;
  conv2dBackpropInput: Conv2dParams & { inputShape: Shape };
  conv2dBackpropFilter: Conv2dParams & { filterShape: Shape };

  maxPoolGather: Pool2dParams;
  maxPoolScatter: Pool2dParams;
  avgPool2d: Pool2dParams & { countIncludePad: boolean };
  avgPool2dBackprop: Pool2dParams & { countIncludePad: boolean; inputShape: Shape };

  resizeBilinear: { size: Pair; alignCorners: boolean };
  resizeBilinearBackprop: { size: Pair; alignCorners: boolean };

  gather: { axis: number };
  scatterAdd: { axis: number; size: number };

  random: { seed: number; dist: 'uniform' | 'normal' };
}

export type Primitive = keyof PrimParams;

export const UNARY_PRIMS = [
  'neg', 'exp', 'log', 'sqrt', 'abs', 'sign', 'sin', 'cos', 'tanh', 'sigmoid', 'step', 'reciprocal', 'floor',
] as const satisfies readonly Primitive[];
export type UnaryPrim = (typeof UNARY_PRIMS)[number];

export const BINARY_PRIMS = [
  'add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum', 'eq', 'ne', 'lt', 'le', 'gt', 'ge',
] as const satisfies readonly Primitive[];
export type BinaryPrim = (typeof BINARY_PRIMS)[number];

/** What a backend receives for each input: its storage and shape. */
export interface Operand<S> {
  storage: S;
  shape: Shape;
}

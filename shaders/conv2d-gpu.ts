// 2-D convolution (NCHW, cross-correlation, stride / padding / dilation / groups as
// shaders/conv2d.ts) as implicit GEMM for real GPUs (issue 11): the same register-blocked,
// workgroup-staged, double-buffered product as shaders/matmul-gpu.ts, with operands gathered on
// the fly (im2col never materialised) as each BK slice is staged into workgroup memory.
//
// Per group g (dispatch z = g, or g + G * split for backprop-filter) each kernel computes a
// product C[M, NC] = A[M, K] @ B[K, NC]:
//   forward          (in0 = x, in1 = w, out = y [N,O,OH,OW]):
//     M = Og output channels, NC = N*OH*OW output pixels, K = Cg*KH*KW;
//     A[o][(c,p,q)] = w[g*Og+o, c, p, q] (w's rows as they lie), B[(c,p,q)][(n,i,j)] =
//     x[n, g*Cg+c, i*sh - pt + p*dh, j*sw - pl + q*dw] (0 outside x).
//   backprop-input   (in0 = dy, in1 = w, out = dx [N,C,H,W]), any stride, one stride phase
//     (rh, rw) per dispatch z / G (z = g + G * (rh * sw + rw)):
//     M = Cg input channels, NC = the phase's input pixels (n, h = rh + sh*hh, v = rw + sw*vv),
//     K = Og * (taps p with (rh+pt-p*dh) % sh == 0) * (taps q likewise), so no FMA is spent on a
//     tap that misses (sh*sw times fewer than gathering every tap for every pixel);
//     A[c][(o,p,q)] = w[g*Og+o, c, p, q], B[(o,p,q)][(n,h,v)] = dy[n, g*Og+o, (h+pt-p*dh)/sh,
//     (v+pl-q*dw)/sw] where that lands inside dy, else 0.
//   backprop-filter  (in0 = x, in1 = dy, out = partial dw [S,O,Cg,KH,KW]), split-K:
//     M = Og output channels, NC = Cg*KH*KW filter taps, K = N*OH*OW pixels, split into S
//     chunks of `chunk` pixels (a multiple of BK) whose partial products go to out[s];
//     A[o][(n,i,j)] = dy[n, g*Og+o, i, j], B[(n,i,j)][(c,p,q)] = x[n, g*Cg+c, i*sh-pt+p*dh, j*sw-pl+q*dw].
// Rows are channels and columns pixels (or taps), so the output stores of neighbouring
// invocations are contiguous along a channel plane (NCHW) or a filter row.
//
// Staging (k-major in workgroup memory, as matmul-gpu): an invocation's slot loads 4 consecutive
// rows of A at one k (one vec4 store, no transpose) and 4 consecutive columns of B at one k;
// every slot keeps the same rows / columns in every slice, so the divisions that locate a row's
// or a column's pixel are done once, before the loop, and per slice a slot decomposes only its
// one k (shared by its 4 elements).
// Taps outside the input (padding, bottom/right included: the output size implies them), k past
// the chunk, rows and columns past the edges read 0 or clamp (and are never written). All reads
// are scalar (gathers); no vec4 global loads.
//
// Sizes are uniforms (conv2dGpuUniforms, one layout for the three kernels); the WGSL depends only
// on the options.
import { type EpilogueProgram, epilogueFields, epilogueWgsl } from './epilogue.ts';
import { type Fields, type UniformSchema, uniforms } from './uniforms.ts';
import { tileLayout } from './matmul-gpu.ts';

export type ConvGpuKind = 'forward' | 'input' | 'filter';

const fields = {
  N: 'u32', C: 'u32', H: 'u32', W: 'u32', O: 'u32', OH: 'u32', OW: 'u32', KH: 'u32', KW: 'u32',
  strideH: 'u32', strideW: 'u32', padTop: 'i32', padLeft: 'i32', dilationH: 'u32', dilationW: 'u32', groups: 'u32',
  /** Rows of the product (per group). */
  M: 'u32',
  /** Columns of the product. */
  NC: 'u32',
  /** Reduction length (backprop-filter: all N*OH*OW pixels, over every split). */
  K: 'u32',
  /** Reduction length per split (a multiple of BK for backprop-filter; K otherwise). */
  chunk: 'u32',
} as const;

/** Uniforms of the forward kernel (20 words). */
export const conv2dGpuUniforms = uniforms(fields);
/** The forward kernel's uniforms with those of a folded elementwise chain after them
 * (shaders/epilogue.ts: pack { ...the conv's values, ...epilogueValues(chain values, epi) }). */
export const conv2dGpuUniformsWith = (epi: EpilogueProgram): UniformSchema<Fields> => uniforms({ ...fields, ...epilogueFields(epi) });
/** Uniforms of the backprop-input kernel (the same layout). */
export const conv2dGpuBackpropInputUniforms = conv2dGpuUniforms;
/** Uniforms of the backprop-filter kernel (the same layout). */
export const conv2dGpuBackpropFilterUniforms = conv2dGpuUniforms;

export interface ConvGpuOptions {
  kind: ConvGpuKind;
  /** Block of the product per workgroup (rows = channels, columns = pixels / taps). */
  bm: number;
  bn: number;
  /** Per invocation: 4 or 8 each. */
  tm: number;
  tn: number;
  /** K slice per step, a multiple of 4. */
  bk: number;
  /** Register-prefetched double buffering (one barrier per slice). */
  double: boolean;
}

/** Block configurations worth measuring (rows x columns); the first is the default on GPUs. */
export const CONV_GPU_CONFIGS = {
  '128x128-8x8-k16-db': { bm: 128, bn: 128, tm: 8, tn: 8, bk: 16, double: true },
  '64x128-8x8-k16-db': { bm: 64, bn: 128, tm: 8, tn: 8, bk: 16, double: true },
  '64x64-4x4-k16-db': { bm: 64, bn: 64, tm: 4, tn: 4, bk: 16, double: true },
  '64x64-8x8-k16-db': { bm: 64, bn: 64, tm: 8, tn: 8, bk: 16, double: true },
  '32x128-4x8-k16-db': { bm: 32, bn: 128, tm: 4, tn: 8, bk: 16, double: true },
  '128x128-8x8-k8-db': { bm: 128, bn: 128, tm: 8, tn: 8, bk: 8, double: true },
  '64x64-4x4-k16': { bm: 64, bn: 64, tm: 4, tn: 4, bk: 16, double: false },
} as const satisfies Record<string, Omit<ConvGpuOptions, 'kind'>>;
export type ConvGpuConfig = keyof typeof CONV_GPU_CONFIGS;

export function conv2dGpuOptions(kind: ConvGpuKind, config: ConvGpuConfig): ConvGpuOptions {
  return { kind, ...CONV_GPU_CONFIGS[config] };
}

/**
 * A starting choice of block (not yet measured on a GPU: bench/conv2d-gpu.ts is there to tune it)
 * from the product's rows M (channels per group) and columns NC: the 128-row block wastes most
 * of its rows under 65 channels, so 64 or 32 rows there; 64x64 where the 128-wide blocks would
 * leave a large GPU with few workgroups. Null under 8 rows (depthwise and nearly so: almost all of
 * any block's rows are padding; the direct or register-tiled kernels suit those better).
 */
export function conv2dGpuConfigFor(M: number, NC: number, groups = 1, minWorkgroups = 264): ConvGpuConfig | null {
  if (M < 8) return null;
  const wgs = (bm: number, bn: number) => Math.ceil(M / bm) * Math.ceil(NC / bn) * groups;
  if (M <= 32) return '32x128-4x8-k16-db';
  if (M <= 64) return wgs(64, 128) >= minWorkgroups ? '64x128-8x8-k16-db' : '64x64-4x4-k16-db';
  return wgs(128, 128) >= minWorkgroups ? '128x128-8x8-k16-db' : wgs(64, 128) >= minWorkgroups ? '64x128-8x8-k16-db' : '64x64-4x4-k16-db';
}

/** A convolution as the backend describes it: PrimParams['conv2d'] and the three shapes. */
export interface ConvGpuParams {
  stride: readonly number[];
  /** [top, bottom, left, right]; bottom and right are implied by the output size and unused. */
  padding: readonly number[];
  dilation: readonly number[];
  groups: number;
}
export interface ConvGpuShapes {
  /** x [N, C, H, W] (for backprop-input: dx's shape). */
  x: readonly number[];
  /** w [O, C/groups, KH, KW] (for backprop-filter: dw's shape). */
  w: readonly number[];
  /** y [N, O, OH, OW] (for the backprops: dy's shape). */
  y: readonly number[];
}

/** The product's sizes for a kind: rows M, columns NC, reduction K (per group). */
export function conv2dGpuDims(kind: ConvGpuKind, s: ConvGpuShapes, p: Pick<ConvGpuParams, 'groups' | 'stride'>): { M: number; NC: number; K: number } {
  const [N, C, H, W] = s.x, [O, Cg, KH, KW] = s.w, [, , OH, OW] = s.y;
  const groups = p.groups, Og = O / groups;
  if (C !== Cg * groups || !Number.isInteger(Og)) throw new Error(`conv2d-gpu: x [${s.x}] w [${s.w}] do not fit ${groups} groups`);
  if (kind === 'forward') return { M: Og, NC: N * OH * OW, K: Cg * KH * KW };
  // Backprop-input: per stride phase, at most N * ceil(H/sh) * ceil(W/sw) pixels, K at most Og*KH*KW.
  if (kind === 'input') return { M: Cg, NC: N * Math.ceil(H / p.stride[0]) * Math.ceil(W / p.stride[1]), K: Og * KH * KW };
  return { M: Og, NC: Cg * KH * KW, K: N * OH * OW };
}

/** The uniform values of a dispatch by name (to pack with an epilogue's: conv2dGpuUniformsWith). */
export function conv2dGpuValues(kind: ConvGpuKind, p: ConvGpuParams, s: ConvGpuShapes, chunk?: number): Record<string, number> {
  const [N, C, H, W] = s.x, [O, , KH, KW] = s.w, [, , OH, OW] = s.y;
  const d = conv2dGpuDims(kind, s, p);
  return {
    N, C, H, W, O, OH, OW, KH, KW,
    strideH: p.stride[0], strideW: p.stride[1], padTop: p.padding[0], padLeft: p.padding[2],
    dilationH: p.dilation[0], dilationW: p.dilation[1], groups: p.groups,
    M: d.M, NC: d.NC, K: d.K, chunk: chunk ?? d.K,
  };
}

function pack(kind: ConvGpuKind, p: ConvGpuParams, s: ConvGpuShapes, chunk?: number): Uint32Array {
  return conv2dGpuUniforms.pack(conv2dGpuValues(kind, p, s, chunk) as Parameters<typeof conv2dGpuUniforms.pack>[0]);
}

/** Uniform words of a forward dispatch: x [N,C,H,W], w [O,Cg,KH,KW] -> y [N,O,OH,OW]. */
export const packConv2dGpu = (p: ConvGpuParams, s: ConvGpuShapes): Uint32Array => pack('forward', p, s);
/** Uniform words of a backprop-input dispatch: s.x is dx's shape, s.y dy's. */
export const packConv2dGpuBackpropInput = (p: ConvGpuParams, s: ConvGpuShapes): Uint32Array => pack('input', p, s);
/** Uniform words of a backprop-filter dispatch over the splits `split` chose (its `chunk`). */
export const packConv2dGpuBackpropFilter = (p: ConvGpuParams, s: ConvGpuShapes, split: { chunk: number }): Uint32Array => pack('filter', p, s, split.chunk);

const wgCount = (o: Pick<ConvGpuOptions, 'bm' | 'bn'>, d: { M: number; NC: number }, z: number): [number, number, number] => {
  const r: [number, number, number] = [Math.ceil(d.NC / o.bn), Math.ceil(d.M / o.bm), z];
  if (r.some((v) => v > 65535)) throw new Error(`conv2d-gpu: ${r.join('x')} workgroups, over 65535 in a dimension`);
  return r;
};
/** Workgroups of a forward dispatch. */
export const conv2dGpuWorkgroups = (o: Pick<ConvGpuOptions, 'bm' | 'bn'>, p: ConvGpuParams, s: ConvGpuShapes) => wgCount(o, conv2dGpuDims('forward', s, p), p.groups);
/** Workgroups of a backprop-input dispatch (z = groups * strideH * strideW: one stride phase each). */
export const conv2dGpuBackpropInputWorkgroups = (o: Pick<ConvGpuOptions, 'bm' | 'bn'>, p: ConvGpuParams, s: ConvGpuShapes) =>
  wgCount(o, conv2dGpuDims('input', s, p), p.groups * p.stride[0] * p.stride[1]);
/** Workgroups of a backprop-filter dispatch (z = groups * S). */
export const conv2dGpuBackpropFilterWorkgroups = (o: Pick<ConvGpuOptions, 'bm' | 'bn'>, p: ConvGpuParams, s: ConvGpuShapes, split: { S: number }) =>
  wgCount(o, conv2dGpuDims('filter', s, p), p.groups * split.S);

/**
 * The split of backprop-filter's reduction (N*OH*OW pixels): S chunks of `chunk` pixels (a
 * multiple of bk, no empty chunk), so that about `target` workgroups run (default 512, a few
 * per SM of a large GPU), each chunk at least `minChunk` pixels (default 256) and S at most
 * `maxS` (default 64, bounding the partial sums [S, O, Cg, KH, KW] the caller adds up). S = 1:
 * the output is dw itself.
 */
export function conv2dGpuFilterSplit(o: Pick<ConvGpuOptions, 'bm' | 'bn' | 'bk'>, p: ConvGpuParams, s: ConvGpuShapes,
  opts: { target?: number; minChunk?: number; maxS?: number } = {}): { S: number; chunk: number } {
  const d = conv2dGpuDims('filter', s, p);
  const per = Math.ceil(d.NC / o.bn) * Math.ceil(d.M / o.bm) * p.groups;
  const minChunk = Math.max(o.bk, opts.minChunk ?? 256);
  let S = Math.ceil((opts.target ?? 512) / per);
  S = Math.max(1, Math.min(S, opts.maxS ?? 64, Math.floor(65535 / p.groups), Math.ceil(d.K / minChunk)));
  const chunk = Math.ceil(Math.ceil(d.K / S) / o.bk) * o.bk;
  return { S: Math.ceil(d.K / chunk), chunk };
}


function check(o: ConvGpuOptions): void {
  const bad = (why: string) => new Error(`conv2dGpuFor: ${why} (${JSON.stringify(o)})`);
  if (!['forward', 'input', 'filter'].includes(o.kind)) throw bad(`unknown kind '${o.kind}'`);
  if (o.tm !== 4 && o.tm !== 8) throw bad('tm must be 4 or 8');
  if (o.tn !== 4 && o.tn !== 8) throw bad('tn must be 4 or 8');
  if (o.bm % o.tm || o.bn % o.tn) throw bad('the block must be a multiple of the per-invocation block');
  if (o.bk < 4 || o.bk % 4) throw bad('bk must be a multiple of 4');
  const threads = (o.bm / o.tm) * (o.bn / o.tn);
  if (threads > 256) throw bad(`${threads} invocations, over 256`);
  if ((o.bm / (o.tm / 4)) % 4 || (o.bn / (o.tn / 4)) % 4) throw bad('row/column groups must be whole vec4s');
}

function layout(o: Pick<ConvGpuOptions, 'bm' | 'bn' | 'bk' | 'double'>) {
  return tileLayout('conv2dGpuFor', o);
}

/** Workgroup bytes a configuration stages. */
export function conv2dGpuWorkgroupBytes(o: Pick<ConvGpuOptions, 'bm' | 'bn' | 'bk' | 'double'>): number {
  return layout(o).bytes;
}

const cache = new Map<string, string>();

/**
 * The WGSL of one kernel and configuration (memoised: the same string object each time). With
 * `epi` (forward only), each output element goes through a folded elementwise chain as it is
 * written (bias, BatchNorm scale/shift, activation, residual: shaders/epilogue.ts), whose leaves
 * bind from 4 on and whose uniforms are conv2dGpuUniformsWith(epi).
 */
export function conv2dGpuFor(o: ConvGpuOptions, epi?: EpilogueProgram): string {
  if (epi && o.kind !== 'forward') throw new Error(`conv2dGpuFor: an epilogue needs the forward kernel, not '${o.kind}'`);
  const key = JSON.stringify([o.kind, o.bm, o.bn, o.tm, o.tn, o.bk, o.double, epi ?? null]);
  let w = cache.get(key);
  if (!w) cache.set(key, (w = generate(o, epi)));
  return w;
}

const R = (n: number) => [...Array(n).keys()];
const X = 'xyzw';
/** A guarded scalar read: 0 (and index 0) where `ok` is false. */
const rd = (arr: string, idx: string, ok: string) => `select(0.0, ${arr}[select(0u, ${idx}, ${ok})], ${ok})`;
const v4 = (f: (j: number) => string) => `vec4<f32>(${R(4).map(f).join(', ')})`;

/**
 * Per kind: WGSL for a slot's fixed part (A: row `arow` (clamped), k offset in the slice `ak`;
 * B: row in the slice `bkr`, first column `bcol`), its load in a slice starting at k0 (into
 * ra{e} / rb{e}), and the output index of column `col` (colBase) and row `row` (rowOff).
 */
interface KindCode {
  /** Sizes of this workgroup's product: NC, kBeg, kEnd (backprop-input: of its stride phase). */
  prologue: string;
  /** Base index of A's row j of slot e (row arow{e}_{j}, clamped). */
  aBase(e: number, j: number): string;
  /** WGSL that defines `ok` and `f`, the index offset of A's column k (shared by the rows). */
  aCol: string;
  bSetup(e: number): string;
  bLoad(e: number): string;
  colBase(c: string): string;
  rowOff(r: string): string;
}

const vi = (f: (j: number) => string) => `vec4<i32>(${R(4).map(f).join(', ')})`;
const bounds = (ih: string, iw: string) => `(${ih} >= vec4<i32>(0)) & (${ih} < vec4<i32>(Hi)) & (${iw} >= vec4<i32>(0)) & (${iw} < vec4<i32>(Wi))`;
const gather4 = (arr: string, addr: string, ok: string) => v4((j) => `select(0.0, ${arr}[u32(select(0, ${addr}.${X[j]}, ${ok}.${X[j]}))], ${ok}.${X[j]})`);

const COMMON = `let NC = NCu; let kBeg = s * chunk; let kEnd = max(kBeg, min(K, kBeg + chunk));`;

const KINDS: Record<ConvGpuKind, KindCode> = {
  forward: {
    prologue: COMMON,
    // A = w rows of the group's output channels.
    aBase: (e, j) => `(g * M + arow${e}_${j}) * K`,
    aCol: 'let ok = k < kEnd; let f = k;',
    // B columns = output pixels: the image's offset and the tap origin of each.
    bSetup: (e) => `${R(4).map((j) => `let bp${e}_${j} = min(bcol${e} + ${j}u, NC - 1u); let bn${e}_${j} = bp${e}_${j} / OHW; let br${e}_${j} = bp${e}_${j} % OHW;`).join(' ')}
  let bx${e} = ${vi((j) => `i32((bn${e}_${j} * C + g * Cg) * HW)`)};
  let bh${e} = ${vi((j) => `i32((br${e}_${j} / OW) * sh) - pt`)};
  let bw${e} = ${vi((j) => `i32((br${e}_${j} % OW) * sw) - pl`)};`,
    bLoad: (e) => `{ let k = k0 + bkr${e}; let c = k / KK; let pq = k % KK;
      let ih = bh${e} + vec4<i32>(i32((pq / KW) * dh)); let iw = bw${e} + vec4<i32>(i32((pq % KW) * dw));
      let ok = ${bounds('ih', 'iw')} & vec4<bool>(k < kEnd);
      let a = bx${e} + vec4<i32>(i32(c * HW)) + ih * vec4<i32>(Wi) + iw;
      rb${e} = ${gather4('in0', 'a', 'ok')}; }`,
    colBase: (c) => `(${c} / OHW) * O * OHW + ${c} % OHW`,
    rowOff: (r) => `(g * M + ${r}) * OHW`,
  },
  input: {
    // One stride phase (rh, rw) per dispatch z / G: the input pixels h = rh + sh*hh, v = rw + sw*vv
    // and only the taps that reach them, p = p0 + pi*stP (pi < nP), q = q0 + qi*stQ (qi < nQ),
    // those with (rh + pt - p*dh) divisible by sh (an arithmetic progression of step
    // sh / gcd(sh, dh)). A phase without taps has K = 0: its pixels are written as 0.
    prologue: `let ph = s; let rh = ph / sw; let rw = ph % sw;
  var p0 = KH; for (var p = 0u; p < KH; p++) { if (p0 == KH && ((i32(rh) + pt - i32(p * dh)) % shi + shi) % shi == 0) { p0 = p; } }
  var q0 = KW; for (var q = 0u; q < KW; q++) { if (q0 == KW && ((i32(rw) + pl - i32(q * dw)) % swi + swi) % swi == 0) { q0 = q; } }
  var ga = sh; var gb = dh % sh; loop { if (gb == 0u) { break; } let gt = ga % gb; ga = gb; gb = gt; }
  let stP = sh / ga;
  ga = sw; gb = dw % sw; loop { if (gb == 0u) { break; } let gt = ga % gb; ga = gb; gb = gt; }
  let stQ = sw / ga;
  let nP = select(0u, (KH - 1u - p0) / stP + 1u, p0 < KH); let nQ = select(0u, (KW - 1u - q0) / stQ + 1u, q0 < KW);
  let nPQ = max(nP * nQ, 1u);
  let Hr = select(0u, (H - rh + sh - 1u) / sh, rh < H); let Wr = select(0u, (W - rw + sw - 1u) / sw, rw < W);
  let HWr = max(Hr * Wr, 1u);
  let NC = N * Hr * Wr;
  let kBeg = 0u; let kEnd = Og * nP * nQ;
  if (wid.x * BN >= NC) { return; }`,
    // A[c][(o,p,q)] = w[g*Og+o, c, p, q].
    aBase: (e, j) => `(g * Og * Cg + arow${e}_${j}) * KK`,
    aCol: 'let ok = k < kEnd; let o = k / nPQ; let t = k % nPQ; let f = o * Cg * KK + (p0 + (t / nQ) * stP) * KW + q0 + (t % nQ) * stQ;',
    // B columns = the phase's input pixels (n, h, v): dy's image offset and h + pt, v + pl.
    bSetup: (e) => `${R(4).map((j) => `let bp${e}_${j} = min(bcol${e} + ${j}u, NC - 1u); let bn${e}_${j} = bp${e}_${j} / HWr; let br${e}_${j} = bp${e}_${j} % HWr;`).join(' ')}
  let by${e} = ${vi((j) => `i32((bn${e}_${j} * O + g * Og) * OHW)`)};
  let bh${e} = ${vi((j) => `i32(rh + sh * (br${e}_${j} / Wr)) + pt`)};
  let bw${e} = ${vi((j) => `i32(rw + sw * (br${e}_${j} % Wr)) + pl`)};`,
    // ti, tj are multiples of the strides by construction.
    bLoad: (e) => `{ let k = k0 + bkr${e}; let o = k / nPQ; let t = k % nPQ;
      let ti = bh${e} - vec4<i32>(i32((p0 + (t / nQ) * stP) * dh)); let tj = bw${e} - vec4<i32>(i32((q0 + (t % nQ) * stQ) * dw));
      let i = ti / vec4<i32>(shi); let j = tj / vec4<i32>(swi);
      let ok = (ti >= vec4<i32>(0)) & (tj >= vec4<i32>(0)) & (i < vec4<i32>(OHi)) & (j < vec4<i32>(OWi)) & vec4<bool>(k < kEnd);
      let a = by${e} + vec4<i32>(i32(o * OHW)) + i * vec4<i32>(OWi) + j;
      rb${e} = ${gather4('in0', 'a', 'ok')}; }`,
    colBase: (c) => `(${c} / HWr) * C * HW + (rh + sh * ((${c} % HWr) / Wr)) * W + rw + sw * ((${c} % HWr) % Wr)`,
    rowOff: (r) => `(g * Cg + ${r}) * HW`,
  },
  filter: {
    prologue: COMMON,
    // A[o][(n,i,j)] = dy[n, g*Og+o, i, j].
    aBase: (e, j) => `(g * Og + arow${e}_${j}) * OHW`,
    aCol: 'let ok = k < kEnd; let f = (k / OHW) * O * OHW + k % OHW;',
    // B columns = filter taps (c, p, q): x's channel plane and the tap's offset.
    bSetup: (e) => `${R(4).map((j) => `let bt${e}_${j} = min(bcol${e} + ${j}u, NC - 1u); let bq${e}_${j} = bt${e}_${j} % KK;`).join(' ')}
  let bx${e} = ${vi((j) => `i32((g * Cg + bt${e}_${j} / KK) * HW)`)};
  let bh${e} = ${vi((j) => `i32((bq${e}_${j} / KW) * dh) - pt`)};
  let bw${e} = ${vi((j) => `i32((bq${e}_${j} % KW) * dw) - pl`)};`,
    bLoad: (e) => `{ let m = k0 + bkr${e}; let n = m / OHW; let r = m % OHW;
      let ih = bh${e} + vec4<i32>(i32((r / OW) * sh)); let iw = bw${e} + vec4<i32>(i32((r % OW) * sw));
      let ok = ${bounds('ih', 'iw')} & vec4<bool>(m < kEnd);
      let a = vec4<i32>(i32(n * C * HW)) + bx${e} + ih * vec4<i32>(Wi) + iw;
      rb${e} = ${gather4('in0', 'a', 'ok')}; }`,
    colBase: (c) => c,
    rowOff: (r) => `(s * O + g * Og + ${r}) * NC`,
  },
};

function generate(o: ConvGpuOptions, epi?: EpilogueProgram): string {
  check(o);
  const { bm, bn, tm, tn, bk } = o;
  const { bufs, aRow, bRow, aBuf, bBuf } = layout(o);
  const P = conv2dGpuUniforms;
  const kc = KINDS[o.kind];
  const RG = tm / 4, CG = tn / 4;
  const TX = bn / tn, TY = bm / tm, T = TX * TY;
  const rowSpan = bm / RG, colSpan = bn / CG;
  const aVecs = (bm * bk) / 4, bVecs = (bk * bn) / 4;
  const aLoads = Math.ceil(aVecs / T), bLoads = Math.ceil(bVecs / T);
  const guardA = (e: number, body: string) => ((e + 1) * T > aVecs ? `if (li + ${e * T}u < ${aVecs}u) ${body}` : body);
  const guardB = (e: number, body: string) => ((e + 1) * T > bVecs ? `if (li + ${e * T}u < ${bVecs}u) ${body}` : body);

  const setup = [
    ...R(aLoads).map((e) => `let aidx${e} = li + ${e * T}u; let akq${e} = aidx${e} % BK; let amv${e} = aidx${e} / BK;
  ${R(4).map((j) => `let arow${e}_${j} = min(m0 + amv${e} * 4u + ${j}u, M - 1u); let ab${e}_${j} = ${kc.aBase(e, j)};`).join('\n  ')}`),
    ...R(bLoads).map((e) => `let bidx${e} = li + ${e * T}u; let bkr${e} = bidx${e} / ${bRow}u; let bcol${e} = n0 + (bidx${e} % ${bRow}u) * 4u;
  ${kc.bSetup(e)}`),
  ].join('\n  ');
  // A: four rows at one k per slot (one decomposition of k for the four).
  const aLoad = (e: number) => `{ let k = k0 + akq${e}; ${kc.aCol}
      ra${e} = ${v4((j) => rd('in1', `ab${e}_${j} + f`, 'ok'))}; }`;
  const loads = [...R(aLoads).map((e) => guardA(e, aLoad(e))), ...R(bLoads).map((e) => guardB(e, kc.bLoad(e)))].join('\n    ');

  const store = (buf: string) => [
    ...R(aLoads).map((e) => guardA(e, `{ As[(${buf}) * ${aBuf}u + akq${e} * ${aRow}u + amv${e}] = ra${e}; }`)),
    ...R(bLoads).map((e) => guardB(e, `{ Bs[(${buf}) * ${bBuf}u + bidx${e}] = rb${e}; }`)),
  ].join('\n    ');

  const accs = R(tm).flatMap((i) => R(CG).map((h) => `var acc${i}_${h} = vec4<f32>(0.0);`)).join(' ');
  const compute = (buf: string) => `for (var kq = 0u; kq < ${bk}u; kq++) {
      let ao = (${buf}) * ${aBuf}u + kq * ${aRow}u + ty;
      let bo = (${buf}) * ${bBuf}u + kq * ${bRow}u + tx;
      ${R(RG).map((g) => `let a${g} = As[ao + ${(g * rowSpan) / 4}u];`).join(' ')}
      ${R(CG).map((h) => `let b${h} = Bs[bo + ${(h * colSpan) / 4}u];`).join(' ')}
      ${R(RG).flatMap((g) => R(4).map((q) => R(CG).map((h) => `acc${g * 4 + q}_${h} += a${g}.${X[q]} * b${h};`).join(' '))).join('\n      ')}
    }`;

  // Output: each of the invocation's columns located once, then each row's stores.
  const colDecl = R(CG).flatMap((h) => R(4).map((j) => `let col${h}_${j} = n0 + tx * 4u + ${h * colSpan + j}u; let cb${h}_${j} = ${kc.colBase(`min(col${h}_${j}, NC - 1u)`)};`)).join('\n  ');
  const write = R(RG).flatMap((g) => R(4).map((q) => {
    const i = g * 4 + q;
    const stores = R(CG).flatMap((h) => R(4).map((j) => (epi
      ? `if (col${h}_${j} < NC) { let oi = cb${h}_${j} + ro; out[oi] = epilogue(acc${i}_${h}.${X[j]}, oi); }`
      : `if (col${h}_${j} < NC) { out[cb${h}_${j} + ro] = acc${i}_${h}.${X[j]}; }`)));
    return `{ let row = m0 + ty * 4u + ${g * rowSpan + q}u;
    if (row < M) { let ro = ${kc.rowOff('row')};
      ${stores.join('\n      ')} } }`;
  })).join('\n  ');

  const slices = '(kEnd - kBeg + BK - 1u) / BK';
  const loop = o.double
    ? `{ let k0 = kBeg;
    ${loads}
    ${store('0u')} }
  workgroupBarrier();
  let slices = ${slices};
  for (var t = 0u; t < slices; t++) {
    let cur = t % 2u;
    let more = t + 1u < slices;
    if (more) {
      let k0 = kBeg + (t + 1u) * BK;
    ${loads}
    }
    ${compute('cur')}
    if (more) {
    ${store('1u - cur')}
    }
    workgroupBarrier();
  }`
    : `let slices = ${slices};
  for (var t = 0u; t < slices; t++) {
    let k0 = kBeg + t * BK;
    ${loads}
    ${store('0u')}
    workgroupBarrier();
    ${compute('0u')}
    workgroupBarrier();
  }`;

  const name = { forward: 'forward', input: 'backprop-input', filter: 'backprop-filter (split-K)' }[o.kind];
  const S = epi ? conv2dGpuUniformsWith(epi) : P;
  return /* wgsl */ `// conv2d-gpu ${name}: implicit GEMM, ${bm}x${bn} block, ${tm}x${tn} per invocation, BK ${bk}${o.double ? ', double-buffered' : ''}${epi ? ', with an epilogue' : ''}
${S.wgsl}${epi ? epilogueWgsl(epi, S, 4) : ''}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> in0: array<f32>;
@group(0) @binding(3) var<storage, read> in1: array<f32>;
const BK = ${bk}u;
const BN = ${bn}u;
var<workgroup> As: array<vec4<f32>, ${bufs * aBuf}>; // [buf][k][m / 4], ${aRow} vec4s a k-row
var<workgroup> Bs: array<vec4<f32>, ${bufs * bBuf}>; // [buf][k][n / 4]

@compute @workgroup_size(${T}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let C = ${P.ref('C')}; let H = ${P.ref('H')}; let W = ${P.ref('W')}; let O = ${P.ref('O')};
  let OH = ${P.ref('OH')}; let OW = ${P.ref('OW')}; let KH = ${P.ref('KH')}; let KW = ${P.ref('KW')};
  let sh = ${P.ref('strideH')}; let sw = ${P.ref('strideW')}; let pt = ${P.ref('padTop')}; let pl = ${P.ref('padLeft')};
  let dh = ${P.ref('dilationH')}; let dw = ${P.ref('dilationW')}; let G = ${P.ref('groups')};
  let N = ${P.ref('N')}; let M = ${P.ref('M')}; let NCu = ${P.ref('NC')}; let K = ${P.ref('K')}; let chunk = ${P.ref('chunk')};
  let Cg = C / G; let Og = O / G; let HW = H * W; let OHW = OH * OW; let KK = KH * KW;
  let Hi = i32(H); let Wi = i32(W); let OHi = i32(OH); let OWi = i32(OW); let shi = i32(sh); let swi = i32(sw);
  let g = wid.z % G; let s = wid.z / G;
  ${kc.prologue}
  let m0 = wid.y * ${bm}u; let n0 = wid.x * ${bn}u;
  let tx = li % ${TX}u; let ty = li / ${TX}u;
  ${setup}
  ${R(aLoads).map((e) => `var ra${e} = vec4<f32>(0.0);`).join(' ')}
  ${R(bLoads).map((e) => `var rb${e} = vec4<f32>(0.0);`).join(' ')}
  ${accs}
  ${loop}
  ${colDecl}
  ${write}
}
`;
}

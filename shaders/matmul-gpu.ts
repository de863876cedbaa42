// Batched matmul C[b] = A[b] @ B[b] for real GPUs (issue 11), A [.., M, K], B [.., K, N], batch
// axes broadcast through per-batch element strides (0 where broadcast), C contiguous.
//
// One workgroup computes a BM x BN block of C; each of its (BM/TM)(BN/TN) invocations holds a
// TM x TN block of accumulators in registers (TM/4 x TN/4 vec4 row groups). The K axis is walked
// in BK-wide slices: A's BM x BK slice is staged *transposed* (k-major, As[k][m]) and B's BK x BN
// slice as is (Bs[k][n]), both as arrays of vec4 in workgroup memory, so the inner loop reads only
// vec4s: TM/4 of A and TN/4 of B per k for TM*TN FMAs.
//
// Register layout: invocation (tx, ty) owns rows ty*4 + g*(BM/RG) + {0..3} (g < RG = TM/4) and
// columns tx*4 + h*(BN/CG) + {0..3} (h < CG = TN/4): at one k, the invocations of a subgroup read
// consecutive vec4s of Bs (no bank conflicts) and one or two vec4s of As (broadcasts), and the
// C stores of neighbouring invocations are contiguous.
//
// Global loads: with K % 4 == 0, A is read as array<vec4<f32>> (four k of one row per load), else
// as scalars; with N % 4 == 0, B is read (and C written) as array<vec4<f32>>, else as scalars.
// Consecutive invocations load consecutive vec4s of a row (coalesced). The transposed stores into
// As go through a padded row (one vec4 per k-row, when it fits), which spreads the four k of a
// load over different banks.
//
// Double buffering: the next slice's global loads are issued into registers before the current
// slice's FMAs, and stored into the other half of the workgroup arrays after them: one barrier
// per slice instead of two, and the load latency hides behind the arithmetic.
//
// Edges: rows of A past M and columns of B past N are clamped to the last one (never written);
// k past K reads as 0 in both A and B. No branches in the inner loop. Sizes and strides are
// uniforms (matmulGpuUniforms); the WGSL depends only on the options.
import { uniforms } from './uniforms.ts';

export const MATMUL_GPU_MAX_RANK = 6;

/** The kernel's uniforms (32 words). */
export const matmulGpuUniforms = uniforms({
  M: 'u32',
  N: 'u32',
  K: 'u32',
  /** Batch rank (number of batch axes of C), at most 6. */
  rank: 'u32',
  /** The first batch of this dispatch (dispatch z covers at most 65535 batches). */
  first: 'u32',
  /** C's batch shape. */
  shape: ['u32', MATMUL_GPU_MAX_RANK],
  /** A's element stride per batch axis (0 where broadcast). */
  aStrides: ['u32', MATMUL_GPU_MAX_RANK],
  /** B's element stride per batch axis (0 where broadcast). */
  bStrides: ['u32', MATMUL_GPU_MAX_RANK],
});

export interface MatmulGpuOptions {
  /** Block of C per workgroup (multiples of 4 * (BM/TM), 4 * (BN/TN)): 128x128, 128x64, 64x64. */
  bm: number;
  bn: number;
  /** Outputs per invocation: 4 or 8 each. */
  tm: number;
  tn: number;
  /** K slice staged per step: a multiple of 4 (8, 16, 32). */
  bk: number;
  /** Register-prefetched double buffering (one barrier per slice). */
  double: boolean;
  /** A read as vec4 along K: needs K % 4 == 0. */
  vecA: boolean;
  /** B read and C written as vec4 along N: needs N % 4 == 0. */
  vecB: boolean;
}

/** The block configurations worth measuring; the first is the default on GPUs. */
export const MATMUL_GPU_CONFIGS = {
  '128x128-8x8-k16-db': { bm: 128, bn: 128, tm: 8, tn: 8, bk: 16, double: true },
  '128x128-8x8-k8-db': { bm: 128, bn: 128, tm: 8, tn: 8, bk: 8, double: true },
  '128x128-8x8-k32': { bm: 128, bn: 128, tm: 8, tn: 8, bk: 32, double: false },
  '128x64-8x4-k16-db': { bm: 128, bn: 64, tm: 8, tn: 4, bk: 16, double: true },
  '64x64-4x4-k16-db': { bm: 64, bn: 64, tm: 4, tn: 4, bk: 16, double: true },
  '64x64-8x8-k16-db': { bm: 64, bn: 64, tm: 8, tn: 8, bk: 16, double: true },
} as const satisfies Record<string, Omit<MatmulGpuOptions, 'vecA' | 'vecB'>>;
export type MatmulGpuConfig = keyof typeof MATMUL_GPU_CONFIGS;

/** Full options for one config and one problem (vec4 paths where K / N allow them). */
export function matmulGpuOptions(config: MatmulGpuConfig, K: number, N: number): MatmulGpuOptions {
  return { ...MATMUL_GPU_CONFIGS[config], vecA: K % 4 === 0, vecB: N % 4 === 0 };
}

/** Workgroups for one dispatch of `batches` (at most 65535) batches. */
export function matmulGpuWorkgroups(o: Pick<MatmulGpuOptions, 'bm' | 'bn'>, M: number, N: number, batches: number): [number, number, number] {
  return [Math.ceil(N / o.bn), Math.ceil(M / o.bm), batches];
}

export interface MatmulGpuProblem {
  M: number;
  N: number;
  K: number;
  /** C's batch shape (rank <= 6). */
  batchShape: readonly number[];
  /** Element strides of A's and B's batches along each batch axis (0 where broadcast). */
  aStrides: readonly number[];
  bStrides: readonly number[];
  /** First batch of this dispatch (default 0). */
  first?: number;
}

/** The uniform words of one dispatch. */
export function packMatmulGpu(p: MatmulGpuProblem): Uint32Array {
  const r = p.batchShape.length;
  if (r > MATMUL_GPU_MAX_RANK) throw new Error(`packMatmulGpu: batch rank ${r} over ${MATMUL_GPU_MAX_RANK}`);
  if (p.aStrides.length !== r || p.bStrides.length !== r) throw new Error(`packMatmulGpu: ${r} batch axes but strides [${p.aStrides}] / [${p.bStrides}]`);
  return matmulGpuUniforms.pack({
    M: p.M, N: p.N, K: p.K, rank: r, first: p.first ?? 0, shape: p.batchShape, aStrides: p.aStrides, bStrides: p.bStrides,
  });
}

const WG_STORAGE_BYTES = 16384 * 2; // WebGPU's default and lavapipe's/SwiftShader's maxComputeWorkgroupStorageSize

function check(o: MatmulGpuOptions): void {
  const bad = (why: string) => new Error(`matmulGpuFor: ${why} (${JSON.stringify(o)})`);
  if (o.tm !== 4 && o.tm !== 8) throw bad('tm must be 4 or 8');
  if (o.tn !== 4 && o.tn !== 8) throw bad('tn must be 4 or 8');
  if (o.bm % o.tm || o.bn % o.tn) throw bad('the block must be a multiple of the per-invocation block');
  if (o.bk < 4 || o.bk % 4) throw bad('bk must be a multiple of 4');
  const threads = (o.bm / o.tm) * (o.bn / o.tn);
  if (threads > 256) throw bad(`${threads} invocations, over 256`);
  // Each row group spans BM/RG rows, covered by BM/TM invocations 4 rows apart.
  if ((o.bm / (o.tm / 4)) % 4 || (o.bn / (o.tn / 4)) % 4) throw bad('row/column groups must be whole vec4s');
}

const cache = new Map<string, string>();

/** The WGSL for one configuration (memoised: the same string object each time). */
export function matmulGpuFor(o: MatmulGpuOptions): string {
  const key = JSON.stringify([o.bm, o.bn, o.tm, o.tn, o.bk, o.double, o.vecA, o.vecB]);
  let w = cache.get(key);
  if (!w) cache.set(key, (w = generate(o)));
  return w;
}

/** Workgroup bytes a configuration stages (for checking against the device limit). */
export function matmulGpuWorkgroupBytes(o: Pick<MatmulGpuOptions, 'bm' | 'bn' | 'bk' | 'double'>): number {
  return layout(o).bytes;
}

function layout(o: Pick<MatmulGpuOptions, 'bm' | 'bn' | 'bk' | 'double'>) {
  return tileLayout('matmulGpuFor', o);
}

/** The workgroup-memory layout of a BMxBN block staged BK deep (one or two buffers), shared with
 * the implicit-GEMM convolutions (shaders/conv2d-gpu.ts); `op` names the refusal. */
export function tileLayout(op: string, o: Pick<MatmulGpuOptions, 'bm' | 'bn' | 'bk' | 'double'>) {
  const bufs = o.double ? 2 : 1;
  const plain = bufs * o.bk * (o.bm + o.bn) * 4;
  // One vec4 of padding per k-row of As where it still fits.
  const padA = plain + bufs * o.bk * 16 <= WG_STORAGE_BYTES ? 1 : 0;
  const aRow = o.bm / 4 + padA; // vec4s per k-row of As
  const bRow = o.bn / 4;
  const aBuf = o.bk * aRow, bBuf = o.bk * bRow; // vec4s per buffer
  const bytes = bufs * (aBuf + bBuf) * 16;
  if (bytes > WG_STORAGE_BYTES) throw new Error(`${op}: ${bytes} bytes of workgroup memory, over ${WG_STORAGE_BYTES} (${JSON.stringify(o)})`);
  return { bufs, aRow, bRow, aBuf, bBuf, bytes };
}

function generate(o: MatmulGpuOptions): string {
  check(o);
  const { bm, bn, tm, tn, bk } = o;
  const { bufs, aRow, bRow, aBuf, bBuf } = layout(o);
  const u = matmulGpuUniforms;
  const RG = tm / 4, CG = tn / 4;
  const TX = bn / tn, TY = bm / tm, T = TX * TY;
  const rowSpan = bm / RG, colSpan = bn / CG; // rows (columns) between an invocation's row (column) groups
  const aVecs = (bm * bk) / 4, bVecs = (bk * bn) / 4; // vec4 loads per slice
  const aLoads = Math.ceil(aVecs / T), bLoads = Math.ceil(bVecs / T);
  const kc = bk / 4; // vec4s along k in one row of the A slice
  const R = (n: number) => [...Array(n).keys()];

  // Loads of one slice (starting at k0) into registers ra{e}, rb{e}: vec4<f32> each.
  const loadA = R(aLoads).map((e) => {
    const guard = (e + 1) * T > aVecs; // the last round, where fewer loads than invocations remain
    const body = o.vecA
      ? `{ let idx = li + ${e * T}u; let m = idx / ${kc}u; let k = k0 + (idx % ${kc}u) * 4u;
      let g = (aBase + min(m0 + m, M - 1u) * K + min(k, K - 4u)) / 4u;
      ra${e} = select(vec4<f32>(0.0), A[g], k < K); }`
      : `{ let idx = li + ${e * T}u; let m = idx / ${kc}u; let k = k0 + (idx % ${kc}u) * 4u;
      let r = aBase + min(m0 + m, M - 1u) * K;
      ra${e} = vec4<f32>(${R(4).map((q) => `select(0.0, A[r + min(k + ${q}u, K - 1u)], k + ${q}u < K)`).join(', ')}); }`;
    return guard ? `if (li + ${e * T}u < ${aVecs}u) ${body}` : body;
  });
  const loadB = R(bLoads).map((e) => {
    const guard = (e + 1) * T > bVecs;
    const body = o.vecB
      ? `{ let idx = li + ${e * T}u; let k = k0 + idx / ${bRow}u; let n = n0 + (idx % ${bRow}u) * 4u;
      let g = (bBase + min(k, K - 1u) * N + min(n, N - 4u)) / 4u;
      rb${e} = select(vec4<f32>(0.0), B[g], k < K); }`
      : `{ let idx = li + ${e * T}u; let k = k0 + idx / ${bRow}u; let n = n0 + (idx % ${bRow}u) * 4u;
      let r = bBase + min(k, K - 1u) * N;
      rb${e} = select(vec4<f32>(0.0), vec4<f32>(${R(4).map((q) => `B[r + min(n + ${q}u, N - 1u)]`).join(', ')}), k < K); }`;
    return guard ? `if (li + ${e * T}u < ${bVecs}u) ${body}` : body;
  });
  // Register contents into buffer `buf` (a WGSL u32 expression): A transposed, B as loaded.
  const store = (buf: string) => [
    ...R(aLoads).map((e) => {
      const guard = (e + 1) * T > aVecs;
      const body = `{ let idx = li + ${e * T}u; let m = idx / ${kc}u; let k = (idx % ${kc}u) * 4u;
      let s = (${buf}) * ${aBuf}u + k * ${aRow}u + m / 4u; let c = m % 4u;
      ${R(4).map((q) => `As[s + ${q * aRow}u][c] = ra${e}.${'xyzw'[q]};`).join(' ')} }`;
      return guard ? `if (li + ${e * T}u < ${aVecs}u) ${body}` : body;
    }),
    ...R(bLoads).map((e) => {
      const guard = (e + 1) * T > bVecs;
      const body = `Bs[(${buf}) * ${bBuf}u + li + ${e * T}u] = rb${e};`;
      return guard ? `if (li + ${e * T}u < ${bVecs}u) { ${body} }` : body;
    }),
  ].join('\n    ');

  const accs = R(tm).flatMap((i) => R(CG).map((h) => `var acc${i}_${h} = vec4<f32>(0.0);`)).join(' ');
  // One slice's FMAs from buffer `buf`.
  const compute = (buf: string) => `for (var k = 0u; k < ${bk}u; k++) {
      let ao = (${buf}) * ${aBuf}u + k * ${aRow}u + ty;
      let bo = (${buf}) * ${bBuf}u + k * ${bRow}u + tx;
      ${R(RG).map((g) => `let a${g} = As[ao + ${(g * rowSpan) / 4}u];`).join(' ')}
      ${R(CG).map((h) => `let b${h} = Bs[bo + ${(h * colSpan) / 4}u];`).join(' ')}
      ${R(RG).flatMap((g) => R(4).map((q) => R(CG).map((h) => `acc${g * 4 + q}_${h} += a${g}.${'xyzw'[q]} * b${h};`).join(' '))).join('\n      ')}
    }`;

  const write = R(RG).flatMap((g) => R(4).map((q) => {
    const i = g * 4 + q;
    const cols = R(CG).map((h) => {
      const c = `col${h}`;
      return o.vecB
        ? `if (${c} < N) { C[(r + ${c}) / 4u] = acc${i}_${h}; }`
        : R(4).map((j) => `if (${c} + ${j}u < N) { C[r + ${c} + ${j}u] = acc${i}_${h}.${'xyzw'[j]}; }`).join(' ');
    });
    return `{ let row = m0 + ty * 4u + ${g * rowSpan + q}u;
    if (row < M) { let r = cBase + row * N;
      ${cols.join('\n      ')} } }`;
  })).join('\n  ');

  const vt = (v: boolean) => (v ? 'vec4<f32>' : 'f32');
  const slices = '(K + BK - 1u) / BK';
  const loop = o.double
    ? `${loadA.join('\n    ')}
  ${loadB.join('\n    ')}
  ${store('0u')}
  workgroupBarrier();
  let slices = ${slices};
  for (var t = 0u; t < slices; t++) {
    let cur = t % 2u;
    let more = t + 1u < slices;
    if (more) {
      let k0 = (t + 1u) * BK;
    ${loadA.join('\n    ')}
    ${loadB.join('\n    ')}
    }
    ${compute('cur')}
    if (more) {
    ${store('1u - cur')}
    }
    workgroupBarrier();
  }`
    : `let slices = ${slices};
  for (var t = 0u; t < slices; t++) {
    let k0 = t * BK;
    ${loadA.join('\n    ')}
    ${loadB.join('\n    ')}
    ${store('0u')}
    workgroupBarrier();
    ${compute('0u')}
    workgroupBarrier();
  }`;

  return /* wgsl */ `// matmul-gpu ${bm}x${bn} block, ${tm}x${tn} per invocation, BK ${bk}${o.double ? ', double-buffered' : ''}, A ${o.vecA ? 'vec4' : 'scalar'}, B ${o.vecB ? 'vec4' : 'scalar'}
${u.wgsl}
@group(0) @binding(1) var<storage, read_write> C: array<${vt(o.vecB)}>;
@group(0) @binding(2) var<storage, read> A: array<${vt(o.vecA)}>;
@group(0) @binding(3) var<storage, read> B: array<${vt(o.vecB)}>;
const BK = ${bk}u;
var<workgroup> As: array<vec4<f32>, ${bufs * aBuf}>; // [buf][k][m / 4], ${aRow} vec4s a k-row
var<workgroup> Bs: array<vec4<f32>, ${bufs * bBuf}>; // [buf][k][n / 4]

fn batch_offsets(b: u32) -> vec2<u32> {
  var rem = b; var oa = 0u; var ob = 0u;
  for (var d = ${u.ref('rank')}; d > 0u; d--) {
    let k = d - 1u;
    let n = ${u.at('shape', 'k')};
    let c = rem % n; rem = rem / n;
    oa += c * ${u.at('aStrides', 'k')}; ob += c * ${u.at('bStrides', 'k')};
  }
  return vec2<u32>(oa, ob);
}

@compute @workgroup_size(${T}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let M = ${u.ref('M')}; let N = ${u.ref('N')}; let K = ${u.ref('K')};
  let batch = wid.z + ${u.ref('first')};
  let offs = batch_offsets(batch);
  let aBase = offs.x; let bBase = offs.y; let cBase = batch * M * N;
  let m0 = wid.y * ${bm}u; let n0 = wid.x * ${bn}u;
  let tx = li % ${TX}u; let ty = li / ${TX}u;
  ${R(aLoads).map((e) => `var ra${e} = vec4<f32>(0.0);`).join(' ')}
  ${R(bLoads).map((e) => `var rb${e} = vec4<f32>(0.0);`).join(' ')}
  ${accs}
  ${o.double ? 'let k0 = 0u;' : ''}
  ${loop}
  ${R(CG).map((h) => `let col${h} = n0 + tx * 4u + ${h * colSpan}u;`).join(' ')}
  ${write}
}
`;
}

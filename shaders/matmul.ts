// Batched matmul C[b] = A[b] @ B[b], A [.., M, K], B [.., K, N], batch axes broadcast.
// Two variants behind one primitive (DESIGN.md, "Adapters"):
//  - registerTiled: each invocation accumulates a 4x4 block of C straight from global memory, no
//    barriers. SwiftShader runs a barrier as a coroutine switch, so this wins there by ~10x.
//  - workgroupTiled: 64x64 blocks of C per workgroup, 16-wide slices of A and B staged in workgroup
//    memory. What real GPUs want.
// Reads past the matrix edges are clamped to the last row/column (no branches in the inner loop);
// those lanes are never written.
import { type EpilogueProgram, epilogueFields, epilogueUsesChannel, epilogueWgsl } from './epilogue.ts';
import { MAX_RANK } from './params.ts';
import { type Fields, type UniformSchema, uniforms } from './uniforms.ts';

/** Both variants. Batch axes: the output's batch shape and A's and B's batch strides (elements,
 * 0 where broadcast), `batchRank` of each used. `firstBatch`: the first batch of this dispatch (a
 * dispatch covers at most 65535 batches, the limit of one grid dimension, so more are split over
 * several dispatches). */
const matmulFields = {
  M: 'u32',
  N: 'u32',
  K: 'u32',
  batchRank: 'u32',
  firstBatch: 'u32',
  batchShape: ['u32', MAX_RANK - 2],
  aBatchStrides: ['u32', MAX_RANK - 2],
  bBatchStrides: ['u32', MAX_RANK - 2],
} as const;
export const matmulUniforms = uniforms(matmulFields);
/** Either variant's uniforms with those of a folded elementwise chain after them. */
export const matmulUniformsWith = (epi: EpilogueProgram): UniformSchema<Fields> => uniforms({ ...matmulFields, ...epilogueFields(epi) });
const P = matmulUniforms;
/** The struct declaration, the folded chain's bindings (after A and B) and its function. */
const head = (epi?: EpilogueProgram) => {
  if (!epi) return P.wgsl;
  const S = matmulUniformsWith(epi);
  return `${S.wgsl}${epilogueWgsl(epi, S, 4)}`;
};
/** C[index] = value, through the folded chain when there is one (given the output column `col`,
 * the channel its per-column leaves are read at: a Linear layer's bias). */
const store = (epi: EpilogueProgram | undefined, index: string, value: string, col: string) =>
  epi ? `{ let oi = ${index}; C[oi] = epilogue(${value}, oi${epilogueUsesChannel(epi) ? `, ${col}` : ''}); }` : `C[${index}] = ${value};`;

const batchOffsets = /* wgsl */ `
fn batch_offsets(b: u32) -> vec2<u32> {
  var rem = b; var oa = 0u; var ob = 0u;
  for (var d = ${P.ref('batchRank')}; d > 0u; d--) {
    let k = d - 1u;
    let c = rem % ${P.at('batchShape', 'k')}; rem = rem / ${P.at('batchShape', 'k')};
    oa += c * ${P.at('aBatchStrides', 'k')}; ob += c * ${P.at('bBatchStrides', 'k')};
  }
  return vec2<u32>(oa, ob);
}
`;

const bindings = /* wgsl */ `
@group(0) @binding(1) var<storage, read_write> C: array<f32>;
@group(0) @binding(2) var<storage, read> A: array<f32>;
@group(0) @binding(3) var<storage, read> B: array<f32>;
`;

/**
 * Workgroup 8x8 invocations, each a tm x tn block of C (tn a multiple of 4: vec4 accumulators),
 * so a workgroup covers (8 tm) x (8 tn); dispatch (ceil(N/(8 tn)), ceil(M/(8 tm)), batches).
 * Per k it loads tm values of A and tn of B for tm*tn FMAs. Generated (unrolled) per block shape.
 */
export function matmulRegisterTiledFor(tm: number, tn: number, epi?: EpilogueProgram): string {
  if (tm < 1 || tn < 4 || tn % 4 !== 0) throw new Error(`matmulRegisterTiledFor: bad block ${tm}x${tn}`);
  const nv = tn / 4;
  const is = [...Array(tm).keys()], vs = [...Array(nv).keys()];
  const cols = [...Array(tn).keys()].map((j) => `let c${j} = min(col0 + ${j}u, N - 1u);`).join(' ');
  const decl = is.flatMap((i) => vs.map((v) => `var acc${i}_${v} = vec4<f32>(0.0);`)).join(' ');
  const loadB = vs.map((v) => `let b${v} = vec4<f32>(${[0, 1, 2, 3].map((q) => `B[br + c${4 * v + q}]`).join(', ')});`).join('\n    ');
  const fma = is.map((i) => `{ let a = A[rows[${i}] + k]; ${vs.map((v) => `acc${i}_${v} += a * b${v};`).join(' ')} }`).join('\n    ');
  // With a folded chain, one call site in a loop over the block: unrolled per register, the
  // chain (inlined by the driver at each site) made lavapipe compile for tens of seconds.
  const write = epi
    ? `var res = array<vec4<f32>, ${tm * nv}>(${is.flatMap((i) => vs.map((v) => `acc${i}_${v}`)).join(', ')});
  for (var i = 0u; i < ${tm}u; i++) {
    if (row0 + i >= M) { break; }
    for (var j = 0u; j < ${tn}u; j++) {
      if (col0 + j < N) { ${store(epi, 'cBase + (row0 + i) * N + col0 + j', `res[i * ${nv}u + j / 4u][j % 4u]`, 'col0 + j')} }
    }
  }`
    : is.map((i) => `if (row0 + ${i}u < M) {\n    let r = cBase + (row0 + ${i}u) * N + col0;\n    ${vs.map((v) => [0, 1, 2, 3].map((q) => `if (col0 + ${4 * v + q}u < N) { C[r + ${4 * v + q}u] = acc${i}_${v}[${q}]; }`).join(' ')).join('\n    ')}\n  }`).join('\n  ');
  return /* wgsl */ `${head(epi)}${batchOffsets}${bindings}
@compute @workgroup_size(8, 8, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let M = ${P.ref('M')}; let N = ${P.ref('N')}; let K = ${P.ref('K')};
  let batch = gid.z + ${P.ref('firstBatch')};
  let offs = batch_offsets(batch);
  let aBase = offs.x; let bBase = offs.y; let cBase = batch * M * N;
  let row0 = gid.y * ${tm}u; let col0 = gid.x * ${tn}u;
  if (row0 >= M || col0 >= N) { return; }
  var rows: array<u32, ${tm}>;
  for (var i = 0u; i < ${tm}u; i++) { rows[i] = aBase + min(row0 + i, M - 1u) * K; }
  ${cols}
  ${decl}
  for (var k = 0u; k < K; k++) {
    let br = bBase + k * N;
    ${loadB}
    ${fma}
  }
  ${write}
}
`;
}

/** The 4x4 block (32x32 per workgroup). */
export const matmulRegisterTiled = matmulRegisterTiledFor(4, 4);

/** Workgroup 16x16 invocations, 64x64 block of C; dispatch (ceil(N/64), ceil(M/64), batches). */
export function matmulWorkgroupTiledFor(epi?: EpilogueProgram): string {
  return /* wgsl */ `${head(epi)}${batchOffsets}${bindings}
const TILE = 64u;
const BK = 16u;
var<workgroup> As: array<array<f32, 64>, 16>;   // [k][m]
var<workgroup> Bs: array<array<f32, 64>, 16>;   // [k][n]
@compute @workgroup_size(16, 16, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let M = ${P.ref('M')}; let N = ${P.ref('N')}; let K = ${P.ref('K')};
  let batch = wid.z + ${P.ref('firstBatch')};
  let offs = batch_offsets(batch);
  let aBase = offs.x; let bBase = offs.y; let cBase = batch * M * N;
  let m0 = wid.y * TILE; let n0 = wid.x * TILE;
  var acc: array<vec4<f32>, 4>;
  for (var i = 0u; i < 4u; i++) { acc[i] = vec4<f32>(0.0); }
  for (var k0 = 0u; k0 < K; k0 += BK) {
    // 256 invocations stage 64x16 of A and 16x64 of B, four elements each.
    for (var e = 0u; e < 4u; e++) {
      let idx = li + e * 256u;
      let am = idx / BK; let ak = idx % BK;
      let ga = aBase + min(m0 + am, M - 1u) * K + min(k0 + ak, K - 1u);
      As[ak][am] = select(0.0, A[ga], k0 + ak < K);
      let bk = idx / TILE; let bn = idx % TILE;
      let gb = bBase + min(k0 + bk, K - 1u) * N + min(n0 + bn, N - 1u);
      Bs[bk][bn] = select(0.0, B[gb], k0 + bk < K);
    }
    workgroupBarrier();
    for (var k = 0u; k < BK; k++) {
      let b = vec4<f32>(Bs[k][lid.x * 4u], Bs[k][lid.x * 4u + 1u], Bs[k][lid.x * 4u + 2u], Bs[k][lid.x * 4u + 3u]);
      for (var i = 0u; i < 4u; i++) { acc[i] += As[k][lid.y * 4u + i] * b; }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let r = m0 + lid.y * 4u + i;
    if (r >= M) { break; }
    for (var j = 0u; j < 4u; j++) {
      let c = n0 + lid.x * 4u + j;
      if (c < N) { ${store(epi, 'cBase + r * N + c', 'acc[i][j]', 'c')} }
    }
  }
}
`;
}

/** Without a folded chain. */
export const matmulWorkgroupTiled = matmulWorkgroupTiledFor();

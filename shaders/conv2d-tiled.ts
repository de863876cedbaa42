// Register-tiled 2-D convolution and its adjoints: the same maths as conv2d.ts, but each
// invocation computes a small block of outputs, so every value it loads feeds several FMAs.
// No workgroup memory and no barriers: fast on SwiftShader (DESIGN.md) and decent on GPUs.
//  - forward: ob output channels x wb output columns per invocation (default 4x4: 16 FMAs per
//    8 loads; the block is generated, conv2dTiledShaderFor);
//  - backprop-input: 4 input channels per invocation (4 FMAs per 5 loads);
//  - backprop-filter: 4 output x 4 input channels per invocation (16 FMAs per 8 loads), with the
//    batch optionally split across invocations into partial sums that a reduction adds up.
// Channel blocks never straddle a group: a group's channels are blocked separately (blocks of the
// last, partial, block read clamped indices and skip their writes).
import { convFields } from './conv2d.ts';
import { type EpilogueProgram, epilogueFields, epilogueUsesChannel, epilogueWgsl } from './epilogue.ts';
import { flatIndex, launchArgs } from './params.ts';
import { type Fields, type UniformSchema, uniforms } from './uniforms.ts';

// Each kernel's uniforms: the convolution's sizes (conv2d.ts, `count` = invocations) and its
// blocking.
/** Forward: output-channel blocks per group (OB), output-column blocks (WB). */
const convTiledFields = { ...convFields, OB: 'u32', WB: 'u32' } as const;
export const convTiledUniforms = uniforms(convTiledFields);
/** The forward kernel's uniforms with those of a folded elementwise chain after them. */
export const convTiledUniformsWith = (epi: EpilogueProgram): UniformSchema<Fields> => uniforms({ ...convTiledFields, ...epilogueFields(epi) });
/** Backprop-input: input-channel blocks per group (CB). */
export const convBackpropInputTiledUniforms = uniforms({ ...convFields, CB: 'u32' });
/** Backprop-filter: output-channel blocks per group (OB), input-channel blocks per group (CB),
 * batch splits (S). */
export const convBackpropFilterTiledUniforms = uniforms({ ...convFields, OB: 'u32', CB: 'u32', S: 'u32' });

const header = (P: { wgsl: string }) => /* wgsl */ `${P.wgsl}${flatIndex}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> in0: array<f32>;
@group(0) @binding(3) var<storage, read> in1: array<f32>;
override WG: u32 = 64u;
`;

/**
 * in0 = x [N,C,H,W], in1 = w [O,C/g,KH,KW]; out = y [N,O,OH,OW]. Each invocation computes `ob`
 * output channels (a multiple of 4, as vec4 accumulators) x `wb` adjacent output columns: per
 * kernel tap it loads ob weights and wb inputs for ob*wb FMAs. The block shape is generated
 * (unrolled, so the accumulators stay in registers); the backend picks it per shape. With `epi`,
 * each output goes through a folded elementwise chain (shaders/epilogue.ts) as it is written;
 * its uniforms are then convTiledUniformsWith(epi).
 */
export function conv2dTiledShaderFor(ob: number, wb: number, epi?: EpilogueProgram, taps3 = false): string {
  if (!(ob === 1 || ob === 2 || (ob % 4 === 0 && ob >= 4)) || wb < 1) throw new Error(`conv2dTiledShaderFor: bad block ${ob}x${wb}`);
  // o: the channel within the block (a WGSL expression), for an epilogue with channel leaves
  const ch = epi && epilogueUsesChannel(epi) ? (o: string) => `, g * Og + o0 + ${o}` : () => '';
  const store = (index: string, value: string, o = 'o') => (epi ? `{ let oi = ${index}; out[oi] = epilogue(${value}, oi${ch(o)}); }` : `out[${index}] = ${value};`);
  const js = [...Array(wb).keys()];
  if (ob < 4) return conv2dTiledNarrow(ob, wb, js, store, epi, taps3);
  const ov = ob / 4;
  const vs = [...Array(ov).keys()];
  const decl = js.flatMap((j) => vs.map((v) => `var a${j}_${v} = vec4<f32>(0.0);`)).join(' ');
  const loadW = vs.map((v) => `let wv${v} = vec4<f32>(${[0, 1, 2, 3].map((i) => `in1[wrow[${4 * v + i}] + k]`).join(', ')});`).join('\n        ');
  const fma = (j: number, xv: string) => vs.map((v) => `a${j}_${v} += ${xv} * wv${v};`).join(' ');
  // With a folded chain, one call site in a loop over the block (see shaders/matmul.ts).
  const write = epi
    ? `var res = array<vec4<f32>, ${wb * ov}>(${js.flatMap((j) => vs.map((v) => `a${j}_${v}`)).join(', ')});
  for (var j = 0u; j < ${wb}u; j++) {
    if (ow0 + j >= OW) { break; }
    for (var o = 0u; o < ${ob}u; o++) {
      if (o0 + o < Og) { ${store('obase + o * OH * OW + j', `res[j * ${ov}u + o / 4u][o % 4u]`)} }
    }
  }`
    : js.flatMap((j) => vs.map((v) => `if (ow0 + ${j}u < OW) { for (var i = 0u; i < 4u; i++) { if (o0 + ${4 * v}u + i < Og) { ${store(`obase + (${4 * v}u + i) * OH * OW + ${j}u`, `a${j}_${v}[i]`)} } } }`)).join('\n  ');
  return conv2dTiledKernel(ob, wb, decl, loadW, fma, write, epi, taps3);
}

/**
 * One or two output channels per invocation (a group of that many channels: the gradient of a
 * network's input, which has 1-3 channels, is a conv down to them), as scalar accumulators: the
 * vec4 block would spend 3 of every 4 FMAs on a clamped copy of the last channel. lavapipe
 * (loaded), IG's [1024,8,32,32] -> 1 channel with its readback: 127-147 ms at 1x16 against
 * 174-210 ms at 4x8: the kernel is bound by its input loads, not its FMAs.
 */
function conv2dTiledNarrow(ob: number, wb: number, js: number[], store: (index: string, value: string, o?: string) => string, epi: EpilogueProgram | undefined, taps3: boolean): string {
  const os = [...Array(ob).keys()];
  const decl = js.flatMap((j) => os.map((o) => `var a${j}_${o} = 0.0;`)).join(' ');
  const loadW = os.map((o) => `let wv${o} = in1[wrow[${o}] + k];`).join(' ');
  const fma = (j: number, xv: string) => os.map((o) => `a${j}_${o} += ${xv} * wv${o};`).join(' ');
  const write = epi
    ? `var res = array<f32, ${wb * ob}>(${js.flatMap((j) => os.map((o) => `a${j}_${o}`)).join(', ')});
  for (var j = 0u; j < ${wb}u; j++) {
    if (ow0 + j >= OW) { break; }
    for (var o = 0u; o < ${ob}u; o++) {
      if (o0 + o < Og) { ${store('obase + o * OH * OW + j', `res[j * ${ob}u + o]`)} }
    }
  }`
    : js.flatMap((j) => os.map((o) => `if (ow0 + ${j}u < OW && o0 + ${o}u < Og) { ${store(`obase + ${o}u * OH * OW + ${j}u`, `a${j}_${o}`, `${o}u`)} }`)).join('\n  ');
  return conv2dTiledKernel(ob, wb, decl, loadW, fma, write, epi, taps3);
}

/**
 * The forward kernel around a block's accumulators, weight loads, FMAs (`fma(j, x)`: output
 * column j of the block += x times its weights) and writes. With `taps3` (a kernel 3 wide, column
 * stride and dilation 1: most convs) the wb + 2 inputs a kernel row touches are loaded once for
 * its three taps, not once per tap: a third of the input loads, which is what bounds these
 * kernels on CPU adapters. lavapipe, 3x3 stride 1, interleaved runs on a quiet machine: 1x16 block
 * (8 -> 1 channel, [1024,8,32,32]) 89-99 -> 42 ms; 2x16 1.5-1.7x; 4x8 (3-6 output channels)
 * 1.4-1.6x; 8x8 (8-64 channels) within +-10%, either way.
 */
function conv2dTiledKernel(ob: number, wb: number, decl: string, loadW: string, fma: (j: number, x: string) => string, write: string, epi: EpilogueProgram | undefined, taps3: boolean): string {
  const js = [...Array(wb).keys()];
  const load = (col: string) => `select(0.0, in0[xRow + u32(clamp(${col}, 0, W - 1))], ${col} >= 0 && ${col} < W)`;
  const taps = taps3
    ? `${[...Array(wb + 2).keys()].map((m) => `let x${m} = ${load(`(wcol0 + ${m})`)};`).join('\n      ')}
      ${[0, 1, 2].map((q) => `{ let k = wc + p * 3u + ${q}u; ${loadW}\n        ${js.map((j) => fma(j, `x${j + q}`)).join(' ')} }`).join('\n      ')}`
    : `for (var q = 0u; q < KW; q++) {
        let k = wc + p * KW + q;
        ${loadW}
        let col = wcol0 + i32(q) * dw;
        ${js.map((j) => `{ let cj = col + ${j} * sw; let xv = ${load('cj')}; ${fma(j, 'xv')} }`).join('\n        ')}
      }`;
  const P = convTiledUniforms;
  const S = epi ? convTiledUniformsWith(epi) : P;
  return /* wgsl */ `${header(S)}${epi ? epilogueWgsl(epi, S, 4) : ''}
@compute @workgroup_size(WG)
fn main(${launchArgs}) {
  let idx = flat_index(wid, nwg, lid, WG);
  if (idx >= ${P.ref('count')}) { return; }
  let C = ${P.ref('C')}; let H = i32(${P.ref('H')}); let W = i32(${P.ref('W')}); let O = ${P.ref('O')};
  let OH = ${P.ref('OH')}; let OW = ${P.ref('OW')}; let KH = ${P.ref('KH')}; let KW = ${P.ref('KW')};
  let G = ${P.ref('groups')}; let Cg = C / G; let Og = O / G;
  let OB = ${P.ref('OB')}; let WB = ${P.ref('WB')};
  let wb = idx % WB; var t = idx / WB;
  let oh = t % OH; t = t / OH;
  let ob = t % (OB * G); let n = t / (OB * G);
  let g = ob / OB; let o0 = (ob % OB) * ${ob}u;
  let ow0 = wb * ${wb}u;
  let sw = i32(${P.ref('strideW')}); let dh = i32(${P.ref('dilationH')}); let dw = i32(${P.ref('dilationW')});
  let h0 = i32(oh * ${P.ref('strideH')}) - ${P.ref('padTop')};
  let wcol0 = i32(ow0) * sw - ${P.ref('padLeft')};
  // Weight rows of the block's output channels (clamped inside the group).
  var wrow: array<u32, ${ob}>;
  for (var i = 0u; i < ${ob}u; i++) { wrow[i] = (g * Og + min(o0 + i, Og - 1u)) * Cg * KH * KW; }
  ${decl}
  for (var c = 0u; c < Cg; c++) {
    let xPlane = (n * C + g * Cg + c) * u32(H * W);
    let wc = c * KH * KW;
    for (var p = 0u; p < KH; p++) {
      let h = h0 + i32(p) * dh;
      if (h < 0 || h >= H) { continue; }
      let xRow = xPlane + u32(h * W);
      ${taps}
    }
  }
  let obase = ((n * O + g * Og + o0) * OH + oh) * OW + ow0;
  ${write}
}
`;
}

/** The 4 output channels x 4 columns block (the default). */
export const conv2dTiledShader = conv2dTiledShaderFor(4, 4);

const BI = convBackpropInputTiledUniforms;
/** in0 = dy [N,O,OH,OW], in1 = w; out = dx [N,C,H,W]. */
export const conv2dBackpropInputTiledShader = /* wgsl */ `${header(BI)}
@compute @workgroup_size(WG)
fn main(${launchArgs}) {
  let idx = flat_index(wid, nwg, lid, WG);
  if (idx >= ${BI.ref('count')}) { return; }
  let C = ${BI.ref('C')}; let H = ${BI.ref('H')}; let W = ${BI.ref('W')}; let O = ${BI.ref('O')};
  let OH = i32(${BI.ref('OH')}); let OW = i32(${BI.ref('OW')}); let KH = ${BI.ref('KH')}; let KW = ${BI.ref('KW')};
  let sh = i32(${BI.ref('strideH')}); let sw = i32(${BI.ref('strideW')}); let dh = i32(${BI.ref('dilationH')}); let dw = i32(${BI.ref('dilationW')});
  let G = ${BI.ref('groups')}; let Cg = C / G; let Og = O / G; let CB = ${BI.ref('CB')};
  let w = idx % W; var t = idx / W;
  let h = t % H; t = t / H;
  let cbAll = t % (CB * G); let n = t / (CB * G);
  let g = cbAll / CB; let c0 = (cbAll % CB) * 4u;
  var cc: array<u32, 4>;
  for (var i = 0u; i < 4u; i++) { cc[i] = min(c0 + i, Cg - 1u); }
  var acc = vec4<f32>(0.0);
  for (var p = 0u; p < KH; p++) {
    let ti = i32(h) + ${BI.ref('padTop')} - i32(p) * dh;
    if (ti < 0 || ti % sh != 0) { continue; }
    let i = ti / sh;
    if (i >= OH) { continue; }
    for (var q = 0u; q < KW; q++) {
      let tj = i32(w) + ${BI.ref('padLeft')} - i32(q) * dw;
      if (tj < 0 || tj % sw != 0) { continue; }
      let j = tj / sw;
      if (j >= OW) { continue; }
      let k = p * KW + q;
      for (var oo = 0u; oo < Og; oo++) {
        let o = g * Og + oo;
        let dyv = in0[((n * O + o) * u32(OH) + u32(i)) * u32(OW) + u32(j)];
        let wb = o * Cg * KH * KW + k;
        acc += dyv * vec4<f32>(in1[wb + cc[0] * KH * KW], in1[wb + cc[1] * KH * KW], in1[wb + cc[2] * KH * KW], in1[wb + cc[3] * KH * KW]);
      }
    }
  }
  for (var i = 0u; i < 4u; i++) {
    if (c0 + i >= Cg) { break; }
    out[((n * C + g * Cg + c0 + i) * H + h) * W + w] = acc[i];
  }
}
`;

const BF = convBackpropFilterTiledUniforms;
/**
 * in0 = x [N,C,H,W], in1 = dy [N,O,OH,OW]; out = partial dw [S, O, C/g, KH, KW] over S batch
 * splits (S = 1: dw itself).
 */
export const conv2dBackpropFilterTiledShader = /* wgsl */ `${header(BF)}
@compute @workgroup_size(WG)
fn main(${launchArgs}) {
  let idx = flat_index(wid, nwg, lid, WG);
  if (idx >= ${BF.ref('count')}) { return; }
  let N = ${BF.ref('N')}; let C = ${BF.ref('C')}; let H = i32(${BF.ref('H')}); let W = i32(${BF.ref('W')}); let O = ${BF.ref('O')};
  let OH = ${BF.ref('OH')}; let OW = ${BF.ref('OW')}; let KH = ${BF.ref('KH')}; let KW = ${BF.ref('KW')};
  let G = ${BF.ref('groups')}; let Cg = C / G; let Og = O / G;
  let OB = ${BF.ref('OB')}; let CB = ${BF.ref('CB')}; let S = ${BF.ref('S')};
  let q = idx % KW; var t = idx / KW;
  let p = t % KH; t = t / KH;
  let cb = t % CB; t = t / CB;
  let obAll = t % (OB * G); let s = t / (OB * G);
  let g = obAll / OB; let o0 = (obAll % OB) * 4u; let c0 = cb * 4u;
  var oIdx: array<u32, 4>; var cIdx: array<u32, 4>;
  for (var i = 0u; i < 4u; i++) {
    oIdx[i] = g * Og + min(o0 + i, Og - 1u);
    cIdx[i] = g * Cg + min(c0 + i, Cg - 1u);
  }
  let hOff = i32(p * ${BF.ref('dilationH')}) - ${BF.ref('padTop')}; let wOff = i32(q * ${BF.ref('dilationW')}) - ${BF.ref('padLeft')};
  let sh = ${BF.ref('strideH')}; let sw = ${BF.ref('strideW')};
  let per = (N + S - 1u) / S;
  let nEnd = min(N, (s + 1u) * per);
  // acc[k][i]: input channel c0+k, output channel o0+i.
  var a0 = vec4<f32>(0.0); var a1 = vec4<f32>(0.0); var a2 = vec4<f32>(0.0); var a3 = vec4<f32>(0.0);
  for (var n = s * per; n < nEnd; n++) {
    for (var i = 0u; i < OH; i++) {
      let h = i32(i * sh) + hOff;
      if (h < 0 || h >= H) { continue; }
      for (var j = 0u; j < OW; j++) {
        let w = i32(j * sw) + wOff;
        if (w < 0 || w >= W) { continue; }
        let yo = (n * O) * OH * OW + i * OW + j;
        let dyv = vec4<f32>(in1[yo + oIdx[0] * OH * OW], in1[yo + oIdx[1] * OH * OW], in1[yo + oIdx[2] * OH * OW], in1[yo + oIdx[3] * OH * OW]);
        let xo = (n * C) * u32(H * W) + u32(h * W + w);
        a0 += in0[xo + cIdx[0] * u32(H * W)] * dyv;
        a1 += in0[xo + cIdx[1] * u32(H * W)] * dyv;
        a2 += in0[xo + cIdx[2] * u32(H * W)] * dyv;
        a3 += in0[xo + cIdx[3] * u32(H * W)] * dyv;
      }
    }
  }
  var accs = array<vec4<f32>, 4>(a0, a1, a2, a3);
  let filt = O * Cg * KH * KW;
  for (var k = 0u; k < 4u; k++) {
    if (c0 + k >= Cg) { break; }
    for (var i = 0u; i < 4u; i++) {
      if (o0 + i >= Og) { break; }
      out[s * filt + (((g * Og + o0 + i) * Cg + c0 + k) * KH + p) * KW + q] = accs[k][i];
    }
  }
}
`;

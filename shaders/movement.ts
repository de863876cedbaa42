// One strided-copy kernel for every movement primitive (permute, expand, slice, pad, flip, and
// each operand of concat). Along each output axis k the source coordinate is
// offset[k] + out_coord * step[k]; outside [0, in_size[k]) it reads the pad value; the source
// element is at sum(src_coord * in_stride) and the destination at out_base + sum(out_coord * out_stride).
//   permute: in_stride reordered;  expand: in_stride 0;  slice: offset = begin;
//   pad: offset = -before;  flip: offset = n-1, step -1;  concat: out_base/out_stride into the whole.
import { flatIndex, launchArgs, MAX_RANK } from './params.ts';
import { uniforms } from './uniforms.ts';

/** Per output axis k (the first `rank` elements of each array are read). */
export const movementUniforms = uniforms({
  count: 'u32',
  outBase: 'u32',
  padValue: 'f32',
  shape: ['u32', MAX_RANK],
  inStride: ['i32', MAX_RANK],
  offset: ['i32', MAX_RANK],
  step: ['i32', MAX_RANK],
  inSize: ['u32', MAX_RANK],
  outStride: ['u32', MAX_RANK],
});

/** The strided copy, unrolled for one rank (<= MAX_RANK): no loops, constant parameter reads. */
export function movementShader(rank: number): string {
  const P = movementUniforms;
  let body = '';
  for (let k = rank - 1; k >= 0; k--) {
    body += `
  {
    let n = ${P.ref('shape', k)};
    let c = rem % n; rem = rem / n;
    let s = ${P.ref('offset', k)} + i32(c) * ${P.ref('step', k)};
    inside = inside && s >= 0i && s < i32(${P.ref('inSize', k)});
    src += s * ${P.ref('inStride', k)};
    dst += c * ${P.ref('outStride', k)};
  }`;
  }
  return /* wgsl */ `${P.wgsl}${flatIndex}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> inp: array<f32>;
override WG: u32 = 64u;
@compute @workgroup_size(WG)
fn main(${launchArgs}) {
  let i = flat_index(wid, nwg, lid, WG);
  if (i >= ${P.ref('count')}) { return; }
  var rem = i;
  var src = 0i;
  var dst = ${P.ref('outBase')};
  var inside = true;${body}
  out[dst] = select(${P.ref('padValue')}, inp[max(src, 0i)], inside);
}
`;
}

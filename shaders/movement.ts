// One strided-copy kernel for every movement primitive (permute, expand, slice, pad, flip, and
// each operand of concat). Along each output axis k the source coordinate is
// offset[k] + out_coord * step[k]; outside [0, in_size[k]) it reads the pad value; the source
// element is at sum(src_coord * in_stride) and the destination at out_base + sum(out_coord * out_stride).
//   permute: in_stride reordered;  expand: in_stride 0;  slice: offset = begin;
//   pad: offset = -before;  flip: offset = n-1, step -1;  concat: out_base/out_stride into the whole.
import { F, I, U, flatIndex, launchArgs, paramsBlock } from './params.ts';

// params: [0] count, [1] rank, [2] out_base, [3] pad value (f32 bits),
//   [8+k] out shape, [16+k] in_stride (i32), [24+k] offset (i32), [32+k] step (i32),
//   [40+k] in_size, [48+k] out_stride.
/** The strided copy, unrolled for one rank (<= MAX_RANK): no loops, constant parameter reads. */
export function movementShader(rank: number): string {
  let body = '';
  for (let k = rank - 1; k >= 0; k--) {
    body += `
  {
    let n = ${U(8 + k)};
    let c = rem % n; rem = rem / n;
    let s = ${I(24 + k)} + i32(c) * ${I(32 + k)};
    inside = inside && s >= 0i && s < i32(${U(40 + k)});
    src += s * ${I(16 + k)};
    dst += c * ${U(48 + k)};
  }`;
  }
  return /* wgsl */ `${paramsBlock}${flatIndex}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> inp: array<f32>;
override WG: u32 = 64u;
@compute @workgroup_size(WG)
fn main(${launchArgs}) {
  let i = flat_index(wid, nwg, lid, WG);
  if (i >= ${U(0)}) { return; }
  var rem = i;
  var src = 0i;
  var dst = ${U(2)};
  var inside = true;${body}
  out[dst] = select(${F(3)}, inp[max(src, 0i)], inside);
}
`;
}

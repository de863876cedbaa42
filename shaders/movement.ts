// One strided-copy kernel for every movement primitive (permute, expand, slice, pad, flip, and
// each operand of concat). Along each output axis k the source coordinate is
// offset[k] + out_coord * step[k]; outside [0, in_size[k]) it reads the pad value; the source
// element is at sum(src_coord * in_stride) and the destination at out_base + sum(out_coord * out_stride).
//   permute: in_stride reordered;  expand: in_stride 0;  slice: offset = begin;
//   pad: offset = -before;  flip: offset = n-1, step -1;  concat: out_base/out_stride into the whole.
import { flatIndex, launchArgs, paramsBlock } from './params.ts';

// params: [0] count, [1] rank, [2] out_base, [3] pad value (f32 bits),
//   [8+k] out shape, [16+k] in_stride (i32), [24+k] offset (i32), [32+k] step (i32),
//   [40+k] in_size, [48+k] out_stride.
export const movementShader = /* wgsl */ `${paramsBlock}${flatIndex}
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> inp: array<f32>;
override WG: u32 = 64u;
@compute @workgroup_size(WG)
fn main(${launchArgs}) {
  let i = flat_index(wid, nwg, lid, WG);
  if (i >= pu(0u)) { return; }
  var rem = i;
  var src = 0i;
  var dst = pu(2u);
  var inside = true;
  for (var d = pu(1u); d > 0u; d--) {
    let k = d - 1u;
    let c = rem % pu(8u + k); rem = rem / pu(8u + k);
    let s = pi(24u + k) + i32(c) * pi(32u + k);
    inside = inside && s >= 0i && s < i32(pu(40u + k));
    src += s * pi(16u + k);
    dst += c * pu(48u + k);
  }
  out[dst] = select(pf(3u), inp[max(src, 0i)], inside);
}
`;

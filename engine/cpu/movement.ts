// Movement primitives: reshape, permute, expand, slice, pad, flip, concat.
// permute/expand/slice/flip are gathers through a strided view of the input;
// pad/concat scatter each input into a strided view of the output.
import type { PrimImpl } from '../backend.ts';
import { broadcastStrides, sizeOf, stridesOf, viewOffsets, wrap, type CpuStorage } from './strides.ts';

/** out[i] = src[offsets[i]] */
function gatherView(src: Float64Array, offsets: Int32Array): CpuStorage {
  const out = new Float64Array(offsets.length);
  for (let i = 0; i < offsets.length; i++) out[i] = src[offsets[i]];
  return wrap(out);
}

// A copy, so every storage the backend hands out is owned by exactly one tensor.
const reshape: PrimImpl<CpuStorage, 'reshape'> = (_params, [x], outShape) =>
  wrap(x.storage.data.slice(0, sizeOf(outShape)));

const permute: PrimImpl<CpuStorage, 'permute'> = ({ perm }, [x]) => {
  const inStrides = stridesOf(x.shape);
  const shape = perm.map((p) => x.shape[p]);
  const strides = perm.map((p) => inStrides[p]);
  return gatherView(x.storage.data, viewOffsets(shape, strides));
};

const expand: PrimImpl<CpuStorage, 'expand'> = (_params, [x], outShape) =>
  gatherView(x.storage.data, viewOffsets(outShape, broadcastStrides(x.shape, outShape)));

const slice: PrimImpl<CpuStorage, 'slice'> = ({ begin }, [x], outShape) => {
  const strides = stridesOf(x.shape);
  let offset = 0;
  for (let k = 0; k < strides.length; k++) offset += begin[k] * strides[k];
  return gatherView(x.storage.data, viewOffsets(outShape, strides, offset));
};

const flip: PrimImpl<CpuStorage, 'flip'> = ({ axes }, [x]) => {
  const strides = stridesOf(x.shape);
  let offset = 0;
  for (const a of axes) {
    offset += (x.shape[a] - 1) * strides[a];
    strides[a] = -strides[a];
  }
  return gatherView(x.storage.data, viewOffsets(x.shape, strides, offset));
};

const pad: PrimImpl<CpuStorage, 'pad'> = ({ before, value }, [x], outShape) => {
  const out = new Float64Array(sizeOf(outShape)).fill(value);
  const outStrides = stridesOf(outShape);
  let offset = 0;
  for (let k = 0; k < outStrides.length; k++) offset += before[k] * outStrides[k];
  const dst = viewOffsets(x.shape, outStrides, offset);
  const src = x.storage.data;
  for (let i = 0; i < dst.length; i++) out[dst[i]] = src[i];
  return wrap(out);
};

const concat: PrimImpl<CpuStorage, 'concat'> = ({ axis }, inputs, outShape) => {
  const out = new Float64Array(sizeOf(outShape));
  const outStrides = stridesOf(outShape);
  let at = 0; // position along `axis` where the next input starts
  for (const x of inputs) {
    const dst = viewOffsets(x.shape, outStrides, at * outStrides[axis]);
    const src = x.storage.data;
    for (let i = 0; i < dst.length; i++) out[dst[i]] = src[i];
    at += x.shape[axis];
  }
  return wrap(out);
};

export const movementImpls = { reshape, permute, expand, slice, pad, flip, concat };

// Batched matmul with numpy broadcasting of the batch dimensions:
// a [...batchA, M, K] x b [...batchB, K, N] -> [...broadcast(batchA, batchB), M, N].
import type { PrimImpl } from '../backend.ts';
import { broadcastStrides, sizeOf, viewOffsets, wrap, type CpuStorage } from './strides.ts';

const matmul: PrimImpl<CpuStorage, 'matmul'> = (_params, [a, b], outShape) => {
  const ra = a.shape.length;
  const rb = b.shape.length;
  const M = a.shape[ra - 2];
  const K = a.shape[ra - 1];
  const N = b.shape[rb - 1];
  const batchShape = outShape.slice(0, -2);
  // Offsets (in matrices) of each batch item's operands, then scaled to elements.
  const aBatch = viewOffsets(batchShape, broadcastStrides(a.shape.slice(0, -2), batchShape));
  const bBatch = viewOffsets(batchShape, broadcastStrides(b.shape.slice(0, -2), batchShape));
  const da = a.storage.data;
  const db = b.storage.data;
  const out = new Float64Array(sizeOf(outShape));
  const MK = M * K;
  const KN = K * N;
  const MN = M * N;
  for (let t = 0; t < aBatch.length; t++) {
    const ao = aBatch[t] * MK;
    const bo = bBatch[t] * KN;
    const oo = t * MN;
    // i-k-j order: the inner loop runs along contiguous rows of b and out; each out[i, j]
    // still accumulates its K products in increasing k.
    for (let i = 0; i < M; i++) {
      const outRow = oo + i * N;
      for (let k = 0; k < K; k++) {
        const aik = da[ao + i * K + k];
        const bRow = bo + k * N;
        for (let j = 0; j < N; j++) out[outRow + j] += aik * db[bRow + j];
      }
    }
  }
  return wrap(out);
};

export const matmulImpls = { matmul };

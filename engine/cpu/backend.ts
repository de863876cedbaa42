// The float64 CPU reference backend: the test oracle for every other backend, and the last
// fallback. Plain loops over dense row-major Float64Arrays, written from the primitive
// semantics in engine/primitives.ts (never derived from the WGSL kernels).
import type { Backend, BackendImpls, MemoryInfo } from '../backend.ts';
import type { Operand, PrimParams, Primitive, Shape } from '../primitives.ts';
import { elementwiseImpls } from './elementwise.ts';
import { reduceImpls } from './reduce.ts';
import { movementImpls } from './movement.ts';
import { matmulImpls } from './matmul.ts';
import { convImpls } from './conv.ts';
import { poolImpls } from './pool.ts';
import { resizeImpls } from './resize.ts';
import { gatherImpls } from './gather.ts';
import { randomImpls } from './philox.ts';
import type { CpuStorage } from './strides.ts';

export type { CpuStorage } from './strides.ts';

/** Every primitive, by family; a missing one is a compile error. */
export const cpuImpls: BackendImpls<CpuStorage> = {
  ...elementwiseImpls,
  ...reduceImpls,
  ...movementImpls,
  ...matmulImpls,
  ...convImpls,
  ...poolImpls,
  ...resizeImpls,
  ...gatherImpls,
  ...randomImpls,
};

export function createCpuBackend(): Backend<CpuStorage> {
  const live = new Set<CpuStorage>();
  let liveBytes = 0;
  let destroyed = false;

  function check(): void {
    if (destroyed) throw new Error('cpu backend: used after destroy()');
  }
  function track(s: CpuStorage): CpuStorage {
    live.add(s);
    liveBytes += s.data.length * 8;
    return s;
  }

  return {
    name: 'cpu',
    info: {
      backend: 'cpu',
      vendor: 'backlight',
      architecture: 'float64',
      device: 'cpu',
      description: 'float64 CPU reference',
      software: true,
    },

    upload(data: ArrayLike<number>): CpuStorage {
      check();
      return track({ data: Float64Array.from(data) });
    },

    run<P extends Primitive>(prim: P, params: PrimParams[P], inputs: Operand<CpuStorage>[], outShape: Shape): CpuStorage {
      check();
      const impl = cpuImpls[prim] as (p: PrimParams[P], i: Operand<CpuStorage>[], s: Shape) => CpuStorage;
      return track(impl(params, inputs, outShape));
    },

    read(storage: CpuStorage, size: number): Promise<Float64Array> {
      check();
      return Promise.resolve(storage.data.slice(0, size));
    },

    readSync(storage: CpuStorage, size: number): Float64Array {
      check();
      return storage.data.slice(0, size);
    },

    release(storage: CpuStorage): void {
      if (live.delete(storage)) liveBytes -= storage.data.length * 8;
    },

    memory(): MemoryInfo {
      return { liveBuffers: live.size, liveBytes, pooledBuffers: 0, pooledBytes: 0 };
    },

    flush(): void {},

    sync(): Promise<void> {
      return Promise.resolve();
    },

    destroy(): void {
      live.clear();
      liveBytes = 0;
      destroyed = true;
    },
  };
}

// The interface every backend (WebGPU, CPU float64 reference) implements. The frontend
// (engine/tensor.ts, engine/ops/*) validates everything before it calls a backend.
import type { Operand, PrimParams, Primitive, Shape } from './primitives.ts';

export interface AdapterInfo {
  backend: 'webgpu' | 'cpu';
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True when the adapter is a CPU emulation of a GPU (SwiftShader, lavapipe). */
  software: boolean;
  /**
   * Which driver runs the work: 'lavapipe' (Mesa's CPU Vulkan driver), 'swiftshader', 'gpu' (a
   * hardware driver in Node), 'browser' (navigator.gpu's, not SwiftShader) or 'cpu' (the float64
   * backend). Absent from backends that do not say. Node picks it as engine/webgpu/device.ts says;
   * BACKLIGHT_ADAPTER=system|lavapipe|swiftshader overrides.
   */
  adapter?: 'lavapipe' | 'swiftshader' | 'gpu' | 'browser' | 'cpu';
}

export interface MemoryInfo {
  /** Storage objects currently owned by tensors (not in the backend's free pool). */
  liveBuffers: number;
  liveBytes: number;
  /** Buffers kept in the pool for reuse. */
  pooledBuffers: number;
  pooledBytes: number;
}

/** A backend's implementation of one primitive. */
export type PrimImpl<S, P extends Primitive> = (
  params: PrimParams[P],
  inputs: Operand<S>[],
  outShape: Shape,
) => S;

/** Every backend fills this table: a missing primitive is a compile error. */
export type BackendImpls<S> = { [P in Primitive]: PrimImpl<S, P> };

export interface Backend<S = unknown> {
  readonly name: 'webgpu' | 'cpu';
  readonly info: AdapterInfo;
  /** Copy host data into a new storage of `data.length` elements. */
  upload(data: ArrayLike<number>): S;
  /** Run one primitive, returning a new storage holding the (dense, row-major) output. */
  run<P extends Primitive>(prim: P, params: PrimParams[P], inputs: Operand<S>[], outShape: Shape): S;
  /** Read a storage's first `size` elements back. The only place a GPU backend waits. */
  read(storage: S, size: number): Promise<Float32Array | Float64Array>;
  /** Synchronous read, for backends that can (CPU); undefined elsewhere. */
  readSync?(storage: S, size: number): Float32Array | Float64Array;
  /** The storage is no longer referenced by any tensor. */
  release(storage: S): void;
  memory(): MemoryInfo;
  /** Submit recorded work (no-op on the CPU). */
  flush(): void;
  /** Resolve when all submitted work is done. */
  sync(): Promise<void>;
  /** Release everything; the backend cannot be used afterwards. */
  destroy(): void;
}

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

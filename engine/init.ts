// Choosing and creating a backend.
import type { AdapterInfo, Backend, MemoryInfo } from './backend.ts';
import { getBackend, setDefaultBackend } from './context.ts';
import { createCpuBackend } from './cpu/backend.ts';
import type { WebGpuOptions } from './webgpu/backend.ts';
import { fromData } from './context.ts';
import type { Tensor } from './tensor.ts';

export interface InitOptions extends WebGpuOptions {
  /** 'webgpu' (default), 'cpu' (float64 reference), or 'auto': WebGPU, else the CPU with a warning. */
  backend?: 'webgpu' | 'cpu' | 'auto';
  /** Make it the default backend for new tensors (default true). */
  setDefault?: boolean;
}

let warnedFallback = false;

/**
 * 'auto' fell back to the CPU: say so, with the reason, once per process (on stderr in Node, the
 * console in a browser), so that a slow run is never a silent mystery and a loop of init() calls
 * does not repeat it.
 */
function warnCpuFallback(reason: string): void {
  if (warnedFallback) return;
  warnedFallback = true;
  console.warn(`backlight: WebGPU unavailable, running on the float64 CPU backend (much slower). Why: ${reason}`);
}

/**
 * Create a backend and make it the default. Returns the backend; `backend.info` says which
 * adapter runs the work (vendor, architecture, device).
 */
export async function init(opts: InitOptions = {}): Promise<Backend> {
  const kind = opts.backend ?? 'webgpu';
  if (!['webgpu', 'cpu', 'auto'].includes(kind)) throw new Error(`init: backend must be 'webgpu', 'cpu' or 'auto', got ${String(kind)}`);
  let b: Backend;
  if (kind === 'cpu') {
    b = createCpuBackend();
  } else {
    try {
      const { createWebGpuBackend } = await import('./webgpu/backend.ts');
      b = await createWebGpuBackend(opts);
    } catch (e) {
      if (kind !== 'auto') throw e;
      warnCpuFallback((e as Error).message);
      b = createCpuBackend();
    }
  }
  if (opts.setDefault ?? true) setDefaultBackend(b);
  return b;
}

export function adapterInfo(b: Backend = getBackend()): AdapterInfo {
  return b.info;
}

/** Live and pooled buffers of a backend (default: the default one). */
export function memory(b: Backend = getBackend()): MemoryInfo {
  return b.memory();
}

/** Copy a tensor to another backend (reads it back once). */
export async function toBackend(t: Tensor, b: Backend): Promise<Tensor> {
  return fromData(await t.data(), t.shape, b);
}

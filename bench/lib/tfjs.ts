// TensorFlow.js as a peer engine in Node: tfjs-core with its WebGPU backend on the same Dawn
// adapter backlight uses, or (when that cannot run) tfjs-core's 'cpu' backend, labelled as such.
//
// It loads the union package `@tensorflow/tfjs`, not `@tensorflow/tfjs-core` alone: tfjs-core's
// Node entry (dist/tf-core.node.js) registers no gradients ("Cannot compute gradient: gradient
// function not found for Neg"), and its `dist/register_all_gradients` is an ES module with
// extension-less and directory imports that Node (and tsx) cannot load
// (ERR_UNSUPPORTED_DIR_IMPORT). The union's Node build registers every gradient on the same
// tfjs-core instance that tfjs-backend-webgpu's Node build requires.
import type * as TF from '@tensorflow/tfjs';
import type { AdapterInfo } from '../../engine/index.ts';
// Not public API, but the peer must pick its adapter exactly as backlight does (system driver,
// else SwiftShader through VK_ICD_FILENAMES), and this is that logic.
import { acquireDevice } from '../../engine/webgpu/device.ts';

export type Tf = typeof TF;

export interface TfjsPeer {
  tf: Tf;
  /** 'webgpu' or 'cpu' (the fallback). */
  backend: string;
  /** A label for tables: 'tfjs-webgpu' or 'tfjs-cpu'. */
  label: string;
  /** The adapter the peer's WebGPU backend was created on (as backlight describes adapters). */
  adapter?: AdapterInfo;
  /** What TF.js itself reports about its adapter (WebGPUBackend.adapterInfo). */
  tfjsAdapterInfo?: Record<string, unknown>;
  /** Why WebGPU was not used, with the error text, when backend is 'cpu'. */
  fallbackReason?: string;
  version: string;
}

// Strong references for the life of the process: dawn.node crashes if the object create()
// returned (or its adapter) is garbage-collected while a device works (DESIGN.md, "Adapters").
const keepAlive: unknown[] = [];

async function setupWebGpu(): Promise<{ adapter: AdapterInfo; gpu: GPU }> {
  // The `webgpu` package's objects (GPUBufferUsage, GPUMapMode, ...) as globals, as in a browser.
  const mod = 'webgpu';
  const webgpu = (await import(/* @vite-ignore */ mod)) as { globals: Record<string, unknown> };
  Object.assign(globalThis, webgpu.globals);
  // Same adapter choice as backlight: this sets VK_ICD_FILENAMES to SwiftShader's driver before
  // calling create() when the system has no Vulkan driver. Its device is not needed: TF.js makes
  // its own from navigator.gpu.
  const acquired = await acquireDevice();
  acquired.device.destroy();
  const gpu = acquired.gpuRoot as GPU;
  keepAlive.push(acquired.gpuRoot, acquired.adapter);
  // Node 20 has no navigator; Node 21+ has one without gpu. Replace it either way.
  Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  return { adapter: acquired.info, gpu };
}

/**
 * Load TF.js with the given preferred backend. 'webgpu' falls back to 'cpu' with the reason
 * recorded (and printed by the caller); 'cpu' uses tfjs-backend-cpu directly.
 */
export async function setupTfjs(prefer: 'webgpu' | 'cpu' = 'webgpu'): Promise<TfjsPeer> {
  let adapter: AdapterInfo | undefined;
  let fallbackReason: string | undefined;
  if (prefer === 'webgpu') {
    try {
      adapter = (await setupWebGpu()).adapter;
    } catch (e) {
      fallbackReason = `no WebGPU adapter for TF.js: ${(e as Error).message}`;
    }
  }
  // tfjs-backend-webgpu registers itself on import only if navigator.gpu exists, so these are
  // imported after the setup above.
  const tf = (await import('@tensorflow/tfjs')) as Tf;
  if (prefer === 'webgpu' && !fallbackReason) {
    try {
      await import('@tensorflow/tfjs-backend-webgpu');
      // Run the backend's factory ourselves so that a failure's error text is ours to report
      // (tf.setBackend only logs it and returns false).
      const factory = tf.findBackendFactory('webgpu');
      if (!factory) throw new Error('tfjs-backend-webgpu did not register a "webgpu" backend (it found no navigator.gpu)');
      const be = await factory();
      tf.removeBackend('webgpu');
      tf.registerBackend('webgpu', () => be, 3);
      if (!(await tf.setBackend('webgpu'))) throw new Error('tf.setBackend("webgpu") returned false');
      await tf.ready();
      const info = (tf.backend() as unknown as { adapterInfo?: Record<string, unknown> }).adapterInfo;
      return { tf, backend: 'webgpu', label: 'tfjs-webgpu', adapter, tfjsAdapterInfo: info ? { ...info } : undefined, version: tf.version_core };
    } catch (e) {
      const err = e as Error;
      fallbackReason = `TF.js WebGPU backend failed in Node: ${err.message}`;
    }
  }
  if (!(await tf.setBackend('cpu'))) throw new Error('TF.js: even the cpu backend failed to initialise');
  await tf.ready();
  return { tf, backend: 'cpu', label: 'tfjs-cpu', fallbackReason, version: tf.version_core };
}

/**
 * Submit TF.js's recorded WebGPU work and wait for the GPU without reading anything back (the
 * backend's own methods: TF.js has no public "sync"), so a timed op is not charged a read-back
 * that backlight's timing does not pay. On its cpu backend the work is already done.
 */
export async function tfSync(tf: Tf): Promise<void> {
  const be = tf.backend() as unknown as {
    ensureCommandEncoderReady?(): void; endComputePassEncoder?(): void; submitQueue?(): void; device?: GPUDevice;
  };
  if (!be.device || !be.submitQueue) return;
  be.ensureCommandEncoderReady?.();
  be.endComputePassEncoder?.();
  be.submitQueue();
  await be.device.queue.onSubmittedWorkDone();
}

// Acquiring a WebGPU device in Node (Dawn through the `webgpu` package) or in a browser
// (navigator.gpu), behind one function.
import type { AdapterInfo } from '../backend.ts';

export interface AcquiredDevice {
  device: GPUDevice;
  adapter: GPUAdapter;
  info: AdapterInfo;
  /**
   * The object `create()` returned in Node. It must stay reachable for the device's whole life:
   * if it is garbage-collected while the device works, dawn.node crashes in
   * InstanceBase::ProcessEvents (DESIGN.md, "Adapters").
   */
  gpuRoot: unknown;
}

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

const isNode = typeof process !== 'undefined' && !!process.versions?.node;

function describe(adapter: GPUAdapter): AdapterInfo {
  const i = adapter.info;
  const vendor = i?.vendor ?? '';
  const architecture = i?.architecture ?? '';
  const device = i?.device ?? '';
  const description = i?.description ?? '';
  const all = `${vendor} ${architecture} ${device} ${description}`.toLowerCase();
  const software = /swiftshader|llvmpipe|lavapipe|software|warp/.test(all) || (i as { isFallbackAdapter?: boolean })?.isFallbackAdapter === true;
  return { backend: 'webgpu', vendor, architecture, device, description, software };
}

async function requestDevice(adapter: GPUAdapter): Promise<GPUDevice> {
  const l = adapter.limits;
  // Ask for the adapter's own limits where ours need more than the defaults (big buffers,
  // all storage bindings a conv backward pass uses).
  return adapter.requestDevice({
    requiredLimits: {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
    },
  });
}

async function nodeAdapter(): Promise<{ adapter: GPUAdapter | null; root: unknown; tried: string[] }> {
  // The module name is in a variable so that browser bundlers leave it alone.
  const mod = 'webgpu';
  const webgpu = (await import(/* @vite-ignore */ mod)) as {
    create: (flags: string[]) => GPU;
    globals: Record<string, unknown>;
  };
  // Dawn's objects (GPUBufferUsage, ...) as globals, as in a browser.
  for (const [k, v] of Object.entries(webgpu.globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  const tried: string[] = [];
  const env = process.env;
  // SwiftShader complains on stderr at every start when this is unset; any writable dir will do.
  env.XDG_RUNTIME_DIR ??= '/tmp';
  if (!env.BACKLIGHT_FORCE_SWIFTSHADER) {
    const root = webgpu.create([]);
    const adapter = await root.requestAdapter({ powerPreference: 'high-performance' });
    tried.push('system default Vulkan driver');
    if (adapter) return { adapter, root, tried };
  }
  // No system adapter: Dawn reads VK_ICD_FILENAMES when it creates its instance, so point it at
  // SwiftShader (shipped by Debian's chromium package) and create a new instance.
  const fsName = 'node:fs'; // in a variable, so browser bundlers do not try to resolve it
  const fs = (await import(/* @vite-ignore */ fsName)) as typeof import('node:fs');
  if (fs.existsSync(SWIFTSHADER_ICD)) {
    env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
    const root = webgpu.create([]);
    const adapter = await root.requestAdapter();
    tried.push(`SwiftShader (${SWIFTSHADER_ICD})`);
    if (adapter) return { adapter, root, tried };
  } else {
    tried.push(`SwiftShader (not installed: ${SWIFTSHADER_ICD} missing)`);
  }
  return { adapter: null, root: null, tried };
}

export async function acquireDevice(): Promise<AcquiredDevice> {
  if (typeof navigator !== 'undefined' && (navigator as Navigator & { gpu?: GPU }).gpu) {
    const gpu = (navigator as Navigator & { gpu: GPU }).gpu;
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) {
      throw new Error('backlight: navigator.gpu returned no adapter. Enable WebGPU in this browser (Chromium: --enable-unsafe-webgpu; headless: also --enable-unsafe-swiftshader) or use init({ backend: "cpu" }).');
    }
    const device = await requestDevice(adapter);
    return { device, adapter, info: describe(adapter), gpuRoot: gpu };
  }
  if (!isNode) {
    throw new Error('backlight: no WebGPU here (no navigator.gpu and not Node). Use init({ backend: "cpu" }).');
  }
  let found;
  try {
    found = await nodeAdapter();
  } catch (e) {
    throw new Error(`backlight: could not load the 'webgpu' package (Dawn for Node): ${(e as Error).message}. Run npm ci.`);
  }
  if (!found.adapter) {
    throw new Error(
      `backlight: no WebGPU adapter found (tried: ${found.tried.join('; ')}). ` +
        'Install a Vulkan driver: on Debian, `apt-get install libvulkan1 chromium` provides the Vulkan loader and ' +
        'SwiftShader (run `bash scripts/setup.sh`), or use init({ backend: "cpu" }).',
    );
  }
  const device = await requestDevice(found.adapter);
  return { device, adapter: found.adapter, info: describe(found.adapter), gpuRoot: found.root };
}

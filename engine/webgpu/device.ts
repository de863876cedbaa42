// The WebGPU types (GPUDevice, ...) this module's public types use: kept in the published .d.ts
// (preserve) so that a consumer's tsc finds them through the @webgpu/types dependency, with no
// setup of its own.
/// <reference types="@webgpu/types" preserve="true" />
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
// Mesa's lavapipe (mesa-vulkan-drivers). Mesa 25 names it lvp_icd.json, older Mesa
// lvp_icd.<arch>.json. Dawn needs Mesa >= 24; Debian 12's own Mesa 22 is rejected by Dawn (no
// adapter), which is why scripts/setup.sh takes it from bookworm-backports.
const ICD_DIRS = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d'];

/** Which adapter to use in Node (BACKLIGHT_ADAPTER): see acquireDevice. */
export type AdapterChoice = 'auto' | 'system' | 'lavapipe' | 'swiftshader';

const isNode = typeof process !== 'undefined' && !!process.versions?.node;

// The user's own VK_ICD_FILENAMES, captured before we point it elsewhere: a later init() in the
// same process that wants the system's drivers must see what the user set, not our last choice.
const userIcdFilenames = isNode ? process.env.VK_ICD_FILENAMES : undefined;

/** Which driver an adapter is, from what Dawn reports (lavapipe reports itself as llvmpipe). */
function driverOf(vendor: string, architecture: string, device: string, description: string): AdapterInfo['adapter'] {
  const all = `${vendor} ${architecture} ${device} ${description}`.toLowerCase();
  if (all.includes('swiftshader')) return 'swiftshader';
  if (/llvmpipe|lavapipe/.test(all)) return 'lavapipe';
  return 'gpu';
}

function describe(adapter: GPUAdapter, browser = false): AdapterInfo {
  const i = adapter.info;
  const vendor = i?.vendor ?? '';
  const architecture = i?.architecture ?? '';
  const device = i?.device ?? '';
  const description = i?.description ?? '';
  const all = `${vendor} ${architecture} ${device} ${description}`.toLowerCase();
  const software = /swiftshader|llvmpipe|lavapipe|software|warp/.test(all) || (i as { isFallbackAdapter?: boolean })?.isFallbackAdapter === true;
  const driver = driverOf(vendor, architecture, device, description);
  return { backend: 'webgpu', vendor, architecture, device, description, software, adapter: browser && driver === 'gpu' ? 'browser' : driver };
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

/** The lavapipe ICD file, if Mesa's Vulkan drivers are installed. */
function findLavapipeIcd(fs: NodeFs): string | null {
  for (const dir of ICD_DIRS) {
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue;
    }
    const hit = names.filter((n) => /^lvp_icd(\..*)?\.json$/.test(n)).sort()[0];
    if (hit) return `${dir}/${hit}`;
  }
  return null;
}

// The two node:fs functions used here, typed structurally so that the published .d.ts does not
// need @types/node (browser projects type-check it too).
type NodeFs = { readdirSync(path: string): string[]; existsSync(path: string): boolean };

/**
 * node:fs without an import statement. This file is part of the browser-safe engine: a static
 * `import 'node:fs'` (or a dynamic one a bundler can see) would make every browser bundle of the
 * engine fail or need a shim. process.getBuiltinModule (Node >= 20.16, package.json engines)
 * is a plain property call that bundlers leave alone, and it is only reached in Node.
 */
function nodeFs(): NodeFs {
  const get = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule;
  if (typeof get !== 'function') throw new Error(`backlight: WebGPU in Node needs Node >= 20.16 (process.getBuiltinModule); this is Node ${process.versions.node}`);
  return get('node:fs') as NodeFs;
}

/** BACKLIGHT_DEBUG set (any value but '' or '0'): Dawn's own probe warnings and our adapter log may reach the terminal. */
export function debugEnabled(env: Record<string, string | undefined>): boolean {
  const v = env.BACKLIGHT_DEBUG?.trim();
  return !!v && v !== '0';
}

/**
 * Vulkan ICD manifests the Vulkan loader would read for the system's default driver (Linux).
 * Dawn's Vulkan backend prints "Warning: vkCreateInstance: Found no drivers!" plus a
 * VK_ERROR_INCOMPATIBLE_DRIVER stack trace straight to stderr (native fprintf, out of reach of
 * JavaScript) whenever it creates an instance on a machine with no driver installed. Looking
 * for the manifests first lets us skip that attempt, and its noise, when it cannot succeed.
 * Returns null where the loader's search is not known (not Linux): there we just try.
 */
export function vulkanIcdManifests(fs: NodeFs, env: Record<string, string | undefined>, platform: string): string[] | null {
  if (platform !== 'linux') return null;
  // The loader's own overrides: a list of files (or folders), ':'-separated.
  const listed = (v: string | undefined) => (v ?? '').split(':').filter((f) => f && fs.existsSync(f));
  const override = env.VK_DRIVER_FILES || env.VK_ICD_FILENAMES;
  if (override) return listed(override);
  // VK_ADD_DRIVER_FILES adds to the search rather than replacing it.
  const found: string[] = listed(env.VK_ADD_DRIVER_FILES);
  const dirs = [
    ...(env.XDG_CONFIG_HOME ? [`${env.XDG_CONFIG_HOME}/vulkan/icd.d`] : env.HOME ? [`${env.HOME}/.config/vulkan/icd.d`] : []),
    ...(env.XDG_CONFIG_DIRS || '/etc/xdg').split(':').map((d) => `${d}/vulkan/icd.d`),
    '/usr/local/etc/vulkan/icd.d', '/etc/vulkan/icd.d',
    ...(env.XDG_DATA_HOME ? [`${env.XDG_DATA_HOME}/vulkan/icd.d`] : env.HOME ? [`${env.HOME}/.local/share/vulkan/icd.d`] : []),
    ...(env.XDG_DATA_DIRS || '/usr/local/share:/usr/share').split(':').map((d) => `${d}/vulkan/icd.d`),
  ];
  for (const dir of dirs) {
    try {
      for (const n of fs.readdirSync(dir)) if (n.endsWith('.json')) found.push(`${dir}/${n}`);
    } catch {
      // a folder that does not exist: the loader skips it too
    }
  }
  return found;
}

/** BACKLIGHT_ADAPTER, or 'swiftshader' for the older BACKLIGHT_FORCE_SWIFTSHADER=1. */
export function adapterChoice(env: Record<string, string | undefined>): AdapterChoice {
  const v = env.BACKLIGHT_ADAPTER?.trim().toLowerCase();
  if (v) {
    if (v === 'auto' || v === 'system' || v === 'lavapipe' || v === 'swiftshader') return v;
    throw new Error(`backlight: BACKLIGHT_ADAPTER must be system, lavapipe or swiftshader (or auto), got '${env.BACKLIGHT_ADAPTER}'`);
  }
  if (env.BACKLIGHT_FORCE_SWIFTSHADER && env.BACKLIGHT_FORCE_SWIFTSHADER !== '0') return 'swiftshader';
  return 'auto';
}

/**
 * Node: which Vulkan driver Dawn gets. Dawn reads VK_ICD_FILENAMES when it creates its
 * instance, so each attempt sets it and creates a new instance.
 *   auto (default): the system's default adapter (high-performance: a GPU if there is one, else
 *     lavapipe when Mesa >= 24 is installed); if Dawn finds none, SwiftShader from chromium.
 *   system: only the system's default adapter.  lavapipe / swiftshader: only that driver.
 * Lavapipe is preferred over SwiftShader because it is ~5x faster on the same cores (DESIGN.md).
 */
async function nodeAdapter(choice: AdapterChoice): Promise<{ adapter: GPUAdapter | null; root: unknown; tried: string[] }> {
  const webgpu = await loadDawn();
  // Dawn's objects (GPUBufferUsage, ...) as globals, as in a browser.
  for (const [k, v] of Object.entries(webgpu.globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  const fs = nodeFs();
  const tried: string[] = [];
  const env = process.env;
  // SwiftShader complains on stderr at every start when this is unset; any writable dir will do.
  env.XDG_RUNTIME_DIR ??= '/tmp';

  const attempt = async (what: string, icd: string | undefined, accept: (a: GPUAdapter) => boolean = () => true) => {
    if (icd === undefined) delete env.VK_ICD_FILENAMES;
    else env.VK_ICD_FILENAMES = icd;
    const root = webgpu.create(dawnFlags(env));
    const adapter = await root.requestAdapter({ powerPreference: 'high-performance' });
    if (adapter && accept(adapter)) {
      tried.push(what);
      return { adapter, root, tried };
    }
    tried.push(adapter ? `${what}: got ${describe(adapter).description || 'another adapter'}` : `${what}: no adapter`);
    return null;
  };

  if (choice === 'auto' || choice === 'system') {
    const userEnv = { ...env, VK_ICD_FILENAMES: userIcdFilenames };
    const manifests = vulkanIcdManifests(fs, userEnv, process.platform);
    if (manifests && manifests.length === 0 && !debugEnabled(env)) {
      // No driver for Dawn to find: asking would only print its "Found no drivers!" warning.
      tried.push(userIcdFilenames ? `system default Vulkan driver (VK_ICD_FILENAMES=${userIcdFilenames}: no such file)` : 'system default Vulkan driver (none installed: no Vulkan ICD manifest in /usr/share/vulkan/icd.d, /etc/vulkan/icd.d, ...)');
      if (choice === 'system') return { adapter: null, root: null, tried };
    } else {
      const r = await attempt('system default Vulkan driver', userIcdFilenames);
      if (r || choice === 'system') return r ?? { adapter: null, root: null, tried };
    }
  }
  if (choice === 'lavapipe') {
    const icd = findLavapipeIcd(fs);
    if (!icd) {
      tried.push(`lavapipe (not installed: no lvp_icd*.json in ${ICD_DIRS.join(', ')}; install mesa-vulkan-drivers >= 24, e.g. bash scripts/setup.sh)`);
      return { adapter: null, root: null, tried };
    }
    const r = await attempt(`lavapipe (${icd})`, icd, (a) => describe(a).adapter === 'lavapipe');
    if (!r) tried[tried.length - 1] += ' (Dawn needs Mesa >= 24; Debian 12 has it in bookworm-backports: bash scripts/setup.sh)';
    return r ?? { adapter: null, root: null, tried };
  }
  // auto without a system adapter, or swiftshader: SwiftShader, shipped by Debian's chromium.
  if (fs.existsSync(SWIFTSHADER_ICD)) {
    const r = await attempt(`SwiftShader (${SWIFTSHADER_ICD})`, SWIFTSHADER_ICD);
    if (r) return r;
  } else {
    tried.push(`SwiftShader (not installed: ${SWIFTSHADER_ICD} missing)`);
  }
  return { adapter: null, root: null, tried };
}

/**
 * Dawn's instance flags in Node. Dawn zero-fills every new buffer before its first use ("lazy
 * clear"), which a browser needs (a page must never see another page's memory) and backlight does
 * not: every kernel writes all of its output before anything reads it (tests fill outputs with
 * NaN first to prove it: poisonOutputs), and pooled buffers are reused unzeroed anyway. On
 * lavapipe the clear is the dominant cost of a fresh buffer: 130-520 ms per 8 MiB buffer against
 * 0.3-8 ms without it (scratch measurement, Mesa 25.0.7, 2 cores), i.e. a first call or a new
 * batch size ran many times slower than the same call warm. BACKLIGHT_ZERO_INIT=1 keeps Dawn's
 * clearing.
 */
export function dawnFlags(env: Record<string, string | undefined>): string[] {
  const v = env.BACKLIGHT_ZERO_INIT?.trim();
  const keep = !!v && v !== '0';
  return keep ? [] : ['disable-dawn-features=lazy_clear_resource_on_first_use'];
}

/** The command that installs Dawn for Node, named in every error about it. */
export const INSTALL_DAWN = 'npm install webgpu';

interface DawnModule {
  create: (flags: string[]) => GPU;
  globals: Record<string, unknown>;
}

/**
 * The `webgpu` package (Dawn for Node). It is an optional dependency of backlight (npm installs
 * it by default; browser-only users may leave it out with --omit=optional), so a missing one is
 * an expected situation with a message that names the command to install it.
 */
async function loadDawn(): Promise<DawnModule> {
  // The name is in a variable so that browser bundlers do not try to resolve it (a browser
  // never reaches this: it has navigator.gpu).
  const mod = 'webgpu';
  try {
    return (await import(/* @vite-ignore */ /* webpackIgnore: true */ mod)) as DawnModule;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes("'webgpu'")) {
      throw new Error(`backlight: WebGPU in Node needs the 'webgpu' package (Dawn), which is not installed. Install it with \`${INSTALL_DAWN}\` (in a clone of backlight: npm ci), or use init({ backend: 'cpu' }).`);
    }
    throw new Error(`backlight: the 'webgpu' package (Dawn for Node) failed to load: ${err.message}. Reinstall it with \`${INSTALL_DAWN}\`, or use init({ backend: 'cpu' }).`);
  }
}

export async function acquireDevice(): Promise<AcquiredDevice> {
  if (typeof navigator !== 'undefined' && (navigator as Navigator & { gpu?: GPU }).gpu) {
    const gpu = (navigator as Navigator & { gpu: GPU }).gpu;
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) {
      throw new Error('backlight: navigator.gpu returned no adapter. Enable WebGPU in this browser (Chromium: --enable-unsafe-webgpu; headless: also --enable-unsafe-swiftshader) or use init({ backend: "cpu" }).');
    }
    const device = await requestDevice(adapter);
    return { device, adapter, info: describe(adapter, true), gpuRoot: gpu };
  }
  if (!isNode) {
    throw new Error('backlight: no WebGPU here (no navigator.gpu and not Node). Use init({ backend: "cpu" }).');
  }
  const choice = adapterChoice(process.env);
  const found = await nodeAdapter(choice);
  if (debugEnabled(process.env)) console.error(`backlight: adapter probe (BACKLIGHT_ADAPTER=${choice}): ${found.tried.join('; ')}`);
  if (!found.adapter) {
    throw new Error(
      `backlight: no WebGPU adapter found (tried: ${found.tried.join('; ')}). ` +
        'Install a Vulkan driver: on Debian/Ubuntu the Vulkan loader (libvulkan1) and Mesa\'s lavapipe ' +
        '(mesa-vulkan-drivers >= 24; from bookworm-backports on Debian 12), e.g. `sudo apt-get install libvulkan1 mesa-vulkan-drivers`, ' +
        'or SwiftShader (Debian\'s chromium package); in a clone of backlight `bash scripts/setup.sh` does this. ' +
        'Or use init({ backend: "cpu" }).',
    );
  }
  const device = await requestDevice(found.adapter);
  return { device, adapter: found.adapter, info: describe(found.adapter), gpuRoot: found.root };
}

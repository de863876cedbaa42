// Which adapter Node gets (engine/webgpu/device.ts): BACKLIGHT_ADAPTER's values, the older
// BACKLIGHT_FORCE_SWIFTSHADER=1, and that backend.info says which driver runs. Each adapter is
// tried in a child process, since Dawn reads VK_ICD_FILENAMES once per instance.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { adapterChoice } from '../../engine/webgpu/device.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const hasLavapipe = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d'].some((d) => existsSync(d) && readdirSync(d).some((n) => /^lvp_icd/.test(n)));
const hasSwiftShader = existsSync('/usr/lib/chromium/vk_swiftshader_icd.json');

function infoWith(env: Record<string, string>): { adapter?: string; description: string } {
  const code = `
    const { init } = await import(${JSON.stringify(`${root}engine/init.ts`)});
    const b = await init({ backend: 'webgpu', setDefault: false });
    process.stdout.write('INFO' + JSON.stringify(b.info) + '\\n');
    b.destroy();
  `;
  const clean = { ...process.env };
  delete clean.BACKLIGHT_ADAPTER;
  delete clean.BACKLIGHT_FORCE_SWIFTSHADER;
  const res = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: root,
    env: { ...clean, ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  expect(res.status, res.stderr).toBe(0);
  const line = res.stdout.split('\n').find((l) => l.startsWith('INFO'))!;
  return JSON.parse(line.slice(4));
}

describe('BACKLIGHT_ADAPTER', () => {
  it('parses system|lavapipe|swiftshader|auto, keeps BACKLIGHT_FORCE_SWIFTSHADER=1, rejects others', () => {
    expect(adapterChoice({})).toBe('auto');
    expect(adapterChoice({ BACKLIGHT_ADAPTER: 'Lavapipe' })).toBe('lavapipe');
    expect(adapterChoice({ BACKLIGHT_ADAPTER: 'system' })).toBe('system');
    expect(adapterChoice({ BACKLIGHT_FORCE_SWIFTSHADER: '1' })).toBe('swiftshader');
    expect(adapterChoice({ BACKLIGHT_FORCE_SWIFTSHADER: '1', BACKLIGHT_ADAPTER: 'lavapipe' })).toBe('lavapipe');
    expect(() => adapterChoice({ BACKLIGHT_ADAPTER: 'llvmpipe' })).toThrow(/BACKLIGHT_ADAPTER must be system, lavapipe or swiftshader/);
  });

  it.runIf(hasSwiftShader)('swiftshader (and the older BACKLIGHT_FORCE_SWIFTSHADER=1) runs on SwiftShader', () => {
    expect(infoWith({ BACKLIGHT_ADAPTER: 'swiftshader' }).adapter).toBe('swiftshader');
    expect(infoWith({ BACKLIGHT_FORCE_SWIFTSHADER: '1' }).adapter).toBe('swiftshader');
  });

  it.runIf(hasLavapipe)('lavapipe runs on Mesa\'s lavapipe, and so does the default on a machine without a GPU', () => {
    const lvp = infoWith({ BACKLIGHT_ADAPTER: 'lavapipe' });
    expect(lvp.adapter).toBe('lavapipe');
    expect(lvp.description).toMatch(/llvmpipe/);
    // The default prefers a GPU, then lavapipe; never SwiftShader while lavapipe works.
    expect(['gpu', 'lavapipe']).toContain(infoWith({}).adapter);
  });
});

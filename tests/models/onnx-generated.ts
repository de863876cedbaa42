// Fixtures too large to commit (tests/fixtures/make_torchvision_fixtures.py --group large|e2e),
// made at test time into tests/fixtures/generated/<group>-<hash of the script>/ with Debian's
// /usr/bin/python3 (python3-torch, python3-torchvision; scripts/setup.sh installs them), and
// reused while the script is unchanged. Where that interpreter has no torch, `generated` returns
// the reason and the tests that need the files skip, saying why.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
const SCRIPT = FIXTURES + 'make_torchvision_fixtures.py';
// BACKLIGHT_TORCH_PYTHON: another interpreter with torch (or a missing one, to see the skip path)
const PYTHON = process.env.BACKLIGHT_TORCH_PYTHON ?? '/usr/bin/python3';

export interface Generated {
  dir: string;
  manifest: Record<string, { opsets: number[]; target: number; input: number[]; logits: number[]; batchNormPreserved: boolean; occlusionWindow?: number; gradcamLayer?: string }>;
}

/** The generated fixtures of `group` (made now if missing), or the reason they cannot be made. */
export function generated(group: 'large' | 'e2e'): Generated | { skip: string } {
  const hash = createHash('sha256').update(readFileSync(SCRIPT)).digest('hex').slice(0, 16);
  const dir = `${FIXTURES}generated/${group}-${hash}/`;
  const manifest = dir + 'torchvision_manifest.json';
  if (!existsSync(manifest)) {
    if (!existsSync(PYTHON)) return { skip: `${PYTHON} is missing (install python3-torch python3-torchvision: scripts/setup.sh)` };
    const probe = spawnSync(PYTHON, ['-c', 'import torch, torchvision'], { encoding: 'utf8' });
    if (probe.status !== 0) return { skip: `${PYTHON} cannot import torch and torchvision (apt-get install python3-torch python3-torchvision): ${(probe.stderr ?? '').trim().split('\n').pop()}` };
    // made in a private folder and renamed into place, so parallel test files never see half a set
    const tmp = `${dir.slice(0, -1)}.tmp-${process.pid}/`;
    mkdirSync(tmp, { recursive: true });
    const r = spawnSync(PYTHON, [SCRIPT, '--group', group, '--out', tmp], { encoding: 'utf8', maxBuffer: 64 << 20 });
    if (r.status !== 0) {
      rmSync(tmp, { recursive: true, force: true });
      throw new Error(`${SCRIPT} --group ${group} failed (exit ${r.status}):\n${r.stderr}`);
    }
    try {
      renameSync(tmp, dir);
    } catch (e) {
      // another test file made the same set first
      rmSync(tmp, { recursive: true, force: true });
      if (!existsSync(manifest)) throw e;
    }
  }
  return { dir, manifest: JSON.parse(readFileSync(manifest, 'utf8')) };
}

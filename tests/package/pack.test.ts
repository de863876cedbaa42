// The published package, as a new user gets it: `npm pack` (which builds dist/ by prepack),
// installed into a fresh project offline, then used with plain `node` (no tsx: compiled
// JavaScript), type-checked by the consumer's `tsc` against the .d.ts, and run as `backlight`
// from node_modules/.bin. Last, with the optional `webgpu` package gone, init() names the command
// that installs it and 'auto' says once why it runs on the CPU.
//
// Offline: the project gets a package-lock.json whose entries (versions, tarball URLs, integrity)
// are copied from the repository's lock, so `npm ci --offline` takes every tarball from the npm
// cache that the repository's own `npm ci` filled; no registry metadata is needed.
import { execFile, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const here = fileURLToPath(new URL('./consumer/', import.meta.url));
const work = mkdtempSync(`${tmpdir()}/backlight-pack-`);
const app = `${work}/app`;
const tsc = `${root}node_modules/typescript/bin/tsc`;
const timings: Record<string, number> = {};

type LockEntry = { version?: string; resolved?: string; integrity?: string; dev?: boolean; devOptional?: boolean; optional?: boolean; dependencies?: Record<string, string>; optionalDependencies?: Record<string, string>; [k: string]: unknown };

function sh(what: string, cmd: string, args: string[], cwd: string, env: Record<string, string | undefined> = {}, timeout = 240_000): SpawnSyncReturns<string> {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout, env: { ...process.env, npm_config_update_notifier: 'false', ...env } });
  timings[what] = Math.round(performance.now() - t0) / 1000;
  return r;
}
/** sh, without blocking (to run two at once). */
function shAsync(what: string, cmd: string, args: string[], cwd: string): Promise<SpawnSyncReturns<string>> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, encoding: 'utf8', timeout: 120_000 }, (err, stdout, stderr) => {
      timings[what] = Math.round(performance.now() - t0) / 1000;
      const status = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ status, stdout, stderr, signal: (err?.signal as NodeJS.Signals) ?? null, pid: 0, output: [] });
    });
  });
}
const fail = (r: SpawnSyncReturns<string>) => `exit ${r.status ?? r.signal}\n--- stdout\n${r.stdout?.slice(-3000)}\n--- stderr\n${r.stderr?.slice(-6000)}`;

/**
 * The consumer's lock: backlight from the tarball, and the closure of its dependencies (and of
 * devDeps, the consumer's own type packages) with the repository lock's entries.
 */
function consumerLock(tarball: string, integrity: string, devDeps: string[]): object {
  const repo = JSON.parse(readFileSync(`${root}package-lock.json`, 'utf8')) as { packages: Record<string, LockEntry> };
  const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as LockEntry & { bin?: unknown; engines?: unknown; license?: string };
  const packages: Record<string, LockEntry> = {
    '': { name: 'consumer', version: '1.0.0', dependencies: { backlight: `file:${tarball}` }, devDependencies: Object.fromEntries(devDeps.map((d) => [d, repo.packages[`node_modules/${d}`].version!])) },
    'node_modules/backlight': {
      version: pkg.version, resolved: `file:${tarball}`, integrity, license: pkg.license,
      dependencies: pkg.dependencies, optionalDependencies: pkg.optionalDependencies, bin: pkg.bin, engines: pkg.engines,
    },
  };
  const visit = (name: string, kind: 'prod' | 'dev' | 'optional') => {
    const key = `node_modules/${name}`;
    const e = repo.packages[key];
    if (!e) throw new Error(`package-lock.json has no ${key} (a dependency of the package): run npm install`);
    if (packages[key]) return;
    const { dev: _d, devOptional: _do, optional: _o, ...rest } = e;
    // The repository's lock may leave out `resolved` (npm's omit-lockfile-registry-resolved);
    // with the registry URL and the integrity, npm finds the tarball in its cache.
    const base = name.split('/').pop()!;
    rest.resolved ??= `https://registry.npmjs.org/${name}/-/${base}-${e.version}.tgz`;
    packages[key] = { ...rest, ...(kind === 'dev' ? { dev: true } : kind === 'optional' || e.optional ? { optional: true } : {}) };
    for (const d of Object.keys(e.dependencies ?? {})) visit(d, kind);
    for (const d of Object.keys(e.optionalDependencies ?? {})) visit(d, kind === 'dev' ? 'dev' : 'optional');
  };
  for (const d of Object.keys(pkg.dependencies ?? {})) visit(d, 'prod');
  for (const d of Object.keys(pkg.optionalDependencies ?? {})) visit(d, 'optional');
  for (const d of devDeps) visit(d, 'dev');
  return { name: 'consumer', version: '1.0.0', lockfileVersion: 3, requires: true, packages };
}

afterAll(() => {
  console.log(`pack test timings (s): ${JSON.stringify(timings)}`);
  rmSync(work, { recursive: true, force: true });
});

describe('the packed package, installed offline into a fresh project', () => {
  let tarball = '';

  it('npm pack builds dist/ and packs only what a user needs', () => {
    const r = sh('npm pack (build)', 'npm', ['pack', '--json', '--pack-destination', work], root);
    expect(r.status, fail(r)).toBe(0);
    const info = JSON.parse(r.stdout.slice(r.stdout.indexOf('['))) as { filename: string; integrity: string; files: { path: string }[] }[];
    tarball = `${work}/${info[0].filename}`;
    const files = info[0].files.map((f) => f.path);
    expect(files).toEqual(expect.arrayContaining(['package.json', 'bin/backlight.mjs', 'dist/engine/index.js', 'dist/engine/index.d.ts', 'dist/node/index.js', 'dist/cli/main.js', 'dist/models/weights/digits-cnn.safetensors', 'dist/data/digits.csv.gz', 'dist/models/zoo/bundled/digits-cnn.js']));
    expect(files.filter((f) => /^(tests|bench|examples|\.ci|scripts|node_modules)\//.test(f) || (f.endsWith('.ts') && !f.endsWith('.d.ts')))).toEqual([]);
    // compiled JavaScript and declarations import .js, never .ts (plain node; TS5097)
    const entry = readFileSync(`${root}dist/engine/index.d.ts`, 'utf8');
    expect(entry).toMatch(/from '\.\/tensor\.js'/);
    expect(entry).not.toMatch(/\.ts'/);

    const integrity = info[0].integrity;
    mkdirSync(app);
    const devDeps = ['@types/node'];
    writeFileSync(`${app}/package.json`, JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module', dependencies: { backlight: `file:${tarball}` }, devDependencies: Object.fromEntries(devDeps.map((d) => [d, '*'])) }, null, 2));
    const lock = consumerLock(tarball, integrity, devDeps) as { packages: Record<string, LockEntry> };
    (lock.packages[''].devDependencies as Record<string, string>)['@types/node'] = '*';
    writeFileSync(`${app}/package-lock.json`, JSON.stringify(lock, null, 2));
    const inst = sh('npm ci --offline', 'npm', ['ci', '--offline', '--no-audit', '--no-fund', '--ignore-scripts'], app);
    expect(inst.status, `${fail(inst)}\n(the tarballs come from the npm cache that npm ci filled in the repository)`).toBe(0);
    expect(existsSync(`${app}/node_modules/backlight/dist/engine/index.js`)).toBe(true);
    expect(existsSync(`${app}/node_modules/webgpu/package.json`)).toBe(true);
    expect(existsSync(`${app}/node_modules/tsx`)).toBe(false); // a dev dependency of the repository only
  }, 300_000);

  it('plain node imports it: a bundled model, forward + saliency on the CPU and on WebGPU, a heatmap PNG', () => {
    expect(tarball, 'the pack step failed').not.toBe('');
    for (const f of ['run.mjs', 'missing-webgpu.mjs', 'consumer.ts', 'browser.ts']) copyFileSync(`${here}${f}`, `${app}/${f}`);
    const r = sh('node run.mjs (cpu + webgpu)', process.execPath, ['run.mjs'], app, { BACKLIGHT_DEBUG: undefined }, 120_000);
    expect(r.status, fail(r)).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(out.models).toContain('digits-cnn');
    expect(out.weightsAsDataMatchDisk).toBe(true);
    expect(out.cpu.adapter).toBe('cpu');
    expect(['gpu', 'lavapipe', 'swiftshader']).toContain(out.webgpu.adapter);
    expect(out.cpu.shape).toEqual([2, 1, 8, 8]);
    expect(out.webgpu.shape).toEqual([2, 1, 8, 8]);
    // float32 on the GPU vs the float64 reference
    const close = (a: number[], b: number[]) => a.every((v, i) => Math.abs(v - b[i]) <= 1e-3 * (1 + Math.abs(b[i])));
    expect(close(out.webgpu.logits, out.cpu.logits)).toBe(true);
    expect(close(out.webgpu.saliency, out.cpu.saliency)).toBe(true);
    expect(out.cpu.saliency.some((v: number) => v !== 0)).toBe(true);
    expect(out.png).toEqual([16, 8]);
    expect(r.stderr).not.toMatch(/Found no drivers|vkCreateInstance|ERR_UNKNOWN_FILE_EXTENSION/);
  }, 150_000);

  it("the consumer's tsc type-checks code using the public types: zero errors (Node and browser settings)", async () => {
    writeFileSync(`${app}/tsconfig.json`, JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: ['node'] },
      files: ['consumer.ts'],
    }));
    // a browser project: DOM, bundler resolution (browser conditions), and the package's .d.ts checked
    writeFileSync(`${app}/tsconfig.browser.json`, JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'ESNext', moduleResolution: 'Bundler', lib: ['ES2022', 'DOM'], strict: true, noEmit: true, skipLibCheck: false, types: [] },
      files: ['browser.ts'],
    }));
    // both at once (two cores)
    const [node, browser] = await Promise.all(['tsconfig.json', 'tsconfig.browser.json'].map((cfg) => shAsync(`tsc -p ${cfg}`, process.execPath, [tsc, '-p', cfg], app)));
    expect(node.status, fail(node)).toBe(0);
    expect(browser.status, fail(browser)).toBe(0);
  }, 120_000);

  it('npx backlight runs the compiled CLI', () => {
    const r = sh('npx backlight models --json', 'npx', ['--offline', 'backlight', 'models', '--json'], app, {}, 60_000);
    expect(r.status, fail(r)).toBe(0);
    expect(r.stdout).toContain('digits-cnn');
  }, 90_000);

  it("without the optional 'webgpu' package: init() says `npm install webgpu`; 'auto' falls back once, saying why", () => {
    renameSync(`${app}/node_modules/webgpu`, `${app}/node_modules/.webgpu-hidden`);
    const r = sh('node missing-webgpu.mjs', process.execPath, ['missing-webgpu.mjs'], app, {}, 60_000);
    expect(r.status, fail(r)).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(out.message).toMatch(/'webgpu' package \(Dawn\), which is not installed\. Install it with `npm install webgpu`/);
    expect(out.message).not.toMatch(/npm ci\./);
    expect(out.backend).toBe('cpu');
    const warnings = r.stderr.split('\n').filter((l) => l.includes('WebGPU unavailable'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/running on the float64 CPU backend .*Why: .*npm install webgpu/);
  }, 90_000);
});

#!/usr/bin/env node
// The published build (npm run build; npm pack / publish run it as prepack): compiled ESM
// JavaScript and .d.ts types in dist/, from the TypeScript sources, by tsc (tsconfig.build.json).
//   1. the bundled weights as data modules (scripts/build-weights.mjs), so they match models/weights/
//   2. tsc: .ts import specifiers become .js (rewriteRelativeImportExtensions)
//   3. the .d.ts keep .ts specifiers (tsc does not rewrite declarations), which a consumer's tsc
//      refuses (TS5097) unless it sets allowImportingTsExtensions: rewritten to .js here
//   4. the files Node reads at run time: the bundled weights (dist/models/weights/) and the data
//      sets with their licences (dist/data/), where the compiled zoo and loaders look for them
import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = `${root}dist/`;
const t0 = performance.now();
const run = (what, args) => {
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`build: ${what} failed (exit ${r.status ?? r.signal}); dist/ is incomplete`);
    process.exit(1);
  }
};

run('build-weights', ['scripts/build-weights.mjs']);
rmSync(dist, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
run('tsc -p tsconfig.build.json', [tsc, '-p', 'tsconfig.build.json']);

function* walk(dir) {
  for (const n of readdirSync(dir)) {
    const p = `${dir}/${n}`;
    if (statSync(p).isDirectory()) yield* walk(p);
    else yield p;
  }
}
// Relative specifiers only ('./x.ts', '../y/z.ts'), in import/export ... from, import('...') and
// import type('...').
const tsSpecifier = /((?:from|import)\s*\(?\s*['"])(\.{1,2}\/[^'"]*?)\.ts(['"])/g;
let dts = 0;
const leftovers = [];
for (const f of walk(dist.slice(0, -1))) {
  if (f.endsWith('.d.ts')) {
    const text = readFileSync(f, 'utf8');
    const out = text.replace(tsSpecifier, '$1$2.js$3');
    if (out !== text) (writeFileSync(f, out), dts++);
  } else if (f.endsWith('.js') && tsSpecifier.test(readFileSync(f, 'utf8'))) {
    leftovers.push(f.slice(root.length));
  }
  tsSpecifier.lastIndex = 0;
}
if (leftovers.length) {
  console.error(`build: .ts import specifiers left in compiled JavaScript (plain node cannot load them): ${leftovers.join(', ')}`);
  process.exit(1);
}
cpSync(`${root}models/weights`, `${dist}models/weights`, { recursive: true });
cpSync(`${root}data`, `${dist}data`, { recursive: true });
console.error(`build: dist/ in ${((performance.now() - t0) / 1000).toFixed(1)} s (${dts} .d.ts files' imports rewritten to .js)`);

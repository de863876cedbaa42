// Every entry of the package's exports map bundles for a browser with no Node built-in: esbuild,
// platform 'browser' (the "browser" export condition where an entry has one), from the sources
// the entry is compiled from (dist/X.js <- X.ts). A Node built-in (node:fs, zlib, ...) or a
// package that needs one (pngjs) reached from an entry fails the test, naming the importer.
import { builtinModules } from 'node:module';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { exports: Record<string, string | Record<string, string>> };
const BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
// Packages that are Node-only themselves (their code needs Node built-ins).
const NODE_ONLY_PACKAGES = new Set(['pngjs', 'webgpu', 'tsx', 'cli-progress']);

/** The source file a browser bundler would reach for an export: its browser (else default) target, dist/X.js -> X.ts. */
function browserSource(target: string | Record<string, string>): string {
  const t = typeof target === 'string' ? target : target.browser ?? target.default;
  return t.replace(/^\.\/dist\//, '').replace(/\.js$/, '.ts');
}

/** Bundle one file for the browser; returns the Node imports it reached (importer -> import). */
async function nodeImports(entry: string): Promise<string[]> {
  const found: string[] = [];
  const detect: Plugin = {
    name: 'detect-node',
    setup(b) {
      b.onResolve({ filter: /.*/ }, (args) => {
        const bare = args.path.startsWith('@') ? args.path.split('/').slice(0, 2).join('/') : args.path.split('/')[0];
        if (BUILTINS.has(args.path) || BUILTINS.has(bare) || args.path.startsWith('node:') || NODE_ONLY_PACKAGES.has(bare)) {
          found.push(`${args.importer.slice(root.length)} imports '${args.path}'`);
          return { path: args.path, external: true };
        }
        return undefined;
      });
    },
  };
  await build({ entryPoints: [`${root}${entry}`], bundle: true, platform: 'browser', format: 'esm', target: 'es2022', write: false, outdir: '/tmp/bl-browser-bundle', splitting: true, logLevel: 'silent', plugins: [detect] });
  return found;
}

const entries = Object.entries(pkg.exports).filter(([k]) => k !== './package.json');

describe('browser bundles of the package entries', () => {
  it('the exports map has the browser-safe entries and gives the Node-only ones a browser target', () => {
    expect(entries.map(([k]) => k)).toEqual(expect.arrayContaining(['.', './engine', './models', './models/zoo', './weights', './explain', './node']));
    const node = pkg.exports['./node'] as Record<string, string>;
    expect(node.browser).toMatch(/browser\.js$/);
    expect(Object.keys(node)[0]).toBe('types');
  });

  for (const [name, target] of entries) {
    const src = browserSource(target);
    it(`${name} (${src}) bundles with no Node built-in`, async () => {
      expect(await nodeImports(src)).toEqual([]);
    });
  }

  // The check itself: the Node-only files are caught.
  it('catches a Node built-in (the Node-only entry, its PNG file and disk loader)', async () => {
    expect((await nodeImports('node/index.ts')).join('\n')).toMatch(/node\/index\.ts imports 'node:fs'/);
    expect((await nodeImports('explain/png-node.ts')).join('\n')).toMatch(/imports 'pngjs'/);
    expect((await nodeImports('models/zoo/node.ts')).join('\n')).toMatch(/models\/zoo\/node\.ts imports 'node:fs'/);
  });
});

// Builds the app into a folder of static files (Node): main.js bundled by esbuild from main.ts
// and the same engine/models/explain sources as Node uses (the bundled models' weights come with
// them, as data: models/zoo/bundled/, one chunk per model loaded when picked), the page and its
// style, and samples of the models' data sets (samples/, see samples.ts), made here by models/data.
//
// The bundle must not contain Node: `browserOnly` fails the build on any Node built-in import
// (node:fs, zlib, ...), naming the importer, so a Node-only module that creeps into the app's
// import graph is caught here rather than as a blank page.
import { build, type Plugin } from 'esbuild';
import { builtinModules } from 'node:module';
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { datasetSplits } from '../../models/data/index.ts';
import type { Dataset } from '../../models/train.ts';
import { APP_MODELS, modelInfo } from './catalog.ts';
import type { SampleSet } from './samples.ts';

const HERE = fileURLToPath(new URL('.', import.meta.url));

const NODE_BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/** Fail the build on any import of a Node built-in. */
export const browserOnly: Plugin = {
  name: 'browser-only',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      const bare = args.path.split('/')[0];
      if (NODE_BUILTINS.has(args.path) || NODE_BUILTINS.has(bare) || args.path.startsWith('node:')) {
        return { errors: [{ text: `Node built-in '${args.path}' imported by ${args.importer}: the browser app must not depend on it` }] };
      }
      return undefined;
    });
  },
};

/**
 * Bundle main.ts for the browser: main.js plus chunks (each bundled model's weights is its own,
 * fetched when the model is picked), with source maps. Returns file name -> contents.
 */
export async function bundleApp(opts: { minify?: boolean } = {}): Promise<Map<string, Uint8Array>> {
  const r = await build({
    entryPoints: { main: join(HERE, 'main.ts') },
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    outdir: '/app',
    chunkNames: 'chunks/[name]-[hash]',
    sourcemap: 'linked',
    minify: opts.minify ?? false,
    plugins: [browserOnly],
    logLevel: 'silent',
  });
  return new Map(r.outputFiles.map((f) => [f.path.slice('/app/'.length), f.contents]));
}

/** What the page is told about each bundled model. */
export function modelCatalog() {
  return APP_MODELS.map(modelInfo);
}

/** Up to `perClass` samples of each class, interleaved (class 0, 1, ..., 0, 1, ...), in split order. */
function pick(d: Dataset, perClass: number): number[] {
  const classes = d.numClasses ?? Math.max(...d.y) + 1;
  const byClass = Array.from({ length: classes }, () => [] as number[]);
  for (let i = 0; i < d.n; i++) if (byClass[d.y[i]].length < perClass) byClass[d.y[i]].push(i);
  const out: number[] = [];
  for (let k = 0; k < perClass; k++) for (const c of byClass) if (c[k] !== undefined) out.push(c[k]);
  return out;
}

/** The sample sets (from models/data's fixed splits): metadata and images. */
export function sampleSets(): { set: SampleSet; images: Float32Array }[] {
  const models = modelCatalog();
  const make = (name: string, split: string, why: string, perClass: number, classes: string[]) => {
    const d = datasetSplits(name)[split]!;
    const idx = pick(d, perClass);
    const p = d.sampleShape.reduce((a, b) => a * b, 1);
    const images = new Float32Array(idx.length * p);
    idx.forEach((i, k) => images.set(d.x.subarray(i * p, (i + 1) * p), k * p));
    const [c, h, w] = d.sampleShape;
    const set: SampleSet = {
      name, split: `${split} split${why}`, description: '', shape: [c, h, w], classes,
      labels: idx.map((i) => d.y[i]), models: models.filter((m) => m.dataset === name).map((m) => m.name),
    };
    return { set, images };
  };
  const classesOf = (ds: string) => models.find((m) => m.dataset === ds)!.classes;
  return [
    make('digits', 'test', '', 3, classesOf('digits')),
    make('shapes', 'test', '', 6, classesOf('shapes')),
    // held-out: texture and class are independent there, so the shortcut the model learned shows
    make('spurious', 'heldout', ', texture uncorrelated with the class', 12, classesOf('spurious')),
  ];
}

/** Write the whole app into outDir (created if missing). */
export async function buildApp(outDir: string, opts: { minify?: boolean } = {}): Promise<void> {
  const files = await bundleApp(opts);
  // chunk names carry content hashes: old ones would pile up
  rmSync(join(outDir, 'chunks'), { recursive: true, force: true });
  mkdirSync(join(outDir, 'chunks'), { recursive: true });
  mkdirSync(join(outDir, 'samples'), { recursive: true });
  for (const [name, bytes] of files) writeFileSync(join(outDir, name), bytes);
  for (const f of ['index.html', 'style.css']) copyFileSync(join(HERE, f), join(outDir, f));
  const sets = sampleSets();
  for (const { set, images } of sets) writeFileSync(join(outDir, 'samples', `${set.name}.bin`), new Uint8Array(images.buffer, images.byteOffset, images.byteLength));
  writeFileSync(join(outDir, 'samples', 'index.json'), JSON.stringify(sets.map((s) => s.set), null, 1));
}

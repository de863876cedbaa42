// The benchmark suite: `npm run bench` (add `-- --full` for the large sizes, or BENCH_FULL=1).
// Runs each step in its own Node process (its own GPU device, and a crash or a hang costs one
// step, not the suite), converts each step's JSON into the uniform rows of bench/lib/suite.ts,
// prints one table and writes bench/results/bench.json.
//
//   npx tsx bench/run.ts [--full] [--only ops,kernels,cnn-step,explain,kernel-shap,resnet18,overhead] [--out DIR]
//
// Steps: bench/ops.ts (single ops vs TF.js, the kernels engineer's; run as is), bench/kernels.ts
// (large/skinny matmul, ResNet convs, pooling), bench/cnn-step.ts (small CNN forward, train step),
// bench/explain.ts (IG 64 steps, Grad-CAM), bench/kernel-shap.ts (KernelSHAP evaluations/s),
// bench/resnet18.ts (ResNet-18 at 224x224), bench/overhead.ts (host time per dispatch, the
// batch-1 latency of a small model). Bundled for a lent GPU (bench/gpu.sh), this file runs
// the sibling bundles (.gpu/<step>.mjs) the same way.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Args } from './lib/args.ts';
import { writeResults } from './lib/report.ts';
import { fromExplain, fromOps, fromShap, type Json } from './lib/convert.ts';
import { loadNow, machine, rowsTable, TOL, type BenchRow } from './lib/suite.ts';

const args = new Args();
args.checkKnown(['full', 'only', 'out']);
const full = args.flag('full') || process.env.BENCH_FULL === '1';
const only = args.list('only') ?? process.env.BENCH_ONLY?.split(',').filter(Boolean);
const outDir = resolve(args.string('out') ?? join(process.cwd(), 'bench', 'results'));
const here = dirname(fileURLToPath(import.meta.url));
// Bundled (.gpu/run.mjs): the steps are sibling .mjs bundles run by plain Node; else .ts under tsx.
const bundled = import.meta.url.endsWith('.mjs');
const F = full ? ['--full'] : [];
// Step time limits: a few times what each takes on an idle 2-core box (a loaded one is slower);
// --full scales them, BENCH_TIMEOUT_SCALE=N too.
const T = (full ? 4 : 1) * Number(process.env.BENCH_TIMEOUT_SCALE ?? 1);

interface StepDef {
  name: string;
  args: string[];
  /** Seconds before the step is stopped (on a loaded 2-core software adapter). */
  timeout: number;
  /** The step's JSON as uniform rows (steps written for the suite already have them). */
  convert?: (j: Json) => BenchRow[];
}

// ---- the steps ----

const STEPS: StepDef[] = [
  // ops.ts's defaults take its 5 reps x 3 ops after 2 warm-ups; fewer keep the suite in its time.
  { name: 'ops', args: full ? [] : ['--reps', '3', '--warmup', '1', '--inner', '2'], timeout: 420 * T, convert: fromOps },
  { name: 'kernels', args: [...F], timeout: 600 * T },
  { name: 'cnn-step', args: [...F], timeout: 600 * T },
  {
    name: 'explain', timeout: 420 * T, convert: fromExplain,
    args: full ? ['--full'] : ['--models', 'shapes-cnn,resnet-bn', '--batches', '16', '--budget', '15', '--check-batch', '2'],
  },
  { name: 'kernel-shap', timeout: 300 * T, convert: fromShap, args: full ? ['--full'] : ['--models', 'digits-cnn,shapes-cnn', '--batches', '512'] },
  { name: 'resnet18', args: [...F], timeout: 900 * T },
  { name: 'overhead', args: [], timeout: 240 * T },
];
const steps = STEPS.filter((s) => !only || only.includes(s.name));
for (const o of only ?? []) if (!STEPS.some((s) => s.name === o)) throw new Error(`--only: unknown step '${o}' (${STEPS.map((s) => s.name).join(', ')})`);

const t0 = performance.now();
const startLoad = loadNow();
const rows: BenchRow[] = [];
const stepLog: Json[] = [];
for (const st of steps) {
  const file = join(here, bundled ? `${st.name}.mjs` : `${st.name}.ts`);
  const json = join(outDir, `${st.name}.json`);
  // A stale file from an earlier run must not stand in for a step that failed now.
  rmSync(json, { force: true });
  console.log(`\n=== ${st.name} (${[...st.args].join(' ') || 'defaults'}) ===`);
  const ts = performance.now();
  let status = 0, signal: string | null = null;
  if (!existsSync(file)) status = -1;
  else {
    const r = spawnSync(process.execPath, [...(bundled ? [] : ['--import', 'tsx']), file, ...st.args, '--out', outDir], { stdio: 'inherit', timeout: st.timeout * 1000 });
    status = r.status ?? -1;
    signal = r.signal;
  }
  const seconds = (performance.now() - ts) / 1000;
  let got: BenchRow[] = [];
  let error: string | undefined;
  if (existsSync(json)) {
    try {
      const j = JSON.parse(readFileSync(json, 'utf8')) as Json;
      got = st.convert ? st.convert(j) : (j.rows as BenchRow[]);
      if (j.partial) error = `stopped after ${got.length} rows (${signal ?? `exit ${status}`}${seconds >= st.timeout - 1 ? `, over its ${st.timeout} s limit` : ''})`;
    } catch (e) {
      error = `its JSON could not be read: ${(e as Error).message}`;
    }
  } else error = !existsSync(file) ? `${file} not found` : signal ? `stopped (${signal}${seconds >= st.timeout - 1 ? `, over its ${st.timeout} s limit` : ''})` : `exit ${status}, no JSON written`;
  if (error) got = [...got, { group: st.name, name: `(step ${st.name})`, shape: '', ours_ms: null, peer: null, peer_ms: null, ratio: null, gflops: null, gbps: null, evals_per_s: null, adapter: '', checked: null, status: `ERROR: ${error}` }];
  rows.push(...got);
  stepLog.push({ step: st.name, args: st.args, exit: status, signal, seconds, rows: got.length, error });
  console.log(`=== ${st.name}: ${seconds.toFixed(0)} s, ${got.length} rows${error ? `, ${error}` : status ? ` (exit ${status})` : ''}`);
}

const endLoad = loadNow();
const adapters = [...new Set(rows.map((r) => r.adapter).filter(Boolean))];
console.log(`\nbacklight bench${full ? ' --full' : ''}: ${adapters.join(', ')}; ${machine().cores} cores (${machine().cpu}); load average ${startLoad} at the start, ${endLoad} at the end; ${((performance.now() - t0) / 1000).toFixed(0)} s`);
console.log('ours ms = backlight median ms per call; ratio = peer ms / ours ms (above 1: backlight faster); GFLOP/s, GB/s, evals/s are backlight\'s;');
console.log(`checked = backlight's max error vs the float64 CPU backend (relative to the largest |value|, tolerance ${TOL}; where: bench.json checked_at)`);
console.log(rowsTable(rows));
const bad = rows.filter((r) => r.status !== 'ok');
if (bad.length) console.log(`\nnot ok:\n  ${bad.map((r) => `${r.group} ${r.name} ${r.shape}${r.peer ? ` vs ${r.peer}` : ''}: ${r.status}`).join('\n  ')}`);
// One line per note and the rows it applies to (a measurement's note repeats on each of its peers).
const noteRows = new Map<string, string[]>();
for (const r of rows.filter((q) => q.note)) {
  const at = `${r.name} ${r.shape}`;
  const list = noteRows.get(r.note!) ?? [];
  if (!list.includes(at)) list.push(at);
  noteRows.set(r.note!, list);
}
const notes = [...noteRows].map(([n, at]) => `${n}: ${at.length > 3 ? `${at.length} rows (${at.slice(0, 2).join('; ')}; ...)` : at.join('; ')}`);
if (notes.length) console.log(`\nnotes:\n  ${notes.join('\n  ')}`);
const path = writeResults('bench', {
  date: new Date().toISOString(), full, machine: { ...machine(), load: { start: startLoad, end: endLoad } },
  seconds: (performance.now() - t0) / 1000, tolerance: TOL, steps: stepLog, rows,
}, outDir);
console.log(`\nwrote ${path}`);
process.exit(stepLog.some((s) => s.error) ? 1 : 0);

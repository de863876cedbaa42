// Runs every benchmark in bench/ (each *.ts next to this file but this one), one process each,
// passing the command line through:  npm run bench -- [--full] [--reps N] ...
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const only = process.env.BENCH_ONLY?.split(',').filter(Boolean);
const benches = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.startsWith('_'))
  .filter((f) => !only || only.includes(f.replace(/\.ts$/, '')))
  .sort();
const failed: string[] = [];
for (const f of benches) {
  console.log(`\n=== bench/${f} ===`);
  // tsx as a loader in a fresh Node process: every benchmark gets its own GPU device.
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(here, f), ...process.argv.slice(2)], { stdio: 'inherit' });
  if (r.status !== 0) failed.push(`${f} (${r.signal ? `signal ${r.signal}` : `exit ${r.status}`})`);
}
if (failed.length) {
  console.error(`\nfailed: ${failed.join(', ')}`);
  process.exit(1);
}
console.log(`\nran ${benches.length} benchmark${benches.length === 1 ? '' : 's'}: ${benches.join(', ')}`);

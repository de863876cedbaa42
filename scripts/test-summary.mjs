// Prints the closing line of a test run from vitest's JSON report: "tests: N passed, N failed".
import { readFileSync } from 'node:fs';
const file = process.argv[2] ?? 'test-results/vitest.json';
let r;
try {
  r = JSON.parse(readFileSync(file, 'utf8'));
} catch (e) {
  console.error(`test-summary: cannot read ${file}: ${e.message}`);
  process.exit(1);
}
const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(r.numFailedTests === 0 && r.numPassedTests > 0 ? 0 : 1);

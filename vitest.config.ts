import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // WebGPU runs on SwiftShader (a CPU) in CI: pipelines compile slowly, be generous.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Test workers run with --expose-gc so that tests/engine/webgpu-runtime.test.ts can force
    // garbage collection while Dawn works (DESIGN.md, "Adapters": the create() root must stay alive).
    pool: 'forks',
    execArgv: ['--expose-gc'],
    // The console report, plus a JSON one that .ci/run turns into a one-line summary.
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
  },
});

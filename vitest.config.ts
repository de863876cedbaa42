import { defineConfig } from 'vitest/config';

// The primitive, fusion and epilogue suites run a second time on SwiftShader (the browser's adapter, and the
// fallback in Node), while everything runs on the default adapter (lavapipe where Mesa >= 24
// is installed: scripts/setup.sh). It is cheap (seconds) and catches kernels that only one
// driver gets wrong (SwiftShader ignores NaN in float compares; lavapipe does not).
const onBothAdapters = ['tests/engine/webgpu-ops.test.ts', 'tests/engine/fusion.test.ts', 'tests/engine/epilogue.test.ts'];

export default defineConfig({
  test: {
    // WebGPU runs on a CPU (lavapipe or SwiftShader) in CI: pipelines compile slowly, be generous.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Test workers run with --expose-gc so that tests/engine/webgpu-runtime.test.ts can force
    // garbage collection while Dawn works (DESIGN.md, "Adapters": the create() root must stay alive).
    pool: 'forks',
    execArgv: ['--expose-gc'],
    // The console report, plus a JSON one that .ci/run turns into a one-line summary.
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
    projects: [
      { extends: true, test: { name: 'default', include: ['tests/**/*.test.ts'] } },
      {
        extends: true,
        test: { name: 'swiftshader', include: onBothAdapters, env: { BACKLIGHT_ADAPTER: 'swiftshader' } },
      },
    ],
  },
});

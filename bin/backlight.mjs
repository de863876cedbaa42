#!/usr/bin/env node
// The `backlight` command. In the installed package it runs the compiled CLI (dist/cli/main.js).
// In a clone of the repository, where cli/main.ts is, it registers tsx so that Node runs the
// TypeScript sources directly with no build step (a dist/ left by `npm pack` may be stale, so the
// sources win there). Exits with the CLI's code once it is done (a WebGPU device would otherwise
// keep the process alive).
import { existsSync } from 'node:fs';

const source = new URL('../cli/main.ts', import.meta.url);
let main;
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import(source.href));
} else {
  ({ main } = await import('../dist/cli/main.js'));
}
const code = await main(process.argv.slice(2));
process.exit(code);

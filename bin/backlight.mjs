#!/usr/bin/env node
// The `backlight` command: registers tsx (so Node runs the TypeScript sources directly) and runs
// cli/main.ts. Exits with its code once it is done (a WebGPU device would otherwise keep the
// process alive).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/main.ts');
const code = await main(process.argv.slice(2));
process.exit(code);

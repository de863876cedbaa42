// `backlight demo`: the main demo job (examples/demo.ts): bundled models explained by every method
// family, a report written. When the demo module exports `runDemo(opts)` it is imported and
// called in this process; otherwise the script is run as `npm run demo` runs it, in a child
// process (importing a script that works at its top level and exits would end this process).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { UsageError } from '../args.ts';
import type { Command } from '../registry.ts';

/** The demo script; BACKLIGHT_DEMO overrides it (tests point it at a small stand-in). */
export const demoPath = () => process.env.BACKLIGHT_DEMO ?? fileURLToPath(new URL('../../examples/demo.ts', import.meta.url));

/** Whether the file exports runDemo, read from its text so that nothing of it runs to find out. */
export const exportsRunDemo = (src: string) => /export\s+(async\s+)?function\s+runDemo\b|export\s+const\s+runDemo\b|export\s*\{[^}]*\brunDemo\b[^}]*\}/.test(src);

export const demoCommand: Command = {
  name: 'demo',
  summary: 'run the demo: explain the bundled models with every method family and write the report',
  description: 'The same job as `npm run demo` (examples/demo.ts). --out sets where its report goes, where the demo takes it.',
  options: {
    out: { type: 'string', valueName: 'DIR', description: 'output folder for the report (default: the demo\'s own)' },
    quick: { type: 'boolean', description: 'a smaller run (fewer images and samples), for a first look' },
  },
  examples: ['backlight demo', 'backlight demo --quick --out /tmp/demo', 'backlight demo --json'],
  async run(args, ctx) {
    const o = args.options;
    const file = demoPath();
    if (!existsSync(file)) throw new Error(`demo: ${file} is missing`);
    const out = o.out as string | undefined;
    if (out !== undefined && existsSync(out) && !statIsDir(out)) throw new UsageError(`option '--out' must name a folder; ${out} is a file`);
    const src = readFileSync(file, 'utf8');
    if (exportsRunDemo(src)) {
      const mod = (await import(pathToFileURL(file).href)) as { runDemo: (opts: Record<string, unknown>) => Promise<unknown> };
      const opts: Record<string, unknown> = {};
      if (out !== undefined) opts.out = out;
      if (args.options.backend !== undefined) opts.backend = args.options.backend;
      if (o.quick) opts.quick = true;
      // The demo's lines (ending with the report's file:// link) go to stdout, or stderr under --json.
      opts.print = (line: string) => (ctx.json ? ctx.stderr : ctx.stdout)(`${line}\n`);
      const result = await mod.runDemo(opts);
      if (ctx.json) ctx.stdout(JSON.stringify({ command: 'demo', file, result: result ?? null }, null, 2) + '\n');
      return;
    }
    if (out !== undefined) ctx.stderr(`note: ${file} does not export runDemo; it writes where it writes (--out is not passed on)\n`);
    // As `npm run demo`: node with tsx's loader. With --json the demo's own output goes to stderr,
    // so that stdout holds only the JSON.
    const r = spawnSync(process.execPath, ['--import', 'tsx', file, ...(o.quick ? ['--quick'] : [])], { stdio: ['inherit', ctx.json ? 'pipe' : 'inherit', 'inherit'], encoding: 'utf8', env: process.env });
    if (ctx.json && r.stdout) ctx.stderr(r.stdout);
    if (r.error) throw new Error(`demo: cannot run ${file} (${r.error.message})`);
    const code = r.status ?? 1;
    if (ctx.json) ctx.stdout(JSON.stringify({ command: 'demo', file, exitCode: code }, null, 2) + '\n');
    return code;
  },
};

function statIsDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

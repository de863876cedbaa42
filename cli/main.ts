// backlight's command line: parse argv against the command table (cli/registry.ts, filled by
// cli/commands/index.ts) and dispatch. Usage errors exit with 2, other failures with 1. The
// backend is created lazily, when a command first asks for it, so every check a command makes
// before `ctx.backend()` runs without a device.
import * as bl from '../engine/index.ts';
import type { Backend } from '../engine/index.ts';
import { parseArgs, UsageError } from './args.ts';
import { COMMON, commandHelp, commands, generalHelp, version, type CliContext, type CliIo } from './registry.ts';
import './commands/index.ts';

export { commands, registerCommand, type CliContext, type CliIo, type Command } from './registry.ts';

function describeAdapter(b: Backend): string {
  const i = b.info;
  if (i.backend === 'cpu') return 'cpu (float64 reference backend)';
  return `webgpu: ${[i.vendor, i.architecture, i.device].filter(Boolean).join(' ')}${i.description ? ` (${i.description})` : ''}${i.software ? ', software' : ''}`;
}

const defaultIo: CliIo = {
  stdout: (s) => void process.stdout.write(s),
  stderr: (s) => void process.stderr.write(s),
};

/** Run the command line `argv` (without node and the script); returns the exit code. */
export async function main(argv: readonly string[], io: CliIo = defaultIo): Promise<number> {
  let backend: Backend | null = null;
  try {
    const [name, ...rest] = argv;
    if (name === undefined) {
      io.stderr(generalHelp());
      return 2;
    }
    if (name === '--help' || name === '-h' || name === 'help') {
      const c = rest[0] !== undefined ? commands.get(rest[0]) : undefined;
      if (rest[0] !== undefined && !c) throw new UsageError(`unknown command '${rest[0]}'; commands: ${[...commands.keys()].join(', ')}`);
      io.stdout(c ? commandHelp(c) : generalHelp());
      return 0;
    }
    if (name === '--version') {
      io.stdout(`backlight ${version()}\n`);
      return 0;
    }
    const cmd = commands.get(name);
    if (!cmd) {
      const hint = name.startsWith('-') ? ' (options go after the command: backlight COMMAND [options])' : '';
      throw new UsageError(`unknown command '${name}'${hint}; commands: ${[...commands.keys()].join(', ')}`);
    }
    const args = parseArgs(name, rest, { ...cmd.options, ...COMMON }, cmd.positionals);
    if (args.options.help) {
      io.stdout(commandHelp(cmd));
      return 0;
    }
    const init = io.init ?? bl.init;
    const ctx: CliContext = {
      stdout: io.stdout,
      stderr: io.stderr,
      json: !!args.options.json,
      async backend() {
        if (!backend) {
          const kind = (args.options.backend as 'auto' | 'webgpu' | 'cpu' | undefined) ?? cmd.defaultBackend ?? 'auto';
          backend = await init({ backend: kind });
          io.stderr(`backlight: ${describeAdapter(backend)}\n`);
        }
        return backend;
      },
    };
    return (await cmd.run(args, ctx)) ?? 0;
  } catch (e) {
    const err = e as Error;
    if (err instanceof UsageError) {
      const cmd = err.command ?? (commands.has(argv[0]) ? argv[0] : undefined);
      io.stderr(`backlight${cmd ? ` ${cmd}` : ''}: ${err.message}\n(run 'backlight ${cmd ? `${cmd} ` : ''}--help' for usage)\n`);
      return 2;
    }
    io.stderr(`backlight${commands.has(argv[0]) ? ` ${argv[0]}` : ''}: ${process.env.BACKLIGHT_DEBUG ? err.stack ?? err.message : err.message ?? String(e)}\n`);
    return 1;
  } finally {
    (backend as Backend | null)?.destroy();
  }
}

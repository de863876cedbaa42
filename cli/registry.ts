// The command table of backlight's command line: what a command is, the options every command
// takes, and the help text built from the table. Commands (cli/commands/*.ts) import this module
// and cli/commands/index.ts registers them; cli/main.ts only parses argv and dispatches, so no
// command module imports main.ts (the cycle issue 14 names).
import { createRequire } from 'node:module';
import type { Backend } from '../engine/index.ts';
import type { InitOptions } from '../engine/init.ts';
import { formatOptions, type OptionSpec, type ParsedArgs, type PositionalSpec } from './args.ts';

export interface CliIo {
  stdout(s: string): void;
  stderr(s: string): void;
  /**
   * Creates the backend (default: the engine's `init`). Tests pass a recorder here to prove that a
   * usage error is reported before any device is opened.
   */
  init?: (opts: InitOptions) => Promise<Backend>;
}

export interface CliContext extends CliIo {
  /** The backend (created once, from --backend; default 'auto'), its adapter printed on stderr. */
  backend(): Promise<Backend>;
  /** Whether --json was given: the command prints one JSON document on stdout and nothing else there. */
  json: boolean;
}

export interface Command {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Longer text for `backlight CMD --help`. */
  description?: string;
  options: Record<string, OptionSpec>;
  positionals?: PositionalSpec[];
  /** Usage examples for `backlight CMD --help`. */
  examples?: string[];
  /** The backend a command uses when --backend is not given (default 'auto'). */
  defaultBackend?: 'auto' | 'webgpu' | 'cpu';
  /** Returns the exit code (default 0). */
  run(args: ParsedArgs, ctx: CliContext): Promise<number | void>;
}

/** Options every command takes (so that --json and --help exist on each, by construction). */
export const COMMON: Record<string, OptionSpec> = {
  backend: { type: 'string', choices: ['auto', 'webgpu', 'cpu'], description: "where to compute: 'auto' (WebGPU, else the CPU), 'webgpu', or 'cpu' (float64 reference)" },
  json: { type: 'boolean', description: 'print the result as one JSON document on stdout (messages stay on stderr)' },
  help: { type: 'boolean', alias: 'h', description: 'show this help' },
};

export const commands = new Map<string, Command>();

export function registerCommand(c: Command): void {
  if (commands.has(c.name)) throw new Error(`registerCommand: '${c.name}' is already registered`);
  for (const k of Object.keys(c.options)) if (k in COMMON) throw new Error(`registerCommand: '${c.name}' redefines the common option '--${k}'`);
  commands.set(c.name, c);
}

export function version(): string {
  try {
    return (createRequire(import.meta.url)('../package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export function generalHelp(): string {
  const w = Math.max(...[...commands.keys()].map((k) => k.length));
  return [
    'backlight: a WebGPU tensor and autodiff engine, with explainability methods',
    '',
    'usage: backlight COMMAND [options]        (backlight COMMAND --help for its options)',
    '',
    'commands:',
    ...[...commands.values()].map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`),
    '',
    'common options:',
    formatOptions({ ...COMMON, version: { type: 'boolean', description: 'print the version' } }),
    '',
    'examples:',
    '  backlight models',
    '  backlight predict --model digits-cnn --input digit.png',
    '  backlight predict --model model.onnx --input batch.npy --out logits.npy',
    '  backlight layers --model model.onnx --input-shape 3,224,224',
    '  backlight explain --model digits-cnn --input digit.png --method saliency,grad-cam --out report.html',
    '  backlight evaluate --model spurious-cnn --split heldout',
    '  backlight train digits-cnn',
    '  backlight demo',
    '',
  ].join('\n');
}

export function commandHelp(c: Command): string {
  const pos = (c.positionals ?? []).map((p) => (p.required ? p.name : `[${p.name}]`)).join(' ');
  const req = Object.entries(c.options).filter(([, s]) => s.required).map(([n, s]) => `--${n} ${s.valueName ?? 'VALUE'}`).join(' ');
  return [
    `usage: backlight ${c.name}${pos ? ` ${pos}` : ''}${req ? ` ${req}` : ''} [options]`,
    '',
    c.summary,
    ...(c.description ? ['', c.description] : []),
    '',
    'options:',
    formatOptions({ ...c.options, ...COMMON }, c.positionals),
    ...(c.examples?.length ? ['', 'examples:', ...c.examples.map((e) => `  ${e}`)] : []),
    '',
  ].join('\n');
}

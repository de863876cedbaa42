// A small command-line parser: `--name value`, `--name=value`, boolean `--flag`, positionals.
// Errors are UsageErrors that name the command and the option (and suggest a near miss).

/** A mistake in the command line (exit code 2); `command` names the command it was given to. */
export class UsageError extends Error {
  constructor(
    message: string,
    public command?: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface OptionSpec {
  type: 'string' | 'boolean' | 'int' | 'number';
  description: string;
  /** Shown in help: `--model M`. */
  valueName?: string;
  required?: boolean;
  choices?: readonly string[];
  /** Single-letter alias (`-h`). */
  alias?: string;
}

export interface PositionalSpec {
  name: string;
  description: string;
  required?: boolean;
}

export type OptionValue = string | number | boolean;

export interface ParsedArgs {
  options: Record<string, OptionValue | undefined>;
  positionals: string[];
}

function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  }
  return d[a.length][b.length];
}

/** The closest known name, if it is close enough to be a likely typo. */
export function suggest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined, bestD = Infinity;
  for (const k of known) {
    const dd = distance(name, k);
    if (dd < bestD) [best, bestD] = [k, dd];
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

/**
 * Parse `argv` against the options and positionals of command `cmd` (the name used in errors).
 * Everything after a bare `--` is positional.
 */
export function parseArgs(cmd: string, argv: readonly string[], options: Record<string, OptionSpec>, positionals: readonly PositionalSpec[] = []): ParsedArgs {
  const out: ParsedArgs = { options: {}, positionals: [] };
  const fail = (msg: string): never => {
    throw new UsageError(msg, cmd);
  };
  const names = Object.keys(options);
  const aliases = new Map(Object.entries(options).filter(([, s]) => s.alias).map(([n, s]) => [s.alias!, n]));
  let rest = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (rest || !a.startsWith('-') || a === '-' || /^-\d/.test(a)) {
      out.positionals.push(a);
      continue;
    }
    if (a === '--') {
      rest = true;
      continue;
    }
    let name: string, inline: string | undefined;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      [name, inline] = eq >= 0 ? [a.slice(2, eq), a.slice(eq + 1)] : [a.slice(2), undefined];
    } else {
      const n = aliases.get(a.slice(1));
      if (!n) fail(`unknown option '${a}'${aliases.size ? ` (short options: ${[...aliases.keys()].map((k) => `-${k}`).join(', ')})` : ''}`);
      [name, inline] = [n!, undefined];
    }
    const spec = options[name];
    if (!spec) {
      const s = suggest(name, names);
      fail(`unknown option '--${name}'${s ? `; did you mean '--${s}'?` : ''} (options: ${names.map((n) => `--${n}`).join(', ')})`);
    }
    if (out.options[name] !== undefined) fail(`option '--${name}' is given more than once`);
    if (spec.type === 'boolean') {
      if (inline !== undefined) {
        if (!['true', 'false', '1', '0'].includes(inline)) fail(`option '--${name}' is a flag: use '--${name}' or '--${name}=false', not '--${name}=${inline}'`);
        out.options[name] = inline === 'true' || inline === '1';
      } else {
        out.options[name] = true;
      }
      continue;
    }
    let v = inline;
    if (v === undefined) {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('--') && next.length > 2)) fail(`option '--${name}' needs a value (${spec.valueName ?? spec.type})`);
      v = next;
      i++;
    }
    if (v === '') fail(`option '--${name}' needs a value (${spec.valueName ?? spec.type}), got an empty string`);
    if (spec.type === 'int' || spec.type === 'number') {
      const x = Number(v);
      if (!Number.isFinite(x) || (spec.type === 'int' && !Number.isInteger(x))) fail(`option '--${name}' expects ${spec.type === 'int' ? 'an integer' : 'a number'}, got '${v}'`);
      out.options[name] = x;
    } else {
      if (spec.choices && !spec.choices.includes(v!)) fail(`option '--${name}' must be one of ${spec.choices.join(', ')}; got '${v}'`);
      out.options[name] = v!;
    }
  }
  if (out.options.help) return out;
  for (const [n, s] of Object.entries(options)) if (s.required && out.options[n] === undefined) fail(`missing required option '--${n}' (${s.description})`);
  const required = positionals.filter((p) => p.required).length;
  if (out.positionals.length < required) fail(`missing ${positionals[out.positionals.length].name} (${positionals[out.positionals.length].description})`);
  if (out.positionals.length > positionals.length) fail(`unexpected argument '${out.positionals[positionals.length]}'`);
  return out;
}

/** Help text for a command's options and positionals. */
export function formatOptions(options: Record<string, OptionSpec>, positionals: readonly PositionalSpec[] = []): string {
  const rows: [string, string][] = [
    ...positionals.map((p): [string, string] => [p.required ? p.name : `[${p.name}]`, p.description]),
    ...Object.entries(options).map(([n, s]): [string, string] => {
      const flag = `${s.alias ? `-${s.alias}, ` : ''}--${n}${s.type === 'boolean' ? '' : ` ${s.valueName ?? (s.choices ? s.choices.join('|') : s.type.toUpperCase())}`}`;
      return [flag, `${s.description}${s.required ? ' (required)' : ''}`];
    }),
  ];
  const w = Math.max(...rows.map(([a]) => a.length), 0);
  return rows.map(([a, b]) => `  ${a.padEnd(w)}  ${b}`).join('\n');
}

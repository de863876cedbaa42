// A small command-line parser for benchmarks: --name value, --name=value and boolean --flag.

export class Args {
  private readonly values = new Map<string, string | true>();
  readonly known: string[] = [];

  constructor(argv: readonly string[] = process.argv.slice(2)) {
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i];
      if (!a.startsWith('--')) throw new Error(`unexpected argument '${a}' (options are --name value or --flag)`);
      const eq = a.indexOf('=');
      if (eq > 0) {
        this.values.set(a.slice(2, eq), a.slice(eq + 1));
      } else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) {
        this.values.set(a.slice(2), argv[++i]);
      } else {
        this.values.set(a.slice(2), true);
      }
    }
  }

  /** Fail on options nobody asked about (a typo should not silently run the defaults). */
  checkKnown(names: readonly string[]): void {
    const unknown = [...this.values.keys()].filter((k) => !names.includes(k));
    if (unknown.length) throw new Error(`unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `--${u}`).join(', ')}; known: ${names.map((n) => `--${n}`).join(' ')}`);
  }

  has(name: string): boolean {
    return this.values.has(name);
  }

  flag(name: string): boolean {
    const v = this.values.get(name);
    if (v === undefined) return false;
    if (v === true || v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0') return false;
    throw new Error(`--${name} is a flag (got '${v}')`);
  }

  string(name: string): string | undefined {
    const v = this.values.get(name);
    if (v === true) throw new Error(`--${name} needs a value`);
    return v;
  }

  int(name: string): number | undefined {
    const v = this.string(name);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got '${v}'`);
    return n;
  }

  ints(name: string): number[] | undefined {
    const v = this.string(name);
    if (v === undefined) return undefined;
    const xs = v.split(',').map((s) => Number(s.trim()));
    if (xs.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--${name} must be a comma-separated list of positive integers, got '${v}'`);
    return xs;
  }

  list(name: string): string[] | undefined {
    const v = this.string(name);
    return v === undefined ? undefined : v.split(',').map((s) => s.trim()).filter(Boolean);
  }
}

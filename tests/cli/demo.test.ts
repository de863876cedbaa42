// `backlight demo`: imports the demo module and calls runDemo(opts) when it exports one; otherwise
// runs the script in a child process and passes its exit code on. BACKLIGHT_DEMO points the
// command at small stand-ins (tests/cli/fixtures/) so that no model work runs here.
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { main } from '../../cli/main.ts';
import { exportsRunDemo } from '../../cli/commands/demo.ts';

const fixture = (f: string) => fileURLToPath(new URL(`./fixtures/${f}`, import.meta.url));

async function run(...argv: string[]) {
  let stdout = '', stderr = '';
  const code = await main(argv, { stdout: (s) => void (stdout += s), stderr: (s) => void (stderr += s) });
  return { code, stdout, stderr };
}

afterEach(() => {
  delete process.env.BACKLIGHT_DEMO;
});

describe('backlight demo', () => {
  it('finds runDemo in the source without running it', () => {
    expect(exportsRunDemo('export async function runDemo(opts) {}')).toBe(true);
    expect(exportsRunDemo('export const runDemo = async () => {}')).toBe(true);
    expect(exportsRunDemo('function runDemo() {}\nexport { runDemo };')).toBe(true);
    expect(exportsRunDemo('async function runDemo() {}\nawait runDemo();')).toBe(false);
  });

  it('calls runDemo with the options given and prints its result with --json', async () => {
    process.env.BACKLIGHT_DEMO = fixture('demo-run.ts');
    const r = await run('demo', '--out', '/tmp', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('demo stand-in ran\n'); // the demo's own lines, off stdout under --json
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ command: 'demo', result: { report: 'file:///tmp/report.html', opts: { out: '/tmp' } } });
    const mod = (await import(fixture('demo-run.ts'))) as { calls: Record<string, unknown>[] };
    expect(mod.calls).toHaveLength(1);
    expect(mod.calls[0]).toMatchObject({ out: '/tmp' });
    expect(typeof mod.calls[0].print).toBe('function'); // the demo's lines go through the CLI's streams
    expect(mod.calls[0].quick).toBeUndefined();
  });

  it('runs a script without runDemo as a child process and returns its exit code', async () => {
    process.env.BACKLIGHT_DEMO = fixture('demo-script.ts');
    const r = await run('demo', '--json');
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('demo script ran'); // the script's stdout, moved off stdout by --json
    expect(JSON.parse(r.stdout)).toMatchObject({ command: 'demo', exitCode: 3 });
  });
});

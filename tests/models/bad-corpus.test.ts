// The corpus of malformed files in tests/fixtures/bad/ (made by tests/fixtures/make_bad_corpus.ts):
// every file goes to its reader and must give an Error that names the file and says what is wrong
// (manifest.json's pattern), quickly, without leaving tensors behind. ONNX files that parse are
// also run once: a defect found only when the graph runs must still be an error naming the file
// or the node, never a wrong answer.
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { init, memory, withBackend, zeros } from '../../engine/index.ts';
import { parseNpy } from '../../models/io/npy.ts';
import { parseSafetensors } from '../../models/io/safetensors.ts';
import { loadOnnx } from '../../models/io/onnx.ts';
import { decodeImage } from '../../cli/input.ts';
import type { BadFile } from '../fixtures/make_bad_corpus.ts';

const DIR = fileURLToPath(new URL('../fixtures/bad/', import.meta.url));
const manifest = JSON.parse(readFileSync(DIR + 'manifest.json', 'utf8')) as BadFile[];
const cpu = await init({ backend: 'cpu', setDefault: false });
afterAll(() => cpu.destroy());

function read(entry: BadFile, bytes: Uint8Array): void {
  const source = entry.file;
  switch (entry.reader) {
    case 'npy':
      parseNpy(bytes, source);
      return;
    case 'safetensors':
      parseSafetensors(bytes, source);
      return;
    case 'image':
      decodeImage(bytes, source);
      return;
    case 'onnx': {
      const m = withBackend(cpu, () => loadOnnx(bytes, { source }));
      const x = zeros([1, 2, 4, 4], cpu);
      try {
        withBackend(cpu, () => m.call(x).dispose());
      } finally {
        x.dispose();
        m.dispose();
      }
    }
  }
}

describe('tests/fixtures/bad: every malformed file is refused with a clear error', () => {
  it('the manifest lists exactly the files on disk, one reader each', () => {
    const onDisk = readdirSync(DIR).filter((f) => f !== 'manifest.json').sort();
    expect(manifest.map((e) => e.file).sort()).toEqual(onDisk);
    expect(new Set(manifest.map((e) => e.reader))).toEqual(new Set(['npy', 'safetensors', 'onnx', 'image']));
    expect(manifest.length).toBeGreaterThanOrEqual(40);
  });

  for (const entry of manifest) {
    it(`${entry.file}: ${entry.defect}`, () => {
      const bytes = new Uint8Array(readFileSync(DIR + entry.file));
      const before = memory(cpu).liveBuffers;
      const t0 = performance.now();
      let err: unknown;
      try {
        read(entry, bytes);
      } catch (e) {
        err = e;
      }
      const ms = performance.now() - t0;
      expect(err, `${entry.file} was accepted`).toBeInstanceOf(Error);
      const msg = (err as Error).message;
      // names the file (or, for a graph that parsed and failed while running, its node)
      expect(msg.includes(entry.file) || /node '|node "/.test(msg), `the error does not name ${entry.file}: ${msg}`).toBe(true);
      // the diagnosis is matched with the file name taken out (a name like 'jpeg-truncated' must not satisfy /truncated/)
      expect(msg.split(entry.file).join('<file>'), `${entry.file}: the error does not say what is wrong`).toMatch(new RegExp(entry.error));
      expect(msg).not.toMatch(/undefined|\[object Object\]|Maximum call stack/);
      expect(ms, `${entry.file} took ${ms.toFixed(0)} ms`).toBeLessThan(2000);
      expect(memory(cpu).liveBuffers).toBe(before);
    });
  }
});

// The bundled weights as data (models/zoo/bundled/, what browsers load): the same bytes as
// models/weights/, and the loader that browsers use (no file system) gives the same model.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import { BUNDLED_SUMMARIES, BUNDLED_WEIGHTS, ZOO, bundledWeights, fetchModel, modelSummary, weightsPath } from '../../models/zoo/index.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

beforeAll(async () => {
  await bl.init({ backend: 'cpu' });
});

describe('bundled weights as data', () => {
  it('models/zoo/bundled/ is up to date with models/weights/ (else: npm run build:weights)', () => {
    const r = spawnSync(process.execPath, ['scripts/build-weights.mjs', '--check'], { cwd: root, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  });

  it('every bundled model has its bytes and summary as data, equal to the files', async () => {
    expect([...BUNDLED_WEIGHTS].sort()).toEqual(Object.keys(ZOO).filter((n) => BUNDLED_WEIGHTS.includes(n)).sort());
    for (const name of BUNDLED_WEIGHTS) {
      const bytes = await bundledWeights(name);
      expect(Buffer.from(bytes).equals(readFileSync(weightsPath(name))), name).toBe(true);
      expect(BUNDLED_SUMMARIES[name], name).toEqual(modelSummary(name));
    }
    await expect(bundledWeights('vgg')).rejects.toThrow(/no bundled weights for 'vgg' \(bundled: .*digits-cnn.*npm run build:weights/);
  });

  it('fetchModel builds the architecture its metadata names, from bytes or a Response', async () => {
    const bytes = await bundledWeights('digits-cnn');
    const a = await fetchModel(bytes);
    const b = await fetchModel(new Response(bytes.slice()));
    expect(a.spec.name).toBe('digits-cnn');
    const x = bl.randn([1, 1, 8, 8], { seed: 3 });
    expect(Array.from(await b.model.forward(x).data())).toEqual(Array.from(await a.model.forward(x).data()));
    await expect(fetchModel(new Response('nope', { status: 404, statusText: 'Not Found' }))).rejects.toThrow(/HTTP 404 Not Found/);
    a.model.dispose();
    b.model.dispose();
    x.dispose();
  });
});

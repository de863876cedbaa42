// Interpretable by design: the bundled prototype classifier (accuracy from the committed weights,
// its prediction is exactly the attention-weighted average of its prototypes' labels, the
// explanation's top prototype is the most attended one, training through fit, safetensors round
// trip, `backlight explain --method prototypes`), and the surrogate decision tree (CART by hand,
// fidelity 1 on a network it can represent, rules).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import * as ex from '../../explain/index.ts';
import { Adam, Linear, Sequential, evaluate, fit, loadWeights, parseNpy, saveWeights, serializeNpy } from '../../models/index.ts';
import { datasetSplits, subset } from '../../models/data/index.ts';
import { loadBundled, ZOO } from '../../models/zoo/index.ts';
import { expectClose } from '../helpers.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'backlight-prototypes-'));

beforeAll(async () => {
  await bl.init({ backend: 'cpu' });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('prototype classifier (prototype-digits)', () => {
  const splits = datasetSplits('digits');

  it('reaches >= 90% test accuracy with the committed weights', async () => {
    const m = await loadBundled('prototype-digits');
    expect(m).toBeInstanceOf(ex.PrototypeClassifier);
    const { accuracy } = await evaluate(m, splits.test);
    console.log(`prototype-digits test accuracy ${(accuracy * 100).toFixed(2)}% (${splits.test.n} digits)`);
    expect(accuracy).toBeGreaterThanOrEqual(0.9);
    m.dispose();
  });

  it('predicts the attention-weighted average of prototype labels; the explanation is the prototypes attended to', async () => {
    const m = (await loadBundled('prototype-digits')) as ex.PrototypeClassifier;
    const items = subset(splits.test, [0, 1, 2, 3, 4, 5, 6, 7]);
    const x = bl.tensor(items.x, [items.n, ...items.sampleShape]);
    const P = m.numPrototypes;
    const e = await ex.explainByPrototypes(m, x, { k: 3, train: subset(splits.train, Array.from({ length: 400 }, (_, i) => i)) });
    const out = Array.from(await m.call(x).data());
    // Independent recomputation on the host from the raw parameters: z by the embedding, distances,
    // softmax, times the one-hot labels.
    const z = await m.embed(x).data();
    const protos = await m.param('prototypes').data();
    const D = protos.length / P;
    const labels = await m.buffer('labels').data();
    for (let i = 0; i < items.n; i++) {
      const s = Array.from({ length: P }, (_, j) => -Array.from({ length: D }, (_, d) => (z[i * D + d] - protos[j * D + d]) ** 2).reduce((a, b) => a + b, 0));
      const mx = Math.max(...s);
      const w = s.map((v) => Math.exp(v - mx));
      const tot = w.reduce((a, b) => a + b, 0);
      const a = w.map((v) => v / tot);
      expectClose(e.attention[i], a, 1e-9, 1e-12, `attention of item ${i}`);
      const q = Array.from({ length: 10 }, (_, c) => a.reduce((acc, aj, j) => acc + aj * labels[j * 10 + c], 0));
      expectClose(e.probabilities[i], q, 1e-9, 1e-12, `q of item ${i}`);
      expectClose(out.slice(i * 10, i * 10 + 10), q.map((v) => Math.log(v + 1e-9)), 1e-9, 1e-9, `output of item ${i}`);
      const it0 = e.items[i];
      // The top prototype is the one with the largest attention weight, and the list is sorted.
      expect(it0.top[0].weight).toBe(Math.max(...e.attention[i]));
      expect(it0.top[0].prototype).toBe(e.attention[i].indexOf(Math.max(...e.attention[i])));
      expect(it0.top.map((h) => h.weight)).toEqual([...it0.top.map((h) => h.weight)].sort((p, r) => r - p));
      expect(it0.top[0].label).toBe(it0.top[0].prototype % 10);
      expect(it0.predicted).toBe(q.indexOf(Math.max(...q)));
      // Prototypes of the predicted class carry the predicted probability.
      const mass = a.reduce((acc, aj, j) => acc + (j % 10 === it0.predicted ? aj : 0), 0);
      expect(it0.probability).toBeCloseTo(mass, 12);
      expect(it0.top[0].nearestTrain).toBeGreaterThanOrEqual(0);
    }
    // Most items are explained by a prototype of the class they were predicted as.
    expect(e.items.filter((it) => it.top[0].label === it.predicted).length).toBeGreaterThanOrEqual(7);
    // Nearest training examples: brute force on the host for one prototype.
    const ex0 = e.prototypeExamples![0];
    const tr = subset(splits.train, Array.from({ length: 400 }, (_, i) => i));
    const zt = await m.embed(bl.tensor(tr.x, [tr.n, 1, 8, 8])).data();
    const d0 = Array.from({ length: tr.n }, (_, r) => Array.from({ length: D }, (_, d) => (zt[r * D + d] - protos[d]) ** 2).reduce((a, b) => a + b, 0));
    expect(ex0.index).toBe(d0.indexOf(Math.min(...d0)));
    expect(ex.prototypesHtml(e, { classes: ZOO['prototype-digits'].classes })).toMatch(/<table>.*#\d+ \[\d\]/s);
    expect(() => ex.prototypeAttention(new Sequential(['classifier', new Linear(2, 2)]), x)).toThrow(/not a prototype classifier/);
    m.dispose();
  });

  it('projection onto training examples: every prototype becomes a training digit of its class', async () => {
    const m = (await loadBundled('prototype-digits')) as ex.PrototypeClassifier;
    const train = splits.train;
    const rows = await ex.projectPrototypes(m, train);
    expect(rows).toHaveLength(30);
    rows.forEach((r, j) => expect(train.y[r]).toBe(j % 10));
    // The prototype equals that row's embedding, so the row is its nearest training example (distance 0).
    const near = await ex.nearestTrainingExamples(m, train);
    near.forEach((n, j) => {
      expect(n.similarity).toBeCloseTo(0, 9);
      expect(train.y[n.index]).toBe(j % 10);
    });
    const z = await m.embed(bl.tensor(train.x.subarray(rows[4] * 64, rows[4] * 64 + 64), [1, 1, 8, 8])).data();
    expectClose((await m.param('prototypes').data()).slice(4 * 16, 5 * 16), z, 1e-12, 1e-12, 'projected prototype 4');
    const { accuracy } = await evaluate(m, splits.test);
    console.log(`prototype-digits after projecting its prototypes onto training digits: test accuracy ${(accuracy * 100).toFixed(2)}%`);
    expect(accuracy).toBeGreaterThanOrEqual(0.85);
    m.dispose();
  });

  it('trains with fit (dot-product attention, learned labels) and round-trips through safetensors', async () => {
    const emb = new Sequential(new Linear(4, 8));
    const model = new ex.PrototypeClassifier(emb, { dim: 8, classes: 3, numPrototypes: 6, similarity: 'dot', learnLabels: true, seed: 1 });
    const s = datasetSplits('iris');
    const mu = [5.8, 3.0, 3.8, 1.2], sd = [0.8, 0.4, 1.8, 0.8];
    const std = (d: typeof s.train) => ({ ...d, x: d.x.map((v, i) => (v - mu[i % 4]) / sd[i % 4]) });
    const before = (await evaluate(model, std(s.test))).loss;
    await fit(model, std(s.train), { epochs: 30, batchSize: 16, optimizer: new Adam({ lr: 0.05 }), progress: false, seed: 0 });
    const after = await evaluate(model, std(s.test));
    expect(after.loss).toBeLessThan(before);
    expect(after.accuracy).toBeGreaterThan(0.8);
    const bytes = await saveWeights(model);
    const again = new ex.PrototypeClassifier(new Sequential(new Linear(4, 8)), { dim: 8, classes: 3, numPrototypes: 6, similarity: 'dot', learnLabels: true, seed: 9 });
    loadWeights(again, bytes);
    const x = bl.tensor(std(s.test).x, [s.test.n, 4]);
    expectClose(await again.eval().call(x).data(), await model.eval().call(x).data(), 1e-6, 1e-6, 'reloaded model');
    expect([...again.stateDict().keys()]).toEqual(['prototypes', 'label_logits', 'embedding.0.weight', 'embedding.0.bias']);
  });

  it('backlight explain --method prototypes writes the attention [N, P]', async () => {
    const items = subset(splits.test, [0, 1, 2]);
    const input = join(dir, 'd.npy'), out = join(dir, 'att.npy');
    writeFileSync(input, serializeNpy([3, 1, 8, 8], items.x));
    const r = spawnSync(process.execPath, [join(root, 'bin/backlight.mjs'), 'explain', '--backend', 'cpu', '--model', 'prototype-digits', '--input', input, '--method', 'prototypes', '--out', out], { cwd: root, encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    const a = parseNpy(new Uint8Array(readFileSync(out)));
    expect(a.shape).toEqual([3, 30]);
    const m = await loadBundled('prototype-digits');
    expectClose(a.data, await ex.prototypeAttention(m, bl.tensor(items.x, [3, 1, 8, 8])).data(), 1e-6, 1e-7, 'CLI attention');
    for (let i = 0; i < 3; i++) expect(a.data.slice(i * 30, i * 30 + 30).reduce((p, v) => p + v, 0)).toBeCloseTo(1, 5);
  }, 60_000);
});

describe('surrogate decision tree', () => {
  it('CART with Gini on a hand example: the best split, thresholds midway, rules', () => {
    // Class 1 iff x0 > 2 (x1 is noise); then within x0 <= 2, class 2 iff x1 > 5.
    const X = [0, 1, 1, 7, 2, 2, 3, 0, 4, 9, 5, 3, 1, 8, 0, 6];
    const y = [0, 2, 0, 1, 1, 1, 2, 2];
    const t = ex.fitTree(X, 2, y, { maxDepth: 2 });
    expect(t.feature).toBe(0);
    expect(t.threshold).toBe(2.5);
    expect(t.gini).toBeCloseTo(1 - (2 / 8) ** 2 - (3 / 8) ** 2 - (3 / 8) ** 2, 12);
    expect(t.left!.feature).toBe(1);
    expect(t.left!.threshold).toBe(4);
    expect(Array.from(ex.predictTree(t, X, 2))).toEqual(y);
    expect(ex.treeRules(t)).toEqual([
      'x[0] <= 2.5 and x[1] <= 4 => 0 (n=2, 100%)',
      'x[0] <= 2.5 and x[1] > 4 => 2 (n=3, 100%)',
      'x[0] > 2.5 => 1 (n=3, 100%)',
    ]);
    // Depth 0 is one leaf (the majority, ties to the lower class); minLeaf stops small splits.
    expect(ex.treeLeaves(ex.fitTree(X, 2, y, { maxDepth: 0 }))).toBe(1);
    expect(ex.fitTree(X, 2, y, { maxDepth: 3, minLeaf: 4 }).left?.left).toBeUndefined();
  });

  it('has fidelity 1 on a network it can represent, and less at depth 0', async () => {
    // logits (x0 - x1, x1 - x0, 0.5 + x2): the class is a function of axis-aligned thresholds when
    // the features take values on a grid (x0, x1 in {0, 1}, x2 in {-2, 0, 2}).
    const lin = new Linear(3, 3);
    lin.setTensor('weight', bl.tensor([4, -4, 0, -4, 4, 0, 0, 0, 1], [3, 3]));
    lin.setTensor('bias', bl.tensor([0, 0, 0.5], [3]));
    const net = new Sequential(['classifier', lin]);
    const rows: number[] = [];
    for (let r = 0; r < 240; r++) rows.push(r % 2, Math.floor(r / 2) % 2, [-2, 0, 2][Math.floor(r / 4) % 3]);
    const x = bl.tensor(rows, [240, 3]);
    const s = await ex.fitSurrogateTree(net, x, { maxDepth: 4, seed: 3 });
    expect(s.trainFidelity).toBe(1);
    expect(s.fidelity).toBe(1);
    expect(s.accuracy).toBeNull();
    expect(s.heldOutRows.length).toBe(72);
    expect(s.rules.length).toBe(s.leaves);
    const s0 = await ex.fitSurrogateTree(net, x, { maxDepth: 0, seed: 3 });
    expect(s0.fidelity).toBeLessThan(0.8);
  });

  it('on prototype-digits: reports fidelity and accuracy on held-out digits (printed)', async () => {
    const m = await loadBundled('prototype-digits');
    const s = await ex.fitSurrogateTree(m, datasetSplits('digits').train, { maxDepth: 6, seed: 0, classNames: ZOO['prototype-digits'].classes });
    console.log(`surrogate tree (depth ${s.depth}, ${s.leaves} leaves) for prototype-digits: fidelity ${s.fidelity.toFixed(3)}, tree accuracy ${s.accuracy!.toFixed(3)}, network accuracy ${s.networkAccuracy!.toFixed(3)}; first rule: ${s.rules[0]}`);
    expect(s.depth).toBeLessThanOrEqual(6);
    expect(s.fidelity).toBeGreaterThan(0.5);
    expect(s.networkAccuracy).toBeGreaterThan(0.9);
    expect(s.rules[0]).toMatch(/^x\[\d+\] <= [\d.]+ and .* => \d \(n=\d+, \d+%\)$/);
  });
});

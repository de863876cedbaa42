// `backlight influence`: which training examples drove a test prediction. Influence functions
// (Koh & Liang 2017) on the model's data set: training data = its train split, the test point =
// row I of its test split. Registered into cli/main.ts's command table.
import * as bl from '../../engine/index.ts';
import * as ex from '../../explain/index.ts';
import { datasetSplits } from '../../models/data/index.ts';
import { subset } from '../../models/data/index.ts';
import { batchOf } from '../../models/train.ts';
import { UsageError } from '../args.ts';
import { peekModel, resolveModel } from '../model.ts';
import type { Command } from '../registry.ts';

export const influenceCommand: Command = {
  name: 'influence',
  summary: 'the most helpful and most harmful training examples for a test prediction (influence functions)',
  description:
    "Influence functions (Koh & Liang 2017): I_up,loss(z, z_test) = -grad L(z_test)^T H^-1 grad L(z) for every\n" +
    "training example z of the model's data set (its train split), the test point being row I of its test split.\n" +
    'H is the Hessian of the mean training loss (+ damping), applied by double-backward Hessian-vector products;\n' +
    'H^-1 grad L(z_test) by conjugate gradient (default) or LiSSA. Helpful: negative influence (upweighting the\n' +
    'example lowers the test loss); harmful: positive. removalEffect = -influence / N: the predicted change of the\n' +
    'test loss when the example is left out of training. --params restricts to some layers (e.g. classifier).',
  options: {
    model: { type: 'string', valueName: 'M', required: true, description: 'bundled name or .safetensors file (a model that knows its data set)' },
    'test-index': { type: 'int', valueName: 'I', required: true, description: "row of the data set's test split to explain" },
    top: { type: 'int', valueName: 'K', description: 'how many helpful and harmful examples (default 5)' },
    solver: { type: 'string', valueName: 'S', choices: ['cg', 'lissa'], description: "inverse-HVP solver: cg (default) or lissa" },
    params: { type: 'string', valueName: 'P1,P2', description: 'parameters or layer paths to restrict to (default all), e.g. classifier' },
    damping: { type: 'number', valueName: 'D', description: 'added to the Hessian diagonal (default 0.01)' },
    'max-iter': { type: 'int', valueName: 'N', description: 'CG iterations at most (default 100)' },
    depth: { type: 'int', valueName: 'N', description: 'LiSSA recursion depth (default 500)' },
    'train-n': { type: 'int', valueName: 'N', description: 'use only the first N training examples (faster; default all)' },
    seed: { type: 'int', valueName: 'S', description: 'LiSSA mini-batch seed (default 0)' },
  },
  defaultBackend: 'cpu',
  async run(args, ctx) {
    const o = args.options;
    const testIndex = o['test-index'] as number;
    const top = (o.top as number | undefined) ?? 5;
    if (top < 1) throw new UsageError(`option '--top' must be at least 1, got ${top}`);
    const damping = (o.damping as number | undefined) ?? 0.01;
    if (!(damping >= 0)) throw new UsageError(`option '--damping' must be >= 0, got ${o.damping}`);
    for (const k of ['max-iter', 'depth', 'train-n'] as const) {
      if (o[k] !== undefined && (o[k] as number) < 1) throw new UsageError(`option '--${k}' must be at least 1, got ${o[k]}`);
    }
    const solver = ((o.solver as string | undefined) ?? 'cg') as 'cg' | 'lissa';
    const params = o.params === undefined ? undefined : String(o.params).split(',').map((s) => s.trim()).filter(Boolean);
    // The data set and the test row are checked on the host, before the device starts.
    const facts = peekModel(String(o.model));
    if (!facts.dataset) throw new UsageError(`option '--model' ${facts.name}: the model does not say what data it was trained on (use a bundled model or a backlight .safetensors file)`);
    const splits = datasetSplits(facts.dataset);
    const testSet = splits.test;
    if (!Number.isInteger(testIndex) || testIndex < 0 || testIndex >= testSet.n) throw new UsageError(`option '--test-index' must be a row of ${facts.dataset}'s test split, 0..${testSet.n - 1}; got ${testIndex}`);
    await ctx.backend();
    const m = await resolveModel(String(o.model));
    try {
      const train = o['train-n'] === undefined ? splits.train : subset(splits.train, Array.from({ length: Math.min(o['train-n'] as number, splits.train.n) }, (_, i) => i));
      const test = subset(testSet, [testIndex]);
      const pv = ex.parameterVector(m.model, params);
      const t0 = performance.now();
      let info: ex.SolveInfo | undefined;
      const [scores] = await ex.influence(m.model, train, test, {
        solver, damping, params,
        cg: { maxIter: (o['max-iter'] as number | undefined) ?? 100 },
        lissa: { depth: o.depth as number | undefined, seed: o.seed as number | undefined },
        onSolve: (i) => (info = i),
      });
      const seconds = (performance.now() - t0) / 1000;
      // The test prediction.
      const wasTraining = m.model.training;
      m.model.eval();
      const { x, y } = batchOf(test, [0]);
      const out = bl.tidy(() => bl.softmax(m.model.call(x), 1));
      const probs = Array.from(await out.data());
      for (const t of [x, y, out]) t.dispose();
      m.model.train(wasTraining);
      const predicted = probs.indexOf(Math.max(...probs));
      const cls = (c: number) => m.classes?.[c] ?? String(c);
      const n = train.n;
      const hh = ex.helpfulHarmful(scores, top);
      const row = (r: ex.Ranked) => ({ index: r.index, label: train.y[r.index], className: cls(train.y[r.index]), influence: r.score, removalEffect: -r.score / n });
      const result = {
        command: 'influence',
        model: m.name,
        data: facts.dataset,
        testIndex,
        testLabel: testSet.y[testIndex],
        predicted,
        probability: probs[predicted],
        testLoss: -Math.log(Math.max(probs[testSet.y[testIndex]], 1e-300)),
        method: 'influence-functions',
        solver,
        damping,
        params: pv.names,
        parameters: pv.size,
        nTrain: n,
        solve: info ? { iterations: info.iterations, residual: info.residual, converged: info.converged, ...(info.indefinite ? { indefinite: true } : {}), ...(info.scale !== undefined ? { scale: info.scale } : {}) } : null,
        helpful: hh.helpful.map(row),
        harmful: hh.harmful.map(row),
        seconds,
      };
      if (ctx.json) {
        ctx.stdout(JSON.stringify(result, null, 2) + '\n');
        return;
      }
      ctx.stdout(`${m.name} on ${m.dataset}/test row ${testIndex}: label ${cls(result.testLabel)}, predicted ${cls(predicted)} (p=${result.probability.toFixed(4)}), loss ${result.testLoss.toFixed(4)}\n`);
      ctx.stdout(`influence over ${n} training examples, ${pv.size} parameters (${pv.names.join(', ')}); ${solver}${result.solve ? ` ${result.solve.iterations} iterations, residual ${result.solve.residual.toExponential(2)}` : ''}; ${seconds.toFixed(1)} s\n`);
      for (const [title, rs] of [['most helpful', result.helpful], ['most harmful', result.harmful]] as const) {
        ctx.stdout(`${title}:\n`);
        for (const r of rs) ctx.stdout(`  train ${String(r.index).padStart(5)}  label ${r.className.padEnd(10)}  influence ${r.influence.toExponential(3).padStart(11)}  removal effect on test loss ${r.removalEffect.toExponential(3)}\n`);
      }
    } finally {
      m.model.dispose();
    }
  },
};

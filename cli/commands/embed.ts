// `backlight embed`: PCA, classical MDS or t-SNE of a layer's activations (or the inputs) over a
// data set; writes float32 [N, 2] coordinates as .npy with the labels beside them, or an HTML
// scatter plot coloured by label.
import { writeFileSync } from 'node:fs';
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { fmtShape } from '../../engine/shape.ts';
import * as ex from '../../explain/index.ts';
import { DATASETS, datasetSplits } from '../../models/data/index.ts';
import { parseNpy, serializeNpy } from '../../models/io/npy.ts';
import { UsageError, suggest } from '../args.ts';
import { npyBatch, readInputFile } from '../input.ts';
import { peekModel, resolveModel, type ResolvedModel } from '../model.ts';
import { checkOutPath, parseInputShape } from '../options.ts';
import type { Command } from '../registry.ts';

/** Above this many items `embed` runs t-SNE by Barnes-Hut unless --tsne-method says otherwise. */
export const EXACT_LIMIT = 3000;

export const EMBED_METHODS = ['pca', 'mds', 'tsne'] as const;
type Method = (typeof EMBED_METHODS)[number];

/** E.npy -> E.labels.npy (beside it). */
export const labelsPathFor = (out: string) => out.replace(/\.npy$/i, '') + '.labels.npy';

function write(path: string, bytes: Uint8Array | string): void {
  try {
    writeFileSync(path, bytes);
  } catch (e) {
    throw new Error(`--out ${path}: cannot write the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

export const embedCommand: Command = {
  name: 'embed',
  summary: "embed a data set's items in 2-D (PCA, classical MDS, t-SNE) at a layer of a model; .npy or an HTML scatter plot",
  description:
    `Data: a named data set (${Object.keys(DATASETS).join(', ')}; all items of its --split, default test, in order) or X.npy\n` +
    '(float32 inputs [N, ...] for the model; labels from --labels L.npy, else the model\'s predicted classes).\n' +
    "The layer defaults to the one before the classifier head ('pool' for the bundled image models); --layer input\n" +
    'embeds the inputs themselves (then --model is optional). Output: E.npy gets float32 [N, 2] coordinates, rows in the\n' +
    "data's order, and E.labels.npy the labels (float32 [N]); E.html a self-contained SVG scatter plot coloured by label.\n" +
    `t-SNE is exact (O(N^2) per iteration, on the device) up to ${EXACT_LIMIT} items, Barnes-Hut on the host above (--tsne-method).\n` +
    'PCA and MDS run in float64 on the host.',
  options: {
    model: { type: 'string', valueName: 'M', description: 'bundled name, .safetensors or .onnx file (needed unless --layer input)' },
    layer: { type: 'string', valueName: 'L', description: "layer whose activations are embedded (default: the one before the head; 'input': the inputs)" },
    data: { type: 'string', valueName: 'NAME|X.npy', description: "a named data set or a .npy of inputs (default: the model's data set)" },
    split: { type: 'string', valueName: 'SPLIT', description: 'which split of a named data set (default test)' },
    labels: { type: 'string', valueName: 'L.npy', description: 'labels [N] for X.npy data (default: the predicted classes)' },
    n: { type: 'int', valueName: 'N', description: 'embed only the first N items' },
    method: { type: 'string', valueName: 'pca|mds|tsne', required: true, description: 'the embedding' },
    seed: { type: 'int', valueName: 'S', description: 't-SNE: seed of the initial layout (default 0)' },
    perplexity: { type: 'number', valueName: 'P', description: 't-SNE: perplexity (default 30, below N - 1)' },
    iterations: { type: 'int', valueName: 'N', description: 't-SNE: gradient-descent iterations (default 1000)' },
    'tsne-method': { type: 'string', valueName: 'exact|barnes-hut', choices: ['exact', 'barnes-hut'], description: `t-SNE: exact O(N^2) on the device, or Barnes-Hut on the host (default: exact up to ${EXACT_LIMIT} items)` },
    theta: { type: 'number', valueName: 'T', description: 't-SNE Barnes-Hut accuracy (default 0.5; 0 is exact)' },
    'learning-rate': { type: 'number', valueName: 'LR', description: 't-SNE: step size (default max(N / 48, 50))' },
    'batch-size': { type: 'int', valueName: 'N', description: 'items per forward pass (default 256)' },
    out: { type: 'string', valueName: 'E.npy|E.html', required: true, description: 'where to write the embedding' },
    'input-shape': { type: 'string', valueName: 'C,H,W', description: "one input's shape for X.npy data, where the model does not say it (ONNX with open sizes)" },
  },
  async run(args, ctx) {
    const o = args.options;
    // Every option is checked before any work starts.
    const method = String(o.method) as Method;
    if (!EMBED_METHODS.includes(method)) {
      const hint = suggest(method, EMBED_METHODS);
      throw new UsageError(`option '--method' must be one of ${EMBED_METHODS.join(', ')}; got '${method}'${hint ? ` (did you mean '${hint}'?)` : ''}`);
    }
    const out = String(o.out);
    const kind = /\.npy$/i.test(out) ? 'npy' : /\.html?$/i.test(out) ? 'html' : null;
    if (!kind) throw new UsageError(`option '--out' must name a .npy or .html file, got '${out}'`);
    const tsneOnly = ['seed', 'perplexity', 'iterations', 'learning-rate', 'tsne-method', 'theta'].filter((k) => o[k] !== undefined);
    if (method !== 'tsne' && tsneOnly.length) throw new UsageError(`option${tsneOnly.length > 1 ? 's' : ''} ${tsneOnly.map((k) => `'--${k}'`).join(', ')} belong${tsneOnly.length > 1 ? '' : 's'} to --method tsne`);
    if (o.seed !== undefined && (o.seed as number) < 0) throw new UsageError(`option '--seed' must be non-negative, got ${o.seed}`);
    if (o.perplexity !== undefined && !((o.perplexity as number) >= 1)) throw new UsageError(`option '--perplexity' must be at least 1, got ${o.perplexity}`);
    if (o.iterations !== undefined && (o.iterations as number) < 1) throw new UsageError(`option '--iterations' must be at least 1, got ${o.iterations}`);
    if (o['learning-rate'] !== undefined && !((o['learning-rate'] as number) > 0)) throw new UsageError(`option '--learning-rate' must be positive, got ${o['learning-rate']}`);
    if (o.theta !== undefined && !((o.theta as number) >= 0)) throw new UsageError(`option '--theta' must be non-negative, got ${o.theta}`);
    if (o.theta !== undefined && o['tsne-method'] === 'exact') throw new UsageError("option '--theta' belongs to --tsne-method barnes-hut");
    if (o.n !== undefined && (o.n as number) < 2) throw new UsageError(`option '--n' must be at least 2, got ${o.n}`);
    if (o['batch-size'] !== undefined && (o['batch-size'] as number) < 1) throw new UsageError(`option '--batch-size' must be at least 1, got ${o['batch-size']}`);
    const layerOpt = o.layer as string | undefined;
    const modelSpec = o.model as string | undefined;
    if (modelSpec === undefined && layerOpt !== 'input') throw new UsageError("option '--model' is required (unless --layer input embeds the inputs themselves)");
    const dataOpt = o.data as string | undefined;
    const fromFile = dataOpt !== undefined && /\.npy$/i.test(dataOpt);
    if (dataOpt !== undefined && !fromFile && !DATASETS[dataOpt]) {
      const hint = suggest(dataOpt, Object.keys(DATASETS));
      throw new UsageError(`option '--data' must be one of ${Object.keys(DATASETS).join(', ')} or a .npy file; got '${dataOpt}'${hint ? ` (did you mean '${hint}'?)` : ''}`);
    }
    if (o.labels !== undefined && !fromFile) throw new UsageError("option '--labels' goes with --data X.npy (named data sets have their own labels)");
    if (o.split !== undefined && fromFile) throw new UsageError("option '--split' goes with a named data set, not a .npy file");

    checkOutPath(out);
    const forced = parseInputShape(o['input-shape']);
    if (forced && !fromFile) throw new UsageError("option '--input-shape' goes with --data X.npy (named data sets know their shapes)");
    // What the model says about itself (its data set, input shape) and a .npy's shape, on the host.
    const facts = modelSpec !== undefined ? peekModel(modelSpec) : null;
    const fileBatch = fromFile ? npyBatch(readInputFile(dataOpt!, '--data'), dataOpt!, forced ?? facts?.inputShape ?? null) : null;
    if (!fromFile) {
      const ds = dataOpt ?? facts?.dataset ?? null;
      if (!ds) throw new UsageError(`${facts ? `${facts.name} does not say what data it was trained on; ` : ''}pass --data (one of ${Object.keys(DATASETS).join(', ')}, or X.npy)`);
      const splits = datasetSplits(ds);
      const split = (o.split as string | undefined) ?? 'test';
      if (!splits[split]) throw new UsageError(`option '--split' must be one of ${Object.keys(splits).filter((k) => splits[k]).join(', ')} for data set '${ds}'; got '${split}'`);
    }
    await ctx.backend();
    const m: ResolvedModel | null = modelSpec !== undefined ? await resolveModel(modelSpec) : null;
    const owned: Tensor[] = [];
    try {
      // The items, in order, and their labels.
      let xs: Float32Array, shape: number[], labels: Float32Array | null = null, classNames: string[] | undefined, source: string;
      if (fromFile) {
        const b = fileBatch!;
        xs = b.data;
        shape = b.shape;
        source = dataOpt!;
        if (o.labels !== undefined) {
          const l = parseNpy(readInputFile(String(o.labels), '--labels'), String(o.labels));
          if (l.data.length !== shape[0]) throw new Error(`--labels ${o.labels}: ${l.data.length} labels (shape ${fmtShape(l.shape)}) for ${shape[0]} items`);
          labels = Float32Array.from(l.data);
        }
        classNames = m?.classes ?? undefined;
      } else {
        const ds = dataOpt ?? m?.dataset ?? null;
        if (!ds) throw new UsageError(`${m ? `${m.name} does not say what data it was trained on; ` : ''}pass --data (one of ${Object.keys(DATASETS).join(', ')}, or X.npy)`);
        const splits = datasetSplits(ds);
        const split = (o.split as string | undefined) ?? 'test';
        const d = splits[split];
        if (!d) throw new UsageError(`option '--split' must be one of ${Object.keys(splits).filter((k) => splits[k]).join(', ')} for data set '${ds}'; got '${split}'`);
        if (m?.inputShape && m.inputShape.join() !== d.sampleShape.join()) throw new Error(`${m.name} takes inputs ${fmtShape(m.inputShape)}, data set '${ds}' has ${fmtShape(d.sampleShape)}`);
        xs = d.x;
        shape = [d.n, ...d.sampleShape];
        labels = d.y;
        classNames = d.classNames ?? m?.classes ?? undefined;
        source = `${ds}/${split}`;
      }
      let N = shape[0];
      if (o.n !== undefined && (o.n as number) < N) {
        N = o.n as number;
        const per = xs.length / shape[0];
        xs = xs.subarray(0, N * per);
        labels = labels?.subarray(0, N) ?? null;
        shape = [N, ...shape.slice(1)];
      }
      if (N < 2) throw new Error(`${source}: ${N} item${N === 1 ? '' : 's'}; an embedding needs at least 2`);
      const x = bl.tensor(xs, shape);
      owned.push(x);
      const layer = layerOpt ?? (m ? ex.defaultEmbeddingLayer(m.model) : 'input');
      if (!labels && !m) throw new UsageError(`embed: ${source} has no labels to colour the points by: give --labels L.npy, or --model M to colour them by its predictions`);
      const t0 = performance.now();
      const acts = layer === 'input' ? bl.reshape(x, [N, -1]) : await ex.layerActivations(m!.model, x, { layer, batchSize: o['batch-size'] as number | undefined });
      owned.push(acts);
      if (!labels) {
        // Predicted classes for unlabelled inputs (one readback).
        // batched like the activations (--batch-size), one readback per batch
        const bsz = (o['batch-size'] as number | undefined) ?? 256;
        const out = new Float32Array(N);
        for (let a = 0; a < N; a += bsz) {
          const k = Math.min(bsz, N - a);
          const pred = bl.tidy(() => bl.argmax(bl.reshape(m!.model.call(bl.slice(x, [a], [k])), [k, -1]), -1));
          out.set(await pred.data(), a);
          pred.dispose();
        }
        labels = out;
      }
      ctx.stderr(`embed: ${N} items of ${source}, layer '${layer}' ${fmtShape(acts.shape)}, ${method}\n`);
      let coords: Tensor, note = '';
      if (method === 'pca') {
        const r = await ex.pca(acts, { components: Math.min(2, ...acts.shape) });
        owned.push(r.components, r.mean);
        coords = r.coords;
        note = `explained variance ratio ${Array.from(r.explainedVarianceRatio, (v) => v.toFixed(4)).join(', ')}`;
      } else if (method === 'mds') {
        const r = await ex.mds(acts);
        coords = r.coords;
        note = `eigenvalues ${Array.from(r.eigenvalues, (v) => v.toPrecision(5)).join(', ')}`;
      } else {
        const tm = (o['tsne-method'] as 'exact' | 'barnes-hut' | undefined) ?? (o.theta !== undefined || N > EXACT_LIMIT ? 'barnes-hut' : 'exact');
        const r = await ex.tsne(acts, {
          method: tm,
          theta: o.theta as number | undefined,
          seed: o.seed as number | undefined,
          perplexity: o.perplexity as number | undefined,
          iterations: o.iterations as number | undefined,
          learningRate: o['learning-rate'] as number | undefined,
        });
        coords = r.coords;
        note = `${tm === 'exact' ? 'exact' : `Barnes-Hut (theta ${o.theta ?? 0.5})`}, KL ${r.klDivergence.toFixed(4)}, learning rate ${r.learningRate}, ${r.iterations} iterations`;
      }
      owned.push(coords);
      let c = Float32Array.from(await coords.data());
      if (coords.shape[1] === 1) {
        // One feature: a second axis of zeros keeps the file [N, 2].
        const c2 = new Float32Array(2 * N);
        for (let i = 0; i < N; i++) c2[2 * i] = c[i];
        c = c2;
      }
      const seconds = (performance.now() - t0) / 1000;
      const knn = N > 5 ? ex.knnAccuracy(c, labels, 5) : NaN;
      ctx.stderr(`embed: ${method} in ${seconds.toFixed(2)} s; ${note}; 5-NN accuracy of the labels in 2-D ${Number.isNaN(knn) ? 'n/a' : `${(knn * 100).toFixed(1)}%`}\n`);
      const written: string[] = [];
      if (kind === 'npy') {
        write(out, serializeNpy([N, 2], c));
        const lp = labelsPathFor(out);
        write(lp, serializeNpy([N], labels));
        ctx.stderr(`wrote ${out} [${N}, 2] and ${lp} [${N}]\n`);
        written.push(out, lp);
      } else {
        const title = `${{ pca: 'PCA', mds: 'Classical MDS', tsne: 't-SNE' }[method]} of ${m ? `${m.name}, layer '${layer}'` : 'the inputs'} (${source}, ${N} items)`;
        write(out, ex.scatterHtml(c, labels, { title, classNames, caption: `${note}. 5-NN accuracy in 2-D: ${Number.isNaN(knn) ? 'n/a' : `${(knn * 100).toFixed(1)}%`}. Computed by backlight embed in ${seconds.toFixed(2)} s.` }));
        ctx.stderr(`wrote ${out} (${N} points)\n`);
        written.push(out);
      }
      if (ctx.json) ctx.stdout(JSON.stringify({ command: 'embed', model: m?.name ?? null, data: source, layer, method, n: N, activationShape: [...acts.shape], seconds, knnAccuracy: Number.isNaN(knn) ? null : knn, note, files: written }, null, 2) + '\n');
    } finally {
      for (const t of owned) if (!t.disposed) t.dispose();
      m?.model.dispose();
    }
  },
};

// `backlight explain`: run attribution methods on a model and inputs; write .npy arrays, a PNG
// heatmap overlay, or an HTML report. Every option, the model's own facts (input shape, class
// count) and the input files are checked on the host first; the backend starts after that.
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import * as ex from '../../explain/index.ts';
import { serializeNpy } from '../../models/io/npy.ts';
import { datasetSplits } from '../../models/data/index.ts';
import { UsageError, suggest } from '../args.ts';
import { loadInputs } from '../input.ts';
import { METHODS, baselineOf, parseAttentionOptions, parseBaseline, parseLrpOptions, parseTarget, shardTarget, type BaselineSpec, type Ctx } from '../methods.ts';
import { peekModel, resolveModel } from '../model.ts';
import { INPUT_OPTIONS, checkOutPath, inputOptionsFor, intOption, parseInputOptions, writeOut } from '../options.ts';
import { DETAIL_METHODS, PERTURBATION_METHODS, parseFeatures, parseShard, readBackground, shardRange, streamToJsonl, streamToNpy, type PerturbationCtx } from '../perturbation.ts';
import type { Command } from '../registry.ts';
import { ADDITIVE_METHODS, COMPLETE_METHODS, defaultScale, explainDocument, heatmapStripPng, predictionsOf } from '../report.ts';

/** Files one method writes to: OUT itself, or OUT.<method>.EXT when several methods run. */
const fileFor = (out: string, names: string[], n: string) => (names.length === 1 ? out : out.replace(/\.(npy|png|jsonl)$/i, `.${n}.$1`));

/**
 * The model's outputs on x (one forward, one readback): logits rows and softmax probabilities. A
 * model whose rows are already probabilities (non-negative, summing to 1: an ONNX export ending
 * in Softmax) is taken as it is; softmax of probabilities would flatten them.
 */
async function forwardRows(model: ex.Model, x: Tensor): Promise<{ logits: Float32Array[]; probs: Float32Array[] } | null> {
  const y = bl.tidy(() => (model as { call(x: Tensor): Tensor }).call(x));
  try {
    if (y.rank !== 2) return null;
    const v = await y.data();
    const [n, c] = y.shape;
    const logits = Array.from({ length: n }, (_, i) => Float32Array.from(v.subarray(i * c, (i + 1) * c)));
    const isProb = logits.every((row) => row.every((p) => p >= 0) && Math.abs(row.reduce((a, b) => a + b, 0) - 1) <= 1e-4);
    const probs = logits.map((row) => {
      if (isProb) return row;
      const mx = Math.max(...row);
      const e = row.map((z) => Math.exp(z - mx));
      const s = e.reduce((a, b) => a + b, 0);
      return e.map((z) => z / s);
    });
    return { logits, probs };
  } finally {
    y.dispose();
  }
}

export const explainCommand: Command = {
  name: 'explain',
  summary: 'attribute a model\'s outputs to its inputs (saliency, IG, Grad-CAM, ...); write .npy, PNG or HTML',
  description:
    `Methods (comma-separated): ${Object.keys(METHODS).join(', ')}.\n` +
    'Layer methods take --layer (default for bundled models: features, the last feature map) and return the\n' +
    "layer's map, bilinearly upsampled to the input unless --no-upsample. attention-rollout and attention-relevance\n" +
    '(vision transformers) find the attention softmaxes themselves, or take them as --layer L1,L2,...\n' +
    'OUT.npy gets float32 attributions (with ' +
    'several methods, one file each: OUT.<method>.npy); OUT.png a heatmap over the inputs, magnified (--scale); OUT.html a\n' +
    'report with the prediction and its probabilities. Image inputs are converted to the model\'s channels and size\n' +
    '(a note on stderr says how); --resize/--crop/--normalize give the torchvision-style pipeline instead.\n' +
    'Every option is checked before the device starts; a usage error exits with 2.',
  examples: [
    'backlight explain --model digits-cnn --input digit.png --method saliency,grad-cam --out maps.png',
    'backlight explain --model digits-cnn --input digits.npy --method integrated-gradients --baseline blur --out ig.npy --json',
    'backlight explain --model resnet.onnx --input photo.jpg --resize 256 --crop 224 --normalize imagenet --method grad-cam --layer /layer4/layer4.1/relu_1/Relu_output_0 --out report.html',
  ],
  options: {
    model: { type: 'string', valueName: 'M', required: true, description: 'bundled name, .safetensors or .onnx file' },
    input: { type: 'string', valueName: 'X', required: true, description: '.npy file, or PNG / JPEG file(s) separated by commas' },
    ...INPUT_OPTIONS,
    method: { type: 'string', valueName: 'M1,M2', required: true, description: 'attribution methods (see above)' },
    out: { type: 'string', valueName: 'OUT', required: true, description: 'OUT.npy, OUT.png, OUT.html, or OUT.jsonl (per-feature values of kernel-shap, shapley-sampling, shapley-exact, lime)' },
    target: { type: 'string', valueName: 'N|N,N,..', description: "class to explain, one per input, or 'predicted' (default)" },
    layer: { type: 'string', valueName: 'NAME', description: 'layer for layer methods (features.3; ONNX: node or tensor name)' },
    'no-upsample': { type: 'boolean', description: "keep layer maps at the layer's size" },
    baseline: { type: 'string', valueName: 'B', description: 'zeros (default), blur, a number, or a .npy file' },
    steps: { type: 'string', valueName: 'N', description: 'integration steps (integrated gradients; default 50)' },
    samples: { type: 'string', valueName: 'N', description: 'noise samples (smoothgrad, gradient-shap; default 10)' },
    stdev: { type: 'string', valueName: 'S', description: 'noise standard deviation (default 0.1 for [0,1] images)' },
    seed: { type: 'string', valueName: 'S', description: 'random seed (default 0)' },
    rules: { type: 'string', valueName: 'R', description: `LRP composite: ${Object.keys(ex.COMPOSITES).join(', ')} (default epsilon-plus-flat)` },
    epsilon: { type: 'string', valueName: 'E', description: 'LRP epsilon-rule stabiliser (default 1e-6)' },
    gamma: { type: 'string', valueName: 'G', description: 'LRP gamma (epsilon-gamma-box; default 0.25)' },
    alpha: { type: 'string', valueName: 'A', description: 'LRP alpha (alpha-beta composites; alpha - beta = 1; default 2)' },
    beta: { type: 'string', valueName: 'B', description: 'LRP beta (default 1)' },
    low: { type: 'string', valueName: 'L', description: 'LRP z-box lower input bound (epsilon-gamma-box; default 0)' },
    high: { type: 'string', valueName: 'H', description: 'LRP z-box upper input bound (default 1)' },
    'seed-output': { type: 'string', valueName: 'S', description: "LRP output relevance: logit (default; Captum's: relevances sum to the output) or one-hot (Zennit's)" },
    canonizers: { type: 'string', valueName: 'C', description: "LRP model rewrites: auto (default: fold BatchNorm into convs), none" },
    features: { type: 'string', valueName: 'F', description: 'features of perturbation methods: grid:N (N x N cells), slic:N (superpixels), columns, or MASK.npy (default: every element)' },
    window: { type: 'string', valueName: 'N', description: 'occlusion / prediction-difference window, N x N over all channels (default 4)' },
    stride: { type: 'string', valueName: 'N', description: 'occlusion / prediction-difference stride (default 1)' },
    background: { type: 'string', valueName: 'B.npy', description: 'background rows [B, ...] for kernel-shap, shapley-*, lime, feature-ablation, prediction-difference, deeplift-shap' },
    'head-fusion': { type: 'string', valueName: 'mean|max|min', description: 'attention-rollout: how the heads of a layer are fused (default mean)' },
    'discard-ratio': { type: 'string', valueName: 'R', description: "attention-rollout: fraction of each layer's lowest attention entries dropped (default 0)" },
    'start-layer': { type: 'string', valueName: 'K', description: 'attention-rollout / attention-relevance: the first attention layer used (default 0)' },
    scale: { type: 'string', valueName: 'N', description: 'PNG / HTML magnification, N x N screen pixels per input pixel (default: tiles of about 256 pixels; 8x8 digits: 32)' },
    shard: { type: 'string', valueName: 'K/N', description: 'explain only shard K of N of the inputs (a contiguous block); with .npy output, rows stream to the file and a rerun resumes' },
  },
  async run(args, ctx) {
    const o = args.options;
    // ---- options, before anything is read or started ----
    const names = String(o.method).split(',').map((s) => s.trim()).filter(Boolean);
    if (!names.length) throw new UsageError(`option '--method' names no method; methods: ${Object.keys(METHODS).join(', ')}`);
    for (const n of names) {
      if (!METHODS[n]) {
        const hint = suggest(n, Object.keys(METHODS));
        throw new UsageError(`option '--method': unknown method '${n}'${hint ? ` (did you mean '${hint}'?)` : ''}; methods: ${Object.keys(METHODS).join(', ')}`);
      }
    }
    const lrpOpts = parseLrpOptions(o, names.includes('lrp'));
    const attention = parseAttentionOptions(o, names);
    const shard = parseShard(o.shard as string | undefined);
    const out = String(o.out);
    const kind = /\.npy$/i.test(out) ? 'npy' : /\.png$/i.test(out) ? 'png' : /\.html?$/i.test(out) ? 'html' : /\.jsonl$/i.test(out) ? 'jsonl' : null;
    if (!kind) throw new UsageError(`option '--out' must end in .npy, .png or .html (or .jsonl: per-feature values), got '${out}'`);
    if (kind === 'jsonl' && !names.every((n) => n in DETAIL_METHODS)) {
      throw new UsageError(`option '--out' .jsonl (per-feature values, one line per input) is for ${Object.keys(DETAIL_METHODS).join(', ')}; got --method ${names.join(',')}`);
    }
    checkOutPath(out);
    const steps = intOption(o, 'steps', 1) ?? 50, samples = intOption(o, 'samples', 1) ?? 10, seed = intOption(o, 'seed', 0) ?? 0;
    const window = intOption(o, 'window', 1), stride = intOption(o, 'stride', 1);
    const scaleOpt = intOption(o, 'scale', 1);
    if (scaleOpt !== undefined && scaleOpt > 64) throw new UsageError(`option '--scale' expects an integer from 1 to 64, got ${scaleOpt}`);
    if (scaleOpt !== undefined && kind !== 'png' && kind !== 'html') throw new UsageError(`option '--scale' is for PNG and HTML output; --out is ${out}`);
    const stdev = o.stdev === undefined ? 0.1 : Number(o.stdev);
    if (!(stdev >= 0)) throw new UsageError(`option '--stdev' expects a non-negative number, got '${o.stdev}'`);
    const inOpts = parseInputOptions(o);
    const features = parseFeatures(o.features as string | undefined);

    // ---- the model's facts and the inputs, on the host ----
    const facts = peekModel(String(o.model));
    const sample = inOpts.forcedShape ?? facts.inputShape;
    const all = loadInputs(String(o.input), sample, '--input', inputOptionsFor(inOpts, sample));
    for (const n of all.notes) ctx.stderr(`note: ${n}\n`);
    const [lo, hi] = shardRange(all.shape[0], shard);
    if (hi <= lo) throw new UsageError(`option '--shard' ${o.shard}: no inputs in this shard (${all.shape[0]} inputs)`);
    const target = shardTarget(parseTarget(o.target as string | undefined, all.shape[0], facts.numClasses), lo, hi);
    const per = all.data.length / all.shape[0];
    const batch = { ...all, data: all.data.subarray(lo * per, hi * per), display: all.display.subarray(lo * per, hi * per), shape: [hi - lo, ...all.shape.slice(1)], labels: all.labels.slice(lo, hi) };
    if (kind === 'png' && batch.shape.length !== 4) throw new UsageError(`option '--out' ${out}: PNG heatmaps need image inputs [N, C, H, W]; these are [${batch.shape.join(', ')}] (write .npy or .html)`);
    const baseline: BaselineSpec = parseBaseline(o.baseline as string | undefined, batch.shape);
    const background = readBackground(o.background as string | undefined, batch.shape.slice(1));
    const scale = scaleOpt ?? (batch.shape.length === 4 ? defaultScale(batch.shape[2], batch.shape[3]) : 1);

    // ---- the work ----
    await ctx.backend();
    const m = await resolveModel(String(o.model));
    const owned: Tensor[] = [];
    const track = <T extends number | Tensor | undefined>(t: T): T => (t instanceof bl.Tensor && owned.push(t), t);
    try {
      if (shard) ctx.stderr(`shard ${shard.k}/${shard.n}: inputs ${lo}..${hi - 1} of ${all.shape[0]}\n`);
      const x = track(bl.tensor(batch.data, batch.shape));
      const pctx: PerturbationCtx = { features, window, stride, background: background && track(bl.tensor(background.data, background.shape)), samples: o.samples === undefined ? undefined : samples };
      const layer = (o.layer as string | undefined) ?? (m.kind !== 'onnx' && m.model.namedModules().some(([p]) => p === 'features') ? 'features' : undefined);
      const base = track(baselineOf(baseline, x));
      const c: Ctx = { layer, upsample: !o['no-upsample'], target, baseline: base, steps, samples, stdev, seed, stepsGiven: o.steps !== undefined, p: pctx, lrp: lrpOpts, attention };
      // A block's baseline: blur is computed per block, an array with one row per input is sliced;
      // either is freed when the block is done (a data set streams through thousands of blocks).
      const withBase = async <T>(xb: Tensor, a: number, b: number, f: (bb: number | Tensor | undefined) => Promise<T>): Promise<T> => {
        const bb = baseline.kind === 'blur' ? baselineOf(baseline, xb) : base instanceof bl.Tensor && base.rank === x.rank && base.shape[0] === x.shape[0] && x.shape[0] > 1 ? bl.slice(base, [a], [b - a]) : base;
        try {
          return await f(bb);
        } finally {
          if (bb instanceof bl.Tensor && bb !== base && !bb.disposed) bb.dispose();
        }
      };
      const targetOf = (a: number, b: number): ex.Target => (Array.isArray(target) ? target.slice(a, b) : target);
      const written: { method: string; file: string; shape: number[]; seconds: number; skipped?: number }[] = [];
      const key = (extra: Record<string, unknown>) => JSON.stringify({ model: String(o.model), input: String(o.input), target: o.target ?? 'predicted', baseline: o.baseline ?? null, features: o.features ?? null, background: o.background ?? null, samples: o.samples ?? null, seed, invert: !!o.invert, normalize: o.normalize ?? null, resize: o.resize ?? null, crop: o.crop ?? null, shard: o.shard ?? null, ...extra });
      const block = Math.max(1, Math.min(16, x.shape[0]));
      const json = (extra: Record<string, unknown>) =>
        ctx.stdout(JSON.stringify({ command: 'explain', model: m.name, inputs: batch.labels, inputShape: batch.shape, layer: layer ?? null, target, notes: all.notes, outputs: written, ...extra }, null, 2) + '\n');
      if (kind === 'jsonl') {
        for (const n of names) {
          const file = fileFor(out, names, n);
          const t0 = performance.now();
          const skipped = await streamToJsonl({
            file, method: n, key: key({}), data: batch.data, shape: batch.shape, offset: lo, block, stderr: (s) => ctx.stderr(s),
            explain: (xb, a, b, onProgress) => withBase(xb, a, b, (bb) => DETAIL_METHODS[n](m.model, xb, { ...c, target: targetOf(a, b), baseline: bb, p: { ...pctx, onProgress } })),
          });
          const seconds = (performance.now() - t0) / 1000;
          written.push({ method: n, file, shape: [batch.shape[0]], seconds, skipped });
          ctx.stderr(`${n}: ${batch.shape[0]} items in ${seconds.toFixed(2)} s${skipped ? ` (${skipped} already done)` : ''}\nwrote ${file}\n`);
        }
        if (ctx.json) json({});
        return;
      }
      if (kind === 'npy' && names.every((n) => n in PERTURBATION_METHODS)) {
        // Whole data sets: stream rows into the .npy a block at a time, resumable (cli/perturbation.ts).
        for (const n of names) {
          const file = fileFor(out, names, n);
          const t0 = performance.now();
          const skipped = await streamToNpy({
            file, method: n, key: key({ window, stride, steps: o.steps ?? null }), data: batch.data, shape: batch.shape, lo: 0, hi: x.shape[0], block, stderr: (s) => ctx.stderr(s),
            explain: (xb, a, b, onProgress) => withBase(xb, a, b, (bb) => METHODS[n].run(m.model, xb, { ...c, target: targetOf(a, b), baseline: bb, p: { ...pctx, onProgress } })),
          });
          const seconds = (performance.now() - t0) / 1000;
          written.push({ method: n, file, shape: batch.shape, seconds, skipped });
          ctx.stderr(`${n}: [${batch.shape.join(', ')}] in ${seconds.toFixed(2)} s${skipped ? ` (${skipped} items already done)` : ''}\nwrote ${file}\n`);
        }
        if (ctx.json) json({});
        return;
      }
      const results: [string, Tensor, number][] = [];
      for (const n of names) {
        const t0 = performance.now();
        const r = track(await METHODS[n].run(m.model, x, c));
        const seconds = (performance.now() - t0) / 1000;
        results.push([n, r, seconds]);
        ctx.stderr(`${n}: [${r.shape.join(', ')}] in ${seconds.toFixed(2)} s\n`);
      }
      const rows = kind === 'html' || ctx.json ? await forwardRows(m.model, x) : null;
      const predictions = rows ? predictionsOf(rows.probs.flatMap((p) => Array.from(p)), rows.probs.length, rows.probs[0].length, m.classes, true) : null;
      const images = x.rank === 4 ? { data: batch.display, shape: batch.shape } : undefined;
      if (kind === 'npy') {
        for (const [n, r, seconds] of results) {
          const file = fileFor(out, names, n);
          writeOut(file, serializeNpy(r.shape, await r.data()));
          written.push({ method: n, file, shape: [...r.shape], seconds });
          ctx.stderr(`wrote ${file}\n`);
        }
      } else if (kind === 'png') {
        for (const [n, r, seconds] of results) {
          const file = fileFor(out, names, n);
          const png = await heatmapStripPng(r, r.rank === 4 || r.rank === 3 ? images : undefined, scale);
          writeOut(file, png.bytes);
          written.push({ method: n, file, shape: [...r.shape], seconds });
          ctx.stderr(`wrote ${file} (${png.w} x ${png.h} pixels, ${scale}x)\n`);
        }
      } else {
        const targets = predictions ? predictions.map((p, i) => (target === 'predicted' ? p.class : Array.isArray(target) ? target[i] : (target as number))) : null;
        // f(x) and f(baseline) of each target, so that the report can check IG's / DeepLIFT's completeness.
        let outputs: { fx: number[]; fBaseline: number[] } | undefined;
        if (rows && targets && names.some((n) => COMPLETE_METHODS.has(n) || (x.rank === 2 && ADDITIVE_METHODS.has(n)))) {
          const b = typeof base === 'number' ? track(bl.full(x.shape, base)) : base instanceof bl.Tensor && base.shape.join() === x.shape.join() ? base : undefined;
          const fb = b ? await forwardRows(m.model, b) : null;
          if (fb) outputs = { fx: targets.map((t, i) => rows.logits[i][t]), fBaseline: targets.map((t, i) => fb.logits[i][t]) };
        }
        const seconds = Object.fromEntries(results.map(([n, , sec]) => [n, sec]));
        const doc = explainDocument({
          title: `backlight explain: ${names.join(', ')}`,
          meta: [
            { label: 'model', value: m.name },
            { label: 'target', value: target === 'predicted' ? 'the predicted class' : JSON.stringify(target) },
            ...(layer && names.some((n) => METHODS[n].kind === 'layer' || n === 'guided-grad-cam') ? [{ label: 'layer', value: layer }] : []),
            { label: 'adapter', value: bl.adapterInfo().architecture || bl.adapterInfo().backend },
          ],
          notes: all.notes,
          labels: batch.labels,
          images,
          classNames: m.classes,
          probabilities: rows?.probs ?? null,
          targets,
          outputs,
          featureNames: x.rank === 2 && m.dataset ? (datasetSplits(m.dataset).test as { featureNames?: string[] }).featureNames : undefined,
          inputs: x.rank === 2 ? batch.display : undefined,
          displaySize: scaleOpt !== undefined && x.rank === 4 ? scaleOpt * Math.max(x.shape[2], x.shape[3]) : undefined,
          methods: await Promise.all(results.map(async ([n, r]) => ({
            method: n,
            values: Float32Array.from(await r.data()),
            shape: [...r.shape],
            info: {
              layer: METHODS[n].kind === 'layer' || n === 'guided-grad-cam' ? layer : undefined,
              upsampled: METHODS[n].kind === 'layer' ? c.upsample : undefined,
              steps: ['integrated-gradients', 'layer-integrated-gradients'].includes(n) ? steps : undefined,
              baseline: ['integrated-gradients', 'layer-integrated-gradients', 'deeplift', 'occlusion', 'gradient-shap'].includes(n) ? String(o.baseline ?? 'zeros') : undefined,
              rules: n === 'lrp' ? String(o.rules ?? 'epsilon-plus-flat') : undefined,
              features: o.features !== undefined && n in PERTURBATION_METHODS ? String(o.features) : undefined,
              seconds: seconds[n],
            },
          }))),
        });
        writeOut(out, await ex.renderReport(doc, { encodePng: ex.encodePng }));
        for (const [n, r, sec] of results) written.push({ method: n, file: out, shape: [...r.shape], seconds: sec });
        ctx.stderr(`wrote ${out}\n`);
      }
      if (ctx.json) json({ predictions });
    } finally {
      for (const t of owned) if (!t.disposed) t.dispose();
      m.model.dispose();
    }
  },
};

// `backlight explain`: run attribution methods on a model and inputs; write .npy arrays, a PNG
// heatmap overlay, or an HTML report. Registered into cli/main.ts's command table.
import { writeFileSync } from 'node:fs';
import * as bl from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import * as ex from '../explain/index.ts';
import { parseNpy } from '../models/io/npy.ts';
import { serializeNpy } from '../models/io/npy.ts';
import { UsageError, suggest } from './args.ts';
import { loadInputs, readInputFile } from './input.ts';
import { resolveModel } from './model.ts';
import { DETAIL_METHODS, PERTURBATION_METHODS, parseFeatures, parseShard, readBackground, shardRange, streamToJsonl, streamToNpy, type PerturbationCtx } from './perturbation.ts';
import type { Command } from './main.ts';

export interface Ctx {
  layer?: string;
  upsample: boolean;
  target: ex.Target;
  baseline?: number | Tensor;
  steps: number;
  samples: number;
  stdev: number;
  seed: number;
  /** Whether --steps was given (methods with their own default otherwise). */
  stepsGiven: boolean;
  /** Options of the perturbation methods (cli/perturbation.ts). */
  p: PerturbationCtx;
  /** LRP: the composite and its parameters, the canonizers and the output seed. */
  lrp: ex.LrpOptions;
}

export interface MethodSpec {
  /** What the method returns: input-shaped, or a layer map. */
  kind: 'input' | 'layer';
  run(model: ex.Model, x: Tensor, c: Ctx): Promise<Tensor>;
}

const needLayer = (c: Ctx, m: string) => {
  if (!c.layer) throw new UsageError(`method '${m}' needs --layer (a layer name such as features.3; for ONNX models a node or output tensor name)`);
  return c.layer;
};

/** The methods by their command-line names. */
export const METHODS: Record<string, MethodSpec> = {
  lrp: { kind: 'input', run: (m, x, c) => ex.lrp(m, x, { ...c.lrp, returnLayers: false, target: c.target }) },
  saliency: { kind: 'input', run: (m, x, c) => ex.saliency(m, x, { target: c.target }) },
  'input-x-gradient': { kind: 'input', run: (m, x, c) => ex.inputXGradient(m, x, { target: c.target }) },
  'integrated-gradients': { kind: 'input', run: (m, x, c) => ex.integratedGradients(m, x, { target: c.target, baseline: c.baseline, steps: c.steps }) },
  smoothgrad: { kind: 'input', run: (m, x, c) => ex.smoothGrad(m, x, { target: c.target, samples: c.samples, stdev: c.stdev, seed: c.seed }) },
  'smoothgrad-sq': { kind: 'input', run: (m, x, c) => ex.smoothGrad(m, x, { target: c.target, samples: c.samples, stdev: c.stdev, seed: c.seed, type: 'smoothgrad_sq' }) },
  vargrad: { kind: 'input', run: (m, x, c) => ex.smoothGrad(m, x, { target: c.target, samples: c.samples, stdev: c.stdev, seed: c.seed, type: 'vargrad' }) },
  'guided-backprop': { kind: 'input', run: (m, x, c) => ex.guidedBackprop(m, x, { target: c.target }) },
  deconvnet: { kind: 'input', run: (m, x, c) => ex.deconvnet(m, x, { target: c.target }) },
  deeplift: { kind: 'input', run: (m, x, c) => ex.deepLift(m, x, { target: c.target, baseline: c.baseline }) },
  'gradient-shap': {
    kind: 'input',
    run: async (m, x, c) => {
      const b = c.baseline instanceof bl.Tensor ? c.baseline : bl.full([1, ...x.shape.slice(1)], c.baseline ?? 0);
      const r = await ex.gradientShap(m, x, { target: c.target, baselines: b.shape[0] === x.shape[0] && b.rank === x.rank ? b : bl.reshape(b, [-1, ...x.shape.slice(1)]), samples: c.samples, stdev: c.stdev, seed: c.seed });
      return r;
    },
  },
  cam: { kind: 'layer', run: (m, x, c) => ex.cam(m, x, { target: c.target, layer: needLayer(c, 'cam'), upsample: c.upsample }) },
  'grad-cam': { kind: 'layer', run: (m, x, c) => ex.gradCam(m, x, { target: c.target, layer: needLayer(c, 'grad-cam'), upsample: c.upsample }) },
  'grad-cam-plus-plus': { kind: 'layer', run: (m, x, c) => ex.gradCamPlusPlus(m, x, { target: c.target, layer: needLayer(c, 'grad-cam-plus-plus'), upsample: c.upsample }) },
  'hires-cam': { kind: 'layer', run: (m, x, c) => ex.hiResCam(m, x, { target: c.target, layer: needLayer(c, 'hires-cam'), upsample: c.upsample }) },
  'xgrad-cam': { kind: 'layer', run: (m, x, c) => ex.xGradCam(m, x, { target: c.target, layer: needLayer(c, 'xgrad-cam'), upsample: c.upsample }) },
  'layer-cam': { kind: 'layer', run: (m, x, c) => ex.layerCam(m, x, { target: c.target, layer: needLayer(c, 'layer-cam'), upsample: c.upsample }) },
  'score-cam': { kind: 'layer', run: (m, x, c) => ex.scoreCam(m, x, { target: c.target, layer: needLayer(c, 'score-cam'), upsample: c.upsample }) },
  'guided-grad-cam': { kind: 'input', run: (m, x, c) => ex.guidedGradCam(m, x, { target: c.target, layer: needLayer(c, 'guided-grad-cam') }) },
  'layer-gradient-x-activation': { kind: 'layer', run: (m, x, c) => ex.layerGradientXActivation(m, x, { target: c.target, layer: needLayer(c, 'layer-gradient-x-activation') }) },
  'layer-integrated-gradients': { kind: 'layer', run: (m, x, c) => ex.layerIntegratedGradients(m, x, { target: c.target, layer: needLayer(c, 'layer-integrated-gradients'), baseline: c.baseline, steps: c.steps }) },
  // Prototype classifiers (prototype-digits): the attention over the prototypes, [N, P] (explain/prototypes).
  prototypes: { kind: 'layer', run: async (m, x) => ex.prototypeAttention(m, x) },
};

// The perturbation (model-agnostic) methods and DeepLIFT SHAP, from cli/perturbation.ts.
for (const [name, run] of Object.entries(PERTURBATION_METHODS)) METHODS[name] = { kind: 'input', run: (m, x, c) => run(m, x, c) };

const LRP_NUMBERS = ['epsilon', 'gamma', 'alpha', 'beta', 'low', 'high'] as const;

/** --rules and the LRP parameters, checked before any work starts (they belong to --method lrp). */
function parseLrpOptions(o: Record<string, unknown>, wanted: boolean): ex.LrpOptions {
  const given = ['rules', ...LRP_NUMBERS, 'seed-output', 'canonizers'].filter((k) => o[k] !== undefined);
  if (!wanted) {
    if (given.length) throw new UsageError(`option${given.length > 1 ? 's' : ''} ${given.map((k) => `'--${k}'`).join(', ')} belong${given.length > 1 ? '' : 's'} to --method lrp`);
    return {};
  }
  const r: ex.LrpOptions = {};
  if (o.rules !== undefined) {
    const name = String(o.rules);
    if (!ex.COMPOSITES[name] && !ex.compositeNames().includes(name)) {
      const hint = suggest(name, ex.compositeNames());
      throw new UsageError(`option '--rules': unknown composite '${name}'${hint ? ` (did you mean '${hint}'?)` : ''}; composites: ${ex.compositeNames().join(', ')}`);
    }
    r.composite = name;
  }
  for (const k of LRP_NUMBERS) {
    if (o[k] === undefined) continue;
    const v = Number(o[k]);
    if (!Number.isFinite(v)) throw new UsageError(`option '--${k}' expects a number, got '${o[k]}'`);
    r[k] = v;
  }
  if ((r.alpha !== undefined || r.beta !== undefined) && Math.abs((r.alpha ?? 2) - (r.beta ?? 1) - 1) > 1e-12) {
    throw new UsageError(`options '--alpha' and '--beta' must satisfy alpha - beta = 1 (got alpha ${r.alpha ?? 2}, beta ${r.beta ?? 1})`);
  }
  if (o['seed-output'] !== undefined) {
    const v = String(o['seed-output']);
    if (v !== 'logit' && v !== 'one-hot') throw new UsageError(`option '--seed-output' expects logit or one-hot, got '${v}'`);
    r.seedOutput = v;
  }
  if (o.canonizers !== undefined) {
    const v = String(o.canonizers);
    if (v !== 'auto' && v !== 'none') throw new UsageError(`option '--canonizers' expects auto or none, got '${v}'`);
    r.canonizers = v;
  }
  return r;
}

/** Per-input targets are given for all inputs; a shard takes its own. */
const shardTarget = (t: ex.Target, lo: number, hi: number): ex.Target => (Array.isArray(t) ? t.slice(lo, hi) : t);

function parseTarget(v: string | undefined, n: number): ex.Target {
  if (v === undefined || v === 'predicted') return 'predicted';
  const parts = v.split(',').map((s) => s.trim());
  const nums = parts.map(Number);
  if (parts.some((p) => p === '') || nums.some((t) => !Number.isInteger(t) || t < 0)) {
    throw new UsageError(`option '--target' expects a class index, one per batch item (N,N,...), or 'predicted'; got '${v}'`);
  }
  if (nums.length === 1) return nums[0];
  if (nums.length !== n) throw new UsageError(`option '--target' gives ${nums.length} classes for ${n} inputs (give one, or one per input)`);
  return nums;
}

function baselineOf(v: string | undefined, x: Tensor): number | Tensor | undefined {
  if (v === undefined || v === 'zeros' || v === 'zero') return 0;
  if (v === 'blur') {
    if (x.rank !== 4) throw new UsageError(`--baseline blur needs image inputs (NCHW), got [${x.shape.join(', ')}]`);
    // The 'blur' baseline: Gaussian, sigma min(H, W) / 8 pixels (at least 1), border renormalised.
    return ex.gaussianBlur(x, Math.max(1, Math.min(x.shape[2], x.shape[3]) / 8));
  }
  if (/\.npy$/i.test(v)) {
    const a = parseNpy(readInputFile(v, '--baseline'), v);
    return bl.tensor(a.data, a.shape);
  }
  const num = Number(v);
  if (v.trim() !== '' && Number.isFinite(num)) return num;
  throw new UsageError(`option '--baseline' expects zeros, blur, a number or a .npy file; got '${v}'`);
}

async function htmlReport(title: string, x: Tensor, labels: string[], results: [string, Tensor][], info: string): Promise<string> {
  const rows: string[] = [];
  const enc = (b: Uint8Array) => `data:image/png;base64,${Buffer.from(b).toString('base64')}`;
  const items = x.shape[0];
  const per = async (t: Tensor, i: number, withImage: boolean) =>
    enc(await ex.heatmapPng(bl.slice(t, [i], [1]), withImage && x.rank === 4 ? bl.slice(x, [i], [1]) : undefined));
  const inputs: string[] = [];
  for (let i = 0; i < items; i++) {
    if (x.rank === 4) {
      const img = bl.slice(x, [i], [1]);
      inputs.push(`<img src="${enc(await ex.heatmapPng(img, img, { alpha: 0 }))}">`);
    } else inputs.push(esc(labels[i]));
  }
  rows.push(`<tr><th>input</th>${inputs.map((s, i) => `<td>${s}<div>${esc(labels[i])}</div></td>`).join('')}</tr>`);
  for (const [name, t] of results) {
    const cells: string[] = [];
    for (let i = 0; i < items; i++) cells.push(t.rank === 4 ? `<img src="${await per(t, i, true)}">` : `<code>[${t.shape.slice(1).join(', ')}]</code>`);
    rows.push(`<tr><th>${esc(name)}</th>${cells.map((c) => `<td>${c}</td>`).join('')}</tr>`);
  }
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{padding:6px;border:1px solid #ddd;text-align:center;vertical-align:top}
img{width:160px;height:auto;image-rendering:pixelated}th{background:#f5f5f5}div{font-size:12px;color:#555}</style></head>
<body><h1>${esc(title)}</h1><p>${esc(info)}</p><table>${rows.join('\n')}</table>
<p>Heatmaps: per item, normalised to its largest value; channels summed as absolute values; jet colour map over the input.</p></body></html>`;
}

export function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

export const explainCommand: Command = {
  name: 'explain',
  summary: 'attribute a model\'s outputs to its inputs (saliency, IG, Grad-CAM, ...); write .npy, PNG or HTML',
  description:
    `Methods (comma-separated): ${Object.keys(METHODS).join(', ')}.\n` +
    'Layer methods take --layer (default for bundled models: features, the last feature map) and return the\n' +
    "layer's map, bilinearly upsampled to the input unless --no-upsample. OUT.npy gets float32 attributions (with\n" +
    'several methods, one file each: OUT.<method>.npy); OUT.png a heatmap over the inputs; OUT.html a report.',
  options: {
    model: { type: 'string', valueName: 'M', required: true, description: 'bundled name, .safetensors or .onnx file' },
    input: { type: 'string', valueName: 'X', required: true, description: '.npy file, or .png file(s) separated by commas' },
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
    invert: { type: 'boolean', description: 'feed 1 - value (dark-on-light images for the digits models)' },
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
    shard: { type: 'string', valueName: 'K/N', description: 'explain only shard K of N of the inputs (a contiguous block); with .npy output, rows stream to the file and a rerun resumes' },
  },
  async run(args, ctx) {
    const o = args.options;
    const names = String(o.method).split(',').map((s) => s.trim()).filter(Boolean);
    for (const n of names) {
      if (!METHODS[n]) {
        const hint = suggest(n, Object.keys(METHODS));
        throw new UsageError(`unknown method '${n}'${hint ? ` (did you mean '${hint}'?)` : ''}; methods: ${Object.keys(METHODS).join(', ')}`);
      }
    }
    const lrpOpts = parseLrpOptions(o, names.includes('lrp'));
    const features = parseFeatures(o.features as string | undefined);
    const shard = parseShard(o.shard as string | undefined);
    const out = String(o.out);
    const kind = /\.npy$/i.test(out) ? 'npy' : /\.png$/i.test(out) ? 'png' : /\.html?$/i.test(out) ? 'html' : /\.jsonl$/i.test(out) ? 'jsonl' : null;
    if (!kind) throw new UsageError(`option '--out' must end in .npy, .png or .html (or .jsonl: per-feature values), got '${out}'`);
    if (kind === 'jsonl' && !names.every((n) => n in DETAIL_METHODS)) {
      throw new UsageError(`--out .jsonl (per-feature values, one line per input) is for ${Object.keys(DETAIL_METHODS).join(', ')}; got --method ${names.join(',')}`);
    }
    const int = (k: string, d: number) => {
      if (o[k] === undefined) return d;
      const v = Number(o[k]);
      if (!Number.isInteger(v) || v < (k === 'seed' ? 0 : 1)) throw new UsageError(`option '--${k}' expects ${k === 'seed' ? 'a non-negative' : 'a positive'} integer, got '${o[k]}'`);
      return v;
    };
    const steps = int('steps', 50), samples = int('samples', 10), seed = int('seed', 0);
    const window = o.window === undefined ? undefined : int('window', 1), stride = o.stride === undefined ? undefined : int('stride', 1);
    const stdev = o.stdev === undefined ? 0.1 : Number(o.stdev);
    if (!(stdev >= 0)) throw new UsageError(`option '--stdev' expects a non-negative number, got '${o.stdev}'`);
    await ctx.backend();
    const m = await resolveModel(String(o.model));
    try {
      const all = loadInputs(String(o.input), m.inputShape);
      if (o.invert) for (let i = 0; i < all.data.length; i++) all.data[i] = 1 - all.data[i];
      const [lo, hi] = shardRange(all.shape[0], shard);
      if (hi <= lo) throw new UsageError(`--shard ${o.shard}: no inputs in this shard (${all.shape[0]} inputs)`);
      const per = all.data.length / all.shape[0];
      const batch = { ...all, data: all.data.subarray(lo * per, hi * per), shape: [hi - lo, ...all.shape.slice(1)], labels: all.labels.slice(lo, hi) };
      if (shard) ctx.stderr(`shard ${shard.k}/${shard.n}: inputs ${lo}..${hi - 1} of ${all.shape[0]}\n`);
      const x = bl.tensor(batch.data, batch.shape);
      const pctx: PerturbationCtx = { features, window, stride, background: readBackground(o.background as string | undefined, batch.shape.slice(1)), samples: o.samples === undefined ? undefined : samples };
      const layer = (o.layer as string | undefined) ?? (m.kind !== 'onnx' && m.model.namedModules().some(([p]) => p === 'features') ? 'features' : undefined);
      const c: Ctx = { layer, upsample: !o['no-upsample'], target: shardTarget(parseTarget(o.target as string | undefined, all.shape[0]), lo, hi), baseline: baselineOf(o.baseline as string | undefined, x), steps, samples, stdev, seed, stepsGiven: o.steps !== undefined, p: pctx, lrp: lrpOpts };
      if (kind === 'jsonl') {
        for (const n of names) {
          const file = names.length === 1 ? out : out.replace(/\.jsonl$/i, `.${n}.jsonl`);
          const t0 = performance.now();
          const key = JSON.stringify({ model: String(o.model), input: String(o.input), target: o.target ?? 'predicted', baseline: o.baseline ?? null, features: o.features ?? null, background: o.background ?? null, samples: o.samples ?? null, seed, invert: !!o.invert, shard: o.shard ?? null });
          const baseOf = (xb: Tensor, a: number, b: number): number | Tensor | undefined =>
            c.baseline instanceof bl.Tensor && c.baseline.rank === x.rank && c.baseline.shape[0] === x.shape[0] && x.shape[0] > 1 ? bl.slice(c.baseline, [a], [b - a]) : o.baseline === 'blur' ? baselineOf('blur', xb) : c.baseline;
          const skipped = await streamToJsonl({
            file, method: n, key, data: batch.data, shape: batch.shape, offset: lo, block: Math.max(1, Math.min(16, x.shape[0])), stderr: (s) => ctx.stderr(s),
            explain: (xb, a, b, onProgress) => DETAIL_METHODS[n](m.model, xb, { ...c, target: Array.isArray(c.target) ? c.target.slice(a, b) : c.target, baseline: baseOf(xb, a, b), p: { ...pctx, onProgress } }),
          });
          ctx.stderr(`${n}: ${batch.shape[0]} items in ${((performance.now() - t0) / 1000).toFixed(2)} s${skipped ? ` (${skipped} already done)` : ''}\nwrote ${file}\n`);
        }
        return;
      }
      if (kind === 'npy' && names.every((n) => n in PERTURBATION_METHODS)) {
        // Whole data sets: stream rows into the .npy a block at a time, resumable (cli/perturbation.ts).
        const block = Math.max(1, Math.min(16, x.shape[0]));
        const targetOf = (a: number, b: number): ex.Target => (Array.isArray(c.target) ? c.target.slice(a, b) : c.target);
        const baselineOf2 = (xb: Tensor, a: number, b: number): number | Tensor | undefined => {
          const base = c.baseline;
          if (!(base instanceof bl.Tensor)) return base;
          if (o.baseline === 'blur') return baselineOf('blur', xb);
          return base.shape[0] === x.shape[0] && base.rank === x.rank && x.shape[0] > 1 ? bl.slice(base, [a], [b - a]) : base;
        };
        for (const n of names) {
          const file = names.length === 1 ? out : out.replace(/\.npy$/i, `.${n}.npy`);
          const t0 = performance.now();
          const key = JSON.stringify({ model: String(o.model), input: String(o.input), target: o.target ?? 'predicted', baseline: o.baseline ?? null, features: o.features ?? null, background: o.background ?? null, window, stride, samples: o.samples ?? null, steps: o.steps ?? null, seed, invert: !!o.invert, shard: o.shard ?? null });
          const skipped = await streamToNpy({
            file, method: n, key, data: batch.data, shape: batch.shape, lo: 0, hi: x.shape[0], block, stderr: (s) => ctx.stderr(s),
            explain: (xb, a, b, onProgress) => METHODS[n].run(m.model, xb, { ...c, target: targetOf(a, b), baseline: baselineOf2(xb, a, b), p: { ...pctx, onProgress } }),
          });
          ctx.stderr(`${n}: [${batch.shape.join(', ')}] in ${((performance.now() - t0) / 1000).toFixed(2)} s${skipped ? ` (${skipped} items already done)` : ''}\nwrote ${file}\n`);
        }
        return;
      }
      const results: [string, Tensor][] = [];
      for (const n of names) {
        const t0 = performance.now();
        const r = await METHODS[n].run(m.model, x, c);
        results.push([n, r]);
        ctx.stderr(`${n}: [${r.shape.join(', ')}] in ${((performance.now() - t0) / 1000).toFixed(2)} s\n`);
      }
      if (kind === 'npy') {
        for (const [n, r] of results) {
          const file = results.length === 1 ? out : out.replace(/\.npy$/i, `.${n}.npy`);
          write(file, serializeNpy(r.shape, await r.data()));
          ctx.stderr(`wrote ${file}\n`);
        }
      } else if (kind === 'png') {
        for (const [n, r] of results) {
          const file = results.length === 1 ? out : out.replace(/\.png$/i, `.${n}.png`);
          write(file, await ex.heatmapPng(r, r.rank === 4 && x.rank === 4 ? x : undefined));
          ctx.stderr(`wrote ${file}\n`);
        }
      } else {
        const info = `model ${m.name}; target ${JSON.stringify(c.target)}${layer ? `; layer ${layer}` : ''}; adapter ${bl.adapterInfo().architecture || bl.adapterInfo().backend}`;
        write(out, new TextEncoder().encode(await htmlReport(`backlight: ${names.join(', ')}`, x, batch.labels, results, info)));
        ctx.stderr(`wrote ${out}\n`);
      }
      for (const [, r] of results) r.dispose();
    } finally {
      m.model.dispose();
    }
  },
};

function write(file: string, bytes: Uint8Array): void {
  try {
    writeFileSync(file, bytes);
  } catch (e) {
    throw new Error(`--out ${file}: cannot write the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

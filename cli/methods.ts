// The attribution methods of `backlight explain` (and of the trust report of `backlight
// evaluate`) by their command-line names, with the parsing of the options they share. Host-only
// checks here run before the backend starts.
import * as bl from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import * as ex from '../explain/index.ts';
import { parseNpy } from '../models/io/npy.ts';
import { UsageError, suggest } from './args.ts';
import { readInputFile } from './input.ts';
import { PERTURBATION_METHODS, type PerturbationCtx } from './perturbation.ts';

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
  /** Attention methods: the layers named by --layer (default: found), and rollout's options. */
  attention?: AttentionCtx;
}

export interface AttentionCtx {
  layers?: string[];
  headFusion?: ex.HeadFusion;
  discardRatio?: number;
  startLayer?: number;
}

export const ATTENTION_METHODS = ['attention-rollout', 'attention-relevance'] as const;

/** --head-fusion / --discard-ratio (rollout) and --start-layer (both), checked before any work. */
export function parseAttentionOptions(o: Record<string, unknown>, names: readonly string[]): AttentionCtx {
  const rollout = names.includes('attention-rollout'), any = rollout || names.includes('attention-relevance');
  const own = [...(rollout ? [] : ['head-fusion', 'discard-ratio']), ...(any ? [] : ['start-layer'])].filter((k) => o[k] !== undefined);
  if (own.length) throw new UsageError(`option${own.length > 1 ? 's' : ''} ${own.map((k) => `'--${k}'`).join(', ')} belong${own.length > 1 ? '' : 's'} to --method ${own.some((k) => k !== 'start-layer') ? 'attention-rollout' : 'attention-rollout or attention-relevance'}`);
  const r: AttentionCtx = {};
  if (o['head-fusion'] !== undefined) {
    const v = String(o['head-fusion']);
    if (v !== 'mean' && v !== 'max' && v !== 'min') throw new UsageError(`option '--head-fusion' expects mean, max or min, got '${v}'`);
    r.headFusion = v;
  }
  if (o['discard-ratio'] !== undefined) {
    const v = Number(o['discard-ratio']);
    if (String(o['discard-ratio']).trim() === '' || !(v >= 0 && v < 1)) throw new UsageError(`option '--discard-ratio' expects a number in [0, 1), got '${String(o['discard-ratio'])}'`);
    r.discardRatio = v;
  }
  if (o['start-layer'] !== undefined) {
    const v = Number(o['start-layer']);
    if (!Number.isInteger(v) || v < 0) throw new UsageError(`option '--start-layer' expects a non-negative integer, got '${String(o['start-layer'])}'`);
    r.startLayer = v;
  }
  if (any && o.layer !== undefined) r.layers = String(o.layer).split(',').map((l) => l.trim()).filter(Boolean);
  return r;
}

export interface MethodSpec {
  /** What the method returns: input-shaped, or a layer map. */
  kind: 'input' | 'layer';
  run(model: ex.Model, x: Tensor, c: Ctx): Promise<Tensor>;
}

const needLayer = (c: Ctx, m: string) => {
  if (!c.layer) throw new UsageError(`method '${m}' needs --layer (a layer name such as features.3; for ONNX models a node or output tensor name: 'backlight layers --model M' lists them)`);
  return c.layer;
};

/** The methods by their command-line names. */
export const METHODS: Record<string, MethodSpec> = {
  lrp: { kind: 'input', run: (m, x, c) => ex.lrp(m, x, { ...c.lrp, returnLayers: false, returnDelta: false, target: c.target }) },
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
  // Vision transformers (explain/attention): --layer names the attention layers (comma-separated;
  // default: every Softmax with an attention's shape), --no-upsample keeps the patch grid.
  'attention-rollout': {
    kind: 'input',
    run: (m, x, c) => ex.attentionRollout(m, x, { layers: c.attention?.layers, headFusion: c.attention?.headFusion, discardRatio: c.attention?.discardRatio, startLayer: c.attention?.startLayer, upsample: c.upsample }),
  },
  'attention-relevance': {
    kind: 'input',
    run: (m, x, c) => ex.attentionRelevance(m, x, { target: c.target, layers: c.attention?.layers, startLayer: c.attention?.startLayer, upsample: c.upsample }),
  },
  // Prototype classifiers (prototype-digits): the attention over the prototypes, [N, P] (explain/prototypes).
  prototypes: { kind: 'layer', run: async (m, x) => ex.prototypeAttention(m, x) },
};

// The perturbation (model-agnostic) methods and DeepLIFT SHAP, from cli/perturbation.ts.
for (const [name, run] of Object.entries(PERTURBATION_METHODS)) METHODS[name] = { kind: 'input', run: (m, x, c) => run(m, x, c) };

const LRP_NUMBERS = ['epsilon', 'gamma', 'alpha', 'beta', 'low', 'high'] as const;

/** --rules and the LRP parameters, checked before any work starts (they belong to --method lrp). */
export function parseLrpOptions(o: Record<string, unknown>, wanted: boolean): ex.LrpOptions {
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
export const shardTarget = (t: ex.Target, lo: number, hi: number): ex.Target => (Array.isArray(t) ? t.slice(lo, hi) : t);

/**
 * --target: 'predicted' (default), one class index, or one per input. Checked against the model's
 * class count where it is known (from the bundled spec, the safetensors metadata or the ONNX
 * output shape), before any work.
 */
export function parseTarget(v: string | undefined, n: number, numClasses: number | null = null): ex.Target {
  if (v === undefined || v === 'predicted') return 'predicted';
  const parts = v.split(',').map((s) => s.trim());
  const nums = parts.map(Number);
  if (parts.some((p) => p === '') || nums.some((t) => !Number.isInteger(t) || t < 0)) {
    throw new UsageError(`option '--target' expects a class index, one per batch item (N,N,...), or 'predicted'; got '${v}'`);
  }
  if (numClasses !== null) {
    const bad = nums.find((t) => t >= numClasses);
    if (bad !== undefined) throw new UsageError(`option '--target' expects class indices 0..${numClasses - 1} (the model has ${numClasses} classes); got ${bad}`);
  }
  if (nums.length === 1) return nums[0];
  if (nums.length !== n) throw new UsageError(`option '--target' gives ${nums.length} classes for ${n} inputs (give one, or one per input)`);
  return nums;
}

/** --baseline as parsed on the host; `baselineOf` makes it a tensor once the backend runs. */
export type BaselineSpec = { kind: 'number'; value: number } | { kind: 'blur' } | { kind: 'array'; data: Float32Array; shape: number[]; file: string };

/**
 * --baseline: zeros (default), blur, a number, or a .npy file whose array has the inputs' shape,
 * one input's shape, or [B, ...one input] rows. Read and checked before any work.
 */
export function parseBaseline(v: string | undefined, inputShape: readonly number[]): BaselineSpec {
  if (v === undefined || v === 'zeros' || v === 'zero') return { kind: 'number', value: 0 };
  if (v === 'blur') {
    if (inputShape.length !== 4) throw new UsageError(`option '--baseline blur' needs image inputs [N, C, H, W], got [${inputShape.join(', ')}]`);
    return { kind: 'blur' };
  }
  if (/\.npy$/i.test(v)) {
    const a = parseNpy(readInputFile(v, '--baseline'), v);
    const item = inputShape.slice(1);
    const fits = a.shape.join() === item.join() || (a.shape.length === inputShape.length && a.shape.slice(1).join() === item.join());
    if (!fits) throw new UsageError(`option '--baseline' ${v}: an array of shape [${a.shape.join(', ')}] does not fit inputs [${inputShape.join(', ')}] (expected [${item.join(', ')}] or [B, ${item.join(', ')}])`);
    return { kind: 'array', data: a.data, shape: a.shape, file: v };
  }
  const num = Number(v);
  if (v.trim() !== '' && Number.isFinite(num)) return { kind: 'number', value: num };
  throw new UsageError(`option '--baseline' expects zeros, blur, a number or a .npy file; got '${v}'`);
}

/** The baseline for inputs x: a number or a tensor (the caller disposes a tensor it gets). */
export function baselineOf(b: BaselineSpec, x: Tensor): number | Tensor {
  if (b.kind === 'number') return b.value;
  if (b.kind === 'blur') {
    // The 'blur' baseline: Gaussian, sigma min(H, W) / 8 pixels (at least 1), border renormalised.
    return ex.gaussianBlur(x, Math.max(1, Math.min(x.shape[2], x.shape[3]) / 8));
  }
  return bl.tensor(b.data, b.shape);
}

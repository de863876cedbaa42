// The explanations the app shows, one card each, as a table shared with the browser test (which
// runs the same entries in Node on the float64 CPU backend and compares). Every entry calls the
// library's explainer (the public explain entry, browser-safe): the app adds no attribution code.
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import {
  COMPOSITES, grid, gradCam, gradCamPlusPlus, integratedGradients, kernelShap, lrp, occlusion, saliency,
  type Model, type Progress, type RulesOption,
} from '../../explain/index.ts';

export type Family = 'gradient' | 'cam' | 'lrp' | 'perturbation';

/** The backward-rule choices of the rule picker: the exact gradient, two ReLU rules, or an LRP composite. */
export const RULE_CHOICES = ['default', 'guided', 'deconvnet', ...Object.keys(COMPOSITES)] as const;
export const LRP_COMPOSITES = Object.keys(COMPOSITES);

/** The `rules` option of the gradient explainers for a rule-picker choice. */
export function rulesFor(choice: string): RulesOption | undefined {
  if (choice === 'default') return undefined;
  // Keyed by op name: every ReLU (layers.ReLU, ONNX Relu, bl.relu) records the engine's relu op.
  if (choice === 'guided') return { relu: bl.guidedRelu };
  if (choice === 'deconvnet') return { relu: bl.deconvRelu };
  if (choice in COMPOSITES) return choice; // a registered composite's name
  throw new Error(`unknown backward rule '${choice}' (choices: ${RULE_CHOICES.join(', ')})`);
}

/** What one explanation run needs besides the model and the input. */
export interface RunSettings {
  /** The class explained (one item). */
  target: number;
  /** The layer CAM methods read. */
  camLayer: string;
  /** Rule picker choice, applied to the gradient and CAM methods. */
  rule: string;
  /** LRP's composite. */
  composite: string;
  /** Integrated gradients' steps. */
  igSteps: number;
  /** KernelSHAP's model evaluations. */
  shapSamples: number;
  onProgress?: (p: Progress) => void;
}

export interface MethodSpec {
  id: string;
  label: string;
  family: Family;
  /** Whether the rule picker applies. */
  usesRules: boolean;
  /** How the map is shown: 'signed' (blue negative, red positive) or 'positive' (jet, 0 to max). */
  sign: 'signed' | 'positive';
  /** One line under the map: what it shows. */
  caption(item: readonly number[], s: RunSettings): string;
  run(model: Model, x: Tensor, s: RunSettings): Promise<Tensor>;
}

/** Occlusion window and KernelSHAP cell: a quarter of the side, so 16 windows / features on any image. */
export const patchSize = (item: readonly number[]) => Math.max(1, Math.round(Math.min(item[1], item[2]) / 4));

export const METHODS: MethodSpec[] = [
  {
    id: 'saliency', label: 'Saliency', family: 'gradient', usesRules: true, sign: 'positive',
    caption: (_i, s) => `|d score / d input|, backward rule: ${s.rule}`,
    run: (m, x, s) => saliency(m, x, { target: s.target, rules: rulesFor(s.rule) }),
  },
  {
    id: 'integrated-gradients', label: 'Integrated gradients', family: 'gradient', usesRules: true, sign: 'signed',
    caption: (_i, s) => `signed, black baseline, ${s.igSteps} steps, backward rule: ${s.rule}`,
    run: (m, x, s) => integratedGradients(m, x, { target: s.target, steps: s.igSteps, baseline: 0, rules: rulesFor(s.rule) }) as Promise<Tensor>,
  },
  {
    id: 'grad-cam', label: 'Grad-CAM', family: 'cam', usesRules: true, sign: 'positive',
    caption: (_i, s) => `layer ${s.camLayer}, upsampled (bilinear), backward rule: ${s.rule}`,
    run: (m, x, s) => gradCam(m, x, { target: s.target, layer: s.camLayer, upsample: true, rules: rulesFor(s.rule) }),
  },
  {
    id: 'grad-cam-plus-plus', label: 'Grad-CAM++', family: 'cam', usesRules: true, sign: 'positive',
    caption: (_i, s) => `layer ${s.camLayer}, exact higher derivatives, upsampled, backward rule: ${s.rule}`,
    run: (m, x, s) => gradCamPlusPlus(m, x, { target: s.target, layer: s.camLayer, upsample: true, rules: rulesFor(s.rule) }),
  },
  {
    id: 'lrp', label: 'LRP', family: 'lrp', usesRules: false, sign: 'signed',
    caption: (_i, s) => `signed relevance, composite ${s.composite}, BatchNorm folded`,
    run: (m, x, s) => lrp(m, x, { target: s.target, composite: s.composite }) as Promise<Tensor>,
  },
  {
    id: 'occlusion', label: 'Occlusion', family: 'perturbation', usesRules: false, sign: 'signed',
    caption: (i) => `score drop when a ${patchSize(i)}x${patchSize(i)} patch is blacked out (stride ${Math.max(1, patchSize(i) >> 1)})`,
    run: (m, x, s) => {
      const w = patchSize(x.shape.slice(1));
      return occlusion(m, x, { target: s.target, window: w, stride: Math.max(1, w >> 1), baseline: 0, onProgress: s.onProgress });
    },
  },
  {
    id: 'kernel-shap', label: 'KernelSHAP', family: 'perturbation', usesRules: false, sign: 'signed',
    caption: (i, s) => `Shapley values of ${patchSize(i)}x${patchSize(i)} cells, black reference, ${s.shapSamples} samples (seed 0)`,
    run: (m, x, s) => kernelShap(m, x, { target: s.target, features: grid(patchSize(x.shape.slice(1))), baseline: 0, samples: s.shapSamples, seed: 0, onProgress: s.onProgress }),
  },
];

export function methodById(id: string): MethodSpec {
  const m = METHODS.find((k) => k.id === id);
  if (!m) throw new Error(`unknown method '${id}' (methods: ${METHODS.map((k) => k.id).join(', ')})`);
  return m;
}

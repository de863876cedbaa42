// LRP rules (Bach et al. 2015, "On pixel-wise explanations ... by layer-wise relevance
// propagation"; Montavon et al. 2019, "Layer-wise relevance propagation: an overview"), each a
// backward rule value for a layer kind or path. The cotangent a rule receives is the relevance at
// the layer's output; it returns the relevance at the layer's inputs (none for its parameters).
//
// Every rule here is one shape (the modified-gradient formulation, which Zennit also uses): for a
// few "terms" k, re-run the layer with modified inputs x_k and parameters theta_k, z_k = f(x_k;
// theta_k); map the output relevance R to a cotangent c_k = g_k(R, z_1..z_K); pull it back,
// G_k = J_k^T c_k; and combine R_in = sum_k a_k * x_k * G_k. All steps are differentiable tensor
// ops (the re-runs are recorded), so the relevance can itself be differentiated.
// `stabilizer` is the eps of z + eps sign(z) in each rule's denominators (Zennit's 1e-6).
import * as bl from '../../engine/index.ts';
import type { Rule, RuleContext, Tensor } from '../../engine/index.ts';

/** Parameter names the weight modifiers act on (others, e.g. BatchNorm statistics, stay). */
const WEIGHTS = new Set(['weight', 'bias']);

/** How one term modifies a layer's parameters: a function of (param, name); null zeroes it. */
type ParamMod = (p: Tensor, name: string) => Tensor | null;

interface Term {
  /** The input modifier (x^+, x^-, ones, a bound). */
  input: (x: Tensor) => Tensor;
  /** The parameter modifier ('weight' and 'bias' only); absent: unchanged. */
  params?: ParamMod;
  /** The layer's own output is all this term needs (no re-run, no pull-back): gamma's sign test. */
  outputOnly?: boolean;
}

interface BasicRuleSpec {
  terms: Term[];
  /** The cotangent of each term's output, from the output relevance and every term's output. */
  cotangents: (R: Tensor, z: Tensor[]) => (Tensor | null)[];
  /** The relevance of one data input from its modified values x_k and pulled-back G_k. */
  combine: (x: Tensor[], g: (Tensor | null)[]) => Tensor;
}

/** z + eps * sign(z), with sign(0) = +1: keeps the division away from 0 (Zennit's stabiliser). */
export function stabilize(z: Tensor, eps = 1e-6): Tensor {
  return bl.add(z, bl.mul(bl.where(bl.greaterEqual(z, 0), 1, -1), eps));
}

const pos = (t: Tensor) => bl.maximum(t, 0);
const neg = (t: Tensor) => bl.minimum(t, 0);
const same = (t: Tensor) => t;
const ones = (t: Tensor) => bl.onesLike(t);
/** A modifier of the weights only; the bias is zeroed (where a term must not count it twice). */
const noBias = (m: (p: Tensor) => Tensor): ParamMod => (p, name) => (name === 'bias' ? null : m(p));
const withBias = (m: (p: Tensor) => Tensor): ParamMod => (p) => m(p);

function layerOf(rule: string, ctx: RuleContext) {
  if (!ctx.layer) {
    throw new Error(`LRP rule '${rule}' is attached to the op '${ctx.name}': LRP rules belong to layers; key it by a layer kind ('Conv2d', 'Linear') or path ('features.3')`);
  }
  return ctx.layer;
}

function modifiedParams(params: Readonly<Record<string, Tensor>>, mod: ParamMod | undefined): Record<string, Tensor | null> {
  const out: Record<string, Tensor | null> = {};
  if (!mod) return out;
  for (const [name, p] of Object.entries(params)) if (WEIGHTS.has(name)) out[name] = mod(p, name);
  return out;
}

/** A rule from its terms (the common machinery of every rule below). */
export function basicRule(name: string, spec: BasicRuleSpec): Rule {
  return (R, ctx) => {
    const L = layerOf(name, ctx);
    const xs = spec.terms.map((t) => (t.outputOnly ? L.inputs : L.inputs.map((x) => t.input(x))));
    const pulls = spec.terms.map((t, k) => (t.outputOnly ? null : bl.vjp((...ins: Tensor[]) => L.forward(ins, modifiedParams(L.params, t.params)), ...xs[k])));
    try {
      const cts = spec.cotangents(R, pulls.map((p) => (p ? p.value : ctx.output)));
      const gs = pulls.map((p, k) => (p && cts[k] ? p.vjp(cts[k]!) : null));
      const rel = L.inputs.map((_, i) => spec.combine(xs.map((xk) => xk[i]), gs.map((g) => (g ? g[i] : null))));
      return [...rel, ...Object.keys(L.params).map(() => null)];
    } finally {
      for (const p of pulls) p?.dispose();
    }
  };
}

const sumOf = (ts: Tensor[]) => ts.reduce((a, b) => bl.add(a, b));
const term = (x: Tensor, g: Tensor | null) => (g ? bl.mul(x, g) : bl.zerosLike(x));

/**
 * LRP-epsilon (Bach et al. 2015): R_i = x_i sum_j w_ji R_j / (z_j + eps sign(z_j)). eps = 0 is
 * LRP-0. The same formula on a parameter-free layer (average pooling, a residual sum) splits the
 * relevance in proportion to each input's contribution. Zennit's default eps: 1e-6.
 */
export function epsilon(eps = 1e-6): Rule {
  if (!(eps >= 0)) throw new Error(`epsilon rule: eps must be >= 0, got ${eps}`);
  return basicRule('epsilon', {
    terms: [{ input: same }],
    cotangents: (R, [z]) => [bl.div(R, stabilize(z, eps))],
    combine: ([x], [g]) => term(x, g),
  });
}

/**
 * The norm rule (Zennit's Norm) for parameter-free sums and averages (AvgPool2d, GlobalAvgPool,
 * ResidualSum): relevance split by each input's share of the output; epsilon with eps = 1e-6 as a
 * stabiliser only.
 */
export function norm(stabilizer = 1e-6): Rule {
  return epsilon(stabilizer);
}

/**
 * LRP-gamma (Montavon et al. 2019), in the generalised form for inputs of either sign (Andeol et
 * al. 2021, as Zennit): positive outputs are explained by contributions with gamma-boosted
 * positive parts (w + gamma w+ on x+, w + gamma w- on x-), negative outputs by the negative ones.
 * For non-negative inputs it is the original z_ij = x_i (w_ij + gamma w_ij^+). Default 0.25.
 */
export function gamma(g = 0.25, stabilizer = 1e-6): Rule {
  if (!(g >= 0)) throw new Error(`gamma rule: gamma must be >= 0, got ${g}`);
  const boostPos = (p: Tensor) => bl.add(p, bl.mul(pos(p), g));
  const boostNeg = (p: Tensor) => bl.add(p, bl.mul(neg(p), g));
  return basicRule('gamma', {
    terms: [
      { input: pos, params: withBias(boostPos) },
      { input: neg, params: noBias(boostNeg) },
      { input: pos, params: withBias(boostNeg) },
      { input: neg, params: noBias(boostPos) },
      { input: same, outputOnly: true },
    ],
    cotangents: (R, [z0, z1, z2, z3, y]) => {
      const up = bl.mul(bl.greater(y, 0), bl.div(R, stabilize(bl.add(z0, z1), stabilizer)));
      const down = bl.mul(bl.less(y, 0), bl.div(R, stabilize(bl.add(z2, z3), stabilizer)));
      return [up, up, down, down, null];
    },
    combine: (x, g) => sumOf([0, 1, 2, 3].map((k) => term(x[k], g[k]))),
  });
}

/**
 * LRP-alpha-beta (Bach et al. 2015): positive contributions (w+ x+ and w- x-) weighted by alpha,
 * negative ones (w- x+ and w+ x-) by beta, each normalised by its own total; alpha - beta = 1
 * keeps the relevance conserved. alpha = 1, beta = 0 is z-plus. Default 2, 1.
 */
export function alphaBeta(alpha = 2, beta = 1, stabilizer = 1e-6): Rule {
  if (!(alpha >= 0 && beta >= 0) || Math.abs(alpha - beta - 1) > 1e-12) {
    throw new Error(`alpha-beta rule: alpha and beta must be >= 0 with alpha - beta = 1, got alpha ${alpha}, beta ${beta}`);
  }
  if (beta === 0) {
    // z+ (alpha 1): only the positive contributions
    return basicRule('alpha-beta', {
      terms: [
        { input: pos, params: withBias(pos) },
        { input: neg, params: noBias(neg) },
      ],
      cotangents: (R, [z0, z1]) => {
        const p = bl.div(R, stabilize(bl.add(z0, z1), stabilizer));
        return [p, p];
      },
      combine: (x, g) => bl.mul(bl.add(term(x[0], g[0]), term(x[1], g[1])), alpha),
    });
  }
  return basicRule('alpha-beta', {
    terms: [
      { input: pos, params: withBias(pos) },
      { input: neg, params: noBias(neg) },
      { input: pos, params: withBias(neg) },
      { input: neg, params: noBias(pos) },
    ],
    cotangents: (R, [z0, z1, z2, z3]) => {
      const p = bl.div(R, stabilize(bl.add(z0, z1), stabilizer));
      const n = bl.div(R, stabilize(bl.add(z2, z3), stabilizer));
      return [p, p, n, n];
    },
    combine: (x, g) => bl.sub(bl.mul(bl.add(term(x[0], g[0]), term(x[1], g[1])), alpha), bl.mul(bl.add(term(x[2], g[2]), term(x[3], g[3])), beta)),
  });
}

/**
 * LRP-z+ (Bach et al. 2015; Montavon et al. 2017, deep Taylor decomposition): only positive
 * contributions, z_ij = w+_ij x+_i + w-_ij x-_i; alpha-beta with alpha 1, beta 0.
 */
export function zPlus(stabilizer = 1e-6): Rule {
  return alphaBeta(1, 0, stabilizer);
}

/** A bound as a tensor broadcast to x: a number, or a tensor broadcastable to one item (per-channel [1, C, 1, 1]). */
function boundLike(what: string, b: number | Tensor, x: Tensor): Tensor {
  if (typeof b === 'number') return bl.fullLike(x, b);
  try {
    return bl.broadcastTo(b.rank < x.rank ? bl.reshape(b, [...Array(x.rank - b.rank).fill(1), ...b.shape]) : b, x.shape);
  } catch {
    throw new Error(`z-box rule: the ${what} bound of shape [${b.shape.join(', ')}] does not broadcast to the input [${x.shape.join(', ')}]`);
  }
}

/**
 * LRP-z^B (Montavon et al. 2017, deep Taylor decomposition for bounded inputs), for the first
 * layer when inputs lie in [low, high]: z_ij = x_i w_ij - l_i w+_ij - h_i w-_ij.
 * Bounds are numbers or tensors broadcastable to one input item (e.g. per channel).
 */
export function zBox(low: number | Tensor, high: number | Tensor, stabilizer = 1e-6): Rule {
  for (const [n, b] of [['low', low], ['high', high]] as const) {
    if (typeof b === 'number' ? !Number.isFinite(b) : !(b instanceof bl.Tensor)) throw new Error(`z-box rule: ${n} must be a finite number or a Tensor, got ${String(b)}`);
  }
  if (typeof low === 'number' && typeof high === 'number' && !(low <= high)) throw new Error(`z-box rule: low (${low}) must not exceed high (${high})`);
  return basicRule('z-box', {
    terms: [
      { input: same },
      { input: (x) => boundLike('low', low, x), params: withBias(pos) },
      { input: (x) => boundLike('high', high, x), params: withBias(neg) },
    ],
    cotangents: (R, [z, zl, zh]) => {
      const c = bl.div(R, stabilize(bl.sub(bl.sub(z, zl), zh), stabilizer));
      return [c, c, c];
    },
    combine: ([x, l, h], [g0, g1, g2]) => bl.sub(bl.sub(term(x, g0), term(l, g1)), term(h, g2)),
  });
}

/**
 * LRP-w^2 (Montavon et al. 2017) for unbounded first-layer inputs: relevance spread by squared
 * weights, independent of the input's values: R_i = sum_j w_ij^2 / sum_i' w_i'j^2 R_j.
 */
export function wSquare(): Rule {
  return basicRule('w-square', {
    terms: [{ input: ones, params: withBias((p) => bl.mul(p, p)) }],
    cotangents: (R, [z]) => [bl.div(R, stabilize(z))],
    combine: ([x], [g]) => g ?? bl.zerosLike(x),
  });
}

/**
 * The flat rule (Lapuschkin et al. 2019, "Unmasking Clever Hans predictors"): relevance spread
 * uniformly over each output's receptive field, as if inputs and weights were all ones.
 */
export function flat(): Rule {
  return basicRule('flat', {
    terms: [{ input: ones, params: noBias(ones) }],
    cotangents: (R, [z]) => [bl.div(R, stabilize(z))],
    combine: ([x], [g]) => g ?? bl.zerosLike(x),
  });
}

/**
 * Pass the relevance through unchanged (reshaped to the input): for activations, dropout,
 * flattening and input standardisation, which LRP treats as not redistributing relevance.
 */
export const pass: Rule = (R, ctx) => {
  const x = ctx.layer ? ctx.layer.inputs[0] : ctx.inputs[0];
  if (x.size !== R.size) throw new Error(`LRP pass rule on '${ctx.layer?.path || ctx.name}': the input [${x.shape.join(', ')}] and output [${R.shape.join(', ')}] differ in size; pass is for elementwise or reshaping layers`);
  const r = R.shape.join() === x.shape.join() ? R : bl.reshape(R, x.shape);
  return ctx.inputs.map((_, i) => (i === 0 ? r : null));
};

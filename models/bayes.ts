// Bayes by backprop (Blundell, Cornebise, Kavukcuoglu & Wierstra 2015, "Weight uncertainty in
// neural networks", ICML): each weight has a Gaussian variational posterior q(w) = N(mu, sigma^2)
// with sigma = softplus(rho) (always positive, rho unconstrained); a forward pass samples
// w = mu + sigma * eps, eps ~ N(0, 1) (the reparameterisation trick: the sample is a
// differentiable function of mu and rho, so backprop trains them), and training minimises the
// ELBO's negative, NLL + KL(q || p) / datasetSize per minibatch-averaged example, with a Gaussian
// prior p(w) = N(0, priorSigma^2) whose KL has a closed form:
//   KL = sum_i [ log(priorSigma / sigma_i) + (sigma_i^2 + mu_i^2) / (2 priorSigma^2) - 1/2 ].
// (The paper's scale-mixture prior has no closed form; a single Gaussian keeps the KL exact.)
// One weight sample per forward call, shared by the batch, as in the paper. The noise is seeded
// Philox (bl.randn(shape, { seed })): each call uses seed + 1000003 * calls (like Dropout), or a
// fixed `noiseSeed` when set (the same sample on every call: finite differences, replays).
// Prediction: average the softmax of S sampled forwards (explain/uncertainty bayesPredictive).
import * as bl from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import { fmtShape } from '../engine/shape.ts';
import { Module } from './module.ts';
import { crossEntropy } from './losses.ts';
import type { Conv2dLayerOptions } from './layers.ts';

export interface BayesOptions {
  /** Standard deviation of the N(0, priorSigma^2) prior on every weight and bias (default 1). */
  priorSigma?: number;
  /** Initial rho of every weight (default -5: sigma = softplus(-5) = 0.0067, near-deterministic at first). */
  initRho?: number;
  /** Seed of the weight noise (default 1234) and of the initial means. */
  seed?: number;
  bias?: boolean;
}

let layerCounter = 0;

/** What BayesLinear and BayesConv2d share: (mu, rho) pairs, the noise, the KL. */
abstract class BayesLayer extends Module {
  readonly priorSigma: number;
  readonly seed: number;
  /** Draw weights from q (default true); false uses the means (the posterior's mode). */
  sampling = true;
  /** When set, every forward uses this noise seed (the same weight sample each call). */
  noiseSeed: number | null = null;
  private calls = 0;
  protected readonly names: string[] = [];

  constructor(kind: string, opts: BayesOptions) {
    super();
    this.priorSigma = opts.priorSigma ?? 1;
    if (!(this.priorSigma > 0 && Number.isFinite(this.priorSigma))) throw new Error(`${kind}: priorSigma must be a finite number > 0, got ${opts.priorSigma}`);
    this.seed = opts.seed ?? 1234 + 7919 * layerCounter++;
    if (!Number.isInteger(this.seed) || this.seed < 0) throw new Error(`${kind}: seed must be a non-negative integer, got ${opts.seed}`);
    const rho = opts.initRho ?? -5;
    if (!Number.isFinite(rho)) throw new Error(`${kind}: initRho must be finite, got ${opts.initRho}`);
  }

  /** Add the pair name_mu (U(-bound, bound), PyTorch's default init) and name_rho (constant). */
  protected addGaussian(name: string, shape: number[], bound: number, rho: number): void {
    const k = this.names.length;
    this.addParam(`${name}_mu`, bl.tidy(() => bl.mul(bl.sub(bl.rand(shape, { seed: this.seed * 31 + 17 + k }), 0.5), 2 * bound)));
    this.addParam(`${name}_rho`, bl.full(shape, rho));
    this.names.push(name);
  }

  /** sigma = softplus(rho) of a parameter pair. */
  sigma(name: string): Tensor {
    return bl.softplus(this.param(`${name}_rho`));
  }

  /** The noise seed the next forward call will use (and advance to). */
  protected nextNoiseSeed(): number {
    return this.noiseSeed ?? this.seed + 1000003 * this.calls++;
  }

  /** The weights of this call: mu + softplus(rho) * eps for each pair (or the means). */
  protected sampleWeights(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    if (!this.sampling) {
      for (const n of this.names) out[n] = this.param(`${n}_mu`);
      return out;
    }
    const base = this.nextNoiseSeed();
    this.names.forEach((n, k) => {
      const mu = this.param(`${n}_mu`);
      const eps = bl.randn(mu.shape, { seed: base + k * 7 + 1, backend: mu.backend });
      out[n] = bl.add(mu, bl.mul(bl.softplus(this.param(`${n}_rho`)), eps));
    });
    return out;
  }

  /** The noise eps of parameter `name` for a given noise seed (what a forward with noiseSeed = seed draws). */
  noiseFor(name: string, seed: number): Tensor {
    const k = this.names.indexOf(name);
    if (k < 0) throw new Error(`${this.kind} '${this.path}': no Gaussian parameter '${name}' (has ${this.names.join(', ')})`);
    const mu = this.param(`${name}_mu`);
    return bl.randn(mu.shape, { seed: seed + k * 7 + 1, backend: mu.backend });
  }

  /** KL(q || p) of this layer's weights (and bias) against the N(0, priorSigma^2) prior: a differentiable scalar. */
  klDivergence(): Tensor {
    return bl.tidy(() => {
      const s2p = this.priorSigma * this.priorSigma;
      const terms = this.names.map((n) => {
        const mu = this.param(`${n}_mu`);
        const sigma = bl.softplus(this.param(`${n}_rho`));
        // log(sp / s) + (s^2 + mu^2) / (2 sp^2) - 1/2
        const t = bl.add(bl.sub(Math.log(this.priorSigma), bl.log(sigma)), bl.sub(bl.div(bl.add(bl.mul(sigma, sigma), bl.mul(mu, mu)), 2 * s2p), 0.5));
        return bl.sum(t);
      });
      return terms.reduce((a, b) => bl.add(a, b));
    });
  }
}

export class BayesLinear extends BayesLayer {
  get kind() {
    return 'BayesLinear';
  }
  readonly hasBias: boolean;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: BayesOptions = {},
  ) {
    super('BayesLinear', opts);
    if (!(Number.isInteger(inFeatures) && inFeatures > 0 && Number.isInteger(outFeatures) && outFeatures > 0)) {
      throw new Error(`BayesLinear: inFeatures and outFeatures must be positive integers, got ${inFeatures}, ${outFeatures}`);
    }
    const b = 1 / Math.sqrt(inFeatures);
    const rho = opts.initRho ?? -5;
    this.addGaussian('weight', [outFeatures, inFeatures], b, rho);
    this.hasBias = opts.bias ?? true;
    if (this.hasBias) this.addGaussian('bias', [outFeatures], b, rho);
  }
  forward(x: Tensor): Tensor {
    if (x.rank < 1 || x.shape[x.rank - 1] !== this.inFeatures) {
      throw new Error(`BayesLinear '${this.path}': expected ${this.inFeatures} input features on the last axis, got ${fmtShape(x.shape)}`);
    }
    return bl.tidy(() => {
      const w = this.sampleWeights();
      return bl.linear(x, w.weight, w.bias);
    });
  }
}

export class BayesConv2d extends BayesLayer {
  get kind() {
    return 'BayesConv2d';
  }
  readonly convOpts: Omit<Conv2dLayerOptions, 'bias'>;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernel: number | [number, number],
    opts: Omit<Conv2dLayerOptions, 'bias'> & BayesOptions = {},
  ) {
    super('BayesConv2d', opts);
    const { priorSigma: _p, initRho, seed: _s, bias, ...conv } = opts;
    this.convOpts = conv;
    const [kh, kw] = typeof kernel === 'number' ? [kernel, kernel] : kernel;
    const groups = conv.groups ?? 1;
    if (inChannels % groups !== 0) throw new Error(`BayesConv2d: inChannels ${inChannels} is not divisible by groups ${groups}`);
    const fanIn = (inChannels / groups) * kh * kw;
    const b = 1 / Math.sqrt(fanIn);
    this.addGaussian('weight', [outChannels, inChannels / groups, kh, kw], b, initRho ?? -5);
    if (bias ?? true) this.addGaussian('bias', [outChannels], b, initRho ?? -5);
  }
  forward(x: Tensor): Tensor {
    if (x.rank !== 4 || x.shape[1] !== this.inChannels) {
      throw new Error(`BayesConv2d '${this.path}': expected input of rank 4 with ${this.inChannels} channels on axis 1, got ${fmtShape(x.shape)}`);
    }
    return bl.tidy(() => {
      const w = this.sampleWeights();
      return bl.conv2d(x, w.weight, { ...this.convOpts, bias: w.bias });
    });
  }
}

/** The Bayesian layers of a model, with their paths. */
export function bayesLayers(model: Module): [string, BayesLinear | BayesConv2d][] {
  return model.namedModules().filter((e): e is [string, BayesLinear | BayesConv2d] => e[1] instanceof BayesLinear || e[1] instanceof BayesConv2d);
}

/** Sum of the KL divergences of every Bayesian layer in the model (a differentiable scalar). */
export function klDivergence(model: Module): Tensor {
  const ls = bayesLayers(model);
  if (ls.length === 0) {
    throw new Error(`klDivergence: the model has no BayesLinear or BayesConv2d layer (layers: ${model.namedModules().filter(([p]) => p).map(([p, m]) => `${p} (${m.kind})`).join(', ') || model.kind})`);
  }
  return bl.tidy(() => ls.map(([, l]) => l.klDivergence()).reduce((a, b) => bl.add(a, b)));
}

export interface ElboOptions {
  /** Number of training examples: the KL is spread over them (Blundell et al. eq. 8 with minibatches of mean NLL). */
  datasetSize: number;
  /** Multiplies the KL term (default 1; < 1 "KL annealing"/cold posteriors). */
  klWeight?: number;
}

/**
 * The negative ELBO per example: mean softmax cross-entropy of logits [N, C] against labels [N]
 * (or [N, C] probabilities) + klWeight * KL(q || p) / datasetSize. Use as fit's loss:
 *   fit(net, data, { loss: (out, y) => elboLoss(net, out, y, { datasetSize: data.n }), ... })
 */
export function elboLoss(model: Module, logits: Tensor, labels: Tensor, opts: ElboOptions): Tensor {
  const n = opts?.datasetSize;
  if (!(typeof n === 'number' && Number.isInteger(n) && n > 0)) throw new Error(`elboLoss: datasetSize must be a positive integer (the number of training examples), got ${String(n)}`);
  const w = opts.klWeight ?? 1;
  if (!(w >= 0 && Number.isFinite(w))) throw new Error(`elboLoss: klWeight must be a finite number >= 0, got ${w}`);
  return bl.tidy(() => bl.add(crossEntropy(logits, labels), bl.mul(klDivergence(model), w / n)));
}

// The bundled models' architectures. Layers live in named Sequentials so that their paths read
// 'features.3', 'classifier.0' (what `--layer` and valueAndGradAt take), and the image models end
// in features -> global average pooling -> Linear, the layout CAM needs. Builders are seeded:
// the same seed gives the same initial weights.
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { Module } from '../module.ts';
import {
  BatchNorm2d, Conv2d, Dropout, Flatten, GlobalAvgPool, Linear, MaxPool2d, ReLU, setInitSeed,
} from '../layers.ts';
import { Residual, Sequential } from '../containers.ts';

/**
 * Per-feature standardisation inside the model, (x - mean) / std over the last axis, so that a
 * tabular model takes raw features. `mean` and `std` are buffers (saved with the weights), set
 * from the training split.
 */
export class Standardize extends Module {
  get kind() {
    return 'Standardize';
  }
  constructor(readonly numFeatures: number) {
    super();
    this.addBuffer('mean', bl.zeros([numFeatures]));
    this.addBuffer('std', bl.ones([numFeatures]));
  }
  forward(x: Tensor): Tensor {
    if (x.rank < 1 || x.shape[x.rank - 1] !== this.numFeatures) {
      throw new Error(`Standardize '${this.path}': expected ${this.numFeatures} features on the last axis, got [${x.shape.join(', ')}]`);
    }
    return bl.tidy(() => bl.div(bl.sub(x, this.buffer('mean')), this.buffer('std')));
  }
  /** Set the statistics (e.g. from fitStandardizer on the training split). */
  setStats(mean: ArrayLike<number>, std: ArrayLike<number>): void {
    this.setTensor('mean', bl.tensor(Array.from(mean), [this.numFeatures]));
    this.setTensor('std', bl.tensor(Array.from(std), [this.numFeatures]));
  }
}

/**
 * He (Kaiming) normal initialisation of every conv and linear weight, N(0, 2 / fan_in), with zero
 * biases (PyTorch's kaiming_normal_(nonlinearity='relu')). Without BatchNorm, PyTorch's default
 * uniform(+-1/sqrt(fan_in)) shrinks the signal layer by layer and these small GAP networks sat
 * near chance for the first epochs.
 */
export function kaimingInit<M extends Module>(model: M, seed: number): M {
  let k = 0;
  for (const [name, t] of model.namedParameters()) {
    const mod = model.module(name.slice(0, name.lastIndexOf('.')));
    if (!(mod instanceof Conv2d || mod instanceof Linear)) continue;
    if (name.endsWith('.weight')) {
      const fanIn = t.shape.slice(1).reduce((a, b) => a * b, 1);
      model.setTensor(name, bl.tidy(() => bl.mul(bl.randn(t.shape, { seed: seed * 1009 + k++ }), Math.sqrt(2 / fanIn))));
    } else if (name.endsWith('.bias')) {
      model.setTensor(name, bl.zeros(t.shape));
    }
  }
  return model;
}

const conv3 = (cin: number, cout: number, opts: { stride?: number; bias?: boolean } = {}) =>
  new Conv2d(cin, cout, 3, { padding: 1, stride: opts.stride ?? 1, bias: opts.bias ?? true });
const pool2 = () => new MaxPool2d({ kernel: 2, stride: 2 });
/** conv3x3 (no bias) -> BatchNorm2d: the pair that BatchNorm canonizers fold. */
const convBn = (cin: number, cout: number, stride = 1): [Module, Module] => [conv3(cin, cout, { stride, bias: false }), new BatchNorm2d(cout)];

/**
 * digits-cnn, for [1, 8, 8] digits (no BatchNorm: the plain conv/ReLU/pool/linear net for LRP):
 *   features: 0 conv 1->8, 1 relu, 2 conv 8->16, 3 relu, 4 maxpool 2 (4x4), 5 conv 16->32, 6 relu
 *   pool (GAP) -> classifier (Linear 32 -> 10); He-initialised.
 */
export function digitsCnn(seed = 0): Sequential {
  setInitSeed(seed + 1);
  const model = new Sequential(
    ['features', new Sequential(conv3(1, 8), new ReLU(), conv3(8, 16), new ReLU(), pool2(), conv3(16, 32), new ReLU())],
    ['pool', new GlobalAvgPool()],
    ['classifier', new Linear(32, 10)],
  );
  return kaimingInit(model, seed);
}

/**
 * A small CNN for [channels, 32, 32] images (shapes-cnn, spurious-cnn), widths [a, b, c]:
 *   features: 0 conv c->a, 1 bn, 2 relu, 3 maxpool (16x16),
 *             4 conv a->b, 5 bn, 6 relu, 7 maxpool (8x8),
 *             8 conv b->c, 9 bn, 10 relu (8x8 maps: the CAM layer)
 *   pool (GAP) -> classifier (Linear c -> classes)
 * BatchNorm is what makes it learn in a few epochs (without it, at this size, it sat at chance
 * for several epochs); convs before a BatchNorm have no bias.
 */
export function smallCnn(channels: number, classes: number, seed = 0, widths: [number, number, number] = [8, 8, 16]): Sequential {
  setInitSeed(seed + 1);
  const [a, b, c] = widths;
  return new Sequential(
    ['features', new Sequential(
      ...convBn(channels, a), new ReLU(), pool2(),
      ...convBn(a, b), new ReLU(), pool2(),
      ...convBn(b, c), new ReLU(),
    )],
    ['pool', new GlobalAvgPool()],
    ['classifier', new Linear(c, classes)],
  );
}

/**
 * breast-cancer-mlp, for 30 raw features:
 *   standardize -> features: 0 linear 30->16, 1 relu, 2 dropout 0.2, 3 linear 16->16, 4 relu
 *   -> classifier (Linear 16 -> 2)
 * The dropout makes MC-dropout uncertainty available (Dropout.mcDropout).
 */
export function breastCancerMlp(seed = 0): Sequential {
  setInitSeed(seed + 1);
  return new Sequential(
    ['standardize', new Standardize(30)],
    ['features', new Sequential(new Linear(30, 16), new ReLU(), new Dropout(0.2, 1000 + seed), new Linear(16, 16), new ReLU())],
    ['classifier', new Linear(16, 2)],
  );
}

/**
 * resnet-bn, a small residual CNN with BatchNorm2d for [1, 8, 8] digits:
 *   features: 0 conv 1->8, 1 bn, 2 relu,
 *             3 residual(block: 0 conv 8->8, 1 bn, 2 relu, 3 conv 8->8, 4 bn; identity shortcut), 4 relu,
 *             5 residual(block: 0 conv 8->16 stride 2, 1 bn, 2 relu, 3 conv 16->16, 4 bn;
 *                        shortcut: 0 conv1x1 8->16 stride 2, 1 bn), 6 relu  (4x4 maps)
 *   pool (GAP) -> classifier (Linear 16 -> 10)
 */
export function resnetBn(seed = 0): Sequential {
  setInitSeed(seed + 1);
  const block = (cin: number, cout: number, stride: number) =>
    new Sequential(...convBn(cin, cout, stride), new ReLU(), ...convBn(cout, cout));
  return new Sequential(
    ['features', new Sequential(
      ...convBn(1, 8), new ReLU(),
      new Residual(block(8, 8, 1)), new ReLU(),
      new Residual(block(8, 16, 2), new Sequential(new Conv2d(8, 16, 1, { stride: 2, bias: false }), new BatchNorm2d(16))), new ReLU(),
    )],
    ['pool', new GlobalAvgPool()],
    ['classifier', new Linear(16, 10)],
  );
}

/**
 * A prototype (nearest-neighbour attention) classifier, interpretable by design: an embedding
 * network maps x to z [N, D]; the attention over P learned prototypes p_j [P, D] is
 *   a = softmax_j(-||z - p_j||² / T)   (similarity 'euclidean')   or   softmax_j(z·p_j / T) ('dot'),
 * and the class probabilities are the attention-weighted average of the prototypes' label
 * distributions, q = a L (L [P, C]: fixed one-hot rows, the buffer `labels`, or learned: softmax of
 * the parameter `label_logits`). The output is log q, so crossEntropy and argmax treat it as logits
 * (softmax(log q) = q). explain/prototypes explains a prediction by the prototypes it attended to.
 */
export class PrototypeClassifier extends Module {
  get kind() {
    return 'PrototypeClassifier';
  }
  readonly numPrototypes: number;
  readonly numClasses: number;
  readonly temperature: number;
  readonly similarity: 'euclidean' | 'dot';
  readonly learnLabels: boolean;
  constructor(
    embedding: Module,
    opts: {
      dim: number; classes: number; numPrototypes: number;
      /** Class of each fixed one-hot prototype (default j mod classes). */
      prototypeClasses?: number[];
      temperature?: number; similarity?: 'euclidean' | 'dot'; learnLabels?: boolean; seed?: number;
    },
  ) {
    super();
    const { dim, classes, numPrototypes: p } = opts;
    this.numPrototypes = p;
    this.numClasses = classes;
    this.temperature = opts.temperature ?? 1;
    this.similarity = opts.similarity ?? 'euclidean';
    this.learnLabels = opts.learnLabels ?? false;
    if (!(this.temperature > 0)) throw new Error(`PrototypeClassifier: temperature must be > 0, got ${this.temperature}`);
    this.addChild('embedding', embedding);
    this.addParam('prototypes', bl.tidy(() => bl.randn([p, dim], { seed: (opts.seed ?? 0) * 7919 + 101 })));
    const cls = opts.prototypeClasses ?? Array.from({ length: p }, (_, j) => j % classes);
    if (cls.length !== p || cls.some((c) => !Number.isInteger(c) || c < 0 || c >= classes)) throw new Error(`PrototypeClassifier: prototypeClasses must be ${p} class indices below ${classes}`);
    const oneHot = new Float64Array(p * classes);
    cls.forEach((c, j) => (oneHot[j * classes + c] = 1));
    if (this.learnLabels) this.addParam('label_logits', bl.tensor(oneHot.map((v) => 4 * v), [p, classes]));
    else this.addBuffer('labels', bl.tensor(oneHot, [p, classes]));
  }
  /** The embedding z [N, D] of inputs x. */
  embed(x: Tensor): Tensor {
    return this.namedChildren()[0][1].call(x);
  }
  /** Similarity scores s [N, P] of embeddings z (attention = softmax(s)): -||z - p||² / T or z·p / T. */
  scores(z: Tensor): Tensor {
    return bl.tidy(() => {
      const p = this.param('prototypes');
      const zp = bl.matmul(z, bl.transpose(p, [1, 0]));
      if (this.similarity === 'dot') return bl.div(zp, this.temperature);
      const zz = bl.sum(bl.mul(z, z), 1, { keepDims: true });
      const pp = bl.reshape(bl.sum(bl.mul(p, p), 1), [1, this.numPrototypes]);
      return bl.div(bl.sub(bl.mul(zp, 2), bl.add(zz, pp)), this.temperature);
    });
  }
  /** The prototypes' label distributions L [P, C]. */
  labelDistributions(): Tensor {
    return this.learnLabels ? bl.softmax(this.param('label_logits'), 1) : this.buffer('labels');
  }
  /** Attention over the prototypes [N, P] for inputs x. */
  attention(x: Tensor): Tensor {
    return bl.tidy(() => bl.softmax(this.scores(this.embed(x)), 1));
  }
  forward(x: Tensor): Tensor {
    return bl.tidy(() => {
      const a = bl.softmax(this.scores(this.embed(x)), 1);
      return bl.log(bl.add(bl.matmul(a, this.labelDistributions()), 1e-9));
    });
  }
}

/**
 * prototype-digits, for [1, 8, 8] digits: embedding (Flatten, Linear 64->64, ReLU, Linear 64->16)
 * and 30 prototypes (3 per digit, fixed one-hot labels), squared-distance attention, T = 1.
 */
export function prototypeDigits(seed = 0): PrototypeClassifier {
  setInitSeed(seed + 1);
  const embedding = new Sequential(new Flatten(), new Linear(64, 64), new ReLU(), new Linear(64, 16));
  return new PrototypeClassifier(embedding, { dim: 16, classes: 10, numPrototypes: 30, seed });
}

// The bundled models' architectures. Layers live in named Sequentials so that their paths read
// 'features.3', 'classifier.0' (what `--layer` and valueAndGradAt take), and the image models end
// in features -> global average pooling -> Linear, the layout CAM needs. Builders are seeded:
// the same seed gives the same initial weights.
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { Module } from '../module.ts';
import {
  BatchNorm2d, Conv2d, Dropout, GlobalAvgPool, Linear, MaxPool2d, ReLU, setInitSeed,
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

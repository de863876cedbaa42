// Layers, with PyTorch's parameter names, layouts and default initialisation, so that weights
// move between the two by name (safetensors, ONNX).
import * as bl from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import { fmtShape } from '../engine/shape.ts';
import { Module } from './module.ts';

/** Seeds for weight initialisation: deterministic, one per created tensor, resettable. */
let initSeed = 1;
export function setInitSeed(seed: number): void {
  initSeed = seed;
}
function nextInitSeed(): number {
  return initSeed++ * 7919 + 13;
}

/** U(-bound, bound), PyTorch's default (kaiming_uniform with a = sqrt(5) gives 1/sqrt(fan_in)). */
function uniformInit(shape: number[], bound: number): Tensor {
  return bl.tidy(() => bl.mul(bl.sub(bl.rand(shape, { seed: nextInitSeed() }), 0.5), 2 * bound));
}

function checkInput(layer: Module, x: Tensor, rank: number, channels: number | null, axis = 1): void {
  if (x.rank !== rank || (channels !== null && x.shape[axis] !== channels)) {
    throw new Error(
      `${layer.kind} '${layer.path}': expected input of rank ${rank}${channels !== null ? ` with ${channels} features on axis ${axis}` : ''}, got ${fmtShape(x.shape)}`,
    );
  }
}

export interface Conv2dLayerOptions {
  stride?: number | [number, number];
  padding?: number | [number, number] | [number, number, number, number] | 'same' | 'valid';
  dilation?: number | [number, number];
  groups?: number;
  bias?: boolean;
}

export class Conv2d extends Module {
  get kind() {
    return 'Conv2d';
  }
  readonly opts: Conv2dLayerOptions;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernel: number | [number, number],
    opts: Conv2dLayerOptions = {},
  ) {
    super();
    this.opts = opts;
    const [kh, kw] = typeof kernel === 'number' ? [kernel, kernel] : kernel;
    const groups = opts.groups ?? 1;
    const fanIn = (inChannels / groups) * kh * kw;
    this.addParam('weight', uniformInit([outChannels, inChannels / groups, kh, kw], 1 / Math.sqrt(fanIn)));
    if (opts.bias ?? true) this.addParam('bias', uniformInit([outChannels], 1 / Math.sqrt(fanIn)));
  }
  forward(x: Tensor): Tensor {
    checkInput(this, x, 4, this.inChannels);
    return bl.conv2d(x, this.param('weight'), { ...this.opts, bias: this.optParam('bias') });
  }
}

export class Linear extends Module {
  get kind() {
    return 'Linear';
  }
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: { bias?: boolean } = {},
  ) {
    super();
    const b = 1 / Math.sqrt(inFeatures);
    this.addParam('weight', uniformInit([outFeatures, inFeatures], b));
    if (opts.bias ?? true) this.addParam('bias', uniformInit([outFeatures], b));
  }
  forward(x: Tensor): Tensor {
    if (x.rank < 1 || x.shape[x.rank - 1] !== this.inFeatures) {
      throw new Error(`Linear '${this.path}': expected ${this.inFeatures} input features on the last axis, got ${fmtShape(x.shape)}`);
    }
    return bl.linear(x, this.param('weight'), this.optParam('bias'));
  }
}

export class MaxPool2d extends Module {
  get kind() {
    return 'MaxPool2d';
  }
  constructor(readonly opts: bl.Pool2dOptions) {
    super();
  }
  forward(x: Tensor): Tensor {
    return bl.maxPool2d(x, this.opts);
  }
}

export class AvgPool2d extends Module {
  get kind() {
    return 'AvgPool2d';
  }
  constructor(readonly opts: bl.AvgPool2dOptions) {
    super();
  }
  forward(x: Tensor): Tensor {
    return bl.avgPool2d(x, this.opts);
  }
}

/** PyTorch's AdaptiveAvgPool2d; output [1, 1] is global average pooling (keeps the axes). */
export class AdaptiveAvgPool2d extends Module {
  get kind() {
    return 'AdaptiveAvgPool2d';
  }
  constructor(readonly size: [number, number] = [1, 1]) {
    super();
  }
  forward(x: Tensor): Tensor {
    if (this.size[0] === 1 && this.size[1] === 1) return bl.globalAvgPool(x, { keepDims: true });
    return bl.adaptiveAvgPool2d(x, this.size);
  }
}

/** Global average pooling to [N, C] (the CAM layout). */
export class GlobalAvgPool extends Module {
  get kind() {
    return 'GlobalAvgPool';
  }
  forward(x: Tensor): Tensor {
    return bl.globalAvgPool(x);
  }
}

export class BatchNorm2d extends Module {
  get kind() {
    return 'BatchNorm2d';
  }
  constructor(
    readonly numFeatures: number,
    readonly opts: { eps?: number; momentum?: number } = {},
  ) {
    super();
    this.addParam('weight', bl.ones([numFeatures]));
    this.addParam('bias', bl.zeros([numFeatures]));
    this.addBuffer('running_mean', bl.zeros([numFeatures]));
    this.addBuffer('running_var', bl.ones([numFeatures]));
    this.eps = opts.eps ?? 1e-5;
  }
  /** The variance stabiliser (mutable: a canonizer that folds this layer sets it to 0 meanwhile). */
  eps: number;
  forward(x: Tensor): Tensor {
    checkInput(this, x, 4, this.numFeatures);
    if (!this.training) {
      return bl.batchNorm(x, { mean: this.buffer('running_mean'), variance: this.buffer('running_var'), gamma: this.param('weight'), beta: this.param('bias'), eps: this.eps });
    }
    // Training: normalise by the batch's statistics (biased variance) and update the running ones
    // with the unbiased variance, as PyTorch does.
    const n = x.shape[0] * x.shape[2] * x.shape[3];
    if (n < 2) throw new Error(`BatchNorm2d '${this.path}': training needs more than one value per channel, got ${fmtShape(x.shape)}`);
    const mean = bl.mean(x, [0, 2, 3]);
    const variance = bl.variance(x, [0, 2, 3]);
    const m = this.opts.momentum ?? 0.1;
    bl.tidy(() => {
      const rm = bl.add(bl.mul(this.buffer('running_mean'), 1 - m), bl.mul(bl.stopGradient(mean), m));
      const rv = bl.add(bl.mul(this.buffer('running_var'), 1 - m), bl.mul(bl.stopGradient(variance), (m * n) / (n - 1)));
      this.setTensor('running_mean', rm);
      this.setTensor('running_var', rv);
    });
    return bl.batchNorm(x, { mean, variance, gamma: this.param('weight'), beta: this.param('bias'), eps: this.eps });
  }
}

/** Inverted dropout; active in training, or always when `mcDropout` is set (MC dropout). */
export class Dropout extends Module {
  get kind() {
    return 'Dropout';
  }
  mcDropout = false;
  private calls = 0;
  constructor(
    readonly p = 0.5,
    readonly seed = 1234,
  ) {
    super();
    if (!(p >= 0 && p < 1)) throw new Error(`Dropout: p must be in [0, 1), got ${p}`);
  }
  forward(x: Tensor): Tensor {
    const active = this.training || this.mcDropout;
    return bl.dropout(x, { p: this.p, active, seed: active ? this.seed + 1000003 * this.calls++ : undefined });
  }
}

/**
 * A parameter-free elementwise layer (ReLU, Sigmoid, ...): `fn` applied to the input. A named
 * base class so that the published .d.ts can describe the layers `activation` makes: tsc cannot
 * declare an anonymous class with protected members (TS4094).
 */
export abstract class ElementwiseLayer extends Module {
  /** The elementwise function this layer applies. */
  abstract readonly fn: (x: Tensor) => Tensor;
  forward(x: Tensor): Tensor {
    return this.fn(x);
  }
}

function activation(kind: string, fn: (x: Tensor) => Tensor): new () => ElementwiseLayer {
  return class extends ElementwiseLayer {
    get kind() {
      return kind;
    }
    readonly fn = fn;
  };
}

export const ReLU = activation('ReLU', bl.relu);
export const Sigmoid = activation('Sigmoid', bl.sigmoid);
export const Tanh = activation('Tanh', bl.tanh);
export const Softplus = activation('Softplus', bl.softplus);
export const Identity = activation('Identity', (x) => bl.mul(x, 1));

export class LeakyReLU extends Module {
  get kind() {
    return 'LeakyReLU';
  }
  constructor(readonly slope = 0.01) {
    super();
  }
  forward(x: Tensor): Tensor {
    return bl.leakyRelu(x, this.slope);
  }
}

export class Softmax extends Module {
  get kind() {
    return 'Softmax';
  }
  constructor(readonly axis = -1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return bl.softmax(x, this.axis);
  }
}

export class Flatten extends Module {
  get kind() {
    return 'Flatten';
  }
  constructor(readonly start = 1) {
    super();
  }
  forward(x: Tensor): Tensor {
    return bl.flatten(x, this.start);
  }
}

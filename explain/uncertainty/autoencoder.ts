// An autoencoder's reconstruction error as a score of how unfamiliar an input is: trained to
// reproduce the training distribution through a narrow code, it reconstructs inputs like its
// training data well and others (noise, other data sets, shapes it never saw) badly. A classic
// novelty detector (Japkowicz, Myers & Gluck 1995; reconstruction-based anomaly detection as
// surveyed by Pimentel et al. 2014), independent of the classifier, so it also flags inputs a
// ReLU classifier would extrapolate to with high confidence (Hein et al. 2019).
// A small dense autoencoder built from models/ layers, trained with Adam (models/optim.ts) on a
// seeded shuffle (models/train.ts shuffled), mean squared error.
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { fmtShape } from '../../engine/shape.ts';
import { Module } from '../../models/module.ts';
import { Flatten, Linear, ReLU, Sigmoid, setInitSeed } from '../../models/layers.ts';
import { Sequential } from '../../models/containers.ts';
import { Adam } from '../../models/optim.ts';
import { mse } from '../../models/losses.ts';
import { shuffled } from '../../models/train.ts';
import { checkInput, positiveInt } from '../common.ts';
import { checkOptions, optionKeys } from '../options.ts';

export interface AutoencoderOptions {
  /** Hidden widths of the encoder (mirrored by the decoder; default [32]). */
  hidden?: number[];
  /** Width of the code (default 8). */
  latent?: number;
  /** The decoder's last activation: 'sigmoid' for data in [0, 1], 'linear' otherwise (default 'linear'). */
  output?: 'sigmoid' | 'linear';
  /** Seed of the initial weights (default 0). */
  seed?: number;
}

const AUTOENCODER_KEYS = optionKeys<AutoencoderOptions>()(['hidden', 'latent', 'output', 'seed']);
const TRAIN_KEYS = optionKeys<TrainAutoencoderOptions>()(['hidden', 'latent', 'output', 'seed', 'epochs', 'batchSize', 'lr', 'weightDecay', 'onEpoch']);
const RECONSTRUCTION_KEYS = optionKeys<ReconstructionErrorOptions>()(['batchSize']);

/**
 * A dense autoencoder for items of `inputShape`: encoder Flatten -> (Linear, ReLU)* -> Linear to
 * the code; decoder (Linear, ReLU)* -> Linear (-> Sigmoid), reshaped back to the input's shape.
 * Children 'encoder' and 'decoder' (paths 'encoder.1', ...).
 */
export class Autoencoder extends Module {
  get kind() {
    return 'Autoencoder';
  }
  readonly encoder: Sequential;
  readonly decoder: Sequential;
  readonly inputShape: number[];
  /** Mean training loss per epoch (filled by trainAutoencoder). */
  history: number[] = [];
  constructor(inputShape: readonly number[], opts: AutoencoderOptions = {}) {
    super();
    const op = 'Autoencoder';
    checkOptions(op, opts, AUTOENCODER_KEYS);
    if (!Array.isArray(inputShape) || inputShape.length === 0 || inputShape.some((d) => !Number.isInteger(d) || d < 1)) {
      throw new Error(`${op}: inputShape must be the shape of one item (positive integers), got ${JSON.stringify(inputShape)}`);
    }
    const hidden = opts.hidden ?? [32];
    if (!Array.isArray(hidden)) throw new Error(`${op}: hidden must be an array of layer widths, got ${typeof hidden}`);
    if (opts.seed !== undefined && !(Number.isInteger(opts.seed) && opts.seed >= 0)) throw new Error(`${op}: seed must be a non-negative integer, got ${String(opts.seed)}`);
    const latent = positiveInt(op, 'latent', opts.latent, 8);
    hidden.forEach((h) => positiveInt(op, 'hidden width', h, 1));
    const output = opts.output ?? 'linear';
    if (output !== 'sigmoid' && output !== 'linear') throw new Error(`${op}: output must be 'sigmoid' or 'linear', got ${String(opts.output)}`);
    this.inputShape = [...inputShape];
    const d = inputShape.reduce((a, b) => a * b, 1);
    setInitSeed((opts.seed ?? 0) * 7 + 3);
    const enc: Module[] = [new Flatten()];
    let w = d;
    for (const h of hidden) {
      enc.push(new Linear(w, h), new ReLU());
      w = h;
    }
    enc.push(new Linear(w, latent));
    const dec: Module[] = [];
    w = latent;
    for (const h of [...hidden].reverse()) {
      dec.push(new Linear(w, h), new ReLU());
      w = h;
    }
    dec.push(new Linear(w, d));
    if (output === 'sigmoid') dec.push(new Sigmoid());
    this.encoder = this.addChild('encoder', new Sequential(...enc));
    this.decoder = this.addChild('decoder', new Sequential(...dec));
  }
  /** The code [N, latent] of a batch. */
  encode(x: Tensor): Tensor {
    return this.encoder.call(x);
  }
  forward(x: Tensor): Tensor {
    if (x.rank !== this.inputShape.length + 1 || x.shape.slice(1).join() !== this.inputShape.join()) {
      throw new Error(`Autoencoder '${this.path}': expected a batch of items [${this.inputShape.join(', ')}], got ${fmtShape(x.shape)}`);
    }
    return bl.tidy(() => bl.reshape(this.decoder.call(this.encoder.call(x)), x.shape));
  }
}

export interface ReconstructionErrorOptions {
  /** Items per call of the autoencoder (default 256). */
  batchSize?: number;
}

export interface TrainAutoencoderOptions extends AutoencoderOptions {
  /** Epochs (default 30). */
  epochs?: number;
  /** Minibatch size (default 32). */
  batchSize?: number;
  /** Adam's learning rate (default 0.005). */
  lr?: number;
  weightDecay?: number;
  /** Called with each epoch's mean training loss. */
  onEpoch?: (epoch: number, loss: number) => void;
}

/**
 * Train a dense autoencoder on `data` [N, ...item] (not disposed) to minimise the mean squared
 * reconstruction error, with Adam on minibatches in a seeded order. Deterministic for a seed on a
 * backend. Returns the autoencoder in eval mode, `history` holding the loss per epoch.
 */
export async function trainAutoencoder(data: Tensor, opts: TrainAutoencoderOptions = {}): Promise<Autoencoder> {
  const op = 'trainAutoencoder';
  checkOptions(op, opts, TRAIN_KEYS);
  checkInput(op, data);
  const epochs = positiveInt(op, 'epochs', opts.epochs, 30);
  const batchSize = positiveInt(op, 'batchSize', opts.batchSize, 32);
  const lr = opts.lr ?? 0.005;
  if (!(lr > 0 && Number.isFinite(lr))) throw new Error(`${op}: lr must be a finite number > 0, got ${opts.lr}`);
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`${op}: seed must be a non-negative integer, got ${String(opts.seed)}`);
  if (opts.weightDecay !== undefined && !(typeof opts.weightDecay === 'number' && opts.weightDecay >= 0 && Number.isFinite(opts.weightDecay))) {
    throw new Error(`${op}: weightDecay must be a finite number >= 0, got ${String(opts.weightDecay)}`);
  }
  if (opts.onEpoch !== undefined && typeof opts.onEpoch !== 'function') throw new Error(`${op}: onEpoch must be a function, got ${typeof opts.onEpoch}`);
  // The architecture's options only: the constructor rejects the training ones.
  const ae = new Autoencoder(data.shape.slice(1), { hidden: opts.hidden, latent: opts.latent, output: opts.output, seed });
  const optimizer = new Adam({ lr, weightDecay: opts.weightDecay });
  const N = data.shape[0];
  try {
    ae.train();
    for (let epoch = 1; epoch <= epochs; epoch++) {
      const order = shuffled(N, seed * 1000003 + epoch);
      let total = 0;
      for (let s = 0; s < N; s += batchSize) {
        const idx = Array.from(order.subarray(s, Math.min(s + batchSize, N)));
        const xb = bl.tidy(() => bl.stopGradient(bl.gather(data, bl.tensor(idx, [idx.length], data.backend), 0)));
        const [l, grads] = bl.tidy(() => bl.valueAndGrad((..._ps: Tensor[]) => mse(ae.call(xb), xb))(...ae.parameters()));
        optimizer.step(ae, grads);
        grads.forEach((g) => g.dispose());
        const lv = await l.item();
        l.dispose();
        xb.dispose();
        if (!Number.isFinite(lv)) throw new Error(`${op}: the loss became ${lv} at epoch ${epoch} (lower lr, or check the data for NaN/Infinity)`);
        total += lv * idx.length;
      }
      ae.history.push(total / N);
      opts.onEpoch?.(epoch, total / N);
    }
  } catch (e) {
    ae.dispose();
    throw e;
  } finally {
    optimizer.dispose();
  }
  return ae.eval();
}

/**
 * Per-item mean squared reconstruction error [N] of x under an autoencoder (any module or
 * function mapping a batch to a batch of the same shape), in batches: the unfamiliar-input score
 * (higher = less like the training data). The result is the caller's; x is not disposed.
 */
export async function reconstructionError(ae: Module | ((x: Tensor) => Tensor), x: Tensor, opts: ReconstructionErrorOptions = {}): Promise<Tensor> {
  const op = 'reconstructionError';
  checkOptions(op, opts, RECONSTRUCTION_KEYS);
  if (!(ae instanceof Module) && typeof ae !== 'function') throw new Error(`${op}: ae must be a backlight Module or a function, got ${ae === null ? 'null' : typeof ae}`);
  checkInput(op, x);
  const bs = positiveInt(op, 'batchSize', opts.batchSize, 256);
  const N = x.shape[0], item = x.shape.slice(1);
  const was = ae instanceof Module ? ae.namedModules().map(([, m]) => [m, m.training] as const) : [];
  if (ae instanceof Module) ae.eval();
  const parts: Tensor[] = [];
  try {
    for (let s = 0; s < N; s += bs) {
      const k = Math.min(bs, N - s);
      parts.push(bl.keep(bl.tidy(() => {
        const xs = bl.stopGradient(bl.slice(x, [s, ...item.map(() => 0)], [k, ...item]));
        const y = ae instanceof Module ? ae.call(xs) : ae(xs);
        if (y.shape.join() !== xs.shape.join()) throw new Error(`${op}: the autoencoder returned ${fmtShape(y.shape)} for a batch ${fmtShape(xs.shape)}`);
        const d = bl.reshape(bl.sub(y, xs), [k, -1]);
        return bl.mean(bl.mul(d, d), 1);
      })));
    }
  } catch (e) {
    parts.forEach((p) => p.dispose());
    throw e;
  } finally {
    for (const [m, t] of was) m.training = t;
  }
  const out = parts.length === 1 ? parts[0] : bl.keep(bl.concat(parts, 0));
  if (parts.length > 1) parts.forEach((p) => p.dispose());
  const v = await out.data();
  const bad = Array.from(v).findIndex((e) => !Number.isFinite(e));
  if (bad >= 0) {
    out.dispose();
    throw new Error(`${op}: the reconstruction error of item ${bad} is ${v[bad]}; check the input and the autoencoder for NaN/Infinity`);
  }
  return out;
}

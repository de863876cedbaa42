// Training and evaluation loops over in-memory data sets.
import * as bl from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import { crossEntropy } from './losses.ts';
import type { Module } from './module.ts';
import type { Optimizer } from './optim.ts';
import { mulberry32 } from './data/random.ts';

/** An in-memory labelled data set: `x` holds `n` samples of `sampleShape`, row-major. */
export interface Dataset {
  x: Float32Array;
  /** Class index per sample (classification) or target values (regression). */
  y: Float32Array;
  sampleShape: number[];
  n: number;
  numClasses?: number;
  classNames?: string[];
}

/** A seeded permutation (Fisher-Yates on mulberry32), the same on every machine. */
export function shuffled(n: number, seed: number): Uint32Array {
  const rnd = mulberry32(seed);
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

/** Samples `idx` of `d` as an input tensor [k, ...sampleShape] and a label tensor [k]. */
export function batchOf(d: Dataset, idx: ArrayLike<number>): { x: Tensor; y: Tensor } {
  const per = d.sampleShape.reduce((a, b) => a * b, 1);
  const xb = new Float32Array(idx.length * per);
  const yb = new Float32Array(idx.length);
  for (let i = 0; i < idx.length; i++) {
    xb.set(d.x.subarray(idx[i] * per, (idx[i] + 1) * per), i * per);
    yb[i] = d.y[idx[i]];
  }
  return { x: bl.tensor(xb, [idx.length, ...d.sampleShape]), y: bl.tensor(yb, [idx.length]) };
}

export interface FitOptions {
  epochs: number;
  batchSize: number;
  optimizer: Optimizer;
  seed?: number;
  /** Loss of (logits, labels); default softmax cross-entropy. */
  loss?: (out: Tensor, y: Tensor) => Tensor;
  validation?: Dataset;
  /** Stop when the validation loss has not improved by minDelta for `patience` epochs. */
  earlyStopping?: { patience: number; minDelta?: number };
  /** Print a progress line per batch to stderr (default: when stderr is a TTY, else per epoch). */
  progress?: boolean | 'epoch';
  onEpoch?: (e: EpochLog) => void;
}

export interface EpochLog {
  epoch: number;
  loss: number;
  accuracy: number;
  valLoss?: number;
  valAccuracy?: number;
  samplesPerSecond: number;
  seconds: number;
}

/** Accuracy and mean loss over a data set, in batches. */
export async function evaluate(model: Module, d: Dataset, opts: { batchSize?: number; loss?: (o: Tensor, y: Tensor) => Tensor } = {}): Promise<{ loss: number; accuracy: number }> {
  const bs = opts.batchSize ?? 256;
  const lossFn = opts.loss ?? crossEntropy;
  const wasTraining = model.training;
  model.eval();
  let lossSum = 0, correct = 0;
  try {
    for (let s = 0; s < d.n; s += bs) {
      const idx = Array.from({ length: Math.min(bs, d.n - s) }, (_, i) => s + i);
      const [l, pred] = bl.tidy(() => {
        const { x, y } = batchOf(d, idx);
        const out = model.call(x);
        return [lossFn(out, y), out.rank === 2 ? bl.argmax(out, 1) : out];
      });
      lossSum += (await l.item()) * idx.length;
      const p = await pred.data();
      idx.forEach((k, i) => (correct += Math.round(p[i]) === d.y[k] ? 1 : 0));
      l.dispose();
      pred.dispose();
    }
  } finally {
    model.train(wasTraining);
  }
  return { loss: lossSum / d.n, accuracy: correct / d.n };
}

function progressLine(epoch: number, epochs: number, done: number, total: number, loss: number, acc: number, rate: number): string {
  const w = 24;
  const f = Math.round((w * done) / total);
  return `epoch ${epoch}/${epochs} [${'='.repeat(f)}${' '.repeat(w - f)}] ${done}/${total} loss ${loss.toFixed(4)} acc ${(acc * 100).toFixed(1)}% ${rate.toFixed(0)} samples/s`;
}

/**
 * Mini-batch training with a seeded shuffle per epoch. Deterministic for a seed on a backend:
 * the order of samples, dropout masks and every reduction are fixed.
 */
export async function fit(model: Module, data: Dataset, opts: FitOptions): Promise<EpochLog[]> {
  const { epochs, batchSize, optimizer } = opts;
  if (!Number.isInteger(epochs) || epochs < 1) throw new Error(`fit: epochs must be a positive integer, got ${epochs}`);
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`fit: batchSize must be a positive integer, got ${batchSize}`);
  if (data.n < 1) throw new Error('fit: the data set is empty');
  const lossFn = opts.loss ?? crossEntropy;
  const seed = opts.seed ?? 0;
  const tty = typeof process !== 'undefined' && !!process.stderr?.isTTY;
  const perBatch = opts.progress === true || (opts.progress === undefined && tty);
  const perEpoch = opts.progress !== false;
  const logs: EpochLog[] = [];
  let best = Infinity, bad = 0;
  model.train();
  for (let epoch = 1; epoch <= epochs; epoch++) {
    const t0 = performance.now();
    const order = shuffled(data.n, seed * 1000003 + epoch);
    let lossSum = 0, correct = 0, seen = 0;
    for (let s = 0; s < data.n; s += batchSize) {
      const idx = order.subarray(s, Math.min(s + batchSize, data.n));
      const { x, y } = batchOf(data, idx);
      const params = model.parameters();
      let pred: Tensor | null = null;
      const [l, grads] = bl.tidy(() =>
        bl.valueAndGrad((..._ps: Tensor[]) => {
          const out = model.call(x);
          // The predictions leave the gradient's scope: kept, and disposed below.
          pred = bl.keep(out.rank === 2 ? bl.argmax(out, 1) : bl.stopGradient(out));
          return lossFn(out, y);
        })(...params),
      );
      optimizer.step(model, grads);
      grads.forEach((g) => g.dispose());
      const lv = await l.item();
      if (!Number.isFinite(lv)) throw new Error(`fit: the loss became ${lv} at epoch ${epoch}, batch ${s / batchSize + 1} (lower the learning rate?)`);
      const p = await pred!.data();
      idx.forEach((k, i) => (correct += Math.round(p[i]) === data.y[k] ? 1 : 0));
      lossSum += lv * idx.length;
      seen += idx.length;
      [l, pred!, x, y].forEach((t) => t.dispose());
      if (perBatch && typeof process !== 'undefined' && process.stderr) {
        const rate = seen / ((performance.now() - t0) / 1000);
        process.stderr.write(`\r${progressLine(epoch, epochs, seen, data.n, lossSum / seen, correct / seen, rate)}`);
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    const log: EpochLog = { epoch, loss: lossSum / seen, accuracy: correct / seen, samplesPerSecond: seen / seconds, seconds };
    if (opts.validation) {
      const v = await evaluate(model, opts.validation, { loss: lossFn });
      model.train();
      log.valLoss = v.loss;
      log.valAccuracy = v.accuracy;
    }
    logs.push(log);
    opts.onEpoch?.(log);
    if (perEpoch && typeof process !== 'undefined' && process.stderr) {
      const val = log.valLoss !== undefined ? ` val_loss ${log.valLoss.toFixed(4)} val_acc ${(log.valAccuracy! * 100).toFixed(1)}%` : '';
      process.stderr.write(`${perBatch ? '\r' : ''}${progressLine(epoch, epochs, seen, data.n, log.loss, log.accuracy, log.samplesPerSecond)}${val} ${seconds.toFixed(1)}s\n`);
    }
    if (opts.earlyStopping && log.valLoss !== undefined) {
      if (log.valLoss < best - (opts.earlyStopping.minDelta ?? 0)) {
        best = log.valLoss;
        bad = 0;
      } else if (++bad >= opts.earlyStopping.patience) {
        break;
      }
    }
  }
  model.eval();
  return logs;
}

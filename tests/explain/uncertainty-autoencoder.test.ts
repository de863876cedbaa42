// The autoencoder's reconstruction error as an unfamiliar-input score: per-item MSE by hand, a
// dense autoencoder trained on the UCI digits (seeded, Adam) reconstructs held-out digits far
// better than uniform noise or synthetic shapes. Float64 CPU backend.
import { beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import * as ex from '../../explain/uncertainty/index.ts';
import { datasetSplits, makeShapes } from '../../models/data/index.ts';
import { expectClose } from '../helpers.ts';

beforeAll(async () => {
  await bl.init({ backend: 'cpu' });
});

const read = async (t: Tensor) => Float64Array.from(await t.data());
const avg = (d: ArrayLike<number>) => Array.from(d).reduce((a, b) => a + b, 0) / d.length;

describe('reconstructionError', () => {
  it('is the per-item mean squared error (by hand), batched, leaving x alive', async () => {
    // ae(x) = x / 2: item errors mean((x/2)^2) = mean(x^2) / 4.
    const x = bl.tensor([1, 2, 3, 4, 0, -2, 2, 0, 6, 0, 0, 0], [3, 2, 2]);
    const e = await ex.reconstructionError((t) => bl.mul(t, 0.5), x, { batchSize: 2 });
    expect(e.shape).toEqual([3]);
    expectClose(await read(e), [30 / 16, 8 / 16, 36 / 16], 1e-15);
    expect(x.disposed).toBe(false);
    await expect(ex.reconstructionError((t) => bl.reshape(t, [t.shape[0], 4]), x)).rejects.toThrow(/reconstructionError: the autoencoder returned \[3, 4\] for a batch \[3, 2, 2\]/);
    await expect(ex.reconstructionError((t) => bl.mul(t, NaN), x)).rejects.toThrow(/reconstruction error of item 0 is NaN/);
  });
});

describe('an autoencoder trained on digits', () => {
  it('reconstructs held-out digits far better than uniform noise or shapes; training is seeded', async () => {
    const { train, test } = datasetSplits('digits');
    const data = bl.tensor(train.x, [train.n, 1, 8, 8]);
    const opts = { epochs: 10, batchSize: 32, lr: 0.01, output: 'sigmoid' as const, hidden: [32], latent: 8, seed: 0 };
    const t0 = performance.now();
    const ae = await ex.trainAutoencoder(data, opts);
    const seconds = (performance.now() - t0) / 1000;
    expect(ae.history.length).toBe(10);
    expect(ae.history.at(-1)!).toBeLessThan(0.5 * ae.history[0]);
    expect(data.disposed).toBe(false);
    const digits = avg(await (await ex.reconstructionError(ae, bl.tensor(test.x, [test.n, 1, 8, 8]))).data());
    const noise = avg(await (await ex.reconstructionError(ae, bl.rand([200, 1, 8, 8], { seed: 1 }))).data());
    const sh = makeShapes({ n: 200, seed: 5 });
    const shapes8 = bl.avgPool2d(bl.tensor(sh.x, [200, 1, 32, 32]), { kernel: 4, stride: 4 }); // 32x32 shapes on noise, to 8x8
    const shapes = avg(await (await ex.reconstructionError(ae, shapes8)).data());
    console.log(`digits autoencoder (64-32-8-32-64, 10 epochs, ${seconds.toFixed(1)} s): mean reconstruction MSE held-out digits ${digits.toFixed(4)}, uniform noise ${noise.toFixed(4)}, shapes ${shapes.toFixed(4)}; loss ${ae.history.map((v) => v.toFixed(4)).join(' ')}`);
    expect(noise).toBeGreaterThan(4 * digits);
    expect(shapes).toBeGreaterThan(2 * digits);
    // The same seed trains the same weights (one epoch suffices to check).
    const a = await ex.trainAutoencoder(data, { ...opts, epochs: 1 }), b = await ex.trainAutoencoder(data, { ...opts, epochs: 1 });
    expect(Array.from(await read(a.decoder.layers[0].param('weight')))).toEqual(Array.from(await read(b.decoder.layers[0].param('weight'))));
    expect(a.history).toEqual(b.history);
    [ae, a, b].forEach((m) => m.dispose());
  });

  it('errors name the option', async () => {
    await expect(ex.trainAutoencoder(bl.zeros([4, 3]), { epochs: 0 })).rejects.toThrow(/trainAutoencoder: epochs must be a positive integer, got 0/);
    await expect(ex.trainAutoencoder(bl.zeros([4, 3]), { lr: -1 })).rejects.toThrow(/trainAutoencoder: lr must be a finite number > 0, got -1/);
    await expect(ex.trainAutoencoder(bl.tensor([0, NaN, 0, 0], [2, 2]), { epochs: 1 })).rejects.toThrow(/trainAutoencoder: the loss became NaN at epoch 1/);
    expect(() => new ex.Autoencoder([8, 8], { latent: 0 })).toThrow(/Autoencoder: latent must be a positive integer, got 0/);
    expect(() => new ex.Autoencoder([4]).call(bl.zeros([2, 5]))).toThrow(/Autoencoder '': expected a batch of items \[4\], got \[2, 5\]/);
  });
});

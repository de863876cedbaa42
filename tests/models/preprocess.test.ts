// models/preprocess.ts against values computed by hand (each expectation says how), and the
// conventions it claims to share with torchvision (the shorter-side size rule, the crop offset's
// Python rounding).
import { beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import { IMAGENET_MEAN, IMAGENET_STD, centerCrop, normalize, normalizeBatch, normalizeTensor, preprocessImage, resizeBilinear, resizeShorter, rgbaToChannels, shorterSideSize } from '../../models/preprocess.ts';
import { expectClose } from '../helpers.ts';

beforeAll(async () => {
  await bl.init({ backend: 'cpu' });
});

/** [c, h, w] holding k * 100 + y * w + x, so every value says where it came from. */
const ramp = (c: number, h: number, w: number) => Float32Array.from({ length: c * h * w }, (_, i) => Math.floor(i / (h * w)) * 100 + (i % (h * w)));

describe('preprocess', () => {
  it('RGBA to channels: RGB planes, BT.601 grey, alpha over black', () => {
    // pixel 0 opaque red, pixel 1 blue at alpha 51/255 = 0.2
    const px = [255, 0, 0, 255, 0, 0, 255, 51];
    expectClose(rgbaToChannels(px, 2, 1, 3), [1, 0, /* G */ 0, 0, /* B */ 0, 0.2], 1e-7, 1e-7);
    expectClose(rgbaToChannels(px, 2, 1, 1), [0.299, 0.114 * 0.2], 1e-7, 1e-7);
    expect(() => rgbaToChannels(px, 3, 1, 3)).toThrow(/3 x 1 RGBA needs 12 bytes, got 8/);
  });

  it('shorter-side sizes follow torchvision (long side floored)', () => {
    expect(shorterSideSize(480, 640, 256)).toEqual({ h: 256, w: 341 }); // 256 * 640 / 480 = 341.33
    expect(shorterSideSize(7, 5, 3)).toEqual({ h: 4, w: 3 }); // 3 * 7 / 5 = 4.2
    expect(shorterSideSize(4, 4, 2)).toEqual({ h: 2, w: 2 });
    expect(() => shorterSideSize(4, 4, 0)).toThrow(/size must be a positive integer, got 0/);
  });

  it('bilinear resize: an exact 2x reduction averages 2x2 blocks; per channel', () => {
    const src = ramp(2, 4, 6); // channel 0: y * 6 + x; channel 1: 100 + that
    const r = resizeShorter(src, 2, 4, 6, 2);
    expect([r.h, r.w]).toEqual([2, 3]);
    // block (0, 0) = (0 + 1 + 6 + 7) / 4 = 3.5; the others step by 2 across and 12 down
    expect(Array.from(r.data)).toEqual([3.5, 5.5, 7.5, 15.5, 17.5, 19.5, 103.5, 105.5, 107.5, 115.5, 117.5, 119.5]);
    // upsampling 1x2 -> 1x4 with half-pixel centres: source x = (i + 0.5) / 2 - 0.5, clamped at 0
    expect(Array.from(resizeBilinear(Float32Array.from([0, 4]), 1, 1, 2, 1, 4))).toEqual([0, 1, 3, 4]);
  });

  it('centre crop uses round((h - oh) / 2) with Python rounding (halves to even)', () => {
    // 5 -> 2: offset round(1.5) = 2; 7 -> 2: round(2.5) = 2; 4 -> 2: 1
    expect(Array.from(centerCrop(ramp(1, 5, 5), 1, 5, 5, 2, 2))).toEqual([12, 13, 17, 18]);
    expect(Array.from(centerCrop(ramp(1, 7, 7), 1, 7, 7, 2, 2))).toEqual([16, 17, 23, 24]);
    expect(Array.from(centerCrop(ramp(2, 4, 4), 2, 4, 4, 2, 2))).toEqual([5, 6, 9, 10, 105, 106, 109, 110]);
    expect(() => centerCrop(ramp(1, 4, 4), 1, 4, 4, 5, 2)).toThrow(/a 5 x 2 crop does not fit in a 4 x 4 image/);
  });

  it('ImageNet normalisation per channel, on arrays, batches and tensors', async () => {
    // one pixel per channel: the channel's mean gives 0, 1 gives (1 - mean) / std
    expectClose(normalize(Float32Array.from(IMAGENET_MEAN), 3, IMAGENET_MEAN, IMAGENET_STD), [0, 0, 0], 0, 1e-7);
    const ones = [(1 - 0.485) / 0.229, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225];
    expectClose(normalize(new Float32Array([1, 1, 1]), 3, IMAGENET_MEAN, IMAGENET_STD), ones, 1e-6, 1e-6);
    expectClose(ones, [2.2489083, 2.4285714, 2.64], 1e-6, 1e-6);
    // a batch of two 3-channel, 2-pixel samples: plane j is channel j mod 3
    const b = normalizeBatch(new Float32Array(12).fill(1), 3, 2, IMAGENET_MEAN, IMAGENET_STD);
    expectClose(b, [ones[0], ones[0], ones[1], ones[1], ones[2], ones[2], ones[0], ones[0], ones[1], ones[1], ones[2], ones[2]], 1e-6, 1e-6);
    const x = bl.ones([2, 3, 1, 2]);
    const t = normalizeTensor(x, IMAGENET_MEAN, IMAGENET_STD);
    expectClose(await t.data(), b, 1e-6, 1e-6);
    expect(x.disposed).toBe(false); // the caller's tensor stays
    t.dispose();
    x.dispose();
    expect(() => normalize(new Float32Array(3), 3, [0, 0, 0], [1, 0, 1])).toThrow(/std must be positive/);
    expect(() => normalize(new Float32Array(2), 1, [0, 0], [1, 1])).toThrow(/one value per channel \(1\), got 2 and 2/);
  });

  it('the whole pipeline: grey, resize, crop, normalise, with what was done', () => {
    // a 6 x 4 (w x h) image, grey value = x / 5 in every channel
    const w = 6, h = 4;
    const px = new Uint8Array(w * h * 4);
    for (let i = 0; i < w * h; i++) px.set([51 * (i % w), 51 * (i % w), 51 * (i % w), 255], i * 4);
    const p = preprocessImage(px, w, h, { channels: 1, resize: 2, crop: 2, mean: [0.5], std: [0.5] });
    expect([p.h, p.w]).toEqual([2, 2]);
    // resize to 3 x 2 averages column pairs: x = 0.1, 0.5, 0.9; the centre crop keeps columns
    // round((3 - 2) / 2) = round(0.5) = 0 and 1: 0.1 and 0.5; normalised: (v - 0.5) / 0.5
    expectClose(p.display, [0.1, 0.5, 0.1, 0.5], 1e-6, 1e-6);
    expectClose(p.data, [-0.8, 0, -0.8, 0], 1e-6, 1e-6);
    expect(p.steps).toEqual(['resized 6x4 -> 3x2 (shorter side 2, bilinear)', 'centre-cropped 3x2 -> 2x2', 'normalised (mean 0.5; std 0.5)']);
  });
});

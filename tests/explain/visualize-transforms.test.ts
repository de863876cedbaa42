// Feature visualisation's building blocks, against hand computations written here: the affine
// matrices (wgpu-matrix) and their bilinear resampling, the Fourier parameterisation (a direct
// DFT sum; a cosine image and its one coefficient), and the regularisers.
import { beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import * as vis from '../../explain/visualize/index.ts';
import { expectClose } from '../helpers.ts';

beforeAll(async () => {
  await bl.init({ backend: 'cpu' });
});

/** Seeded test data (not the engine's Philox). */
function data(n: number, seed: number): Float64Array {
  let s = seed >>> 0;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32;
  }
  return out;
}

/**
 * An independent bilinear sampler: output pixel (x, y) reads the input at the point p with
 * c + R(theta) S (p - c) + t = (x, y), i.e. p = c + S^-1 R(-theta) ((x, y) - c - t), edge or zero padding.
 */
function handResample(img: Float64Array, H: number, W: number, p: { dx: number; dy: number; deg: number; s: number }, padding: 'edge' | 'zeros'): Float64Array {
  const out = new Float64Array(H * W);
  const cx = (W - 1) / 2, cy = (H - 1) / 2;
  const th = (p.deg * Math.PI) / 180;
  const at = (x: number, y: number) => {
    if (x < 0 || x >= W || y < 0 || y >= H) {
      if (padding === 'zeros') return 0;
      x = Math.min(W - 1, Math.max(0, x));
      y = Math.min(H - 1, Math.max(0, y));
    }
    return img[y * W + x];
  };
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const ux = x - cx - p.dx, uy = y - cy - p.dy;
      // R(-theta) = [cos sin; -sin cos]
      const sx = cx + (Math.cos(th) * ux + Math.sin(th) * uy) / p.s;
      const sy = cy + (-Math.sin(th) * ux + Math.cos(th) * uy) / p.s;
      const x0 = Math.floor(sx), y0 = Math.floor(sy), fx = sx - x0, fy = sy - y0;
      out[y * W + x] = (1 - fx) * (1 - fy) * at(x0, y0) + fx * (1 - fy) * at(x0 + 1, y0) + (1 - fx) * fy * at(x0, y0 + 1) + fx * fy * at(x0 + 1, y0 + 1);
    }
  }
  return out;
}

describe('affine matrices (wgpu-matrix) and bilinear resampling', () => {
  it('builds translate * rotate * scale about the centre', () => {
    const t = vis.affineMatrix([5, 7], { translate: [1.5, -2], rotate: 30, scale: 2 });
    const c = Math.cos(Math.PI / 6), s = Math.sin(Math.PI / 6);
    const [cx, cy] = [3, 2];
    // x' = 2 (c (x - cx) - s (y - cy)) + cx + 1.5, y' = 2 (s (x - cx) + c (y - cy)) + cy - 2
    expectClose([t.a, t.b, t.c, t.d], [2 * c, 2 * s, -2 * s, 2 * c], 1e-12);
    expectClose([t.tx, t.ty], [cx + 1.5 - 2 * (c * cx - s * cy), cy - 2 - 2 * (s * cx + c * cy)], 1e-12);
    const inv = vis.invertAffine(t);
    // inv(t(p)) = p for p = (1, 4)
    const px = t.a * 1 + t.c * 4 + t.tx, py = t.b * 1 + t.d * 4 + t.ty;
    expectClose([inv.a * px + inv.c * py + inv.tx, inv.b * px + inv.d * py + inv.ty], [1, 4], 1e-12);
    expect(() => vis.affineMatrix([4, 4], { scale: 0 })).toThrow(/scale must not be 0/);
  });

  it('a 90 degree rotation of a square image is the exact pixel permutation out[y][x] = in[W-1-x][y]', async () => {
    const W = 5;
    const img = data(W * W, 1);
    const r = vis.affineResample(bl.tensor(img, [1, 1, W, W]), vis.affineMatrix([W, W], { rotate: 90 }));
    const want = new Float64Array(W * W);
    for (let y = 0; y < W; y++) for (let x = 0; x < W; x++) want[y * W + x] = img[(W - 1 - x) * W + y];
    expectClose(await r.data(), want, 1e-12);
  });

  it('an integer shift moves pixels and reads zeros (or the edge) outside', async () => {
    const [H, W] = [4, 6];
    const img = data(H * W, 2);
    const x = bl.tensor(img, [1, 1, H, W]);
    const t = vis.affineMatrix([H, W], { translate: [2, -1] });
    const zeros = await vis.affineResample(x, t, { padding: 'zeros' }).data();
    const edge = await vis.affineResample(x, t, { padding: 'edge' }).data();
    for (let y = 0; y < H; y++) {
      for (let xx = 0; xx < W; xx++) {
        const sx = xx - 2, sy = y + 1;
        const inside = sx >= 0 && sy < H;
        expect(zeros[y * W + xx]).toBeCloseTo(inside ? img[sy * W + sx] : 0, 12);
        expect(edge[y * W + xx]).toBeCloseTo(img[Math.min(H - 1, sy) * W + Math.max(0, sx)], 12);
      }
    }
  });

  it('a half-pixel shift averages neighbours', async () => {
    const img = Float64Array.from([0, 1, 2, 3, 10, 11, 12, 13]); // 2 x 4
    const r = await vis.affineResample(bl.tensor(img, [1, 1, 2, 4]), vis.affineMatrix([2, 4], { translate: [0.5, 0] }), { padding: 'edge' }).data();
    // out(x) = in(x - 0.5): x = 0 reads the edge (0), then means of neighbours.
    expectClose(r, [0, 0.5, 1.5, 2.5, 10, 10.5, 11.5, 12.5], 1e-12);
  });

  it('matches a hand-written sampler for rotation + scale + sub-pixel shift, per item, per channel', async () => {
    const [N, C, H, W] = [2, 2, 6, 7];
    const img = data(N * C * H * W, 3);
    const ps = [
      { dx: 0.4, dy: -0.7, deg: 17, s: 1.3 },
      { dx: -1.2, dy: 0.25, deg: -40, s: 0.8 },
    ];
    for (const padding of ['edge', 'zeros'] as const) {
      const ts = ps.map((p) => vis.affineMatrix([H, W], { translate: [p.dx, p.dy], rotate: p.deg, scale: p.s }));
      const got = await vis.affineResample(bl.tensor(img, [N, C, H, W]), ts, { padding }).data();
      const want = new Float64Array(N * C * H * W);
      for (let n = 0; n < N; n++) {
        for (let c = 0; c < C; c++) {
          const off = (n * C + c) * H * W;
          want.set(handResample(img.subarray(off, off + H * W), H, W, ps[n], padding), off);
        }
      }
      expectClose(got, want, 1e-12, 1e-12, padding);
    }
  });

  it('is differentiable: the gradient of <R(x), y> is the adjoint R^T y', async () => {
    const [H, W] = [5, 6];
    const p = { dx: 0.3, dy: 0.6, deg: 25, s: 1.1 };
    const t = vis.affineMatrix([H, W], { translate: [p.dx, p.dy], rotate: p.deg, scale: p.s });
    const y = data(H * W, 4);
    const g = bl.grad((x: bl.Tensor) => bl.sum(bl.mul(vis.affineResample(x, t), bl.tensor(y, [1, 1, H, W]))))(bl.tensor(data(H * W, 5), [1, 1, H, W]));
    // Column j of the (linear) resampling: the hand sampler applied to the unit image e_j.
    const want = new Float64Array(H * W);
    for (let j = 0; j < H * W; j++) {
      const e = new Float64Array(H * W);
      e[j] = 1;
      const col = handResample(e, H, W, p, 'edge');
      want[j] = col.reduce((a, v, i) => a + v * y[i], 0);
    }
    expectClose(await g.data(), want, 1e-12);
  });

  it('random transforms: integer jitter within +-j, rotation and scale within their ranges, from the seeded generator', () => {
    let k = 0;
    const seq = [0.0, 0.999, 0.5, 0.25];
    const t = vis.randomAffine([8, 8], { jitter: 2, rotate: 10, scale: [0.9, 1.1] }, () => seq[k++]);
    // dx = floor(0 * 5) - 2 = -2, dy = floor(0.999 * 5) - 2 = 2, angle = 0, scale = 0.95
    const want = vis.affineMatrix([8, 8], { translate: [-2, 2], rotate: 0, scale: 0.95 });
    expectClose([t.a, t.b, t.c, t.d, t.tx, t.ty], [want.a, want.b, want.c, want.d, want.tx, want.ty], 1e-12);
    const id = vis.randomAffine([8, 8], {}, () => 0.7);
    expectClose([id.a, id.b, id.c, id.d, id.tx, id.ty], [1, 0, 0, 1, 0, 0], 1e-12);
  });
});

/** The 2-D DFT by its definition: X[u, v] = sum x[y, x] exp(-2 pi i (u y / H + v x / W)). */
function directDft(x: Float64Array, H: number, W: number): { re: Float64Array; im: Float64Array } {
  const Wr = Math.floor(W / 2) + 1;
  const re = new Float64Array(H * Wr), im = new Float64Array(H * Wr);
  for (let u = 0; u < H; u++) {
    for (let v = 0; v < Wr; v++) {
      for (let y = 0; y < H; y++) {
        for (let xx = 0; xx < W; xx++) {
          const a = -2 * Math.PI * (u * y / H + v * xx / W);
          re[u * Wr + v] += x[y * W + xx] * Math.cos(a);
          im[u * Wr + v] += x[y * W + xx] * Math.sin(a);
        }
      }
    }
  }
  return { re, im };
}

describe('Fourier parameterisation', () => {
  for (const [H, W] of [[5, 6], [4, 7], [8, 8]] as const) {
    it(`rfft2 equals the direct DFT and irfft2 inverts it (${H} x ${W})`, async () => {
      const N = 2;
      const x = data(N * H * W, 10 + H + W);
      const spec = vis.rfft2(bl.tensor(x, [N, 1, H, W]));
      const Wr = Math.floor(W / 2) + 1;
      expect(spec.shape).toEqual([2, N, 1, H, Wr]);
      const s = await spec.data();
      for (let n = 0; n < N; n++) {
        const d = directDft(x.subarray(n * H * W, (n + 1) * H * W), H, W);
        expectClose(s.subarray(n * H * Wr, (n + 1) * H * Wr), d.re, 1e-10, 1e-10, 're');
        expectClose(s.subarray((N + n) * H * Wr, (N + n + 1) * H * Wr), d.im, 1e-10, 1e-10, 'im');
      }
      expectClose(await vis.irfft2(spec, W).data(), x, 1e-12, 1e-12, 'round trip');
      const coeffs = vis.fourierCoefficients(bl.tensor(x, [N, 1, H, W]));
      expectClose(await vis.fourierImage(coeffs, W).data(), x, 1e-12, 1e-12, 'coefficients round trip');
    });
  }

  it('a cosine image is one coefficient, and that coefficient alone gives the cosine back', async () => {
    const [H, W, u0, v0] = [6, 8, 1, 2];
    const img = new Float64Array(H * W);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) img[y * W + x] = Math.cos(2 * Math.PI * (u0 * y / H + v0 * x / W));
    const Wr = W / 2 + 1;
    const scale = vis.fourierScale(H, W);
    const c = await vis.fourierCoefficients(bl.tensor(img, [1, 1, H, W])).data();
    // rfft2 of cos(2 pi (u0 y/H + v0 x/W)) is H W / 2 at (u0, v0) (its mirror (H - u0, W - v0) lies outside the half spectrum).
    const want = new Float64Array(2 * H * Wr);
    want[u0 * Wr + v0] = (H * W) / 2 / scale[u0 * Wr + v0];
    expectClose(c, want, 1e-10, 1e-10);
    // The scale: sqrt(H W) / max(f, 1 / max(H, W)), f = |(1/6, 2/8)| cycles per pixel; DC is floored at 1/8.
    expect(scale[u0 * Wr + v0]).toBeCloseTo(Math.sqrt(48) / Math.hypot(1 / 6, 2 / 8), 10);
    expect(scale[0]).toBeCloseTo(Math.sqrt(48) * 8, 10);
    expectClose(await vis.fourierImage(bl.tensor(want, [2, 1, 1, H, Wr]), W).data(), img, 1e-12);
  });

  it('rejects a width that does not fit the half spectrum', () => {
    expect(() => vis.irfft2(bl.zeros([2, 1, 1, 4, 3]), 7)).toThrow(/width 7 does not have 3/);
  });
});

describe('regularisers', () => {
  it('total variation and L2 by hand', async () => {
    // 3 x 3, one channel: TV over the 2 x 2 pixels with right and down neighbours.
    const x = [1, 2, 4, 0, 3, 3, 5, 5, 1];
    const t = bl.tensor(x, [1, 1, 3, 3]);
    const sq = (a: number, b: number, c: number) => (b - a) ** 2 + (c - a) ** 2;
    const v = [sq(1, 2, 0), sq(2, 4, 3), sq(0, 3, 5), sq(3, 3, 5)];
    expect(await vis.totalVariation(t).item()).toBeCloseTo(v.reduce((a, b) => a + b) / 4, 12);
    expect(await vis.totalVariation(t, 1).item()).toBeCloseTo(v.reduce((a, b) => a + Math.sqrt(b + 1e-8), 0) / 4, 10);
    expect(await vis.l2Penalty(t).item()).toBeCloseTo(x.reduce((a, b) => a + b * b, 0) / 9, 12);
  });
});

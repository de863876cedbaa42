// The decorrelated Fourier image parameterisation of Olah et al. 2017 ("Feature Visualization",
// Distill; Lucid's `fft_image`): the optimiser works on the coefficients of the image's real 2-D
// DFT, each scaled by 1 / max(f, 1/max(H, W))^decay (f the frequency's magnitude, in cycles per
// pixel) and sqrt(H W). Natural images have roughly 1/f spectra, so with this scaling every
// coefficient moves the image by a comparable amount: steepest ascent in this basis is whitened,
// and the high frequencies that pixel-space ascent amplifies first are damped.
//
// The DFTs are matmuls with precomputed cos/sin bases (fine for small images), so the map from
// coefficients to pixels is ordinary engine ops and differentiable:
//   rfft2(x)[u, v] = sum_{y, x} x[y, x] exp(-2 pi i (u y / H + v x / W)),  u < H, v <= W/2
//   irfft2 its inverse for real images (numpy's irfft2 with s = (H, W)).
// Coefficients are held as one tensor [2, N, C, H, Wr] (real part, imaginary part), Wr = floor(W/2) + 1.
// (Lucid also decorrelates colour channels with an ImageNet colour matrix; that is not done here:
// the bundled models see one channel.)
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { fmtShape } from '../../engine/shape.ts';
import { checkOptions, optionKeys } from '../options.ts';

/** Columns of the half spectrum along the last axis. */
export const halfWidth = (W: number): number => Math.floor(W / 2) + 1;

interface Basis {
  /** [H, H] cos(2 pi u y / H) and sin(...), symmetric. */
  ch: Tensor;
  sh: Tensor;
  /** [W, Wr] cos(2 pi v x / W), sin(...): the forward half-spectrum transform along W. */
  cw: Tensor;
  sw: Tensor;
  /** [Wr, W] the inverse along W: c_v cos(2 pi v x / W) / W and c_v sin(...) / W (c_v = 1 for DC and Nyquist, else 2). */
  icw: Tensor;
  isw: Tensor;
}

function makeBasis(H: number, W: number, backend: Tensor['backend']): Basis {
  const Wr = halfWidth(W);
  const ch = new Float64Array(H * H), sh = new Float64Array(H * H);
  for (let u = 0; u < H; u++) {
    for (let y = 0; y < H; y++) {
      const a = (2 * Math.PI * ((u * y) % H)) / H;
      ch[u * H + y] = Math.cos(a);
      sh[u * H + y] = Math.sin(a);
    }
  }
  const cw = new Float64Array(W * Wr), sw = new Float64Array(W * Wr);
  const icw = new Float64Array(Wr * W), isw = new Float64Array(Wr * W);
  for (let x = 0; x < W; x++) {
    for (let v = 0; v < Wr; v++) {
      const a = (2 * Math.PI * ((v * x) % W)) / W;
      cw[x * Wr + v] = Math.cos(a);
      sw[x * Wr + v] = Math.sin(a);
      const cv = v === 0 || 2 * v === W ? 1 : 2;
      icw[v * W + x] = (cv * Math.cos(a)) / W;
      isw[v * W + x] = (cv * Math.sin(a)) / W;
    }
  }
  const t = (d: Float64Array, s: number[]) => bl.tensor(d, s, backend);
  return { ch: t(ch, [H, H]), sh: t(sh, [H, H]), cw: t(cw, [W, Wr]), sw: t(sw, [W, Wr]), icw: t(icw, [Wr, W]), isw: t(isw, [Wr, W]) };
}

function disposeBasis(b: Basis) {
  for (const t of Object.values(b)) t.dispose();
}

function checkImage(op: string, x: Tensor) {
  if (!(x instanceof bl.Tensor) || x.rank !== 4) throw new Error(`${op}: expected an NCHW Tensor, got ${x instanceof bl.Tensor ? fmtShape(x.shape) : typeof x}`);
}

/** The real 2-D DFT of x [N, C, H, W] over its last two axes: [2, N, C, H, Wr] (re, im). */
export function rfft2(x: Tensor): Tensor {
  checkImage('rfft2', x);
  const [, , H, W] = x.shape;
  const b = makeBasis(H, W, x.backend);
  try {
    return bl.tidy(() => {
      // Along W: X e^{-i a} = X cos a - i X sin a.
      const re1 = bl.matmul(x, b.cw), im1 = bl.neg(bl.matmul(x, b.sw));
      // Along H: (Ch - i Sh)(re1 + i im1).
      const re = bl.add(bl.matmul(b.ch, re1), bl.matmul(b.sh, im1));
      const im = bl.sub(bl.matmul(b.ch, im1), bl.matmul(b.sh, re1));
      return bl.stack([re, im], 0);
    });
  } finally {
    disposeBasis(b);
  }
}

/** The inverse of rfft2 for spectra of real images: [2, N, C, H, Wr] -> [N, C, H, W] (W must be given: Wr does not fix it). */
export function irfft2(spec: Tensor, W: number): Tensor {
  if (!(spec instanceof bl.Tensor) || spec.rank !== 5 || spec.shape[0] !== 2) throw new Error(`irfft2: expected a [2, N, C, H, Wr] spectrum, got ${spec instanceof bl.Tensor ? fmtShape(spec.shape) : typeof spec}`);
  const [, N, C, H, Wr] = spec.shape;
  if (!Number.isInteger(W) || halfWidth(W) !== Wr) throw new Error(`irfft2: width ${W} does not have ${Wr} half-spectrum columns`);
  const b = makeBasis(H, W, spec.backend);
  try {
    return bl.tidy(() => {
      const re = bl.reshape(bl.slice(spec, [0, 0, 0, 0, 0], [1, N, C, H, Wr]), [N, C, H, Wr]);
      const im = bl.reshape(bl.slice(spec, [1, 0, 0, 0, 0], [1, N, C, H, Wr]), [N, C, H, Wr]);
      // Along H, the inverse of the full DFT: (1/H)(Ch + i Sh)(re + i im).
      const zr = bl.div(bl.sub(bl.matmul(b.ch, re), bl.matmul(b.sh, im)), H);
      const zi = bl.div(bl.add(bl.matmul(b.ch, im), bl.matmul(b.sh, re)), H);
      // Along W, Hermitian half spectrum to real: sum_v c_v (zr cos - zi sin) / W.
      return bl.sub(bl.matmul(zr, b.icw), bl.matmul(zi, b.isw));
    });
  } finally {
    disposeBasis(b);
  }
}

/**
 * The per-frequency scale [H, Wr] of the parameterisation: sqrt(H W) / max(f, 1/max(H, W))^decay,
 * with f = sqrt(fy^2 + fx^2), fy = numpy's fftfreq(H), fx = rfftfreq(W) (as Lucid's rfft2d_freqs).
 */
export function fourierScale(H: number, W: number, decay = 1): Float64Array {
  const Wr = halfWidth(W);
  const s = new Float64Array(H * Wr);
  const floor = 1 / Math.max(H, W);
  for (let u = 0; u < H; u++) {
    const fy = (u <= (H - 1) / 2 ? u : u - H) / H;
    for (let v = 0; v < Wr; v++) {
      const f = Math.hypot(fy, v / W);
      s[u * Wr + v] = Math.sqrt(H * W) / Math.max(f, floor) ** decay;
    }
  }
  return s;
}

export interface FourierOptions {
  /** The exponent of the 1/f scaling (default 1). */
  decay?: number;
}
const FOURIER_KEYS = optionKeys<FourierOptions>()(['decay']);

function decayOption(op: string, opts: FourierOptions): number {
  checkOptions(op, opts, FOURIER_KEYS);
  const d = opts.decay ?? 1;
  if (typeof d !== 'number' || !Number.isFinite(d) || d < 0) throw new Error(`${op}: option 'decay' must be a finite number >= 0, got ${String(opts.decay)}`);
  return d;
}

/** Pixels from scaled coefficients c [2, N, C, H, Wr]: irfft2(c * scale). Differentiable in c. */
export function fourierImage(coeffs: Tensor, W: number, opts: FourierOptions = {}): Tensor {
  const decay = decayOption('fourierImage', opts);
  if (!(coeffs instanceof bl.Tensor) || coeffs.rank !== 5) throw new Error(`fourierImage: expected [2, N, C, H, Wr] coefficients, got ${coeffs instanceof bl.Tensor ? fmtShape(coeffs.shape) : typeof coeffs}`);
  const H = coeffs.shape[3];
  return bl.tidy(() => irfft2(bl.mul(coeffs, bl.tensor(fourierScale(H, W, decay), [H, halfWidth(W)], coeffs.backend)), W));
}

/** The coefficients whose fourierImage is x [N, C, H, W]: rfft2(x) / scale. */
export function fourierCoefficients(x: Tensor, opts: FourierOptions = {}): Tensor {
  const decay = decayOption('fourierCoefficients', opts);
  checkImage('fourierCoefficients', x);
  const [, , H, W] = x.shape;
  return bl.tidy(() => bl.div(rfft2(x), bl.tensor(fourierScale(H, W, decay), [H, halfWidth(W)], x.backend)));
}

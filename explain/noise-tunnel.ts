// Noise tunnel (Captum's NoiseTunnel): average an attributor over noisy copies of the input.
// SmoothGrad (Smilkov et al. 2017), SmoothGrad-squared and VarGrad (Adebayo et al. 2018).
import * as bl from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import { type Model, type TargetOptions, accumulate, checkFinite, checkInput, forwardOf, markCheckedFinite, positiveInt, repeatEach, repeatTarget, resolveTarget, checkedInput, unmarkCheckedFinite } from './common.ts';
import { checkOptions, optionKeys } from './options.ts';
import { type SaliencyOptions, saliency } from './gradient.ts';

export type Attributor<O extends TargetOptions = TargetOptions> = (model: Model, input: Tensor, opts: O) => Promise<Tensor>;

export interface NoiseTunnelOptions {
  type?: 'smoothgrad' | 'smoothgrad_sq' | 'vargrad';
  /** Noisy samples per input. Default 10. */
  samples?: number;
  /** Standard deviation of the Gaussian noise, in input units. Default 1 (Captum's). */
  stdev?: number;
  seed?: number;
  /** Noisy copies per attributor call (default: all samples at once). */
  samplesBatchSize?: number;
}

const NOISE_KEYS = optionKeys<NoiseTunnelOptions>()(['type', 'samples', 'stdev', 'seed', 'samplesBatchSize']);

/**
 * The wrapped method rejects options it does not know; the caller called the noise tunnel, so
 * say that, with the noise tunnel's own options too (a typo of 'samples' is more likely here).
 */
function unknownOptionOfTunnel(e: unknown): unknown {
  const m = e instanceof Error ? /^(\w+): unknown option '([^']+)'[^;]*; its options are (.*)$/.exec(e.message) : null;
  if (!m) return e;
  try {
    checkOptions(`noiseTunnel(${m[1]})`, { [m[2]]: true }, NOISE_KEYS);
  } catch (mine) {
    return new Error(`${(mine as Error).message}, and ${m[1]}'s ${m[3]}`);
  }
  return e;
}

/** Wrap any attributor: the result has the same signature plus the noise options. */
export function noiseTunnel<O extends TargetOptions>(attributor: Attributor<O>): Attributor<O & NoiseTunnelOptions> {
  return async (model, input, opts) => {
    const op = 'noiseTunnel';
    const x = await checkedInput(op, input);
    // The wrapped attributor gets its own options only (it rejects options it does not know).
    const { type: _t, samples: _s, stdev: _d, seed: _e, samplesBatchSize: _b, ...inner } = opts;
    void [_t, _s, _d, _e, _b];
    const n = x.shape[0];
    const samples = positiveInt(op, 'samples', opts.samples, 10);
    const per = Math.min(samples, positiveInt(op, 'samplesBatchSize', opts.samplesBatchSize, samples));
    const stdev = opts.stdev ?? 1;
    if (!(stdev >= 0) || !Number.isFinite(stdev)) throw new Error(`${op}: stdev must be a finite number >= 0, got ${stdev}`);
    const type = opts.type ?? 'smoothgrad';
    if (!['smoothgrad', 'smoothgrad_sq', 'vargrad'].includes(type)) throw new Error(`${op}: unknown type '${type}' (smoothgrad, smoothgrad_sq, vargrad)`);
    const target = bl.tidy(() => resolveTarget(op, forwardOf(model, opts.rules), x, opts.target));
    let sum: Tensor | null = null, sumSq: Tensor | null = null;
    const seed = opts.seed ?? 0;
    // No read-back per chunk (contract 5): the attributor's own entry checks would read its noisy
    // input (and a tensor baseline) back once per call. The baseline is checked once here; the
    // noisy copies are finite when x is (checked above) unless x + noise overflows float32, which
    // a device-side probe over all chunks catches with the one read at the end.
    const given = (opts as { baseline?: number | Tensor }).baseline;
    if (given instanceof bl.Tensor) {
      await checkFinite(op, given, 'baseline');
      markCheckedFinite(given);
    }
    let probe: Tensor | null = null;
    for (let s = 0; s < samples; s += per) {
      const k = Math.min(per, samples - s);
      // Sample j's noise comes from its own seed, so chunking does not change the result.
      const noisy = bl.tidy(() => {
        const draws = Array.from({ length: k }, (_, j) => bl.randn(x.shape, { seed: seed * 1000003 + s + j, backend: x.backend }));
        const noise = bl.reshape(bl.transpose(bl.stack(draws, 0), [1, 0, ...x.shape.slice(1).map((_, d) => d + 2)]), [n * k, ...x.shape.slice(1)]);
        return bl.add(repeatEach(x, k), bl.mul(noise, stdev));
      });
      probe = accumulate(probe, bl.tidy(() => bl.sum(bl.mul(bl.reshape(noisy, [-1]), 0))));
      markCheckedFinite(noisy);
      // A per-item baseline (IG, DeepLIFT) repeats with its item.
      const base = given instanceof bl.Tensor && given.shape[0] === n && given.rank === x.rank ? repeatEach(given, k) : given;
      if (base !== given && base instanceof bl.Tensor) markCheckedFinite(base);
      let a: Tensor;
      try {
        a = await attributor(model, noisy, { ...inner, baseline: base, target: repeatTarget(target, n, k) } as unknown as O);
      } catch (e) {
        noisy.dispose();
        if (base !== given && base instanceof bl.Tensor) base.dispose();
        if (target instanceof bl.Tensor) target.dispose();
        sum?.dispose();
        sumSq?.dispose();
        probe?.dispose();
        if (given instanceof bl.Tensor) unmarkCheckedFinite(given);
        throw unknownOptionOfTunnel(e);
      }
      noisy.dispose();
      if (base !== given && base instanceof bl.Tensor) base.dispose();
      const [s1, s2] = bl.tidy(() => {
        const r = bl.reshape(a, [n, k, ...x.shape.slice(1)]);
        return [bl.sum(r, 1), bl.sum(bl.mul(r, r), 1)];
      });
      a.dispose();
      sum = accumulate(sum, s1);
      sumSq = accumulate(sumSq, s2);
    }
    if (target instanceof bl.Tensor) target.dispose();
    if (given instanceof bl.Tensor) unmarkCheckedFinite(given);
    const r = bl.tidy(() => {
      const mean = bl.div(sum!, samples);
      const meanSq = bl.div(sumSq!, samples);
      return type === 'smoothgrad' ? mean : type === 'smoothgrad_sq' ? meanSq : bl.sub(meanSq, bl.mul(mean, mean));
    });
    sum!.dispose();
    sumSq!.dispose();
    // The one read-back: it also waits for the result, as the sync here did.
    const finite = Number.isFinite((await probe!.data())[0]);
    probe!.dispose();
    if (!finite) {
      r.dispose();
      throw new Error(`${op}: a noisy copy of the input held a non-finite value (input + noise * stdev ${stdev} overflows float32): use a smaller stdev`);
    }
    return r;
  };
}

/** SmoothGrad: the noise tunnel over saliency (absolute gradients unless abs: false). */
export const smoothGrad = noiseTunnel<SaliencyOptions>(saliency);

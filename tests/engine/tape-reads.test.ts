// The tape keeps alive only what the default rules read (VJP_READS, a composite's `reads`), for the
// cotangents it will ask for. Here every rule of the shared gradient cases runs with everything
// else freed: the op's inputs and output are intermediates of a tidy scope inside the
// differentiated function, so a value the tape did not keep is disposed before the backward pass
// and reading it throws. Each non-empty subset of the differentiated inputs is tried (a bilinear
// op keeps one operand for the other's cotangent), at first and second order, and the gradients
// must equal those of the same function with every intermediate alive (same ops, float64 CPU).
import { beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import type { Backend, Tensor } from '../../engine/index.ts';
import { cases, randArray, size, type Case } from './grad-cases.ts';

let cpu: Backend;
beforeAll(async () => {
  cpu = await bl.init({ backend: 'cpu' });
});

function subsets(xs: readonly number[]): number[][] {
  const out: number[][] = [];
  for (let m = 1; m < 1 << xs.length; m++) out.push(xs.filter((_, i) => m & (1 << i)));
  return out;
}

/**
 * sum(w * sin(op(inputs))) as a function of the inputs in `wrt`; the others are fixed values. With
 * `scoped`, every input reaches the op as a fresh intermediate (x * 1) and the whole body runs
 * in a tidy scope, so only what the tape keeps survives until the backward pass.
 */
function lossFn(c: Case, values: Tensor[], wrt: number[], w: Tensor, scoped: boolean) {
  return (...xs: Tensor[]) => {
    const body = () => {
      const args = values.map((v, i) => {
        const k = wrt.indexOf(i);
        const t = k >= 0 ? xs[k] : v;
        return scoped ? bl.mul(t, 1) : t;
      });
      return bl.sum(bl.mul(bl.sin(c.fn(...args)), w));
    };
    return scoped ? bl.tidy(body) : body();
  };
}

async function grads(c: Case, wrt: number[], order: 1 | 2, scoped: boolean): Promise<number[][]> {
  return bl.withBackend(cpu, async () => {
    const values = c.shapes.map((s, i) => bl.tensor((c.gen ?? ((_i: number, n: number, sd: number) => randArray(n, sd)))(i, size(s), 31 + 17 * i), s));
    const outShape = bl.tidy(() => c.fn(...values)).shape;
    const w = bl.tensor(randArray(size([...outShape]), 7, 0.5, 1.5), outShape);
    const f = lossFn(c, values, wrt, w, scoped);
    const xs = wrt.map((i) => values[i]);
    let g: Tensor[];
    if (order === 1) {
      g = bl.valueAndGrad(f)(...xs)[1];
    } else {
      // d/dx <grad f(x), v>: the backward pass's own ops are recorded and differentiated
      const vs = xs.map((x, k) => bl.tensor(randArray(x.size, 91 + k), x.shape));
      const inner = (...ys: Tensor[]) => {
        const body = () => {
          const gi = bl.valueAndGrad(f)(...ys)[1];
          return gi.map((t, k) => bl.sum(bl.mul(t, vs[k]))).reduce((a, b) => bl.add(a, b));
        };
        return scoped ? bl.tidy(body) : body();
      };
      g = bl.valueAndGrad(inner)(...xs)[1];
    }
    return Promise.all(g.map(async (t) => Array.from(await t.data())));
  });
}

describe('the tape keeps what each rule reads, for the cotangents asked for', () => {
  for (const c of cases) {
    const wrt = c.wrt ?? c.shapes.map((_, i) => i);
    for (const s of subsets(wrt)) {
      for (const order of [1, 2] as const) {
        it(`${c.name}: ${order === 1 ? 'gradient' : 'second order'} w.r.t. input${s.length > 1 ? 's' : ''} ${s.join(', ')}`, async () => {
          const want = await grads(c, s, order, false);
          const got = await grads(c, s, order, true);
          expect(got).toEqual(want);
          // a non-trivial check: some cotangent is non-zero unless the op is piecewise constant
          if (!/zero gradient/.test(c.name)) expect(want.flat().some((v) => v !== 0)).toBe(true);
        });
      }
    }
  }
});

describe('what the tape holds', () => {
  const live = () => bl.memory(cpu).liveBuffers;

  it('a matmul keeps its input only when its weight\'s cotangent is wanted', () => {
    bl.withBackend(cpu, () => {
      const x = bl.tensor(randArray(12, 1), [3, 4]);
      const w = bl.tensor(randArray(20, 2), [4, 5]);
      const f = (a: Tensor, b: Tensor) => bl.tidy(() => bl.sum(bl.matmul(bl.add(a, 1), b)));
      const before = live();
      const onlyX = bl.vjp((a) => f(a, w), x);
      expect(live()).toBe(before + 1); // the value; add(x, 1) is freed (and the scalar 1 with it)
      onlyX.dispose();
      onlyX.value.dispose();
      const both = bl.vjp(f, x, w);
      expect(live()).toBe(before + 2); // the value and add(x, 1), which w's cotangent reads
      both.dispose();
      both.value.dispose();
      expect(live()).toBe(before);
    });
  });

  it('BatchNorm after a conv keeps only its per-channel factors under an input gradient', async () => {
    await bl.withBackend(cpu, async () => {
      const x = bl.tensor(randArray(2 * 3 * 5 * 5, 3), [2, 3, 5, 5]);
      const w = bl.tensor(randArray(4 * 3 * 3 * 3, 4), [4, 3, 3, 3]);
      const stats = { mean: bl.tensor(randArray(4, 5)), variance: bl.tensor(randArray(4, 6, 0.5, 2)), gamma: bl.tensor(randArray(4, 7)), beta: bl.tensor(randArray(4, 8)) };
      const f = (a: Tensor) => bl.tidy(() => bl.sum(bl.batchNorm(bl.conv2d(a, w, { padding: 1 }), stats)));
      const before = bl.memory(cpu).liveBytes;
      const r = bl.vjp(f, x);
      // Kept: the value and the per-channel scale 1/sqrt(var + eps) (what the multiplies read for
      // the centred input's cotangent): 5 doubles. Not the conv output (2x4x5x5), nor x - mean.
      expect(bl.memory(cpu).liveBytes - before).toBe(5 * 8);
      const [g] = r.vjp(bl.tensor(1));
      // d/dx sum(BN(conv(x))) = conv2dBackpropInput of the per-channel factor gamma / sqrt(var + eps)
      const factor = bl.div(stats.gamma, bl.sqrt(bl.add(stats.variance, 1e-5)));
      const ct = bl.broadcastTo(bl.reshape(factor, [1, 4, 1, 1]), [2, 4, 5, 5]);
      const want = await bl.conv2dBackpropInput(ct, w, x.shape, { padding: 1 }).data();
      const got = await g.data();
      r.dispose();
      r.value.dispose();
      expect(got.length).toBe(want.length);
      Array.from(got).forEach((v, i) => expect(v).toBeCloseTo(want[i], 12));
    });
  });
});

// Every vjp rule against central finite differences in float64 on the CPU backend.
// For each primitive we differentiate L(x) = sum(w * op(x)) with fixed random w, so every
// output element's cotangent differs, and compare each input element's gradient with
// (L(x + h e_i) - L(x - h e_i)) / 2h.
import { beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import type { Backend, Tensor } from '../../engine/index.ts';
import { type Case, cases, randArray, size } from './grad-cases.ts';
import { cpuImpls } from '../../engine/cpu/backend.ts';

let cpu: Backend;
beforeAll(async () => {
  cpu = await bl.init({ backend: 'cpu' });
});

async function checkCase(c: Case, seed: number) {
  const inputs = c.shapes.map((s, i) => (c.gen ?? ((_i: number, n: number, sd: number) => randArray(n, sd)))(i, size(s), seed + 17 * i));
  const wrt = c.wrt ?? c.shapes.map((_, i) => i);
  const outShape = bl.withBackend(cpu, () => c.fn(...inputs.map((d, i) => bl.tensor(d, c.shapes[i])))).shape;
  const w = randArray(size([...outShape]), seed + 999, 0.5, 1.5);
  const loss = (...xs: Tensor[]) => bl.sum(bl.mul(c.fn(...xs), bl.tensor(w, outShape, xs[0].backend)));
  const lossAt = (vals: number[][]) =>
    bl.withBackend(cpu, () =>
      bl.tidy(() => {
        const l = loss(...vals.map((d, i) => bl.tensor(d, c.shapes[i])));
        return cpu.readSync!(l.storageFor('test'), 1)[0];
      }),
    );
  const xs = bl.withBackend(cpu, () => inputs.map((d, i) => bl.tensor(d, c.shapes[i])));
  const grads = bl.withBackend(cpu, () => {
    const g = bl.grad((...a: Tensor[]) => loss(...a))(...xs);
    return Array.isArray(g) ? g : [g];
  });
  const h = 1e-6;
  for (const i of wrt) {
    const g = await grads[i].data();
    for (let k = 0; k < inputs[i].length; k++) {
      const plus = inputs.map((a) => a.slice());
      const minus = inputs.map((a) => a.slice());
      plus[i][k] += h;
      minus[i][k] -= h;
      const fd = (lossAt(plus) - lossAt(minus)) / (2 * h);
      expect(Math.abs(g[k] - fd), `${c.name}: input ${i} element ${k}: autodiff ${g[k]} vs finite difference ${fd}`).toBeLessThan(1e-6 * Math.max(1, Math.abs(fd)));
    }
  }
}

/**
 * Second order through every rule: the Hessian-vector product of sum(w * sin(op(x))) with respect
 * to each input (others fixed) against central differences of the autodiff gradient along v.
 */
async function checkHvp(c: Case, seed: number) {
  const inputs = c.shapes.map((s, i) => (c.gen ?? ((_i: number, n: number, sd: number) => randArray(n, sd)))(i, size(s), seed + 17 * i));
  const wrt = c.wrt ?? c.shapes.map((_, i) => i);
  await bl.withBackend(cpu, async () => {
    const outShape = c.fn(...inputs.map((d, i) => bl.tensor(d, c.shapes[i]))).shape;
    const w = bl.tensor(randArray(size([...outShape]), seed + 999, 0.5, 1.5), outShape);
    for (const i of wrt) {
      const others = inputs.map((d, j) => bl.tensor(d, c.shapes[j]));
      // sin() gives every op curvature, so the Hessian exercises the derivative of each op's
      // backward rule (for linear ops: the rule of the transpose primitive their rule uses).
      const f = (x: Tensor) => bl.sum(bl.mul(bl.sin(c.fn(...others.map((o, j) => (j === i ? x : o)))), w));
      const v = randArray(inputs[i].length, seed + 31 * i + 5);
      const x = bl.tensor(inputs[i], c.shapes[i]);
      const hv = await bl.hvp(f, x, bl.tensor(v, c.shapes[i])).data();
      const h = 1e-5;
      const gAt = (t: number) => bl.grad(f)(bl.tensor(inputs[i].map((xk, k) => xk + t * v[k]), c.shapes[i]));
      const gp = await gAt(h).data();
      const gm = await gAt(-h).data();
      for (let k = 0; k < v.length; k++) {
        const fd = (gp[k] - gm[k]) / (2 * h);
        expect(Math.abs(hv[k] - fd), `${c.name}: hvp wrt input ${i} element ${k}: ${hv[k]} vs ${fd}`).toBeLessThan(1e-5 * Math.max(1, Math.abs(fd)));
      }
    }
  });
}

describe('vjp rules vs central finite differences (float64 CPU)', () => {
  for (const c of cases) {
    it(c.name, async () => {
      await checkCase(c, 12345);
    });
  }
  it('the rule table covers every primitive', () => {
    // The VjpTable type forces this at compile time; this guards against casts. The primitive list
    // comes from the CPU backend's own table (also complete by type).
    expect(Object.keys(bl.VJP).sort()).toEqual(Object.keys(cpuImpls).sort());
    for (const p of Object.keys(bl.VJP)) expect(typeof (bl.VJP as Record<string, unknown>)[p]).toBe('function');
  });
});

describe('second order through every rule: hvp vs finite differences of the gradient', () => {
  for (const c of cases) {
    it(c.name, async () => {
      await checkHvp(c, 777);
    });
  }
});

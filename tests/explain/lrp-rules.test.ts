// Each LRP rule against an independent dense-matrix replica of its formula (the way Zennit's
// tests/unit/test_rules.py checks its rules): a Linear layer is its matrix; a Conv2d and an
// AvgPool2d are turned into their dense matrices by loops written here, and the rule's formula is
// evaluated on those matrices in plain float64 JS. On the CPU (float64) and WebGPU backends.
import { afterAll, beforeAll, describe, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import type { Backend, Rule, Tensor } from '../../engine/index.ts';
import type { WebGpuBackend } from '../../engine/webgpu/backend.ts';
import { lrpRules as R } from '../../explain/index.ts';
import * as ex from '../../explain/index.ts';
import { AvgPool2d, Conv2d, Linear, ResidualSum } from '../../models/index.ts';
import { loadBundled } from '../../models/zoo/index.ts';
import type { Module } from '../../models/module.ts';
import { expectClose } from '../helpers.ts';
import { randArray } from '../engine/grad-cases.ts';

let cpu: Backend;
let gpu: WebGpuBackend;
beforeAll(async () => {
  cpu = await bl.init({ backend: 'cpu', setDefault: false });
  gpu = (await bl.init({ backend: 'webgpu', setDefault: false })) as WebGpuBackend;
  gpu.poisonOutputs = true;
});
afterAll(() => gpu?.destroy());

const f32 = (a: number[]) => Array.from(Float32Array.from(a));
const stab = (z: number, eps = 1e-6) => z + eps * (z >= 0 ? 1 : -1);
const P = (v: number) => Math.max(v, 0);
const N = (v: number) => Math.min(v, 0);

/** y = M x + b for one item: M [J][I]. */
interface Dense {
  M: number[][];
  b: number[];
}

/** The dense matrix of a conv2d (stride/padding as given) over an input [C, H, W], by loops. */
function convMatrix(w: number[], [O, C, KH, KW]: number[], [H, W]: number[], stride: number, pad: number, groups = 1): number[][] {
  // w is [O, C/groups, KH, KW]; output channel o reads input channels of its group
  const Cg = C / groups, Og = O / groups;
  const OH = Math.floor((H + 2 * pad - KH) / stride) + 1, OW = Math.floor((W + 2 * pad - KW) / stride) + 1;
  const M = Array.from({ length: O * OH * OW }, () => new Array<number>(C * H * W).fill(0));
  for (let o = 0; o < O; o++) for (let i = 0; i < OH; i++) for (let j = 0; j < OW; j++) {
    const g = Math.floor(o / Og);
    for (let c = 0; c < Cg; c++) for (let p = 0; p < KH; p++) for (let q = 0; q < KW; q++) {
      const h = i * stride - pad + p, ww = j * stride - pad + q;
      if (h < 0 || h >= H || ww < 0 || ww >= W) continue;
      M[(o * OH + i) * OW + j][((g * Cg + c) * H + h) * W + ww] += w[((o * Cg + c) * KH + p) * KW + q];
    }
  }
  return M;
}

const mapM = (M: number[][], f: (v: number) => number) => M.map((r) => r.map(f));
const matvec = (M: number[][], x: number[]) => M.map((r) => r.reduce((s, m, i) => s + m * x[i], 0));

/** The replicas: relevance at the input of y = Mx + b for one item, per rule formula. */
const replicas: Record<string, (d: Dense, x: number[], Rout: number[]) => number[]> = {
  epsilon: ({ M, b }, x, Ro) => {
    const z = matvec(M, x).map((v, j) => v + b[j]);
    return x.map((xi, i) => xi * M.reduce((s, r, j) => s + (r[i] * Ro[j]) / stab(z[j]), 0));
  },
  'epsilon 0.25': ({ M, b }, x, Ro) => {
    const z = matvec(M, x).map((v, j) => v + b[j]);
    return x.map((xi, i) => xi * M.reduce((s, r, j) => s + (r[i] * Ro[j]) / stab(z[j], 0.25), 0));
  },
  zPlus: ({ M, b }, x, Ro) => {
    const z = M.map((r, j) => r.reduce((s, m, i) => s + P(m) * P(x[i]) + N(m) * N(x[i]), 0) + P(b[j]));
    return x.map((xi, i) => M.reduce((s, r, j) => s + ((P(xi) * P(r[i]) + N(xi) * N(r[i])) * Ro[j]) / stab(z[j]), 0));
  },
  'alphaBeta 2 1': alphaBetaReplica(2, 1),
  'alphaBeta 3 2': alphaBetaReplica(3, 2),
  gamma: gammaReplica(0.25),
  'gamma 0.5': gammaReplica(0.5),
  zBox: zBoxReplica((i) => -0.7, (i) => 0.9),
  wSquare: ({ M, b }, x, Ro) => {
    const z = M.map((r, j) => r.reduce((s, m) => s + m * m, 0) + b[j] * b[j]);
    return x.map((_, i) => M.reduce((s, r, j) => s + (r[i] * r[i] * Ro[j]) / stab(z[j]), 0));
  },
  flat: ({ M }, x, Ro) => {
    // weights 1 wherever the layer connects an input to an output (a conv's window inside the image)
    const C = mapM(M, (m) => (m !== 0 ? 1 : 0));
    const z = C.map((r) => r.reduce((s, c) => s + c, 0));
    return x.map((_, i) => C.reduce((s, r, j) => s + (r[i] * Ro[j]) / stab(z[j]), 0));
  },
};

function gammaReplica(g: number) {
  return ({ M, b }: Dense, x: number[], Ro: number[]) => {
    const y = matvec(M, x).map((v, j) => v + b[j]);
    const wp = (m: number) => m + g * P(m), wn = (m: number) => m + g * N(m);
    const zP = M.map((r, j) => r.reduce((s, m, i) => s + wp(m) * P(x[i]) + wn(m) * N(x[i]), 0) + b[j] + g * P(b[j]));
    const zN = M.map((r, j) => r.reduce((s, m, i) => s + wn(m) * P(x[i]) + wp(m) * N(x[i]), 0) + b[j] + g * N(b[j]));
    return x.map((xi, i) => M.reduce((s, r, j) => {
      const up = y[j] > 0 ? ((P(xi) * wp(r[i]) + N(xi) * wn(r[i])) * Ro[j]) / stab(zP[j]) : 0;
      const down = y[j] < 0 ? ((P(xi) * wn(r[i]) + N(xi) * wp(r[i])) * Ro[j]) / stab(zN[j]) : 0;
      return s + up + down;
    }, 0));
  };
}

/** z-box with bounds per input element (l(i), h(i)). */
function zBoxReplica(l: (i: number) => number, h: (i: number) => number) {
  return ({ M, b }: Dense, x: number[], Ro: number[]) => {
    const z = M.map((r, j) => r.reduce((s, m, i) => s + m * x[i] - P(m) * l(i) - N(m) * h(i), 0) + b[j] - P(b[j]) - N(b[j]));
    return x.map((xi, i) => M.reduce((s, r, j) => s + ((xi * r[i] - l(i) * P(r[i]) - h(i) * N(r[i])) * Ro[j]) / stab(z[j]), 0));
  };
}

function alphaBetaReplica(alpha: number, beta: number) {
  return ({ M, b }: Dense, x: number[], Ro: number[]) => {
    const zp = M.map((r, j) => r.reduce((s, m, i) => s + P(m) * P(x[i]) + N(m) * N(x[i]), 0) + P(b[j]));
    const zn = M.map((r, j) => r.reduce((s, m, i) => s + N(m) * P(x[i]) + P(m) * N(x[i]), 0) + N(b[j]));
    return x.map((xi, i) => M.reduce((s, r, j) => {
      const a = ((P(xi) * P(r[i]) + N(xi) * N(r[i])) * Ro[j]) / stab(zp[j]);
      const c = ((P(xi) * N(r[i]) + N(xi) * P(r[i])) * Ro[j]) / stab(zn[j]);
      return s + alpha * a - beta * c;
    }, 0));
  };
}

const rules: Record<string, () => Rule> = {
  epsilon: () => R.epsilon(),
  'epsilon 0.25': () => R.epsilon(0.25),
  zPlus: () => R.zPlus(),
  'alphaBeta 2 1': () => R.alphaBeta(2, 1),
  'alphaBeta 3 2': () => R.alphaBeta(3, 2),
  gamma: () => R.gamma(0.25),
  'gamma 0.5': () => R.gamma(0.5),
  zBox: () => R.zBox(-0.7, 0.9),
  wSquare: () => R.wSquare(),
  flat: () => R.flat(),
};

/** The relevance at x of a layer with `rule` attached to its kind, for output relevance Rout. */
function relevance(layer: Module, rule: Rule, xs: Tensor[], Rout: Tensor): Tensor[] {
  return bl.tidy(() => bl.withRules({ [layer.kind]: rule }, () => {
    const v = bl.vjp((...ts: Tensor[]) => layer.call(...ts), ...xs);
    try {
      return v.vjp(Rout);
    } finally {
      v.dispose();
    }
  }));
}

const BATCH = 2;
const perItem = (a: ArrayLike<number>, n: number, k: number) => Array.from(a).slice(k * n, (k + 1) * n);

for (const [bname, tol] of [['cpu', 1e-10], ['webgpu', 3e-4]] as const) {
  const backend = () => (bname === 'cpu' ? cpu : gpu);

  describe(`LRP rules vs dense replicas (${bname})`, () => {
    // Inputs of both signs (rules that split x+ / x- are exercised) and a bias of both signs.
    const lin = () => bl.withBackend(backend(), () => {
      const l = new Linear(5, 4);
      l.setTensor('weight', bl.tensor(f32(randArray(20, 3)), [4, 5]));
      l.setTensor('bias', bl.tensor(f32(randArray(4, 4, -0.3, 0.3)), [4]));
      return l;
    });
    const conv = () => bl.withBackend(backend(), () => {
      const c = new Conv2d(2, 3, 3, { padding: 1, stride: 2 });
      c.setTensor('weight', bl.tensor(f32(randArray(54, 5)), [3, 2, 3, 3]));
      c.setTensor('bias', bl.tensor(f32(randArray(3, 6, -0.3, 0.3)), [3]));
      return c;
    });
    // no bias (the rules' bias modifiers must skip it), two groups
    const grouped = () => bl.withBackend(backend(), () => {
      const c = new Conv2d(2, 4, 3, { padding: 1, groups: 2, bias: false });
      c.setTensor('weight', bl.tensor(f32(randArray(36, 15)), [4, 1, 3, 3]));
      return c;
    });
    const linNoBias = () => bl.withBackend(backend(), () => {
      const l = new Linear(5, 4, { bias: false });
      l.setTensor('weight', bl.tensor(f32(randArray(20, 16)), [4, 5]));
      return l;
    });

    for (const name of Object.keys(rules)) {
      it(`${name} on a Linear layer and a strided, padded Conv2d`, async () => {
        const b = backend();
        for (const [kind, make] of [['Linear', lin], ['Conv2d', conv], ['Linear no bias', linNoBias], ['Conv2d grouped no bias', grouped]] as const) {
          const layer = make();
          const inShape = kind.startsWith('Linear') ? [BATCH, 5] : [BATCH, 2, 5, 5];
          const I = inShape.slice(1).reduce((a, c) => a * c, 1);
          const xv = f32(randArray(BATCH * I, 7));
          const x = bl.tensor(xv, inShape, b);
          const out = bl.withBackend(b, () => layer.call(x));
          const J = out.size / BATCH;
          const rv = f32(randArray(BATCH * J, 8, -1, 2));
          const Rout = bl.tensor(rv, out.shape, b);
          const [rel] = relevance(layer, rules[name](), [x], Rout);
          const w = Array.from(await layer.param('weight').data());
          const b0 = layer.optParam('bias');
          const bias = b0 ? Array.from(await b0.data()) : null;
          const O = kind === 'Conv2d' ? 3 : 4;
          const dense: Dense = kind.startsWith('Linear')
            ? { M: Array.from({ length: 4 }, (_, j) => w.slice(j * 5, j * 5 + 5)), b: bias ?? [0, 0, 0, 0] }
            : {
                M: kind === 'Conv2d' ? convMatrix(w, [3, 2, 3, 3], [5, 5], 2, 1) : convMatrix(w, [4, 2, 3, 3], [5, 5], 1, 1, 2),
                b: Array.from({ length: J }, (_, j) => (bias ? bias[Math.floor(j / (J / O))] : 0)),
              };
          const got = await rel.data();
          for (let k = 0; k < BATCH; k++) {
            expectClose(perItem(got, I, k), replicas[name](dense, perItem(xv, I, k), perItem(rv, J, k)), tol, tol, `${name} ${kind} item ${k}`);
          }
          for (const t of [x, out, Rout, rel]) t.dispose();
          layer.dispose();
        }
      });
    }

    it('z-box with per-channel tensor bounds [1, C, 1, 1]', async () => {
      const b = backend();
      const layer = conv();
      const xv = f32(randArray(BATCH * 50, 17));
      const x = bl.tensor(xv, [BATCH, 2, 5, 5], b);
      const low = bl.tensor([-0.7, -0.2], [1, 2, 1, 1], b), high = bl.tensor([0.9, 0.6], [1, 2, 1, 1], b);
      const rv = f32(randArray(BATCH * 27, 18, -1, 2));
      const [rel] = relevance(layer, R.zBox(low, high), [x], bl.tensor(rv, [BATCH, 3, 3, 3], b));
      const w = Array.from(await layer.param('weight').data()), bias = Array.from(await layer.param('bias').data());
      const dense = { M: convMatrix(w, [3, 2, 3, 3], [5, 5], 2, 1), b: Array.from({ length: 27 }, (_, j) => bias[Math.floor(j / 9)]) };
      const rep = zBoxReplica((i) => (i < 25 ? -0.7 : -0.2), (i) => (i < 25 ? 0.9 : 0.6));
      const got = await rel.data();
      for (let k = 0; k < BATCH; k++) expectClose(perItem(got, 50, k), rep(dense, perItem(xv, 50, k), perItem(rv, 27, k)), tol, tol, `item ${k}`);
    });

    it('norm on AvgPool2d splits relevance by each input\'s share of the window average', async () => {
      const b = backend();
      const pool = new AvgPool2d({ kernel: 2, stride: 2 });
      const xv = f32(randArray(BATCH * 2 * 4 * 4, 9, 0.1, 1));
      const x = bl.tensor(xv, [BATCH, 2, 4, 4], b);
      const rv = f32(randArray(BATCH * 2 * 2 * 2, 10));
      const Rout = bl.tensor(rv, [BATCH, 2, 2, 2], b);
      const [rel] = relevance(pool, R.norm(), [x], Rout);
      // the pool as a matrix: 1/4 from each window position
      const M = convMatrix([0.25, 0.25, 0.25, 0.25], [1, 1, 2, 2], [4, 4], 2, 0);
      const got = await rel.data();
      for (let k = 0; k < BATCH * 2; k++) {
        expectClose(perItem(got, 16, k), replicas.epsilon({ M, b: [0, 0, 0, 0] }, perItem(xv, 16, k), perItem(rv, 4, k)), tol, tol, `channel-item ${k}`);
      }
    });

    it('epsilon on a ResidualSum splits relevance by each branch\'s contribution', async () => {
      const b = backend();
      const s = new ResidualSum();
      const av = f32(randArray(BATCH * 6, 11)), cv = f32(randArray(BATCH * 6, 12));
      const a = bl.tensor(av, [BATCH, 6], b), c = bl.tensor(cv, [BATCH, 6], b);
      const rv = f32(randArray(BATCH * 6, 13));
      const [ra, rc] = relevance(s, R.epsilon(), [a, c], bl.tensor(rv, [BATCH, 6], b));
      const z = av.map((v, i) => v + cv[i]);
      expectClose(await ra.data(), av.map((v, i) => (v * rv[i]) / stab(z[i])), tol, tol, 'branch a');
      expectClose(await rc.data(), cv.map((v, i) => (v * rv[i]) / stab(z[i])), tol, tol, 'branch b');
    });
  });
}

describe('lrp on a model that lives on another backend than the default', () => {
  it('the BatchNorm canonizer and the rules make their tensors on the model\'s backend', async () => {
    const m = await bl.withBackend(cpu, () => loadBundled('resnet-bn'));
    const x = bl.tensor(f32(randArray(64, 14, 0, 1)), [1, 1, 8, 8], cpu);
    const want = await bl.withBackend(cpu, async () => Array.from(await (await ex.lrp(m, x, { target: 1, composite: 'epsilon-gamma-box' })).data()));
    const got = await bl.withBackend(gpu, async () => Array.from(await (await ex.lrp(m, x, { target: 1, composite: 'epsilon-gamma-box' })).data()));
    expectClose(got, want, 0, 0, 'same values whichever backend is the default');
  });
});

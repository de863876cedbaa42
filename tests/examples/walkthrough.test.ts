// The teaching walkthrough, run as a user runs it (npx tsx examples/walkthrough.ts), its printed
// tables parsed and compared with the same network computed here in plain JavaScript loops:
// convolution, ReLU, first-maximum pooling, the linear layer, and the three ReLU backward rules
// written from their definitions (gradient: pass where z > 0; deconvnet: pass where g > 0;
// guided: both).
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { WALK_CONV, WALK_INPUT, WALK_LINEAR, LECTURE_F, LECTURE_R } from '../../examples/walkthrough.ts';

function reference() {
  const x = WALK_INPUT;
  const z = [0, 1].map((c) => Array.from({ length: 4 }, (_, i) => Array.from({ length: 4 }, (_, j) => {
    let s = 0;
    for (let p = 0; p < 3; p++) for (let q = 0; q < 3; q++) {
      const y = i + p - 1, xx = j + q - 1;
      if (y >= 0 && y < 4 && xx >= 0 && xx < 4) s += x[y][xx] * WALK_CONV[c][p][q];
    }
    return s;
  })));
  const a = z.map((ch) => ch.map((r) => r.map((v) => Math.max(v, 0))));
  const winners: [number, number, number][] = [];
  const pooled: number[] = [];
  for (let c = 0; c < 2; c++) for (let i = 0; i < 2; i++) for (let j = 0; j < 2; j++) {
    let best: [number, number] = [2 * i, 2 * j];
    for (let p = 0; p < 2; p++) for (let q = 0; q < 2; q++) if (a[c][2 * i + p][2 * j + q] > a[c][best[0]][best[1]]) best = [2 * i + p, 2 * j + q];
    winners.push([c, ...best]);
    pooled.push(a[c][best[0]][best[1]]);
  }
  const logits = WALK_LINEAR.map((row) => row.reduce((s, w, k) => s + w * pooled[k], 0));
  const target = logits.indexOf(Math.max(...logits));
  const rows = winners.map(([c, y, xx], f) => {
    const zz = z[c][y][xx], g = WALK_LINEAR[target][f];
    return { c, y, x: xx, z: zz, g, gradient: zz > 0 ? g : 0, deconvnet: Math.max(g, 0), guided: zz > 0 ? Math.max(g, 0) : 0 };
  }).sort((p, q) => p.c - q.c || p.y - q.y || p.x - q.x); // the walkthrough lists elements in memory order
  // the input gradient: transposed convolution of dz (g at the winners where z > 0)
  const dx = Array.from({ length: 4 }, () => new Array(4).fill(0));
  for (const r of rows) {
    if (r.gradient === 0) continue;
    for (let p = 0; p < 3; p++) for (let q = 0; q < 3; q++) {
      const y = r.y + p - 1, xx = r.x + q - 1;
      if (y >= 0 && y < 4 && xx >= 0 && xx < 4) dx[y][xx] += r.gradient * WALK_CONV[r.c][p][q];
    }
  }
  return { z, logits, target, rows, dx };
}

const nums = (line: string) => line.trim().split(/\s+/).map(Number);

describe('examples/walkthrough.ts', () => {
  const out = execFileSync('npx', ['tsx', 'examples/walkthrough.ts'], { encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = out.split('\n');
  const ref = reference();
  const after = (re: RegExp, n: number) => { const i = lines.findIndex((l) => re.test(l)); expect(i, `no line matching ${re}`).toBeGreaterThanOrEqual(0); return lines.slice(i + 1, i + 1 + n); };

  it('prints the forward pass and the explained class as computed by hand', () => {
    const zl = after(/^conv output z, channel 0/, 4).map(nums);
    for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) {
      expect(zl[i][j]).toBeCloseTo(ref.z[0][i][j], 4);
      expect(zl[i][4 + j]).toBeCloseTo(ref.z[1][i][j], 4);
    }
    const m = out.match(/logits = W p = \[([^\]]+)\]; explained: class (\d)/)!;
    expect(m).not.toBeNull();
    m[1].split(',').map(Number).forEach((v, k) => expect(v).toBeCloseTo(ref.logits[k], 4));
    expect(Number(m[2])).toBe(ref.target);
  });

  it('prints the input gradient of the step-by-step chain, equal to the whole network\'s', () => {
    const dl = after(/^  dx$/, 4).map(nums);
    for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) expect(dl[i][j]).toBeCloseTo(ref.dx[i][j], 4);
    expect(out).toMatch(/grad of the whole network gives the same dx \(max \|difference\| 0\.0e\+0\)/);
  });

  it('reproduces the lecture ReLU table', () => {
    const g = after(/^f\s+R\s+gradient\s+deconvnet\s+guided$/, 3).map(nums);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) {
      const f = LECTURE_F[i][j], R = LECTURE_R[i][j];
      expect(g[i][j]).toBe(f);
      expect(g[i][3 + j]).toBe(R);
      expect(g[i][6 + j]).toBe(f > 0 ? R : 0);
      expect(g[i][9 + j]).toBe(Math.max(R, 0));
      expect(g[i][12 + j]).toBe(f > 0 ? Math.max(R, 0) : 0);
    }
  });

  it('prints the network ReLU table of every rule, matching the definitions', () => {
    const i = lines.findIndex((l) => /^\s+c\s+y\s+x\s+z\s+g\s+gradient\s+deconvnet\s+guided$/.test(l));
    expect(i).toBeGreaterThan(0);
    const rows = lines.slice(i + 1).filter((l, k, all) => all.slice(0, k + 1).every((m) => /^\s+\d+\s+\d+\s+\d+\s+-?\d/.test(m))).map(nums);
    expect(rows.length).toBe(ref.rows.length);
    rows.forEach((r, k) => {
      const e = ref.rows[k];
      expect(r.slice(0, 3)).toEqual([e.c, e.y, e.x]);
      [e.z, e.g, e.gradient, e.deconvnet, e.guided].forEach((v, j) => expect(r[3 + j]).toBeCloseTo(v, 4));
    });
    // the walkthrough's input was chosen so that every case of the table occurs
    const cases = new Set(ref.rows.map((r) => `${r.z > 0 ? 'z+' : 'z-'}${r.g > 0 ? 'g+' : 'g-'}`));
    expect([...cases].sort()).toEqual(['z+g+', 'z+g-', 'z-g+', 'z-g-']);
  });

  it('shows LRP-epsilon conserving the logit and equal to input x gradient', () => {
    const logit = ref.logits[ref.target].toFixed(4);
    expect(out).toContain(`at the input ${logit}`);
    const [ixg] = [after(/^input x gradient\s+LRP epsilon/, 4).map(nums)];
    for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) {
      expect(ixg[i][j]).toBeCloseTo(WALK_INPUT[i][j] * ref.dx[i][j], 4);
      expect(ixg[i][4 + j]).toBeCloseTo(WALK_INPUT[i][j] * ref.dx[i][j], 4);
    }
  });
});

// Barnes-Hut t-SNE (van der Maaten 2014) on the host in float64, for 2-D layouts of more points
// than the exact O(N^2) device method holds: sparse input affinities over the 3 * perplexity
// nearest neighbours, and the repulsive forces summed over a quadtree whose cells count as one
// point when they look small (cell size / distance < theta).


/** Row-compressed sparse symmetric P: row i's entries are cols/vals[rowStart[i] .. rowStart[i + 1]). */
export interface SparseP {
  n: number;
  rowStart: Int32Array;
  cols: Int32Array;
  vals: Float64Array;
}

/** The k nearest other points of each row of x (N x D), by exact squared distances. */
function nearestNeighbours(x: Float64Array, N: number, D: number, k: number): { idx: Int32Array; d2: Float64Array } {
  const idx = new Int32Array(N * k), d2 = new Float64Array(N * k);
  const row = new Float64Array(N);
  const order = new Int32Array(N);
  for (let i = 0; i < N; i++) {
    for (let j = 0; j < N; j++) {
      if (j === i) {
        row[j] = Infinity;
        continue;
      }
      let s = 0;
      for (let c = 0; c < D; c++) {
        const t = x[i * D + c] - x[j * D + c];
        s += t * t;
      }
      row[j] = s;
    }
    for (let j = 0; j < N; j++) order[j] = j;
    // Partial selection is enough, but a full sort of indices keeps ties deterministic (by index).
    const sorted = Array.from(order).sort((a, b) => row[a] - row[b] || a - b);
    for (let t = 0; t < k; t++) {
      idx[i * k + t] = sorted[t];
      d2[i * k + t] = row[sorted[t]];
    }
  }
  return { idx, d2 };
}

/**
 * Sparse affinities: p_{j|i} over i's K = min(N - 1, floor(3 perplexity)) nearest neighbours,
 * calibrated to the perplexity by the same bisection as the exact method, then
 * P = (P_cond + P_cond^T) / (2N).
 */
export function sparseAffinities(x: Float64Array, N: number, D: number, perplexity: number): SparseP {
  const K = Math.min(N - 1, Math.floor(3 * perplexity));
  const { idx, d2 } = nearestNeighbours(x, N, D, K);
  const target = Math.log(perplexity);
  const cond = new Float64Array(N * K);
  for (let i = 0; i < N; i++) {
    const o = i * K;
    const dmin = d2[o];
    let mean = 0;
    for (let t = 0; t < K; t++) mean += d2[o + t] - dmin;
    mean /= K;
    let beta = mean > 0 ? 1 / mean : 1, lo = 0, hi = Infinity;
    for (let step = 0; step < 200; step++) {
      let s = 0, sd = 0;
      for (let t = 0; t < K; t++) {
        const dj = d2[o + t] - dmin;
        const p = Math.exp(-beta * dj);
        cond[o + t] = p;
        s += p;
        sd += p * dj;
      }
      const diff = Math.log(s) + (beta * sd) / s - target;
      if (Math.abs(diff) < 1e-5) break;
      if (diff > 0) {
        lo = beta;
        beta = hi === Infinity ? beta * 2 : (beta + hi) / 2;
      } else {
        hi = beta;
        beta = (beta + lo) / 2;
      }
    }
    let s = 0;
    for (let t = 0; t < K; t++) s += cond[o + t];
    for (let t = 0; t < K; t++) cond[o + t] /= s;
  }
  // Symmetrise: accumulate both directions per row.
  const rows: Map<number, number>[] = Array.from({ length: N }, () => new Map());
  for (let i = 0; i < N; i++) for (let t = 0; t < K; t++) {
    const j = idx[i * K + t], v = cond[i * K + t] / (2 * N);
    rows[i].set(j, (rows[i].get(j) ?? 0) + v);
    rows[j].set(i, (rows[j].get(i) ?? 0) + v);
  }
  const rowStart = new Int32Array(N + 1);
  for (let i = 0; i < N; i++) rowStart[i + 1] = rowStart[i] + rows[i].size;
  const cols = new Int32Array(rowStart[N]), vals = new Float64Array(rowStart[N]);
  for (let i = 0; i < N; i++) {
    const e = [...rows[i].entries()].sort((a, b) => a[0] - b[0]);
    e.forEach(([j, v], t) => ((cols[rowStart[i] + t] = j), (vals[rowStart[i] + t] = v)));
  }
  return { n: N, rowStart, cols, vals };
}

/** A quadtree over 2-D points: per node its box centre and half-width, centre of mass, count, children. */
class QuadTree {
  cx: number[] = []; cy: number[] = []; hw: number[] = [];
  mx: number[] = []; my: number[] = []; count: number[] = [];
  child: number[] = []; // first of 4 children, -1 for a leaf
  point: number[] = []; // the point a leaf holds, -1 if none (or if it holds several coincident ones)

  constructor(private y: Float64Array, n: number) {
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (let i = 0; i < n; i++) {
      x0 = Math.min(x0, y[2 * i]); x1 = Math.max(x1, y[2 * i]);
      y0 = Math.min(y0, y[2 * i + 1]); y1 = Math.max(y1, y[2 * i + 1]);
    }
    const h = Math.max(x1 - x0, y1 - y0) / 2 + 1e-5;
    this.node((x0 + x1) / 2, (y0 + y1) / 2, h);
    for (let i = 0; i < n; i++) this.insert(0, i, 0);
  }

  private node(cx: number, cy: number, hw: number): number {
    this.cx.push(cx); this.cy.push(cy); this.hw.push(hw);
    this.mx.push(0); this.my.push(0); this.count.push(0);
    this.child.push(-1); this.point.push(-1);
    return this.cx.length - 1;
  }

  private insert(nd: number, i: number, depth: number): void {
    const px = this.y[2 * i], py = this.y[2 * i + 1];
    for (;;) {
      const c = this.count[nd];
      this.mx[nd] = (this.mx[nd] * c + px) / (c + 1);
      this.my[nd] = (this.my[nd] * c + py) / (c + 1);
      this.count[nd] = c + 1;
      if (this.child[nd] === -1) {
        if (c === 0) {
          this.point[nd] = i;
          return;
        }
        // Coincident points (or too deep): keep them together in this leaf.
        if (depth > 50) {
          this.point[nd] = -1;
          return;
        }
        const old = this.point[nd];
        this.split(nd);
        if (old >= 0) {
          this.point[nd] = -1;
          // Re-insert the old point below (its mass is already counted here).
          const q = this.quadrant(nd, this.y[2 * old], this.y[2 * old + 1]);
          const ch = this.child[nd] + q;
          this.mx[ch] = this.y[2 * old]; this.my[ch] = this.y[2 * old + 1]; this.count[ch] = 1; this.point[ch] = old;
        }
      }
      nd = this.child[nd] + this.quadrant(nd, px, py);
      depth++;
    }
  }

  private quadrant(nd: number, x: number, y: number): number {
    return (x >= this.cx[nd] ? 1 : 0) + (y >= this.cy[nd] ? 2 : 0);
  }

  private split(nd: number): void {
    const h = this.hw[nd] / 2, cx = this.cx[nd], cy = this.cy[nd];
    const first = this.node(cx - h, cy - h, h);
    this.node(cx + h, cy - h, h);
    this.node(cx - h, cy + h, h);
    this.node(cx + h, cy + h, h);
    this.child[nd] = first;
  }

  /** Repulsion on point i: adds sum n w^2 (y_i - c) into f and returns sum n w (Z's share). */
  repulse(i: number, theta2: number, f: Float64Array): number {
    const px = this.y[2 * i], py = this.y[2 * i + 1];
    let z = 0, fx = 0, fy = 0;
    const stack = [0];
    while (stack.length) {
      const nd = stack.pop()!;
      const n = this.count[nd];
      if (n === 0) continue;
      if (this.child[nd] === -1 && this.point[nd] === i) continue; // the point itself
      const dx = px - this.mx[nd], dy = py - this.my[nd];
      const d2 = dx * dx + dy * dy;
      const width = 2 * this.hw[nd];
      if (this.child[nd] === -1 || width * width < theta2 * d2) {
        // A leaf holding point i among coincident ones counts the others only.
        const m = this.child[nd] === -1 && this.point[nd] === -1 && d2 === 0 ? n - 1 : n;
        const w = 1 / (1 + d2);
        z += m * w;
        fx += m * w * w * dx;
        fy += m * w * w * dy;
      } else {
        const c = this.child[nd];
        stack.push(c, c + 1, c + 2, c + 3);
      }
    }
    f[0] = fx;
    f[1] = fy;
    return z;
  }
}

/**
 * The Barnes-Hut t-SNE gradient for a 2-D layout y (N x 2): 4 (e F_attr - F_rep / Z), the
 * attraction exact over P's entries and the repulsion from the quadtree with accuracy `theta`
 * (0: exact, every point visited).
 */
export function barnesHutGradient(P: SparseP, y: Float64Array, theta = 0.5, exaggeration = 1): Float64Array {
  const N = P.n;
  const tree = new QuadTree(y, N);
  const rep = new Float64Array(2 * N);
  const f = new Float64Array(2);
  let Z = 0;
  for (let i = 0; i < N; i++) {
    Z += tree.repulse(i, theta * theta, f);
    rep[2 * i] = f[0];
    rep[2 * i + 1] = f[1];
  }
  const g = new Float64Array(2 * N);
  for (let i = 0; i < N; i++) {
    let ax = 0, ay = 0;
    for (let t = P.rowStart[i]; t < P.rowStart[i + 1]; t++) {
      const j = P.cols[t];
      const dx = y[2 * i] - y[2 * j], dy = y[2 * i + 1] - y[2 * j + 1];
      const w = P.vals[t] / (1 + dx * dx + dy * dy);
      ax += w * dx;
      ay += w * dy;
    }
    g[2 * i] = 4 * (exaggeration * ax - rep[2 * i] / Z);
    g[2 * i + 1] = 4 * (exaggeration * ay - rep[2 * i + 1] / Z);
  }
  return g;
}

export interface BarnesHutRun {
  coords: Float64Array;
  /** The same optimiser settings as the exact method. */
  iterations: number;
}

/**
 * The optimiser of the exact method (exaggeration, momentum, gains, re-centring) on the host with
 * the Barnes-Hut gradient. `init` is the N x 2 start layout.
 */
export function barnesHutDescent(
  P: SparseP,
  init: Float64Array,
  o: { iterations: number; lr: number; ee: number; eeIters: number; mom0: number; mom1: number; momSwitch: number; minGain: number; theta: number },
): Float64Array {
  const N = P.n;
  const y = Float64Array.from(init);
  const upd = new Float64Array(2 * N), gains = new Float64Array(2 * N).fill(1);
  for (let it = 0; it < o.iterations; it++) {
    const g = barnesHutGradient(P, y, o.theta, it < o.eeIters ? o.ee : 1);
    const mom = it < o.momSwitch ? o.mom0 : o.mom1;
    let sx = 0, sy = 0;
    for (let t = 0; t < 2 * N; t++) {
      gains[t] = Math.max(upd[t] * g[t] < 0 ? gains[t] + 0.2 : gains[t] * 0.8, o.minGain);
      upd[t] = mom * upd[t] - o.lr * gains[t] * g[t];
      y[t] += upd[t];
      if (t % 2 === 0) sx += y[t];
      else sy += y[t];
    }
    for (let i = 0; i < N; i++) {
      y[2 * i] -= sx / N;
      y[2 * i + 1] -= sy / N;
    }
  }
  return y;
}

/** KL(P || Q) with sparse P and Q's normaliser by the quadtree (theta) — for reporting. */
export function barnesHutKl(P: SparseP, y: Float64Array, theta = 0.5): number {
  const N = P.n;
  const tree = new QuadTree(y, N);
  const f = new Float64Array(2);
  let Z = 0;
  for (let i = 0; i < N; i++) Z += tree.repulse(i, theta * theta, f);
  let kl = 0;
  for (let i = 0; i < N; i++) for (let t = P.rowStart[i]; t < P.rowStart[i + 1]; t++) {
    const j = P.cols[t], p = P.vals[t];
    const dx = y[2 * i] - y[2 * j], dy = y[2 * i + 1] - y[2 * j + 1];
    const q = Math.max(1 / (1 + dx * dx + dy * dy) / Z, 1e-12);
    if (p > 0) kl += p * Math.log(p / q);
  }
  return kl;
}



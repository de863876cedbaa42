// The benchmark suite's one row schema, and what every suite step shares: the adapter label, the
// load average, interleaved warm-up + median timing under a time budget, the error against the
// float64 CPU backend, the table and the JSON. Each step (bench/kernels.ts, bench/cnn-step.ts,
// bench/resnet18.ts, ...) returns rows of this shape; bench/run.ts converts the older benchmarks'
// JSON (bench/ops.ts, bench/explain.ts, bench/kernel-shap.ts) into the same rows and prints one table.
import { availableParallelism, cpus, loadavg } from 'node:os';
import type { AdapterInfo } from '../../engine/index.ts';
import * as bl from '../../engine/index.ts';
import { fmt, median, table, writeResults } from './report.ts';
import { setupTfjs, type Tf, type TfjsPeer } from './tfjs.ts';

/**
 * One measurement against one peer. A measurement with two peers (TF.js and onnxruntime) is two
 * rows with the same ours_ms; one with no peer that can run it is one row with peer null.
 */
export interface BenchRow {
  /** matmul, conv, pool, chain, cnn, explain, shap, resnet18, ... */
  group: string;
  /** What runs, e.g. 'conv2d backprop-filter', 'small CNN forward', 'IG 64 steps (shapes-cnn)'. */
  name: string;
  /** The operands or the batch, e.g. '1024x1024 @ 1024x1024', '8x3x224x224'. */
  shape: string;
  /** backlight: median wall-clock milliseconds per call (null when it did not run). */
  ours_ms: number | null;
  /** tfjs-webgpu (same adapter), ort-cpu (onnxruntime-node, CPU EP), js (plain JS), backlight-before, ... */
  peer: string | null;
  peer_ms: number | null;
  /** peer_ms / ours_ms: above 1, backlight is faster. */
  ratio: number | null;
  /** backlight's GFLOP/s (2 per multiply-add) where the work is counted in FLOPs. */
  gflops: number | null;
  /** backlight's GB/s (bytes an ideal kernel moves) for bandwidth-bound rows. */
  gbps: number | null;
  /** backlight's items per second (images, model evaluations) where the row is a model call. */
  evals_per_s: number | null;
  /** The adapter backlight ran on (bench/lib/suite.ts adapterLabel). */
  adapter: string;
  /**
   * backlight's max error against the float64 CPU backend, relative to the reference's largest
   * magnitude (per item for maps), measured before timing; null when not checked (see note).
   */
  checked: number | null;
  /** The same for the peer, where it was checked. */
  peer_checked?: number | null;
  /** Where the check ran when it is not the timed shape (the CPU backend is slow at large sizes). */
  checked_at?: string;
  /** 'ok', or what failed: a disagreement with the CPU backend is printed, never hidden. */
  status: string;
  reps?: number;
  peer_reps?: number;
  /** Free text: why a peer is missing, what the row's work is. */
  note?: string;
}

export const TOL = 1e-3;

export function adapterLabel(info: AdapterInfo): string {
  const kind = info.adapter ?? (info.software ? 'software' : 'gpu');
  return `${kind}: ${info.description || info.device || info.vendor}`;
}

export function loadNow(): string {
  return loadavg().map((v) => v.toFixed(2)).join(' ');
}

export function machine(): { cores: number; cpu: string; node: string; load: string } {
  return { cores: availableParallelism(), cpu: cpus()[0]?.model ?? '?', node: process.version, load: loadNow() };
}

/** max |a - ref| / max |ref| over the whole tensor (absolute error when ref is all zero). */
export function maxRelErr(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (a.length !== ref.length) return Infinity;
  let num = 0, den = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(a[i] - ref[i]);
    // NaN must fail the check, and Math.max(NaN, x) is NaN, which `<= TOL` rejects.
    num = Number.isNaN(d) ? NaN : Math.max(num, d);
    den = Math.max(den, Math.abs(ref[i]));
  }
  return den === 0 ? num : num / den;
}

/** maxRelErr per item of a batch of n (each map against its own scale), the worst item. */
export function maxRelErrPerItem(a: ArrayLike<number>, ref: ArrayLike<number>, n: number): number {
  if (a.length !== ref.length || ref.length % n) return Infinity;
  const per = ref.length / n;
  let worst = 0;
  for (let i = 0; i < n; i++) {
    const e = maxRelErr(Array.prototype.slice.call(a, i * per, (i + 1) * per), Array.prototype.slice.call(ref, i * per, (i + 1) * per));
    worst = Number.isNaN(e) ? NaN : Math.max(worst, e);
  }
  return worst;
}

export interface Contender {
  engine: string;
  /** One call, ending when its work is complete (a read-back or a queue wait). */
  run: () => Promise<void>;
}

export interface TimingOptions {
  warmup?: number;
  /** Most timed reps per contender. */
  reps?: number;
  /** Fewest timed reps per contender, whatever the budget says. */
  minReps?: number;
  /** Seconds for all contenders' timed reps together; reps shrink to fit it (never below minReps). */
  budget?: number;
}

/**
 * Time contenders on the same work: warm-up calls, then reps interleaved in ABBA order (A B, B A,
 * ...) so that load from other processes on a shared machine falls on every engine alike. The
 * rep count is the most that fits the budget at the warm-up's pace. Returns each one's times.
 */
export async function measure(cs: readonly Contender[], o: TimingOptions = {}): Promise<Map<string, number[]>> {
  const warmup = o.warmup ?? 1, maxReps = o.reps ?? 5, minReps = o.minReps ?? 1, budget = (o.budget ?? 30) * 1000;
  let est = 0;
  for (const c of cs) {
    let last = 0;
    for (let i = 0; i < warmup; i++) {
      const t0 = performance.now();
      await c.run();
      last = performance.now() - t0;
    }
    est += last;
  }
  const reps = warmup > 0 && est > 0 ? Math.max(minReps, Math.min(maxReps, Math.floor(budget / est))) : maxReps;
  const ms = new Map<string, number[]>(cs.map((c) => [c.engine, []]));
  for (let i = 0; i < reps; i++) {
    const order = i % 2 ? [...cs].reverse() : cs;
    for (const c of order) {
      const t0 = performance.now();
      await c.run();
      ms.get(c.engine)!.push(performance.now() - t0);
    }
  }
  return ms;
}

export interface Measured {
  group: string;
  name: string;
  shape: string;
  adapter: string;
  ours?: number[];
  /** Peers' times by label, or a reason string when the peer could not run this row. */
  peers: Record<string, number[] | string>;
  flops?: number;
  bytes?: number;
  /** Items (images, evaluations) per call, for evals_per_s. */
  items?: number;
  checked?: number | null;
  peerChecked?: Record<string, number | null | undefined>;
  checkedAt?: string;
  note?: string;
  /** An error that stopped the row (printed as its status). */
  error?: string;
}

/** The uniform rows of one measurement: one per peer (or one with peer null). */
export function rowsOf(m: Measured): BenchRow[] {
  const ours = m.ours && m.ours.length ? median(m.ours) : null;
  const per = (v: number | null, q: number | undefined) => (v && q ? q / v / 1e6 : null);
  const bad = (e: number | null | undefined) => e !== undefined && e !== null && !(e <= TOL);
  const base = {
    group: m.group, name: m.name, shape: m.shape, ours_ms: ours, adapter: m.adapter,
    gflops: per(ours, m.flops), gbps: per(ours, m.bytes), evals_per_s: ours && m.items ? (m.items * 1000) / ours : null,
    checked: m.checked ?? null, ...(m.checkedAt ? { checked_at: m.checkedAt } : {}), reps: m.ours?.length,
  };
  const status = (peerErr?: number | null) =>
    m.error ? `ERROR: ${m.error}` : bad(m.checked) ? `MISMATCH vs cpu-f64 (${fmtErr(m.checked)})` : bad(peerErr) ? `peer MISMATCH vs cpu-f64 (${fmtErr(peerErr)})` : 'ok';
  const peers = Object.entries(m.peers);
  if (!peers.length) return [{ ...base, peer: null, peer_ms: null, ratio: null, status: status(), ...(m.note ? { note: m.note } : {}) }];
  return peers.map(([label, t]) => {
    const pm = Array.isArray(t) && t.length ? median(t) : null;
    const pc = m.peerChecked?.[label];
    const note = [m.note, typeof t === 'string' ? t : undefined].filter(Boolean).join('; ');
    return {
      ...base, peer: label, peer_ms: pm, ratio: pm && ours ? pm / ours : null,
      ...(pc !== undefined ? { peer_checked: pc } : {}), ...(Array.isArray(t) ? { peer_reps: t.length } : {}),
      status: status(pc), ...(note ? { note } : {}),
    };
  });
}

export function fmtErr(e: number | null | undefined): string {
  if (e === null || e === undefined) return '-';
  if (Number.isNaN(e)) return 'NaN';
  return e.toExponential(1);
}

/** The suite's table: one line per row. */
export function rowsTable(rows: readonly BenchRow[]): string {
  return table(
    ['group', 'name', 'shape', 'ours ms', 'peer', 'peer ms', 'ratio', 'GFLOP/s', 'GB/s', 'evals/s', 'checked', 'status'],
    rows.map((r) => [
      r.group, r.name, r.shape, fmt(r.ours_ms ?? undefined), r.peer ?? '-', fmt(r.peer_ms ?? undefined),
      r.ratio === null ? '-' : `${fmt(r.ratio)}x`, fmt(r.gflops ?? undefined), fmt(r.gbps ?? undefined), fmt(r.evals_per_s ?? undefined),
      fmtErr(r.checked), r.status === 'ok' ? 'ok' : r.status.slice(0, 60),
    ]),
  );
}

// ---- a step: its engines, its end ----


export interface Step {
  name: string;
  backend: bl.Backend;
  /** The float64 reference backend the rows are checked against. */
  cpu: bl.Backend;
  info: AdapterInfo;
  adapter: string;
  /** TF.js on its WebGPU backend on the same adapter, or undefined (peerReason says why). */
  tf?: Tf;
  peer?: TfjsPeer;
  peerReason?: string;
  startLoad: string;
  t0: number;
}

/** Open a step: backlight on the default adapter, the CPU reference, TF.js unless `tfjs` is false. */
export async function openStep(name: string, opts: { tfjs?: boolean } = {}): Promise<Step> {
  const t0 = performance.now();
  const startLoad = loadNow();
  const backend = await bl.init();
  const cpu = await bl.init({ backend: 'cpu', setDefault: false });
  const info = backend.info;
  const adapter = adapterLabel(info);
  console.log(`${name}: backlight on ${info.vendor} / ${info.architecture} / ${info.description}${info.software ? ' (software)' : ''}; Node ${process.version}, ${availableParallelism()} cores, load ${startLoad}`);
  let peer: TfjsPeer | undefined, tf: Tf | undefined, peerReason: string | undefined;
  if (opts.tfjs ?? true) {
    peer = await setupTfjs('webgpu');
    if (peer.backend === 'webgpu') {
      tf = peer.tf;
      const same = peer.adapter?.description === info.description && peer.adapter?.architecture === info.architecture;
      console.log(`TF.js ${peer.version} WebGPU on ${peer.adapter?.description}${same ? ' [same adapter]' : ' [DIFFERENT adapter]'}`);
      if (!same) peerReason = 'TF.js runs on a different adapter';
    } else {
      // TF.js's cpu backend is not the peer the rows claim (its WebGPU backend on the same adapter).
      peerReason = peer.fallbackReason ?? 'TF.js WebGPU unavailable';
      console.log(`TF.js rows skipped: ${peerReason}`);
    }
  } else peerReason = 'TF.js not run (--no-tfjs)';
  return { name, backend, cpu, info, adapter, tf, peer, peerReason, startLoad, t0 };
}

/**
 * Write the rows so far (marked partial), so that a step stopped at its time limit by bench/run.ts
 * still hands over what it measured.
 */
export function progress(s: Step, rows: readonly BenchRow[], outDir?: string): void {
  writeResults(s.name, { step: s.name, partial: true, date: new Date().toISOString(), adapter: s.info, rows }, outDir);
}

/** Print the step's rows and write bench/results/<name>.json (or DIR/<name>.json with --out DIR). */
export function finishStep(s: Step, rows: readonly BenchRow[], extra: Record<string, unknown> = {}, outDir?: string): string {
  const endLoad = loadNow();
  console.log(`\n${s.name} on ${s.adapter}; median ms per call; ratio = peer ms / ours (above 1: backlight faster); load ${s.startLoad} -> ${endLoad}`);
  console.log(rowsTable(rows));
  const notes = [...new Set(rows.filter((r) => r.note).map((r) => `${r.name} ${r.shape}: ${r.note}`))];
  if (notes.length) console.log(`notes:\n  ${notes.join('\n  ')}`);
  const path = writeResults(s.name, {
    step: s.name, date: new Date().toISOString(), machine: { ...machine(), load: { start: s.startLoad, end: endLoad } },
    adapter: s.info, tfjs: s.peer ? { version: s.peer.version, backend: s.peer.backend, adapter: s.peer.adapter, fallbackReason: s.peer.fallbackReason } : null,
    tolerance: TOL, seconds: (performance.now() - s.t0) / 1000, ...extra, rows,
  }, outDir);
  console.log(`wrote ${path} (${((performance.now() - s.t0) / 1000).toFixed(0)} s)`);
  return path;
}

// The older benchmarks' JSON (bench/ops.ts, bench/explain.ts, bench/kernel-shap.ts) as the suite's
// uniform rows (bench/lib/suite.ts), for bench/run.ts.
import { adapterLabel, rowsOf, type BenchRow, type Measured } from './suite.ts';

export type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** 'conv2d backprop-input 1024x1x12x12 k3 -> 8' -> name 'conv2d backprop-input', shape the rest. */
function splitName(s: string): { name: string; shape: string } {
  const ops = / \((\d+ ops)\)$/.exec(s);
  const core = ops ? s.slice(0, ops.index) : s;
  const at = core.search(/\d+x\d+|\[\d/);
  if (at <= 0) return { name: s, shape: '' };
  return { name: `${core.slice(0, at).trim()}${ops ? ` (${ops[1]})` : ''}`, shape: core.slice(at).trim() };
}

const PEER: Record<string, string> = { tfjs: 'tfjs-webgpu', 'tfjs-webgpu': 'tfjs-webgpu', 'tfjs-cpu': 'tfjs-cpu', ort: 'ort-cpu', 'backlight+ort': 'backlight+ort (black box)', 'backlight-before': 'backlight-before' };

export function fromOps(j: Json): BenchRow[] {
  const adapter = adapterLabel(j.adapter);
  const byRow = new Map<string, Json[]>();
  for (const r of j.results as Json[]) byRow.set(r.row, [...(byRow.get(r.row) ?? []), r]);
  const group = (k: string) => (k === 'matmul' ? 'matmul' : k === 'chain' ? 'chain' : 'conv');
  return [...byRow.entries()].flatMap(([row, rs]) => {
    const ours = rs.find((r) => r.engine === 'backlight');
    const { name, shape } = splitName(row);
    const m: Measured = {
      group: group(rs[0].kind), name, shape, adapter, ours: ours?.msAll, peers: {}, peerChecked: {},
      // ops.ts reports GFLOP/s and GB/s at its median; back to the work per op.
      flops: ours ? ours.gflops * ours.msPerOp * 1e6 : undefined,
      bytes: ours && rs[0].kind === 'chain' ? ours.gbps * ours.msPerOp * 1e6 : undefined,
      checked: ours?.maxRelDiffVsCpu ?? null, note: 'bench/ops.ts: ms per op, ops run back to back without a read-back',
    };
    for (const r of rs) {
      if (r.engine === 'backlight') continue;
      const p = PEER[r.engine] ?? r.engine;
      m.peers[p] = r.msAll;
      m.peerChecked![p] = r.maxRelDiffVsCpu ?? null;
    }
    if (!('tfjs-webgpu' in m.peers) && j.tfjs?.fallbackReason) m.peers['tfjs-webgpu'] = j.tfjs.fallbackReason;
    return rowsOf(m);
  });
}

export function fromExplain(j: Json): BenchRow[] {
  const adapter = adapterLabel(j.adapter.backlight);
  const shapes = new Map<string, number[]>((j.models as Json[]).map((m) => [m.name, m.inputShape]));
  const quad = j.options?.igMethod;
  const keys = new Set((j.rows as Json[]).map((r) => `${r.model}|${r.method}|${r.batch}`));
  return [...keys].flatMap((k) => {
    const [model, method, batch] = k.split('|');
    const rs = (j.rows as Json[]).filter((r) => `${r.model}|${r.method}|${r.batch}` === k);
    const ours = rs.find((r) => r.engine === 'backlight');
    // The check rows for what was timed: IG's quadrature, the timed target.
    const cr = ((j.check?.rows ?? []) as Json[]).filter((c) => c.model === model && c.method === method && c.target === j.target && (method !== 'ig' || c.quadrature === quad));
    const mx = (f: string) => (cr.length ? Math.max(...cr.map((c) => c[f] ?? NaN)) : null);
    const m: Measured = {
      group: 'explain', name: method === 'ig' ? `IG ${j.options?.steps ?? 64} steps (${model})` : `Grad-CAM (${model})`,
      shape: `${batch}x${(shapes.get(model) ?? []).join('x')}`, adapter, ours: ours?.msAll, items: Number(batch), peers: {},
      checked: mx('blVsF64'), peerChecked: {}, checkedAt: j.check ? `batch ${j.check.batch}` : undefined,
      note: cr.some((c) => c.status === 'MISMATCH') ? 'bench/explain.ts check: MISMATCH' : undefined,
    };
    for (const r of rs) {
      if (r.engine === 'backlight') continue;
      const p = PEER[r.engine] ?? r.engine;
      m.peers[p] = r.msAll;
      m.peerChecked![p] = mx('tfVsF64');
    }
    return rowsOf(m);
  });
}

export function fromShap(j: Json): BenchRow[] {
  const adapter = adapterLabel(j.adapter.backlight);
  const checks = new Map<string, Json>(((j.check?.rows ?? []) as Json[]).map((c) => [c.model, c]));
  const cases = new Map<string, Json>(((j.cases ?? []) as Json[]).map((c) => [c.model, c]));
  const keys = new Set((j.rows as Json[]).map((r) => `${r.model}|${r.batch}`));
  return [...keys].flatMap((k) => {
    const [model, batch] = k.split('|');
    const rs = (j.rows as Json[]).filter((r) => `${r.model}|${r.batch}` === k);
    const ours = rs.find((r) => r.engine === 'backlight');
    const c = checks.get(model), cs = cases.get(model);
    // kernel-shap.ts keeps one median per call; the evaluations per call are the items.
    const m: Measured = {
      group: 'shap', name: `KernelSHAP (${model})`,
      shape: `${rs[0].samples} coalitions x ${cs?.referenceRows ?? 1} rows, chunks of ${batch}`, adapter,
      ours: ours ? [ours.msMedian] : undefined, items: rs[0].evaluations, peers: {}, peerChecked: {},
      checked: c ? c.backlight : null, checkedAt: c ? `first ${c.coalitions} coalitions` : undefined,
    };
    for (const r of rs) {
      if (r.engine === 'backlight') continue;
      const p = PEER[r.engine] ?? r.engine;
      m.peers[p] = [r.msMedian];
      const ck = r.engine === 'tfjs' ? Object.keys(c ?? {}).find((q) => q.startsWith('tfjs')) : r.engine;
      if (c && ck && typeof c[ck] === 'number') m.peerChecked![p] = c[ck];
    }
    return rowsOf(m);
  });
}


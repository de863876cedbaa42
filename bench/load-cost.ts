// What a storage-buffer load costs next to an FMA on this adapter: the probe behind the software
// adapters' kernel choices (register blocks sized by loads per FMA, not by FMAs). Not a contest,
// so there is no peer: it characterises the adapter that the other benches' rows run on.
//
// Each invocation runs `iters` iterations of `acc` independent FMAs (registers only) plus `loads`
// loads from a storage buffer, in four forms:
//   fma only      the FMAs alone (the ceiling the loads are measured against);
//   divergent     each invocation its own address (what a register-tiled kernel's inputs are);
//   same address  one address for every invocation (a weight that a whole workgroup reads: a
//                 driver could load it once per SIMD group, and whether it does is what this row shows);
//   subgroup      one load per subgroup lane, handed out by subgroupBroadcast (needs the
//                 'subgroups' feature; 1 load per `subgroup size` values).
// Every buffer element is 0.5, so the result does not depend on the address and each run is
// checked against the same FMA recurrence evaluated in float64 here.
//
//   npx tsx bench/load-cost.ts [--iters 256] [--invocations 65536] [--reps 5] [--out DIR]
//
// Writes bench/results/load-cost.json. `ns_per_load` is (ms - ms of fma only) per lane-load:
// invocations x iterations x loads.
import { acquireDevice } from '../engine/webgpu/device.ts';
import { Args } from './lib/args.ts';
import { fmt, median, table, writeResults } from './lib/report.ts';

const args = new Args();
args.checkKnown(['iters', 'invocations', 'reps', 'out']);
const iters = args.int('iters') ?? 256;
const invocations = args.int('invocations') ?? 1 << 16;
const reps = args.int('reps') ?? 5;
if (invocations % 64 !== 0 || invocations <= 0) throw new Error(`load-cost: --invocations must be a positive multiple of 64, got ${invocations}`);

const acquired = await acquireDevice();
// A second adapter object for a device with 'subgroups' (an adapter makes one device).
const root = acquired.gpuRoot as GPU;
const adapter = typeof navigator !== 'undefined' ? acquired.adapter : ((await root.requestAdapter()) ?? acquired.adapter);
const subgroups = adapter.features.has('subgroups');
const device = adapter === acquired.adapter ? acquired.device : await adapter.requestDevice({ requiredFeatures: subgroups ? ['subgroups' as GPUFeatureName] : [] });
const info = adapter.info as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number };
const S = info.subgroupMinSize ?? 0;
const usesSubgroups = subgroups && S > 0 && S === info.subgroupMaxSize;
console.log(`adapter: ${acquired.info.adapter} (${acquired.info.description}); subgroups: ${usesSubgroups ? `size ${S}` : 'not available (row left out)'}`);

const N = 1 << 20;
const input = device.createBuffer({ size: N * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
device.queue.writeBuffer(input, 0, new Float32Array(N).fill(0.5));
const output = device.createBuffer({ size: invocations * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
const readback = device.createBuffer({ size: 64 * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
const uni = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
device.queue.writeBuffer(uni, 0, new Uint32Array([iters, 0, 0, 0]));

type Form = 'fma only' | 'divergent' | 'same address' | 'subgroup';

function kernel(form: Form, acc: number, loads: number): string {
  const as = [...Array(acc).keys()], ls = [...Array(loads).keys()];
  // the buffer index of load l at iteration k (masked into the buffer)
  const at = (l: number) => (form === 'divergent' ? `(gid.x * 7u + k * 64u + ${l}u) & ${N - 1}u` : `(k * 8u + ${l}u) & ${N - 1}u`);
  const load = (l: number) =>
    form === 'subgroup' ? `subgroupBroadcast(lane${Math.floor(l / S)}, ${l % S}u)` : `I[${at(l)}]`;
  const pre = form === 'subgroup' ? [...Array(Math.ceil(loads / S)).keys()].map((q) => `let lane${q} = I[(gid.x * 7u + k * 64u + ${q}u) & ${N - 1}u];`).join(' ') : '';
  const x = (a: number) => (form === 'fma only' ? 'x0' : `x${a % loads}`);
  return `${form === 'subgroup' ? 'enable subgroups;\n' : ''}struct P { iters: u32, a: u32, b: u32, c: u32 };
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> O: array<f32>;
@group(0) @binding(2) var<storage, read> I: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${as.map((a) => `var acc${a} = f32(gid.x) * 1e-6 + ${a}.0;`).join(' ')}
  let x0 = I[gid.x];
  for (var k = 0u; k < p.iters; k++) {
    ${form === 'fma only' ? '' : `${pre} ${ls.map((l) => `let x${l} = ${load(l)};`).join(' ')}`}
    ${as.map((a) => `acc${a} = fma(acc${a}, ${x(a)}, 0.001);`).join(' ')}
  }
  O[gid.x] = ${as.map((a) => `acc${a}`).join(' + ')};
}`;
}

/** The first 64 outputs in float64: every load reads 0.5. */
function expected(acc: number): Float64Array {
  const r = new Float64Array(64);
  for (let g = 0; g < 64; g++) {
    let s = 0;
    for (let a = 0; a < acc; a++) {
      let v = Math.fround(g * 1e-6) + a;
      for (let k = 0; k < iters; k++) v = v * 0.5 + 0.001;
      s += v;
    }
    r[g] = s;
  }
  return r;
}

interface Row { form: Form; acc: number; loads: number; ms: number; gflops: number; nsPerLoad?: number; checked: number }
const rows: Row[] = [];

async function measureForm(form: Form, acc: number, loads: number): Promise<Row> {
  const module = device.createShaderModule({ code: kernel(form, acc, loads) });
  const pipeline = await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const group = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [{ binding: 0, resource: { buffer: uni } }, { binding: 1, resource: { buffer: output } }, { binding: 2, resource: { buffer: input } }],
  });
  const once = async () => {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(invocations / 64);
    pass.end();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
  };
  await once();
  // checked before timing, as every bench row
  const enc = device.createCommandEncoder();
  enc.copyBufferToBuffer(output, 0, readback, 0, 64 * 4);
  device.queue.submit([enc.finish()]);
  await readback.mapAsync(GPUMapMode.READ);
  const got = new Float32Array(readback.getMappedRange().slice(0));
  readback.unmap();
  // fma only multiplies by I[gid.x] = 0.5 too, so one recurrence covers every form
  const want = expected(acc);
  let err = 0;
  for (let i = 0; i < 64; i++) err = Math.max(err, Math.abs(got[i] - want[i]) / Math.abs(want[i]));
  if (!(err < 1e-4)) throw new Error(`load-cost: ${form} (acc ${acc}, loads ${loads}) computed ${got[0]}, expected ${want[0]} (relative error ${err})`);
  const ts: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t = performance.now();
    await once();
    ts.push(performance.now() - t);
  }
  const ms = median(ts);
  return { form, acc, loads: form === 'fma only' ? 0 : loads, ms, gflops: (2 * invocations * iters * acc) / ms / 1e6, checked: err };
}

const acc = 32;
const base = await measureForm('fma only', acc, 0);
rows.push(base);
for (const loads of [4, 8, 16]) {
  for (const form of ['divergent', 'same address', ...(usesSubgroups ? ['subgroup' as const] : [])] as Form[]) {
    const r = await measureForm(form, acc, loads);
    r.nsPerLoad = ((r.ms - base.ms) * 1e6) / (invocations * iters * loads);
    rows.push(r);
  }
}

console.log(
  table(
    ['form', 'FMAs', 'loads', 'ms', 'GFLOP/s', 'ns per lane-load', 'checked'],
    rows.map((r) => [r.form, String(r.acc), String(r.loads), fmt(r.ms), fmt(r.gflops), fmt(r.nsPerLoad), r.checked.toExponential(1)]),
  ),
);
console.log(`per iteration of ${invocations} invocations x ${iters} iterations; medians of ${reps} after a warm-up; GFLOP/s counts 2 per FMA (loads not counted)`);
const path = writeResults('load-cost', { adapter: acquired.info, subgroupSize: usesSubgroups ? S : null, invocations, iters, reps, rows }, args.string('out'));
console.log(`wrote ${path}`);
device.destroy();
if (device !== acquired.device) acquired.device.destroy();

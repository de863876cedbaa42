// The WebGPU backend: each primitive as one (or a few) dispatches of the hand-written kernels in
// shaders/. Inputs arrive validated; this file only lays out uniforms and picks kernel variants.
import type { AdapterInfo, Backend, BackendImpls, MemoryInfo } from '../backend.ts';
import { sizeOf } from '../backend.ts';
import type { Operand, PrimParams, Primitive, Shape, UnaryPrim, BinaryPrim, Pool2dParams } from '../primitives.ts';
import { BINARY_PRIMS, UNARY_PRIMS } from '../primitives.ts';
import {
  BINARY_EXPR,
  UNARY_EXPR,
  binaryShader,
  broadcastUniforms,
  fillShader,
  fillUniforms,
  mapUniforms,
  selectShader,
  selectUniforms,
  unaryShader,
} from '../../shaders/elementwise.ts';
import { movementShader, movementUniforms } from '../../shaders/movement.ts';
import { type ReduceKind, reduceRowsShader, reduceUniforms, reduceWorkgroupShader } from '../../shaders/reduce.ts';
import {
  type ConvGpuKind, type ConvGpuOptions, type ConvGpuParams, type ConvGpuShapes, conv2dGpuBackpropFilterWorkgroups, conv2dGpuBackpropInputWorkgroups,
  conv2dGpuConfigFor, conv2dGpuDims, conv2dGpuFilterSplit, conv2dGpuFor, conv2dGpuOptions, conv2dGpuUniformsWith, conv2dGpuValues, conv2dGpuWorkgroups,
  packConv2dGpu, packConv2dGpuBackpropFilter, packConv2dGpuBackpropInput,
} from '../../shaders/conv2d-gpu.ts';
import { MATMUL_GPU_CONFIGS, type MatmulGpuConfig, matmulGpuFor, matmulGpuOptions, matmulGpuWorkgroups, packMatmulGpu } from '../../shaders/matmul-gpu.ts';
import { matmulRegisterTiledFor, matmulUniforms, matmulUniformsWith, matmulWorkgroupTiled, matmulWorkgroupTiledFor } from '../../shaders/matmul.ts';
import { conv2dBackpropFilterShader, conv2dBackpropInputShader, conv2dShader, convFields, convUniforms } from '../../shaders/conv2d.ts';
import {
  conv2dBackpropFilterTiledShader,
  conv2dBackpropInputTiledShader,
  conv2dTiledShaderFor,
  convBackpropFilterTiledUniforms,
  convBackpropInputTiledUniforms,
  convTiledUniforms,
  convTiledUniformsWith,
} from '../../shaders/conv2d-tiled.ts';
import { avgPoolBackpropShader, avgPoolShader, maxPoolGatherShader, maxPoolRowGroups, maxPoolScatterCellsShader, maxPoolScatterShader, poolUniforms } from '../../shaders/pool.ts';
import { resizeBilinearBackpropShader, resizeBilinearShader, resizeUniforms } from '../../shaders/resize.ts';
import { gatherShader, gatherUniforms, scatterAddShader, scatterAddUniforms } from '../../shaders/gather.ts';
import { randomShader, randomUniforms } from '../../shaders/random.ts';
import type { UniformValues } from '../../shaders/uniforms.ts';
import { type GpuBuf, Runtime } from './runtime.ts';
import type { AcquiredDevice } from './device.ts';
import { type ElementwiseOp, type Epilogue, Fusion, type GpuStorage } from './fusion.ts';
import type { EpilogueProgram } from '../../shaders/epilogue.ts';
import type { Fields, UniformSchema } from '../../shaders/uniforms.ts';
import { broadcastStrides, sameShape, stridesOf } from '../shape.ts';

export type { GpuStorage } from './fusion.ts';
/** What the kernels below read: realised buffers (run() emits pending chains first). */
type Op = Operand<GpuBuf>;

export interface WebGpuOptions {
  /**
   * Kernel variant for matmul; default: registerTiled on software adapters, gpu on GPUs
   * (shaders/matmul-gpu.ts: 128x128 blocks, vec4 loads, double-buffered workgroup tiles; not yet
   * measured on a GPU: bench/matmul-gpu.ts takes the figures). workgroupTiled: the older 64x64
   * workgroup kernel. BACKLIGHT_MATMUL=registerTiled|workgroupTiled|gpu overrides.
   */
  matmul?: MatmulVariant;
  /**
   * Convolution kernels; default: tiled (register-tiled, no barriers) on software adapters, gemm
   * on GPUs (shaders/conv2d-gpu.ts: implicit GEMM forward, backprop-input for any stride, split-K
   * backprop-filter, in workgroup tiles; not yet measured on a GPU: bench/conv2d-gpu.ts takes the
   * figures; layers with under 8 channels per group stay on the tiled kernel). direct: one output
   * per invocation. BACKLIGHT_CONV=tiled|direct|gemm overrides.
   */
  conv?: ConvVariant;
  /**
   * Record elementwise primitives (and expand) lazily and run each chain as one generated kernel
   * (engine/webgpu/fusion.ts). Default true; false, or BACKLIGHT_FUSION=0, runs one kernel per
   * primitive as it is called.
   */
  fusion?: boolean;
  /**
   * With fusion, record conv2d and matmul lazily too and run an elementwise chain that only reads
   * their output (bias, BatchNorm scale/shift, activation, residual add) inside their kernel.
   * Default true; false, or BACKLIGHT_EPILOGUE=0, runs them at once (to measure the difference).
   */
  epilogues?: boolean;
}

/**
 * Kernels recorded lazily with fusion on (fusion.ts, a Producer with `run`), so that the chain they
 * read is emitted when they are, not when they are recorded: pooling after conv -> BatchNorm ->
 * ReLU in a Sequential, whose tidy scope still holds the conv's and BatchNorm's outputs when the
 * pool is recorded. Every size these can be given runs (no limit to refuse at the op).
 */
const DEFERRED = new Set<Primitive>(['maxPoolGather', 'avgPool2d']);

const FUSIBLE: Partial<Record<Primitive, ElementwiseOp>> = {
  ...Object.fromEntries(UNARY_PRIMS.map((p) => [p, { op: 'unary', prim: p }])),
  ...Object.fromEntries(BINARY_PRIMS.map((p) => [p, { op: 'binary', prim: p }])),
  select: { op: 'select' },
  expand: { op: 'expand' },
};

function envOn(name: string): boolean {
  const v = typeof process !== 'undefined' ? process.env?.[name] : undefined;
  return !(v === '0' || v === 'false' || v === 'off');
}
const fusionDefault = () => envOn('BACKLIGHT_FUSION');

const WG = 64;

// Generated shader texts, made once: the same string object each time keeps pipeline lookups cheap.
const kernels = new Map<string, { wgsl: string; schema: UniformSchema<Fields> }>();
/** A kernel with a folded chain (shaders/epilogue.ts): its text and schema, made once per
 * producer variant and chain structure. */
function kernelWith(key: string, make: () => { wgsl: string; schema: UniformSchema<Fields> }): { wgsl: string; schema: UniformSchema<Fields> } {
  let k = kernels.get(key);
  if (k === undefined) kernels.set(key, (k = make()));
  return k;
}

/** Whether a producer's uniforms and a chain's fit one dispatch slot (uniforms() refuses more). */
function fitsWith(schemaFor: (e: EpilogueProgram) => unknown): (e: EpilogueProgram) => boolean {
  return (e) => {
    try {
      schemaFor(e);
      return true;
    } catch {
      return false;
    }
  };
}

const shaders = new Map<string, string>();
function shader(key: string, make: () => string): string {
  let s = shaders.get(key);
  if (s === undefined) shaders.set(key, (s = make()));
  return s;
}

function fmt(shape: Shape): string {
  return `[${shape.join(',')}]`;
}

export class WebGpuBackend implements Backend<GpuStorage> {
  readonly name = 'webgpu' as const;
  readonly info: AdapterInfo;
  readonly rt: Runtime;
  readonly acquired: AcquiredDevice; // holds the gpu root object alive (see device.ts)
  matmulVariant: MatmulVariant;
  /** The register-tiled matmul's per-invocation block [rows, columns (a multiple of 4)]; null
   * picks per shape. BACKLIGHT_MATMUL_BLOCK=8x4 (etc.) forces one, to measure alternatives. */
  matmulBlock: [number, number] | null = blockFromEnv('BACKLIGHT_MATMUL_BLOCK', 4);
  /** Convolution kernels (WebGpuOptions.conv): register-tiled blocks, one output per
   * invocation, or implicit GEMM in workgroup tiles (shaders/conv2d-gpu.ts). */
  convVariant: ConvVariant;
  /**
   * The forward conv's register block [output channels (a multiple of 4), output columns]; null
   * picks per shape (convBlockFor). BACKLIGHT_CONV_BLOCK=8x4 (etc.) forces one, to measure
   * alternatives on an adapter (bench/ops.ts).
   */
  convBlock: [number, number] | null = blockFromEnv('BACKLIGHT_CONV_BLOCK', 0);
  /** The tiled forward conv's 3-tap row kernel where it applies (a setting so that tests can run
   * both kernels on the same case). */
  convTaps3 = true;
  /** conv2dBackpropInput with stride 1 as a forward conv (backpropInputAsConv); false: its own kernel. */
  backpropInputViaConv = true;
  /** Lazy elementwise chains; null when fusion is off. */
  readonly fusion: Fusion | null;
  /** conv2d / matmul recorded lazily, for chains to fold into (WebGpuOptions.epilogues). */
  epilogues: boolean;

  constructor(acquired: AcquiredDevice, opts: WebGpuOptions = {}) {
    this.acquired = acquired;
    this.info = acquired.info;
    this.rt = new Runtime(acquired.device);
    this.matmulVariant = opts.matmul ?? matmulFromEnv() ?? (acquired.info.software ? 'registerTiled' : 'gpu');
    this.convVariant = opts.conv ?? convFromEnv() ?? (acquired.info.software ? 'tiled' : 'gemm');
    this.fusion = (opts.fusion ?? fusionDefault()) ? new Fusion(this.rt, (n) => this.out(n), acquired.info.software ? 16 : 4) : null;
    // An explicit flush or sync submits pending chains that tensors still refer to.
    if (this.fusion) this.rt.beforeFlush = () => this.fusion!.emitLive();
    this.epilogues = opts.epilogues ?? envOn('BACKLIGHT_EPILOGUE');
  }

  /** Fill every kernel output with NaN first, so a kernel that skips an element is caught. */
  set poisonOutputs(v: boolean) {
    this.rt.poisonOutputs = v;
  }

  upload(data: ArrayLike<number>): GpuStorage {
    const f = data instanceof Float32Array ? data : Float32Array.from(data);
    const buf = this.rt.acquire(f.byteLength);
    this.rt.writeBuffer(buf, f);
    if (f.length === 1) buf.hostScalar = f[0];
    return buf;
  }

  read(storage: GpuStorage, size: number): Promise<Float32Array> {
    return this.rt.readback(this.realise(storage), size * 4);
  }

  release(storage: GpuStorage): void {
    if (this.fusion) this.fusion.release(storage);
    else this.rt.release(storage as GpuBuf);
  }

  /** The buffer behind a storage: a pending elementwise chain is emitted first. */
  realise(storage: GpuStorage): GpuBuf {
    return this.fusion ? this.fusion.realise(storage) : (storage as GpuBuf);
  }

  memory(): MemoryInfo {
    return { liveBuffers: this.rt.liveBuffers, liveBytes: this.rt.liveBytes, ...this.rt.poolInfo() };
  }

  flush(): void {
    this.rt.flush();
  }

  sync(): Promise<void> {
    return this.rt.sync();
  }

  destroy(): void {
    this.rt.destroy();
  }

  run<P extends Primitive>(prim: P, params: PrimParams[P], inputs: Operand<GpuStorage>[], outShape: Shape): GpuStorage {
    const fusible = this.fusion && FUSIBLE[prim];
    if (fusible) return this.fusion!.record(fusible, inputs, outShape);
    const impl = this.impls[prim] as (p: PrimParams[P], i: Op[], o: Shape) => GpuBuf;
    if (this.fusion && this.epilogues) {
      // Recorded with their inputs still pending (fusion.ts, Producer): emitted when needed.
      const produced = prim === 'conv2d'
        ? this.conv2dProducer(params as PrimParams['conv2d'], inputs, outShape)
        : prim === 'matmul' ? this.matmulProducer(inputs, outShape) : null;
      if (produced) return produced;
      if (DEFERRED.has(prim)) {
        const label = `${prim} ${inputs.map((x) => fmt(x.shape)).join(' ')}`;
        this.rt.assertAlive(label);
        return this.fusion.recordProducer({
          label,
          inputs: inputs.map((x) => x.storage),
          run: () => impl(params, this.real(inputs), outShape),
          emit: () => {
            throw new Error(`backlight internal: ${label} takes no epilogue`);
          },
          maxLeaves: 0,
          fits: () => false,
        }, outShape);
      }
    }
    return impl(params, this.real(inputs), outShape);
  }

  /** Operands with their buffers (pending chains and producers emitted first). */
  private real(inputs: Operand<GpuStorage>[]): Op[] {
    return inputs.map((x) => ({ storage: this.realise(x.storage), shape: x.shape }));
  }

  // ---- helpers ----

  /** A fresh output buffer of `size` elements (poisoned with NaN when testing). */
  private out(size: number): GpuBuf {
    const buf = this.rt.acquire(size * 4);
    if (this.rt.poisonOutputs && size > 0) {
      this.rt.dispatch({ label: 'poison', wgsl: fillShader, params: fillUniforms.pack({ count: size, value: NaN }), output: buf, inputs: [], workgroups: Math.ceil(size / WG) });
    }
    return buf;
  }

  /** One dispatch of `wgsl` over `threads` invocations with its uniforms (`schema.pack(...)`). */
  private launch(label: string, wgsl: string, params: Uint32Array, inputs: GpuBuf[], outSize: number, threads = outSize): GpuBuf {
    const output = this.out(outSize);
    this.rt.dispatch({ label, wgsl, params, output, inputs, workgroups: Math.ceil(threads / WG) });
    return output;
  }

  private overBindingLimit(out: Shape): boolean {
    return sizeOf(out) * 4 > this.rt.device.limits.maxStorageBufferBindingSize;
  }

  /** Storage bindings a folded chain may use: the stage's limit less the output and 2 inputs. */
  private get epilogueLeaves(): number {
    return this.rt.device.limits.maxStorageBuffersPerShaderStage - 3;
  }

  /**
   * conv2d recorded lazily (engine/webgpu/fusion.ts, producers) so that a bias, BatchNorm's
   * scale and shift, an activation or a residual add after it can run inside its kernel; null
   * for the direct kernel, which has no epilogue.
   */
  private conv2dProducer(p: PrimParams['conv2d'], inputs: Operand<GpuStorage>[], out: Shape): GpuStorage | null {
    const [x, w] = inputs;
    // A bad size (an output over the binding limit) is refused at the op by the eager path.
    if (this.convVariant === 'direct' || this.overBindingLimit(out)) return null;
    const label = `conv2d x${fmt(x.shape)} w${fmt(w.shape)}`;
    const gemm = this.convGemm('forward', p, { x: x.shape, w: w.shape, y: out });
    this.rt.assertAlive(label);
    return this.fusion!.recordProducer({
      label,
      inputs: [x.storage, w.storage],
      emit: (output, epi) => {
        const [xr, wr] = this.real(inputs);
        return gemm ? this.conv2dGemmInto(gemm, p, xr, wr, output, epi) : this.conv2dTiled(p, xr, wr, out, output, epi);
      },
      maxLeaves: this.epilogueLeaves,
      fits: fitsWith(gemm ? conv2dGpuUniformsWith : convTiledUniformsWith),
      // the tiled kernel passes its epilogue the output channel (a bias, BatchNorm's values)
      channelAxis: gemm ? undefined : 1,
    }, out);
  }

  /** matmul recorded lazily, as conv2dProducer (a bias and activation after a Linear layer). */
  private matmulProducer(inputs: Operand<GpuStorage>[], out: Shape): GpuStorage | null {
    const [a, b] = inputs;
    // Sizes the kernel cannot run fail at the op on the eager path (binding size, grid limit).
    const cfg = this.matmulConfig(out);
    if (this.overBindingLimit(out) || cfg.grid.some((g) => g > 65535)) return null;
    const K = a.shape[a.shape.length - 1];
    const label = `matmul ${fmt(a.shape)} ${fmt(b.shape)}`;
    if (K === 0) throw new Error(`backlight: ${label}: inner dimension is 0`);
    this.rt.assertAlive(label);
    return this.fusion!.recordProducer({
      label,
      inputs: [a.storage, b.storage],
      // the variant and block as recorded, whatever the backend's settings are when it runs
      emit: (output, epi) => {
        const [ar, br] = this.real(inputs);
        this.matmulInto(ar, br, out, output, epi, cfg);
      },
      maxLeaves: this.epilogueLeaves,
      // the gpu kernel has no epilogue (a chain after it runs as its own fused kernel)
      fits: cfg.variant === 'gpu' ? () => false : fitsWith(matmulUniformsWith),
      // both tiled kernels pass their epilogue the output column (a bias per column)
      channelAxis: out.length - 1,
    }, out);
  }

  /** The matmul kernel for an output shape on this backend now: variant, block, grid (x, y). */
  private matmulConfig(out: Shape): { variant: MatmulVariant; tm: number; tn: number; gpu: MatmulGpuConfig; grid: [number, number] } {
    const M = out[out.length - 2], N = out[out.length - 1];
    const variant = this.matmulVariant;
    // 8x8 per invocation: measured 1.45-3.6x the 4x4 block on lavapipe (256^3 .. 1024x64x1024,
    // 64x576x1024; bench in /tmp, interleaved); 4-wide where the matrix is narrower than 8.
    const [tm, tn] = this.matmulBlock ?? [M >= 8 ? 8 : 4, N >= 8 ? 8 : 4];
    // gpu: 128x128 blocks where the product fills them; 64x64 (4x4 per invocation) for smaller
    // ones, so that a small product still spreads over many workgroups.
    const gpu: MatmulGpuConfig = M >= 128 && N >= 128 ? '128x128-8x8-k16-db' : '64x64-4x4-k16-db';
    const block = variant === 'gpu' ? [MATMUL_GPU_CONFIGS[gpu].bn, MATMUL_GPU_CONFIGS[gpu].bm] : variant === 'workgroupTiled' ? [64, 64] : [8 * tn, 8 * tm];
    return { variant, tm, tn, gpu, grid: [Math.ceil(N / block[0]), Math.ceil(M / block[1])] };
  }

  /** matmul writing `output` (the variant for this adapter), through `epi` when given. */
  private matmulInto(a: Op, b: Op, out: Shape, output: GpuBuf, epi: Epilogue | null, cfg = this.matmulConfig(out)): void {
    const r = out.length;
    const M = out[r - 2], N = out[r - 1], K = a.shape[a.shape.length - 1];
    const batchShape = out.slice(0, r - 2);
    const batches = sizeOf(batchShape);
    const label = `matmul ${fmt(a.shape)} ${fmt(b.shape)}${epi ? ` + ${epi.program.steps.length} fused step(s)` : ''}`;
    const values = {
      M,
      N,
      K,
      batchRank: batchShape.length,
      firstBatch: 0,
      batchShape,
      aBatchStrides: broadcastStrides(a.shape.slice(0, -2), batchShape).map((s) => s * M * K),
      bBatchStrides: broadcastStrides(b.shape.slice(0, -2), batchShape).map((s) => s * K * N),
      ...epi?.values,
    };
    if (cfg.variant === 'gpu') {
      if (epi) throw new Error('backlight internal: the gpu matmul kernel takes no epilogue');
      const o = matmulGpuOptions(cfg.gpu, K, N);
      const wgsl = matmulGpuFor(o);
      for (let first = 0; first < batches; first += 65535) {
        const z = Math.min(65535, batches - first);
        const params = packMatmulGpu({ M, N, K, batchShape, aStrides: values.aBatchStrides, bStrides: values.bBatchStrides, first });
        this.rt.dispatch({ label, wgsl, params, output, inputs: [a.storage, b.storage], workgroups: matmulGpuWorkgroups(o, M, N, z) });
      }
      return;
    }
    const tiled = cfg.variant === 'workgroupTiled';
    const { tm, tn } = cfg;
    const variant = tiled ? 'matmulWorkgroup' : `matmulRegister:${tm}x${tn}`;
    const make = (e?: EpilogueProgram) => (tiled ? (e ? matmulWorkgroupTiledFor(e) : matmulWorkgroupTiled) : matmulRegisterTiledFor(tm, tn, e));
    const k = epi
      ? kernelWith(`${variant}|${epi.key}`, () => ({ wgsl: make(epi.program), schema: matmulUniformsWith(epi.program) }))
      : { wgsl: shader(variant, () => make()), schema: matmulUniforms as UniformSchema<Fields> };
    const inputs = [a.storage, b.storage, ...(epi?.leaves ?? [])];
    // One grid dimension holds at most 65535 workgroups: more batches than that (a vmap'd or
    // per-pixel matmul) run as several dispatches, each told its first batch.
    for (let first = 0; first < batches; first += 65535) {
      const z = Math.min(65535, batches - first);
      this.rt.dispatch({ label, wgsl: k.wgsl, params: k.schema.pack({ ...values, firstBatch: first }), output, inputs, workgroups: tiled ? [Math.ceil(N / 64), Math.ceil(M / 64), z] : [Math.ceil(N / (8 * tn)), Math.ceil(M / (8 * tm)), z] });
    }
  }

  /**
   * The implicit-GEMM kernel's options for a conv (gemm variant), null where it does not apply
   * (another variant, under 8 channels per group: conv2dGpuConfigFor, or a grid over 65535
   * workgroups in a dimension: the register-tiled kernel spreads any size over its grid).
   */
  private convGemm(kind: ConvGpuKind, p: ConvGpuParams, s: ConvGpuShapes): { o: ConvGpuOptions; s: ConvGpuShapes } | null {
    if (this.convVariant !== 'gemm') return null;
    const d = conv2dGpuDims(kind, s, p);
    const config = conv2dGpuConfigFor(d.M, d.NC, p.groups);
    if (!config) return null;
    const o = conv2dGpuOptions(kind, config);
    const wg = kind === 'forward' ? conv2dGpuWorkgroups : kind === 'input' ? conv2dGpuBackpropInputWorkgroups : null;
    try {
      if (wg) wg(o, p, s);
    } catch {
      return null;
    }
    return { o, s };
  }

  /** The implicit-GEMM forward conv writing `output`, through `epi` when given. */
  private conv2dGemmInto(g: { o: ConvGpuOptions; s: ConvGpuShapes }, p: PrimParams['conv2d'], x: Op, w: Op, output: GpuBuf, epi: Epilogue | null): void {
    const label = `conv2d x${fmt(x.shape)} w${fmt(w.shape)} (gemm)${epi ? ` + ${epi.program.steps.length} fused step(s)` : ''}`;
    const workgroups = conv2dGpuWorkgroups(g.o, p, g.s);
    if (!epi) {
      this.rt.dispatch({ label, wgsl: conv2dGpuFor(g.o), params: packConv2dGpu(p, g.s), output, inputs: [x.storage, w.storage], workgroups });
      return;
    }
    const k = kernelWith(`conv2dGemm:${JSON.stringify(g.o)}|${epi.key}`, () => ({ wgsl: conv2dGpuFor(g.o, epi.program), schema: conv2dGpuUniformsWith(epi.program) }));
    const params = k.schema.pack({ ...conv2dGpuValues('forward', p, g.s), ...epi.values });
    this.rt.dispatch({ label, wgsl: k.wgsl, params, output, inputs: [x.storage, w.storage, ...epi.leaves], workgroups });
  }

  /** The register-tiled forward conv writing `output`, through `epi` when given. */
  private conv2dTiled(p: PrimParams['conv2d'], x: Op, w: Op, out: Shape, output: GpuBuf, epi: Epilogue | null): void {
    const label = `conv2d x${fmt(x.shape)} w${fmt(w.shape)}`;
    const base = convValues(p, x.shape, w.shape, out, sizeOf(out));
    const [ob, wb] = this.convBlock ?? convBlockFor(w.shape[0] / p.groups, out[3]);
    // three taps per kernel row read from one row of loads (shaders/conv2d-tiled.ts)
    const taps3 = w.shape[3] === 3 && p.stride[1] === 1 && p.dilation[1] === 1 && this.convTaps3;
    const OB = Math.ceil(w.shape[0] / p.groups / ob), WB = Math.ceil(out[3] / wb);
    const threads = out[0] * OB * p.groups * out[2] * WB;
    const values = { ...base, count: threads, OB, WB };
    if (!epi) {
      const wgsl = shader(`conv2dTiled:${ob}x${wb}${taps3 ? ':3' : ''}`, () => conv2dTiledShaderFor(ob, wb, undefined, taps3));
      this.rt.dispatch({ label, wgsl, params: convTiledUniforms.pack(values), output, inputs: [x.storage, w.storage], workgroups: Math.ceil(threads / WG) });
      return;
    }
    const k = kernelWith(`conv2dTiled:${ob}x${wb}${taps3 ? ':3' : ''}|${epi.key}`, () => ({ wgsl: conv2dTiledShaderFor(ob, wb, epi.program, taps3), schema: convTiledUniformsWith(epi.program) }));
    this.rt.dispatch({ label: `${label} + ${epi.program.steps.length} fused step(s)`, wgsl: k.wgsl, params: k.schema.pack({ ...values, ...epi.values }), output, inputs: [x.storage, w.storage, ...epi.leaves], workgroups: Math.ceil(threads / WG) });
  }

  /** The strided copy behind every movement primitive (shaders/movement.ts). */
  private strided(
    label: string,
    input: GpuBuf,
    outShape: Shape,
    axes: { inStride: number; offset: number; step: number; inSize: number }[],
    opts: { output?: GpuBuf; outBase?: number; outStrides?: number[]; padValue?: number } = {},
  ): GpuBuf {
    const rank = outShape.length;
    const count = sizeOf(outShape);
    const p = movementUniforms.pack({
      count,
      outBase: opts.outBase ?? 0,
      padValue: opts.padValue ?? 0,
      shape: outShape,
      inStride: axes.map((a) => a.inStride),
      offset: axes.map((a) => a.offset),
      step: axes.map((a) => a.step),
      inSize: axes.map((a) => a.inSize),
      outStride: opts.outStrides ?? stridesOf(outShape),
    });
    const output = opts.output ?? this.out(count);
    this.rt.dispatch({ label, wgsl: shader(`movement:${rank}`, () => movementShader(rank)), params: p, output, inputs: [input], workgroups: Math.ceil(count / WG) });
    return output;
  }

  private identityAxes(shape: Shape) {
    const s = stridesOf(shape);
    return shape.map((d, k) => ({ inStride: s[k], offset: 0, step: 1, inSize: d }));
  }

  private permuteBuf(label: string, x: Op, perm: readonly number[]): GpuBuf {
    const s = stridesOf(x.shape);
    const outShape = perm.map((p) => x.shape[p]);
    return this.strided(label, x.storage, outShape, perm.map((p) => ({ inStride: s[p], offset: 0, step: 1, inSize: x.shape[p] })));
  }

  private reduce(kind: ReduceKind, x: Op, axes: readonly number[], outShape: Shape): GpuBuf {
    const label = `${kind} ${fmt(x.shape)} axes ${fmt(axes)}`;
    const rank = x.shape.length;
    const kept = [...Array(rank).keys()].filter((a) => !axes.includes(a));
    const R = axes.reduce((n, a) => n * x.shape[a], 1);
    const rows = sizeOf(outShape);
    const trailing = axes.every((a, i) => a === rank - axes.length + i);
    let src = x.storage;
    let temp: GpuBuf | null = null;
    if (!trailing && R > 1) {
      temp = this.permuteBuf(`${label} (move reduced axes last)`, x, [...kept, ...axes]);
      src = temp;
    }
    let out: GpuBuf;
    if (rows >= 1024 || R < 64) {
      out = this.launch(label, shader(`rows:${kind}`, () => reduceRowsShader(kind)), reduceUniforms.pack({ rows, R }), [src], rows);
    } else {
      const output = this.out(rows);
      this.rt.dispatch({ label, wgsl: shader(`wg:${kind}`, () => reduceWorkgroupShader(kind)), params: reduceUniforms.pack({ rows, R }), output, inputs: [src], workgroups: rows });
      out = output;
    }
    if (temp) this.rt.release(temp);
    return out;
  }

  /** poolUniforms for input planes `x` [N,C,H,W] and output planes `o` [N,C,OH,OW]. */
  private poolParams(p: Pool2dParams, x: Shape, o: Shape, count: number, countIncludePad = 0): Uint32Array {
    return poolUniforms.pack({
      count,
      planes: x[0] * x[1],
      H: x[2],
      W: x[3],
      OH: o[2],
      OW: o[3],
      KH: p.kernel[0],
      KW: p.kernel[1],
      strideH: p.stride[0],
      strideW: p.stride[1],
      padTop: p.padding[0],
      padLeft: p.padding[2],
      dilationH: p.dilation[0],
      dilationW: p.dilation[1],
      countIncludePad,
    });
  }

  private unary(prim: UnaryPrim) {
    return (_p: unknown, [x]: Op[], out: Shape) =>
      this.launch(`${prim} ${fmt(x.shape)}`, shader(`unary:${prim}`, () => unaryShader(UNARY_EXPR[prim])), mapUniforms.pack({ count: sizeOf(out) }), [x.storage], sizeOf(out));
  }

  private binary(prim: BinaryPrim) {
    return (_p: unknown, [a, b]: Op[], out: Shape) => {
      const n = sizeOf(out);
      const label = `${prim} ${fmt(a.shape)} ${fmt(b.shape)}`;
      if (sameShape(a.shape, out) && sameShape(b.shape, out)) {
        return this.launch(label, shader(`binary:${prim}`, () => binaryShader(BINARY_EXPR[prim], false)), mapUniforms.pack({ count: n }), [a.storage, b.storage], n);
      }
      const p = broadcastUniforms.pack({ count: n, shape: out, aStrides: broadcastStrides(a.shape, out), bStrides: broadcastStrides(b.shape, out) });
      return this.launch(label, shader(`bcast:${prim}:${out.length}`, () => binaryShader(BINARY_EXPR[prim], true, out.length)), p, [a.storage, b.storage], n);
    };
  }

  /**
   * conv2dBackpropInput with stride 1 as a forward convolution, whose register-tiled kernel does
   * 16 FMAs per 8 loads where the backprop-input one does 4 per 5 (and tests no stride
   * remainders): dx = conv2d(dy, w') with w'[g*Cg + c, o, p, q] = w[g*Og + o, c, KH-1-p, KW-1-q]
   * (channels swapped within each group, taps flipped) and padding (K-1)*d - pad on each side.
   * Measured on lavapipe (bench/ops.ts): about 2x on 3x3 layers. Null where it does not apply
   * (a stride, or padding beyond (K-1)*d), for the backprop-input kernel to handle.
   */
  private backpropInputAsConv(label: string, p: PrimParams['conv2dBackpropInput'], dy: Op, w: Op, out: Shape): GpuBuf | null {
    if (!this.backpropInputViaConv || p.stride[0] !== 1 || p.stride[1] !== 1) return null;
    const [O, Cg, KH, KW] = w.shape;
    const G = p.groups, Og = O / G, K = KH * KW;
    const [dh, dw] = p.dilation;
    const [pt, pb, pl, pr] = p.padding;
    const padding = [(KH - 1) * dh - pt, (KH - 1) * dh - pb, (KW - 1) * dw - pl, (KW - 1) * dw - pr] as const;
    if (padding.some((v) => v < 0)) return null;
    // w' as [G, Cg, Og, KH, KW] = [C, Og, KH, KW], read from w [G, Og, Cg, KH, KW].
    const wt = this.strided(`${label} (weights swapped and flipped)`, w.storage, [G, Cg, Og, KH, KW], [
      { inStride: Og * Cg * K, offset: 0, step: 1, inSize: G },
      { inStride: K, offset: 0, step: 1, inSize: Cg },
      { inStride: Cg * K, offset: 0, step: 1, inSize: Og },
      { inStride: KW, offset: KH - 1, step: -1, inSize: KH },
      { inStride: 1, offset: KW - 1, step: -1, inSize: KW },
    ]);
    const q: PrimParams['conv2d'] = { stride: [1, 1], padding, dilation: p.dilation, groups: G };
    const wShape = [Cg * G, Og, KH, KW];
    const r = this.impls.conv2d(q, [dy, { storage: wt, shape: wShape }], out);
    this.rt.release(wt);
    return r;
  }

  private readonly impls: BackendImpls<GpuBuf> = {
    ...(Object.fromEntries(UNARY_PRIMS.map((p) => [p, this.unary(p)])) as Pick<BackendImpls<GpuBuf>, UnaryPrim>),
    ...(Object.fromEntries(BINARY_PRIMS.map((p) => [p, this.binary(p)])) as Pick<BackendImpls<GpuBuf>, BinaryPrim>),

    select: (_p, [c, a, b], out) => {
      const n = sizeOf(out);
      const p = selectUniforms.pack({
        count: n,
        shape: out,
        aStrides: broadcastStrides(a.shape, out),
        bStrides: broadcastStrides(b.shape, out),
        condStrides: broadcastStrides(c.shape, out),
      });
      return this.launch(`select ${fmt(c.shape)} ${fmt(a.shape)} ${fmt(b.shape)}`, shader(`select:${out.length}`, () => selectShader(out.length)), p, [c.storage, a.storage, b.storage], n);
    },

    sum: (p, [x], out) => this.reduce('sum', x, p.axes, out),
    max: (p, [x], out) => this.reduce('max', x, p.axes, out),
    argmax: (p, [x], out) => this.reduce('argmax', x, [p.axis], out),

    reshape: (_p, [x], out) => this.strided(`reshape ${fmt(x.shape)}`, x.storage, out, this.identityAxes(out)),
    permute: (p, [x]) => this.permuteBuf(`permute ${fmt(x.shape)} ${fmt(p.perm)}`, x, p.perm),
    expand: (_p, [x], out) => {
      const s = broadcastStrides(x.shape, out);
      return this.strided(`expand ${fmt(x.shape)} to ${fmt(out)}`, x.storage, out, out.map((d, k) => ({ inStride: s[k], offset: 0, step: 1, inSize: d })));
    },
    slice: (p, [x], out) => {
      const s = stridesOf(x.shape);
      return this.strided(`slice ${fmt(x.shape)}`, x.storage, out, out.map((_, k) => ({ inStride: s[k], offset: p.begin[k], step: 1, inSize: x.shape[k] })));
    },
    pad: (p, [x], out) => {
      const s = stridesOf(x.shape);
      return this.strided(`pad ${fmt(x.shape)}`, x.storage, out, out.map((_, k) => ({ inStride: s[k], offset: -p.before[k], step: 1, inSize: x.shape[k] })), { padValue: p.value });
    },
    flip: (p, [x], out) => {
      const s = stridesOf(x.shape);
      return this.strided(`flip ${fmt(x.shape)}`, x.storage, out, out.map((d, k) => (p.axes.includes(k) ? { inStride: s[k], offset: d - 1, step: -1, inSize: d } : { inStride: s[k], offset: 0, step: 1, inSize: d })));
    },
    concat: (p, xs, out) => {
      const output = this.out(sizeOf(out));
      const os = stridesOf(out);
      let at = 0;
      for (const x of xs) {
        if (sizeOf(x.shape) > 0) {
          this.strided(`concat ${xs.map((t) => fmt(t.shape)).join(' ')} axis ${p.axis}`, x.storage, x.shape, this.identityAxes(x.shape), { output, outBase: at * os[p.axis], outStrides: os });
        }
        at += x.shape[p.axis];
      }
      return output;
    },

    matmul: (_p, [a, b], out) => {
      const K = a.shape[a.shape.length - 1];
      if (K === 0) throw new Error(`backlight: matmul ${fmt(a.shape)} ${fmt(b.shape)}: inner dimension is 0`);
      const output = this.out(sizeOf(out));
      try {
        this.matmulInto(a, b, out, output, null);
      } catch (e) {
        this.rt.release(output); // e.g. a grid over the 65535 limit: nothing recorded writes it
        throw e;
      }
      return output;
    },

    conv2d: (p, [x, w], out) => {
      const n = sizeOf(out);
      const label = `conv2d x${fmt(x.shape)} w${fmt(w.shape)}`;
      if (this.convVariant === 'direct') return this.launch(label, conv2dShader, convUniforms.pack(convValues(p, x.shape, w.shape, out, n)), [x.storage, w.storage], n);
      const gemm = this.convGemm('forward', p, { x: x.shape, w: w.shape, y: out });
      const output = this.out(n);
      if (gemm) this.conv2dGemmInto(gemm, p, x, w, output, null);
      else this.conv2dTiled(p, x, w, out, output, null);
      return output;
    },
    conv2dBackpropInput: (p, [dy, w], out) => {
      const n = sizeOf(out);
      const label = `conv2dBackpropInput dy${fmt(dy.shape)} w${fmt(w.shape)}`;
      const base = convValues(p, out, w.shape, dy.shape, n);
      if (this.convVariant === 'direct') return this.launch(label, conv2dBackpropInputShader, convUniforms.pack(base), [dy.storage, w.storage], n);
      const gemm = this.convGemm('input', p, { x: out, w: w.shape, y: dy.shape });
      if (gemm) {
        const output = this.out(n);
        this.rt.dispatch({ label: `${label} (gemm)`, wgsl: conv2dGpuFor(gemm.o), params: packConv2dGpuBackpropInput(p, gemm.s), output, inputs: [dy.storage, w.storage], workgroups: conv2dGpuBackpropInputWorkgroups(gemm.o, p, gemm.s) });
        return output;
      }
      const viaForward = this.backpropInputAsConv(label, p, dy, w, out);
      if (viaForward) return viaForward;
      const CB = Math.ceil(out[1] / p.groups / 4);
      const threads = out[0] * CB * p.groups * out[2] * out[3];
      const params = convBackpropInputTiledUniforms.pack({ ...base, count: threads, CB });
      return this.launch(label, conv2dBackpropInputTiledShader, params, [dy.storage, w.storage], n, threads);
    },
    conv2dBackpropFilter: (p, [x, dy], out) => {
      const n = sizeOf(out);
      const label = `conv2dBackpropFilter x${fmt(x.shape)} dy${fmt(dy.shape)}`;
      const base = convValues(p, x.shape, out, dy.shape, n);
      if (this.convVariant === 'direct') return this.launch(label, conv2dBackpropFilterShader, convUniforms.pack(base), [x.storage, dy.storage], n);
      const gemm = this.convGemm('filter', p, { x: x.shape, w: out, y: dy.shape });
      if (gemm) {
        // split-K: S partial sums over chunks of the N*OH*OW pixels, added by the sum reduction
        const sp = conv2dGpuFilterSplit(gemm.o, p, gemm.s, this.info.software ? { target: 16 } : {});
        let wg: [number, number, number] | null = null;
        try {
          wg = conv2dGpuBackpropFilterWorkgroups(gemm.o, p, gemm.s, sp);
        } catch {
          wg = null; // over the grid limit: the tiled kernel below
        }
        if (wg) {
          const partial = this.out(sp.S * n);
          this.rt.dispatch({ label: `${label} (gemm, ${sp.S} splits)`, wgsl: conv2dGpuFor(gemm.o), params: packConv2dGpuBackpropFilter(p, gemm.s, sp), output: partial, inputs: [x.storage, dy.storage], workgroups: wg });
          if (sp.S === 1) return partial;
          const r = this.reduce('sum', { storage: partial, shape: [sp.S, n] }, [0], [1, n]);
          this.rt.release(partial);
          return r;
        }
      }
      const OB = Math.ceil(out[0] / p.groups / 4), CB = Math.ceil(out[1] / 4);
      const perSplit = OB * p.groups * CB * out[2] * out[3];
      // Split the batch so there are enough invocations to fill the device; partial sums are added
      // by the sum reduction. Software adapters have few cores: a few hundred invocations suffice.
      const want = this.info.software ? 512 : 16384;
      const N = x.shape[0];
      const S = Math.max(1, Math.min(N, Math.ceil(want / perSplit), 256));
      const threads = perSplit * S;
      const params = convBackpropFilterTiledUniforms.pack({ ...base, count: threads, OB, CB, S });
      const partial = this.launch(label, conv2dBackpropFilterTiledShader, params, [x.storage, dy.storage], S * n, threads);
      if (S === 1) return partial;
      const r = this.reduce('sum', { storage: partial, shape: [S, n] }, [0], [1, n]);
      this.rt.release(partial);
      return r;
    },

    maxPoolGather: (p, [x, src], out) => {
      const n = sizeOf(out);
      const groups = maxPoolRowGroups(out[0] * out[1], out[2], out[3]);
      return this.launch(`maxPool x${fmt(x.shape)}`, maxPoolGatherShader, this.poolParams(p, x.shape, out, groups), [x.storage, src.storage], n, groups);
    },
    maxPoolScatter: (p, [x, dy], out) => {
      const n = sizeOf(out);
      const label = `maxPoolScatter x${fmt(x.shape)} dy${fmt(dy.shape)}`;
      const [sH, sW] = p.stride;
      const disjoint = (p.kernel[0] - 1) * p.dilation[0] + 1 <= sH && (p.kernel[1] - 1) * p.dilation[1] + 1 <= sW;
      if (disjoint) {
        // one invocation per stride cell (shaders/pool.ts)
        const cells = maxPoolRowGroups(x.shape[0] * x.shape[1], Math.ceil((x.shape[2] + p.padding[0]) / sH), Math.ceil((x.shape[3] + p.padding[2]) / sW));
        return this.launch(label, maxPoolScatterCellsShader, this.poolParams(p, x.shape, dy.shape, cells), [x.storage, dy.storage], n, cells);
      }
      return this.launch(label, maxPoolScatterShader, this.poolParams(p, x.shape, dy.shape, n), [x.storage, dy.storage], n);
    },
    avgPool2d: (p, [x], out) => {
      const n = sizeOf(out);
      return this.launch(`avgPool2d x${fmt(x.shape)}`, avgPoolShader, this.poolParams(p, x.shape, out, n, p.countIncludePad ? 1 : 0), [x.storage], n);
    },
    avgPool2dBackprop: (p, [dy], out) => {
      const n = sizeOf(out);
      return this.launch(`avgPool2dBackprop dy${fmt(dy.shape)}`, avgPoolBackpropShader, this.poolParams(p, out, dy.shape, n, p.countIncludePad ? 1 : 0), [dy.storage], n);
    },

    resizeBilinear: (p, [x], out) => {
      const n = sizeOf(out);
      const params = resizeUniforms.pack({ count: n, planes: x.shape[0] * x.shape[1], H: x.shape[2], W: x.shape[3], OH: out[2], OW: out[3], alignCorners: p.alignCorners ? 1 : 0 });
      return this.launch(`resizeBilinear ${fmt(x.shape)} to ${fmt(out)}`, resizeBilinearShader, params, [x.storage], n);
    },
    resizeBilinearBackprop: (p, [dy], out) => {
      const n = sizeOf(out);
      const params = resizeUniforms.pack({ count: n, planes: out[0] * out[1], H: out[2], W: out[3], OH: dy.shape[2], OW: dy.shape[3], alignCorners: p.alignCorners ? 1 : 0 });
      return this.launch(`resizeBilinearBackprop ${fmt(dy.shape)} to ${fmt(out)}`, resizeBilinearBackpropShader, params, [dy.storage], n);
    },

    gather: (p, [x, idx], out) => {
      const n = sizeOf(out);
      const P = sizeOf(x.shape.slice(p.axis + 1));
      const params = gatherUniforms.pack({ count: n, J: sizeOf(idx.shape), P, X: x.shape[p.axis] });
      return this.launch(`gather ${fmt(x.shape)} axis ${p.axis}`, gatherShader, params, [x.storage, idx.storage], n);
    },
    scatterAdd: (p, [upd, idx], out) => {
      const n = sizeOf(out);
      const P = sizeOf(out.slice(p.axis + 1));
      const params = scatterAddUniforms.pack({ count: n, J: sizeOf(idx.shape), P, S: p.size });
      return this.launch(`scatterAdd ${fmt(upd.shape)} axis ${p.axis}`, scatterAddShader, params, [upd.storage, idx.storage], n);
    },

    random: (p, _in, out) => {
      const n = sizeOf(out);
      const params = randomUniforms.pack({ count: n, keyLo: p.seed % 2 ** 32 >>> 0, keyHi: Math.floor(p.seed / 2 ** 32) >>> 0, normal: p.dist === 'normal' ? 1 : 0 });
      return this.launch(`random ${p.dist} ${fmt(out)}`, randomShader, params, [], n);
    },
  };
}

export type MatmulVariant = 'registerTiled' | 'workgroupTiled' | 'gpu';
export type ConvVariant = 'tiled' | 'direct' | 'gemm';

function convFromEnv(): ConvVariant | null {
  const v = typeof process !== 'undefined' ? process.env?.BACKLIGHT_CONV : undefined;
  if (!v) return null;
  if (v === 'tiled' || v === 'direct' || v === 'gemm') return v;
  throw new Error(`BACKLIGHT_CONV=${v}: expected tiled, direct or gemm`);
}

function matmulFromEnv(): MatmulVariant | null {
  const v = typeof process !== 'undefined' ? process.env?.BACKLIGHT_MATMUL : undefined;
  if (!v) return null;
  if (v === 'registerTiled' || v === 'workgroupTiled' || v === 'gpu') return v;
  throw new Error(`BACKLIGHT_MATMUL=${v}: expected registerTiled, workgroupTiled or gpu`);
}

/** A block shape 'AxB' from an environment variable (A a multiple of 4 when which = 0, B when 1). */
function blockFromEnv(name: string, mult4: 0 | 4): [number, number] | null {
  const v = typeof process !== 'undefined' ? process.env?.[name] : undefined;
  if (!v) return null;
  const m = /^(\d+)x(\d+)$/.exec(v);
  const a = Number(m?.[1]), b = Number(m?.[2]);
  if (!m || a === 0 || b === 0 || (mult4 === 0 ? a % 4 : b % 4) !== 0) {
    throw new Error(`${name}=${v}: expected AxB, ${mult4 === 0 ? 'A' : 'B'} a multiple of 4 (e.g. 8x4)`);
  }
  return [a, b];
}

/**
 * The forward conv block for Og output channels per group and OW output columns. Measured on
 * lavapipe (bench/ops.ts conv rows, load-noisy, interleaved): 8 channels x 8 columns 1.4-2x the
 * 4x4 block's throughput at 16-32 channels (more FMAs per load), about even at 1 input channel;
 * 8 columns only where they do not waste more of the last block than 4 do (OW = 12: 8x4).
 */
function convBlockFor(og: number, ow: number): [number, number] {
  // 1 or 2 channels per group: scalar accumulators (shaders/conv2d-tiled.ts, conv2dTiledNarrow)
  const ob = og >= 8 ? 8 : og <= 2 ? og : 4;
  const waste = (w: number) => Math.ceil(ow / w) * w - ow;
  const wb = ow >= 8 && waste(8) <= waste(4) ? 8 : 4;
  // the narrow blocks have registers to spare for 16 columns
  if (ob <= 2 && ow >= 16 && waste(16) <= waste(wb)) return [ob, 16];
  return [ob, wb];
}

/** The convolution's sizes (convUniforms) for x [N,C,H,W], w [O,C/g,KH,KW], y [N,O,OH,OW]. */
function convValues(p: PrimParams['conv2d'], x: Shape, w: Shape, y: Shape, count: number): UniformValues<typeof convFields> {
  return {
    count,
    N: x[0],
    C: x[1],
    H: x[2],
    W: x[3],
    O: w[0],
    OH: y[2],
    OW: y[3],
    KH: w[2],
    KW: w[3],
    strideH: p.stride[0],
    strideW: p.stride[1],
    padTop: p.padding[0],
    padLeft: p.padding[2],
    dilationH: p.dilation[0],
    dilationW: p.dilation[1],
    groups: p.groups,
  };
}

export async function createWebGpuBackend(opts: WebGpuOptions = {}): Promise<WebGpuBackend> {
  const { acquireDevice } = await import('./device.ts');
  return new WebGpuBackend(await acquireDevice(), opts);
}

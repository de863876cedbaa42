// The kernel runtime: pooled buffers, one pipeline cache, per-flush uniform and upload arenas,
// cached bind groups, one command encoder per flush, and error scopes that name the op.
//
// Ordering rule that keeps pooling safe: every write to a buffer (kernel output, upload, fill)
// is recorded in the current command encoder, in program order. A buffer released by one tensor
// can therefore be handed to the next op in the same encoder: the GPU runs the earlier reader first.
// The only queue-level writes are the arenas' own, done once per flush just before submit.
import { PARAM_WORDS } from '../../shaders/params.ts';

export interface GpuBuf {
  buffer: GPUBuffer;
  bytes: number; // capacity
  id: number;
  /** The flush that last wrote this buffer (see `failedFlushes`). */
  writtenIn?: number;
  /** Pending fused chains that will read it (engine/webgpu/fusion.ts): not reusable until 0. */
  pins?: number;
  /** Released by its tensor while pinned: goes back to the pool when the pins reach 0. */
  releasePending?: boolean;
  /** The value of a one-element buffer uploaded from the host (fused kernels read it as a
   * uniform). Cleared when the buffer is handed out again. */
  hostScalar?: number;
}

export interface Dispatch {
  /** Op name and shapes, for error messages. */
  label: string;
  wgsl: string;
  constants?: Record<string, number>;
  /** Words for the uniform block (at most PARAM_WORDS). */
  params: Uint32Array;
  output: GpuBuf;
  inputs: GpuBuf[];
  /** Workgroup counts; a single number is spread over x and y (65535 per dimension). */
  workgroups: number | [number, number, number];
}

const SLOT_BYTES = 256; // minUniformBufferOffsetAlignment
// Uniform slots per submit; when they run out the runtime submits early. Measured on lavapipe (2
// cores, IG with 128 steps on resnet-bn: 1897 dispatches, 3 early submits at 512): 4096 slots
// (one submit) was slower, 0.98-1.37 s vs 0.49-0.57 s at 512, since an early submit lets the GPU
// start on the first part while the host records the rest; 256 and 1024 no better. Kept at 512.
const ARENA_SLOTS = 512;
const UPLOAD_ARENA_BYTES = 4 << 20;
const MAX_POOLED_BYTES = 1 << 30;

interface FlushRecord {
  labels: string[];
}

function debugWgsl(): boolean {
  return typeof process !== 'undefined' && !!process.env?.BACKLIGHT_DEBUG?.split(',').includes('wgsl');
}

/** Size classes: powers of two and 1.5x powers of two, from 256 bytes. */
function sizeClass(bytes: number): number {
  let c = 256;
  while (c < bytes) {
    const mid = c + (c >> 1);
    if (mid >= bytes) return mid;
    c *= 2;
  }
  return c;
}

export class Runtime {
  readonly device: GPUDevice;
  private nextId = 1;
  private free = new Map<number, GpuBuf[]>();
  private pooledBytes = 0;
  private pooledCount = 0;
  liveBuffers = 0;
  liveBytes = 0;

  // Keyed by the final WGSL text, then by layout and override constants. The outer key is usually
  // the same (memoised) string object each time, whose hash V8 keeps, so a lookup does not rehash
  // kilobytes of shader text per dispatch.
  private pipelines = new Map<string, Map<string, GPUComputePipeline>>();
  private layouts = new Map<number, { bgl: GPUBindGroupLayout; pl: GPUPipelineLayout }>();
  private bindGroups = new Map<string, GPUBindGroup>();

  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private arena: GPUBuffer;
  private arenaHost = new Uint32Array((ARENA_SLOTS * SLOT_BYTES) / 4);
  private arenaUsed = 0; // slots
  private upload: GPUBuffer;
  private uploadHost = new Uint8Array(UPLOAD_ARENA_BYTES);
  private uploadUsed = 0;
  private tempBuffers: GPUBuffer[] = [];
  private recorded: string[] = [];
  private pendingErrors: Promise<void>[] = [];
  /** The earliest-registered GPU error not yet reported (see trackError). */
  private firstError: { seq: number; error: Error } | null = null;
  private errorSeq = 0;
  /** Flushes whose command buffer was rejected: what they wrote is garbage, and reads say so. */
  private flushSeq = 0;
  private failedFlushes = new Map<number, string>();
  /** Fill every new kernel output with NaN before the kernel writes it (tests). */
  poisonOutputs = false;
  dispatchCount = 0;
  /** Command buffers submitted (every flush that had work, including the early ones below). */
  submitCount = 0;
  /** Submits the runtime made by itself because the uniform or upload arena was full. */
  earlySubmitCount = 0;
  /** Buffers read back to the host (readback()): each one is a full round trip to the GPU. */
  readbackCount = 0;
  /** sync() calls: a wait for the queue to drain (no data crosses, but the host waits). */
  syncCount = 0;
  /** Called by an explicit flush() or sync() before submitting: the backend records its pending
   * (lazy) work here. Not called by the flushes the runtime makes itself when an arena fills up,
   * which can happen in the middle of recording that work. */
  beforeFlush: (() => void) | null = null;
  pipelineCount = 0;
  lost: string | null = null;

  constructor(device: GPUDevice) {
    this.device = device;
    this.arena = device.createBuffer({
      label: 'backlight uniform arena',
      size: ARENA_SLOTS * SLOT_BYTES,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    this.upload = device.createBuffer({
      label: 'backlight upload arena',
      size: UPLOAD_ARENA_BYTES,
      usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    device.lost.then((info) => {
      this.lost = `${info.reason}: ${info.message}`;
    });
  }

  // ---- buffers ----

  acquire(bytes: number): GpuBuf {
    // Over the binding limit the buffer could be made but never bound: the kernel that writes it
    // would fail validation asynchronously, far from the op that asked. Say so here, synchronously,
    // with what to do. (lavapipe and many GPUs allow 128 MiB per binding.)
    if (this.lost) throw new Error(`backlight: the GPU device was lost (${this.lost}); call init() for a new device and create the tensors again`);
    const limit = this.device.limits.maxStorageBufferBindingSize;
    if (bytes > limit) {
      throw new Error(`backlight: a tensor of ${mib(bytes)} is over this GPU's largest storage binding (maxStorageBufferBindingSize ${mib(limit)}): work in smaller chunks (the explainers' internalBatchSize, batchSize or memoryBudget option, or a smaller batch)`);
    }
    // the size classes round up by up to 50%; never past the limit a request fits under
    const cls = Math.min(sizeClass(Math.max(bytes, 4)), Math.max(4, Math.floor(limit / 4) * 4));
    const list = this.free.get(cls);
    let buf = list?.pop();
    if (buf) {
      this.pooledBytes -= cls;
      this.pooledCount--;
      buf.hostScalar = undefined;
    } else {
      this.device.pushErrorScope('out-of-memory');
      const buffer = this.device.createBuffer({
        size: cls,
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      });
      this.trackError(this.device.popErrorScope(), `allocating a buffer of ${cls} bytes`);
      buf = { buffer, bytes: cls, id: this.nextId++ };
    }
    this.liveBuffers++;
    this.liveBytes += cls;
    return buf;
  }

  release(buf: GpuBuf): void {
    this.liveBuffers--;
    this.liveBytes -= buf.bytes;
    let list = this.free.get(buf.bytes);
    if (!list) this.free.set(buf.bytes, (list = []));
    list.push(buf);
    this.pooledBytes += buf.bytes;
    this.pooledCount++;
  }

  poolInfo(): { pooledBuffers: number; pooledBytes: number } {
    return { pooledBuffers: this.pooledCount, pooledBytes: this.pooledBytes };
  }

  /** Destroy pooled buffers beyond the cap. Only between flushes: nothing recorded can use them. */
  private trimPool(): void {
    if (this.pooledBytes <= MAX_POOLED_BYTES) return;
    for (const [cls, list] of [...this.free.entries()].sort((a, b) => b[0] - a[0])) {
      while (list.length && this.pooledBytes > MAX_POOLED_BYTES / 2) {
        list.pop()!.buffer.destroy();
        this.pooledBytes -= cls;
        this.pooledCount--;
      }
    }
    this.bindGroups.clear();
  }

  // ---- recording ----

  private ensureEncoder(): GPUCommandEncoder {
    if (!this.encoder) {
      this.device.pushErrorScope('validation');
      this.encoder = this.device.createCommandEncoder({ label: 'backlight' });
    }
    return this.encoder;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  /** Host data into `dst`, recorded in order with the kernels. */
  writeBuffer(dst: GpuBuf, data: Float32Array): void {
    const bytes = data.byteLength;
    if (bytes === 0) return;
    dst.writtenIn = this.flushSeq;
    const src = new Uint8Array(data.buffer, data.byteOffset, bytes);
    if (bytes > UPLOAD_ARENA_BYTES / 4) {
      // Large: its own mapped staging buffer, destroyed after the submit.
      const staging = this.device.createBuffer({ size: Math.ceil(bytes / 4) * 4, usage: GPUBufferUsage.COPY_SRC, mappedAtCreation: true });
      new Uint8Array(staging.getMappedRange()).set(src);
      staging.unmap();
      this.endPass();
      this.ensureEncoder().copyBufferToBuffer(staging, 0, dst.buffer, 0, bytes);
      this.tempBuffers.push(staging);
      return;
    }
    const aligned = (this.uploadUsed + 255) & ~255;
    if (aligned + bytes > UPLOAD_ARENA_BYTES) {
      this.earlySubmitCount++;
      this.submit();
      return this.writeBuffer(dst, data);
    }
    this.uploadHost.set(src, aligned);
    this.uploadUsed = aligned + bytes;
    this.endPass();
    this.ensureEncoder().copyBufferToBuffer(this.upload, aligned, dst.buffer, 0, bytes);
  }

  private layoutFor(numInputs: number) {
    let l = this.layouts.get(numInputs);
    if (!l) {
      const entries: GPUBindGroupLayoutEntry[] = [
        { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform', hasDynamicOffset: true } },
        { binding: 1, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'storage' } },
      ];
      for (let i = 0; i < numInputs; i++) {
        entries.push({ binding: 2 + i, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'read-only-storage' } });
      }
      const bgl = this.device.createBindGroupLayout({ entries });
      l = { bgl, pl: this.device.createPipelineLayout({ bindGroupLayouts: [bgl] }) };
      this.layouts.set(numInputs, l);
    }
    return l;
  }

  /**
   * The pipeline cache: keyed by the final WGSL text, the override constants and the layout.
   *
   * Pipelines are created synchronously (createComputePipeline), not with
   * createComputePipelineAsync, on purpose. dispatch() records setPipeline into the open pass at
   * once, in program order with uploads and other kernels (the pooling rule at the top), and
   * flush()/submit() are synchronous too (the perturbation engine flushes per chunk; a full arena
   * submits from inside dispatch), so an async pipeline would need recording deferred to an await
   * point: a queue of dispatch descriptors encoded at readback()/sync(), with every synchronous
   * flush made async. The await points the runtime has come after the pipelines are needed, and
   * which kernels a graph needs is known only when it is recorded (fused chains are generated per
   * graph), so compiling ahead means compiling kernels that may never run. And the gain is small:
   * measured on lavapipe (2 cores), a first integratedGradients call on resnet-bn took 539 ms, of
   * which 30 pipelines took 187 ms and their shader modules 114 ms (digits-cnn: 22 in 152 + 88
   * ms), repeated calls none; 24 pipelines issued all at once with createComputePipelineAsync
   * took 87 ms against 104-119 ms synchronously, 45-50 ms of it still blocking the calling thread
   * (Dawn translates the WGSL there; only the driver's compile moves to a worker), and awaited one
   * by one 153-190 ms. Not worth the deferred-recording machinery; revisit if a GPU driver shows
   * compiles of seconds.
   */
  private pipeline(d: Dispatch): GPUComputePipeline {
    const constants = d.constants ?? {};
    const key = d.constants ? `${d.inputs.length}|${JSON.stringify(constants)}` : String(d.inputs.length);
    let byLayout = this.pipelines.get(d.wgsl);
    if (!byLayout) this.pipelines.set(d.wgsl, (byLayout = new Map()));
    let p = byLayout.get(key);
    if (p) return p;
    if (debugWgsl()) console.log(`[backlight wgsl] ${d.label}\n${d.wgsl}`);
    const { pl } = this.layoutFor(d.inputs.length);
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code: d.wgsl, label: d.label });
    p = this.device.createComputePipeline({ layout: pl, compute: { module, entryPoint: 'main', constants } });
    const label = d.label;
    const wgsl = d.wgsl;
    this.trackError(
      this.device.popErrorScope(),
      `compiling the kernel for ${label}`,
      module.getCompilationInfo ? module.getCompilationInfo().then((info) => formatCompilation(info, wgsl)) : undefined,
    );
    byLayout.set(key, p);
    this.pipelineCount++;
    return p;
  }

  private bindGroup(d: Dispatch): GPUBindGroup {
    const key = `${d.inputs.length}:${d.output.id}:${d.output.bytes}:${d.inputs.map((b) => b.id).join(',')}`;
    let bg = this.bindGroups.get(key);
    if (bg) return bg;
    if (this.bindGroups.size > 8192) this.bindGroups.clear();
    const entries: GPUBindGroupEntry[] = [
      { binding: 0, resource: { buffer: this.arena, offset: 0, size: SLOT_BYTES } },
      { binding: 1, resource: { buffer: d.output.buffer } },
    ];
    d.inputs.forEach((b, i) => entries.push({ binding: 2 + i, resource: { buffer: b.buffer } }));
    bg = this.device.createBindGroup({ layout: this.layoutFor(d.inputs.length).bgl, entries });
    this.bindGroups.set(key, bg);
    return bg;
  }

  /** Throws, naming the op, once the device is lost (also for work recorded lazily: the error
   * belongs at the op, not at a later read). */
  assertAlive(label: string): void {
    if (this.lost) throw new Error(`backlight: the GPU device was lost (${this.lost}); cannot run ${label}`);
  }

  dispatch(d: Dispatch): void {
    this.assertAlive(d.label);
    if (d.params.length > PARAM_WORDS) throw new Error(`backlight internal: ${d.label} has ${d.params.length} parameter words`);
    let [x, y, z] = typeof d.workgroups === 'number' ? [d.workgroups, 1, 1] : d.workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    if (typeof d.workgroups === 'number' && x > 65535) {
      y = Math.ceil(x / 65535);
      x = Math.ceil(x / y);
    }
    if (x > 65535 || y > 65535 || z > 65535) {
      throw new Error(`backlight: ${d.label} needs ${x}x${y}x${z} workgroups, over the 65535 limit per dimension`);
    }
    if (this.arenaUsed >= ARENA_SLOTS) {
      this.earlySubmitCount++;
      this.submit();
    }
    const slot = this.arenaUsed++;
    this.arenaHost.fill(0, slot * 64, slot * 64 + 64);
    this.arenaHost.set(d.params, slot * 64);
    const pipeline = this.pipeline(d);
    const bg = this.bindGroup(d);
    this.ensureEncoder();
    if (!this.pass) this.pass = this.encoder!.beginComputePass();
    this.pass.setPipeline(pipeline);
    this.pass.setBindGroup(0, bg, [slot * SLOT_BYTES]);
    this.pass.dispatchWorkgroups(x, y, z);
    this.recorded.push(d.label);
    d.output.writtenIn = this.flushSeq;
    this.dispatchCount++;
  }

  /** Record a copy of `src` into a mappable buffer; resolves after the next flush completes. */
  async readback(src: GpuBuf, bytes: number): Promise<Float32Array> {
    this.readbackCount++;
    const size = Math.max(4, Math.ceil(bytes / 4) * 4);
    const staging = this.device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.endPass();
    this.ensureEncoder().copyBufferToBuffer(src.buffer, 0, staging, 0, size);
    this.submit();
    try {
      await staging.mapAsync(GPUMapMode.READ);
    } catch (e) {
      await this.checkErrors();
      if (this.lost) throw new Error(`backlight: the GPU device was lost (${this.lost}) before this tensor could be read; its data is gone: call init() for a new device and compute it again`);
      throw new Error(`backlight: reading a GPU buffer back failed: ${(e as Error).message || 'mapAsync rejected'}`);
    }
    const out = new Float32Array(staging.getMappedRange().slice(0, bytes));
    staging.unmap();
    staging.destroy();
    await this.checkErrors();
    const failed = src.writtenIn === undefined ? undefined : this.failedFlushes.get(src.writtenIn);
    if (failed !== undefined) {
      throw new Error(`backlight: this tensor was computed in a batch of GPU work that the device rejected (${failed}); its values are not valid`);
    }
    return out;
  }

  /** Submit what is recorded, after the backend has recorded its pending work (beforeFlush). */
  flush(): void {
    this.beforeFlush?.();
    this.submit();
  }

  /** Submit what is recorded in the encoder now. */
  submit(): void {
    if (!this.encoder) return;
    this.endPass();
    if (this.arenaUsed) this.device.queue.writeBuffer(this.arena, 0, this.arenaHost, 0, this.arenaUsed * 64);
    if (this.uploadUsed) this.device.queue.writeBuffer(this.upload, 0, this.uploadHost, 0, (this.uploadUsed + 3) & ~3);
    this.device.queue.submit([this.encoder.finish()]);
    this.submitCount++;
    const labels = this.recorded;
    const id = this.flushSeq++;
    const scope = this.device.popErrorScope();
    scope.then((e) => {
      if (e) this.failedFlushes.set(id, e.message);
    });
    this.trackError(scope, () => describeFlush({ labels }));
    this.encoder = null;
    this.recorded = [];
    this.arenaUsed = 0;
    this.uploadUsed = 0;
    for (const b of this.tempBuffers) b.destroy();
    this.tempBuffers = [];
    this.trimPool();
  }

  async sync(): Promise<void> {
    this.syncCount++;
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    await this.checkErrors();
  }

  private trackError(p: Promise<GPUError | null>, what: string | (() => string), detail?: Promise<string>): void {
    // Errors are ranked by when their scope was opened, not by when their promise settles: a
    // failed compile also invalidates the flush that used the pipeline, and the compile error
    // (which names the WGSL line) awaits its compilation info, so it could otherwise lose the
    // race to the less specific flush error.
    const seq = this.errorSeq++;
    this.pendingErrors.push(
      p.then(async (err) => {
        if (!err) return;
        const extra = detail ? await detail.catch(() => '') : '';
        if (this.firstError && this.firstError.seq < seq) return;
        const error = new Error(`backlight: GPU error while ${typeof what === 'string' ? what : what()}: ${err.message}${extra ? `\n${extra}` : ''}`);
        this.firstError = { seq, error };
      }),
    );
  }

  /** Throw the first GPU error seen since the last check (errors arrive asynchronously). */
  async checkErrors(): Promise<void> {
    const pending = this.pendingErrors;
    this.pendingErrors = [];
    await Promise.all(pending);
    const e = this.firstError;
    this.firstError = null;
    if (e) throw e.error;
  }

  destroy(): void {
    this.submit();
    for (const list of this.free.values()) for (const b of list) b.buffer.destroy();
    this.free.clear();
    this.arena.destroy();
    this.upload.destroy();
    this.device.destroy();
  }
}

const mib = (b: number) => (b >= 2 ** 20 ? `${(b / 2 ** 20).toFixed(1)} MiB` : `${b} bytes`);

function describeFlush(r: FlushRecord): string {
  const tail = r.labels.slice(-8);
  return `running ${r.labels.length} kernels (last: ${tail.join('; ')})`;
}

function formatCompilation(info: GPUCompilationInfo, wgsl: string): string {
  const lines = wgsl.split('\n');
  return info.messages
    .filter((m) => m.type === 'error')
    .map((m) => `  line ${m.lineNum}: ${m.message}\n    > ${lines[m.lineNum - 1]?.trim() ?? ''}`)
    .join('\n');
}

// Lazy elementwise chains: the WebGPU backend records unary, binary, select and expand
// primitives as `LazyValue`s instead of dispatching them, and emits a whole chain as one
// generated kernel (shaders/fused.ts) when its result is needed:
//   - a non-elementwise primitive reads it (the backend calls `realise`),
//   - it is read back, or the backend flushes/syncs (every live pending value is emitted),
//   - a second pending consumer wants it (computed once, then read by both),
//   - or the chain would outgrow one kernel (leaves, steps): its operands are emitted first.
// A value that is released before anyone needs it is never computed.
//
// Known cost: a value that a tensor still holds (not released: e.g. kept by an autodiff tape)
// but that a consumer computed inline is computed again when it is itself needed (or at the next
// flush). Chains inside tidy() release their intermediates, so this is rare in explainers; a
// multi-output kernel (write such values too) would remove it.
//
// This is an optimisation below the Backend interface: the tape, the vjp rules and the public
// API see ordinary storages. The pipeline cache stays keyed by the WGSL text; the text holds only
// the chain's structure (shapes and strides are uniforms), so new shapes compile nothing new.
//
// Lifetime rule (what keeps the buffer pool safe). The runtime recycles a released buffer for
// the next op in the same encoder, which is safe because every reader of it was recorded earlier.
// A pending chain has not been recorded yet, so whatever it will read is *pinned*: a pending
// value pins its direct operands (leaf buffers, or other values). Releasing a pinned buffer only
// marks it; it returns to the pool when the last pending reader is emitted or dies. A released
// value that is still pinned keeps its own operands pinned in turn, so the whole chain stays
// readable until its consumer is emitted.
import type { Shape } from '../primitives.ts';
import { sizeOf } from '../backend.ts';
import { FUSED_MAX_LEAVES, FUSED_MAX_SCALARS, type FusedProgram, type FusedStep, fusedShader, fusedUniforms } from '../../shaders/fused.ts';
import { type EpilogueProgram, epilogueValues } from '../../shaders/epilogue.ts';
import type { Fields, UniformSchema } from '../../shaders/uniforms.ts';
import type { GpuBuf, Runtime } from './runtime.ts';
import { broadcastStrides, sameShape } from '../shape.ts';

/** The primitives a chain may hold. `expand` is a broadcast read, folded into its consumer. */
export type ElementwiseOp =
  | { op: 'unary'; prim: string }
  | { op: 'binary'; prim: string }
  | { op: 'select' }
  | { op: 'expand' };

/** A chain folded into its producer's kernel: the program (the producer's value is `acc`), the
 * leaf buffers it reads, its uniform values (shaders/epilogue.ts, epilogueValues) and a key of
 * its structure (the producer caches its kernel text by it). */
export interface Epilogue {
  program: EpilogueProgram;
  leaves: GpuBuf[];
  values: Record<string, number | number[]>;
  key: string;
}

/**
 * A conv2d or matmul recorded lazily, so that an elementwise chain reading only its output can
 * run inside its kernel (engine/webgpu/backend.ts makes them). `emit` records the kernel writing
 * `output`, with the chain applied as each element is written when `epilogue` is given; until
 * then its `inputs` are pinned like a chain's leaves. (So an unread result keeps its producer's
 * inputs alive until it is read, flushed or disposed: a loop collecting unread results per batch
 * holds each batch's conv/matmul inputs, not only the results. Any flush or sync emits them.)
 *
 * Its inputs may themselves be pending (a chain, another producer): they are emitted when it is,
 * not when it is recorded. That is what lets conv -> BatchNorm -> ReLU -> conv inside a
 * Sequential fold: when the second conv is recorded, the first conv's and BatchNorm's outputs
 * are still held by the Sequential's tidy scope; by the time anything is read, they are released.
 * A producer with `run` (a pooling kernel) makes its own output and never takes a chain: it is
 * recorded lazily only so that what it reads is not emitted early.
 */
export interface Producer {
  label: string;
  inputs: GpuStorage[];
  emit(output: GpuBuf, epilogue: Epilogue | null): void;
  run?: () => GpuBuf;
  /** Leaf buffers a folded chain may bind (the storage bindings left in a stage). */
  maxLeaves: number;
  /** Whether the uniforms of the producer plus this chain fit one dispatch slot. */
  fits(program: EpilogueProgram): boolean;
  /** The output axis whose index the kernel passes its epilogue as `ch` (EpilogueProgram
   * leafChannel: a leaf that varies only along it, contiguously, is read there); absent when the
   * kernel passes none. */
  channelAxis?: number;
}

/** What a lazy value computes: an elementwise step, or a producer. */
type ValueOp = ElementwiseOp | { op: 'producer'; producer: Producer };

/** Steps one kernel may hold; a longer chain is cut (its operands emitted first). Bounds the WGSL
 * size and compile time; chains in practice (IG's interpolation, SHAP's masking, a backward
 * pass's ReLU mask times cotangent, bias + activation) are well under it. */
const MAX_STEPS = 24;
/** Kernel boundaries one pending value may sit on (LazyValue.depth). */
const MAX_DEPTH = 24;

/** An operand of a pending value: a buffer, or another value, read as `shape`. */
interface Arg {
  buf?: GpuBuf;
  value?: LazyValue;
  shape: Shape;
  /** `value` was unmaterialised when recorded and is computed inside this kernel (unless it has
   * been materialised by the time this kernel is emitted: then its buffer is read). */
  inlined: boolean;
  /** `value` was unmaterialised when recorded and is read as a buffer: emitted before this
   * value's kernel (counted in its bufReaders). */
  asBuffer?: boolean;
}

let nextValueId = 0;

export class LazyValue {
  readonly id = nextValueId++;
  readonly size: number;
  /** Set once emitted; owned by this value, released when it dies. */
  buf: GpuBuf | null = null;
  /** Pending values holding this one as an operand. */
  pins = 0;
  /** Pending values that will compute this one inline. A second one materialises it instead. */
  inlinedBy = 0;
  /** No tensor refers to it any more (Backend.release). */
  released = false;
  /** Producers that will read it as a buffer: computing it inline elsewhere would compute it
   * twice, so a chain that reaches it emits it first (Fusion.prepare). */
  bufReaders = 0;
  /** Kernel boundaries on its deepest pending path (bounds the recursion when it is emitted). */
  readonly depth: number;
  /** Some pending producer is below it: waiting to emit it may let that producer fold (its
   * outputs on the way released by then). Without one, an operand read as a buffer is emitted
   * at once, which frees the buffers it pins. */
  readonly aboveProducer: boolean;
  /** Cleared once emitted or dead. */
  args: Arg[];
  /** What its kernel would read and do, for the limits: buffer leaves ("id|shape"), scalar
   * leaves (buffer ids), steps. Upper bounds: an operand materialised later is read instead. */
  readonly foot: Footprint;
  readonly label: string;

  constructor(
    readonly op: ValueOp,
    readonly shape: Shape,
    args: Arg[],
  ) {
    this.size = sizeOf(shape);
    this.args = args;
    // a kernel boundary (a producer's input, an operand read as a buffer) adds one
    this.depth = Math.max(0, ...args.map((a) => (a.value && !a.value.buf ? a.value.depth + (a.inlined ? 0 : 1) : 0)));
    this.aboveProducer = op.op === 'producer' || args.some((a) => a.value && !a.value.buf && a.value.aboveProducer);
    // A producer's inputs are its kernel's, not leaves of a chain that folds into it.
    this.foot = op.op === 'producer' ? { bufs: [], scalars: [], steps: 0 } : footprint(op, args);
    const names = args.filter((a) => a.inlined).map((a) => a.value!.label);
    const own = op.op === 'unary' || op.op === 'binary' ? op.prim : op.op === 'producer' ? op.producer.label : op.op;
    this.label = [...names.filter(Boolean), own].join('+');
  }
}

interface Footprint {
  bufs: string[];
  scalars: number[];
  steps: number;
}

/** A rank-0 tensor uploaded from the host (a constant such as the 2 in mul(x, 2)) is read from
 * the uniform block, not bound: constants would otherwise use up a kernel's bindings. Rank 0
 * only, so that whether an operand is a constant never depends on its shape's sizes (a [1]
 * operand is bound like a [5] one: new shapes compile no new pipelines). */
function isScalarLeaf(buf: GpuBuf, shape: Shape): boolean {
  return buf.hostScalar !== undefined && shape.length === 0;
}

function footprint(op: ElementwiseOp, args: readonly Arg[]): Footprint {
  const f: Footprint = { bufs: [], scalars: [], steps: op.op === 'expand' ? 0 : 1 };
  const addBuf = (buf: GpuBuf, shape: Shape) => {
    if (isScalarLeaf(buf, shape)) {
      if (!f.scalars.includes(buf.id)) f.scalars.push(buf.id);
    } else {
      const k = `${buf.id}|${shape.join(',')}`;
      if (!f.bufs.includes(k)) f.bufs.push(k);
    }
  };
  for (const a of args) {
    const v = a.value;
    if (a.buf) addBuf(a.buf, a.shape);
    else if (v!.buf) addBuf(v!.buf, a.shape);
    else if (a.inlined) {
      for (const k of v!.foot.bufs) if (!f.bufs.includes(k)) f.bufs.push(k);
      for (const k of v!.foot.scalars) if (!f.scalars.includes(k)) f.scalars.push(k);
      f.steps += v!.foot.steps;
    } else if (a.asBuffer) {
      const k = `pending ${v!.id}|${a.shape.join(',')}`;
      if (!f.bufs.includes(k)) f.bufs.push(k);
    }
    // else: a repeat of an inlined operand (x * x), counted with its first occurrence.
  }
  return f;
}

export type GpuStorage = GpuBuf | LazyValue;

function isLazy(s: GpuStorage): s is LazyValue {
  return s instanceof LazyValue;
}



const WG = 64;

export class Fusion {
  /** Values recorded but neither emitted nor dead, in recording order (operands first). */
  private pending = new Set<LazyValue>();
  /** Structure key -> WGSL text (the same string object each time keeps pipeline lookups cheap)
   * and the uniform schema it reads. */
  private shaders = new Map<string, { wgsl: string; uniforms: UniformSchema<Fields> }>();
  /** Kernels emitted and the elementwise primitives they covered (for tests and benchmarks);
   * chains folded into a producer's kernel (not counted in `kernels`). */
  kernels = 0;
  fusedOps = 0;
  epilogues = 0;

  constructor(
    private readonly rt: Runtime,
    /** A fresh (poisoned when testing) output buffer of `size` elements. */
    private readonly out: (size: number) => GpuBuf,
    /** Elements per invocation (shaders/fused.ts): 16 on CPU adapters, 4 on GPUs. */
    private readonly perThread: number,
  ) {}

  /** Record one elementwise primitive; nothing runs yet. */
  record(op: ElementwiseOp, inputs: { storage: GpuStorage; shape: Shape }[], outShape: Shape): LazyValue {
    // Operands that cannot be computed inside this kernel are read as buffers, emitted when this
    // value is (Fusion.prepare), not now (their producers may still fold by then): one read
    // through a different shape (a reshaped view: its index map is not the chain's), one that
    // another pending chain already computes inline or a producer reads (computed once, read by
    // both), or any when the chain would outgrow one kernel. Past MAX_DEPTH, emitted now.
    // The same value twice in one op (x * x) is one computation and one leaf.
    const distinct = inputs.map((x, i) => inputs.findIndex((y) => y.storage === x.storage) === i);
    const argsOf = (all: boolean): Arg[] =>
      inputs.map((x, i) => {
        const s = x.storage;
        if (!isLazy(s)) return { buf: s, shape: x.shape, inlined: false };
        if (s.buf || !distinct[i]) return { value: s, shape: x.shape, inlined: false };
        const asBuffer = all || !sameShape(x.shape, s.shape) || s.inlinedBy > 0 || s.bufReaders > 0;
        return { value: s, shape: x.shape, inlined: !asBuffer, asBuffer };
      });
    let args = argsOf(false);
    const f = footprint(op, args);
    const tooBig = f.bufs.length > FUSED_MAX_LEAVES || f.scalars.length > FUSED_MAX_SCALARS || f.steps > MAX_STEPS;
    if (tooBig) args = argsOf(true);
    const now = (a: Arg) => a.asBuffer && (!a.value!.aboveProducer || a.value!.depth >= MAX_DEPTH);
    if (args.some(now)) {
      for (const a of args) if (now(a)) this.materialise(a.value!);
      args = argsOf(tooBig);
    }
    for (const a of args) {
      if (a.value) {
        a.value.pins++;
        if (a.inlined) a.value.inlinedBy++;
        if (a.asBuffer) a.value.bufReaders++;
      } else {
        a.buf!.pins = (a.buf!.pins ?? 0) + 1;
      }
    }
    const v = new LazyValue(op, outShape, args);
    this.pending.add(v);
    return v;
  }

  /** Record a conv2d or matmul; nothing runs until its value is needed (or a chain folds it). */
  recordProducer(producer: Producer, outShape: Shape): LazyValue {
    const args: Arg[] = producer.inputs.map((s) => {
      if (!isLazy(s)) {
        s.pins = (s.pins ?? 0) + 1;
        return { buf: s, shape: [], inlined: false };
      }
      // Nothing to gain from waiting, or a long run of pending kernels that one deep recursion
      // would emit: emitted now.
      if (!s.buf && (!s.aboveProducer || s.depth >= MAX_DEPTH)) this.materialise(s);
      s.pins++;
      if (s.buf) return { value: s, shape: [], inlined: false };
      s.bufReaders++;
      return { value: s, shape: [], inlined: false, asBuffer: true };
    });
    const v = new LazyValue({ op: 'producer', producer }, outShape, args);
    this.pending.add(v);
    return v;
  }

  /** The buffer behind a storage, emitting its chain if it is pending. */
  realise(s: GpuStorage): GpuBuf {
    return isLazy(s) ? this.materialise(s) : s;
  }

  /** A tensor no longer refers to this storage. */
  release(s: GpuStorage): void {
    if (isLazy(s)) {
      s.released = true;
      if (s.pins === 0) this.kill(s);
    } else if ((s.pins ?? 0) > 0) {
      s.releasePending = true;
    } else {
      this.rt.release(s);
    }
  }

  /** Emit every pending value a tensor still refers to (before a flush: "submit what's recorded"). */
  emitLive(): void {
    for (const v of [...this.pending]) if (!v.released && !v.buf) this.materialise(v);
  }

  /** Unmaterialised values (tests: a chain left pending where it should not be). */
  get pendingCount(): number {
    return this.pending.size;
  }

  materialise(v: LazyValue): GpuBuf {
    if (v.buf) return v.buf;
    this.prepare(v);
    if (v.op.op === 'producer') return this.emitProducer(v, null);
    // A chain computing a producer's value inline: fold it into the producer's kernel when the
    // producer's own output is not wanted by anyone else (no tensor refers to it, no other
    // chain reads it, nor any released-but-pending value on the way that would compute it
    // again later) and the chain runs over the producer's own elements (same shape: no
    // broadcast of the producer). Any other producer in the chain runs on its own first.
    let { producers, intermediatesReleased, held } = this.inlinedProducers(v);
    if (producers.length === 1 && !intermediatesReleased) {
      // A value on the way is still wanted (a tape keeps a conv + bias for relu's backward): it
      // is computed and stored anyway, so fold the producer into that value's own kernel, then
      // read it here.
      const p = producers[0];
      for (const h of held) {
        const sub = this.inlinedProducers(h);
        if (sub.producers.length === 1 && sub.producers[0] === p && sub.intermediatesReleased && sameShape(p.shape, h.shape)) {
          this.materialise(h);
          ({ producers, intermediatesReleased, held } = this.inlinedProducers(v));
          break;
        }
      }
    }
    const p = producers.length === 1 ? producers[0] : null;
    const fold = p && p.released && p.inlinedBy === 1 && intermediatesReleased && sameShape(p.shape, v.shape) ? p : null;
    for (const q of producers) if (q !== fold) this.emitProducer(q, null);
    if (fold) {
      const c = this.compile(v, fold, (fold.op as { producer: Producer }).producer.channelAxis);
      const prod = (fold.op as { producer: Producer }).producer;
      if (c && c.leaves.length <= prod.maxLeaves && prod.fits(c.program)) return this.emitFolded(v, fold, prod, c);
      this.emitProducer(fold, null);
    }
    let compiled = this.compile(v);
    // The limits checked when recording are upper bounds of what is known then; an operand
    // materialised since adds a leaf of its own. Over a limit, emit the biggest pending operand
    // first and try again: with every operand materialised, a kernel reads at most 3 buffers.
    while (!compiled) {
      const pendingArgs = v.args.filter((a) => a.value && !a.value.buf).map((a) => a.value!);
      if (pendingArgs.length === 0) throw new Error(`backlight internal: fused ${v.label} does not fit one kernel`);
      this.materialise(pendingArgs.sort((a, b) => b.foot.steps - a.foot.steps)[0]);
      compiled = this.compile(v);
    }
    const { program, leaves, values, label } = compiled;
    const splat = program.vec4?.splat;
    const key = `${program.perThread}${splat ? 'x4' : ''}|${program.rank}|${program.leafFlat.map((f, j) => (f ? 'f' : splat ? (splat[j] ? 'b' : 'v') : 's')).join('')}|${program.scalars}|${program.steps.map(stepKey).join(';')}|${program.result}`;
    let kernel = this.shaders.get(key);
    if (kernel === undefined) {
      const uniforms = fusedUniforms(program);
      this.shaders.set(key, (kernel = { wgsl: fusedShader(program, uniforms), uniforms }));
    }
    const output = this.out(v.size);
    const threads = Math.ceil(v.size / this.perThread);
    const params = kernel.uniforms.pack({ ...values, threads });
    this.rt.dispatch({ label, wgsl: kernel.wgsl, params, output, inputs: leaves, workgroups: Math.ceil(threads / WG) });
    this.kernels++;
    this.fusedOps += program.steps.length;
    v.buf = output;
    this.pending.delete(v);
    this.dropArgs(v);
    return output;
  }

  /** Emit a producer's kernel on its own (epilogue null) into a fresh buffer it then owns. */
  private emitProducer(v: LazyValue, epilogue: null): GpuBuf {
    this.prepare(v);
    const producer = (v.op as { producer: Producer }).producer;
    let output: GpuBuf;
    if (producer.run) {
      output = producer.run();
    } else {
      output = this.out(v.size);
      this.emitOrRelease(output, () => producer.emit(output, epilogue));
    }
    v.buf = output;
    this.pending.delete(v);
    this.dropArgs(v);
    return output;
  }

  /** Run `emit`; if it throws (nothing was recorded that writes `output`), free `output`. */
  private emitOrRelease(output: GpuBuf, emit: () => void): void {
    try {
      emit();
    } catch (e) {
      this.rt.release(output);
      throw e;
    }
  }

  /** Emit `root`'s chain inside the kernel of the producer it computes inline. The producer is
   * released and read only by this chain, so it dies with the chain's operands. */
  private emitFolded(root: LazyValue, p: LazyValue, prod: Producer, c: NonNullable<ReturnType<Fusion['compile']>>): GpuBuf {
    const { program, leaves, values } = c;
    const output = this.out(root.size);
    const key = `${program.rank}|${program.leafFlat.map((f, j) => (f ? 'f' : program.leafChannel?.[j] ? 'c' : 's')).join('')}|${program.scalars}|${program.steps.map(stepKey).join(';')}|${program.result}`;
    this.emitOrRelease(output, () => prod.emit(output, { program, leaves, values: epilogueValues(values, program), key }));
    this.epilogues++;
    this.fusedOps += program.steps.length;
    root.buf = output;
    this.pending.delete(root);
    this.dropArgs(root); // the producer's last pin: it is killed, unpinning its inputs
    if (p.buf === null && this.pending.has(p)) throw new Error(`backlight internal: folded producer ${p.label} still pending`);
    return output;
  }

  /**
   * Before `root`'s kernel is put together: emit what it must read as a buffer rather than compute
   * inline, i.e. values on its chain that a producer also reads (bufReaders: computed once, read
   * by both), and the pending inputs of every producer it runs or folds (they are emitted before
   * the producer's kernel, never inside a chain).
   */
  private prepare(root: LazyValue): void {
    const seen = new Set<LazyValue>();
    const walk = (v: LazyValue) => {
      if (v.buf || seen.has(v)) return;
      seen.add(v);
      if (v !== root && v.bufReaders > 0) {
        this.materialise(v);
        return;
      }
      if (v.op.op === 'producer') {
        for (const a of v.args) if (a.value && !a.value.buf) this.materialise(a.value);
        return;
      }
      for (const a of v.args) if (a.value) walk(a.value);
    };
    walk(root);
  }

  /** The unmaterialised producers `root` computes inline, and whether every value computed
   * inline on the way to them is released (a held one would compute them again later). */
  private inlinedProducers(root: LazyValue): { producers: LazyValue[]; intermediatesReleased: boolean; held: LazyValue[] } {
    const producers: LazyValue[] = [];
    const held: LazyValue[] = [];
    const seen = new Set<LazyValue>();
    const walk = (v: LazyValue, isRoot: boolean) => {
      if (seen.has(v)) return;
      seen.add(v);
      if (v.op.op === 'producer') {
        producers.push(v);
        return;
      }
      if (!isRoot && !v.released) held.push(v);
      for (const a of v.args) if (a.value && !a.value.buf) walk(a.value, false);
    };
    walk(root, true);
    // nearest the producers first (the walk met them last)
    held.reverse();
    return { producers, intermediatesReleased: held.length === 0, held };
  }

  /** The straight-line program for `root`, its leaf buffers and uniform values (fusedUniforms,
   * all but `threads`). With `acc`, that producer's value is the variable `acc` (an epilogue). */
  private compile(root: LazyValue, acc?: LazyValue, channelAxis?: number): { program: FusedProgram; leaves: GpuBuf[]; values: Record<string, number | number[]>; label: string } | null {
    const out = root.shape;
    const rank = out.length;
    const n = root.size;
    const leaves: GpuBuf[] = [];
    const leafShapes: Shape[] = [];
    const leafFlat: boolean[] = [];
    const leafKey = new Map<string, string>();
    const steps: FusedStep[] = [];
    const done = new Map<LazyValue, string>();

    const scalars: number[] = [];
    const scalarIds = new Map<number, string>();
    const leaf = (buf: GpuBuf, shape: Shape): string => {
      if (isScalarLeaf(buf, shape)) {
        let name = scalarIds.get(buf.id);
        if (name === undefined) {
          name = `c${scalars.length}`;
          scalarIds.set(buf.id, name);
          scalars.push(buf.hostScalar!);
        }
        return name;
      }
      // Its size equals the output's: no broadcast on the way, read at the flat index.
      const flat = sizeOf(shape) === n;
      const key = `${buf.id}|${flat ? 'f' : shape.join(',')}`;
      let name = leafKey.get(key);
      if (name === undefined) {
        name = `l${leaves.length}`;
        leafKey.set(key, name);
        leaves.push(buf);
        leafShapes.push(shape);
        leafFlat.push(flat);
      }
      return name;
    };
    const visitArg = (a: Arg): string => {
      if (a.buf) return leaf(a.buf, a.shape);
      const val = a.value!;
      if (val.buf) return leaf(val.buf, a.shape);
      return visit(val);
    };
    // An unmaterialised value is only ever inlined at its own shape, so its operands' shapes
    // broadcast straight to the output (right-aligned broadcasting composes).
    const visit = (val: LazyValue): string => {
      const known = done.get(val);
      if (known) return known;
      if (val === acc) return 'acc';
      if (val.op.op === 'producer') throw new Error(`backlight internal: producer ${val.label} inlined in a chain`);
      const xs = val.args.map(visitArg);
      let name: string;
      switch (val.op.op) {
        case 'expand':
          name = xs[0];
          break;
        case 'unary':
          steps.push({ op: 'unary', prim: val.op.prim, x: xs[0] });
          name = `v${steps.length - 1}`;
          break;
        case 'binary':
          steps.push({ op: 'binary', prim: val.op.prim, a: xs[0], b: xs[1] });
          name = `v${steps.length - 1}`;
          break;
        case 'select':
          steps.push({ op: 'select', c: xs[0], a: xs[1], b: xs[2] });
          name = `v${steps.length - 1}`;
          break;
      }
      done.set(val, name);
      return name;
    };
    const result = visit(root);
    const outStrides = (shape: Shape) => broadcastStrides(shape, out);
    const leafChannel = leafShapes.map((shape, j) =>
      acc !== undefined && channelAxis !== undefined && !leafFlat[j] && outStrides(shape).every((st, k) => st === (k === channelAxis ? 1 : 0) || out[k] === 1));
    const strided = leafShapes.filter((_, j) => !leafFlat[j] && !leafChannel[j]);
    // Within these limits the uniforms fit one dispatch's 64 words at any rank (fused.ts).
    if (leaves.length > FUSED_MAX_LEAVES || scalars.length > FUSED_MAX_SCALARS) return null;
    const values: Record<string, number | number[]> = { count: n };
    scalars.forEach((c, j) => (values[`c${j}`] = c));
    // Four elements at a time (FusedProgram.vec4) unless a strided leaf says otherwise.
    let vec4: boolean[] | null = n % 4 === 0 && n > 0 ? [] : null;
    if (strided.length && rank > 0) {
      // Strides of each strided leaf read as if broadcast to `out` (right-aligned, 0 along
      // broadcast axes), then axes merged where every leaf walks them contiguously.
      const m = mergeAxes(out, strided.map(outStrides));
      values.shape = m.shape;
      values.strides = m.strides.flat();
      vec4 = vec4Splat(m.shape, m.strides, n);
    }
    const label = `${steps.length > 1 ? 'fused ' : ''}${root.label || 'copy'} [${out.join(',')}]`;
    const program: FusedProgram = { rank, leafFlat, scalars: scalars.length, perThread: this.perThread, steps, result };
    if (leafChannel.some(Boolean)) program.leafChannel = leafChannel;
    // Epilogues (acc) run per element inside their producer's kernel.
    if (!acc && vec4 && this.perThread % 4 === 0) program.vec4 = { splat: leafFlat.map((f) => !f && vec4!.shift() === true) };
    return { program, leaves, values, label };
  }

  /** A value that no tensor and no pending chain refers to. */
  private kill(v: LazyValue): void {
    this.pending.delete(v);
    if (v.buf) {
      const b = v.buf;
      v.buf = null;
      this.release(b);
    } else {
      this.dropArgs(v);
    }
  }

  /** `v` is emitted or dead: it no longer needs its operands. */
  private dropArgs(v: LazyValue): void {
    const args = v.args;
    v.args = [];
    for (const a of args) {
      if (a.value) {
        const u = a.value;
        u.pins--;
        if (a.inlined) u.inlinedBy--;
        if (a.asBuffer) u.bufReaders--;
        if (u.released && u.pins === 0) this.kill(u);
      } else {
        const b = a.buf!;
        b.pins!--;
        if (b.pins === 0 && b.releasePending) {
          b.releasePending = false;
          this.rt.release(b);
        }
      }
    }
  }
}

/**
 * The walk over the output's coordinates divides by every axis size (integer division is slow on
 * CPU adapters: lavapipe scalarises it per SIMD lane). Merge neighbouring axes that every leaf
 * walks contiguously (stride[k] == stride[k+1] * size[k+1], which holds for broadcast axes with
 * stride 0 on both sides) and drop size-1 axes, then pad with leading size-1 axes back to the
 * same rank: the kernel keeps one rank (one pipeline) and skips size-1 axes at run time.
 * [N,C,H,W] + [1,C,1,1] walks [1,N,C,H*W]: two divisions per element instead of eight.
 */
export function mergeAxes(shape: Shape, strides: number[][]): { shape: number[]; strides: number[][] } {
  const dims: number[] = [];
  const sts: number[][] = strides.map(() => []);
  for (let k = shape.length - 1; k >= 0; k--) {
    const d = shape[k];
    if (d === 1) continue;
    const last = dims.length - 1;
    if (last >= 0 && strides.every((s, j) => s[k] === sts[j][last] * dims[last])) {
      dims[last] *= d;
      continue;
    }
    dims.push(d);
    strides.forEach((s, j) => sts[j].push(s[k]));
  }
  while (dims.length < shape.length) {
    dims.push(1);
    sts.forEach((s) => s.push(0));
  }
  return { shape: dims.reverse(), strides: sts.map((s) => s.reverse()) };
}

/**
 * Whether a chain over `count` elements, walking merged `shape` with each strided leaf's
 * `strides`, can run four elements at a time (shaders/fused.ts, FusedProgram.vec4): per strided
 * leaf, true where it is broadcast along the innermost axis (one value per group of 4), false
 * where it is read as an aligned vec4; null where some leaf is neither or the innermost axis does
 * not hold whole groups.
 */
export function vec4Splat(shape: number[], strides: number[][], count: number): boolean[] | null {
  const inner = shape[shape.length - 1];
  if (count % 4 !== 0 || inner % 4 !== 0) return null;
  const splat: boolean[] = [];
  for (const st of strides) {
    const last = st[st.length - 1];
    if (last === 0) splat.push(true);
    else if (last === 1 && st.slice(0, -1).every((x) => x % 4 === 0)) splat.push(false);
    else return null;
  }
  return splat;
}

function stepKey(s: FusedStep): string {
  switch (s.op) {
    case 'unary':
      return `${s.prim}(${s.x})`;
    case 'binary':
      return `${s.prim}(${s.a},${s.b})`;
    case 'select':
      return `sel(${s.c},${s.a},${s.b})`;
  }
}

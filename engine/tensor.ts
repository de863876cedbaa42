// Tensor: a shape plus a reference-counted backend storage (reshape shares storage).
// Tensors are immutable; every op returns a new one. Methods are thin forwards to engine/ops.
import type { Backend } from './backend.ts';
import { sizeOf } from './backend.ts';
import type { Shape } from './primitives.ts';

export class StorageRef {
  refs = 1;
  constructor(
    readonly backend: Backend,
    readonly storage: unknown,
  ) {}
  release(): void {
    if (--this.refs === 0) this.backend.release(this.storage);
  }
}

let nextTensorId = 1;

/** Hooks set by engine/context.ts, so that this file has no import cycle with it. */
export const tensorHooks = {
  onCreate: (_t: Tensor) => {},
  onDispose: (_t: Tensor) => {},
};

export class Tensor {
  readonly id = nextTensorId++;
  readonly shape: Shape;
  readonly size: number;
  private ref: StorageRef;
  private disposedFlag = false;
  /** References held by autodiff tapes: dispose() waits until they are gone. */
  private holds = 0;
  private pendingDispose = false;
  /** Optional name, shown in error messages (e.g. a layer's activation). */
  name?: string;

  constructor(ref: StorageRef, shape: Shape) {
    this.ref = ref;
    this.shape = Object.freeze([...shape]);
    this.size = sizeOf(shape);
    tensorHooks.onCreate(this);
  }

  get backend(): Backend {
    return this.ref.backend;
  }

  get rank(): number {
    return this.shape.length;
  }

  get disposed(): boolean {
    return this.disposedFlag;
  }

  /** The backend storage; throws if the tensor was disposed. */
  storageFor(op: string): unknown {
    if (this.disposedFlag) {
      throw new Error(`${op}: tensor #${this.id}${this.name ? ` (${this.name})` : ''} of shape [${this.shape.join(',')}] was used after dispose()`);
    }
    return this.ref.storage;
  }

  /** A new tensor that shares this one's storage (reshape). */
  shareAs(shape: Shape): Tensor {
    this.storageFor('reshape');
    this.ref.refs++;
    return new Tensor(this.ref, shape);
  }

  /** Read the values back (float32 on WebGPU, float64 on the CPU reference). */
  async data(): Promise<Float32Array | Float64Array> {
    const s = this.storageFor('data');
    return this.ref.backend.read(s, this.size);
  }

  /** Nested arrays, for printing and small tests. */
  async array(): Promise<unknown> {
    const d = Array.from(await this.data());
    const build = (dim: number, off: number): unknown => {
      if (dim === this.shape.length) return d[off];
      const stride = sizeOf(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim] }, (_, i) => build(dim + 1, off + i * stride));
    };
    return build(0, 0);
  }

  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item: tensor has shape [${this.shape.join(',')}], not one element`);
    return (await this.data())[0];
  }

  /** A tape records this tensor: its storage must outlive a dispose() until unhold(). */
  hold(): void {
    this.holds++;
  }

  unhold(): void {
    if (--this.holds === 0 && this.pendingDispose) this.dispose();
  }

  dispose(): void {
    if (this.disposedFlag) return;
    if (this.holds > 0) {
      this.pendingDispose = true;
      return;
    }
    this.disposedFlag = true;
    this.ref.release();
    tensorHooks.onDispose(this);
  }

  toString(): string {
    return `Tensor#${this.id}[${this.shape.join(',')}]${this.disposedFlag ? ' (disposed)' : ''}`;
  }
}

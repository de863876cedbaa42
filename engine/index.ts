// backlight's engine: the package's main export.
export type { AdapterInfo, Backend, MemoryInfo } from './backend.ts';
export type { Primitive, PrimParams, Shape } from './primitives.ts';
export { Tensor } from './tensor.ts';
export { init, adapterInfo, memory, toBackend } from './init.ts';
export { getBackend, setDefaultBackend, withBackend, tidy, keep } from './context.ts';
export * from './ops/creation.ts';
export * from './ops/elementwise.ts';
export * from './ops/reduce.ts';
export * from './ops/movement.ts';
export * from './ops/linalg.ts';
export * from './ops/conv.ts';
export * from './ops/pool.ts';
export * from './ops/resize.ts';
export * from './ops/gather.ts';

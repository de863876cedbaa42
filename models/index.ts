// backlight models: layers, containers, and (in their own files) losses, optimizers, training,
// weight files, ONNX import, data sets and the bundled trained models.
export { Module } from './module.ts';
export * from './layers.ts';
export * from './containers.ts';
export { parseSafetensors, serializeSafetensors, type SafeTensor } from './io/safetensors.ts';
export { parseNpy, serializeNpy, type NpyArray } from './io/npy.ts';
export { saveWeights, loadWeights } from './io/weights.ts';

// backlight models: layers, containers, and (in their own files) losses, optimizers, training,
// weight files, ONNX import, data sets and the bundled trained models.
export { Module } from './module.ts';
export * from './layers.ts';
export * from './containers.ts';
export { parseSafetensors, serializeSafetensors, type SafeTensor } from './io/safetensors.ts';
export { parseNpy, serializeNpy, type NpyArray } from './io/npy.ts';
export { saveWeights, loadWeights } from './io/weights.ts';
export { crossEntropy, mse, type Reduction } from './losses.ts';
export { SGD, Adam, type Optimizer } from './optim.ts';
export { fit, evaluate, batchOf, shuffled, type Dataset, type FitOptions, type EpochLog } from './train.ts';
export { loadOnnx, parseOnnx, OnnxModel, SUPPORTED_ONNX_OPS, type LoadOnnxOptions, type OnnxInfo, type OnnxValueInfo } from './io/onnx.ts';
export { BayesLinear, BayesConv2d, bayesLayers, klDivergence, elboLoss, type BayesOptions, type ElboOptions } from './bayes.ts';

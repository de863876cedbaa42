// ONNX import: models/io/onnx/ holds the schema (schema.ts), host values and shape arithmetic
// (host.ts), the op handlers (ops/, by family) and the loader (loader.ts). This file is the entry point.
export { loadOnnx, OnnxModel, SUPPORTED_ONNX_OPS, type LoadOnnxOptions, type OnnxInfo, type OnnxValueInfo } from './onnx/loader.ts';
export { parseOnnx } from './onnx/schema.ts';
export { tensorToHost, type HostValue } from './onnx/host.ts';

// The parts of onnx.proto that inference reads, as protobuf message specs for models/io/protobuf.ts,
// the decoded shapes, and parseOnnx. Field numbers are those of onnx.proto
// (https://github.com/onnx/onnx/blob/main/onnx/onnx.proto).
import { DEFAULT_MAX_MESSAGES, decodeMessage, type Decoded, type MessageSpec } from '../protobuf.ts';

// ---- the schema: the parts of onnx.proto we read ----

export const StringStringEntryProto: MessageSpec = { name: 'StringStringEntryProto', fields: { 1: { name: 'key', type: 'string' }, 2: { name: 'value', type: 'string' } } };

export const TensorProto: MessageSpec = {
  name: 'TensorProto',
  fields: {
    1: { name: 'dims', type: 'int64', repeated: true },
    2: { name: 'data_type', type: 'int32' },
    3: { name: 'segment', type: 'bytes' },
    4: { name: 'float_data', type: 'float', repeated: true },
    5: { name: 'int32_data', type: 'int32', repeated: true },
    6: { name: 'string_data', type: 'bytes', repeated: true },
    7: { name: 'int64_data', type: 'int64', repeated: true },
    8: { name: 'name', type: 'string' },
    9: { name: 'raw_data', type: 'bytes' },
    10: { name: 'double_data', type: 'double', repeated: true },
    11: { name: 'uint64_data', type: 'uint64', repeated: true },
    13: { name: 'external_data', type: StringStringEntryProto, repeated: true },
    14: { name: 'data_location', type: 'enum' },
  },
};

export const AttributeProto: MessageSpec = {
  name: 'AttributeProto',
  fields: {
    1: { name: 'name', type: 'string' },
    2: { name: 'f', type: 'float' },
    3: { name: 'i', type: 'int64' },
    4: { name: 's', type: 'bytes' },
    5: { name: 't', type: TensorProto },
    6: { name: 'g', type: 'bytes' }, // sub-graphs (If, Loop, Scan): not decoded, those ops are unsupported
    7: { name: 'floats', type: 'float', repeated: true },
    8: { name: 'ints', type: 'int64', repeated: true },
    9: { name: 'strings', type: 'bytes', repeated: true },
    10: { name: 'tensors', type: TensorProto, repeated: true },
    20: { name: 'type', type: 'enum' },
    21: { name: 'ref_attr_name', type: 'string' },
    22: { name: 'sparse_tensor', type: 'bytes' },
  },
};

export const NodeProto: MessageSpec = {
  name: 'NodeProto',
  fields: {
    1: { name: 'input', type: 'string', repeated: true },
    2: { name: 'output', type: 'string', repeated: true },
    3: { name: 'name', type: 'string' },
    4: { name: 'op_type', type: 'string' },
    5: { name: 'attribute', type: AttributeProto, repeated: true },
    7: { name: 'domain', type: 'string' },
  },
};

export const Dimension: MessageSpec = { name: 'TensorShapeProto.Dimension', fields: { 1: { name: 'dim_value', type: 'int64' }, 2: { name: 'dim_param', type: 'string' } } };
export const TensorShapeProto: MessageSpec = { name: 'TensorShapeProto', fields: { 1: { name: 'dim', type: Dimension, repeated: true } } };
export const TypeTensor: MessageSpec = { name: 'TypeProto.Tensor', fields: { 1: { name: 'elem_type', type: 'int32' }, 2: { name: 'shape', type: TensorShapeProto } } };
export const TypeProto: MessageSpec = { name: 'TypeProto', fields: { 1: { name: 'tensor_type', type: TypeTensor } } };
export const ValueInfoProto: MessageSpec = { name: 'ValueInfoProto', fields: { 1: { name: 'name', type: 'string' }, 2: { name: 'type', type: TypeProto } } };

export const GraphProto: MessageSpec = {
  name: 'GraphProto',
  fields: {
    1: { name: 'node', type: NodeProto, repeated: true },
    2: { name: 'name', type: 'string' },
    5: { name: 'initializer', type: TensorProto, repeated: true },
    11: { name: 'input', type: ValueInfoProto, repeated: true },
    12: { name: 'output', type: ValueInfoProto, repeated: true },
    13: { name: 'value_info', type: ValueInfoProto, repeated: true },
    15: { name: 'sparse_initializer', type: 'bytes', repeated: true },
  },
};

export const OperatorSetIdProto: MessageSpec = { name: 'OperatorSetIdProto', fields: { 1: { name: 'domain', type: 'string' }, 2: { name: 'version', type: 'int64' } } };

export const ModelProto: MessageSpec = {
  name: 'ModelProto',
  fields: {
    1: { name: 'ir_version', type: 'int64' },
    2: { name: 'producer_name', type: 'string' },
    3: { name: 'producer_version', type: 'string' },
    4: { name: 'domain', type: 'string' },
    5: { name: 'model_version', type: 'int64' },
    6: { name: 'doc_string', type: 'string' },
    7: { name: 'graph', type: GraphProto },
    8: { name: 'opset_import', type: OperatorSetIdProto, repeated: true },
    14: { name: 'metadata_props', type: StringStringEntryProto, repeated: true },
  },
};

// ---- decoded shapes (what decodeMessage returns for the specs above) ----

export interface TensorP {
  dims?: number[];
  data_type?: number;
  segment?: Uint8Array;
  float_data?: Float32Array;
  int32_data?: number[];
  string_data?: Uint8Array[];
  int64_data?: number[];
  name?: string;
  raw_data?: Uint8Array;
  double_data?: Float64Array;
  uint64_data?: number[];
  external_data?: { key?: string; value?: string }[];
  data_location?: number;
}
export interface AttrP {
  name?: string;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: TensorP;
  g?: Uint8Array;
  floats?: Float32Array;
  ints?: number[];
  strings?: Uint8Array[];
  tensors?: TensorP[];
  type?: number;
  ref_attr_name?: string;
  sparse_tensor?: Uint8Array;
}
export interface NodeP {
  input?: string[];
  output?: string[];
  name?: string;
  op_type?: string;
  attribute?: AttrP[];
  domain?: string;
}
export interface ValueInfoP {
  name?: string;
  type?: { tensor_type?: { elem_type?: number; shape?: { dim?: { dim_value?: number; dim_param?: string }[] } } };
}
export interface GraphP {
  node?: NodeP[];
  name?: string;
  initializer?: TensorP[];
  input?: ValueInfoP[];
  output?: ValueInfoP[];
  value_info?: ValueInfoP[];
  sparse_initializer?: Uint8Array[];
}
export interface ModelP {
  ir_version?: number;
  producer_name?: string;
  producer_version?: string;
  graph?: GraphP;
  opset_import?: { domain?: string; version?: number }[];
  metadata_props?: { key?: string; value?: string }[];
}

export interface ParseOnnxOptions {
  /** The largest file accepted, in bytes (default 2 GiB, protobuf's own limit for one message). */
  maxBytes?: number;
  /** The most protobuf messages the file may hold (default 10,000,000; see DecodeOptions). */
  maxMessages?: number;
}

export const DEFAULT_MAX_ONNX_BYTES = 2 ** 31;

/** Decode an ONNX file into plain objects (field names as in onnx.proto). */
export function parseOnnx(bytes: Uint8Array, source = 'onnx', opts: ParseOnnxOptions = {}): ModelP {
  if (!(bytes instanceof Uint8Array)) throw new Error(`${source}: expected the file's bytes as a Uint8Array`);
  if (bytes.byteLength === 0) throw new Error(`${source}: empty file, not an ONNX model`);
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_ONNX_BYTES;
  if (bytes.byteLength > maxBytes) throw new Error(`${source}: the file has ${bytes.byteLength} bytes, over the limit of ${maxBytes} (maxBytes)`);
  return decodeMessage(ModelProto, bytes, source, 0, bytes.byteLength, { maxMessages: opts.maxMessages ?? DEFAULT_MAX_MESSAGES }) as Decoded as ModelP;
}

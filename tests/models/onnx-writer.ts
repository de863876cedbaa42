// A small protobuf writer for the ONNX schema in models/io/onnx/schema.ts, for tests that build
// graphs as objects (the fuzz tests' generated graphs, the bad-file corpus generator).
import { ModelProto } from '../../models/io/onnx/schema.ts';
import type { MessageSpec, ScalarType } from '../../models/io/protobuf.ts';

export function varint(v: bigint | number, out: number[]): void {
  let x = BigInt.asUintN(64, BigInt(v));
  do {
    let b = Number(x & 0x7fn);
    x >>= 7n;
    if (x) b |= 0x80;
    out.push(b);
  } while (x);
}

const WIRE: Partial<Record<ScalarType, number>> = { float: 5, fixed32: 5, sfixed32: 5, double: 1, fixed64: 1, sfixed64: 1, string: 2, bytes: 2 };

/** Encode a plain object against a MessageSpec (unpacked repeated fields). */
export function encode(spec: MessageSpec, obj: Record<string, unknown>, out: number[] = []): number[] {
  for (const [num, f] of Object.entries(spec.fields)) {
    const v = obj[f.name];
    if (v === undefined) continue;
    const vs = f.repeated ? Array.from(v as ArrayLike<unknown>) : [v];
    for (const x of vs) {
      if (typeof f.type !== 'string') {
        const inner = encode(f.type, x as Record<string, unknown>);
        varint((Number(num) << 3) | 2, out);
        varint(inner.length, out);
        for (const b of inner) out.push(b);
        continue;
      }
      const wire = WIRE[f.type] ?? 0;
      varint((Number(num) << 3) | wire, out);
      if (wire === 0) varint(typeof x === 'boolean' ? (x ? 1 : 0) : (x as number | bigint), out);
      else if (wire === 5) out.push(...new Uint8Array(new Float32Array([x as number]).buffer));
      else if (wire === 1) out.push(...new Uint8Array(new Float64Array([x as number]).buffer));
      else {
        const b = typeof x === 'string' ? new TextEncoder().encode(x) : (x as Uint8Array);
        varint(b.length, out);
        for (const y of b) out.push(y);
      }
    }
  }
  return out;
}

export type OnnxTensor = { name: string; dims: (number | bigint)[]; data_type: number; raw_data?: Uint8Array; float_data?: number[]; int64_data?: number[] };
export type OnnxNode = { name?: string; op_type: string; input: string[]; output: string[]; attribute?: Record<string, unknown>[] };

export function model(nodes: OnnxNode[], inits: OnnxTensor[], outputs: string[], opset = 13): Uint8Array {
  return Uint8Array.from(
    encode(ModelProto, {
      ir_version: 7,
      opset_import: [{ domain: '', version: opset }],
      graph: {
        name: 'g',
        node: nodes,
        initializer: inits,
        input: [{ name: 'x', type: { tensor_type: { elem_type: 1, shape: { dim: [1, 2, 4, 4].map((d) => ({ dim_value: d })) } } } }],
        output: outputs.map((name) => ({ name })),
      },
    }),
  );
}

export const f32 = (xs: number[]) => new Uint8Array(new Float32Array(xs).buffer);
export const i64 = (xs: number[]) => new Uint8Array(new BigInt64Array(xs.map(BigInt)).buffer);


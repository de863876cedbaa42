// safetensors (https://github.com/huggingface/safetensors): an 8-byte little-endian header
// length N, N bytes of JSON { name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?:
// { string: string } }, then the data buffer, offsets relative to its start. Tensors are
// little-endian, row-major, contiguous, and together cover the buffer without gaps or overlap.
// We write F32 and read F32, F64, F16, BF16, I64, I32, I16, I8, U8 and BOOL (as float32 values).

export interface SafeTensor {
  dtype: string;
  shape: number[];
  data: Float32Array;
}

const DTYPE_BYTES: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

/** IEEE half-precision bits to a number (also used by the ONNX and npy readers). */
export function f16(bits: number): number {
  const s = bits & 0x8000 ? -1 : 1;
  const e = (bits >> 10) & 0x1f;
  const m = bits & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

const bf16Scratch = new Uint32Array(1);
const bf16View = new Float32Array(bf16Scratch.buffer);

function decode(dtype: string, bytes: Uint8Array, n: number): Float32Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    switch (dtype) {
      case 'F32': out[i] = dv.getFloat32(i * 4, true); break;
      case 'F64': out[i] = dv.getFloat64(i * 8, true); break;
      case 'F16': out[i] = f16(dv.getUint16(i * 2, true)); break;
      case 'BF16': bf16Scratch[0] = dv.getUint16(i * 2, true) << 16; out[i] = bf16View[0]; break;
      case 'I64': out[i] = Number(dv.getBigInt64(i * 8, true)); break;
      case 'I32': out[i] = dv.getInt32(i * 4, true); break;
      case 'I16': out[i] = dv.getInt16(i * 2, true); break;
      case 'I8': out[i] = dv.getInt8(i); break;
      case 'U8': case 'BOOL': out[i] = dv.getUint8(i); break;
    }
  }
  return out;
}

export interface ParseSafetensorsOptions {
  /** The longest JSON header accepted, in bytes (default 100,000,000, the reference implementation's limit). */
  maxHeaderBytes?: number;
  /** The most bytes of float32 values the tensors may decode to, all together (default 2 GiB). */
  maxBytes?: number;
  /**
   * Accept NaN and infinities in float tensors (F64, F32, F16, BF16). Default false: weights that
   * hold them are corrupt (a diverged run, a bad conversion), so the error names the tensor and the
   * first bad element rather than letting NaN propagate through every explanation.
   */
  allowNonFinite?: boolean;
}

export const DEFAULT_MAX_SAFETENSORS_BYTES = 2 ** 31;

const FLOAT_DTYPES = new Set(['F64', 'F32', 'F16', 'BF16']);

/**
 * Parse a safetensors file; `source` names it in errors. Every inconsistency is an error: the
 * header length past the end or over `maxHeaderBytes`, invalid JSON, unknown dtypes, shapes that
 * are not lists of safe integers, offsets that are not [begin, end] within the data, sizes that
 * disagree with the shape, gaps or overlaps between tensors, decoded sizes over `maxBytes`, and
 * (unless allowNonFinite) NaN or infinite float values. The whole header is checked before any
 * tensor is decoded, so memory stays bounded by the file size and `maxBytes`.
 */
export function parseSafetensors(buf: Uint8Array, source = 'safetensors', opts: ParseSafetensorsOptions = {}): { tensors: Map<string, SafeTensor>; metadata: Record<string, string> } {
  const fail = (msg: string): never => {
    throw new Error(`${source}: ${msg}`);
  };
  const maxHeader = opts.maxHeaderBytes ?? 100_000_000;
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_SAFETENSORS_BYTES;
  if (!(buf instanceof Uint8Array)) fail("expected the file's bytes as a Uint8Array");
  if (buf.byteLength < 8) fail(`truncated: ${buf.byteLength} bytes, need at least 8 for the header length`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = Number(dv.getBigUint64(0, true));
  if (headerLen > buf.byteLength - 8) fail(`header length ${headerLen} runs past the end of the file (${buf.byteLength} bytes)`);
  if (headerLen > maxHeader) fail(`header length ${headerLen} is implausibly large (over maxHeaderBytes = ${maxHeader})`);
  // A safetensors header nests 3 deep ({ name: { shape: [...] } }). JSON.parse of deep nesting
  // is slow (about 0.5 s per MB of '['), so deeper headers are refused by a quick scan first.
  const hb = buf.subarray(8, 8 + headerLen);
  for (let i = 0, depth = 0, inString = false; i < hb.length; i++) {
    const c = hb[i];
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > 16) fail(`header nests deeper than 16 levels at byte ${8 + i}: not a safetensors header`);
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(hb));
  } catch (e) {
    return fail(`header is not valid UTF-8 JSON: ${(e as Error).message}`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) fail('header is not a JSON object');
  const data = buf.subarray(8 + headerLen);
  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: string; shape: number[]; b: number; e: number; n: number }[] = [];
  let decoded = 0;
  for (const [name, v] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!v || typeof v !== 'object' || Array.isArray(v)) fail('__metadata__ must be an object of strings');
      for (const [k, s] of Object.entries(v as object)) {
        if (typeof s !== 'string') fail(`__metadata__.${k} is not a string`);
        // defineProperty: a key '__proto__' is kept as data, never as the object's prototype
        Object.defineProperty(metadata, k, { value: s, enumerable: true, writable: true, configurable: true });
      }
      continue;
    }
    if (!v || typeof v !== 'object' || Array.isArray(v)) fail(`tensor '${name}': expected an object { dtype, shape, data_offsets }, got ${JSON.stringify(v)?.slice(0, 100)}`);
    const info = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dtype = info.dtype;
    if (typeof dtype !== 'string' || !Object.prototype.hasOwnProperty.call(DTYPE_BYTES, dtype)) {
      fail(`tensor '${name}': unsupported dtype ${JSON.stringify(dtype)?.slice(0, 100)} (supported: ${Object.keys(DTYPE_BYTES).join(', ')})`);
    }
    const shape = info.shape;
    if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) fail(`tensor '${name}': invalid shape ${JSON.stringify(shape)?.slice(0, 200)} (a list of integers in [0, 2^53))`);
    const offs = info.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || offs.some((o) => !Number.isSafeInteger(o) || o < 0)) fail(`tensor '${name}': invalid data_offsets ${JSON.stringify(offs)?.slice(0, 200)} (two integers [begin, end] in [0, 2^53))`);
    const [b, e] = offs as [number, number];
    const n = (shape as number[]).reduce((a, d) => a * d, 1);
    const bytes = n * DTYPE_BYTES[dtype as string];
    if (e < b || e - b !== bytes) fail(`tensor '${name}': data_offsets [${b}, ${e}] hold ${e - b} bytes, but ${dtype} ${JSON.stringify(shape)} needs ${bytes}`);
    if (e > data.byteLength) fail(`tensor '${name}': data_offsets [${b}, ${e}] run past the data (${data.byteLength} bytes): the file is truncated or the header lies`);
    decoded += n * 4;
    if (decoded > maxBytes) fail(`the tensors decode to more than ${maxBytes} bytes of float32 values (maxBytes) at tensor '${name}'`);
    entries.push({ name, dtype: dtype as string, shape: shape as number[], b, e, n });
  }
  // gaps and overlaps first, so that a header listing one span a million times decodes nothing
  const spans = [...entries].sort((x, y) => x.b - y.b || x.e - y.e);
  let at = 0;
  for (const { b, e, name } of spans) {
    if (b !== at) fail(`tensor '${name}' starts at ${b}, expected ${at}: tensors must cover the data buffer without gaps or overlap`);
    at = e;
  }
  if (at !== data.byteLength) fail(`the data buffer has ${data.byteLength} bytes but the tensors cover ${at}`);
  const tensors = new Map<string, SafeTensor>();
  for (const { name, dtype, shape, b, e, n } of entries) {
    const values = decode(dtype, data.subarray(b, e), n);
    if (!opts.allowNonFinite && FLOAT_DTYPES.has(dtype)) {
      for (let i = 0; i < n; i++) {
        if (!Number.isFinite(values[i])) fail(`tensor '${name}' holds ${values[i]} at flat index ${i} (of ${n}): the weights are corrupt (pass allowNonFinite: true to read them anyway)`);
      }
    }
    tensors.set(name, { dtype, shape, data: values });
  }
  return { tensors, metadata };
}

/** Serialise float32 tensors (sorted by name, as the reference implementation does). */
export function serializeSafetensors(tensors: Map<string, { shape: readonly number[]; data: ArrayLike<number> }>, metadata: Record<string, string> = {}): Uint8Array {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let off = 0;
  for (const n of names) {
    const t = tensors.get(n)!;
    const count = t.shape.reduce((a, d) => a * d, 1);
    if (count !== t.data.length) throw new Error(`safetensors: tensor '${n}' has ${t.data.length} values for shape [${t.shape.join(', ')}]`);
    header[n] = { dtype: 'F32', shape: [...t.shape], data_offsets: [off, off + count * 4] };
    off += count * 4;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces to a multiple of 8 so the data is aligned (allowed by the format).
  json += ' '.repeat((8 - ((8 + new TextEncoder().encode(json).length) % 8)) % 8);
  const hb = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + hb.length + off);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  let p = 8 + hb.length;
  for (const n of names) {
    const t = tensors.get(n)!;
    for (let i = 0; i < t.data.length; i++, p += 4) dv.setFloat32(p, t.data[i], true);
  }
  return out;
}

// A small protobuf wire-format decoder (https://protobuf.dev/programming-guides/encoding/), enough
// to read ONNX files without dependencies. A message is a sequence of (tag, value) records; the tag
// is a varint holding field_number << 3 | wire_type, and the wire type says how long the value is:
//   0 varint (int32, int64, uint64, bool, enum; sint* zigzag-encoded)
//   1 64-bit little-endian (double, fixed64, sfixed64)
//   2 length-delimited: a varint length, then bytes (string, bytes, sub-messages, packed repeated)
//   5 32-bit little-endian (float, fixed32, sfixed32)
//   3/4 start/end group (deprecated; skipped when unknown)
// Messages are decoded against a small schema (field number -> name and type). Unknown fields are
// skipped, repeated scalars are accepted packed or unpacked, and every read is bounds-checked:
// malformed input gives an error that names the message, the field and the byte offset.

export type ScalarType =
  | 'int32'
  | 'int64'
  | 'uint32'
  | 'uint64'
  | 'sint32'
  | 'sint64'
  | 'bool'
  | 'enum'
  | 'float'
  | 'double'
  | 'fixed32'
  | 'fixed64'
  | 'sfixed32'
  | 'sfixed64'
  | 'string'
  | 'bytes';

export interface FieldSpec {
  name: string;
  type: ScalarType | MessageSpec;
  repeated?: boolean;
}

export interface MessageSpec {
  /** The message's name, for errors ('TensorProto'). */
  name: string;
  fields: Record<number, FieldSpec>;
}

/** A decoded message: field name -> value (arrays for repeated fields; absent when not present). */
export type Decoded = Record<string, unknown>;

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_SGROUP = 3;
const WIRE_EGROUP = 4;
const WIRE_I32 = 5;

function wireOf(t: ScalarType | MessageSpec): number {
  if (typeof t !== 'string') return WIRE_LEN;
  switch (t) {
    case 'double':
    case 'fixed64':
    case 'sfixed64':
      return WIRE_I64;
    case 'float':
    case 'fixed32':
    case 'sfixed32':
      return WIRE_I32;
    case 'string':
    case 'bytes':
      return WIRE_LEN;
    default:
      return WIRE_VARINT;
  }
}

const utf8 = new TextDecoder('utf-8');

/** A bounds-checked cursor over a byte range. `source` and the message path name it in errors. */
export class ProtoReader {
  pos: number;
  private readonly dv: DataView;
  constructor(
    readonly buf: Uint8Array,
    readonly source: string,
    start = 0,
    readonly end = buf.byteLength,
  ) {
    this.pos = start;
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  fail(msg: string): never {
    throw new Error(`${this.source}: malformed protobuf: ${msg}`);
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  private need(n: number, what: string): void {
    if (this.pos + n > this.end) {
      this.fail(`${what} at byte ${this.pos} needs ${n} bytes but only ${this.end - this.pos} remain (the file is truncated or corrupt)`);
    }
  }

  /** A varint as two 32-bit halves [lo, hi] (unsigned). */
  varint64(what = 'varint'): [number, number] {
    let lo = 0;
    let hi = 0;
    const start = this.pos;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail(`${what} at byte ${start} runs past the end of its message (the file is truncated or corrupt)`);
      const b = this.buf[this.pos++];
      if (i < 4) lo |= (b & 0x7f) << (7 * i);
      else if (i === 4) {
        lo |= (b & 0x0f) << 28;
        hi |= (b & 0x7f) >> 4;
      } else hi |= (b & 0x7f) << (7 * i - 32);
      if (!(b & 0x80)) return [lo >>> 0, hi >>> 0];
    }
    return this.fail(`${what} at byte ${start} is longer than 10 bytes`);
  }

  /** An unsigned varint that must fit a JS number exactly (lengths, tags). */
  uvarint(what = 'varint'): number {
    const [lo, hi] = this.varint64(what);
    if (hi > 0x1fffff) this.fail(`${what} before byte ${this.pos} is too large (${hi} * 2^32)`);
    return hi * 2 ** 32 + lo;
  }

  /** A varint read as a two's-complement int64 (also right for int32, whose negatives take 10 bytes). */
  int64(what = 'int64'): number {
    const [lo, hi] = this.varint64(what);
    if (hi & 0x80000000) return -((~hi >>> 0) * 2 ** 32 + (~lo >>> 0) + 1);
    return hi * 2 ** 32 + lo;
  }

  uint64(what = 'uint64'): number {
    const [lo, hi] = this.varint64(what);
    return hi * 2 ** 32 + lo;
  }

  fixed32(what = 'fixed32'): number {
    this.need(4, what);
    const v = this.dv.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  float(what = 'float'): number {
    this.need(4, what);
    const v = this.dv.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  double(what = 'double'): number {
    this.need(8, what);
    const v = this.dv.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  fixed64(signed: boolean, what = 'fixed64'): number {
    this.need(8, what);
    const v = signed ? Number(this.dv.getBigInt64(this.pos, true)) : Number(this.dv.getBigUint64(this.pos, true));
    this.pos += 8;
    return v;
  }

  /** A length-delimited value: the bytes, a view into the buffer (no copy). */
  lengthDelimited(what = 'length-delimited field'): Uint8Array {
    const start = this.pos;
    const n = this.uvarint(`length of ${what}`);
    if (this.pos + n > this.end) {
      this.fail(`${what} at byte ${start} declares ${n} bytes but only ${this.end - this.pos} remain in its message (the file is truncated or corrupt)`);
    }
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /**
   * Skip one value of wire type `wire` (groups: up to the matching end tag). Nested groups are
   * walked with an explicit stack (no recursion, so a file of a million start-group tags cannot
   * overflow the call stack) and at most MAX_DEPTH deep, protobuf's own default recursion limit.
   */
  skip(wire: number, field: number, what: string): void {
    if (wire !== WIRE_SGROUP) return this.skipScalar(wire, what);
    const open = [field];
    while (open.length) {
      if (this.done) this.fail(`group ${open[open.length - 1]} in ${what} is not closed before byte ${this.pos}`);
      const tag = this.uvarint('tag');
      const w = tag & 7;
      const f = Math.floor(tag / 8);
      if (w === WIRE_EGROUP) {
        if (f !== open[open.length - 1]) this.fail(`group ${open[open.length - 1]} in ${what} closed by end tag ${f} at byte ${this.pos}`);
        open.pop();
      } else if (w === WIRE_SGROUP) {
        if (open.length >= MAX_DEPTH) this.fail(`groups in ${what} are nested more than ${MAX_DEPTH} deep at byte ${this.pos}`);
        open.push(f);
      } else this.skipScalar(w, what);
    }
  }

  private skipScalar(wire: number, what: string): void {
    switch (wire) {
      case WIRE_VARINT:
        this.varint64(what);
        return;
      case WIRE_I64:
        this.need(8, what);
        this.pos += 8;
        return;
      case WIRE_LEN:
        this.lengthDelimited(what);
        return;
      case WIRE_I32:
        this.need(4, what);
        this.pos += 4;
        return;
      default:
        this.fail(`${what}: invalid wire type ${wire} at byte ${this.pos}`);
    }
  }
}

/** Nesting limit for groups and sub-messages (protobuf's default recursion limit). */
export const MAX_DEPTH = 100;

function readScalar(r: ProtoReader, t: ScalarType, what: string): unknown {
  switch (t) {
    case 'int32':
    case 'int64':
    case 'enum':
      return r.int64(what);
    case 'uint32':
    case 'uint64':
      return r.uint64(what);
    case 'sint32':
    case 'sint64': {
      const [lo, hi] = r.varint64(what);
      // zigzag: (n >>> 1) ^ -(n & 1), on the 64-bit value
      const u = hi * 2 ** 32 + lo;
      return lo & 1 ? -(u - 1) / 2 - 1 : u / 2;
    }
    case 'bool':
      return r.uint64(what) !== 0;
    case 'float':
      return r.float(what);
    case 'double':
      return r.double(what);
    case 'fixed32':
      return r.fixed32(what);
    case 'sfixed32':
      return r.fixed32(what) | 0;
    case 'fixed64':
      return r.fixed64(false, what);
    case 'sfixed64':
      return r.fixed64(true, what);
    case 'string':
      return utf8.decode(r.lengthDelimited(what));
    case 'bytes':
      return r.lengthDelimited(what);
  }
}

/** A packed run of scalars; floats and doubles straight into typed arrays. */
function readPacked(r: ProtoReader, t: ScalarType, what: string): ArrayLike<unknown> {
  const bytes = r.lengthDelimited(what);
  const size = t === 'float' || t === 'fixed32' || t === 'sfixed32' ? 4 : t === 'double' || t === 'fixed64' || t === 'sfixed64' ? 8 : 0;
  if (size && bytes.byteLength % size !== 0) r.fail(`packed ${what} holds ${bytes.byteLength} bytes, not a multiple of ${size}`);
  if (t === 'float' || t === 'double') {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const n = bytes.byteLength / size;
    const out = t === 'float' ? new Float32Array(n) : new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = t === 'float' ? dv.getFloat32(i * 4, true) : dv.getFloat64(i * 8, true);
    return out;
  }
  const pr = new ProtoReader(r.buf, r.source, bytes.byteOffset - r.buf.byteOffset, bytes.byteOffset - r.buf.byteOffset + bytes.byteLength);
  const out: unknown[] = [];
  while (!pr.done) out.push(readScalar(pr, t, `packed ${what}`));
  return out;
}

export interface DecodeOptions {
  /**
   * The most messages (sub-messages included) one decode may create, default 10,000,000. An
   * empty sub-message costs 2 bytes of file but ~100 bytes of memory, so without a bound a hostile
   * file could make the decoder allocate ~50x its size; real ONNX models hold well under 10^6.
   */
  maxMessages?: number;
}

export const DEFAULT_MAX_MESSAGES = 10_000_000;

/**
 * Decode `buf[start, end)` as message `spec`. `source` names the file in errors. Repeated float
 * and double fields come back as Float32Array / Float64Array, other repeated scalars as arrays.
 */
export function decodeMessage(spec: MessageSpec, buf: Uint8Array, source = 'protobuf', start = 0, end = buf.byteLength, opts: DecodeOptions = {}): Decoded {
  const max = opts.maxMessages ?? DEFAULT_MAX_MESSAGES;
  return decodeAt(spec, buf, source, start, end, { messages: 0, max }, 0);
}

function decodeAt(spec: MessageSpec, buf: Uint8Array, source: string, start: number, end: number, count: { messages: number; max: number }, depth: number): Decoded {
  const r = new ProtoReader(buf, source, start, end);
  if (++count.messages > count.max) r.fail(`more than ${count.max} messages (at ${spec.name}, byte ${start}); raise maxMessages if the file is trusted`);
  if (depth > MAX_DEPTH) r.fail(`messages nested more than ${MAX_DEPTH} deep (at ${spec.name}, byte ${start})`);
  const out: Decoded = {};
  // per repeated field: packed runs as chunks, unpacked values gathered into one array between them
  const lists: Record<string, { chunks: ArrayLike<unknown>[]; loose: unknown[] }> = {};
  while (!r.done) {
    const tagAt = r.pos;
    const tag = r.uvarint(`tag in ${spec.name}`);
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (field === 0) r.fail(`field number 0 in ${spec.name} at byte ${tagAt}`);
    const f = Object.prototype.hasOwnProperty.call(spec.fields, field) ? spec.fields[field] : undefined;
    const what = `${spec.name}.${f?.name ?? `field ${field}`}`;
    if (!f) {
      if (wire === WIRE_EGROUP) r.fail(`unexpected end-group tag in ${spec.name} at byte ${tagAt}`);
      r.skip(wire, field, what);
      continue;
    }
    const expected = wireOf(f.type);
    let value: unknown;
    let packed: ArrayLike<unknown> | null = null;
    if (wire === expected) {
      if (typeof f.type === 'string') value = readScalar(r, f.type, what);
      else {
        const bytes = r.lengthDelimited(what);
        const off = bytes.byteOffset - buf.byteOffset;
        value = decodeAt(f.type, buf, source, off, off + bytes.byteLength, count, depth + 1);
      }
    } else if (wire === WIRE_LEN && f.repeated && expected !== WIRE_LEN) {
      packed = readPacked(r, f.type as ScalarType, what);
    } else {
      return r.fail(`${what} (field ${field}) at byte ${tagAt} has wire type ${wire}, expected ${expected}`);
    }
    if (f.repeated) {
      const l = (lists[f.name] ??= { chunks: [], loose: [] });
      if (packed) {
        if (l.loose.length) l.chunks.push(l.loose), (l.loose = []);
        l.chunks.push(packed);
      } else l.loose.push(value);
    } else out[f.name] = value; // the last one wins (the protobuf rule for scalars; ONNX never splits sub-messages)
  }
  for (const [name, l] of Object.entries(lists)) {
    const f = Object.values(spec.fields).find((x) => x.name === name)!;
    if (l.loose.length) l.chunks.push(l.loose);
    if (f.type !== 'float' && f.type !== 'double' && l.chunks.length === 1) {
      out[name] = Array.isArray(l.chunks[0]) ? l.chunks[0] : Array.from(l.chunks[0]);
      continue;
    }
    const n = l.chunks.reduce((a, c) => a + c.length, 0);
    const arr: { [i: number]: unknown; length: number } = f.type === 'float' ? new Float32Array(n) : f.type === 'double' ? new Float64Array(n) : new Array<unknown>(n);
    let k = 0;
    for (const c of l.chunks) for (let i = 0; i < c.length; i++) arr[k++] = c[i];
    out[name] = arr;
  }
  return out;
}

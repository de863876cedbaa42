// NumPy .npy files (format versions 1.0-3.0): magic "\x93NUMPY", version, header length, a Python
// dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }, then the data.
// We read little-endian f4/f8/i1/i2/i4/i8/u1/u2/u4/b1 in C order, and write '<f4'.

import { f16 } from './safetensors.ts';

export interface NpyArray {
  shape: number[];
  data: Float32Array;
  descr: string;
}

const SIZES: Record<string, number> = { f4: 4, f8: 8, f2: 2, i1: 1, i2: 2, i4: 4, i8: 8, u1: 1, u2: 2, u4: 4, u8: 8, b1: 1 };

export interface ParseNpyOptions {
  /** The most bytes the decoded values may take (float32 or float64 output), default 2 GiB. */
  maxBytes?: number;
  /**
   * Accept NaN and infinities in float arrays (f2/f4/f8). Default true (a .npy is data, and
   * goldens hold infinities); the command line passes false for model inputs, and then the error
   * names the file and the first bad element.
   */
  allowNonFinite?: boolean;
}

export const DEFAULT_MAX_NPY_BYTES = 2 ** 31;

// Failure modes (each an Error "<source>: ..."): short file or bad magic; unknown version; header
// length past the end; a header that is not the dict numpy writes (descr, fortran_order, shape);
// Fortran order; shapes that are not a tuple of non-negative safe integers; unsupported or
// big-endian dtypes; element counts whose bytes overflow or exceed the data (checked before any
// allocation) or `maxBytes`; NaN/inf in float data when allowNonFinite is false. Extra bytes after the
// data are ignored, as numpy does.
export function parseNpy(buf: Uint8Array, source = 'npy', opts: ParseNpyOptions = {}): NpyArray {
  return parseNpyAs(buf, source, Float32Array, opts) as NpyArray;
}

/** As parseNpy, with float64 values (no rounding of f8 data): for golden fixtures. */
export function parseNpy64(buf: Uint8Array, source = 'npy', opts: ParseNpyOptions = {}): { shape: number[]; data: Float64Array; descr: string } {
  return parseNpyAs(buf, source, Float64Array, opts) as { shape: number[]; data: Float64Array; descr: string };
}

const excerpt = (s: string) => (s.length > 200 ? `${s.slice(0, 200)}... (${s.length} characters)` : s);

function parseNpyAs(buf: Uint8Array, source: string, Out: Float32ArrayConstructor | Float64ArrayConstructor, opts: ParseNpyOptions): { shape: number[]; data: Float32Array | Float64Array; descr: string } {
  const fail = (msg: string): never => {
    throw new Error(`${source}: ${msg}`);
  };
  if (!(buf instanceof Uint8Array)) fail("expected the file's bytes as a Uint8Array");
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (buf.byteLength < 10 || magic.some((m, i) => buf[i] !== m)) fail('not a .npy file (bad magic)');
  const major = buf[6];
  if (major < 1 || major > 3) fail(`unsupported .npy version ${major}.${buf[7]}`);
  if (major > 1 && buf.byteLength < 12) fail('truncated header');
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const hlen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const hstart = major === 1 ? 10 : 12;
  if (hstart + hlen > buf.byteLength) fail(`truncated header: it declares ${hlen} bytes, the file has ${buf.byteLength - hstart} after the length field`);
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(buf.subarray(hstart, hstart + hlen));
  const descr = /'descr':\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeStr = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeStr === undefined) fail(`malformed header: ${excerpt(header.trim())}`);
  if (fortran === 'True') fail('Fortran-order arrays are not supported (save with np.ascontiguousarray)');
  // a Python tuple of ints: (), (3,), (2, 3), (2, 3,)
  if (!/^\s*(\d+\s*(,\s*\d+\s*)*,?\s*)?$/.test(shapeStr!)) fail(`bad shape (${excerpt(shapeStr!)}): expected a tuple of non-negative integers`);
  const shape = shapeStr!.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) fail(`bad shape (${excerpt(shapeStr!)}): sizes must be integers below 2^53`);
  const m = /^([<>|=])([fiub])(\d+)$/.exec(descr!);
  const kind = m ? m[2] + m[3] : '';
  if (!m || !Object.prototype.hasOwnProperty.call(SIZES, kind)) fail(`unsupported dtype '${excerpt(descr!)}' (supported: float16/32/64, int8-64, uint8-64, bool)`);
  if (m![1] === '>' && SIZES[kind] > 1) fail(`big-endian dtype '${descr}' is not supported`);
  const n = shape.reduce((a, d) => a * d, 1);
  const start = hstart + hlen;
  const need = n * SIZES[kind];
  if (buf.byteLength - start < need) fail(`truncated data: ${buf.byteLength - start} bytes for ${n} x ${descr} (${need} bytes) in shape (${shape.join(', ')})`);
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_NPY_BYTES;
  if (n * Out.BYTES_PER_ELEMENT > maxBytes) fail(`${n} elements (shape (${shape.join(', ')})) decode to ${n * Out.BYTES_PER_ELEMENT} bytes, over the limit of ${maxBytes} (maxBytes)`);
  const ddv = new DataView(buf.buffer, buf.byteOffset + start, need);
  const out = new Out(n);
  for (let i = 0; i < n; i++) {
    switch (kind) {
      case 'f4': out[i] = ddv.getFloat32(i * 4, true); break;
      case 'f8': out[i] = ddv.getFloat64(i * 8, true); break;
      case 'f2': out[i] = f16(ddv.getUint16(i * 2, true)); break;
      case 'i1': out[i] = ddv.getInt8(i); break;
      case 'i2': out[i] = ddv.getInt16(i * 2, true); break;
      case 'i4': out[i] = ddv.getInt32(i * 4, true); break;
      case 'i8': out[i] = Number(ddv.getBigInt64(i * 8, true)); break;
      case 'u1': case 'b1': out[i] = ddv.getUint8(i); break;
      case 'u2': out[i] = ddv.getUint16(i * 2, true); break;
      case 'u4': out[i] = ddv.getUint32(i * 4, true); break;
      case 'u8': out[i] = Number(ddv.getBigUint64(i * 8, true)); break;
    }
  }
  if (opts.allowNonFinite === false && m![2] === 'f') {
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(out[i])) fail(`holds ${out[i]} at flat index ${i} of shape (${shape.join(', ')}): NaN and infinities are not accepted here (allowNonFinite: false)`);
    }
  }
  return { shape, data: out, descr: descr! };
}

/** A float32 .npy (version 1.0, C order). */
export function serializeNpy(shape: readonly number[], data: ArrayLike<number>): Uint8Array {
  const n = shape.reduce((a, d) => a * d, 1);
  if (n !== data.length) throw new Error(`npy: ${data.length} values for shape [${shape.join(', ')}]`);
  const shapeStr = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeStr}, }`;
  // Total of magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
  header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + n * 4);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  const dv = new DataView(out.buffer, 10 + header.length);
  for (let i = 0; i < n; i++) dv.setFloat32(i * 4, data[i], true);
  return out;
}

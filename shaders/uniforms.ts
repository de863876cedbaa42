// One declaration per kernel of the uniform words it reads, by name. From it come both sides of
// the contract that used to be written twice by position (the packing in the backend, the
// `p[10+k]`-style reads in the WGSL):
//   - `wgsl`: a WGSL struct with one member per field, bound at group 0 binding 0;
//   - `ref(name)` / `ref(name, k)`: a constant-offset read (`params.count`, `params.shape[1].z`);
//     SwiftShader's Subzero neither inlines helper functions nor resolves dynamically indexed
//     uniform arrays well, so generated (unrolled) code reads fields this way;
//   - `at(name, expr)`: an array element at a run-time index, for loops;
//   - `pack(values)`: the words for one dispatch, laid out the way WGSL lays out the struct.
//
// Layout (WGSL's uniform address space rules): a scalar (u32, i32, f32) takes the next word; an
// array field starts at the next multiple of 4 words and is stored as array<vec4<T>, ceil(n/4)>
// (uniform arrays need a 16-byte element stride). Declaring scalars first wastes no words. The
// whole struct fits the runtime's 256-byte slot (PARAM_WORDS = 64 words).
import { PARAM_WORDS } from './params.ts';

export type Scalar = 'u32' | 'i32' | 'f32';
/** A scalar, or an array of `n` scalars (n >= 1). */
export type FieldType = Scalar | readonly [Scalar, number];
export type Fields = Readonly<Record<string, FieldType>>;

type ValueOf<T extends FieldType> = T extends Scalar ? number : ArrayLike<number>;
/** What `pack` takes: every field, a number for a scalar, up to `n` numbers for an array
 * (missing trailing elements are 0). */
export type UniformValues<F extends Fields> = { [K in keyof F]: ValueOf<F[K]> };

interface Slot {
  name: string;
  type: Scalar;
  /** Word offset in the struct. */
  offset: number;
  /** Array length; 0 for a scalar. */
  length: number;
}

export interface UniformSchema<F extends Fields> {
  /** The struct and its binding (group 0, binding 0). */
  readonly wgsl: string;
  /** Words a dispatch uploads (the struct's size). */
  readonly words: number;
  /** Word offset of each field, for tests and debugging. */
  readonly offsets: { readonly [K in keyof F]: number };
  /** A constant-offset WGSL read of a scalar field, or of element `k` of an array field. */
  ref(name: keyof F & string, k?: number): string;
  /** A WGSL read of array element `index` (a WGSL u32 expression). */
  at(name: keyof F & string, index: string): string;
  /** The uniform words of one dispatch. */
  pack(values: UniformValues<F>): Uint32Array;
}

const IDENT = /^[A-Za-z][A-Za-z0-9_]*$/;

/** Declare a kernel's uniforms. `struct` names the WGSL struct (one per shader module). */
export function uniforms<const F extends Fields>(fields: F, struct = 'Params'): UniformSchema<F> {
  const slots: Slot[] = [];
  let at = 0;
  for (const [name, t] of Object.entries(fields)) {
    if (!IDENT.test(name)) throw new Error(`uniforms: field name '${name}' is not a WGSL identifier`);
    if (typeof t === 'string') {
      slots.push({ name, type: t, offset: at, length: 0 });
      at += 1;
    } else {
      const [type, n] = t;
      if (!Number.isInteger(n) || n < 1) throw new Error(`uniforms: field '${name}' needs a length >= 1, got ${n}`);
      at = (at + 3) & ~3;
      slots.push({ name, type, offset: at, length: n });
      at += 4 * Math.ceil(n / 4);
    }
  }
  // A struct holding a vec4 array has 16-byte alignment, so its size rounds up to 4 words.
  const words = slots.some((s) => s.length > 0) ? (at + 3) & ~3 : at;
  if (words > PARAM_WORDS) throw new Error(`uniforms: ${words} words, over the ${PARAM_WORDS} of one dispatch slot (${slots.map((s) => s.name).join(', ')})`);
  if (words === 0) throw new Error('uniforms: no fields');
  const byName = new Map(slots.map((s) => [s.name, s]));
  const member = (s: Slot) => (s.length ? `${s.name}: array<vec4<${s.type}>, ${Math.ceil(s.length / 4)}>` : `${s.name}: ${s.type}`);
  const wgsl = `struct ${struct} { ${slots.map(member).join(', ')} }
@group(0) @binding(0) var<uniform> params: ${struct};
`;
  const get = (name: string): Slot => {
    const s = byName.get(name);
    if (!s) throw new Error(`uniforms: no field '${name}' (have ${slots.map((x) => x.name).join(', ')})`);
    return s;
  };
  const offsets = Object.fromEntries(slots.map((s) => [s.name, s.offset])) as { [K in keyof F]: number };

  return {
    wgsl,
    words,
    offsets,
    ref(name, k) {
      const s = get(name);
      if (s.length === 0) {
        if (k !== undefined) throw new Error(`uniforms: '${name}' is a scalar, read without an index`);
        return `params.${name}`;
      }
      if (k === undefined || !Number.isInteger(k) || k < 0 || k >= s.length) throw new Error(`uniforms: '${name}' has ${s.length} elements, asked for ${k}`);
      return `params.${name}[${k >> 2}].${'xyzw'[k & 3]}`;
    },
    at(name, index) {
      const s = get(name);
      if (s.length === 0) throw new Error(`uniforms: '${name}' is a scalar, not an array`);
      return `params.${name}[(${index}) / 4u][(${index}) % 4u]`;
    },
    pack(values) {
      const u = new Uint32Array(words);
      const i = new Int32Array(u.buffer);
      const f = new Float32Array(u.buffer);
      const view = { u32: u, i32: i, f32: f };
      for (const s of slots) {
        const v = (values as Record<string, number | ArrayLike<number> | undefined>)[s.name];
        if (v === undefined) throw new Error(`uniforms: no value for '${s.name}'`);
        const dst = view[s.type];
        if (s.length === 0) {
          if (typeof v !== 'number') throw new Error(`uniforms: '${s.name}' is a scalar, got an array`);
          dst[s.offset] = v;
        } else {
          if (typeof v === 'number') throw new Error(`uniforms: '${s.name}' is an array of ${s.length}, got a number`);
          if (v.length > s.length) throw new Error(`uniforms: '${s.name}' holds ${s.length} values, got ${v.length}`);
          for (let k = 0; k < v.length; k++) dst[s.offset + k] = v[k];
        }
      }
      return u;
    },
  };
}

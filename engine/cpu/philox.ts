// Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3",
// SC'11; the Random123 reference), and the `random` primitive built on it.
//
// One round, with (hi, lo) = the 64-bit product split into 32-bit halves:
//   (hi0, lo0) = M0 * c0 ; (hi1, lo1) = M1 * c2
//   c' = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
// Ten rounds; the key is bumped by (W0, W1) before rounds 2..10.
import type { PrimImpl } from '../backend.ts';
import { sizeOf, wrap, type CpuStorage } from './strides.ts';

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;
const TWO16 = 0x10000;
const TWO32 = 0x100000000;

/**
 * High 32 bits of the 64-bit product of two uint32 values, exactly: b is split into 16-bit
 * halves so every partial product stays below 2^53.
 */
function mulhi32(a: number, b: number): number {
  const hiPart = a * (b >>> 16); // < 2^48
  const loPart = a * (b & 0xffff); // < 2^48
  // a*b = hiPart * 2^16 + loPart = floor(hiPart / 2^16) * 2^32 + ((hiPart mod 2^16) * 2^16 + loPart)
  const top = Math.floor(hiPart / TWO16);
  const rest = (hiPart % TWO16) * TWO16 + loPart; // < 2^49
  return (top + Math.floor(rest / TWO32)) >>> 0;
}

/**
 * Philox4x32-10 of counter (c0, c1, c2, c3) under key (k0, k1); writes the four output words
 * into `out` (uint32 values) and returns it.
 */
export function philox4x32_10(
  c0: number, c1: number, c2: number, c3: number, k0: number, k1: number,
  out: Uint32Array = new Uint32Array(4),
): Uint32Array {
  c0 >>>= 0; c1 >>>= 0; c2 >>>= 0; c3 >>>= 0; k0 >>>= 0; k1 >>>= 0;
  for (let round = 0; round < 10; round++) {
    if (round > 0) {
      k0 = (k0 + W0) >>> 0;
      k1 = (k1 + W1) >>> 0;
    }
    const hi0 = mulhi32(M0, c0);
    const lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulhi32(M1, c2);
    const lo1 = Math.imul(M1, c2) >>> 0;
    const n0 = (hi1 ^ c1 ^ k0) >>> 0;
    const n2 = (hi0 ^ c3 ^ k1) >>> 0;
    c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
  }
  out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
  return out;
}

/** The key words of a seed: (seed mod 2^32, floor(seed / 2^32) mod 2^32), mod taken non-negative. */
export function seedKey(seed: number): [number, number] {
  const mod = (v: number) => ((v % TWO32) + TWO32) % TWO32;
  return [mod(Math.floor(seed)) >>> 0, mod(Math.floor(seed / TWO32)) >>> 0];
}

const TWO_M24 = 2 ** -24;

const random: PrimImpl<CpuStorage, 'random'> = ({ seed, dist }, _inputs, outShape) => {
  const n = sizeOf(outShape);
  const out = new Float64Array(n);
  const [k0, k1] = seedKey(seed);
  const words = new Uint32Array(4);
  for (let i = 0; i < n; i++) {
    philox4x32_10(i, 0, 0, 0, k0, k1, words);
    if (dist === 'uniform') {
      out[i] = (words[0] >>> 8) * TWO_M24;
    } else {
      const u1 = ((words[0] >>> 8) + 1) * TWO_M24; // (0, 1]
      const u2 = (words[1] >>> 8) * TWO_M24; // [0, 1)
      out[i] = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    }
  }
  return wrap(out);
};

export const randomImpls = { random };

// Fuzzing PNG inputs (cli/input.ts: checkPng, pngSample, loadInputs; decoding by pngjs) with
// fast-check. Every case must either give a [C, H, W] sample of finite values in [0, 1] or throw an
// Error whose message names the file, within CASE_MS. (a) PNGs written by pngjs (grey, grey+alpha,
// RGB, RGBA; 8 and 16 bits) under random byte mutations, and with targeted edits of the IHDR fields
// (width, height, bit depth, colour type, interlace; CRC recomputed so that pngjs looks past it)
// and of chunk lengths; (b) generated IHDRs declaring huge sizes, and cuts at every point. Fixed
// seeds and run counts; the regressions name the bugs found.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { deflateSync } from 'node:zlib';
import fc from 'fast-check';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { mutate, mutationArb, outcome as outcomeWithin } from './fuzz-helpers.ts';
import { checkPng, loadInputs, pngSample } from '../../cli/input.ts';

const CASE_MS = 1000;
const outcome = <T>(fn: () => T, source: string, maxMs = CASE_MS) => outcomeWithin(fn, source, maxMs);
// ---- PNG inputs ----

function crc32(b: Uint8Array): number {
  let c = ~0;
  for (const x of b) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const b = new Uint8Array(12 + data.length);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) b[4 + i] = type.charCodeAt(i);
  b.set(data, 8);
  dv.setUint32(8 + data.length, crc32(b.subarray(4, 8 + data.length)));
  return b;
}

function png(width: number, height: number, opts: { color?: number; depth?: number; idat?: Uint8Array; interlace?: number } = {}): Uint8Array {
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr[8] = opts.depth ?? 8;
  ihdr[9] = opts.color ?? 6;
  ihdr[12] = opts.interlace ?? 0;
  const idat = opts.idat ?? deflateSync(new Uint8Array(Math.min(height * (1 + width * 4), 1 << 20)));
  const parts = [Uint8Array.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) out.set(p, at), (at += p.length);
  return out;
}

/** PNGs written by pngjs: each colour type it writes, 8 and 16 bits, small odd sizes. */
const bases: Uint8Array[] = [];
for (const [colorType, inputHasAlpha] of [[0, false], [2, false], [4, true], [6, true]] as const) {
  for (const bitDepth of [8, 16] as const) {
    const p = new PNG({ width: 5, height: 3, colorType, inputHasAlpha, bitDepth });
    for (let i = 0; i < p.data.length; i++) p.data[i] = (i * 37) & 0xff;
    bases.push(new Uint8Array(PNG.sync.write(p, { colorType, inputColorType: 6, inputHasAlpha: true, bitDepth })));
  }
}

const SHAPE = [3, 4, 4];

function checkSample(s: Float32Array) {
  expect(s.length).toBe(48);
  for (const v of s) expect(v >= 0 && v <= 1).toBe(true);
}

/** Chunks as [offset, length, type] of a well-formed PNG. */
function chunks(b: Uint8Array): [number, number, string][] {
  const out: [number, number, string][] = [];
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let p = 8; p + 12 <= b.length; ) {
    const n = dv.getUint32(p);
    out.push([p, n, String.fromCharCode(...b.subarray(p + 4, p + 8))]);
    p += 12 + n;
  }
  return out;
}

describe('fuzz: PNG inputs', () => {
  it('the base images decode', () => {
    expect(bases.length).toBe(8);
    for (const b of bases) checkSample(pngSample(b, 'base.png', SHAPE));
  });

  it('(a) mutated PNGs: random flips, truncations, insertions, deletions and word overwrites', () => {
    fc.assert(
      fc.property(fc.nat({ max: bases.length - 1 }), fc.array(mutationArb(), { minLength: 1, maxLength: 5 }), (bi, ms) => {
        const r = outcome(() => pngSample(mutate(bases[bi], ms), 'mutated.png', SHAPE), 'mutated.png');
        if (r.ok) checkSample(r.value);
      }),
      { seed: 15301, numRuns: 1000 },
    );
  });

  it('(a) field-targeted: IHDR width, height, depth, colour type and interlace (CRC fixed), and chunk lengths', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: bases.length - 1 }),
        fc.constantFrom('width', 'height', 'depth', 'color', 'interlace', 'length'),
        fc.oneof(fc.constantFrom(0, 1, 2, 3, 4, 6, 7, 8, 16, 255, 5000, 65535, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1), fc.nat()),
        fc.nat(),
        (bi, field, v, which) => {
          const b = bases[bi].slice();
          const dv = new DataView(b.buffer);
          if (field === 'width') dv.setUint32(16, v >>> 0);
          else if (field === 'height') dv.setUint32(20, v >>> 0);
          else if (field === 'depth') b[24] = v & 0xff;
          else if (field === 'color') b[25] = v & 0xff;
          else if (field === 'interlace') b[28] = v & 0xff;
          else {
            const cs = chunks(bases[bi]);
            dv.setUint32(cs[which % cs.length][0], v >>> 0);
          }
          if (field !== 'length') dv.setUint32(29, crc32(b.subarray(12, 29)));
          const r = outcome(() => pngSample(b, 'field.png', SHAPE), 'field.png');
          if (r.ok) checkSample(r.value);
        },
      ),
      { seed: 15302, numRuns: 600 },
    );
  });

  it('(b) any declared size over the pixel limit is refused before decoding, naming the file', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.integer({ min: 1, max: 2 ** 31 - 1 }), (w, h) => {
        fc.pre(w * h > 2 ** 26);
        const r = outcome(() => pngSample(png(w, h, { idat: deflateSync(new Uint8Array(64)) }), 'huge.png', SHAPE), 'huge.png');
        expect(r.ok).toBe(false);
        if (!r.ok) expect(r.error.message).toMatch(/^huge\.png: not a readable PNG \(its declared size \d+ x \d+ \(\d+ pixels\) is over the limit of 67108864 pixels\)/);
      }),
      { seed: 15303, numRuns: 300 },
    );
  });

  it('(b) a PNG cut at any point gives a named error', () => {
    fc.assert(
      fc.property(fc.nat({ max: bases.length - 1 }), fc.nat(), (bi, cut) => {
        const b = bases[bi];
        const r = outcome(() => pngSample(b.subarray(0, cut % b.length), 'cut.png', SHAPE), 'cut.png');
        expect(r.ok).toBe(false);
        if (!r.ok) expect(r.error.message).toMatch(/^cut\.png: not a readable PNG \((no PNG signature|truncated)/);
      }),
      { seed: 15304, numRuns: 300 },
    );
  });
});

describe('PNG regressions', () => {
  it('image data shorter than the header implies is refused (pngjs padded it silently)', () => {
    const b = png(4, 4, { idat: deflateSync(new Uint8Array(10)) });
    expect(() => pngSample(b, 'short.png', SHAPE)).toThrow(/^short\.png: not a readable PNG \(truncated image data: 10 bytes of scanlines, 4 x 4 needs 68\)/);
  });

  it('a truncated file says so (pngjs said "There are some read requests waitng on finished stream")', () => {
    expect(() => pngSample(bases[0].subarray(0, 40), 'cut.png', SHAPE)).toThrow(/^cut\.png: not a readable PNG \(truncated: chunk header at byte 33 needs 12 bytes, 7 remain\)/);
    expect(() => pngSample(bases[0].subarray(0, 60), 'cut.png', SHAPE)).toThrow(/^cut\.png: not a readable PNG \(truncated: chunk 'IDAT' at byte 33 declares \d+ bytes, 15 remain\)/);
    expect(() => pngSample(new Uint8Array(0), 'empty.png', SHAPE)).toThrow(/^empty\.png: not a readable PNG \(no PNG signature/);
  });

  it('a declared 20000 x 20000 image is refused before pngjs allocates 1.6 GB; the limit is configurable', () => {
    const b = png(20000, 20000, { idat: deflateSync(new Uint8Array(100)) });
    expect(() => pngSample(b, 'big.png', SHAPE)).toThrow(/^big\.png: not a readable PNG \(its declared size 20000 x 20000 \(400000000 pixels\) is over the limit/);
    expect(() => checkPng(png(5, 3), 'small.png', 14)).toThrow(/^small\.png: .*15 pixels\) is over the limit of 14 pixels/);
  });

  it('a zlib bomb stops at the size the header implies', () => {
    const b = png(64, 64, { color: 0, idat: deflateSync(new Uint8Array(50_000_000)) });
    const t0 = performance.now();
    expect(checkPng(b, 'bomb.png')).toEqual({ width: 64, height: 64 });
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('interlaced images are measured per Adam7 pass', () => {
    // a 5 x 3 grey 8-bit interlaced image: the seven passes are 1x1, 1x1, 2x0 (empty), 1x1, 3x1, 2x2 and 5x1
    const need = [[1, 1], [1, 1], [2, 0], [1, 1], [3, 1], [2, 2], [5, 1]].reduce((a, [w, h]) => a + (w && h ? h * (1 + w) : 0), 0);
    expect(need).toBe(22);
    const ok = png(5, 3, { color: 0, interlace: 1, idat: deflateSync(new Uint8Array(need)) });
    expect(checkPng(ok, 'i.png')).toEqual({ width: 5, height: 3 });
    checkSample(pngSample(ok, 'i.png', SHAPE));
    expect(() => checkPng(png(5, 3, { color: 0, interlace: 1, idat: deflateSync(new Uint8Array(need - 1)) }), 'i.png')).toThrow(/truncated image data/);
  });

  it('loadInputs names the file for a corrupt PNG among several', () => {
    const dir = mkdtempSync(`${tmpdir()}/fuzz-png-`);
    writeFileSync(`${dir}/good.png`, bases[3]);
    writeFileSync(`${dir}/bad.png`, bases[3].subarray(0, 50));
    expect(loadInputs(`${dir}/good.png`, SHAPE).shape).toEqual([1, 3, 4, 4]);
    expect(() => loadInputs(`${dir}/good.png,${dir}/bad.png`, SHAPE)).toThrow(new RegExp(`^${dir}/bad\\.png: not a readable PNG \\(truncated`));
    expect(() => loadInputs(`${dir}/good.png`, SHAPE, '--input', { maxPngPixels: 10 })).toThrow(/good\.png: not a readable PNG \(its declared size 5 x 3/);
  });
});

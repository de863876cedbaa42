// Padding beyond the constant primitive: reflect (mirror without repeating the edge, numpy's
// 'reflect', PyTorch's ReflectionPad) and edge (repeat the border, 'replicate'), built from
// slice, flip, broadcast and concat so that their gradients are those ops' adjoints. Negative
// amounts crop (ONNX Pad allows them).
import { tidy } from '../context.ts';
import { checkInt, fmtShape } from '../shape.ts';
import { Tensor } from '../tensor.ts';
import { broadcastTo, concat, flip, pad, slice } from './movement.ts';

export type PadMode = 'constant' | 'reflect' | 'edge';

/** Pad (or crop, for negative amounts) each axis by [before, after] in `mode`. */
export function padWithMode(x: Tensor, pads: readonly (readonly [number, number])[], mode: PadMode = 'constant', value = 0): Tensor {
  if (!(x instanceof Tensor)) throw new Error('padWithMode: expected a Tensor');
  if (pads.length > x.rank) throw new Error(`padWithMode: ${pads.length} pad pairs for a tensor of rank ${x.rank}`);
  if (mode !== 'constant' && mode !== 'reflect' && mode !== 'edge') throw new Error(`padWithMode: mode must be constant, reflect or edge, got ${JSON.stringify(mode)}`);
  const p = x.shape.map((_, i) => [checkInt('padWithMode', `pads[${i}][0]`, pads[i]?.[0] ?? 0, -Infinity), checkInt('padWithMode', `pads[${i}][1]`, pads[i]?.[1] ?? 0, -Infinity)] as [number, number]);
  return tidy(() => {
    // crop first (negative amounts), then pad what remains
    let y = x;
    const begin = p.map(([b]) => Math.max(0, -b));
    const size = x.shape.map((d, i) => d - begin[i] - Math.max(0, -p[i][1]));
    if (size.some((s) => s < 0)) throw new Error(`padWithMode: pads ${JSON.stringify(pads)} crop more than ${fmtShape(x.shape)} holds`);
    if (begin.some((b) => b > 0) || size.some((s, i) => s !== x.shape[i])) y = slice(y, begin, size);
    const grow = p.map(([b, a]) => [Math.max(0, b), Math.max(0, a)] as [number, number]);
    if (mode === 'constant') return grow.some(([b, a]) => b || a) ? pad(y, grow, value) : slice(y, y.shape.map(() => 0));
    for (let ax = 0; ax < y.rank; ax++) {
      const [b, a] = grow[ax];
      if (!b && !a) continue;
      const n = y.shape[ax];
      if (n === 0) throw new Error(`padWithMode: cannot ${mode}-pad the empty axis ${ax} of ${fmtShape(y.shape)}`);
      if (mode === 'reflect' && (b > n - 1 || a > n - 1)) {
        throw new Error(`padWithMode: reflect padding [${b}, ${a}] on axis ${ax} must be less than its size ${n} (${fmtShape(y.shape)})`);
      }
      const part = (start: number, len: number) => {
        const bg = y.shape.map(() => 0);
        const sz = [...y.shape];
        bg[ax] = start;
        sz[ax] = len;
        return slice(y, bg, sz);
      };
      const pieces: Tensor[] = [];
      if (mode === 'reflect') {
        if (b) pieces.push(flip(part(1, b), [ax]));
        pieces.push(y);
        if (a) pieces.push(flip(part(n - 1 - a, a), [ax]));
      } else {
        const rep = (edge: Tensor, k: number) => {
          const s = [...y.shape];
          s[ax] = k;
          return broadcastTo(edge, s);
        };
        if (b) pieces.push(rep(part(0, 1), b));
        pieces.push(y);
        if (a) pieces.push(rep(part(n - 1, 1), a));
      }
      y = concat(pieces, ax);
    }
    return y;
  });
}

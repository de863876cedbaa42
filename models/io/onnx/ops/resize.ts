// Resize (opset 10+) and Upsample (opset 7-9): nearest and linear interpolation of the spatial
// axes, from scales or sizes, with ONNX's coordinate transformations. Each resized axis is a
// gather of source rows (nearest) or a weighted sum of two gathers (linear), with the indices and
// weights computed on the host, so the gradient is the gathers' adjoint (scatter-add).
import * as bl from '../../../../engine/index.ts';
import type { Tensor } from '../../../../engine/index.ts';
import type { HostValue } from '../host.ts';
import type { NodeCtx, Runtime } from '../loader.ts';
import type { Handler } from './common.ts';

type Coord = 'half_pixel' | 'pytorch_half_pixel' | 'align_corners' | 'asymmetric';
type Nearest = 'round_prefer_floor' | 'round_prefer_ceil' | 'floor' | 'ceil';
const COORDS: readonly string[] = ['half_pixel', 'pytorch_half_pixel', 'align_corners', 'asymmetric'];
const NEAREST: readonly string[] = ['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil'];

/** The source coordinate of output index i along an axis of `len` resized to `out` by `scale`. */
export function sourceCoord(mode: Coord, i: number, len: number, out: number, scale: number): number {
  switch (mode) {
    case 'half_pixel':
      return (i + 0.5) / scale - 0.5;
    case 'pytorch_half_pixel':
      return out > 1 ? (i + 0.5) / scale - 0.5 : 0;
    case 'align_corners':
      return out === 1 ? 0 : (i * (len - 1)) / (out - 1);
    case 'asymmetric':
      return i / scale;
  }
}

function roundNearest(mode: Nearest, x: number): number {
  switch (mode) {
    case 'floor':
      return Math.floor(x);
    case 'ceil':
      return Math.ceil(x);
    case 'round_prefer_floor':
      return x - Math.floor(x) === 0.5 ? Math.floor(x) : Math.round(x);
    case 'round_prefer_ceil':
      return x - Math.floor(x) === 0.5 ? Math.ceil(x) : Math.round(x);
  }
}

const clampI = (v: number, len: number) => Math.min(Math.max(v, 0), len - 1);

/** Resize axis `a` of x to `out` elements. */
function resizeAxis(x: Tensor, a: number, out: number, scale: number, mode: 'nearest' | 'linear', coord: Coord, nearest: Nearest): Tensor {
  const len = x.shape[a];
  const src = Array.from({ length: out }, (_, i) => sourceCoord(coord, i, len, out, scale));
  if (mode === 'nearest') return bl.gather(x, bl.tensor(src.map((s) => clampI(roundNearest(nearest, s), len)), [out], x.backend), a);
  const pos = src.map((s) => Math.min(Math.max(s, 0), len - 1));
  const lo = pos.map(Math.floor);
  const hi = lo.map((l) => Math.min(l + 1, len - 1));
  const wShape = x.shape.map((_, j) => (j === a ? out : 1));
  const w = bl.tensor(pos.map((p, i) => p - lo[i]), wShape, x.backend);
  const gl = bl.gather(x, bl.tensor(lo, [out], x.backend), a);
  const gh = bl.gather(x, bl.tensor(hi, [out], x.backend), a);
  return bl.add(gl, bl.mul(bl.sub(gh, gl), w));
}

function resizeWith(n: NodeCtx, get: { scales: (rt: Runtime) => HostValue | null; sizes: (rt: Runtime) => HostValue | null }, mode: 'nearest' | 'linear', coord: Coord, nearest: Nearest): void {
  n.emit({
    tensors: [0],
    run: ([x], rt) => {
      const r = x!.rank;
      const sizes = get.sizes(rt);
      const scales = sizes ? null : get.scales(rt);
      if (!sizes && !scales) throw new Error('neither scales nor sizes is given');
      const v = (sizes ?? scales)!;
      if (v.data.length !== r) throw new Error(`${sizes ? 'sizes' : 'scales'} [${Array.from(v.data).join(', ')}] must have one entry per input axis (${r}, input [${x!.shape.join(', ')}])`);
      let y = x!;
      for (let a = 0; a < r; a++) {
        const len = x!.shape[a];
        const out = sizes ? sizes.data[a] : Math.floor(len * scales!.data[a]);
        const scale = sizes ? out / len : scales!.data[a];
        if (!Number.isInteger(out) || out < 1 || !(scale > 0)) throw new Error(`axis ${a}: output size ${out} (scale ${scale}) is not a positive integer`);
        if (out === len && scale === 1) continue;
        if (a < 2 && r === 4) throw new Error(`resizing the batch or channel axis is not supported (axis ${a}: ${len} -> ${out})`);
        y = resizeAxis(y, a, out, scale, mode, coord, nearest);
      }
      return [y === x ? bl.reshape(x!, x!.shape) : y];
    },
  });
}

const present = (v: HostValue | null) => (v && v.data.length ? v : null);

export const resize: Handler = (n) => {
  n.singleOutput();
  const mode = n.str('mode', 'nearest');
  if (mode !== 'nearest' && mode !== 'linear') n.fail(`mode '${mode}' is not supported (nearest, linear)`);
  // opset 10 has no coordinate_transformation_mode: it behaves as Upsample (asymmetric, floor)
  const coord = n.opset < 11 ? 'asymmetric' : n.str('coordinate_transformation_mode', 'half_pixel');
  if (!COORDS.includes(coord)) n.fail(`coordinate_transformation_mode '${coord}' is not supported (${COORDS.join(', ')})`);
  const nearest = n.opset < 11 ? 'floor' : n.str('nearest_mode', 'round_prefer_floor');
  if (!NEAREST.includes(nearest)) n.fail(`nearest_mode '${nearest}' is not one of ${NEAREST.join(', ')}`);
  if (n.int('antialias', 0) !== 0) n.fail('antialias = 1 is not supported');
  if (n.attrs.has('axes')) n.fail('the axes attribute is not supported');
  const policy = n.str('keep_aspect_ratio_policy', 'stretch');
  if (policy !== 'stretch') n.fail(`keep_aspect_ratio_policy '${policy}' is not supported (only stretch)`);
  const [si, zi] = n.opset < 11 ? [1, -1] : [2, 3];
  for (const i of [si, zi]) if (i >= 0 && n.kind(i) === 'tensor') n.fail(`input ${i} (${i === si ? 'scales' : 'sizes'}) is a runtime tensor; it must be a constant or computed from shapes`);
  resizeWith(
    n,
    {
      scales: (rt) => (n.has(si) ? present(rt.ints(si)) : null),
      sizes: (rt) => (zi >= 0 && n.has(zi) ? present(rt.ints(zi)) : null),
    },
    mode as 'nearest' | 'linear',
    coord as Coord,
    nearest as Nearest,
  );
};

/** Upsample (deprecated at opset 10): scales from the attribute (opset 7) or input 1 (9); asymmetric coordinates. */
export const upsample: Handler = (n) => {
  n.singleOutput();
  let mode = n.str('mode', 'nearest');
  if (mode === 'bilinear') mode = 'linear';
  if (mode !== 'nearest' && mode !== 'linear') n.fail(`mode '${mode}' is not supported (nearest, linear)`);
  const attr = n.opset < 9 ? n.attrs.get('scales') : undefined;
  if (n.opset < 9 && !attr) n.fail('the scales attribute is required');
  const fixed: HostValue | null = attr ? { dims: [attr.floats?.length ?? 0], data: Float64Array.from(attr.floats ?? []), float: true } : null;
  if (!fixed && n.kind(1) === 'tensor') n.fail('the scales input must be a constant or computed from shapes');
  resizeWith(n, { scales: (rt) => fixed ?? rt.ints(1), sizes: () => null }, mode as 'nearest' | 'linear', 'asymmetric', 'floor');
};

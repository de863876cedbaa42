// Bad input: wrong shapes, ranks, axes, strides, non-finite or non-integer sizes, tensors used
// after dispose(), tensors from two backends. Each must throw an error that names the op and
// the offending values (DESIGN.md contract 6), before any GPU work is queued (the runtime's
// dispatch count is unchanged) and without leaking a buffer (the live count is unchanged).
import { afterAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../engine/backend.ts';
import { init, memory } from '../../engine/init.ts';
import type { Tensor } from '../../engine/tensor.ts';
import type { WebGpuBackend } from '../../engine/webgpu/backend.ts';
import { arange, full, rand, randn, tensor, zeros } from '../../engine/ops/creation.ts';
import { add, mul, neg, where } from '../../engine/ops/elementwise.ts';
import { argmax, max, sum } from '../../engine/ops/reduce.ts';
import { broadcastTo, concat, flip, pad, reshape, slice, squeeze, stack, transpose } from '../../engine/ops/movement.ts';
import { matmul } from '../../engine/ops/linalg.ts';
import { conv2d, conv2dBackpropFilter, conv2dBackpropInput } from '../../engine/ops/conv.ts';
import { avgPool2d, maxPool2d } from '../../engine/ops/pool.ts';
import { resizeBilinear } from '../../engine/ops/resize.ts';
import { gather, oneHot, scatterAdd } from '../../engine/ops/gather.ts';

const gpu = (await init({ backend: 'webgpu', setDefault: false })) as WebGpuBackend;
const cpu = await init({ backend: 'cpu', setDefault: false });

afterAll(() => {
  gpu.destroy();
  cpu.destroy();
});

// Input tensors, one per shape and backend, made on first use and reused (see `rejects`).
const made = new Map<string, Tensor>();
function g(shape: number[], b: Backend = gpu): Tensor {
  const key = `${b.name}:${shape.join(',')}`;
  let t = made.get(key);
  if (!t) {
    t = tensor(new Float32Array(shape.reduce((a, d) => a * d, 1)).fill(1), shape, b);
    made.set(key, t);
  }
  return t;
}

/**
 * `fn` throws an error matching `message`, and by then has queued no GPU work and holds no new
 * buffer on either backend. `fn` runs twice: the first run makes the inputs it asks `g` for, the
 * second is measured.
 */
function rejects(fn: () => unknown, message: RegExp): void {
  expect(fn).toThrow(message);
  const dispatches = gpu.rt.dispatchCount;
  const liveGpu = memory(gpu).liveBuffers;
  const liveCpu = memory(cpu).liveBuffers;
  expect(fn).toThrow(message);
  expect(gpu.rt.dispatchCount, 'GPU work was queued before the error').toBe(dispatches);
  expect(memory(gpu).liveBuffers, 'a GPU buffer leaked').toBe(liveGpu);
  expect(memory(cpu).liveBuffers, 'a CPU storage leaked').toBe(liveCpu);
}

describe('creating tensors', () => {
  it('data that does not fill the shape, ragged arrays, bad sizes', () => {
    rejects(() => tensor([1, 2, 3], [2, 2], gpu), /tensor: 3 values do not fill shape \[2, 2\] \(4 elements\)/);
    rejects(() => tensor([[1, 2], [3]], undefined, gpu), /tensor: ragged nested array: expected length 2 at depth 1/);
    rejects(() => tensor([1, 2], [2, NaN], gpu), /tensor: shape \[2, NaN\] has an invalid size NaN/);
    rejects(() => tensor([1, 2], [1.5, 2], gpu), /tensor: shape \[1\.5, 2\] has an invalid size 1\.5/);
    rejects(() => tensor([1, 2], [Infinity], gpu), /tensor: shape \[Infinity\] has an invalid size Infinity/);
    rejects(() => tensor([1], [1, 1, 1, 1, 1, 1, 1, 1, 1], gpu), /tensor: shape \[1, 1, 1, 1, 1, 1, 1, 1, 1\] has rank 9; at most 8/);
    rejects(() => zeros([2, -1], gpu), /full: shape \[2, -1\] has an invalid size -1/);
    rejects(() => full([3], 'x' as unknown as number, gpu), /full: value must be a number, got string/);
    rejects(() => arange(0, Infinity, 1, gpu), /arange: stop must be finite, got Infinity/);
    rejects(() => arange(0, 5, 0, gpu), /arange: step must not be 0/);
    rejects(() => rand([3], { seed: -1, backend: gpu }), /rand: seed must be a non-negative safe integer, got -1/);
    rejects(() => randn([3], { seed: 1.5, backend: gpu }), /randn: seed must be a non-negative safe integer, got 1\.5/);
    rejects(() => rand([3, NaN], { seed: 1, backend: gpu }), /rand: shape \[3, NaN\] has an invalid size NaN/);
  });
});

describe('elementwise', () => {
  it('shapes that do not broadcast name both shapes and the axis', () => {
    const a = g([2, 3]), b = g([4]);
    rejects(() => add(a, b), /add: shapes \[2, 3\] and \[4\] cannot be broadcast together \(axis -1: 3 vs 4\)/);
    rejects(() => mul(g([5, 1, 3]), g([2, 4, 1])), /mul: shapes \[5, 1, 3\] and \[2, 4, 1\] cannot be broadcast together \(axis -3: 5 vs 2\)/);
    // A number operand becomes a temporary tensor: it must not leak when the op fails.
    rejects(() => where(g([3]), g([4]), 5), /where: shapes \[3\] and \[4\] and \[\] cannot be broadcast together/);
    rejects(() => add(a, 'x' as unknown as number), /add: expected a Tensor or a number, got string/);
    rejects(() => neg([1, 2] as unknown as Tensor), /neg: expected a Tensor, got object/);
  });
});

describe('reductions', () => {
  it('axes out of range, repeated, non-integer; empty axes', () => {
    const x = g([2, 3]);
    rejects(() => sum(x, 2), /sum: axis 2 is out of range for a tensor of rank 2/);
    rejects(() => sum(x, [0, -2]), /sum: axis -2 is repeated in \[0,-2\]/);
    rejects(() => max(x, 0.5), /max: axis 0\.5 is out of range for a tensor of rank 2/);
    rejects(() => argmax(x, -3), /argmax: axis -3 is out of range for a tensor of rank 2/);
    rejects(() => argmax(x, NaN), /argmax: axis NaN is out of range/);
    rejects(() => max(g([2, 0]), 1), /max: cannot reduce over an empty axis of shape \[2, 0\]/);
    rejects(() => argmax(g([0, 3]), 0), /argmax: axis 0 of shape \[0, 3\] is empty/);
  });
});

describe('movement', () => {
  it('reshape: wrong element count, bad sizes', () => {
    const x = g([2, 3]);
    rejects(() => reshape(x, [4, 2]), /reshape: cannot reshape \[2, 3\] \(6 elements\) to \[4, 2\] \(8 elements\)/);
    rejects(() => reshape(x, [2, NaN]), /reshape: shape \[2, NaN\] has an invalid size NaN/);
    rejects(() => reshape(x, [1.5, 4]), /reshape: shape \[1\.5, 4\] has an invalid size 1\.5/);
    rejects(() => reshape(x, [Infinity, 0]), /reshape: shape \[Infinity, 0\] has an invalid size Infinity/);
    rejects(() => reshape(x, [-1, -1]), /reshape: at most one -1 in \[-1, -1\]/);
    rejects(() => reshape(x, [-1, 4]), /reshape: cannot infer -1 in \[-1, 4\] for 6 elements of \[2, 3\]/);
    rejects(() => reshape(x, [-2, -3]), /reshape: shape \[-2, -3\] has an invalid size -2/);
  });

  it('transpose, broadcastTo, squeeze', () => {
    const x = g([2, 3]);
    rejects(() => transpose(x, [0, 0]), /transpose: \[0,0\] is not a permutation of the 2 axes of \[2, 3\]/);
    rejects(() => transpose(x, [1, 0, 2]), /transpose: \[1,0,2\] is not a permutation of the 2 axes of \[2, 3\]/);
    rejects(() => transpose(x, [0.5, 1]), /transpose: \[0\.5,1\] is not a permutation/);
    rejects(() => broadcastTo(x, [3, 3]), /broadcastTo: cannot broadcast \[2, 3\] to \[3, 3\] \(axis 0: 2 vs 3\)/);
    rejects(() => broadcastTo(x, [3]), /broadcastTo: cannot broadcast \[2, 3\] to the lower rank \[3\]/);
    rejects(() => squeeze(x, 1), /squeeze: axis 1 of \[2, 3\] has size 3, not 1/);
  });

  it('slice, pad, flip, concat, stack', () => {
    const x = g([2, 3]);
    rejects(() => slice(x, [1, 2], [2, 2]), /slice: begin \[1,2\] size \[2,2\] goes past axis 0 of \[2, 3\]/);
    rejects(() => slice(x, [-1]), /slice: begin\[0\] must be an integer >= 0, got -1/);
    rejects(() => slice(x, [0.5]), /slice: begin\[0\] must be an integer >= 0, got 0\.5/);
    rejects(() => slice(x, [0, 0], [1, NaN]), /slice: size\[1\] must be an integer >= 0, got NaN/);
    rejects(() => slice(x, [0, 0, 0]), /slice: begin \[0,0,0\] has more entries than the rank of \[2, 3\]/);
    rejects(() => pad(x, [[1, -1]]), /pad: pads\[0\]\[1\] must be an integer >= 0, got -1/);
    rejects(() => pad(x, [[0, 0], [Infinity, 0]]), /pad: pads\[1\]\[0\] must be an integer >= 0, got Infinity/);
    rejects(() => pad(x, [[1, 1], [1, 1], [1, 1]]), /pad: 3 pad pairs for a tensor of rank 2/);
    rejects(() => flip(x, 3), /flip: axis 3 is out of range for a tensor of rank 2/);
    rejects(() => concat([x, g([3, 3])], 1), /concat: shapes \[2, 3\], \[3, 3\] differ outside axis 1/);
    rejects(() => concat([x, g([2, 3, 1])], 0), /concat: shapes \[2, 3\], \[2, 3, 1\] differ outside axis 0/);
    rejects(() => concat([x], 2), /concat: axis 2 is out of range for a tensor of rank 2/);
    rejects(() => concat([]), /concat: needs a non-empty array of tensors/);
    rejects(() => stack([x, g([3, 2])]), /stack: shapes \[2, 3\], \[3, 2\] differ/);
  });
});

describe('matmul', () => {
  it('inner dimensions, ranks, batch shapes', () => {
    rejects(() => matmul(g([2, 3]), g([4, 5])), /matmul: inner dimensions differ: \[2, 3\] @ \[4, 5\] \(3 vs 4\)/);
    // 1-D operands are reshaped first: the reshaped view must not leak.
    rejects(() => matmul(g([3]), g([4, 5])), /matmul: inner dimensions differ: \[3\] @ \[4, 5\] \(3 vs 4\)/);
    rejects(() => matmul(g([2, 3]), g([4])), /matmul: inner dimensions differ: \[2, 3\] @ \[4\] \(3 vs 4\)/);
    rejects(() => matmul(g([2, 2, 3]), g([3, 3, 4])), /matmul: shapes \[2\] and \[3\] cannot be broadcast together/);
    rejects(() => matmul(g([]), g([3])), /matmul: operands must have rank >= 1, got \[\] and \[3\]/);
    rejects(() => matmul(g([2, 0]), g([0, 3])), /matmul: inner dimension is 0 in \[2, 0\] @ \[0, 3\]/);
  });

  it('a failed matmul of a 1-D operand leaves no view holding its storage', () => {
    const v = tensor([1, 2, 3], [3], gpu);
    const live = memory(gpu).liveBuffers;
    expect(() => matmul(v, g([4, 5]))).toThrow(/matmul: inner dimensions differ/);
    v.dispose();
    expect(memory(gpu).liveBuffers).toBe(live - 1);
  });
});

describe('conv2d', () => {
  const x = g([1, 3, 5, 5]);
  const w = g([2, 3, 3, 3]);
  it('ranks, channels, groups', () => {
    rejects(() => conv2d(g([1, 3, 5]), w), /conv2d: input must be NCHW \(rank 4\), got \[1, 3, 5\]/);
    rejects(() => conv2d(x, g([2, 3, 3])), /conv2d: weight must be \[out, in\/groups, kh, kw\] \(rank 4\), got \[2, 3, 3\]/);
    rejects(() => conv2d(x, g([2, 4, 3, 3])), /conv2d: input \[1, 3, 5, 5\] has 3 channels but weight \[2, 4, 3, 3\] expects 4 x 1 groups = 4/);
    rejects(() => conv2d(g([1, 4, 5, 5]), g([3, 2, 3, 3]), { groups: 2 }), /conv2d: 3 output channels of weight \[3, 2, 3, 3\] are not divisible by groups = 2/);
    rejects(() => conv2d(x, w, { groups: 0 }), /conv2d: groups must be an integer >= 1, got 0/);
  });

  it('strides, padding, dilation, window size', () => {
    rejects(() => conv2d(x, w, { stride: 0 }), /conv2d: stride must be an integer >= 1, got 0/);
    rejects(() => conv2d(x, w, { stride: [1, 1.5] }), /conv2d: stride must be an integer >= 1, got 1\.5/);
    rejects(() => conv2d(x, w, { stride: [1, NaN] }), /conv2d: stride must be an integer >= 1, got NaN/);
    rejects(() => conv2d(x, w, { stride: [1, 2, 3] as unknown as [number, number] }), /conv2d: stride must be a number or a pair, got \[1,2,3\]/);
    rejects(() => conv2d(x, w, { padding: -1 }), /conv2d: padding must be an integer >= 0, got -1/);
    rejects(() => conv2d(x, w, { padding: [1, 2, 3] }), /conv2d: padding must be n, \[h, w\] or \[top, bottom, left, right\], got \[1,2,3\]/);
    rejects(() => conv2d(x, w, { padding: 'same', stride: 2 }), /conv2d: padding 'same' needs stride 1, got \[2,2\]/);
    rejects(() => conv2d(x, w, { dilation: Infinity }), /conv2d: dilation must be an integer >= 1, got Infinity/);
    rejects(() => conv2d(x, w, { dilation: 3 }), /conv2d: the height window \(kernel 3, dilation 3, effective 7\) is larger than the padded input \(5 \+ 0 \+ 0\)/);
  });

  it('bias and the adjoints check their shapes', () => {
    rejects(() => conv2d(x, w, { bias: g([3]) }), /conv2d: bias must have shape \[2\], got \[3\]/);
    rejects(() => conv2dBackpropInput(g([1, 2, 4, 4]), w, [1, 3, 5, 5]), /conv2dBackpropInput: dy \[1, 2, 4, 4\] does not match the conv output \[1, 2, 3, 3\] for input \[1, 3, 5, 5\]/);
    rejects(() => conv2dBackpropFilter(x, g([1, 2, 3]), [2, 3, 3, 3]), /conv2dBackpropFilter: dy \[1, 2, 3\] does not match the conv output \[1, 2, 3, 3\]/);
  });
});

describe('pooling and resize', () => {
  const x = g([1, 2, 5, 5]);
  it('pool options', () => {
    rejects(() => maxPool2d(g([2, 5, 5]), { kernel: 2 }), /maxPool2d: input must be NCHW \(rank 4\), got \[2, 5, 5\]/);
    rejects(() => maxPool2d(x, {} as { kernel: number }), /maxPool2d: the kernel option is required/);
    rejects(() => maxPool2d(x, { kernel: 0 }), /maxPool2d: kernel must be an integer >= 1, got 0/);
    rejects(() => maxPool2d(x, { kernel: 2, stride: -1 }), /maxPool2d: stride must be an integer >= 1, got -1/);
    rejects(() => maxPool2d(x, { kernel: 3, padding: 2 }), /maxPool2d: padding \[2,2,2,2\] is more than half the window \[3,3\]/);
    rejects(() => maxPool2d(x, { kernel: 6 }), /maxPool2d: the height window \(kernel 6, dilation 1, effective 6\) is larger than the padded input \(5 \+ 0 \+ 0\)/);
    rejects(() => avgPool2d(x, { kernel: [2, 2.5] as unknown as [number, number] }), /avgPool2d: kernel must be an integer >= 1, got 2\.5/);
    rejects(() => avgPool2d(x, { kernel: 2, dilation: 2 } as { kernel: number }), /avgPool2d: average pooling takes no dilation, got 2/);
  });

  it('resize sizes', () => {
    rejects(() => resizeBilinear(x, [0, 3]), /resizeBilinear: size\[0\] must be an integer >= 1, got 0/);
    rejects(() => resizeBilinear(x, [2.5, 3]), /resizeBilinear: size\[0\] must be an integer >= 1, got 2\.5/);
    rejects(() => resizeBilinear(x, [3, NaN]), /resizeBilinear: size\[1\] must be an integer >= 1, got NaN/);
    rejects(() => resizeBilinear(x, [3] as unknown as [number, number]), /resizeBilinear: size must be \[height, width\], got \[3\]/);
    rejects(() => resizeBilinear(g([5, 5]), [3, 3]), /resizeBilinear: input must be NCHW \(rank 4\), got \[5, 5\]/);
  });
});

describe('gather, scatterAdd, oneHot', () => {
  it('axes, sizes and shapes', () => {
    const x = g([3, 4]);
    const i = g([5]);
    rejects(() => gather(x, i, 2), /gather: axis 2 is out of range for a tensor of rank 2/);
    rejects(() => scatterAdd(g([3, 5]), i, 1, -1), /scatterAdd: size must be an integer >= 0, got -1/);
    rejects(() => scatterAdd(g([3, 5]), i, 1, 2.5), /scatterAdd: size must be an integer >= 0, got 2\.5/);
    rejects(() => scatterAdd(g([3, 4]), i, 1, 7), /scatterAdd: updates \[3, 4\] do not hold indices \[5\] at axis 1/);
    rejects(() => scatterAdd(g([3, 5]), i, 0.5, 7), /scatterAdd: axis must be an integer >= 0, got 0\.5/);
    rejects(() => scatterAdd(g([3, 5]), i, 2, 7), /scatterAdd: updates \[3, 5\] do not hold indices \[5\] at axis 2/);
    rejects(() => oneHot(i, 0), /oneHot: depth must be an integer >= 1, got 0/);
    rejects(() => oneHot(i, NaN), /oneHot: depth must be an integer >= 1, got NaN/);
  });
});

describe('a tensor used after dispose()', () => {
  it('every op names itself, the tensor and its shape', async () => {
    const fresh = (shape: number[]) => tensor(new Float32Array(shape.reduce((a, d) => a * d, 1)), shape, gpu);
    const x = fresh([2, 3]);
    const y = g([2, 3]);
    x.dispose();
    const used = /tensor #\d+ of shape \[2,3\] was used after dispose\(\)/;
    rejects(() => neg(x), new RegExp(`neg: ${used.source}`));
    rejects(() => add(y, x), new RegExp(`add: ${used.source}`));
    rejects(() => add(x, 1), new RegExp(`add: ${used.source}`));
    rejects(() => sum(x), new RegExp(`sum: ${used.source}`));
    rejects(() => reshape(x, [3, 2]), new RegExp(`reshape: ${used.source}`));
    rejects(() => transpose(x), new RegExp(`(permute|transpose): ${used.source}`));
    rejects(() => matmul(x, g([3, 2])), new RegExp(`matmul: ${used.source}`));
    rejects(() => concat([y, x]), new RegExp(`concat: ${used.source}`));
    rejects(() => where(y, x, 0), new RegExp(`where: ${used.source}`));
    const v = fresh([3]);
    v.dispose();
    rejects(() => matmul(v, g([3, 2])), /matmul: tensor #\d+ of shape \[3\] was used after dispose\(\)/);
    const img = fresh([1, 3, 5, 5]);
    img.dispose();
    rejects(() => conv2d(img, g([2, 3, 3, 3])), /conv2d: tensor #\d+ of shape \[1,3,5,5\] was used after dispose\(\)/);
    rejects(() => maxPool2d(img, { kernel: 2 }), /maxPoolGather: tensor #\d+ of shape \[1,3,5,5\] was used after dispose\(\)/);
    await expect(x.data()).rejects.toThrow(new RegExp(`data: ${used.source}`));
  });
});

describe('tensors from two backends', () => {
  it('every op names both backends', () => {
    const mixed = /tensors live on different backends \((webgpu '[^']*' and cpu 'cpu'|cpu 'cpu' and webgpu '[^']*')\); move one with toBackend\(\)/;
    const both = (op: string) => new RegExp(`${op}: ${mixed.source}`);
    const a = g([2, 3]);
    const b = g([2, 3], cpu);
    rejects(() => add(a, b), both('add'));
    rejects(() => add(b, a), both('add'));
    rejects(() => matmul(a, g([3, 2], cpu)), both('matmul'));
    rejects(() => matmul(g([3], cpu), g([3, 2])), both('matmul'));
    rejects(() => concat([a, b]), both('concat'));
    rejects(() => where(b, a, 0), both('where'));
    rejects(() => where(g([2, 3]), a, b), both('where'));
    rejects(() => conv2d(g([1, 3, 5, 5]), g([2, 3, 3, 3], cpu)), both('conv2d'));
    rejects(() => conv2d(g([1, 3, 5, 5]), g([2, 3, 3, 3]), { bias: g([2], cpu) }), both('conv2d'));
    rejects(() => gather(a, g([2], cpu), 1), both('gather'));
    rejects(() => scatterAdd(a, g([3], cpu), 1, 4), both('scatterAdd'));
  });
});

// Ops whose weights become a layer's parameters (Conv2d, BatchNorm2d, Linear, Dropout from
// layers.ts) when the node owns them; else plain tensor ops.
import * as bl from '../../../../engine/index.ts';
import type { Tensor } from '../../../../engine/index.ts';
import { BatchNorm2d, Conv2d, Dropout, Linear } from '../../../layers.ts';
import { hostTranspose, numel } from '../host.ts';
import { autoPad, type Handler, pads4, pair, setParam } from './common.ts';

export const conv: Handler = (n) => {
  n.singleOutput();
  if (!n.has(1)) n.fail('the weight input (input 1) is missing');
  const wv = n.kind(1) === 'host' ? n.host(1, 'weight') : null;
  if (wv && wv.dims.length !== 4) n.fail(`only 2-D convolutions are supported; the weight has shape [${wv.dims.join(', ')}]`);
  const ks = n.ints('kernel_shape');
  if (ks && ks.length !== 2) n.fail(`only 2-D convolutions are supported; kernel_shape is [${ks.join(', ')}]`);
  const stride = pair(n, 'strides', 1);
  const dilation = pair(n, 'dilations', 1);
  const groups = n.int('group', 1);
  if (!(groups >= 1) || !stride.every((v) => v >= 1) || !dilation.every((v) => v >= 1)) {
    n.fail(`group (${groups}), strides [${stride.join(', ')}] and dilations [${dilation.join(', ')}] must be >= 1`);
  }
  const kernel: [number, number] = wv ? [wv.dims[2], wv.dims[3]] : ks ? [ks[0], ks[1]] : [0, 0];
  if (!wv && !ks && n.str('auto_pad', 'NOTSET').startsWith('SAME')) n.fail('auto_pad SAME needs kernel_shape or a constant weight');
  if (ks && wv && (ks[0] !== kernel[0] || ks[1] !== kernel[1])) n.fail(`kernel_shape [${ks.join(', ')}] does not match the weight [${wv.dims.join(', ')}]`);
  const pad = autoPad(n, kernel, stride, dilation);
  const W = n.ownable(1);
  const B = n.has(2) ? n.ownable(2) : null;
  if (W && (!n.has(2) || B)) {
    const [O, I, kh, kw] = W.dims;
    const layer = new Conv2d(I * groups, O, [kh, kw], { stride, dilation, groups, padding: typeof pad === 'function' ? 0 : pad, bias: !!B });
    setParam(n.L, n, layer, 'weight', 1, W);
    if (B) setParam(n.L, n, layer, 'bias', 2, B);
    n.emit({
      tensors: [0],
      module: layer,
      run: ([x]) => {
        if (typeof pad !== 'function') return [layer.forward(x!)];
        return [bl.conv2d(x!, layer.param('weight'), { stride, dilation, groups, padding: pad(x!), bias: layer.optParam('bias') })];
      },
    });
    return;
  }
  n.emit({
    tensors: [0, 1, 2],
    run: ([x, w, b]) => [bl.conv2d(x!, w!, { stride, dilation, groups, padding: typeof pad === 'function' ? pad(x!) : pad, bias: b })],
  });
};

export const batchNormalization: Handler = (n) => {
  n.singleOutput();
  if (n.int('training_mode', 0) !== 0) n.fail('training_mode = 1 is not supported (export the model in eval mode)');
  const eps = n.float('epsilon', 1e-5);
  for (let i = 1; i <= 4; i++) if (!n.has(i)) n.fail(`input ${i} (${['', 'scale', 'B', 'mean', 'var'][i]}) is missing`);
  const own = [1, 2, 3, 4].map((i) => n.ownable(i));
  const C = own[0]?.dims[0];
  if (own.every((v) => v && v.dims.length === 1 && v.dims[0] === C)) {
    const layer = new BatchNorm2d(C!, { eps });
    ['weight', 'bias', 'running_mean', 'running_var'].forEach((local, k) => setParam(n.L, n, layer, local, k + 1, own[k]!));
    n.emit({
      tensors: [0],
      module: layer,
      run: ([x]) => {
        if (x!.rank === 4) return [layer.forward(x!)];
        return [bl.batchNorm(x!, { mean: layer.buffer('running_mean'), variance: layer.buffer('running_var'), gamma: layer.param('weight'), beta: layer.param('bias'), eps: layer.eps })];
      },
    });
    return;
  }
  n.emit({ tensors: [0, 1, 2, 3, 4], run: ([x, g, b, m, v]) => [bl.batchNorm(x!, { mean: m!, variance: v!, gamma: g, beta: b, eps })] });
};

export const gemm: Handler = (n) => {
  n.singleOutput();
  const alpha = n.float('alpha', 1);
  const beta = n.float('beta', 1);
  const transA = n.int('transA', 0) !== 0;
  const transB = n.int('transB', 0) !== 0;
  const B = n.ownable(1);
  const C = n.has(2) ? n.ownable(2) : null;
  if (alpha === 1 && (beta === 1 || !n.has(2)) && !transA && B && B.dims.length === 2 && (!n.has(2) || C)) {
    const [K, N] = transB ? [B.dims[1], B.dims[0]] : B.dims;
    if (!C || (numel(C.dims) === N && (C.dims.length === 1 || (C.dims.length === 2 && C.dims[0] === 1)))) {
      // a fully connected layer: y = x w^T + b with w [N, K] (PyTorch's Linear layout)
      const layer = new Linear(K, N, { bias: !!C });
      const w = transB ? B : hostTranspose(B, [1, 0]);
      setParam(n.L, n, layer, 'weight', 1, w, [N, K]);
      if (C) setParam(n.L, n, layer, 'bias', 2, C, [N]);
      n.emit({
        tensors: [0],
        module: layer,
        run: ([a]) => {
          if (a!.rank !== 2) throw new Error(`input A must be a matrix, got [${a!.shape.join(', ')}]`);
          return [layer.forward(a!)];
        },
      });
      return;
    }
  }
  n.emit({
    tensors: [0, 1, 2],
    run: ([a, b, c]) => {
      if (a!.rank !== 2 || b!.rank !== 2) throw new Error(`A and B must be matrices, got [${a!.shape.join(', ')}] and [${b!.shape.join(', ')}]`);
      let y = bl.matmul(transA ? bl.transpose(a!) : a!, transB ? bl.transpose(b!) : b!);
      if (alpha !== 1) y = bl.mul(y, alpha);
      if (c) y = bl.add(y, beta !== 1 ? bl.mul(c, beta) : c);
      return [y];
    },
  });
};

export const dropout: Handler = (n) => {
  n.singleOutput();
  let ratio = n.float('ratio', 0.5);
  if (n.opset >= 12) {
    ratio = n.has(1) ? n.host(1, 'ratio').data[0] : 0.5;
    if (n.has(2) && n.host(2, 'training_mode').data[0]) n.fail('training_mode = true is not supported (export the model in eval mode)');
  }
  if (!(ratio >= 0 && ratio < 1)) n.fail(`ratio must be in [0, 1), got ${ratio}`);
  const layer = new Dropout(ratio);
  n.emit({ tensors: [0], module: layer, run: ([x]) => [layer.forward(x!)] });
};

/**
 * ConvTranspose (2-D): weight [C_in, C_out / group, kH, kW], strides, dilations, group, pads
 * (cropped from the full output), output_padding; output_shape or auto_pad SAME_* give the pads
 * from the wanted size. The node's constant weight and bias become graph constants (there is no
 * layer class for it).
 */
export const convTranspose: Handler = (n) => {
  n.singleOutput();
  if (!n.has(1)) n.fail('the weight input (input 1) is missing');
  const ks = n.ints('kernel_shape');
  if (ks && ks.length !== 2) n.fail(`only 2-D transposed convolutions are supported; kernel_shape is [${ks.join(', ')}]`);
  const stride = pair(n, 'strides', 1);
  const dilation = pair(n, 'dilations', 1);
  const outPad = pair(n, 'output_padding', 0);
  const groups = n.int('group', 1);
  const autoPadMode = n.str('auto_pad', 'NOTSET');
  const outShape = n.ints('output_shape');
  if (!['NOTSET', 'VALID', 'SAME_UPPER', 'SAME_LOWER'].includes(autoPadMode)) n.fail(`auto_pad '${autoPadMode}' is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER`);
  const explicit = pads4(n);
  n.emit({
    tensors: [0, 1, 2],
    run: ([x, w, b]) => {
      if (x!.rank !== 4 || w!.rank !== 4) throw new Error(`only 2-D transposed convolutions are supported: input [${x!.shape.join(', ')}], weight [${w!.shape.join(', ')}]`);
      let padding: [number, number, number, number] = autoPadMode === 'VALID' ? [0, 0, 0, 0] : explicit;
      let op: [number, number] = outPad;
      const full = (a: number) => (x!.shape[2 + a] - 1) * stride[a] + dilation[a] * (w!.shape[2 + a] - 1) + 1;
      const want = outShape ? outShape.slice(-2) : autoPadMode.startsWith('SAME') ? [x!.shape[2] * stride[0], x!.shape[3] * stride[1]] : null;
      if (want) {
        // total padding = full + output_padding - wanted; the odd one at the end (SAME_UPPER,
        // and the spec's rule for output_shape) or the beginning (SAME_LOWER)
        const pp: number[] = [];
        for (let a = 0; a < 2; a++) {
          let total = full(a) + op[a] - want[a];
          if (total < 0) {
            // a wanted size beyond the full output comes from output padding
            op = a === 0 ? [op[0] - total, op[1]] : [op[0], op[1] - total];
            total = 0;
          }
          const small = Math.floor(total / 2);
          pp.push(...(autoPadMode === 'SAME_LOWER' ? [total - small, small] : [small, total - small]));
        }
        padding = pp as [number, number, number, number];
      }
      return [bl.convTranspose2d(x!, w!, { stride, dilation, groups, padding, outputPadding: op, bias: b })];
    },
  });
};

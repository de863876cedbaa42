// A small convolutional network built from backlight's engine ops, run on WebGPU (or the
// float64 CPU backend when no WebGPU adapter is found), then checked against the CPU backend.
//
//   npm run demo            (runs scripts/setup.sh first)
//   npx tsx examples/demo.ts
//
// The net is spelled out in primitives (maximum(x, 0) for relu, exp/sum/div for softmax, sum/div
// for global average pooling) to show what those composites are made of.
// The weights are seeded random numbers: the predicted classes mean nothing, the point is that
// the same graph gives the same numbers on the GPU and on the float64 reference.
import {
  init,
  randn,
  conv2d,
  maximum,
  maxPool2d,
  sum,
  max,
  div,
  sub,
  exp,
  add,
  mul,
  matmul,
  argmax,
  tidy,
  toBackend,
  type Backend,
  type Tensor,
} from '../engine/index.ts';

const BATCH = 8;
const CLASSES = 10;

interface Params {
  w1: Tensor; // [16, 3, 3, 3]
  b1: Tensor; // [16]
  w2: Tensor; // [32, 16, 3, 3]
  b2: Tensor; // [32]
  w3: Tensor; // [32, CLASSES]
  b3: Tensor; // [CLASSES]
}

/** He-initialised weights from fixed seeds. */
function makeParams(): Params {
  return tidy(() => ({
    w1: mul(randn([16, 3, 3, 3], { seed: 1 }), Math.sqrt(2 / (3 * 9))),
    b1: mul(randn([16], { seed: 2 }), 0.1),
    w2: mul(randn([32, 16, 3, 3], { seed: 3 }), Math.sqrt(2 / (16 * 9))),
    b2: mul(randn([32], { seed: 4 }), 0.1),
    w3: mul(randn([32, CLASSES], { seed: 5 }), Math.sqrt(1 / 32)),
    b3: mul(randn([CLASSES], { seed: 6 }), 0.1),
  }));
}

/** images [N, 3, 32, 32] -> class probabilities [N, CLASSES]. Runs on the inputs' backend. */
function forward(p: Params, images: Tensor): Tensor {
  return tidy(() => {
    let h = conv2d(images, p.w1, { padding: 1, bias: p.b1 }); // [N, 16, 32, 32]
    h = maximum(h, 0); // relu
    h = maxPool2d(h, { kernel: 2 }); // [N, 16, 16, 16]
    h = conv2d(h, p.w2, { padding: 1, bias: p.b2 }); // [N, 32, 16, 16]
    h = maximum(h, 0);
    const [, , H, W] = h.shape;
    const pooled = div(sum(h, [2, 3]), H * W); // global average pool: [N, 32]
    const logits = add(matmul(pooled, p.w3), p.b3); // [N, CLASSES]
    // softmax, shifted by the row maximum for stability
    const e = exp(sub(logits, max(logits, 1, { keepDims: true })));
    return div(e, sum(e, 1, { keepDims: true }));
  });
}

async function moveParams(p: Params, b: Backend): Promise<Params> {
  const out: Partial<Params> = {};
  for (const k of Object.keys(p) as (keyof Params)[]) out[k] = await toBackend(p[k], b);
  return out as Params;
}

function fmtMs(ms: number): string {
  return ms < 1000 ? `${ms.toFixed(0)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const backend = await init({ backend: 'auto' });
  const tInit = performance.now() - t0;
  const info = backend.info;
  console.log(`backend:      ${info.backend}${info.software ? ' (software adapter)' : ''}`);
  if (info.backend === 'webgpu') {
    console.log(`adapter:      vendor=${info.vendor || '?'} architecture=${info.architecture || '?'} device=${info.device || '?'}`);
    console.log(`              description=${info.description || '?'}`);
  }
  console.log(`init:         ${fmtMs(tInit)}`);

  const params = makeParams();
  // Noise around a random colour per image, so that the images (and their classes) differ.
  const images = tidy(() => add(mul(randn([BATCH, 3, 32, 32], { seed: 42 }), 0.5), randn([BATCH, 3, 1, 1], { seed: 43 })));

  // First run: includes compiling the pipelines; second run: the cache is warm.
  let t = performance.now();
  let probs = forward(params, images);
  let out = await probs.data();
  const tFirst = performance.now() - t;
  probs.dispose();
  t = performance.now();
  probs = forward(params, images);
  out = await probs.data();
  const tSecond = performance.now() - t;

  const classes = await argmax(probs, 1).data();
  console.log(`input:        [${images.shape.join(', ')}]`);
  console.log(`output:       [${probs.shape.join(', ')}] (softmax probabilities)`);
  console.log(`predicted:    ${Array.from(classes).join(' ')}`);
  const rowSums = Array.from({ length: BATCH }, (_, i) => Array.from(out.subarray(i * CLASSES, (i + 1) * CLASSES)).reduce((a, v) => a + v, 0));
  console.log(`row sums:     ${rowSums.map((s) => s.toFixed(6)).join(' ')}`);
  console.log(`forward:      ${fmtMs(tFirst)} first run (compiles pipelines), ${fmtMs(tSecond)} second run`);

  // The same graph on the float64 CPU reference backend, from the very same float32 inputs.
  const cpu = await init({ backend: 'cpu', setDefault: false });
  t = performance.now();
  const cpuParams = await moveParams(params, cpu);
  const cpuImages = await toBackend(images, cpu);
  const ref = await forward(cpuParams, cpuImages).data();
  const tCpu = performance.now() - t;
  let maxDiff = 0;
  for (let i = 0; i < ref.length; i++) maxDiff = Math.max(maxDiff, Math.abs(ref[i] - out[i]));
  const refClasses = Array.from({ length: BATCH }, (_, i) => {
    const row = Array.from(ref.slice(i * CLASSES, (i + 1) * CLASSES));
    return row.indexOf(Math.max(...row));
  });
  console.log(`cpu float64:  ${fmtMs(tCpu)}; predicted ${refClasses.join(' ')}`);
  console.log(`max |${info.backend} - cpu float64| = ${maxDiff.toExponential(2)}`);
  console.log(`total:        ${fmtMs(performance.now() - t0)}`);

  const ok = maxDiff < 1e-4;
  if (!ok) console.error('demo: the result differs from the CPU reference by more than 1e-4');
  backend.destroy();
  if (cpu !== backend) cpu.destroy();
  process.exitCode = ok ? 0 : 1;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

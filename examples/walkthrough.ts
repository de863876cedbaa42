// A teaching walkthrough: backpropagation through a tiny conv-relu-pool-linear network, one layer
// and one backward rule at a time, then the same backward pass with the ReLU rule swapped for
// guided backprop's and deconvnet's, and with LRP's rules, to show where the explanations part.
//
//   npx tsx examples/walkthrough.ts              (float64 CPU backend: exact numbers)
//   npx tsx examples/walkthrough.ts --backend webgpu
//
// Every number is printed; tests/examples/walkthrough.test.ts recomputes the tables in plain
// JavaScript and compares.
import * as bl from '../engine/index.ts';
import type { Rule, Tensor } from '../engine/index.ts';
import * as ex from '../explain/index.ts';
import { Conv2d, Flatten, Linear, MaxPool2d, ReLU } from '../models/layers.ts';
import { Sequential } from '../models/containers.ts';
import type { Module } from '../models/module.ts';

/**
 * The input: one 4 x 4 grey image with values of both signs, chosen so that the ReLU table below
 * has every case: a pool window whose conv outputs are all negative (its first element still gets
 * the gradient, so z < 0 meets g of either sign) and positive winners with g of either sign.
 */
export const WALK_INPUT: number[][] = [
  [-0.8, -0.5, 0.3, 0.0],
  [0.2, 0.9, -0.7, 0.8],
  [-0.6, 0.1, -0.5, -0.2],
  [0.3, -0.4, -0.9, -0.8],
];

/** Two 3 x 3 filters: a vertical-edge detector and a centre-surround one; no biases (see LRP below). */
export const WALK_CONV: number[][][] = [
  [[0.5, 0, -0.5], [0.5, 0, -0.5], [0.5, 0, -0.5]],
  [[-0.25, -0.25, -0.25], [-0.25, 1.5, -0.25], [-0.25, -0.25, -0.25]],
];

/** The classifier: 3 classes from the 8 pooled features (channel 0's 2 x 2, then channel 1's). */
export const WALK_LINEAR: number[][] = [
  [1.0, -0.5, 0.8, 0.6, -0.7, 0.4, 0.9, -0.3],
  [-0.4, 0.9, 0.2, -0.8, 0.6, -0.6, 0.3, 0.5],
  [0.3, 0.3, -0.9, 0.4, 0.2, 0.8, -0.5, 0.7],
];

/** Springenberg et al. 2015 (Fig. 1) style: a ReLU's forward input f and the gradient R arriving from above. */
export const LECTURE_F: number[][] = [[1, -1, 5], [2, -5, -7], [-3, 2, 4]];
export const LECTURE_R: number[][] = [[-2, 3, -1], [6, -3, 1], [2, -1, 3]];

export interface WalkthroughOptions {
  backend?: 'cpu' | 'webgpu' | 'auto';
  /** Where lines go (default console.log). */
  print?: (line: string) => void;
}

export interface ReluRow { c: number; y: number; x: number; z: number; g: number; gradient: number; deconvnet: number; guided: number }

export interface WalkthroughResult {
  target: number;
  logits: number[];
  /** The net's ReLU at every element the pool lets a gradient reach. */
  reluRows: ReluRow[];
  /** Input maps, 16 values each. */
  maps: Record<'gradient' | 'deconvnet' | 'guided' | 'inputXGradient' | 'lrpEpsilon' | 'lrpZPlus', number[]>;
  /** |manual chain - grad of the whole net|, max over the input. */
  chainError: number;
}

const f4 = (v: number) => (Math.abs(v) < 5e-5 ? 0 : v).toFixed(4).padStart(8);

/** Grids side by side: each [H][W], with a title above. */
function grids(titles: string[], gs: number[][][]): string[] {
  const w = gs.map((g, i) => Math.max(g[0].length * 9, titles[i].length) + 3);
  const lines = [titles.map((t, i) => t.padEnd(w[i])).join('').trimEnd()];
  const h = Math.max(...gs.map((g) => g.length));
  for (let y = 0; y < h; y++) lines.push(gs.map((g, i) => (g[y] ? g[y].map(f4).join(' ') : '').padEnd(w[i])).join('').trimEnd());
  return lines;
}

function toGrid(v: ArrayLike<number>, h: number, w: number, offset = 0): number[][] {
  return Array.from({ length: h }, (_, y) => Array.from({ length: w }, (_, x) => v[offset + y * w + x]));
}

async function values(t: Tensor): Promise<number[]> {
  return Array.from(await t.data());
}

function build(): Sequential {
  const conv = new Conv2d(1, 2, 3, { padding: 1, bias: false });
  const linear = new Linear(8, 3, { bias: false });
  const net = new Sequential(conv, new ReLU(), new MaxPool2d({ kernel: 2, stride: 2 }), new Flatten(), linear);
  conv.setTensor('weight', bl.tensor(WALK_CONV.flat(2), [2, 1, 3, 3]));
  linear.setTensor('weight', bl.tensor(WALK_LINEAR.flat(), [3, 8]));
  return net;
}

export async function runWalkthrough(opts: WalkthroughOptions = {}): Promise<WalkthroughResult> {
  const print = opts.print ?? ((l: string) => console.log(l));
  const backend = await bl.init({ backend: opts.backend ?? 'cpu' });
  const out = (...ls: string[]) => ls.forEach((l) => print(l));
  out(`backlight walkthrough on the ${backend.name === 'cpu' ? 'float64 CPU backend' : `${backend.info.adapter ?? 'WebGPU'} adapter`}`, '');

  const net = build();
  const layers = net.layers;
  const x = bl.tensor(WALK_INPUT.flat(), [1, 1, 4, 4]);

  out('1. The network: x [1, 1, 4, 4] -> conv -> ReLU -> max pool -> flatten -> linear -> 3 logits');
  out(...grids(['input x', 'filter 0 (vertical edges)', 'filter 1 (centre-surround)'], [WALK_INPUT, WALK_CONV[0], WALK_CONV[1]]), '');

  // Forward, keeping each layer's vjp: the backward pass below runs them in reverse, one at a time.
  out('2. Forward pass, layer by layer');
  const vjps: bl.VjpResult[] = [];
  const acts: Tensor[] = [x];
  for (const [i, layer] of layers.entries()) {
    const v = bl.vjp((h) => layer.call(h), acts[i]);
    vjps.push(v);
    acts.push(v.value);
  }
  const [, z, a, p, , logitsT] = acts;
  const zv = await values(z), av = await values(a), pv = await values(p);
  const logits = await values(logitsT);
  out(...grids(['conv output z, channel 0', 'channel 1'], [toGrid(zv, 4, 4), toGrid(zv, 4, 4, 16)]));
  out(...grids(['ReLU a = max(z, 0), channel 0', 'channel 1'], [toGrid(av, 4, 4), toGrid(av, 4, 4, 16)]));
  out(...grids(['max pool p, channel 0', 'channel 1'], [toGrid(pv, 2, 2), toGrid(pv, 2, 2, 4)]));
  const target = logits.indexOf(Math.max(...logits));
  out(`logits = W p = [${logits.map((v) => v.toFixed(4)).join(', ')}]; explained: class ${target} (the largest)`, '');

  // Backward: seed the target's logit, then each layer's rule in turn.
  out(`3. Backward pass: d logit[${target}] / d (each layer's input), one rule at a time`);
  const seed = bl.tensor([0, 1, 2].map((k) => (k === target ? 1 : 0)), [1, 3]);
  const ct: Tensor[] = [];
  ct[layers.length] = seed;
  for (let i = layers.length - 1; i >= 0; i--) ct[i] = vjps[i].vjp(ct[i + 1])[0];
  const g = await Promise.all(ct.map(values));
  const explainRule: string[] = [
    'conv rule: dx = the transposed convolution of dz with the filters (each input pixel collects the filter weights that touched it)',
    'ReLU rule: dz = da * [z > 0] (the gradient passes where the forward input was positive)',
    'max-pool rule: da = dp routed to the window\'s maximum, 0 elsewhere',
    'flatten rule: reshape back',
    `linear rule: dp = W^T e_${target} (row ${target} of W)`,
  ];
  out(`seed: e_${target} = [${g[5].join(', ')}]`);
  out(explainRule[4], `  dp = [${g[4].map((v) => v.toFixed(4)).join(', ')}]`);
  out(explainRule[2], ...grids(['  da, channel 0', 'channel 1'], [toGrid(g[2], 4, 4), toGrid(g[2], 4, 4, 16)]));
  out(explainRule[1], ...grids(['  dz, channel 0', 'channel 1'], [toGrid(g[1], 4, 4), toGrid(g[1], 4, 4, 16)]));
  out(explainRule[0], ...grids(['  dx'], [toGrid(g[0], 4, 4)]));
  // The chain of per-layer rules is the gradient of the whole network.
  const whole = await values(bl.grad((xi: Tensor) => bl.sum(bl.mul(net.call(xi), seed)))(x));
  const chainError = Math.max(...whole.map((v, k) => Math.abs(v - g[0][k])));
  out(`check: grad of the whole network gives the same dx (max |difference| ${chainError.toExponential(1)})`, '');
  for (const v of vjps) v.dispose();

  // 4. The ReLU backward table: the three rules on the lecture's example, then on the net.
  out('4. The ReLU backward rules, on a 3 x 3 example in the style of Springenberg et al. 2015, Fig. 1');
  out('   (f: the ReLU\'s forward input; R: the gradient arriving from above)');
  out('   gradient:  R * [f > 0]         deconvnet: max(R, 0)         guided: max(R, 0) * [f > 0]');
  const f = bl.tensor(LECTURE_F.flat(), [3, 3]), R = bl.tensor(LECTURE_R.flat(), [3, 3]);
  const ruleOut = async (rules: Record<string, Rule> | null) => {
    const run = () => { const v = bl.vjp((t) => bl.relu(t), f); const [d] = v.vjp(R); v.dispose(); return d; };
    return values(rules ? bl.withRules(rules, run) : run());
  };
  const lg = await ruleOut(null), ld = await ruleOut({ relu: bl.deconvRelu }), lgd = await ruleOut({ relu: bl.guidedRelu });
  out(...grids(['f', 'R', 'gradient', 'deconvnet', 'guided'], [LECTURE_F, LECTURE_R, toGrid(lg, 3, 3), toGrid(ld, 3, 3), toGrid(lgd, 3, 3)]), '');

  // On the net: record what each rule received and returned at the ReLU, by wrapping the rule.
  const seen: Record<string, { z: number[]; g: number[]; d: number[] }> = {};
  const recording = (name: string, rule: Rule): Rule => (c, ctx) => {
    const r = rule(c, ctx);
    // read back after the backward pass (a rule runs inside the tape's scope): keep copies
    pending.push([name, bl.keep(bl.add(ctx.inputs[0], 0)), bl.keep(bl.add(c, 0)), bl.keep(bl.add(r[0]!, 0))]);
    return r;
  };
  const pending: [string, Tensor, Tensor, Tensor][] = [];
  const exactRelu: Rule = (c, ctx) => [bl.mul(c, bl.step(ctx.inputs[0]))];
  const mapOf = async (name: string, rule: Rule) => {
    const m = await ex.saliency(net, x, { target, abs: false, rules: { relu: recording(name, rule) } });
    const v = await values(m);
    m.dispose();
    return v;
  };
  const maps = {
    gradient: await mapOf('gradient', exactRelu),
    deconvnet: await mapOf('deconvnet', bl.deconvRelu),
    guided: await mapOf('guided', bl.guidedRelu),
  };
  for (const [name, zt, gt, dt] of pending) {
    seen[name] = { z: await values(zt), g: await values(gt), d: await values(dt) };
    zt.dispose(); gt.dispose(); dt.dispose();
  }
  out('   The same rules at the network\'s ReLU. The max pool passes a gradient only to each window\'s maximum,');
  out('   so only those 8 of the 32 elements receive one; every rule gives 0 at the others.');
  out('    c  y  x        z        g gradient deconvnet   guided');
  const reluRows: ReluRow[] = [];
  const S = seen.gradient;
  for (let k = 0; k < 32; k++) {
    if (S.g[k] === 0) continue;
    const row: ReluRow = { c: Math.floor(k / 16), y: Math.floor((k % 16) / 4), x: k % 4, z: S.z[k], g: S.g[k], gradient: S.d[k], deconvnet: seen.deconvnet.d[k], guided: seen.guided.d[k] };
    reluRows.push(row);
    out(`   ${[row.c, row.y, row.x].map((v) => String(v).padStart(2)).join(' ')} ${[row.z, row.g, row.gradient, row.deconvnet, row.guided].map(f4).join(' ')}`);
  }
  const where = (pred: (r: ReluRow) => boolean) => reluRows.filter(pred).map((r) => `(${r.c},${r.y},${r.x})`).join(' ') || 'none';
  out(`   gradient vs guided differ where z > 0 and g < 0: ${where((r) => r.z > 0 && r.g < 0)} (guided drops negative signals from above)`);
  out(`   guided vs deconvnet differ where z <= 0 and g > 0: ${where((r) => r.z <= 0 && r.g > 0)} (deconvnet ignores the forward pass)`);
  out(`   gradient vs deconvnet differ at both kinds: ${where((r) => (r.z > 0 && r.g < 0) || (r.z <= 0 && r.g > 0))}`, '');

  // 5. LRP: relevance instead of gradient. With no biases and epsilon -> 0, LRP-epsilon on a ReLU net
  // equals input x gradient; z+ (epsilon-plus without the flat first layer) keeps only positive
  // contributions in the conv layer.
  out('5. LRP: redistribute the logit backwards instead of differentiating it');
  const lrpEps = await ex.lrp(net, x, { target, composite: 'epsilon', epsilon: 1e-9, returnLayers: true, returnDelta: true });
  const lrpZ = await ex.lrp(net, x, { target, composite: 'epsilon-plus', epsilon: 1e-9 });
  const ixg = await ex.inputXGradient(net, x, { target });
  const lrpLayers: [string, number][] = [];
  const layerName = ['conv', 'ReLU', 'pool', 'flatten', 'linear'];
  for (const [path, t] of Object.entries(lrpEps.layers)) lrpLayers.push([layerName[Number(path)] ?? path, (await values(t)).reduce((s2, v) => s2 + v, 0)]);
  const mapsAll = {
    ...maps,
    inputXGradient: await values(ixg),
    lrpEpsilon: await values(lrpEps.attribution),
    lrpZPlus: await values(lrpZ),
  };
  const total = (v: number[]) => v.reduce((s2, u) => s2 + u, 0).toFixed(4);
  out(`   rules: epsilon at conv and linear (R_in = x * W^T (R_out / (W x + eps))), relevance passed through ReLU, the pool's winner takes all`);
  out(`   relevance summed at each layer's output: ${lrpLayers.map(([pth, s2]) => `${pth} ${s2.toFixed(4)}`).join(', ')}; at the input ${total(mapsAll.lrpEpsilon)}`);
  out(`   = the logit ${logits[target].toFixed(4)}: conserved (no biases to absorb any). With z+ at the conv (epsilon-plus) the input sums to ${total(mapsAll.lrpZPlus)}.`);
  const lx = Math.max(...mapsAll.lrpEpsilon.map((v, k) => Math.abs(v - mapsAll.inputXGradient[k])));
  out(`   LRP-epsilon equals input x gradient here (max |difference| ${lx.toExponential(1)}): both split the logit by each input's linear contribution`, '');

  out('6. Where the explanations of the input differ');
  out(...grids(['gradient', 'deconvnet', 'guided backprop'], [toGrid(maps.gradient, 4, 4), toGrid(maps.deconvnet, 4, 4), toGrid(maps.guided, 4, 4)]));
  out(...grids(['input x gradient', 'LRP epsilon', 'LRP epsilon-plus (z+ conv)'], [toGrid(mapsAll.inputXGradient, 4, 4), toGrid(mapsAll.lrpEpsilon, 4, 4), toGrid(mapsAll.lrpZPlus, 4, 4)]));
  const signFlip = (a: number[], b: number[]) => a.filter((v, k) => Math.sign(v) !== Math.sign(b[k]) && Math.abs(v) > 1e-12 && Math.abs(b[k]) > 1e-12).length;
  out(`   pixels where deconvnet's sign differs from the gradient's: ${signFlip(maps.gradient, maps.deconvnet)} of 16; guided's: ${signFlip(maps.gradient, maps.guided)}; LRP z+'s: ${signFlip(maps.gradient, mapsAll.lrpZPlus)}`);
  out('   guided backprop and deconvnet keep only positive backward signals at the ReLU, so their maps look');
  out('   sharper, but they explain less of the model (Adebayo et al. 2018: they barely change when the');
  out('   top layers are randomised). LRP keeps the sign and sums to the logit.');

  for (const t of [lrpEps.attribution, lrpZ, ixg, ...Object.values(lrpEps.layers), ...(lrpEps.delta ? [lrpEps.delta] : [])]) t.dispose();
  for (const t of [...acts.slice(1), ...ct, f, R, x]) t.dispose();
  net.dispose();
  return { target, logits, reluRows, maps: mapsAll, chainError };
}

// `npx tsx examples/walkthrough.ts [--backend cpu|webgpu|auto]`
if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('examples/walkthrough.ts')) {
  const i = process.argv.indexOf('--backend');
  const backend = (i > 0 ? process.argv[i + 1] : 'cpu') as WalkthroughOptions['backend'];
  if (!['cpu', 'webgpu', 'auto'].includes(backend!)) {
    console.error(`walkthrough: --backend must be cpu, webgpu or auto, got '${backend}'`);
    process.exit(2);
  }
  await runWalkthrough({ backend });
  process.exit(0);
}

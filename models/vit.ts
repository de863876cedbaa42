// Vision transformer layers (Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words"), in the
// pre-norm layout and with the parameter names of timm's VisionTransformer, so that weights move
// between the two by name:
//
//   patch_embed.proj   Conv2d(C, D, p, stride p): the image as a grid of gh x gw patch tokens
//   cls_token          [1, 1, D], prepended to the tokens
//   pos_embed          [1, 1 + gh*gw, D], added
//   blocks.i           x + attn(norm1(x)), then x + mlp(norm2(x))
//     .attn.qkv        Linear(D, 3D): q, k, v stacked, each split into heads (head-major)
//     .attn.softmax    the attention probabilities [N, heads, T, T]: a layer of its own, so that
//                      explainers read them (and their gradients) by name ('blocks.0.attn.softmax')
//     .attn.proj       Linear(D, D)
//     .mlp.fc1/.act/.fc2
//   norm, head         LayerNorm, then Linear(D, classes) on the class token
//
// Everything is a composition of engine ops, so it differentiates (to any order) like any model.
import * as bl from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import { fmtShape } from '../engine/shape.ts';
import { Module } from './module.ts';
import { Conv2d, Linear, Softmax, setInitSeed } from './layers.ts';
import { Sequential } from './containers.ts';

/** PyTorch's nn.GELU: x Phi(x) with erf (approximate 'none', the default) or the tanh form (Hendrycks & Gimpel 2016). */
export class GELU extends Module {
  get kind() {
    return 'GELU';
  }
  constructor(readonly approximate: 'none' | 'tanh' = 'none') {
    super();
    if (approximate !== 'none' && approximate !== 'tanh') throw new Error(`GELU: approximate must be 'none' or 'tanh', got ${String(approximate)}`);
  }
  forward(x: Tensor): Tensor {
    return bl.gelu(x, { approximate: this.approximate });
  }
}

/** LayerNorm over the last axis (PyTorch's nn.LayerNorm(D)): biased variance, eps inside the sqrt. */
export class LayerNorm extends Module {
  get kind() {
    return 'LayerNorm';
  }
  constructor(
    readonly features: number,
    readonly eps = 1e-6,
  ) {
    super();
    this.addParam('weight', bl.ones([features]));
    this.addParam('bias', bl.zeros([features]));
  }
  forward(x: Tensor): Tensor {
    if (x.rank < 1 || x.shape[x.rank - 1] !== this.features) {
      throw new Error(`LayerNorm '${this.path}': expected ${this.features} features on the last axis, got ${fmtShape(x.shape)}`);
    }
    return bl.layerNorm(x, { gamma: this.param('weight'), beta: this.param('bias'), eps: this.eps });
  }
}

/** Image [N, C, H, W] -> patch tokens [N, gh*gw, D] (row-major over the grid), by a conv of stride = patch. */
export class PatchEmbed extends Module {
  get kind() {
    return 'PatchEmbed';
  }
  readonly proj: Conv2d;
  constructor(
    readonly inChannels: number,
    readonly dim: number,
    readonly patch: number,
  ) {
    super();
    this.proj = this.addChild('proj', new Conv2d(inChannels, dim, patch, { stride: patch }));
  }
  forward(x: Tensor): Tensor {
    if (x.rank !== 4 || x.shape[1] !== this.inChannels || x.shape[2] % this.patch || x.shape[3] % this.patch) {
      throw new Error(`PatchEmbed '${this.path}': expected [N, ${this.inChannels}, H, W] with H and W multiples of the patch size ${this.patch}, got ${fmtShape(x.shape)}`);
    }
    return bl.tidy(() => {
      const y = this.proj.call(x);
      const [n, d, gh, gw] = y.shape;
      return bl.transpose(bl.reshape(y, [n, d, gh * gw]), [0, 2, 1]);
    });
  }
}

/**
 * Multi-head self-attention (Vaswani et al. 2017), timm's layout: softmax(q k^T / sqrt(d_head)) v
 * per head. The probabilities pass through the child `softmax`, so they are tapped under
 * '<path>.softmax' as [N, heads, T, T] (row = query token, column = key token).
 */
export class MultiheadSelfAttention extends Module {
  get kind() {
    return 'MultiheadSelfAttention';
  }
  readonly qkv: Linear;
  readonly softmax: Softmax;
  readonly proj: Linear;
  readonly headDim: number;
  constructor(
    readonly dim: number,
    readonly heads: number,
  ) {
    super();
    if (!Number.isInteger(heads) || heads < 1 || dim % heads) throw new Error(`MultiheadSelfAttention: dim ${dim} must be a multiple of heads ${heads}`);
    this.headDim = dim / heads;
    this.qkv = this.addChild('qkv', new Linear(dim, 3 * dim));
    this.softmax = this.addChild('softmax', new Softmax(-1));
    this.proj = this.addChild('proj', new Linear(dim, dim));
  }
  forward(x: Tensor): Tensor {
    if (x.rank !== 3 || x.shape[2] !== this.dim) throw new Error(`MultiheadSelfAttention '${this.path}': expected [N, T, ${this.dim}], got ${fmtShape(x.shape)}`);
    return bl.tidy(() => {
      const [n, t] = x.shape;
      const { heads: h, headDim: dh, dim: d } = this;
      const qkv = this.qkv.call(x);
      // [N, T, D] slice -> [N, T, h, dh] -> [N, h, T, dh]
      const part = (i: number) => bl.transpose(bl.reshape(bl.slice(qkv, [0, 0, i * d], [n, t, d]), [n, t, h, dh]), [0, 2, 1, 3]);
      const q = part(0), k = part(1), v = part(2);
      const logits = bl.mul(bl.matmul(q, bl.transpose(k, [0, 1, 3, 2])), 1 / Math.sqrt(dh));
      const attn = this.softmax.call(logits);
      const o = bl.reshape(bl.transpose(bl.matmul(attn, v), [0, 2, 1, 3]), [n, t, d]);
      return this.proj.call(o);
    });
  }
}

export class Mlp extends Module {
  get kind() {
    return 'Mlp';
  }
  constructor(dim: number, hidden: number, approximate: 'none' | 'tanh' = 'none') {
    super();
    this.addChild('fc1', new Linear(dim, hidden));
    this.addChild('act', new GELU(approximate));
    this.addChild('fc2', new Linear(hidden, dim));
  }
  forward(x: Tensor): Tensor {
    return bl.tidy(() => {
      let h = x;
      for (const [, m] of this.namedChildren()) h = m.call(h);
      return h;
    });
  }
}

/** A pre-norm transformer encoder block: x + attn(norm1(x)), then x + mlp(norm2(x)). */
export class TransformerBlock extends Module {
  get kind() {
    return 'TransformerBlock';
  }
  readonly norm1: LayerNorm;
  readonly attn: MultiheadSelfAttention;
  readonly norm2: LayerNorm;
  readonly mlp: Mlp;
  constructor(dim: number, heads: number, mlpHidden: number, opts: { eps?: number; approximate?: 'none' | 'tanh' } = {}) {
    super();
    this.norm1 = this.addChild('norm1', new LayerNorm(dim, opts.eps));
    this.attn = this.addChild('attn', new MultiheadSelfAttention(dim, heads));
    this.norm2 = this.addChild('norm2', new LayerNorm(dim, opts.eps));
    this.mlp = this.addChild('mlp', new Mlp(dim, mlpHidden, opts.approximate));
  }
  forward(x: Tensor): Tensor {
    return bl.tidy(() => {
      const h = bl.add(x, this.attn.call(this.norm1.call(x)));
      return bl.add(h, this.mlp.call(this.norm2.call(h)));
    });
  }
}

export interface VisionTransformerOptions {
  /** Input image size [H, W] (the position embedding is made for this grid). */
  imageSize: number | [number, number];
  patch: number;
  inChannels?: number;
  classes: number;
  dim: number;
  depth: number;
  heads: number;
  /** MLP hidden width (default 4 * dim). */
  mlpHidden?: number;
  /** LayerNorm eps (default 1e-6, timm's ViT; torchvision's too). */
  eps?: number;
  /** GELU form (default 'none': erf, PyTorch's nn.GELU()). */
  approximate?: 'none' | 'tanh';
  /** Seed of the initial weights (truncated-normal-like N(0, 0.02^2) tokens, PyTorch-default layers). */
  seed?: number;
  /**
   * Initial position embedding: 'random' (N(0, 0.02^2), timm's) or 'sincos', the fixed 2-D sine-cosine
   * table of MAE (He et al. 2022), still trained: a small ViT trained from scratch on a small data
   * set then starts with the patch layout it would otherwise have to learn. Default 'random'.
   */
  posEmbedInit?: 'random' | 'sincos';
}

/**
 * 2-D sine-cosine position embedding [1 + gh*gw, dim] (MAE's get_2d_sincos_pos_embed, class
 * token row zero): the first dim/2 channels encode the row, the rest the column, each as
 * sin(p w_i), cos(p w_i) with w_i = 10000^(-i / (dim/4)).
 */
export function sincosPositionEmbedding(grid: readonly [number, number], dim: number): Float32Array {
  if (dim % 4) throw new Error(`sincosPositionEmbedding: dim ${dim} must be a multiple of 4`);
  const [gh, gw] = grid;
  const q = dim / 4;
  const out = new Float32Array((1 + gh * gw) * dim);
  for (let r = 0; r < gh; r++) {
    for (let c = 0; c < gw; c++) {
      const row = out.subarray((1 + r * gw + c) * dim, (2 + r * gw + c) * dim);
      for (let i = 0; i < q; i++) {
        const w = 1 / 10000 ** (i / q);
        row[i] = Math.sin(r * w);
        row[q + i] = Math.cos(r * w);
        row[2 * q + i] = Math.sin(c * w);
        row[3 * q + i] = Math.cos(c * w);
      }
    }
  }
  return out;
}

/**
 * A ViT classifier: patch tokens + class token + position embedding, `depth` pre-norm blocks, a
 * final LayerNorm, and a linear head on the class token. Attention layers are
 * 'blocks.<i>.attn.softmax' (attentionLayers()).
 */
export class VisionTransformer extends Module {
  get kind() {
    return 'VisionTransformer';
  }
  readonly opts: Required<Omit<VisionTransformerOptions, 'seed' | 'posEmbedInit'>> & { imageSize: [number, number] };
  readonly patchEmbed: PatchEmbed;
  readonly blocks: Sequential;
  readonly norm: LayerNorm;
  readonly head: Linear;
  readonly grid: [number, number];
  constructor(opts: VisionTransformerOptions) {
    super();
    const imageSize: [number, number] = typeof opts.imageSize === 'number' ? [opts.imageSize, opts.imageSize] : opts.imageSize;
    const posInt = (k: string, v: unknown) => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new Error(`VisionTransformer: ${k} must be a positive integer, got ${String(v)}`);
    };
    for (const k of ['patch', 'classes', 'dim', 'depth', 'heads'] as const) posInt(k, opts[k]);
    if (opts.dim % opts.heads) throw new Error(`VisionTransformer: dim ${opts.dim} must be a multiple of heads ${opts.heads}`);
    if (imageSize.some((s) => !Number.isInteger(s) || s < 1 || s % opts.patch)) throw new Error(`VisionTransformer: imageSize [${imageSize.join(', ')}] must be positive multiples of the patch size ${opts.patch}`);
    this.opts = { inChannels: 3, mlpHidden: 4 * opts.dim, eps: 1e-6, approximate: 'none', ...opts, imageSize };
    if (opts.seed !== undefined) setInitSeed(opts.seed * 7 + 1);
    const { dim } = this.opts;
    this.grid = [imageSize[0] / opts.patch, imageSize[1] / opts.patch];
    const tokens = 1 + this.grid[0] * this.grid[1];
    const seed = opts.seed ?? 0;
    this.addParam('cls_token', bl.tidy(() => bl.mul(bl.randn([1, 1, dim], { seed: seed * 104729 + 1 }), 0.02)));
    const pos = opts.posEmbedInit ?? 'random';
    if (pos !== 'random' && pos !== 'sincos') throw new Error(`VisionTransformer: posEmbedInit must be 'random' or 'sincos', got ${String(pos)}`);
    this.addParam('pos_embed', pos === 'sincos'
      ? bl.tensor(sincosPositionEmbedding(this.grid, dim), [1, tokens, dim])
      : bl.tidy(() => bl.mul(bl.randn([1, tokens, dim], { seed: seed * 104729 + 2 }), 0.02)));
    this.patchEmbed = this.addChild('patch_embed', new PatchEmbed(this.opts.inChannels, dim, opts.patch));
    const blocks = Array.from({ length: opts.depth }, () => new TransformerBlock(dim, opts.heads, this.opts.mlpHidden, { eps: this.opts.eps, approximate: this.opts.approximate }));
    this.blocks = this.addChild('blocks', new Sequential(...blocks));
    this.norm = this.addChild('norm', new LayerNorm(dim, this.opts.eps));
    this.head = this.addChild('head', new Linear(dim, opts.classes));
  }

  /** The names of the attention-probability layers, first block first. */
  attentionLayers(): string[] {
    return this.blocks.layers.map((b) => (b as TransformerBlock).attn.softmax.path);
  }

  /** Tokens after the blocks and the final norm, [N, 1 + gh*gw, D]. */
  features(x: Tensor): Tensor {
    const [H, W] = this.opts.imageSize;
    if (x.rank !== 4 || x.shape[2] !== H || x.shape[3] !== W) {
      throw new Error(`VisionTransformer '${this.path}': expected [N, ${this.opts.inChannels}, ${H}, ${W}] (the position embedding's grid), got ${fmtShape(x.shape)}`);
    }
    return bl.tidy(() => {
      const p = this.patchEmbed.call(x);
      const n = p.shape[0];
      const cls = bl.broadcastTo(this.param('cls_token'), [n, 1, this.opts.dim]);
      let h = bl.add(bl.concat([cls, p], 1), this.param('pos_embed'));
      h = this.blocks.call(h);
      return this.norm.call(h);
    });
  }

  forward(x: Tensor): Tensor {
    return bl.tidy(() => {
      const h = this.features(x);
      const [n, , d] = h.shape;
      const cls = bl.reshape(bl.slice(h, [0, 0, 0], [n, 1, d]), [n, d]);
      return this.head.call(cls);
    });
  }
}

// Finding a model's attention layers and capturing their probabilities (and gradients) by name.
//
// An attention layer is a tapped activation holding softmax probabilities over key tokens:
//  - [N, heads, T, T]: models/vit.ts ('blocks.<i>.attn.softmax'), timm-style ONNX exports;
//  - [N*heads, T, T] (batch-major): nn.MultiheadAttention as torch.onnx exports it (torchvision's
//    ViT), read as [N, heads, T, T].
// Own models name them by module path; ONNX graphs by the Softmax node's name or its output
// tensor's name. Without a `layers` option they are found: VisionTransformer.attentionLayers(),
// else every Softmax module / Softmax node whose output has one of the shapes above.
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { fmtShape } from '../../engine/shape.ts';
import { Module } from '../../models/module.ts';
import { GraphModel } from '../../models/containers.ts';
import { VisionTransformer } from '../../models/vit.ts';
import { type Model, type Target, checkInput, scores } from '../common.ts';

export interface AttentionLayerOptions {
  /**
   * The attention layers, first block first: module paths ('blocks.0.attn.softmax'), ONNX Softmax
   * node or output names, or the layer modules. Default: every attention layer of the model.
   */
  layers?: readonly (string | Module)[];
  /** Tokens before the patch tokens; the first is the class token (default 1). */
  prefixTokens?: number;
  /** The patch grid [gh, gw] (default: the model's, or the one matching the image's aspect). */
  grid?: readonly [number, number];
}

/** Candidate attention layers: exact for a VisionTransformer, to be checked by shape otherwise. */
function candidates(op: string, model: Model): { names: string[]; exact: boolean } {
  if (model instanceof VisionTransformer) return { names: model.attentionLayers(), exact: true };
  if (model instanceof GraphModel) return { names: model.nodes.filter((n) => n.op === 'Softmax').map((n) => n.name), exact: false };
  if (model instanceof Module) {
    const vits = model.namedModules().filter(([, m]) => m instanceof VisionTransformer);
    if (vits.length === 1) return { names: (vits[0][1] as VisionTransformer).attentionLayers(), exact: true };
    return { names: model.namedModules().filter(([p, m]) => p && m.kind === 'Softmax').map(([p]) => p), exact: false };
  }
  throw new Error(`${op}: a model given as a function has no layers to search: name its attention layers with the layers option (the tapped names of its softmax outputs)`);
}

function layerName(op: string, l: unknown, i: number): string {
  if (l instanceof Module) {
    if (!l.path) throw new Error(`${op}: layers[${i}] is a module with no path (the root model, or not part of it)`);
    return l.path;
  }
  if (typeof l !== 'string' || !l) throw new Error(`${op}: layers[${i}] must be a layer name or module, got ${l === undefined ? 'nothing' : typeof l}`);
  return l;
}

/** [N, heads, T, T] from a captured activation, or null when it is not attention-shaped. */
function asAttention(t: Tensor, n: number): Tensor | null {
  const s = t.shape;
  if (s.length === 4 && s[0] === n && s[2] === s[3]) return t;
  if (s.length === 3 && s[0] % n === 0 && s[1] === s[2]) return bl.reshape(t, [n, s[0] / n, s[1], s[2]]);
  return null;
}

const SHAPES = '[N, heads, T, T] (or [N*heads, T, T])';

export interface CapturedAttention {
  /** Layer names, in the order given (or found). */
  layers: string[];
  /** Attention probabilities per layer, [N, heads, T, T]. */
  attention: Tensor[];
  /** d(sum of the target scores)/d(attention), per layer, when asked for. */
  grads?: Tensor[];
  /** Free what the capture kept outside the caller's scope (call once done). */
  release(): void;
}

/**
 * Run the model on x and capture its attention layers (with gradients of the target scores when
 * `target` is given, else undefined). Results live in the caller's scope; nothing of the caller's
 * is disposed.
 */
export function captureAttention(
  op: string, model: Model, f: (x: Tensor) => Tensor, x: Tensor, opts: AttentionLayerOptions,
  withGrad: { target: Target | undefined } | null,
): CapturedAttention {
  const n = x.shape[0];
  let names: string[];
  let exact: boolean;
  if (opts.layers !== undefined) {
    if (!Array.isArray(opts.layers) || opts.layers.length === 0) throw new Error(`${op}: layers must be a non-empty array of layer names (or modules)`);
    names = opts.layers.map((l, i) => layerName(op, l, i));
    exact = true;
    const dup = names.find((nm, i) => names.indexOf(nm) !== i);
    if (dup) throw new Error(`${op}: layer '${dup}' is listed twice in layers`);
  } else {
    ({ names, exact } = candidates(op, model));
    if (names.length === 0) throw new Error(`${op}: the model has no attention layers (no softmax layer or Softmax node whose output is ${SHAPES}); name them with the layers option`);
  }
  const known = () => (model instanceof Module ? ` (the model's attention layers: ${safeList(op, model)})` : '');
  let acts: Record<string, Tensor>;
  let grads: Record<string, Tensor> | undefined;
  let kept: Tensor[] = [];
  if (withGrad) {
    let r: bl.GradAtResult;
    try {
      r = bl.valueAndGradAt(() => bl.sum(scores(op, f(x), withGrad.target, n)), names, [], { missing: exact ? 'error' : 'skip' });
    } catch (e) {
      const m = (e as Error).message;
      if (/^no layer\/activation named/.test(m)) throw new Error(`${op}: ${m.replace(/; available:.*$/, '')}${known()}`);
      throw e;
    }
    r.value.dispose();
    acts = r.activations;
    grads = r.grads;
  } else {
    acts = captureActivations(op, f, x, names, exact, known);
    kept = Object.values(acts);
  }
  const release = () => {
    for (const t of kept) t.dispose();
    kept = [];
  };
  try {
    return check(op, n, names, exact, known, acts, grads, release);
  } catch (e) {
    release();
    throw e;
  }
}

function check(
  op: string, n: number, names: string[], exact: boolean, known: () => string,
  acts: Record<string, Tensor>, grads: Record<string, Tensor> | undefined, release: () => void,
): CapturedAttention {
  const layers: string[] = [], attention: Tensor[] = [], gs: Tensor[] = [];
  for (const name of names) {
    const a = acts[name];
    if (!a) continue;
    const A = asAttention(a, n);
    if (!A) {
      if (exact) throw new Error(`${op}: layer '${name}' has shape ${fmtShape(a.shape)}, not attention probabilities ${SHAPES} for a batch of ${n}${known()}`);
      continue;
    }
    layers.push(name);
    attention.push(A);
    if (grads) gs.push(asAttention(grads[name], n)!);
  }
  if (layers.length === 0) throw new Error(`${op}: the model has no attention layers (none of its softmax outputs ${names.join(', ')} is ${SHAPES}); name them with the layers option`);
  const T = attention[0].shape[2];
  attention.forEach((A, i) => {
    if (A.shape[2] !== T) throw new Error(`${op}: attention layers differ in their token count: '${layers[0]}' has ${T}, '${layers[i]}' has ${A.shape[2]}`);
  });
  return { layers, attention, grads: grads ? gs : undefined, release };
}

/** The attention layers of a module model (for error messages; never throws). */
function safeList(op: string, model: Module): string {
  try {
    const { names } = candidates(op, model);
    return names.join(', ') || 'none';
  } catch {
    return 'none';
  }
}

/** Capture the tapped activations `names` in one forward (no gradients). */
function captureActivations(op: string, f: (x: Tensor) => Tensor, x: Tensor, names: string[], exact: boolean, known: () => string): Record<string, Tensor> {
  const found: Record<string, Tensor> = {};
  let completed = false;
  // One withActivation per name, nested; a name the forward never produced throws after the body
  // completed, which is an error only for names the caller gave.
  const run = (i: number): void => {
    if (i === names.length) {
      bl.tidy(() => {
        f(x);
      });
      completed = true;
      return;
    }
    try {
      bl.withActivation(names[i], (a) => ((found[names[i]] = bl.keep(bl.stopGradient(a))), a), () => run(i + 1));
    } catch (e) {
      if (!completed || found[names[i]]) throw e;
      if (exact) throw new Error(`${op}: no layer named '${names[i]}' was produced by the model${known()}`);
    }
  };
  try {
    run(0);
  } catch (e) {
    for (const t of Object.values(found)) t.dispose();
    throw e;
  }
  return found;
}

/** The patch grid [gh, gw] of T tokens with `prefix` leading ones, for images [N, C, H, W]. */
export function patchGrid(op: string, model: Model, x: Tensor, tokens: number, opts: AttentionLayerOptions): { grid: [number, number]; prefix: number } {
  const prefix = opts.prefixTokens ?? 1;
  if (!Number.isInteger(prefix) || prefix < 1) throw new Error(`${op}: prefixTokens must be a positive integer (the class token first), got ${String(opts.prefixTokens)}`);
  const p = tokens - prefix;
  if (p < 1) throw new Error(`${op}: the attention has ${tokens} tokens, no patch tokens after ${prefix} prefix token(s)`);
  if (opts.grid !== undefined) {
    const g = opts.grid;
    if (!Array.isArray(g) || g.length !== 2 || g.some((v) => !Number.isInteger(v) || v < 1)) throw new Error(`${op}: grid must be [rows, columns] of positive integers, got ${JSON.stringify(g)}`);
    if (g[0] * g[1] !== p) throw new Error(`${op}: grid [${g.join(', ')}] has ${g[0] * g[1]} cells, the attention has ${p} patch tokens (${tokens} tokens, ${prefix} prefix)`);
    return { grid: [g[0], g[1]], prefix };
  }
  const vit = model instanceof VisionTransformer ? model : null;
  if (vit && vit.grid[0] * vit.grid[1] === p) return { grid: [...vit.grid], prefix };
  const [H, W] = [x.shape[2], x.shape[3]];
  // The grid whose cells are square patches of the image: gh / gw = H / W.
  for (let gh = 1; gh <= p; gh++) {
    if (p % gh) continue;
    const gw = p / gh;
    if (gh * W === gw * H) return { grid: [gh, gw], prefix };
  }
  throw new Error(`${op}: cannot lay ${p} patch tokens (${tokens} tokens, ${prefix} prefix) out as a grid with the image's aspect ${H}x${W}; give the grid option`);
}

/** The class token's row to the patch tokens, [N, T, T] -> [N, 1, gh, gw]. */
export function classRowMap(M: Tensor, grid: [number, number], prefix: number): Tensor {
  const [n, T] = M.shape;
  return bl.reshape(bl.slice(M, [0, 0, prefix], [n, 1, T - prefix]), [n, 1, grid[0], grid[1]]);
}

/** The input check shared by the attention explainers: an image batch [N, C, H, W]. */
export function checkImages(op: string, input: unknown): Tensor {
  const x = checkInput(op, input);
  if (x.rank !== 4) throw new Error(`${op}: the input must be an image batch [N, C, H, W], got ${fmtShape(x.shape)}`);
  return x;
}

/** Bilinear resize of patch-grid maps [N, C, gh, gw] to the image size (that of x [N, C, H, W], or [H, W]). */
export function upsampleToImage(map: Tensor, image: Tensor | readonly [number, number]): Tensor {
  if (!(map instanceof bl.Tensor) || map.rank !== 4) throw new Error(`upsampleToImage: the map must be [N, C, rows, columns], got ${map instanceof bl.Tensor ? fmtShape(map.shape) : typeof map}`);
  let size: [number, number];
  if (image instanceof bl.Tensor) {
    if (image.rank !== 4) throw new Error(`upsampleToImage: the image must be [N, C, H, W], got ${fmtShape(image.shape)}`);
    size = [image.shape[2], image.shape[3]];
  } else if (Array.isArray(image) && image.length === 2 && image.every((v) => Number.isInteger(v) && v > 0)) {
    size = [image[0], image[1]];
  } else {
    throw new Error(`upsampleToImage: image must be an image tensor [N, C, H, W] or a size [H, W], got ${JSON.stringify(image)}`);
  }
  return bl.resizeBilinear(map, size);
}

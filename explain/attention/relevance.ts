// Gradient-weighted attention relevance: Chefer, Gur & Wolf 2021, "Generic Attention-model
// Explainability for Interpreting Bi-Modal and Encoder-Decoder Transformers" (ICCV 2021), the
// self-attention rule as their ViT implementation (hila-chefer/Transformer-MM-Explainability)
// computes it:
//
//   R = I;  for each attention layer l (from startLayer):  A_bar = mean_h( relu(dS/dA_l (.) A_l) );
//           R <- R + A_bar R
//
// with S the target class's score and A_l the layer's attention probabilities, both from one
// forward and backward pass. The explanation is R's class-token row over the patch tokens.
import * as bl from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { type Model, type TargetOptions, forwardOf } from '../common.ts';
import { type AttentionLayerOptions, captureAttention, checkImages, classRowMap, patchGrid } from './capture.ts';
import { identity, startLayerOf } from './rollout.ts';
import { checkOptions, optionKeys } from '../options.ts';

export interface AttentionRelevanceOptions extends AttentionLayerOptions, TargetOptions {
  /** The first layer accumulated (default 0: all of them). */
  startLayer?: number;
  /** Resize the map to the input's size (default true); false: the patch grid [N, 1, gh, gw]. */
  upsample?: boolean;
}

const RELEVANCE_KEYS = optionKeys<AttentionRelevanceOptions>()(['layers', 'prefixTokens', 'grid', 'target', 'rules', 'startLayer', 'upsample']);

/**
 * Chefer et al.'s relevance for the target class (a class index, one per item, 'predicted', or a
 * function of the output; as every explainer), [N, 1, H, W] or [N, 1, gh, gw] with
 * upsample: false; not rescaled. Items of a batch are explained independently (their attention
 * does not mix), in one forward and one backward pass.
 */
export async function attentionRelevance(model: Model, input: Tensor, opts: AttentionRelevanceOptions = {}): Promise<Tensor> {
  const op = 'attentionRelevance';
  checkOptions(op, opts, RELEVANCE_KEYS);
  const x = checkImages(op, input);
  const f = forwardOf(model, opts.rules);
  const r = bl.tidy(() => {
    const cap = captureAttention(op, model, f, x, opts, { target: opts.target });
    try {
      const start = startLayerOf(op, opts.startLayer, cap.layers);
      const [n, , T] = cap.attention[0].shape;
      const { grid, prefix } = patchGrid(op, model, x, T, opts);
      let R: Tensor = bl.broadcastTo(bl.reshape(identity(T, x), [1, T, T]), [n, T, T]);
      for (let l = start; l < cap.layers.length; l++) {
        const cam = bl.mean(bl.relu(bl.mul(cap.grads![l], cap.attention[l])), 1);
        R = bl.add(R, bl.matmul(cam, R));
      }
      const map = classRowMap(R, grid, prefix);
      return opts.upsample ?? true ? bl.resizeBilinear(map, [x.shape[2], x.shape[3]]) : map;
    } finally {
      cap.release();
    }
  });
  await r.backend.sync();
  return r;
}

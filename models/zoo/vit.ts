// The bundled vision transformer: a small ViT (models/vit.ts) for the 32x32 grey shapes, so that
// attention maps (explain/attention/) have a trained model to show and the shapes' ground-truth
// masks to check them against. 8x8 patches (a 4x4 grid of tokens plus the class token), 2 blocks
// of 4 heads, width 32, tanh GELU; position embeddings start from MAE's 2-D sine-cosine table.
// Small because it is trained on 2 CPU cores by `npm run train:shapes-vit` (the float64 reference
// backend): 4x4 patches (65 tokens) cost about 4x more per epoch and had not left chance after
// three epochs, and with random position embeddings the first epochs stayed at chance too.
import { VisionTransformer } from '../vit.ts';

export function shapesVit(seed = 0): VisionTransformer {
  return new VisionTransformer({
    imageSize: 32, patch: 8, inChannels: 1, classes: 4, dim: 32, depth: 2, heads: 4, mlpHidden: 64,
    approximate: 'tanh', posEmbedInit: 'sincos', seed,
  });
}

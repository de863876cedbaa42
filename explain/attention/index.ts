// Attention maps for vision transformers: raw attention, attention rollout, and gradient-weighted
// attention relevance, for the project's own ViTs (models/vit.ts) and for imported ONNX graphs.
//
//   attentionMaps(model, x, { layers?, heads?, full?, prefixTokens?, grid? })
//       -> Promise<{ layers, maps: Tensor[] /* per layer [N, heads, gh, gw] */, matrices?, grid, heads }>
//       the class token's attention to each patch, per layer and head (raw probabilities).
//   upsampleToImage(map [N, C, gh, gw], x | [H, W]) -> [N, C, H, W] (bilinear)
//   attentionRollout(model, x, { headFusion: 'mean'|'max'|'min' = 'mean', discardRatio = 0,
//                                startLayer = 0, residual = true, upsample = true, layers?, ... })
//       -> Promise<Tensor [N, 1, H, W]> (or [N, 1, gh, gw] with upsample: false)
//       Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers".
//   attentionRelevance(model, x, { target, startLayer = 0, upsample = true, layers?, rules?, ... })
//       -> Promise<Tensor [N, 1, H, W]> (or [N, 1, gh, gw])
//       Chefer, Gur & Wolf 2021, "Generic Attention-model Explainability for Interpreting Bi-Modal
//       and Encoder-Decoder Transformers": R <- R + mean_h(relu(dS/dA (.) A)) R from R = I.
//       `target` as every explainer: a class index, one per item, 'predicted', or a function.
//
// Attention layers are addressed by name (`layers`): module paths for own models
// ('blocks.0.attn.softmax', VisionTransformer.attentionLayers()), the Softmax node's name or
// output tensor name for ONNX imports. By default they are found: every Softmax whose output is
// [N, heads, T, T], or [N*heads, T, T] as torch.onnx exports nn.MultiheadAttention (torchvision's
// ViT). The class token is token 0; `prefixTokens` (default 1) tokens precede the patches, laid
// out row-major on a grid that matches the image's aspect (or `grid`).
//
// Maps are not rescaled: rollout values are the rollout matrix's class-token row (each row sums to
// 1), relevance values are R's. heatmapPng / normalizedMaps rescale for display. No caller tensor
// is disposed; every returned tensor belongs to the caller.
export { attentionMaps, attentionRollout, type AttentionMaps, type AttentionMapsOptions, type AttentionRolloutOptions, type HeadFusion } from './rollout.ts';
export { attentionRelevance, type AttentionRelevanceOptions } from './relevance.ts';
export { upsampleToImage, captureAttention, type AttentionLayerOptions, type CapturedAttention } from './capture.ts';

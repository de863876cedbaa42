// backlight explain: every attributor is async (model, input, options) => Tensor shaped like the
// input; layer methods return the layer's map ([N, 1, h, w] for CAMs, `upsample` to the input).
export type { Model, Target, TargetOptions } from './common.ts';
export { saliency, inputXGradient, guidedBackprop, deconvnet, type SaliencyOptions } from './gradient.ts';
export { integratedGradients, pathGradientSum, type IntegratedGradientsOptions, type AttributionWithDelta } from './integrated-gradients.ts';
export { quadrature, type IntegrationMethod } from './quadrature.ts';
export { noiseTunnel, smoothGrad, type NoiseTunnelOptions, type Attributor } from './noise-tunnel.ts';
export { deepLift, deepLiftShap, gradientShap, type DeepLiftOptions, type DeepLiftShapOptions, type GradientShapOptions, type ShapAttributionWithDelta } from './deeplift.ts';
export { cam, gradCam, hiResCam, xGradCam, layerCam, scoreCam, guidedGradCam, type LayerOptions, type ScoreCamOptions } from './cam.ts';
export { gradCamPlusPlus, gradCamPlusPlusTerms, type GradCamPlusPlusOptions, type GradCamPlusPlusTerms } from './gradcam-plus-plus.ts';
export { layerActivation, layerGradientXActivation, layerIntegratedGradients, neuronGradient, type LayerIntegratedGradientsOptions, type NeuronOptions } from './layer.ts';
export { heatmapPng, normalizedMaps, overlayPixels, colorOf, encodePng, type Colormap, type HeatmapOptions, type OverlayOptions } from './heatmap.ts';
// Perturbation methods (explain/perturbation/): any model, including black boxes, on one batched engine.
export { blackBox, PerturbationRunner, type BlackBoxFn, type BlackBoxModel, type PerturbationModel, type EngineOptions, type Progress } from './perturbation/engine.ts';
export { grid, columns, featureGroupsFor, type Features, type FeatureGroups, type Masker } from './perturbation/maskers.ts';
export { occlusion, predictionDifference, type OcclusionOptions, type PredictionDifferenceOptions } from './perturbation/occlusion.ts';
export { featureAblation, featurePermutation, type FeatureAblationOptions, type FeaturePermutationOptions } from './perturbation/ablation.ts';
export { kernelShap, kernelShapCoalitions, type KernelShapOptions, type ShapleyDetails, type ShapleyWithDelta } from './perturbation/kernel-shap.ts';
export { shapleySampling, shapleyExact, shapleyWeights, type ShapleySamplingOptions, type ShapleyExactOptions } from './perturbation/shapley.ts';
export { lime, type LimeOptions, type LimeDetails } from './perturbation/lime.ts';
export * as lrpRules from './lrp/rules.ts';
export { lrp, COMPOSITES, makeComposite, CANONIZERS, applyCanonizers, mergeBatchNorm, type LrpOptions, type LrpResult, type CompositeParams, type CompositeSpec, type Canonizer } from './lrp/index.ts';
export { registerComposite, compositeNames, type RulesOption } from './rules-option.ts';
export { slic, type SlicOptions } from './perturbation/slic.ts';
export { meaningfulPerturbation, gaussianBlur, type MeaningfulPerturbationOptions } from './perturbation/meaningful.ts';
export { explainDataset, type DatasetOptions } from './perturbation/dataset.ts';
export * from './sanity/index.ts';
export { spearman, pearson, ssim, histogramOfGradientsSimilarity, type SsimOptions, type HogOptions } from './metrics/similarity.ts';
export * from './uncertainty/index.ts';
export * from './metrics/index.ts';
export * from './evaluation/index.ts';
// Influence of training data (explain/influence/): influence functions (CG / LiSSA), TracIn, leave-one-out.
export { parameterVector, type ParameterVector } from './influence/params.ts';
export { influence, inverseHvpTest, empiricalRiskHvp, conjugateGradient, helpfulHarmful, tracIn, leaveOneOut, type InfluenceOptions, type SolveInfo, type CgResult, type Labelled, type DataLike, type LossFn, type Ranked, type WeightMap, type LeaveOneOutResult, type TracInOptions, type LeaveOneOutOptions, type CgOptions, type HvpOptions } from './influence/influence.ts';
export * from './embed/index.ts';
// Interpretable by design (explain/prototypes/): the prototype classifier's explanation.
export { PrototypeClassifier, prototypeDigits, findPrototypeClassifier, prototypeAttention, explainByPrototypes, nearestTrainingExamples, projectPrototypes, prototypesHtml, type PrototypeExplanation, type PrototypeItem, type PrototypeHit, type NearestTrainingOptions, type ProjectPrototypesOptions, type ExplainByPrototypesOptions, type PrototypesHtmlOptions } from './prototypes/prototype-classifier.ts';
export { fitSurrogateTree, fitTree, predictTree, treeRules, treeDepth, treeLeaves, type TreeNode, type TreeOptions, type SurrogateOptions, type SurrogateResult, type TreeRulesOptions } from './prototypes/surrogate-tree.ts';
// Looking inside (explain/visualize/): feature visualisation, dataset examples, filters and activation maps.
export * from './visualize/index.ts';
export { checkOptions, optionKeys } from './options.ts';
// Reports (explain/report/): one self-contained HTML file from a typed document.
export * from './report/index.ts';
// Attention maps for vision transformers (explain/attention/): raw attention, rollout, Chefer et al.'s relevance.
export { attentionMaps, attentionRollout, attentionRelevance, upsampleToImage, type AttentionMaps, type AttentionMapsOptions, type AttentionRolloutOptions, type AttentionRelevanceOptions, type AttentionLayerOptions, type HeadFusion } from './attention/index.ts';

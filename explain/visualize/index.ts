// Looking inside a model: feature visualisation by activation maximisation (pixel or Fourier
// parameterisation, regularisers, random affine transforms), the dataset examples that activate a
// unit most, filter images and activation maps.
export { activationMaximization, type ActivationMaxOptions, type ActivationMaxResult, type VisRegularizers, type StepInfo } from './activation-max.ts';
export { topActivatingExamples, type TopExamplesOptions, type TopExamples } from './dataset-examples.ts';
export { filterImages, activationMaps, type FilterImageOptions, type ActivationMapOptions } from './filters.ts';
export { imageGrid, type GridOptions } from './grid.ts';
export { affineMatrix, invertAffine, affineResample, samplingTable, randomAffine, type Affine2d, type AffineParams, type Padding, type TransformOptions } from './affine.ts';
export { rfft2, irfft2, fourierScale, fourierImage, fourierCoefficients, halfWidth, type FourierOptions } from './fourier.ts';
export { l2Penalty, totalVariation } from './regularizers.ts';
export { unitScores, layerShape, type VisObjective, type UnitOptions } from './units.ts';
export { redirectedRelu } from './relu-redirect.ts';

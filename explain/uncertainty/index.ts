// Uncertainty and calibration (explain/uncertainty/): MC dropout, deep ensembles, an autoencoder's
// reconstruction error for unfamiliar inputs, reliability bins / ECE / temperature scaling, and the
// report sections `backlight evaluate` prints. Browser-safe (no Node built-ins).
export { predictiveStats, entropyOf, type PredictiveUncertainty } from './predictive.ts';
export { mcDropout, dropoutLayers, dropoutSeed, type McDropoutOptions } from './mc-dropout.ts';
export {
  reliabilityBins, binConfidences, fitTemperature, fitTemperatureDetails, applyTemperature, nllAtTemperature,
  reliabilityDiagramSvg, softmaxHost,
  type ReliabilityBin, type ReliabilityResult, type ReliabilityOptions, type FitTemperatureOptions, type TemperatureFit, type ReliabilityDiagramOptions,
} from './calibration.ts';
export {
  calibrationReport, uncertaintyReport, predictLogits, auroc,
  type LabelledData, type CalibrationReport, type CalibrationReportOptions, type UncertaintyReport, type UncertaintyReportOptions, type McDropoutSummary,
  type PredictiveSummary, type ReconstructionSummary,
} from './report.ts';
export { ensemble, trainEnsemble, recipeLearningRate, type EnsembleOptions, type EnsembleSpec, type TrainEnsembleOptions } from './ensemble.ts';
export { bayesPredictive, type BayesPredictiveOptions } from './bayesian.ts';
export { Autoencoder, trainAutoencoder, reconstructionError, type AutoencoderOptions, type TrainAutoencoderOptions, type ReconstructionErrorOptions } from './autoencoder.ts';
export { oodInputs, type OodOptions } from './ood.ts';

// Explanation metrics (Quantus's and Captum's families): faithfulness, robustness, localisation
// against ground-truth masks, complexity. Per item values as Float64Arrays (host numbers).
export { aucTrapezoid, featureScores, type ArrayInput, type FeatureScores } from './common.ts';
export { sparseness, complexity } from './complexity.ts';
export { pointingGame, relevanceMass, relevanceRank, topKIntersection, type PointingGameOptions, type TopKIntersectionOptions } from './localisation.ts';
export {
  deletion, insertion, regionPerturbation, pixelFlipping, faithfulnessCorrelation, roadImpute,
  type CurveOptions, type CurveResult, type DeletionOptions, type InsertionOptions, type Reference,
  type RegionPerturbationOptions, type AopcResult, type FaithfulnessCorrelationOptions,
} from './faithfulness.ts';
export { infidelity, sensitivityMax, type InfidelityOptions, type SensitivityOptions } from './robustness.ts';

// Sanity checks for explanations (Adebayo et al. 2018): model parameter and label randomisation,
// an input-only control (edge detector) and the randomisation plot.
export {
  modelRandomisation, labelRandomisation, compareExplanations, randomisableLayers,
  type ExplainFn, type Similarity, type SimilarityPerItem, type Comparison, type RandomisationResult, type CompareOptions,
  type ReinitFn, type ModelRandomisationOptions, type LabelRandomisationOptions, type LabelRandomisationResult,
} from './randomisation.ts';
export { edgeDetector } from './baselines.ts';
export { randomisationPlotSvg, type RandomisationPlotOptions, type RandomisationPlotRow, type SimilarityMeasure } from './plot.ts';

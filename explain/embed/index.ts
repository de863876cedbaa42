// Embeddings (explain/embed/): PCA, classical MDS and exact t-SNE of a layer's activations or of
// the inputs, and an SVG scatter plot of the result.
export { pca, type PcaOptions, type PcaResult } from './pca.ts';
export { mds, type MdsOptions, type MdsResult } from './mds.ts';
export { tsne, tsneAffinities, tsneGradient, tsneKl, offDiagonalMask, type TsneOptions, type TsneResult } from './tsne.ts';
export { sparseAffinities, barnesHutGradient, type SparseP } from './barnes-hut.ts';
export { layerActivations, defaultEmbeddingLayer, type ActivationOptions } from './activations.ts';
export { jacobiEigen, topEigen, fixSigns, type Eigen, type TopEigenOptions } from './linalg.ts';
export { scatterSvg, scatterHtml, knnAccuracy, type ScatterOptions, type ScatterHtmlOptions } from './plot.ts';

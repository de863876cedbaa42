// Issue 15, the sweep beyond the attribution explainers: every public function of metrics, sanity,
// uncertainty, embed, influence, prototypes, visualize, evaluation and explainDataset rejects an
// option it does not know (a JavaScript caller's typo), naming the function and the option, and
// the numeric options that used to be clamped, ignored or hang give an error naming both. The
// option check runs before any model call, so the models and inputs here are tiny (CPU backend).
import { beforeAll, describe, expect, it } from 'vitest';
import * as bl from '../../engine/index.ts';
import * as ex from '../../explain/index.ts';
import { Linear, ReLU, Sequential, setInitSeed } from '../../models/index.ts';
import { randArray } from '../engine/grad-cases.ts';

beforeAll(async () => {
  await bl.init({ backend: 'cpu' });
});

function mlp() {
  setInitSeed(1);
  return new Sequential(new Linear(4, 6), new ReLU(), new Linear(6, 3));
}
const x = () => bl.tensor(randArray(8, 1), [2, 4]);
const img = () => bl.tensor(randArray(2 * 1 * 4 * 4, 2), [2, 1, 4, 4]);
const labelled = () => ({ x: x(), y: bl.tensor([0, 1], [2]) });
const bins = [{ lo: 0, hi: 1, confidence: 0.5, accuracy: 0.5, count: 2 }];
const tree: ex.TreeNode = { prediction: 0, counts: [1], n: 1, gini: 0 };
const spec = { build: () => mlp(), recipe: { seed: 0, epochs: 1, lr: 0.01, batchSize: 2, optimizer: 'adam' } } as never;

/** [function name, the call (a misspelt option, cast past the type checker), the message]. */
type Case = [string, () => unknown, RegExp];

const unknownOption: Case[] = [
  // metrics
  ['deletion', () => ex.deletion(mlp(), x(), x(), { stpes: 4 } as never), /deletion: unknown option 'stpes' \(did you mean 'steps'\?\)/],
  ['insertion', () => ex.insertion(mlp(), x(), x(), { refrence: 0 } as never), /insertion: unknown option 'refrence' \(did you mean 'reference'\?\)/],
  ['regionPerturbation', () => ex.regionPerturbation(mlp(), img(), img(), { regionsize: 2 } as never), /regionPerturbation: unknown option 'regionsize' \(did you mean 'regionSize'\?\)/],
  ['faithfulnessCorrelation', () => ex.faithfulnessCorrelation(mlp(), x(), x(), { sample: 4 } as never), /faithfulnessCorrelation: unknown option 'sample' \(did you mean 'samples'\?\)/],
  ['pointingGame', () => ex.pointingGame(x(), [2, 4], x(), { tolerence: 1 } as never), /pointingGame: unknown option 'tolerence' \(did you mean 'tolerance'\?\)/],
  ['topKIntersection', () => ex.topKIntersection(x(), [2, 4], x(), { K: 1 } as never), /topKIntersection: unknown option 'K'.*'k'/],
  ['infidelity', () => ex.infidelity(mlp(), x(), x(), { stddev: 0.1 } as never), /infidelity: unknown option 'stddev' \(did you mean 'stdev'\?\)/],
  ['sensitivityMax', () => ex.sensitivityMax(async (t) => t, x(), { target: 0, radious: 0.1 } as never), /sensitivityMax: unknown option 'radious' \(did you mean 'radius'\?\)/],
  ['ssim', () => ex.ssim([1, 2, 3, 4], [1, 2, 3, 4], { h: 2, w: 2, windows: 1 } as never), /ssim: unknown option 'windows' \(did you mean 'window'\?\)/],
  ['histogramOfGradientsSimilarity', () => ex.histogramOfGradientsSimilarity([1, 2, 3, 4], [1, 2, 3, 4], { h: 2, w: 2, cells: 1 } as never), /histogramOfGradientsSimilarity: unknown option 'cells' \(did you mean 'cell'\?\)/],
  // sanity
  ['compareExplanations', () => ex.compareExplanations([1, 2], [1, 2], [1, 2], { ssmi: false } as never), /compareExplanations: unknown option 'ssmi' \(did you mean 'ssim'\?\)/],
  ['modelRandomisation', () => ex.modelRandomisation(mlp(), x(), async (_m, t) => t, { mdoe: 'independent' } as never), /modelRandomisation: unknown option 'mdoe' \(did you mean 'mode'\?\)/],
  ['labelRandomisation', () => ex.labelRandomisation(x(), async (_m, t) => t, { build: () => mlp(), train: {} as never, epoch: 1 } as never), /labelRandomisation: unknown option 'epoch' \(did you mean 'epochs'\?\)/],
  ['randomisationPlotSvg', () => ex.randomisationPlotSvg([], { measure: ['ssim'] } as never), /randomisationPlotSvg: unknown option 'measure' \(did you mean 'measures'\?\)/],
  // uncertainty
  ['mcDropout', () => ex.mcDropout(mlp(), x(), { sample: 4 } as never), /mcDropout: unknown option 'sample' \(did you mean 'samples'\?\)/],
  ['ensemble', () => ex.ensemble([mlp()], x(), { output: 'probs' } as never), /ensemble: unknown option 'output' \(did you mean 'outputs'\?\)/],
  ['trainEnsemble', () => ex.trainEnsemble(spec, {} as never, { member: 2 } as never), /trainEnsemble: unknown option 'member' \(did you mean 'members'\?\)/],
  ['bayesPredictive', () => ex.bayesPredictive(mlp(), x(), { samlpes: 4 } as never), /bayesPredictive: unknown option 'samlpes' \(did you mean 'samples'\?\)/],
  ['Autoencoder', () => new ex.Autoencoder([4], { latnet: 2 } as never), /Autoencoder: unknown option 'latnet' \(did you mean 'latent'\?\)/],
  ['trainAutoencoder', () => ex.trainAutoencoder(x(), { epoch: 1 } as never), /trainAutoencoder: unknown option 'epoch' \(did you mean 'epochs'\?\)/],
  ['reconstructionError', () => ex.reconstructionError((t) => t, x(), { batchsize: 2 } as never), /reconstructionError: unknown option 'batchsize' \(did you mean 'batchSize'\?\)/],
  ['reliabilityBins', () => ex.reliabilityBins([0.5, 0.5], [0], { bin: 10 } as never), /reliabilityBins: unknown option 'bin' \(did you mean 'bins'\?\)/],
  ['fitTemperature', () => ex.fitTemperature([1, 2], [0], { ranges: [0.1, 10] } as never), /fitTemperature: unknown option 'ranges' \(did you mean 'range'\?\)/],
  ['fitTemperatureDetails', () => ex.fitTemperatureDetails([1, 2], [0], { rnage: [0.1, 10] } as never), /fitTemperatureDetails: unknown option 'rnage' \(did you mean 'range'\?\)/],
  ['reliabilityDiagramSvg', () => ex.reliabilityDiagramSvg(bins, { titel: 't' } as never), /reliabilityDiagramSvg: unknown option 'titel' \(did you mean 'title'\?\)/],
  ['calibrationReport', () => ex.calibrationReport(mlp(), labelled(), labelled(), { bin: 10 } as never), /calibrationReport: unknown option 'bin' \(did you mean 'bins'\?\)/],
  ['uncertaintyReport', () => ex.uncertaintyReport(mlp(), x(), x(), { member: [] } as never), /uncertaintyReport: unknown option 'member' \(did you mean 'members'\?\)/],
  ['oodInputs', () => ex.oodInputs(x(), { knid: 'uniform' } as never), /oodInputs: unknown option 'knid' \(did you mean 'kind'\?\)/],
  // embed
  ['pca', () => ex.pca(x(), { component: 1 } as never), /pca: unknown option 'component' \(did you mean 'components'\?\)/],
  ['mds', () => ex.mds(x(), { precomputd: true } as never), /mds: unknown option 'precomputd' \(did you mean 'precomputed'\?\)/],
  ['tsne', () => ex.tsne(x(), { perplexty: 2 } as never), /tsne: unknown option 'perplexty' \(did you mean 'perplexity'\?\)/],
  ['layerActivations', () => ex.layerActivations(mlp(), x(), { layers: '1' } as never), /layerActivations: unknown option 'layers' \(did you mean 'layer'\?\)/],
  ['topEigen', () => ex.topEigen(new Float64Array(4), 2, 1, { jacobilimit: 1 } as never), /topEigen: unknown option 'jacobilimit' \(did you mean 'jacobiLimit'\?\)/],
  ['scatterSvg', () => ex.scatterSvg([0, 0], [0], { caption: 'c' } as never), /scatterSvg: unknown option 'caption'/],
  ['scatterHtml', () => ex.scatterHtml([0, 0], [0], { captoin: 'c' } as never), /scatterHtml: unknown option 'captoin' \(did you mean 'caption'\?\)/],
  // influence
  ['influence', () => ex.influence(mlp(), labelled(), labelled(), { damp: 0.1 } as never), /influence: unknown option 'damp'/],
  ['influence (cg)', () => ex.influence(mlp(), labelled(), labelled(), { cg: { maxIters: 5 } } as never), /influence: option 'cg': unknown option 'maxIters' \(did you mean 'maxIter'\?\)/],
  ['influence (lissa)', () => ex.influence(mlp(), labelled(), labelled(), { solver: 'lissa', lissa: { dept: 5 } } as never), /influence: option 'lissa': unknown option 'dept' \(did you mean 'depth'\?\)/],
  ['inverseHvpTest', () => ex.inverseHvpTest(mlp(), labelled(), labelled(), { solvr: 'cg' } as never), /inverseHvpTest: unknown option 'solvr' \(did you mean 'solver'\?\)/],
  ['tracIn', () => ex.tracIn([mlp()], [1], labelled(), labelled(), { batchsize: 2 } as never), /tracIn: unknown option 'batchsize' \(did you mean 'batchSize'\?\)/],
  ['leaveOneOut', () => ex.leaveOneOut(() => mlp(), labelled(), labelled(), [0], { los: () => x() } as never), /leaveOneOut: unknown option 'los' \(did you mean 'loss'\?\)/],
  ['helpfulHarmful', () => ex.helpfulHarmful([1, 2], 1, { higherIsHelpfull: true } as never), /helpfulHarmful: unknown option 'higherIsHelpfull' \(did you mean 'higherIsHelpful'\?\)/],
  ['conjugateGradient', () => ex.conjugateGradient((v) => v, [1], { maxiter: 3 } as never), /conjugateGradient: unknown option 'maxiter' \(did you mean 'maxIter'\?\)/],
  ['empiricalRiskHvp', () => ex.empiricalRiskHvp(mlp(), null as never, null as never, null as never, { damp: 1 } as never), /empiricalRiskHvp: unknown option 'damp'/],
  // prototypes
  ['nearestTrainingExamples', () => ex.nearestTrainingExamples(mlp(), {} as never, { batch: 2 } as never), /nearestTrainingExamples: unknown option 'batch'/],
  ['projectPrototypes', () => ex.projectPrototypes(mlp(), {} as never, { sameclass: false } as never), /projectPrototypes: unknown option 'sameclass' \(did you mean 'sameClass'\?\)/],
  ['explainByPrototypes', () => ex.explainByPrototypes(mlp(), x(), { top: 2 } as never), /explainByPrototypes: unknown option 'top'/],
  ['prototypesHtml', () => ex.prototypesHtml({ attention: [], probabilities: [], items: [] }, { class: ['a'] } as never), /prototypesHtml: unknown option 'class'/],
  ['fitTree', () => ex.fitTree([0, 1], 1, [0, 1], { maxdepth: 2 } as never), /fitTree: unknown option 'maxdepth' \(did you mean 'maxDepth'\?\)/],
  ['treeRules', () => ex.treeRules(tree, { digit: 3 } as never), /treeRules: unknown option 'digit' \(did you mean 'digits'\?\)/],
  ['fitSurrogateTree', () => ex.fitSurrogateTree(mlp(), x(), { holdOut: 0.5 } as never), /fitSurrogateTree: unknown option 'holdOut' \(did you mean 'holdout'\?\)/],
  // visualize
  ['activationMaximization', () => ex.activationMaximization(mlp(), { layer: '1', step: 3 } as never), /activationMaximization: unknown option 'step' \(did you mean 'steps'\?\)/],
  ['topActivatingExamples', () => ex.topActivatingExamples(mlp(), x(), { layer: '1', K: 1 } as never), /topActivatingExamples: unknown option 'K'/],
  ['filterImages', () => ex.filterImages(mlp(), undefined, { normalise: 'minmax' } as never), /filterImages: unknown option 'normalise' \(did you mean 'normalize'\?\)/],
  ['activationMaps', () => ex.activationMaps(mlp(), x(), '1', { upsampel: true } as never), /activationMaps: unknown option 'upsampel' \(did you mean 'upsample'\?\)/],
  ['imageGrid', () => ex.imageGrid(img(), { col: 2 } as never), /imageGrid: unknown option 'col' \(did you mean 'cols'\?\)/],
  ['affineMatrix', () => ex.affineMatrix([4, 4], { rotat: 10 } as never), /affineMatrix: unknown option 'rotat' \(did you mean 'rotate'\?\)/],
  ['affineResample', () => ex.affineResample(img(), ex.affineMatrix([4, 4]), { pad: 'zeros' } as never), /affineResample: unknown option 'pad'.*'padding'/],
  ['randomAffine', () => ex.randomAffine([4, 4], { jiter: 1 } as never, Math.random), /randomAffine: unknown option 'jiter' \(did you mean 'jitter'\?\)/],
  ['fourierImage', () => ex.fourierImage(img(), 4, { decai: 1 } as never), /fourierImage: unknown option 'decai' \(did you mean 'decay'\?\)/],
  ['fourierCoefficients', () => ex.fourierCoefficients(img(), { Decay: 1 } as never), /fourierCoefficients: unknown option 'Decay' \(did you mean 'decay'\?\)/],
  // evaluation, data sets
  ['compareExplainers', () => ex.compareExplainers(mlp(), x(), { methods: { r: ex.randomExplainer() }, metric: ['sparseness'] } as never), /compareExplainers: unknown option 'metric' \(did you mean 'metrics'\?\)/],
  ['explainDataset', () => ex.explainDataset(async (t) => t, [1, 2], [2, 1], { onBlock: () => {}, blocks: 1 } as never), /explainDataset: unknown option 'blocks' \(did you mean 'block'\?\)/],
];

/** Run a call that may throw synchronously or reject, and return its error message. */
async function failure(call: () => unknown): Promise<string> {
  try {
    await call();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('the call did not fail');
}

describe('every function rejects an unknown option by name', () => {
  for (const [name, call, re] of unknownOption) {
    it(name, async () => {
      expect(await failure(call)).toMatch(re);
    });
  }

  it('options that are not an object are refused', async () => {
    expect(await failure(() => ex.pca(x(), 2 as never))).toMatch(/pca: options must be an object.*got number 2/);
    expect(await failure(() => ex.ssim([1, 2, 3, 4], [1, 2, 3, 4], [2, 2] as never))).toMatch(/ssim: options must be an object.*got an array of 2/);
  });

  it('an option set to undefined counts as absent (wrappers forward { ...opts, key: maybe })', async () => {
    const r = await ex.pointingGame(bl.tensor([1, 0, 0, 0], [1, 4]), [1, 4], bl.tensor([1, 0, 0, 0], [1, 4]), { tolerance: undefined });
    expect(Array.from(r)).toEqual([1]);
  });
});

describe('wrappers forward only the inner function\'s own options', () => {
  it('pixelFlipping fixes regionSize at 1, so a caller\'s regionSize is an error, not silently overridden', async () => {
    expect(await failure(() => ex.pixelFlipping(mlp(), img(), img(), { regionSize: 2 } as never))).toMatch(/pixelFlipping: unknown option 'regionSize'/);
  });

  it("scatterHtml's caption reaches the page, not scatterSvg (which would reject it)", () => {
    const html = ex.scatterHtml([0, 0, 1, 1], [0, 1], { caption: 'two points', title: 't' });
    expect(html).toContain('<p>two points</p>');
    expect(html).toContain('<svg');
  });

  it('compareExplanations takes the map size from the shape: h and w in its ssim option are errors', async () => {
    expect(await failure(() => ex.compareExplanations([1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 2], { ssim: { h: 4 } as never }))).toMatch(/compareExplanations: option 'ssim': unknown option 'h'/);
    expect(await failure(() => ex.modelRandomisation(mlp(), x(), async (_m, t) => t, { ssim: { windw: 1 } as never }))).toMatch(/modelRandomisation: option 'ssim': unknown option 'windw' \(did you mean 'window'\?\)/);
  });

  it('trainAutoencoder builds the autoencoder from its architecture options only', async () => {
    const ae = await ex.trainAutoencoder(x(), { epochs: 1, batchSize: 2, latent: 2, hidden: [3], lr: 0.01, weightDecay: 0 });
    try {
      expect(ae.encoder.namedChildren().length).toBe(4); // Flatten, Linear 4->3, ReLU, Linear 3->2
      expect(ae.history.length).toBe(1);
    } finally {
      ae.dispose();
    }
  });
});

describe('numeric options give an error naming the function and the option', () => {
  const cases: Case[] = [
    ['deletion seed', () => ex.deletion(mlp(), x(), x(), { seed: 1.5 }), /deletion: option 'seed' must be an integer >= 0, got 1\.5/],
    ['regionPerturbation seed', () => ex.regionPerturbation(mlp(), x(), x(), { seed: -1 }), /regionPerturbation: option 'seed' must be an integer >= 0, got -1/],
    ['faithfulnessCorrelation seed', () => ex.faithfulnessCorrelation(mlp(), x(), x(), { seed: 0.5 }), /faithfulnessCorrelation: option 'seed' must be an integer >= 0/],
    ['pointingGame tolerance', () => ex.pointingGame(x(), [2, 4], x(), { tolerance: Infinity }), /pointingGame: option 'tolerance' must be a finite non-negative number/],
    ['infidelity normalize', () => ex.infidelity(mlp(), x(), x(), { normalize: 'yes' as never }), /infidelity: option 'normalize' must be a boolean, got yes/],
    ['sensitivityMax seed', () => ex.sensitivityMax(async (t) => t, x(), { target: 0, seed: -3 }), /sensitivityMax: option 'seed' must be an integer >= 0, got -3/],
    ['ssim k1', () => ex.ssim([1, 2, 3, 4], [1, 2, 3, 4], { h: 2, w: 2, window: 1, k1: 0 }), /ssim: k1 must be a finite number > 0, got 0/],
    ['hogDescriptor normalize', () => ex.histogramOfGradientsSimilarity([1, 2, 3, 4], [1, 2, 3, 4], { h: 2, w: 2, cell: 1, block: 1, normalize: 'abs' as never }), /histogramOfGradientsSimilarity: normalize must be 'abs-max' or 'none', got 'abs'/],
    ['randomisationPlotSvg width', () => ex.randomisationPlotSvg([], { width: 100 }), /randomisationPlotSvg: option 'width' must be a number of pixels >= 300, got 100/],
    ['modelRandomisation layers', () => ex.modelRandomisation(mlp(), x(), async (_m, t) => t, { layers: '0' as never }), /modelRandomisation: layers must be an array of layer names/],
    ['labelRandomisation epochs', () => ex.labelRandomisation(x(), async (_m, t) => t, { build: () => mlp(), train: {} as never, epochs: 0 }), /labelRandomisation: epochs must be a positive integer, got 0/],
    ['labelRandomisation lr', () => ex.labelRandomisation(x(), async (_m, t) => t, { build: () => mlp(), train: {} as never, lr: -1 }), /labelRandomisation: lr must be a finite number > 0, got -1/],
    // A function model has no Dropout, so mcDropout never ran and samples went unchecked.
    ['uncertaintyReport samples', () => ex.uncertaintyReport((t) => t, x(), x(), { samples: 0 }), /uncertaintyReport: samples must be a positive integer, got 0/],
    ['uncertaintyReport batchSize', () => ex.uncertaintyReport((t) => t, x(), x(), { batchSize: 1.5 }), /uncertaintyReport: batchSize must be a positive integer, got 1\.5/],
    ['reliabilityDiagramSvg height', () => ex.reliabilityDiagramSvg(bins, { height: -5 }), /reliabilityDiagramSvg: option 'height' must be a number of pixels >= 100, got -5/],
    ['fitTemperature range', () => ex.fitTemperature([1, 2], [0], { range: 2 as never }), /fitTemperature: range must be \[lo, hi\], got 2/],
    ['Autoencoder seed', () => new ex.Autoencoder([4], { seed: -1 }), /Autoencoder: seed must be a non-negative integer, got -1/],
    ['trainAutoencoder weightDecay', () => ex.trainAutoencoder(x(), { weightDecay: -0.1 }), /trainAutoencoder: weightDecay must be a finite number >= 0, got -0\.1/],
    ['trainEnsemble seeds', () => ex.trainEnsemble(spec, {} as never, { seeds: 3 as never }), /trainEnsemble: seeds must be an array/],
    ['oodInputs seed', () => ex.oodInputs(x(), { seed: 2.5 }), /oodInputs: seed must be a non-negative integer, got 2\.5/],
    ['mds precomputed', () => ex.mds(x(), { precomputed: 'yes' as never }), /mds: option 'precomputed' must be a boolean, got yes/],
    ['layerActivations layer', () => ex.layerActivations(mlp(), x(), { layer: 3 as never }), /layerActivations: option 'layer' must be a layer name/],
    ['topEigen maxIterations', () => ex.topEigen(new Float64Array(4), 2, 1, { maxIterations: 0 }), /topEigen: option 'maxIterations' must be an integer >= 1, got 0/],
    ['scatterSvg size', () => ex.scatterSvg([0, 0], [0], { size: 10 }), /scatterSvg: option 'size' must be a number of pixels >= 40, got 10/],
    ['scatterHtml radius', () => ex.scatterHtml([0, 0], [0], { radius: 0 }), /scatterHtml: option 'radius' must be a finite number > 0, got 0/],
    // batchSize 0 never advanced the loops over the rows: these calls used to hang.
    ['influence batchSize', () => ex.influence(mlp(), labelled(), labelled(), { batchSize: 0 }), /influence: option 'batchSize' must be a positive integer, got 0/],
    ['nearestTrainingExamples batchSize', () => ex.nearestTrainingExamples(mlp(), {} as never, { batchSize: 0 }), /nearestTrainingExamples: option 'batchSize' must be a positive integer, got 0/],
    ['projectPrototypes batchSize', () => ex.projectPrototypes(mlp(), {} as never, { batchSize: 0 }), /projectPrototypes: option 'batchSize' must be a positive integer, got 0/],
    ['fitSurrogateTree batchSize', () => ex.fitSurrogateTree(mlp(), x(), { batchSize: 0 }), /fitSurrogateTree: option 'batchSize' must be a positive integer, got 0/],
    ['influence cg.tol', () => ex.influence(mlp(), labelled(), labelled(), { cg: { tol: -1 } }), /influence: option 'cg.tol' must be a finite number > 0, got -1/],
    ['influence lissa.depth', () => ex.inverseHvpTest(mlp(), labelled(), labelled(), { solver: 'lissa', lissa: { depth: 2.5 } }), /inverseHvpTest: option 'lissa.depth' must be a positive integer, got 2\.5/],
    ['influence hessianRows', () => ex.influence(mlp(), labelled(), labelled(), { hessianRows: [0, 7] }), /influence: option 'hessianRows' holds 7, not a training row \(0\.\.1\)/],
    ['influence damping', () => ex.influence(mlp(), labelled(), labelled(), { damping: NaN }), /influence: option 'damping' must be a finite number >= 0, got NaN/],
    ['tracIn batchSize', () => ex.tracIn([mlp()], [1], labelled(), labelled(), { batchSize: -2 }), /tracIn: option 'batchSize' must be a positive integer, got -2/],
    ['helpfulHarmful k', () => ex.helpfulHarmful([1, 2], 0), /helpfulHarmful: k must be a positive integer, got 0/],
    ['conjugateGradient x0', () => ex.conjugateGradient((v) => v, [1, 2], { x0: [0] }), /conjugateGradient: option 'x0' has 1 values, b has 2/],
    ['explainByPrototypes k', () => ex.explainByPrototypes(mlp(), x(), { k: 0 }), /explainByPrototypes: option 'k' must be a positive integer, got 0/],
    ['fitTree minLeaf', () => ex.fitTree([0, 1], 1, [0, 1], { minLeaf: 0 }), /fitTree: option 'minLeaf' must be a positive integer, got 0/],
    ['fitTree maxDepth', () => ex.fitTree([0, 1], 1, [0, 1], { maxDepth: -1 }), /fitTree: option 'maxDepth' must be a non-negative integer, got -1/],
    ['fitSurrogateTree maxDepth', () => ex.fitSurrogateTree(mlp(), x(), { maxDepth: 1.5 }), /fitSurrogateTree: option 'maxDepth' must be a non-negative integer, got 1\.5/],
    ['treeRules digits', () => ex.treeRules(tree, { digits: 0 }), /treeRules: option 'digits' must be an integer in 1\.\.21, got 0/],
    ['activationMaps upsample', () => ex.activationMaps(mlp(), x(), '1', { upsample: 'yes' as never }), /activationMaps: option 'upsample' must be a boolean, got yes/],
    ['imageGrid padValue', () => ex.imageGrid(img(), { padValue: NaN }), /imageGrid: padValue must be a finite number, got NaN/],
    ['randomAffine jitter', () => ex.randomAffine([4, 4], { jitter: 1.5 }, Math.random), /randomAffine: jitter must be a non-negative integer \(pixels\), got 1\.5/],
    ['fourierImage decay', () => ex.fourierImage(bl.zeros([2, 1, 1, 4, 3]), 4, { decay: -1 }), /fourierImage: option 'decay' must be a finite number >= 0, got -1/],
    ['compareExplainers seed', () => ex.compareExplainers(mlp(), x(), { methods: { r: ex.randomExplainer() }, seed: -1 }), /compareExplainers: option 'seed' must be a non-negative integer, got -1/],
    ['compareExplainers methods', () => ex.compareExplainers(mlp(), x(), { methods: { r: 'saliency' as never } }), /compareExplainers: method 'r' must be a function/],
    ['explainDataset onBlock', () => ex.explainDataset(async (t) => t, [1, 2], [2, 1], {} as never), /explainDataset: option 'onBlock' \(values, start, end\) => void is required/],
  ];
  for (const [name, call, re] of cases) {
    it(name, async () => {
      expect(await failure(call)).toMatch(re);
    });
  }
});

// Data sets: the real ones shipped in data/ (Node loaders), seeded synthetic image sets with
// ground-truth evidence masks, and split / standardisation helpers. `datasetSplits` gives the
// fixed splits the bundled models are trained and tested on.
import type { Dataset } from '../train.ts';
import { loadBreastCancer, loadDigits, loadIris, loadWine } from './tabular.ts';
import { makeShapes, makeSpurious } from './synthetic.ts';
import { trainTestSplit } from './split.ts';

export { Rng } from './random.ts';
export { subset, classCounts, trainTestSplit, fitStandardizer, standardize, sampleSize } from './split.ts';
export type { MaskedDataset, TabularDataset, SplitOptions, Standardizer } from './split.ts';
export { DATA_DIR, loadDigits, loadBreastCancer, loadWine, loadIris } from './tabular.ts';
export {
  makeShapes, makeSpurious, insideShape, textureAgreement,
  SHAPE_CLASSES, SPURIOUS_CLASSES, SPURIOUS_TEXTURES,
} from './synthetic.ts';
export type { ShapeKind, ShapesOptions, ShapesDataset, SpuriousOptions, SpuriousDataset } from './synthetic.ts';

/** A data set's named splits: always train and test; `heldout` where there is a shifted one. */
export type Splits = { train: Dataset; test: Dataset; heldout?: Dataset } & Record<string, Dataset | undefined>;

const tabular = (load: () => Dataset) => () => trainTestSplit(load(), { testFraction: 0.2, seed: 0 });

/** The fixed splits of each named data set (seeded: the same on every machine). */
export const DATASETS: Record<string, { description: string; splits: () => Splits }> = {
  digits: { description: 'UCI hand-written digits, [1, 8, 8] in [0, 1], 10 classes; 80/20 stratified split (seed 0)', splits: tabular(loadDigits) },
  'breast-cancer': { description: 'Breast Cancer Wisconsin (diagnostic), 30 raw features, 2 classes; 80/20 stratified split (seed 0)', splits: tabular(loadBreastCancer) },
  wine: { description: 'UCI wine, 13 raw features, 3 classes; 80/20 stratified split (seed 0)', splits: tabular(loadWine) },
  iris: { description: "Fisher's iris, 4 raw features, 3 classes; 80/20 stratified split (seed 0)", splits: tabular(loadIris) },
  shapes: {
    description: 'synthetic shapes on noise, [1, 32, 32], 4 classes, with masks; train 1200 (seed 1), test 400 (seed 2)',
    splits: () => ({ train: makeShapes({ n: 1200, seed: 1 }), test: makeShapes({ n: 400, seed: 2 }) }),
  },
  spurious: {
    description: 'synthetic circle/square on stripes/dots, [1, 32, 32], with masks; train 1200 and test 400 with 95% class-texture correlation (seeds 11, 12), held-out 400 with 50% (seed 13)',
    splits: () => ({
      train: makeSpurious({ n: 1200, seed: 11, correlation: 0.95 }),
      test: makeSpurious({ n: 400, seed: 12, correlation: 0.95 }),
      heldout: makeSpurious({ n: 400, seed: 13, correlation: 0.5 }),
      reversed: makeSpurious({ n: 400, seed: 14, correlation: 0 }),
    }),
  },
};

export function datasetSplits(name: string): Splits {
  const d = DATASETS[name];
  if (!d) throw new Error(`unknown data set '${name}' (known: ${Object.keys(DATASETS).join(', ')})`);
  return d.splits();
}

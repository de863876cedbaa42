// The report's document model: what a caller says about an explanation, in plain data. The
// renderer (render.ts) turns it into one self-contained HTML file; nothing here touches a tensor,
// a file or the network, so the same document renders in Node and in a browser.
import type { Colormap } from '../heatmap.ts';

/** RGBA bytes (width x height x 4) to PNG bytes: pngjs in Node, a canvas in a browser. */
export type PngEncoder = (rgba: Uint8Array, width: number, height: number) => Uint8Array | Promise<Uint8Array>;

/** Raw pixels of one image, channel-first: [C, H, W] (C = 1 grey or 3 RGB) or [H, W]. */
export interface RasterImage {
  values: ArrayLike<number>;
  shape: [number, number] | [number, number, number];
  /**
   * The value range shown black..white. Default: [0, 1] when every value lies in it, otherwise the
   * image's own min..max (a standardised input is stretched, and the caption says so).
   */
  range?: [number, number];
}

/** An image already encoded by the caller (a `data:image/...` URL; nothing else is accepted). */
export interface EncodedImage {
  dataUrl: string;
  width: number;
  height: number;
}

export type ImageLike = RasterImage | EncodedImage;

export interface Uncertainty {
  /** What produced it, e.g. 'MC dropout, 32 samples' or 'ensemble of 5'. */
  method: string;
  /** Standard deviation of each class probability over the samples (drawn as error bars). */
  std?: ArrayLike<number>;
  /** Predictive entropy H[mean p] in nats. */
  entropy?: number;
  /** Mutual information (BALD) in nats: the part of the entropy the samples disagree on. */
  mutualInformation?: number;
}

export interface Prediction {
  /** Class probabilities (softmax of the logits, or the model's own). */
  probabilities: ArrayLike<number>;
  /** The class the maps explain; default the most probable. */
  target?: number;
  /** The true class, when known. */
  trueClass?: number;
  uncertainty?: Uncertainty;
  /** Bars shown: the `top` most probable classes (default 10), plus the target and true class. */
  top?: number;
}

/** How a map's colours relate to its values. */
export type MapSign =
  /** Positive and negative evidence: a diverging map centred at 0 (red for, blue against). */
  | 'signed'
  /** Magnitudes |v| on a sequential map from 0. */
  | 'absolute'
  /** Values at or below 0 shown as 0 (CAMs after their ReLU); a sequential map from 0. */
  | 'positive';

/** How the renderer turns a [C, H, W] attribution into one [H, W] map. */
export type ChannelReduction = 'sum' | 'abs-sum' | 'max-abs';

/** One explanation method as shown in a section: the facts its caption is made of. */
export interface MethodInfo {
  /** Display name, e.g. 'Integrated gradients'. */
  name: string;
  /** What the method answers, one sentence (shown in the legend). */
  question?: string;
  sign: MapSign;
  /** Channel reduction for maps with C > 1 (default: 'sum' for signed maps, 'abs-sum' otherwise). */
  reduction?: ChannelReduction;
  /** The layer a layer method (CAM, layer attribution) read, and whether its map was upsampled. */
  layer?: string;
  upsampled?: boolean;
  /** Integration / sampling steps, and the baseline (IG, DeepLIFT, occlusion, SHAP). */
  steps?: number;
  samples?: number;
  baseline?: string;
  /** Backward rules or LRP composite, and the canonizers applied. */
  rules?: string;
  canonizers?: string;
  /** Perturbation features (e.g. '8 x 8 grid', 'SLIC, 20 segments'). */
  features?: string;
  /** Anything else the caption must say. */
  notes?: string[];
  colormap?: Colormap;
  /** Draw the map over a grey copy of the input (default false: the map alone, easier to read). */
  overlay?: boolean;
  /** Relative completeness error above which the item is flagged (default 0.05). */
  completenessTolerance?: number;
  /** Wall time of the method over the whole section, in seconds. */
  seconds?: number;
}

/** IG / DeepLIFT-style completeness: sum of the attribution vs f(x) - f(baseline) of the target. */
export interface Completeness {
  /** f(x) and f(baseline) of the explained output (the quantity the method claims to decompose). */
  fx: number;
  fBaseline: number;
  /** Sum of the raw attribution over every element; computed from the map's values when absent. */
  attributionSum?: number;
}

export interface AttributionMap {
  /** [H, W] or [C, H, W] raw attribution values (not normalised). */
  values: ArrayLike<number>;
  shape: [number, number] | [number, number, number];
  completeness?: Completeness;
}

export interface ImageItem {
  /** e.g. 'test image 3'. */
  label?: string;
  input: ImageLike;
  prediction?: Prediction;
  /** One map per method of the section, in its order (null: not computed for this item). */
  maps: (AttributionMap | null)[];
  /** A line under the item (e.g. what its ground-truth mask is). */
  note?: string;
}

/** Images (or any [C, H, W] input) with the prediction and one heatmap per method. */
export interface ImageSection {
  kind: 'images';
  title: string;
  intro?: string;
  classNames?: string[];
  methods: MethodInfo[];
  items: ImageItem[];
  /** CSS pixels of the longer side of every picture (default 160). */
  displaySize?: number;
}

export interface TabularRow {
  label?: string;
  /** SHAP-style values, one per feature, summing (with baseValue) to the prediction. */
  values: ArrayLike<number>;
  /** The row's feature values (colour of the beeswarm's dots; shown in the waterfall's labels). */
  featureValues?: ArrayLike<number>;
  /** E[f(x)] over the background. */
  baseValue: number;
  /** f(x) of the explained output, when known: the waterfall's end is checked against it. */
  prediction?: number;
}

/** Per-feature attributions of tabular rows: waterfall plots of chosen rows, a beeswarm of all. */
export interface TabularSection {
  kind: 'tabular';
  title: string;
  intro?: string;
  method: MethodInfo;
  /** Name of the explained output, e.g. 'logit of malignant'. */
  outputName?: string;
  featureNames: string[];
  rows: TabularRow[];
  /** Rows drawn as waterfalls (default the first). */
  waterfall?: number[];
  /** Features shown before the rest are summed into one line (default 10). */
  maxDisplay?: number;
}

/** A table of numbers or text, e.g. metric scores. */
export interface TableSection {
  kind: 'table';
  title: string;
  intro?: string;
  columns: string[];
  rows: (string | number | null)[][];
  /** Digits after the point for numbers (default 3). */
  digits?: number;
  /** Per column: 'max' or 'min' marks that column's best row in bold. */
  best?: ('max' | 'min' | null)[];
  caption?: string;
}

/** Paragraphs of plain text (escaped; no markup). */
export interface TextSection {
  kind: 'text';
  title?: string;
  paragraphs: string[];
}

/** An SVG figure made elsewhere (reliability diagram, randomisation plot): inline, checked for
 *  scripts and external references. */
export interface FigureSection {
  kind: 'figure';
  title: string;
  svg: string;
  caption?: string;
}

export type ReportSection = ImageSection | TabularSection | TableSection | TextSection | FigureSection;

export interface ReportDocument {
  title: string;
  subtitle?: string;
  /** Key facts shown under the title: model, adapter, timings. */
  meta?: { label: string; value: string }[];
  sections: ReportSection[];
}

export interface RenderOptions {
  /** Encodes raster images as PNG. Without one, rasters become inline SVG (larger, still exact). */
  encodePng?: PngEncoder;
}

// Reports that explain themselves: a typed document (model.ts) rendered to one self-contained
// HTML file (render.ts). Browser-safe: PNG encoding is the caller's (an injected encoder).
export type {
  ReportDocument, ReportSection, ImageSection, ImageItem, TabularSection, TabularRow, TableSection, TextSection, FigureSection,
  MethodInfo, MapSign, ChannelReduction, AttributionMap, Completeness, Prediction, Uncertainty, RasterImage, EncodedImage, ImageLike,
  PngEncoder, RenderOptions,
} from './model.ts';
export { renderReport, methodCaption, completenessError, safeSvg } from './render.ts';
export { waterfallSteps, beeswarmOrder, colourBarTicks } from './svg.ts';
export { reduceChannels, mapScale, displayRange } from './raster.ts';

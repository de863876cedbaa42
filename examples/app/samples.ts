// Samples of the bundled data sets, as the app's server lays them out: samples/index.json says
// which sets there are (shape, classes, labels) and samples/<set>.bin holds their images, float32
// little-endian, item after item ([C, H, W] each, values in [0, 1]). build.ts writes them from
// models/data in Node; the page fetches them.

export interface SampleSet {
  /** models/data DATASETS key: 'digits', 'shapes', 'spurious'. */
  name: string;
  /** Which split the samples come from, and why. */
  split: string;
  description: string;
  /** One item's shape, [C, H, W]. */
  shape: [number, number, number];
  classes: string[];
  /** The true class of each sample. */
  labels: number[];
  /** Bundled models that take these images. */
  models: string[];
}

export interface LoadedSampleSet extends SampleSet {
  images: Float32Array;
}

/** Item i of a loaded set (a view, not a copy). */
export function sampleImage(set: LoadedSampleSet, i: number): Float32Array {
  const p = set.shape[0] * set.shape[1] * set.shape[2];
  return set.images.subarray(i * p, (i + 1) * p);
}

/** Fetch the sets from the app's server (relative URLs: the page's own origin only). */
export async function fetchSampleSets(): Promise<LoadedSampleSet[]> {
  const index = (await (await okFetch('samples/index.json')).json()) as SampleSet[];
  return Promise.all(index.map(async (s) => ({ ...s, images: new Float32Array(await (await okFetch(`samples/${s.name}.bin`)).arrayBuffer()) })));
}

/** fetch that turns an HTTP error into an exception naming the URL. */
export async function okFetch(url: string): Promise<Response> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`GET ${url}: HTTP ${r.status}`);
  return r;
}

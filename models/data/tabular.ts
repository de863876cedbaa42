// Loaders for the real data sets shipped in data/ (see data/README.md for their sources and
// licences). The loaders read the files in Node (node:fs, and node:zlib for the gzip'd digits);
// the parsers (parseDigits, parseBreastCancer, ...) take the files' text and work anywhere, e.g.
// in a browser on text it fetched.
//
// Browser-safe as a module: node:fs and node:zlib are not imported (a browser bundle would fail
// on them) but taken from process.getBuiltinModule (Node >= 20.16), a plain call bundlers leave
// alone, when a loader runs.
import type { Dataset } from '../train.ts';
import type { TabularDataset } from './split.ts';

/** A file: URL as a path (node:url's fileURLToPath, without importing it), else the URL itself. */
function urlToPath(u: URL): string {
  if (u.protocol !== 'file:') return u.href;
  const p = decodeURIComponent(u.pathname);
  return /^\/[A-Za-z]:\//.test(p) ? p.slice(1) : p; // Windows: /C:/x -> C:/x
}

/** The repository's data/ folder (in the published package dist/data/). */
export const DATA_DIR = typeof import.meta.url === 'string' ? urlToPath(new URL('../../data/', import.meta.url)) : '';

type Builtin = (id: string) => unknown;
const builtin = (): Builtin | undefined => (globalThis as { process?: { getBuiltinModule?: Builtin } }).process?.getBuiltinModule;

function readData(file: string): string {
  const get = builtin();
  if (typeof get !== 'function') {
    throw new Error(`data set file ${file}: the loaders read data/ from disk, which needs Node (>= 20.16); elsewhere fetch the file and parse its text (parseDigits, parseBreastCancer, parseWine, parseIris)`);
  }
  const fs = get('node:fs') as { readFileSync(p: string): Uint8Array };
  const path = DATA_DIR + file;
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(path);
  } catch (e) {
    throw new Error(`data set file ${path} cannot be read (${(e as { code?: string }).code ?? (e as Error).message}); it ships in the repository's data/ folder`);
  }
  if (file.endsWith('.gz')) bytes = (get('node:zlib') as { gunzipSync(b: Uint8Array): Uint8Array }).gunzipSync(bytes);
  return new TextDecoder().decode(bytes);
}

function parseRow(line: string, file: string, lineNo: number, width: number): number[] {
  const v = line.split(',').map(Number);
  if (v.length !== width || v.some((x) => !Number.isFinite(x))) {
    throw new Error(`${file}: line ${lineNo} has ${v.length} fields (expected ${width} numbers)`);
  }
  return v;
}

/**
 * scikit-learn's CSV layout: a header `n_samples,n_features,class_0,class_1,...`, then rows of
 * the features followed by the class index.
 */
function parseSklearnCsv(text: string, file: string, featureNames: string[]): TabularDataset {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  const [nStr, fStr, ...classNames] = lines[0].split(',');
  const n = Number(nStr), f = Number(fStr);
  if (lines.length - 1 !== n) throw new Error(`${file}: the header says ${n} samples, the file has ${lines.length - 1}`);
  if (featureNames.length !== f) throw new Error(`${file}: the header says ${f} features, expected ${featureNames.length}`);
  const x = new Float32Array(n * f), y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const v = parseRow(lines[i + 1], file, i + 2, f + 1);
    x.set(v.slice(0, f), i * f);
    y[i] = v[f];
  }
  return { x, y, n, sampleShape: [f], numClasses: classNames.length, classNames, featureNames };
}

/**
 * UCI hand-written digits: 1797 images [1, 8, 8] with values in [0, 1] (the 0..16 counts / 16),
 * classes 0-9.
 */
export function loadDigits(): Dataset {
  return parseDigits(readData('digits.csv.gz'));
}

/** The digits from the text of data/digits.csv.gz, unzipped: rows of 64 counts (0..16) and the class. */
export function parseDigits(text: string, file = 'digits.csv'): Dataset {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  const n = lines.length;
  const x = new Float32Array(n * 64), y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const v = parseRow(lines[i], file, i + 1, 65);
    for (let j = 0; j < 64; j++) x[i * 64 + j] = v[j] / 16;
    y[i] = v[64];
  }
  return { x, y, n, sampleShape: [1, 8, 8], numClasses: 10, classNames: Array.from({ length: 10 }, (_, i) => String(i)) };
}

const BC_BASE = ['radius', 'texture', 'perimeter', 'area', 'smoothness', 'compactness', 'concavity', 'concave points', 'symmetry', 'fractal dimension'];
const BC_NAMES = [...BC_BASE.map((b) => `mean ${b}`), ...BC_BASE.map((b) => `${b} error`), ...BC_BASE.map((b) => `worst ${b}`)];
const WINE_NAMES = [
  'alcohol', 'malic_acid', 'ash', 'alcalinity_of_ash', 'magnesium', 'total_phenols', 'flavanoids',
  'nonflavanoid_phenols', 'proanthocyanins', 'color_intensity', 'hue', 'od280/od315_of_diluted_wines', 'proline',
];
const IRIS_NAMES = ['sepal length (cm)', 'sepal width (cm)', 'petal length (cm)', 'petal width (cm)'];

/** Breast Cancer Wisconsin (diagnostic): 569 samples, 30 features; 0 = malignant, 1 = benign. */
export function loadBreastCancer(): TabularDataset {
  return parseBreastCancer(readData('breast_cancer.csv'));
}
/** Breast Cancer Wisconsin from the text of data/breast_cancer.csv. */
export function parseBreastCancer(text: string): TabularDataset {
  return parseSklearnCsv(text, 'breast_cancer.csv', BC_NAMES);
}

/** Wine recognition: 178 samples, 13 features, 3 cultivars. */
export function loadWine(): TabularDataset {
  return parseWine(readData('wine_data.csv'));
}
/** Wine recognition from the text of data/wine_data.csv. */
export function parseWine(text: string): TabularDataset {
  return parseSklearnCsv(text, 'wine_data.csv', WINE_NAMES);
}

/** Fisher's iris: 150 samples, 4 features (cm), 3 species. */
export function loadIris(): TabularDataset {
  return parseIris(readData('iris.csv'));
}
/** Fisher's iris from the text of data/iris.csv. */
export function parseIris(text: string): TabularDataset {
  return parseSklearnCsv(text, 'iris.csv', IRIS_NAMES);
}

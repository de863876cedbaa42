// Loaders for the real data sets shipped in data/ (see data/README.md for their sources and
// licences). Node only: they read the files with node:fs (and node:zlib for the gzip'd digits).
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import type { Dataset } from '../train.ts';
import type { TabularDataset } from './split.ts';

/** The repository's data/ folder. */
export const DATA_DIR = fileURLToPath(new URL('../../data/', import.meta.url));

function readData(file: string): string {
  const path = DATA_DIR + file;
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`data set file ${path} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); it ships in the repository's data/ folder`);
  }
  return (file.endsWith('.gz') ? gunzipSync(bytes) : bytes).toString('utf8');
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
function loadSklearnCsv(file: string, featureNames: string[]): TabularDataset {
  const lines = readData(file).split('\n').map((l) => l.trim()).filter(Boolean);
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
  const file = 'digits.csv.gz';
  const lines = readData(file).split('\n').map((l) => l.trim()).filter(Boolean);
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

/** Breast Cancer Wisconsin (diagnostic): 569 samples, 30 features; 0 = malignant, 1 = benign. */
export function loadBreastCancer(): TabularDataset {
  const names = [...BC_BASE.map((b) => `mean ${b}`), ...BC_BASE.map((b) => `${b} error`), ...BC_BASE.map((b) => `worst ${b}`)];
  return loadSklearnCsv('breast_cancer.csv', names);
}

/** Wine recognition: 178 samples, 13 features, 3 cultivars. */
export function loadWine(): TabularDataset {
  return loadSklearnCsv('wine_data.csv', [
    'alcohol', 'malic_acid', 'ash', 'alcalinity_of_ash', 'magnesium', 'total_phenols', 'flavanoids',
    'nonflavanoid_phenols', 'proanthocyanins', 'color_intensity', 'hue', 'od280/od315_of_diluted_wines', 'proline',
  ]);
}

/** Fisher's iris: 150 samples, 4 features (cm), 3 species. */
export function loadIris(): TabularDataset {
  return loadSklearnCsv('iris.csv', ['sepal length (cm)', 'sepal width (cm)', 'petal length (cm)', 'petal width (cm)']);
}

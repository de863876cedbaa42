// The report document the browser tests render (in Node and in the page).
import type { ReportDocument } from '../../explain/report/index.ts';

const softmax = (z: number[]) => { const m = Math.max(...z); const e = z.map((v) => Math.exp(v - m)); const s = e.reduce((a, b) => a + b, 0); return e.map((v) => v / s); };
export const browserDocProbabilities = softmax([0.3, 1.7, -0.4, 0.9]);

/** A document with every kind of figure the browser must show. */
export function browserDoc(): ReportDocument {
  const n = 12;
  const rgb = Float32Array.from({ length: 3 * n * n }, (_, k) => ((k * 37) % 101) / 100);
  const signed = Float32Array.from({ length: 3 * n * n }, (_, k) => Math.sin(k / 5));
  return {
    title: 'browser report test', meta: [{ label: 'model', value: 'synthetic' }],
    sections: [
      {
        kind: 'images', title: 'Images', classNames: ['cat', 'wolf', 'husky', 'fox'],
        methods: [
          { name: 'Integrated gradients', sign: 'signed', steps: 8, baseline: 'zeros' },
          { name: 'Saliency', sign: 'absolute', overlay: true },
          { name: 'Grad-CAM', sign: 'positive', layer: 'features', upsampled: false },
        ],
        items: [{
          label: 'an RGB item', input: { values: rgb, shape: [3, n, n] },
          prediction: { probabilities: browserDocProbabilities, trueClass: 2, uncertainty: { method: 'ensemble of 3', std: [0.02, 0.1, 0.05, 0.01], entropy: 1.1 } },
          maps: [{ values: signed, shape: [3, n, n], completeness: { fx: 3, fBaseline: 0 } }, { values: signed, shape: [3, n, n] }, { values: [0, 1, 2, 3, 4, 5, 6, 7, 8], shape: [3, 3] }],
        }],
      },
      {
        kind: 'tabular', title: 'Tabular', method: { name: 'KernelSHAP', sign: 'signed' }, featureNames: ['age', 'dose', 'weight'], outputName: 'logit',
        rows: Array.from({ length: 20 }, (_, i) => ({ values: [Math.sin(i), 0.3 * Math.cos(i), 0.01 * i], featureValues: [i, i % 3, 20 - i], baseValue: 0.5 })),
      },
      { kind: 'table', title: 'Scores', columns: ['method', 'AUC'], rows: [['IG', 0.1], ['random', 0.3]], best: [null, 'min'] },
    ],
  };
}


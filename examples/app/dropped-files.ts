// Files dropped on the page (or picked with the file input): a PNG or JPEG becomes the model's
// input (decoded by the browser, resized to the model's input with smoothing, grey or RGB); an
// ONNX file becomes the model, loaded from its bytes by the same loader as in Node.
import * as bl from '../../engine/index.ts';
import { loadOnnx, type OnnxModel } from '../../models/index.ts';
import type { ModelInfo } from './catalog.ts';

export const isOnnxFile = (f: File) => /\.onnx$/i.test(f.name);
export const isImageFile = (f: File) => /^image\/(png|jpeg)$/.test(f.type) || /\.(png|jpe?g)$/i.test(f.name);

/** Decode an image file to [C, H, W] in [0, 1] at the model's input size (C = 1: grey, C = 3: RGB). */
export async function decodeImage(file: Blob, [c, h, w]: readonly number[]): Promise<Float32Array> {
  const bitmap = await createImageBitmap(file);
  try {
    const canvas = new OffscreenCanvas(w, h);
    const ctx = canvas.getContext('2d')!;
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(bitmap, 0, 0, w, h);
    const px = ctx.getImageData(0, 0, w, h).data;
    const out = new Float32Array(c * h * w);
    for (let k = 0; k < h * w; k++) {
      const r = px[4 * k] / 255, g = px[4 * k + 1] / 255, b = px[4 * k + 2] / 255;
      if (c === 3) {
        out[k] = r;
        out[h * w + k] = g;
        out[2 * h * w + k] = b;
      } else {
        out[k] = 0.299 * r + 0.587 * g + 0.114 * b; // ITU-R BT.601 luma
      }
    }
    return out;
  } finally {
    bitmap.close();
  }
}

/**
 * An ONNX model from its bytes, with what the app needs: the input's [C, H, W] (from the graph's
 * input, its batch axis left open), the number of classes (from one forward pass on zeros), and
 * the CAM layer (the last Relu, else the last Conv).
 */
export function onnxModel(bytes: Uint8Array, name: string): { model: OnnxModel; info: ModelInfo } {
  const model = loadOnnx(bytes, { source: name });
  try {
    const dims = model.info.inputs[0]?.shape;
    const item = dims?.slice(-3);
    if (!dims || dims.length !== 4 || !item!.every((d): d is number => typeof d === 'number' && d > 0) || ![1, 3].includes(item![0] as number)) {
      throw new Error(`${name}: the app takes image models with one input [N, 1 or 3, H, W]; this one's input is ${JSON.stringify(dims)}`);
    }
    const [c, h, w] = item as number[];
    const k = bl.tidy(() => model.call(bl.zeros([1, c, h, w])).shape.slice(1).reduce((a, b) => a * b, 1));
    const layers = model.layerNames();
    const cam = [...layers].reverse().find((l) => l.op === 'Relu') ?? [...layers].reverse().find((l) => l.op === 'Conv');
    return {
      model,
      info: {
        name,
        description: `ONNX (${model.info.producer || 'unknown producer'}, opset ${model.info.opset}), ${layers.length} nodes; inputs taken in [0, 1]`,
        inputShape: [c, h, w],
        classes: Array.from({ length: k }, (_, i) => String(i)),
        dataset: null,
        accuracy: null,
        camLayer: cam?.node ?? '',
      },
    };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

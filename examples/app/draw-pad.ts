// The drawing pad: white strokes on black (the digits' convention: ink is 1, paper is 0), read back
// as the model's input by averaging the pad's pixels over each input pixel's box. Showing an
// image paints it nearest-neighbour, so the box averages give it back exactly.
import { imagePixels } from './render.ts';

export class DrawPad {
  private readonly ctx: CanvasRenderingContext2D;
  private drawing = false;
  private last: [number, number] | null = null;
  /** Input pixels per side (the brush is sized in them). */
  private inputSide = 8;

  constructor(readonly canvas: HTMLCanvasElement, private readonly onStroke: (final: boolean) => void) {
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    if (!ctx) throw new Error('the drawing pad needs a 2D canvas context');
    this.ctx = ctx;
    this.clear();
    canvas.addEventListener('pointerdown', (e) => {
      canvas.setPointerCapture(e.pointerId);
      this.drawing = true;
      this.last = this.at(e);
      this.dot(this.last);
      this.onStroke(false);
    });
    canvas.addEventListener('pointermove', (e) => {
      if (!this.drawing) return;
      const p = this.at(e);
      this.line(this.last ?? p, p);
      this.last = p;
      this.onStroke(false);
    });
    const end = () => {
      if (!this.drawing) return;
      this.drawing = false;
      this.last = null;
      this.onStroke(true);
    };
    canvas.addEventListener('pointerup', end);
    canvas.addEventListener('pointercancel', end);
  }

  clear(): void {
    this.ctx.fillStyle = '#000';
    this.ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
  }

  /** Show an image [C, H, W] in [0, 1], scaled up without smoothing. */
  show(image: Float32Array, channels: number, h: number, w: number): void {
    this.inputSide = Math.max(h, w);
    const small = new OffscreenCanvas(w, h);
    const sctx = small.getContext('2d')!;
    sctx.putImageData(new ImageData(imagePixels(image, channels, h, w), w, h), 0, 0);
    this.ctx.imageSmoothingEnabled = false;
    this.ctx.drawImage(small, 0, 0, this.canvas.width, this.canvas.height);
  }

  /** The pad as an input [C, H, W] in [0, 1]: the mean of each box (grey: the mean of R, G and B). */
  read(channels: number, h: number, w: number): Float32Array {
    const W = this.canvas.width, H = this.canvas.height;
    const px = this.ctx.getImageData(0, 0, W, H).data;
    const out = new Float32Array(channels * h * w);
    const sums = new Float64Array(3 * h * w), counts = new Float64Array(h * w);
    for (let y = 0; y < H; y++) {
      const iy = Math.min(h - 1, Math.floor((y * h) / H));
      for (let x = 0; x < W; x++) {
        const k = iy * w + Math.min(w - 1, Math.floor((x * w) / W));
        const o = 4 * (y * W + x);
        for (let c = 0; c < 3; c++) sums[3 * k + c] += px[o + c];
        counts[k]++;
      }
    }
    for (let k = 0; k < h * w; k++) {
      const rgb = [0, 1, 2].map((c) => sums[3 * k + c] / counts[k] / 255);
      if (channels === 3) for (let c = 0; c < 3; c++) out[c * h * w + k] = rgb[c];
      else out[k] = (rgb[0] + rgb[1] + rgb[2]) / 3;
    }
    return out;
  }

  private at(e: PointerEvent): [number, number] {
    const r = this.canvas.getBoundingClientRect();
    return [((e.clientX - r.left) * this.canvas.width) / r.width, ((e.clientY - r.top) * this.canvas.height) / r.height];
  }

  // About 1.3 input pixels wide: the UCI digits' strokes are one to two of their 8x8 pixels.
  private get brush(): number {
    return Math.max(6, (1.3 * this.canvas.width) / this.inputSide);
  }

  private dot([x, y]: [number, number]): void {
    this.ctx.fillStyle = '#fff';
    this.ctx.beginPath();
    this.ctx.arc(x, y, this.brush / 2, 0, 2 * Math.PI);
    this.ctx.fill();
  }

  private line(a: [number, number], b: [number, number]): void {
    this.ctx.strokeStyle = '#fff';
    this.ctx.lineWidth = this.brush;
    this.ctx.lineCap = 'round';
    this.ctx.beginPath();
    this.ctx.moveTo(a[0], a[1]);
    this.ctx.lineTo(b[0], b[1]);
    this.ctx.stroke();
  }
}

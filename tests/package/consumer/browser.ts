// A browser consumer's TypeScript (DOM lib, bundler resolution, skipLibCheck off, so the
// package's own .d.ts are checked too): the browser-safe entries only.
import { init, type Tensor } from 'backlight';
import { loadBundled } from 'backlight/models/zoo';
import { gradCam, encodePng } from 'backlight/explain';

export async function show(canvas: HTMLCanvasElement): Promise<Tensor> {
  await init({ backend: 'auto' });
  const m = await loadBundled('digits-cnn');
  const png: Uint8Array = await encodePng(new Uint8Array(4), 1, 1);
  void [canvas, png];
  return gradCam(m, (await import('backlight')).zeros([1, 1, 8, 8]), { layer: 'features', target: 0 });
}

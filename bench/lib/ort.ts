// onnxruntime-node as the CPU peer, loaded at run time by a computed name: a bundle for a lent GPU
// machine (../shared/device/pack.sh) leaves it out, since its native binding cannot be bundled and
// that machine has no node_modules; there the ORT rows are skipped with the reason printed.
import type * as Ort from 'onnxruntime-node';

export type OrtModule = typeof Ort;

let cached: Promise<OrtModule | string> | undefined;

/** The module, or why it could not be loaded. */
export function loadOrt(): Promise<OrtModule | string> {
  const name = 'onnxruntime-node';
  cached ??= import(/* @vite-ignore */ name).then(
    (m: OrtModule & { default?: OrtModule }) => (m.InferenceSession ? m : m.default ?? m),
    (e: Error) => `onnxruntime-node not loadable here (${e.message.split('\n')[0]})`,
  );
  return cached;
}

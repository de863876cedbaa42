// An elementwise chain applied by a producer kernel (conv2d, matmul) as it writes each output
// element: bias + activation, BatchNorm's scale and shift, a residual add. engine/webgpu/fusion.ts
// decides when a chain folds into its producer; this file turns the chain into WGSL the producer's
// kernel includes:
//   - the chain's leaf buffers as read-only bindings after the producer's own inputs (`ep0`, ...);
//   - its uniforms (constants, the output shape and the strided leaves' strides) as fields the
//     producer adds to its own schema (epilogueFields);
//   - `fn epilogue(acc: f32, i: u32) -> f32` (with `, ch: u32` when leaves are read per channel:
//     FusedProgram.leafChannel): the chain's value at flat output index `i`, given
//     the producer's value `acc` there. The body is the fused kernel's (shaders/fused.ts,
//     chainBody), so a folded chain gives the same bits as the chain run on its own.
// A function call, not spliced code: the producer's write sites are unrolled (one per register
// of its block) and the chain would be repeated at each. SwiftShader does not inline it; it is
// called once per output element, after all of the element's multiply-adds.
import { mathLib } from './math.ts';
import { powJs } from './elementwise.ts';
import { chainBody, chainUsesPow, type FusedProgram } from './fused.ts';
import type { FieldType, Fields, UniformSchema } from './uniforms.ts';

/** A chain whose producer's value is named `acc` (no leaf, no step). */
export type EpilogueProgram = Pick<FusedProgram, 'rank' | 'leafFlat' | 'scalars' | 'steps' | 'result' | 'leafChannel'>;

/** Whether the epilogue takes the producer's channel (`fn epilogue(acc, i, ch)`). */
export const epilogueUsesChannel = (p: EpilogueProgram): boolean => p.leafChannel?.some(Boolean) ?? false;

/** The uniform fields an epilogue adds to its producer's schema (names prefixed `ep`). */
export function epilogueFields(p: EpilogueProgram): Record<string, FieldType> {
  const fields: Record<string, FieldType> = {};
  for (let j = 0; j < p.scalars; j++) fields[`epC${j}`] = 'f32';
  const strided = p.leafFlat.filter((f, j) => !f && !p.leafChannel?.[j]).length;
  if (strided > 0 && p.rank > 0) {
    fields.epShape = ['u32', p.rank];
    fields.epStrides = ['u32', p.rank * strided];
  }
  return fields;
}

/** The values of epilogueFields from the host's chain values (count/c0../shape/strides, as the
 * fused kernel's schema names them). */
export function epilogueValues(values: Record<string, number | number[]>, p: EpilogueProgram): Record<string, number | number[]> {
  const r: Record<string, number | number[]> = {};
  for (let j = 0; j < p.scalars; j++) r[`epC${j}`] = values[`c${j}`] as number;
  if (values.shape !== undefined) {
    r.epShape = values.shape;
    r.epStrides = values.strides;
  }
  return r;
}

/** Bindings (from `firstBinding`) and the epilogue function, for a kernel whose schema `P`
 * includes epilogueFields(p). */
export function epilogueWgsl(p: EpilogueProgram, P: UniformSchema<Fields>, firstBinding: number): string {
  const bindings = p.leafFlat.map((_, j) => `@group(0) @binding(${firstBinding + j}) var<storage, read> ep${j}: array<f32>;`).join('\n');
  const body = chainBody(p, {
    buffer: (j) => `ep${j}`,
    shape: (k) => P.ref('epShape', k),
    stride: (s, k) => P.ref('epStrides', s * p.rank + k),
    constant: (j) => P.ref(`epC${j}`),
  });
  return /* wgsl */ `${mathLib}${chainUsesPow(p) ? powJs : ''}
${bindings}
// The elementwise chain folded into this kernel (${p.steps.length} step(s), ${p.leafFlat.length} input(s)).
fn epilogue(acc: f32, i: u32${epilogueUsesChannel(p) ? ', ch: u32' : ''}) -> f32 {${body}
  return ${p.result};
}
`;
}

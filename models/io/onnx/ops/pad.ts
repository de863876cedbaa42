// Pad: constant, reflect and edge modes (PyTorch's F.pad, ReflectionPad2d, ReplicationPad2d and
// the Pad that precedes an AveragePool with padding), pads from the attribute (opset < 11) or
// input 1, the constant from input 2 or `value`, opset 18's axes input. Negative pads crop.
import * as bl from '../../../../engine/index.ts';
import type { Handler } from './common.ts';
import { normAxis } from '../host.ts';

export const padOp: Handler = (n) => {
  n.singleOutput();
  const mode = n.str('mode', 'constant');
  if (mode !== 'constant' && mode !== 'reflect' && mode !== 'edge') n.fail(`mode '${mode}' is not supported (expected constant, reflect or edge)`);
  const pads = n.opset >= 11 ? Array.from(n.host(1, 'pads').data) : n.ints('pads') ?? n.fail('the pads attribute is required');
  let value = 0;
  if (n.opset >= 11) {
    if (n.has(2)) {
      const v = n.host(2, 'constant_value');
      if (v.data.length > 1) n.fail(`constant_value must be a scalar, got shape [${v.dims.join(', ')}]`);
      value = v.data[0] ?? 0;
    }
  } else value = n.float('value', 0);
  if (pads.length % 2 !== 0) n.fail(`pads must have 2 entries per axis, got [${pads.join(', ')}]`);
  if (pads.some((p) => !Number.isInteger(p))) n.fail(`pads must be integers, got [${pads.join(', ')}]`);
  const axesIn = n.opset >= 18 && n.has(3) ? Array.from(n.host(3, 'axes').data) : null;
  const k = pads.length / 2;
  if (axesIn && axesIn.length !== k) n.fail(`pads [${pads.join(', ')}] has ${k} axes but the axes input lists ${axesIn.length}`);
  n.emit({
    tensors: [0],
    run: ([x]) => {
      const r = x!.rank;
      const axes = axesIn ? axesIn.map((a) => normAxis(a, r, 'Pad axes')) : [...Array(r).keys()];
      if (!axesIn && k !== r) throw new Error(`pads has ${k} axes, the input [${x!.shape.join(', ')}] has ${r}`);
      const per: [number, number][] = x!.shape.map(() => [0, 0]);
      axes.forEach((a, i) => (per[a] = [pads[i], pads[k + i]]));
      return [bl.padWithMode(x!, per, mode as bl.PadMode, value)];
    },
  });
};

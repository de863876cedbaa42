// Registers every command, in the order `backlight --help` lists them.
import { registerCommand } from '../registry.ts';
import { demoCommand } from './demo.ts';
import { embedCommand } from './embed.ts';
import { evaluateCommand } from './evaluate.ts';
import { explainCommand } from './explain.ts';
import { influenceCommand } from './influence.ts';
import { layersCommand } from './layers.ts';
import { modelsCommand } from './models.ts';
import { predictCommand } from './predict.ts';
import { trainCommand } from './train.ts';
import { visualizeCommand } from './visualize.ts';

for (const c of [modelsCommand, layersCommand, predictCommand, explainCommand, evaluateCommand, trainCommand, influenceCommand, visualizeCommand, embedCommand, demoCommand]) registerCommand(c);

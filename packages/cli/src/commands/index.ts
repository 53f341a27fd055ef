// The command table. To add a command, write commands/<name>.ts exporting a Command and add one line here.
import type { Command } from '../command.js';
import { allocateCommand } from './allocate.js';
import { allocateStudyCommand } from './allocate-study.js';
import { anyprecCommand } from './anyprec.js';
import { convertCommand } from './convert.js';
import { decodeCommand } from './decode.js';
import { encodeCommand } from './encode.js';
import { evalCommand } from './eval.js';
import { exportLayerCommand } from './export-layer.js';
import { finetuneCommand } from './finetune.js';
import { formatsCommand } from './formats.js';
import { generateCommand } from './generate.js';
import { inspectCommand } from './inspect.js';
import { kvCommand } from './kv.js';
import { qdecCommand } from './qdec.js';
import { quantizeCommand } from './quantize.js';
import { quantizeLayerCommand } from './quantize-layer.js';
import { simCommand } from './sim.js';
import { spansCommand } from './spans.js';
import { studyCommand } from './study.js';
import { trainLstmCommand } from './train-lstm.js';

export const commands: Command[] = [
  evalCommand, generateCommand, inspectCommand, convertCommand, formatsCommand, quantizeCommand, quantizeLayerCommand, exportLayerCommand, studyCommand, simCommand, allocateCommand, encodeCommand, anyprecCommand, decodeCommand, qdecCommand,
  kvCommand, spansCommand,
  allocateStudyCommand,
  finetuneCommand,
  trainLstmCommand,
];

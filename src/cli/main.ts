#!/usr/bin/env node
import { Command } from 'commander';
import { registerStatusCommand } from './commands/status.js';
import { registerSubmitCommand } from './commands/submit.js';
import { registerSynthCommand } from './commands/synth.js';

const program = new Command('streamseg')
  .description('Segment video at scale: per-scene LoRA adapter retrieval and merging on BullMQ + ONNX Runtime')
  .version('0.1.0');

registerSubmitCommand(program);
registerStatusCommand(program);
registerSynthCommand(program);

await program.parseAsync(process.argv);

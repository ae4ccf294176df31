#!/usr/bin/env node
import { Command } from 'commander';
import { registerSynthCommand } from './commands/synth.js';

const program = new Command('streamseg')
  .description('Segment video at scale: per-scene LoRA adapter retrieval and merging on BullMQ + ONNX Runtime')
  .version('0.1.0');

registerSynthCommand(program);

await program.parseAsync(process.argv);

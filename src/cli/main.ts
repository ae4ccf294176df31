#!/usr/bin/env node
import { Command } from 'commander';
import { registerAdaptersCommand } from './commands/adapters.js';
import { registerEvalCommand } from './commands/eval.js';
import { registerModelCommand } from './commands/model.js';
import { registerRoleCommands } from './commands/role.js';
import { registerRunCommand } from './commands/run.js';
import { registerScoreCommand } from './commands/score.js';
import { registerServeCommand } from './commands/serve.js';
import { registerStatusCommand } from './commands/status.js';
import { registerStopCommand } from './commands/stop.js';
import { registerSubmitCommand } from './commands/submit.js';
import { registerSynthCommand } from './commands/synth.js';
import { registerWatchCommand } from './commands/watch.js';

const program = new Command('streamseg')
  .description('Segment video at scale: per-scene LoRA adapter retrieval and merging on BullMQ + ONNX Runtime')
  .version('0.1.0');

registerRunCommand(program);
registerRoleCommands(program);
registerSubmitCommand(program);
registerStatusCommand(program);
registerStopCommand(program);
registerWatchCommand(program);
registerServeCommand(program);
registerSynthCommand(program);
registerAdaptersCommand(program);
registerModelCommand(program);
registerEvalCommand(program);
registerScoreCommand(program);

await program.parseAsync(process.argv);

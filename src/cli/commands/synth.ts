import type { Command } from 'commander';

// Placeholder until the synthetic-world renderer lands (issue 4).
export function registerSynthCommand(program: Command): void {
  program.command('synth').description('render a synthetic street video (not yet implemented)').action(() => {
    throw new Error('synth is not implemented yet');
  });
}

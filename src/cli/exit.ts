import { errorLine } from '../shared/errors/index.js';

/** Prints the one-line reason and exits non-zero: what every command does on failure. */
export function exitWithError(error: unknown): never {
  process.stderr.write(`streamseg: ${errorLine(error)}\n`);
  process.exit(1);
}

/** Runs `close` once on SIGINT/SIGTERM, then exits; a second signal exits at once. */
export function closeOnSignals(close: () => Promise<void>): void {
  let closing = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (closing) process.exit(130);
    closing = true;
    process.stderr.write(`streamseg: ${signal}, shutting down\n`);
    close().then(
      () => process.exit(0),
      (error: unknown) => exitWithError(error),
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

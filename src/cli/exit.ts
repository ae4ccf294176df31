import { ConfigError, ErrorCode, errorLine } from '../shared/errors/index.js';

/**
 * The lines a failed command prints: one reason, or one line per bad setting of a configuration
 * error (as the README promises), each `streamseg: CODE: ...`.
 */
export function errorLines(error: unknown): string[] {
  if (error instanceof ConfigError) return error.problems.map((problem) => `streamseg: ${error.code}: ${problem}`);
  return [`streamseg: ${errorLine(error)}`];
}

/** Prints the reason (see errorLines) and exits non-zero: what every command does on failure. */
export function exitWithError(error: unknown): never {
  process.stderr.write(`${errorLines(error).join('\n')}\n`);
  process.exit(1);
}

/**
 * Runs `close` once on SIGINT/SIGTERM, then exits 0; a second signal exits at once (130). When
 * `graceMs` is given and `close` has not finished by then, the process exits 1 with a line saying
 * so: whatever it still held is recovered by other processes as stalled jobs.
 */
export function closeOnSignals(close: () => Promise<void>, graceMs?: number): void {
  let closing = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (closing) process.exit(130);
    closing = true;
    process.stderr.write(`streamseg: ${signal}, shutting down\n`);
    if (graceMs !== undefined) {
      setTimeout(() => {
        process.stderr.write(
          `streamseg: ${ErrorCode.SHUTDOWN_GRACE}: still busy after ${graceMs} ms (STREAMSEG_SHUTDOWN_GRACE_MS); exiting, unfinished jobs will be recovered as stalled\n`,
        );
        process.exit(1);
      }, graceMs).unref();
    }
    close().then(
      () => process.exit(0),
      (error: unknown) => exitWithError(error),
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

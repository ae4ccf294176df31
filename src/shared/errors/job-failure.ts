import { UnrecoverableError } from 'bullmq';
import { ERROR_CATALOGUE, ErrorCode } from './error-codes.js';
import { StreamsegError, errorLine } from './streamseg-error.js';

/** The catalogue code of any thrown value: E_INTERNAL for anything streamseg did not raise on purpose. */
export function errorCodeOf(error: unknown): ErrorCode {
  return error instanceof StreamsegError ? error.code : ErrorCode.INTERNAL;
}

/** Whether another attempt may succeed, from the catalogue (an unknown error is retried). */
export function isRetryable(error: unknown): boolean {
  return ERROR_CATALOGUE[errorCodeOf(error)].retryable;
}

/**
 * What a queue worker throws for a failed job: an UnrecoverableError (BullMQ fails the job
 * without retrying) when the catalogue says no attempt can fix it, a plain Error (retried while
 * attempts are left) otherwise. `line` is the failed reason operators and `streamseg status`
 * see; it keeps the code (`E_CODE: message`).
 */
export function jobFailure(error: unknown, line: string = errorLine(error)): Error {
  return isRetryable(error) ? new Error(line, { cause: error }) : new UnrecoverableError(line);
}

/** Whether this attempt is the job's last: the error cannot be retried, or no attempt is left. */
export function isLastAttempt(error: unknown, job: { attemptsMade: number; opts: { attempts?: number } }): boolean {
  return !isRetryable(error) || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
}

import type { ErrorCode } from './error-codes.js';

/**
 * Base of every error streamseg raises on purpose. `code` is one of the catalogue's
 * (error-codes.ts), stable: tests, metrics and job failure reasons key on it; `message` is one
 * line a user can act on.
 */
export class StreamsegError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }

  /** The one-line form used for failed jobs and CLI exits: `E_CODE: message`. */
  toLine(): string {
    return `${this.code}: ${this.message}`;
  }
}

/** Renders any thrown value as one line, keeping a streamseg code when there is one. */
export function errorLine(error: unknown): string {
  if (error instanceof StreamsegError) return error.toLine();
  if (error instanceof Error) return error.message.split('\n')[0] ?? error.name;
  return String(error);
}

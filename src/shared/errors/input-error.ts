import type { ErrorCode } from './error-codes.js';
import { StreamsegError } from './streamseg-error.js';

/** The catalogue's E_INPUT_* codes. */
export type InputErrorCode = Extract<ErrorCode, `E_INPUT_${string}`>;

/** The submitted video cannot be processed; the message says what is wrong with it. */
export class InputError extends StreamsegError {
  constructor(code: InputErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

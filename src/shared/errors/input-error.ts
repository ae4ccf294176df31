import { StreamsegError } from './streamseg-error.js';

export type InputErrorCode =
  | 'E_INPUT_NOT_FOUND'
  | 'E_INPUT_DIRECTORY'
  | 'E_INPUT_NOT_FILE'
  | 'E_INPUT_NOT_VIDEO'
  | 'E_INPUT_NO_VIDEO_STREAM'
  | 'E_INPUT_EMPTY'
  | 'E_INPUT_DIMENSIONS'
  | 'E_INPUT_DECODE'
  | 'E_INPUT_URL_SCHEME'
  | 'E_INPUT_URL_INVALID'
  | 'E_INPUT_URL_DESTINATION';

/** The submitted video cannot be processed; the message says what is wrong with it. */
export class InputError extends StreamsegError {
  constructor(code: InputErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

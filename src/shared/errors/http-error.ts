import { StreamsegError } from './streamseg-error.js';

export type HttpErrorCode =
  | 'E_UNAUTHORIZED'
  | 'E_BAD_REQUEST'
  | 'E_NOT_FOUND'
  | 'E_VIDEO_UNKNOWN'
  | 'E_OUTPUT_NOT_READY'
  | 'E_UPLOAD_TOO_LARGE'
  | 'E_RANGE'
  | 'E_NOT_LIVE'
  | 'E_UNAVAILABLE'
  | 'E_ADAPTER_READ_ONLY';

/** A request the API refuses; `statusCode` is the HTTP status it answers with. */
export class HttpError extends StreamsegError {
  constructor(
    readonly statusCode: number,
    code: HttpErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

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
  | 'E_ADAPTER_READ_ONLY'
  | 'E_FORBIDDEN'
  | 'E_RATE_LIMITED'
  | 'E_TOO_MANY_VIDEOS';

/** A request the API refuses; `statusCode` is the HTTP status it answers with. */
export class HttpError extends StreamsegError {
  /** Sent as `Retry-After` (429, 503): when trying again may succeed. */
  readonly retryAfterSeconds?: number;

  constructor(
    readonly statusCode: number,
    code: HttpErrorCode,
    message: string,
    options?: { cause?: unknown; retryAfterSeconds?: number },
  ) {
    super(code, message, options);
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }
}

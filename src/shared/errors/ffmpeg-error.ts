import { StreamsegError } from './streamseg-error.js';
import { ErrorCode } from './error-codes.js';

/** ffmpeg or ffprobe failed or is missing; the message quotes its last stderr line. */
export class FfmpegError extends StreamsegError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.FFMPEG, message, options);
  }
}

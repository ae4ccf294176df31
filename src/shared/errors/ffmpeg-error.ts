import { StreamsegError } from './streamseg-error.js';

/** ffmpeg or ffprobe failed or is missing; the message quotes its last stderr line. */
export class FfmpegError extends StreamsegError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('E_FFMPEG', message, options);
  }
}

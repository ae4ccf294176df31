import { StreamsegError } from './streamseg-error.js';

export type FrameErrorCode = 'E_FRAME_MISSING' | 'E_FRAME_SIZE' | 'E_SOURCE_UNREADABLE';

/**
 * A frame's data in Redis is missing (expired, deleted) or not the size the video's facts say,
 * or the sink cannot decode a file's source frame itself.
 */
export class FrameError extends StreamsegError {
  constructor(code: FrameErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

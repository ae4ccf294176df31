import { StreamsegError } from './streamseg-error.js';

export type FrameErrorCode = 'E_FRAME_MISSING' | 'E_FRAME_SIZE';

/** A frame's data in Redis is missing (expired, deleted) or not the size the video's facts say. */
export class FrameError extends StreamsegError {
  constructor(code: FrameErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

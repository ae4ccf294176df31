import type { Queue } from 'bullmq';
import { ErrorCode, isErrorCode, StreamsegError } from '../shared/errors/index.js';
import type { VideoState, VideoStateStore } from '../shared/video-state.js';

export interface VideoWaitOptions {
  /** Called with every fresh state, e.g. to draw progress. */
  onUpdate?: (state: VideoState) => void;
  /** @defaultValue 250 */
  pollMs?: number;
}

/** How many of the frames queue's most recent failures are searched for this video's jobs, per poll. */
const RECENT_FRAME_FAILURES = 200;

/**
 * Resolves when the video is done, rejects with the recorded reason when any stage failed:
 * the producer and the sink mark the video failed themselves; a sink job failure is read from
 * its queue; a frames job that failed for good (its attempts spent: the sink would wait for its
 * frames forever) fails the video with that job's reason.
 */
export async function waitForVideo(
  videoId: string,
  states: VideoStateStore,
  queues: { videos: Queue; frames: Queue; sink: Queue },
  options: VideoWaitOptions = {},
): Promise<VideoState> {
  const pollMs = options.pollMs ?? 250;
  for (;;) {
    const state = await states.get(videoId);
    if (!state) throw new StreamsegError(ErrorCode.VIDEO_UNKNOWN, `no video ${videoId} in this Redis (expired or never submitted)`);
    options.onUpdate?.(state);
    if (state.status === 'done') return state;
    if (state.status === 'failed') throw videoFailure(state.error ?? 'failed');
    for (const queue of [queues.videos, queues.sink]) {
      const job = await queue.getJob(videoId);
      if (job && (await job.isFailed())) {
        const attemptsLeft = (job.opts.attempts ?? 1) > job.attemptsMade;
        if (!attemptsLeft) throw videoFailure(job.failedReason || `${queue.name} job failed`);
      }
    }
    if (!state.live) {
      const reason = await failedFramesReason(videoId, queues.frames);
      if (reason !== undefined) {
        // Recorded, so `status` and other watchers say failed too (a failed video stays failed).
        await states.markFailed(videoId, reason);
        throw videoFailure(reason);
      }
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/**
 * The recorded reason as an error. Stages record `CODE: message`; keep that code rather than
 * wrapping it, so the user reads one code (E_INPUT_NOT_VIDEO), not two.
 */
function videoFailure(reason: string): StreamsegError {
  const coded = /^(E_[A-Z0-9_]+): (.*)$/s.exec(reason);
  return coded && isErrorCode(coded[1]!) ? new StreamsegError(coded[1], coded[2]!) : new StreamsegError(ErrorCode.VIDEO_FAILED, reason);
}

/**
 * The reason of a frames job of this video that BullMQ moved to the failed set: it gets there only
 * when no attempt is left (`${videoId}-${firstFrameIndex}` ids). Undefined when there is none.
 */
async function failedFramesReason(videoId: string, frames: Queue): Promise<string | undefined> {
  const prefix = `${videoId}-`;
  const ids = await frames.getRanges(['failed'], 0, RECENT_FRAME_FAILURES - 1, false);
  const id = ids.find((candidate) => candidate.startsWith(prefix) && /^\d+$/.test(candidate.slice(prefix.length)));
  if (id === undefined) return undefined;
  const job = await frames.getJob(id);
  const reason = job?.failedReason || 'a frames job failed';
  return /^E_[A-Z0-9_]+: /.test(reason) ? reason : `${ErrorCode.FRAMES_FAILED}: segmenting frames failed: ${reason}`;
}

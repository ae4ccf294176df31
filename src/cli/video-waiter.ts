import type { Queue } from 'bullmq';
import { StreamsegError } from '../shared/errors/index.js';
import type { VideoState, VideoStateStore } from '../shared/video-state.js';

export interface VideoWaitOptions {
  /** Called with every fresh state, e.g. to draw progress. */
  onUpdate?: (state: VideoState) => void;
  /** @defaultValue 250 */
  pollMs?: number;
}

/**
 * Resolves when the video is done, rejects with the recorded reason when any stage failed:
 * the producer marks the video failed itself; a sink job failure is read from its queue.
 */
export async function waitForVideo(
  videoId: string,
  states: VideoStateStore,
  queues: { videos: Queue; sink: Queue },
  options: VideoWaitOptions = {},
): Promise<VideoState> {
  const pollMs = options.pollMs ?? 250;
  for (;;) {
    const state = await states.get(videoId);
    if (!state) throw new StreamsegError('E_VIDEO_UNKNOWN', `no video ${videoId} in this Redis (expired or never submitted)`);
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
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/**
 * The recorded reason as an error. Stages record `CODE: message`; keep that code rather than
 * wrapping it, so the user reads one code (E_INPUT_NOT_VIDEO), not two.
 */
function videoFailure(reason: string): StreamsegError {
  const coded = /^(E_[A-Z0-9_]+): (.*)$/s.exec(reason);
  return coded ? new StreamsegError(coded[1]!, coded[2]!) : new StreamsegError('E_VIDEO_FAILED', reason);
}

import { abortableSleep } from '../../shared/abortable-sleep.js';
import { ErrorCode, StreamsegError } from '../../shared/errors/index.js';
import type { VideoProbeFacts, VideoState, VideoStateStore } from '../../shared/video-state.js';

/** A video's state once the producer has written its probe facts. */
export type ProbedState = VideoState & VideoProbeFacts;

function hasProbeFacts(state: VideoState): state is ProbedState {
  return (
    state.sourceWidth !== undefined &&
    state.sourceHeight !== undefined &&
    state.fps !== undefined &&
    state.inputWidth !== undefined &&
    state.inputHeight !== undefined &&
    state.letterbox !== undefined
  );
}

/**
 * The producer writes probe facts before any frame; until then there is nothing to size the
 * outputs by. Both assemblies (file and live) wait here; a vanished or failed video ends the wait.
 */
export async function waitForProbeFacts(states: VideoStateStore, videoId: string, signal?: AbortSignal): Promise<ProbedState> {
  for (;;) {
    signal?.throwIfAborted();
    const state = await states.get(videoId);
    if (!state) throw new StreamsegError(ErrorCode.VIDEO_GONE, `video ${videoId} is not in Redis (never submitted, deleted or expired)`);
    if (state.status === 'failed')
      throw new StreamsegError(ErrorCode.VIDEO_FAILED, `video ${videoId} failed (${state.error ?? 'no reason'}); nothing to assemble`);
    if (hasProbeFacts(state)) return state;
    await abortableSleep(100, signal);
  }
}

/**
 * The video's state while frames are assembled, re-read now and then by both assemblies: a
 * vanished or failed video stops the sink.
 */
export async function readRunningVideo(states: VideoStateStore, videoId: string): Promise<VideoState> {
  const state = await states.get(videoId);
  if (!state) throw new StreamsegError(ErrorCode.VIDEO_GONE, `video ${videoId} vanished from Redis (deleted or expired); sink stopped`);
  if (state.status === 'failed') throw new StreamsegError(ErrorCode.VIDEO_FAILED, `video ${videoId} failed (${state.error ?? 'no reason'}); sink stopped`);
  return state;
}

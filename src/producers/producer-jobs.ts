import type { JobsOptions } from 'bullmq';
import { ErrorCode, errorCodeOf, errorLine, isLastAttempt } from '../shared/errors/index.js';
import type { AssembleVideoJob, DecodeVideoJob, SegmentFramesJob } from '../shared/job-schemas.js';
import type { Logger } from '../shared/logger.js';
import { jobFailures } from '../shared/metrics.js';
import { JobName, QueueName } from '../shared/queues.js';
import type { VideoStateStore } from '../shared/video-state.js';

/**
 * The steps the file producer (ProducerService) and the live producer (LiveProducerService)
 * share: the jobs they add and what a failed decode means for the video.
 */

/** The part of a BullMQ Job the producer uses (tests can hand in a plain object). */
export interface DecodeJobHandle {
  data: unknown;
  attemptsMade: number;
  opts: { attempts?: number };
  updateProgress(progress: DecodeProgress): Promise<void>;
}

export interface DecodeProgress {
  decodedFrames: number;
  expectedFrames: number;
}

/** The part of a BullMQ Queue the producer uses. */
export interface JobQueue {
  add(name: string, data: unknown, opts?: JobsOptions): Promise<unknown>;
}

/** Retries of a sink job and of a file's frames jobs. */
export function retryOptions(attempts: number): JobsOptions {
  return { attempts, backoff: { type: 'exponential', delay: 1000 }, removeOnFail: { age: 7 * 24 * 3600 } };
}

/** Hands the video to a sink. jobId = videoId: a retried decode finds the job already there, so one sink owns the video. */
export async function addSinkJob(queue: JobQueue, job: AssembleVideoJob, attempts: number): Promise<void> {
  await queue.add(JobName.AssembleVideo, job, { jobId: job.videoId, ...retryOptions(attempts), removeOnComplete: { age: 24 * 3600, count: 1000 } });
}

/** A frames job for frames of one scene, with the video's vocabulary and retrieval options. */
export function framesJob(
  data: DecodeVideoJob,
  scene: { index: number; startFrame: number },
  frames: SegmentFramesJob['frames'],
  input: { width: number; height: number },
): SegmentFramesJob {
  return {
    videoId: data.videoId,
    scene: scene.index,
    sceneStartFrame: scene.startFrame,
    frames,
    input,
    ...(data.options.classes ? { classes: data.options.classes } : {}),
    ...(data.options.retrieval ? { retrieval: data.options.retrieval } : {}),
  };
}

/**
 * Adds a frames job. Its id is deterministic (`<videoId>-<first frame>`): a retried decode
 * re-adding it is a no-op while the job is kept. A live frame is worth little after a second,
 * so its job retries fast and is kept briefly.
 */
export async function addFramesJob(queue: JobQueue, job: SegmentFramesJob, attempts: number, kind: 'file' | 'live'): Promise<void> {
  const jobId = `${job.videoId}-${job.frames[0]!.index}`;
  const options: JobsOptions =
    kind === 'file'
      ? { jobId, ...retryOptions(attempts), removeOnComplete: { age: 3600, count: 10_000 } }
      : { jobId, attempts, backoff: { type: 'fixed', delay: 100 }, removeOnComplete: { age: 600, count: 1000 }, removeOnFail: { age: 24 * 3600 } };
  await queue.add(JobName.SegmentFrames, job, options);
}

/**
 * Records a failed decode: counts it, and marks the video failed only when nothing will retry
 * it, so a watcher does not report a failure the next attempt fixes. A failure elsewhere
 * (E_VIDEO_FAILED) keeps its own reason, a vanished video (E_VIDEO_GONE) is not brought back,
 * and a stop requested through the signal (shutdown, cancel) is no failure at all.
 * Returns whether this attempt was the last.
 */
export async function recordDecodeFailure(
  deps: { states: VideoStateStore; log: Logger },
  videoId: string,
  job: DecodeJobHandle,
  error: unknown,
  what: string,
  signal?: AbortSignal,
): Promise<boolean> {
  const final = isLastAttempt(error, job);
  if (signal?.aborted) return final;
  const code = errorCodeOf(error);
  jobFailures.inc({ queue: QueueName.Videos, code });
  deps.log.warn({ err: error, final }, `${what} failed`);
  if (!final || code === ErrorCode.VIDEO_FAILED || code === ErrorCode.VIDEO_GONE) return final;
  await deps.states.markFailed(videoId, errorLine(error)).catch((cause: unknown) => deps.log.error({ err: cause }, 'cannot mark video failed'));
  return final;
}

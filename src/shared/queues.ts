/**
 * Every queue and job name, in one place. A worker registers a handler for exactly the
 * job names of its queue; `assertHandlersComplete` fails start-up otherwise.
 */
export const QueueName = {
  /** One job per submitted video; the producer probes, decodes and enqueues frames. */
  Videos: 'videos',
  /** Batches of consecutive frames of one scene; segmentation workers run the model. */
  Frames: 'frames',
  /** One job per video (jobId = videoId, so one owner); the sink writes its outputs. */
  Sink: 'sink',
} as const;
export type QueueName = (typeof QueueName)[keyof typeof QueueName];

export const JobName = {
  DecodeVideo: 'decode-video',
  SegmentFrames: 'segment-frames',
  AssembleVideo: 'assemble-video',
} as const;
export type JobName = (typeof JobName)[keyof typeof JobName];

export const JOBS_BY_QUEUE: Record<QueueName, readonly JobName[]> = {
  [QueueName.Videos]: [JobName.DecodeVideo],
  [QueueName.Frames]: [JobName.SegmentFrames],
  [QueueName.Sink]: [JobName.AssembleVideo],
};

/** All BullMQ queues share this prefix so several deployments can share one Redis. */
export const QUEUE_PREFIX = 'streamseg';

export function assertHandlersComplete(queue: QueueName, handled: readonly string[]): void {
  const expected = JOBS_BY_QUEUE[queue];
  const missing = expected.filter((name) => !handled.includes(name));
  const unknown = handled.filter((name) => !expected.includes(name as JobName));
  if (missing.length > 0 || unknown.length > 0 || new Set(handled).size !== handled.length) {
    throw new Error(`queue ${queue}: handlers do not match its jobs (missing: ${missing.join(',') || '-'}; unknown: ${unknown.join(',') || '-'})`);
  }
}

import { isCluster, type RedisConnection } from './redis.js';

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

/**
 * The prefix on a Redis Cluster: hash-tagged, so each queue's keys (and BullMQ's Lua scripts
 * over them) share one slot, as BullMQ requires. Frames and results live in per-video keys
 * spread over the shards; only the small job records share this slot.
 */
export const CLUSTER_QUEUE_PREFIX = '{streamseg}';

/** The BullMQ prefix for queues on `redis`: QUEUE_PREFIX on one server, CLUSTER_QUEUE_PREFIX on a cluster. */
export function queuePrefixFor(redis: RedisConnection): string {
  return isCluster(redis) ? CLUSTER_QUEUE_PREFIX : QUEUE_PREFIX;
}

export function assertHandlersComplete(queue: QueueName, handled: readonly string[]): void {
  const expected = JOBS_BY_QUEUE[queue];
  const missing = expected.filter((name) => !handled.includes(name));
  const unknown = handled.filter((name) => !expected.includes(name as JobName));
  if (missing.length > 0 || unknown.length > 0 || new Set(handled).size !== handled.length) {
    throw new Error(`queue ${queue}: handlers do not match its jobs (missing: ${missing.join(',') || '-'}; unknown: ${unknown.join(',') || '-'})`);
  }
}

import type { Queue } from 'bullmq';
import { ErrorCode, HttpError } from '../../shared/errors/index.js';
import type { FrameStore } from '../../shared/frame-store.js';
import type { Logger } from '../../shared/logger.js';
import { framesDropped } from '../../shared/metrics.js';
import { queuePrefixFor } from '../../shared/queues.js';
import { scanKeys, type RedisConnection } from '../../shared/redis.js';
import type { VideoStateStore } from '../../shared/video-state.js';
import type { DedupRepository } from '../repositories/dedup.repository.js';
import type { UploadRepository } from '../repositories/upload.repository.js';
import type { VideoIndexRepository } from '../repositories/video-index.repository.js';

export interface CancelResult {
  id: string;
  /** The status the video had when the cancel arrived. */
  previousStatus: string;
  /** Jobs removed from the queues (decode, frames, sink). */
  removedJobs: number;
  /** Redis keys of the video removed. */
  removedKeys: number;
  /** Jobs still running when the wait ran out; their keys expire with the frame TTL. */
  stillActive: string[];
}

export interface CancelTuning {
  /** Longest wait for a stage to notice the cancel and let go of the video. @defaultValue 30000 */
  waitMs?: number;
  /** @defaultValue 100 */
  pollMs?: number;
}

/**
 * Cancels a video and cleans up after it. The order matters: (1) a tombstone the producers
 * watch for, and the video marked failed (E_CANCELLED) so the sink stops; (2) the decode job
 * removed, or waited for until its producer has stopped (then no frames job can appear any
 * more); (3) pending frames jobs removed, running ones waited for (no result can appear any
 * more); (4) the sink job waited for and removed; (5) every key of the video deleted, its
 * dedup hash and upload freed. The tombstone stays (with the frame TTL) so status shows
 * "cancelled".
 */
export class VideoCancelService {
  private readonly waitMs: number;
  private readonly pollMs: number;

  constructor(
    private readonly deps: {
      redis: RedisConnection;
      states: VideoStateStore;
      frames: FrameStore;
      queues: { videos: Queue; frames: Queue; sink: Queue };
      dedup: DedupRepository;
      index: VideoIndexRepository;
      uploads: UploadRepository;
      logger: Logger;
    },
    tuning: CancelTuning = {},
  ) {
    this.waitMs = tuning.waitMs ?? 30_000;
    this.pollMs = tuning.pollMs ?? 100;
  }

  async cancel(videoId: string): Promise<CancelResult> {
    const { states, queues, frames, dedup, index, uploads, logger } = this.deps;
    const state = await states.get(videoId);
    const decodeJob = await queues.videos.getJob(videoId);
    if (!state && !decodeJob) throw new HttpError(404, ErrorCode.VIDEO_UNKNOWN, `no video ${videoId} (never submitted, expired, or already cancelled)`);
    const previousStatus = state?.status ?? 'unknown';
    const log = logger.child({ videoId });
    const deadline = Date.now() + this.waitMs;
    const stillActive: string[] = [];

    if (previousStatus !== 'done') {
      await states.markCancelled(videoId);
      if (state && state.status !== 'failed') await states.markFailed(videoId, `${ErrorCode.CANCELLED}: cancelled through the API`);
    }
    const input = decodeJob?.data as { input?: { kind?: string; path?: string } } | undefined;
    const uploaded = input?.input?.kind === 'file' && input.input.path && uploads.owns(input.input.path) ? input.input.path : undefined;

    let removedJobs = 0;
    removedJobs += await this.removeWhenIdle(queues.videos, [videoId], deadline, stillActive);
    removedJobs += await this.removeWhenIdle(queues.frames, await this.frameJobIds(videoId), deadline, stillActive);
    // A frames job may have been added while the producer was stopping: sweep once more.
    removedJobs += await this.removeWhenIdle(queues.frames, await this.frameJobIds(videoId), deadline, stillActive);
    removedJobs += await this.removeWhenIdle(queues.sink, [videoId], deadline, stillActive);

    if (state && previousStatus !== 'done') {
      const announced = state.totalFrames ?? state.decodedFrames;
      const dropped = Math.max(0, announced - state.sinkFrames);
      if (dropped > 0) framesDropped.inc({ reason: 'cancelled' }, dropped);
    }
    await dedup.release(videoId);
    const removedKeys = await frames.deleteVideo(videoId);
    await index.remove(videoId);
    if (uploaded) await uploads.discard(uploaded);
    if (stillActive.length > 0) log.warn({ stillActive }, 'jobs still active after the cancel wait; their keys expire with the frame TTL');
    log.info({ previousStatus, removedJobs, removedKeys }, 'video cancelled');
    return { id: videoId, previousStatus, removedJobs, removedKeys, stillActive };
  }

  /** Ids of the video's frames jobs (`<videoId>-<first frame>`), whatever their state. */
  private async frameJobIds(videoId: string): Promise<string[]> {
    const prefix = `${queuePrefixFor(this.deps.redis)}:${this.deps.queues.frames.name}:`;
    const pattern = new RegExp(`^${escapeRegExp(prefix)}${escapeRegExp(videoId)}-\\d+$`);
    const keys = await scanKeys(this.deps.redis, `${escapeGlob(prefix)}${escapeGlob(videoId)}-*`, 1000);
    return keys.filter((key) => pattern.test(key)).map((key) => key.slice(prefix.length));
  }

  /** Removes each job once it is not running (a running job's lock refuses removal); returns how many went. */
  private async removeWhenIdle(queue: Queue, jobIds: string[], deadline: number, stillActive: string[]): Promise<number> {
    let removed = 0;
    let pending = jobIds;
    for (;;) {
      const left: string[] = [];
      for (const id of pending) {
        if ((await queue.remove(id)) === 1) removed++;
        else if (await queue.getJob(id)) left.push(id);
      }
      pending = left;
      if (pending.length === 0) return removed;
      if (Date.now() >= deadline) {
        stillActive.push(...pending.map((id) => `${queue.name}:${id}`));
        return removed;
      }
      await new Promise((r) => setTimeout(r, this.pollMs));
    }
  }
}

/** `text` as a literal in a SCAN MATCH pattern (`*`, `?`, `[` and `\\` are its wildcards and escape). */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

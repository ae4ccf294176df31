import { ErrorCode, StreamsegError } from '../shared/errors/index.js';
import type { VideoStateStore } from '../shared/video-state.js';
import { abortableSleep } from '../shared/abortable-sleep.js';

export interface BackpressureLimits {
  /** Most frames of the video in Redis: decoded, and not yet checkpointed by the sink. */
  highWaterFrames: number;
  /** Most bytes those frames may hold in Redis. */
  highWaterBytes: number;
  /** Bytes one frame holds in Redis (source + model input). */
  bytesPerFrame: number;
  /** How often the sink's progress is re-read while paused. @defaultValue 50 */
  pollMs?: number;
}

/**
 * Bytes Redis' allocator (jemalloc, Redis' default on Linux) takes for a value of `bytes`: sizes
 * past 16 KiB are rounded up to one of four classes per power of two, so a 1280x720 RGB frame
 * (2.64 MiB) takes 3 MiB. Counting raw bytes let Redis hold 14% more than the high-water mark.
 */
export function allocatedBytes(bytes: number): number {
  if (bytes <= 16 * 1024) return bytes;
  const step = 2 ** (Math.floor(Math.log2(bytes - 1)) - 2);
  return Math.ceil(bytes / step) * step;
}

/** Most frames of one video the limits let Redis hold at once (never less than one). */
export function maxFramesInRedis(limits: Pick<BackpressureLimits, 'highWaterFrames' | 'highWaterBytes' | 'bytesPerFrame'>): number {
  return Math.max(1, Math.min(limits.highWaterFrames, Math.floor(limits.highWaterBytes / limits.bytesPerFrame)));
}

/**
 * Holds the decoder back while too much of one video waits in Redis, so memory stays bounded
 * however slow the workers are. In flight = frames decoded − frames the sink has checkpointed
 * (only then are a frame's data deleted; frames written since still wait for the segment to
 * close). The checkpoint only grows, so while the last known count already leaves room no
 * Redis round trip is needed: the gate reads Redis only when it may have to wait.
 */
export class BackpressureGate {
  private freedFrames: number;
  private readonly pollMs: number;
  private readonly maxInFlight: number;

  constructor(
    private readonly states: VideoStateStore,
    private readonly videoId: string,
    limits: BackpressureLimits,
    initialCheckpointFrames = 0,
  ) {
    this.freedFrames = initialCheckpointFrames;
    this.pollMs = limits.pollMs ?? 50;
    this.maxInFlight = maxFramesInRedis(limits);
  }

  /**
   * Resolves once frame `decodedFrames` (0-based: that many are in flight or done) may be
   * stored. `beforeWait` runs once before pausing: the producer enqueues its partial batch
   * there, or the sink would wait for frames nobody was asked to segment. Returns ms waited.
   * Throws when the video fails elsewhere or vanishes while paused.
   */
  async admit(decodedFrames: number, beforeWait: () => Promise<void>, signal?: AbortSignal): Promise<number> {
    if (!this.mustWait(decodedFrames)) return 0;
    await beforeWait();
    const started = performance.now();
    for (;;) {
      signal?.throwIfAborted();
      const state = await this.states.get(this.videoId);
      if (!state) {
        throw new StreamsegError(ErrorCode.VIDEO_GONE, `video ${this.videoId} vanished from Redis (deleted or expired) while decoding; decoding stopped`);
      }
      if (state.status === 'failed') {
        throw new StreamsegError(ErrorCode.VIDEO_FAILED, `video ${this.videoId} failed in another stage (${state.error ?? 'no reason'}); decoding stopped`);
      }
      this.freedFrames = Math.max(this.freedFrames, state.checkpointFrames);
      if (!this.mustWait(decodedFrames)) return performance.now() - started;
      await abortableSleep(this.pollMs, signal);
    }
  }

  private mustWait(decodedFrames: number): boolean {
    // One frame is always allowed in flight, even one larger than highWaterBytes, or a huge
    // frame size would stall the video forever (maxFramesInRedis is at least 1).
    return decodedFrames - this.freedFrames >= this.maxInFlight;
  }
}

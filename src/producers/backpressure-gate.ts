import { ErrorCode, StreamsegError } from '../shared/errors/index.js';
import type { VideoStateStore } from '../shared/video-state.js';
import { abortableSleep } from '../shared/abortable-sleep.js';

export interface BackpressureLimits {
  /** Most frames of the video decoded but not yet written by the sink. */
  highWaterFrames: number;
  /** Most bytes those frames may hold in Redis. */
  highWaterBytes: number;
  /** Bytes one frame holds in Redis (source + model input). */
  bytesPerFrame: number;
  /** How often the sink's progress is re-read while paused. @defaultValue 50 */
  pollMs?: number;
}

/**
 * Holds the decoder back while too much of one video waits for the sink, so memory stays
 * bounded however slow the workers are. In flight = frames decoded − frames the sink has
 * written. The sink count only grows, so while the last known count already leaves room no
 * Redis round trip is needed: the gate reads Redis only when it may have to wait.
 */
export class BackpressureGate {
  private sinkFrames: number;
  private readonly pollMs: number;

  constructor(
    private readonly states: VideoStateStore,
    private readonly videoId: string,
    private readonly limits: BackpressureLimits,
    initialSinkFrames = 0,
  ) {
    this.sinkFrames = initialSinkFrames;
    this.pollMs = limits.pollMs ?? 50;
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
      this.sinkFrames = Math.max(this.sinkFrames, state.sinkFrames);
      if (!this.mustWait(decodedFrames)) return performance.now() - started;
      await abortableSleep(this.pollMs, signal);
    }
  }

  private mustWait(decodedFrames: number): boolean {
    const inFlight = decodedFrames - this.sinkFrames;
    const { highWaterFrames, highWaterBytes, bytesPerFrame } = this.limits;
    // One frame is always allowed in flight, even one larger than highWaterBytes, or a huge
    // frame size would stall the video forever.
    return inFlight > 0 && (inFlight >= highWaterFrames || (inFlight + 1) * bytesPerFrame > highWaterBytes);
  }
}

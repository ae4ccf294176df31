import type { RedisConnection } from './redis.js';
import { liveKeys, videoKeys } from './redis-keys.js';

/** The live outputs a video asked for besides HLS. */
export interface LiveOutputRequest {
  restreamUrl?: string;
}

/**
 * What producer and sink tell each other about a live video's frames, besides the frames
 * themselves: when each frame was captured (for the latency of each record) and which indices
 * were dropped, so the sink's reorder buffer steps over them instead of waiting. Each drop also
 * wakes the sink (the ready list the workers push to) and counts in the video's `droppedFrames`.
 */
export class LiveFrameLog {
  constructor(
    private readonly redis: RedisConnection,
    /** Lifetime of every key, refreshed on write. */
    private readonly ttlSeconds: number,
  ) {}

  async recordCapture(videoId: string, index: number, capturedAtMs: number): Promise<void> {
    const { capture } = liveKeys(videoId);
    await this.redis.multi().hset(capture, String(index), String(capturedAtMs)).expire(capture, this.ttlSeconds).exec();
  }

  /** Marks frames dropped (never segmented): the sink emits a gap instead of waiting for them. */
  async markDropped(videoId: string, indices: readonly number[]): Promise<void> {
    if (indices.length === 0) return;
    const { dropped } = liveKeys(videoId);
    const keys = videoKeys(videoId);
    const members = indices.flatMap((i) => [i, String(i)]);
    await this.redis
      .multi()
      .zadd(dropped, ...members)
      .expire(dropped, this.ttlSeconds)
      .hincrby(keys.meta, 'droppedFrames', indices.length)
      .rpush(keys.ready, ...indices.map((i) => `d${i}`))
      .expire(keys.ready, this.ttlSeconds)
      .exec();
  }

  /** Counts frames the sink itself gave up on (lost) in the video's `droppedFrames`. */
  async countLost(videoId: string, frames: number): Promise<void> {
    if (frames > 0) await this.redis.hincrby(videoKeys(videoId).meta, 'droppedFrames', frames);
  }

  /** Dropped indices in [from, to). */
  async droppedBetween(videoId: string, from: number, to: number): Promise<number[]> {
    if (to <= from) return [];
    const found = await this.redis.zrangebyscore(liveKeys(videoId).dropped, from, to - 1);
    return found.map(Number);
  }

  /** Capture times of the given frames (null where unknown). */
  async captureTimes(videoId: string, indices: readonly number[]): Promise<(number | null)[]> {
    if (indices.length === 0) return [];
    const values = await this.redis.hmget(liveKeys(videoId).capture, ...indices.map(String));
    return values.map((v) => (v === null ? null : Number(v)));
  }

  /** Forgets what was recorded for frames below `index` (the sink has passed them). */
  async forgetBelow(videoId: string, index: number, emitted: readonly number[]): Promise<void> {
    const { dropped, capture } = liveKeys(videoId);
    const tx = this.redis.multi().zremrangebyscore(dropped, '-inf', `(${index}`);
    if (emitted.length > 0) tx.hdel(capture, ...emitted.map(String));
    await tx.exec();
  }

  async setOutputs(videoId: string, outputs: LiveOutputRequest): Promise<void> {
    await this.redis.set(liveKeys(videoId).outputs, JSON.stringify(outputs), 'EX', this.ttlSeconds);
  }

  async getOutputs(videoId: string): Promise<LiveOutputRequest> {
    const raw = await this.redis.get(liveKeys(videoId).outputs);
    if (!raw) return {};
    const parsed = JSON.parse(raw) as { restreamUrl?: unknown };
    return typeof parsed.restreamUrl === 'string' ? { restreamUrl: parsed.restreamUrl } : {};
  }

  /**
   * Refreshes the TTL of the keys a live video keeps for its whole life (state, scenes, outputs):
   * they are written once, and a stream running longer than the TTL must not lose them.
   */
  async keepAlive(videoId: string): Promise<void> {
    const keys = videoKeys(videoId);
    const live = liveKeys(videoId);
    await this.redis
      .multi()
      .expire(keys.meta, this.ttlSeconds)
      .expire(keys.scenes, this.ttlSeconds)
      .expire(live.outputs, this.ttlSeconds)
      .expire(keys.stream, this.ttlSeconds)
      .exec();
  }

  async requestStop(videoId: string): Promise<void> {
    await this.redis.set(liveKeys(videoId).stop, String(Date.now()), 'EX', this.ttlSeconds);
  }

  async stopRequested(videoId: string): Promise<boolean> {
    return (await this.redis.exists(liveKeys(videoId).stop)) === 1;
  }
}

import { scanKeys, type RedisConnection } from './redis.js';
import { videoKeys } from './redis-keys.js';

/** What a segmentation worker records for one frame, next to its mask. */
export interface FrameResult {
  index: number;
  timestampMs: number;
  scene: number;
  /** Adapters fed to the model for this frame and their merge weights; empty = base model. */
  adapters: { name: string; weight: number }[];
  /** Whether the merged adapter came from the cache (null when no adapter was used). */
  cacheHit: boolean | null;
  /**
   * The confidence guard's decision for the scene, when it ran: `kept` the retrieved adapters,
   * or fell back to the `base` model (then `adapters` is empty).
   */
  guard?: 'kept' | 'base';
  inferenceMs: number;
  workerId: string;
}

/**
 * Binary frame data of every video in Redis. Pixels are raw byte strings, never JSON or
 * base64; every key carries a TTL so a video abandoned mid-way cannot leak memory.
 */
export class FrameStore {
  constructor(
    private readonly redis: RedisConnection,
    /** Lifetime of each frame key, seconds. */
    private readonly ttlSeconds: number,
  ) {}

  async putFrame(videoId: string, index: number, source: Buffer, input: Buffer): Promise<void> {
    await this.putFrames(videoId, [{ index, source, input }]);
  }

  /**
   * Stores the model input and, unless the sink decodes the file itself, the source of several
   * frames in one transaction (one round trip).
   */
  async putFrames(videoId: string, frames: readonly { index: number; source?: Buffer; input: Buffer }[]): Promise<void> {
    if (frames.length === 0) return;
    const keys = videoKeys(videoId);
    const tx = this.redis.multi();
    for (const { index, source, input } of frames) {
      if (source) tx.set(keys.source(index), source, 'EX', this.ttlSeconds);
      tx.set(keys.input(index), input, 'EX', this.ttlSeconds);
    }
    await tx.exec();
  }

  /** Model inputs of several frames in one round trip; null where a frame is missing. */
  async getInputs(videoId: string, indices: readonly number[]): Promise<(Buffer | null)[]> {
    const keys = videoKeys(videoId);
    return this.redis.mgetBuffer(...indices.map((i) => keys.input(i)));
  }

  async getSource(videoId: string, index: number): Promise<Buffer | null> {
    return this.redis.getBuffer(videoKeys(videoId).source(index));
  }

  /** Source frames of several frames in one round trip; null where one is missing. */
  async getSources(videoId: string, indices: readonly number[]): Promise<(Buffer | null)[]> {
    if (indices.length === 0) return [];
    const keys = videoKeys(videoId);
    return this.redis.mgetBuffer(...indices.map((i) => keys.source(i)));
  }

  /** Stores masks and records of a batch atomically, then wakes the sink. */
  async putResults(videoId: string, results: readonly { mask: Buffer; record: FrameResult }[]): Promise<void> {
    const keys = videoKeys(videoId);
    const tx = this.redis.multi();
    for (const { mask, record } of results) {
      tx.set(keys.mask(record.index), mask, 'EX', this.ttlSeconds);
      tx.set(keys.result(record.index), JSON.stringify(record), 'EX', this.ttlSeconds);
    }
    tx.rpush(keys.ready, ...results.map((r) => String(r.record.index)));
    tx.expire(keys.ready, this.ttlSeconds);
    await tx.exec();
  }

  async getResult(videoId: string, index: number): Promise<{ mask: Buffer; record: FrameResult } | null> {
    const [result] = await this.getResults(videoId, [index]);
    return result ?? null;
  }

  /** Masks and records of several frames in one round trip; null where a frame's result is not (yet) there. */
  async getResults(videoId: string, indices: readonly number[]): Promise<({ mask: Buffer; record: FrameResult } | null)[]> {
    if (indices.length === 0) return [];
    const keys = videoKeys(videoId);
    const values = await this.redis.mgetBuffer(...indices.flatMap((i) => [keys.mask(i), keys.result(i)]));
    return indices.map((_, k) => {
      const mask = values[2 * k];
      const record = values[2 * k + 1];
      return mask && record ? { mask, record: JSON.parse(record.toString('utf8')) as FrameResult } : null;
    });
  }

  /**
   * Blocks up to `timeoutSeconds` until some worker reports finished frames, then drains
   * the notifications. The sink checks results itself; this only avoids busy polling.
   */
  async waitForResults(videoId: string, timeoutSeconds: number, blocking: RedisConnection): Promise<void> {
    const keys = videoKeys(videoId);
    const popped = await blocking.blpop(keys.ready, timeoutSeconds);
    if (popped) await this.redis.del(keys.ready);
  }

  /** Frees a frame's data once the sink has durably written (checkpointed) it. */
  async deleteFrame(videoId: string, index: number): Promise<void> {
    const keys = videoKeys(videoId);
    await this.redis.del(keys.source(index), keys.input(index), keys.mask(index), keys.result(index));
  }

  /** Frees the data of frames `from` (inclusive) to `to` (exclusive) in one round trip. */
  async deleteFrames(videoId: string, from: number, to: number): Promise<void> {
    if (to <= from) return;
    const keys = videoKeys(videoId);
    const names: string[] = [];
    for (let i = from; i < to; i++) names.push(keys.source(i), keys.input(i), keys.mask(i), keys.result(i));
    await this.redis.del(...names);
  }

  /** Removes every key of a video, the stream included. */
  async deleteVideo(videoId: string): Promise<number> {
    const { pattern } = videoKeys(videoId);
    const found = await scanKeys(this.redis, pattern);
    let removed = 0;
    // One slot (the `{videoId}` tag), so a multi-key DEL works on a cluster too; in batches.
    for (let i = 0; i < found.length; i += 500) removed += await this.redis.del(...found.slice(i, i + 500));
    return removed;
  }
}

import type { Redis } from 'ioredis';
import { dedupKey, videoKeys } from '../../shared/redis-keys.js';

/**
 * Submission hash → video id, for the dedup window: the first submission claims the hash,
 * later ones within the window get its id. The video remembers its hash key, so a cancel can
 * free it and the next identical submission starts afresh.
 */
export class DedupRepository {
  constructor(
    private readonly redis: Redis,
    private readonly windowSeconds: number,
    private readonly videoTtlSeconds: number,
  ) {}

  get enabled(): boolean {
    return this.windowSeconds > 0;
  }

  /** Claims `hash` for `videoId`; returns the id that already holds it, or null when this one got it. */
  async claim(hash: string, videoId: string): Promise<string | null> {
    const key = dedupKey(hash);
    for (let attempt = 0; attempt < 3; attempt++) {
      const set = await this.redis.set(key, videoId, 'EX', this.windowSeconds, 'NX');
      if (set === 'OK') {
        await this.redis.set(videoKeys(videoId).dedup, key, 'EX', this.videoTtlSeconds);
        return null;
      }
      const holder = await this.redis.get(key);
      if (holder) return holder;
      // Expired between SET and GET: try again.
    }
    return null;
  }

  /** Frees the hash a video holds (after a failed submit, or on cancel). */
  async release(videoId: string): Promise<void> {
    const key = await this.redis.get(videoKeys(videoId).dedup);
    if (!key) return;
    const holder = await this.redis.get(key);
    if (holder === videoId) await this.redis.del(key);
  }
}

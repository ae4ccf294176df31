import type { RedisConnection } from '../../shared/redis.js';
import { dedupKey, videoKeys } from '../../shared/redis-keys.js';

/** SET the key to ARGV[2] (for ARGV[3] s) only while it holds ARGV[1]. */
const REPLACE_HOLDER = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
return 1
`;

/**
 * Submission hash → video id, for the dedup window: the first submission claims the hash,
 * later ones within the window get its id. The video remembers its hash key, so a cancel can
 * free it and the next identical submission starts afresh.
 */
export class DedupRepository {
  constructor(
    private readonly redis: RedisConnection,
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

  /**
   * Hands `hash` from `holder` (a video that failed) to `videoId`, only if `holder` still holds
   * it; false when another submission took it first.
   */
  async replace(hash: string, holder: string, videoId: string): Promise<boolean> {
    const key = dedupKey(hash);
    const swapped = await this.redis.eval(REPLACE_HOLDER, 1, key, holder, videoId, this.windowSeconds);
    if (swapped !== 1) return false;
    await this.redis.set(videoKeys(videoId).dedup, key, 'EX', this.videoTtlSeconds);
    return true;
  }

  /** Frees the hash a video holds (after a failed submit, or on cancel). */
  async release(videoId: string): Promise<void> {
    const key = await this.redis.get(videoKeys(videoId).dedup);
    if (!key) return;
    const holder = await this.redis.get(key);
    if (holder === videoId) await this.redis.del(key);
  }
}

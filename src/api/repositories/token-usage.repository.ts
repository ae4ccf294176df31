import type { RedisConnection } from '../../shared/redis.js';
import { tokenKeys, videoKeys } from '../../shared/redis-keys.js';

/** String: the id of the token that submitted a video. Inside the video's key pattern, so a cancel deletes it. */
export function videoOwnerKey(videoId: string): string {
  return videoKeys(videoId).owner;
}

/**
 * Sliding one-minute window: drops entries older than a minute; below the limit adds this one and
 * returns 0, else returns the milliseconds until the oldest entry leaves the window.
 */
const RATE_CHECK = `
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60000)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + 60000 - now)
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], 61000)
return 0
`;

/**
 * Who submitted each video, and what each token is using: its videos still running (for the
 * concurrent-videos limit) and its submissions in the last minute (for the rate limit).
 */
export class TokenUsageRepository {
  constructor(
    private readonly redis: RedisConnection,
    private readonly ttlSeconds: number,
  ) {}

  async setOwner(videoId: string, tokenId: string): Promise<void> {
    await this.redis.set(videoOwnerKey(videoId), tokenId, 'EX', this.ttlSeconds);
  }

  /** The id of the token that submitted the video; null when unknown (submitted by the CLI, or expired). */
  async owner(videoId: string): Promise<string | null> {
    return this.redis.get(videoOwnerKey(videoId));
  }

  /** Counts one submission; returns 0, or the milliseconds to wait when `perMinute` were already made. */
  async countSubmission(tokenId: string, perMinute: number): Promise<number> {
    const now = Date.now();
    const member = `${now}-${Math.random().toString(36).slice(2, 10)}`;
    return Number(await this.redis.eval(RATE_CHECK, 1, tokenKeys(tokenId).recent, now, perMinute, member));
  }

  /**
   * Adds a video to the token's running ones when fewer than `limit` are running (after
   * `isFinished` has pruned the ones that ended); false when the limit is reached.
   */
  async reserveActive(tokenId: string, videoId: string, limit: number, isFinished: (videoId: string) => Promise<boolean>): Promise<boolean> {
    const { active } = tokenKeys(tokenId);
    for (const id of await this.redis.smembers(active)) {
      if (await isFinished(id)) await this.redis.srem(active, id);
    }
    // Add first, then count: two racing submissions may both be refused, never both let past the limit.
    await this.redis.multi().sadd(active, videoId).expire(active, this.ttlSeconds).exec();
    if ((await this.redis.scard(active)) <= limit) return true;
    await this.redis.srem(active, videoId);
    return false;
  }

  async releaseActive(tokenId: string, videoId: string): Promise<void> {
    await this.redis.srem(tokenKeys(tokenId).active, videoId);
  }
}

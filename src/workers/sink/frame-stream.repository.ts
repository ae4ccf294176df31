import type { Redis } from 'ioredis';
import type { FrameResult } from '../../shared/frame-store.js';
import { videoKeys } from '../../shared/redis-keys.js';

/**
 * Each video's Redis Stream of frame records, in frame order, for live consumers
 * (`XREAD BLOCK` on `videoKeys(id).stream`, field `record` = JSON FrameResult). Trimmed
 * approximately to `maxLen` entries (cheap for Redis) and given the frame TTL, refreshed on
 * every append, so an abandoned stream expires like every other key of the video.
 */
export class FrameStreamRepository {
  constructor(
    private readonly redis: Redis,
    private readonly maxLen: number,
    private readonly ttlSeconds: number,
  ) {}

  async append(videoId: string, record: FrameResult): Promise<void> {
    const { stream } = videoKeys(videoId);
    await this.redis
      .multi()
      .xadd(stream, 'MAXLEN', '~', this.maxLen, '*', 'record', JSON.stringify(record))
      .expire(stream, this.ttlSeconds)
      .exec();
  }
}

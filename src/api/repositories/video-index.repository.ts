import type { RedisConnection } from '../../shared/redis.js';
import { VIDEO_INDEX_KEY } from '../../shared/redis-keys.js';

/** The sorted set of submitted video ids (written by VideoStateStore.init), newest first. */
export class VideoIndexRepository {
  constructor(private readonly redis: RedisConnection) {}

  async newest(limit: number, offset = 0): Promise<string[]> {
    return this.redis.zrevrange(VIDEO_INDEX_KEY, offset, offset + limit - 1);
  }

  async remove(...videoIds: string[]): Promise<void> {
    if (videoIds.length > 0) await this.redis.zrem(VIDEO_INDEX_KEY, ...videoIds);
  }
}

import type { RedisConnection } from '../../shared/redis.js';
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
    private readonly redis: RedisConnection,
    private readonly maxLen: number,
    private readonly ttlSeconds: number,
  ) {
    // A defined command runs by EVALSHA: the script is not resent and rehashed for every frame.
    redis.defineCommand(APPEND_COMMAND, { numberOfKeys: 2, lua: APPEND_IF_NEW });
  }

  /**
   * Appends the record unless one at or past its index is already there. Idempotent because
   * ioredis resends a command whose reply a dropped connection swallowed (Redis restarting
   * mid-video): a plain XADD would then publish that frame twice. The same check lets a sink
   * that takes a video over re-append from its checkpoint without duplicating records.
   */
  async append(videoId: string, record: FrameResult): Promise<void> {
    const { stream, streamLast } = videoKeys(videoId);
    const redis = this.redis as RedisConnection & AppendCommand;
    await redis[APPEND_COMMAND](stream, streamLast, String(record.index), JSON.stringify(record), String(this.maxLen), String(this.ttlSeconds));
  }
}

const APPEND_COMMAND = 'streamsegAppendFrameRecord';
type AppendCommand = Record<
  typeof APPEND_COMMAND,
  (stream: string, last: string, index: string, record: string, maxLen: string, ttl: string) => Promise<number>
>;

const APPEND_IF_NEW = `
local last = tonumber(redis.call('GET', KEYS[2]) or '-1')
if tonumber(ARGV[1]) <= last then return 0 end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'record', ARGV[2])
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
`;

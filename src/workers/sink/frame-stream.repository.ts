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
    await this.appendAll(videoId, [record]);
  }

  /** Appends records in index order in one round trip, each under the same rule as `append`. Returns how many were new. */
  async appendAll(videoId: string, records: readonly FrameResult[]): Promise<number> {
    if (records.length === 0) return 0;
    const { stream, streamLast } = videoKeys(videoId);
    const redis = this.redis as RedisConnection & AppendCommand;
    const pairs = records.flatMap((record) => [String(record.index), JSON.stringify(record)]);
    return redis[APPEND_COMMAND](stream, streamLast, String(this.maxLen), String(this.ttlSeconds), ...pairs);
  }
}

const APPEND_COMMAND = 'streamsegAppendFrameRecords';
type AppendCommand = Record<
  typeof APPEND_COMMAND,
  (stream: string, last: string, maxLen: string, ttl: string, ...indexRecordPairs: string[]) => Promise<number>
>;

// ARGV: maxLen, ttl, then (index, record) pairs in index order.
const APPEND_IF_NEW = `
local last = tonumber(redis.call('GET', KEYS[2]) or '-1')
local added = 0
for i = 3, #ARGV, 2 do
  local index = tonumber(ARGV[i])
  if index > last then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'record', ARGV[i + 1])
    last = index
    added = added + 1
  end
end
if added > 0 then
  redis.call('SET', KEYS[2], tostring(last), 'EX', ARGV[2])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return added
`;

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

  /**
   * Index of the last record on the video's stream (-1: none). A sink taking a video over skips
   * records up to it, so consumers see every frame once although frames are re-encoded.
   */
  async lastIndex(videoId: string): Promise<number> {
    const entries = await this.redis.xrevrange(videoKeys(videoId).stream, '+', '-', 'COUNT', 1);
    const fields = entries[0]?.[1];
    if (!fields) return -1;
    const raw = fields[fields.indexOf('record') + 1];
    return raw ? (JSON.parse(raw) as FrameResult).index : -1;
  }

  /**
   * Appends the record unless one at or past its index is already there. Idempotent because
   * ioredis resends a command whose reply a dropped connection swallowed (Redis restarting
   * mid-video): a plain XADD would then publish that frame twice.
   */
  async append(videoId: string, record: FrameResult): Promise<void> {
    const { stream, streamLast } = videoKeys(videoId);
    await this.redis.eval(APPEND_IF_NEW, 2, stream, streamLast, String(record.index), JSON.stringify(record), String(this.maxLen), String(this.ttlSeconds));
  }
}

const APPEND_IF_NEW = `
local last = tonumber(redis.call('GET', KEYS[2]) or '-1')
if tonumber(ARGV[1]) <= last then return 0 end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'record', ARGV[2])
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
`;

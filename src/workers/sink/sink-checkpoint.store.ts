import type { RedisConnection } from '../../shared/redis.js';
import { videoKeys } from '../../shared/redis-keys.js';
import type { SceneReport } from './report-builder.js';

/**
 * How far a video's outputs are durably written. Every frame below `frames` is in one of the
 * closed segment files `0 … segments-1` and in the first `masksBytes` bytes of masks.ndjson;
 * frames from `frames` on are still in Redis (the sink deletes a frame's keys only once it is
 * checkpointed), so a sink taking the video over re-encodes from here.
 */
export interface SinkCheckpoint {
  frames: number;
  segments: number;
  masksBytes: number;
  /** Scenes of the checkpointed frames (report.json is built from them). */
  scenes: SceneReport[];
  /** Active sink milliseconds spent on the checkpointed frames. */
  activeMs: number;
}

export const EMPTY_CHECKPOINT: SinkCheckpoint = { frames: 0, segments: 0, masksBytes: 0, scenes: [], activeMs: 0 };

/** Inside the video's key pattern (redis-keys.ts), so deleting the video removes it. */
function checkpointKey(videoId: string): string {
  return videoKeys(videoId).sinkCheckpoint;
}

// Writes the checkpoint only while the caller still owns the video (fencing): a sink that lost
// its job lock (stalled, then taken over) cannot move the checkpoint under the new owner's feet.
const SAVE_IF_OWNER = `
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'checkpoint', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1`;

/** The sink's checkpoint of each video in Redis, with the id of the sink that owns the video. */
export class SinkCheckpointStore {
  constructor(
    private readonly redis: RedisConnection,
    private readonly ttlSeconds: number,
  ) {}

  /** Makes `owner` the video's only writer and returns the checkpoint to resume from. */
  async claim(videoId: string, owner: string): Promise<{ checkpoint: SinkCheckpoint; previousOwner: string | null }> {
    const key = checkpointKey(videoId);
    const result = await this.redis.multi().hmget(key, 'checkpoint', 'owner').hset(key, 'owner', owner).expire(key, this.ttlSeconds).exec();
    const [raw, previousOwner] = (result?.[0]?.[1] as (string | null)[] | undefined) ?? [null, null];
    return { checkpoint: raw ? (JSON.parse(raw) as SinkCheckpoint) : { ...EMPTY_CHECKPOINT, scenes: [] }, previousOwner: previousOwner ?? null };
  }

  /** True while `owner` still owns the video. */
  async owns(videoId: string, owner: string): Promise<boolean> {
    return (await this.redis.hget(checkpointKey(videoId), 'owner')) === owner;
  }

  /** Saves the checkpoint; false when another sink has taken the video over meanwhile. */
  async save(videoId: string, owner: string, checkpoint: SinkCheckpoint): Promise<boolean> {
    const saved = await this.redis.eval(SAVE_IF_OWNER, 1, checkpointKey(videoId), owner, JSON.stringify(checkpoint), String(this.ttlSeconds));
    return saved === 1;
  }

  async get(videoId: string): Promise<SinkCheckpoint | null> {
    const raw = await this.redis.hget(checkpointKey(videoId), 'checkpoint');
    return raw ? (JSON.parse(raw) as SinkCheckpoint) : null;
  }
}

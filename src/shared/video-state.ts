import type { RedisConnection } from './redis.js';
import type { LetterboxRect } from './letterbox.js';
import { VIDEO_INDEX_KEY, cancelledKey, videoKeys } from './redis-keys.js';
import { redactText } from './redact-credentials.js';

export type VideoStatus = 'queued' | 'decoding' | 'decoded' | 'done' | 'failed';

/** Facts the producer learns by probing, which the workers and the sink need. */
export interface VideoProbeFacts {
  sourceWidth: number;
  sourceHeight: number;
  /** Frame rate of the output (source rate, or the requested --fps). */
  fps: number;
  /** The source's own (average) frame rate, whatever the output's. */
  sourceFps?: number;
  durationMs: number;
  /** Estimated frame count, for progress only; `totalFrames` is the truth once decoding ends. */
  expectedFrames: number;
  inputWidth: number;
  inputHeight: number;
  letterbox: LetterboxRect;
  codec: string;
  /** A live source (camera, network stream, stdin): no known length, frames dropped rather than queued. */
  live?: boolean;
  /**
   * Most frames of this video the producer lets Redis hold (its high-water marks at this frame
   * size). The sink closes its segments at half this at most, or frames it has written but not
   * yet checkpointed would keep the producer waiting for room they hold.
   */
  maxFramesInRedis?: number;
}

export interface SceneStart {
  index: number;
  startFrame: number;
}

export interface VideoState extends Partial<VideoProbeFacts> {
  videoId: string;
  status: VideoStatus;
  outDir?: string;
  /** Frames decoded and enqueued so far. */
  decodedFrames: number;
  /** Set once decoding has finished: the exact number of frames. */
  totalFrames?: number;
  /** Frames segmented by the workers so far (progress only). */
  segmentedFrames: number;
  /** Frames the sink has written. */
  sinkFrames: number;
  /** Frames the sink has checkpointed: their data is gone from Redis (the producer's backpressure counts from here). */
  checkpointFrames: number;
  /** Live videos: frames captured but dropped (workers behind, or lost), counted by the producer and the sink. */
  droppedFrames?: number;
  error?: string;
  warnings: string[];
  submittedAt?: number;
  startedAt?: number;
  finishedAt?: number;
  /** Milliseconds spent per stage, summed over jobs. */
  stageMs: Record<string, number>;
}

/**
 * HSET the field/value pairs in ARGV, except `status` once it is `failed`: a failed video stays
 * failed whatever order the roles finish in (a producer that ends decoding after the sink failed
 * must not turn it back into "decoded"). Atomic, so no role can slip in between the read and the write.
 */
const SET_KEEPING_FAILURE = `
local failed = redis.call('HGET', KEYS[1], 'status') == 'failed'
for i = 1, #ARGV, 2 do
  if not (failed and ARGV[i] == 'status') then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return failed and 1 or 0
`;

/** Per-video state hash shared by every role; small values only, no pixels. */
export class VideoStateStore {
  constructor(
    private readonly redis: RedisConnection,
    private readonly ttlSeconds: number,
  ) {}

  async init(videoId: string, fields: { outDir: string; submittedAt: number }): Promise<void> {
    const { meta } = videoKeys(videoId);
    // Two transactions: the video's hash lives in its own slot (`{videoId}`), the index in
    // another, and a Redis Cluster runs a MULTI within one slot only.
    await this.redis
      .multi()
      .hsetnx(meta, 'status', 'queued')
      .hset(meta, 'outDir', fields.outDir, 'submittedAt', String(fields.submittedAt))
      .expire(meta, this.ttlSeconds)
      .exec();
    await this.redis
      .multi()
      .zadd(VIDEO_INDEX_KEY, fields.submittedAt, videoId)
      // Ids far older than the state's TTL are certainly gone: keep the index from growing forever.
      .zremrangebyscore(VIDEO_INDEX_KEY, 0, fields.submittedAt - 2 * this.ttlSeconds * 1000)
      .exec();
  }

  /** Records that the video was cancelled; producers check it (`isCancelled`) and stop. */
  async markCancelled(videoId: string): Promise<void> {
    await this.redis.set(cancelledKey(videoId), JSON.stringify({ cancelledAt: Date.now() }), 'EX', this.ttlSeconds);
  }

  async isCancelled(videoId: string): Promise<boolean> {
    return (await this.redis.exists(cancelledKey(videoId))) === 1;
  }

  /** When the video was cancelled (ms), or null when it was not (or the tombstone expired). */
  async cancelledAt(videoId: string): Promise<number | null> {
    const raw = await this.redis.get(cancelledKey(videoId));
    if (!raw) return null;
    const at = (JSON.parse(raw) as { cancelledAt?: unknown }).cancelledAt;
    return typeof at === 'number' ? at : 0;
  }

  async setProbe(videoId: string, facts: VideoProbeFacts): Promise<void> {
    const { meta } = videoKeys(videoId);
    await this.setKeepingFailure(videoId, {
      ...Object.fromEntries(Object.entries(facts).map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)])),
      status: 'decoding',
      startedAt: String(Date.now()),
    });
    await this.redis.expire(meta, this.ttlSeconds);
  }

  async setDecodedFrames(videoId: string, decodedFrames: number): Promise<void> {
    await this.redis.hset(videoKeys(videoId).meta, 'decodedFrames', String(decodedFrames));
  }

  /** Counts frames the workers have segmented (at least once; retries may overcount slightly). */
  async addSegmentedFrames(videoId: string, frames: number): Promise<void> {
    await this.redis.hincrby(videoKeys(videoId).meta, 'segmentedFrames', frames);
  }

  async markDecoded(videoId: string, totalFrames: number): Promise<void> {
    await this.setKeepingFailure(videoId, { decodedFrames: String(totalFrames), totalFrames: String(totalFrames), status: 'decoded' });
  }

  async setSinkFrames(videoId: string, sinkFrames: number): Promise<void> {
    await this.redis.hset(videoKeys(videoId).meta, 'sinkFrames', String(sinkFrames));
  }

  async setCheckpointFrames(videoId: string, checkpointFrames: number): Promise<void> {
    await this.redis.hset(videoKeys(videoId).meta, 'checkpointFrames', String(checkpointFrames));
  }

  async addStageTime(videoId: string, stage: string, ms: number): Promise<void> {
    await this.redis.hincrbyfloat(videoKeys(videoId).meta, `stageMs.${stage}`, ms);
  }

  async addWarning(videoId: string, warning: string): Promise<void> {
    const { meta } = videoKeys(videoId);
    const current = await this.get(videoId);
    await this.redis.hset(meta, 'warnings', JSON.stringify([...(current?.warnings ?? []), redactText(warning)]));
  }

  async markDone(videoId: string): Promise<void> {
    await this.setKeepingFailure(videoId, { status: 'done', finishedAt: String(Date.now()) });
  }

  /** HSET `fields`, leaving `status` as it is when the video has failed (see SET_KEEPING_FAILURE). */
  private async setKeepingFailure(videoId: string, fields: Record<string, string>): Promise<void> {
    await this.redis.eval(SET_KEEPING_FAILURE, 1, videoKeys(videoId).meta, ...Object.entries(fields).flat());
  }

  async markFailed(videoId: string, reason: string): Promise<void> {
    // What status, watch and the API show: never a URL's credentials.
    await this.redis.hset(videoKeys(videoId).meta, { status: 'failed', error: redactText(reason), finishedAt: String(Date.now()) });
    await this.redis.expire(videoKeys(videoId).meta, this.ttlSeconds);
  }

  /** Records a scene start; idempotent so a retried decode cannot add a scene twice. */
  async addScene(videoId: string, scene: SceneStart): Promise<void> {
    const { scenes } = videoKeys(videoId);
    await this.redis.multi().hset(scenes, String(scene.index), String(scene.startFrame)).expire(scenes, this.ttlSeconds).exec();
  }

  async getScenes(videoId: string): Promise<SceneStart[]> {
    const raw = await this.redis.hgetall(videoKeys(videoId).scenes);
    return Object.entries(raw)
      .map(([index, startFrame]) => ({ index: Number(index), startFrame: Number(startFrame) }))
      .sort((a, b) => a.index - b.index);
  }

  /** The letterboxed content's rectangle in the video's model input; undefined before the probe or when unreadable. */
  async getLetterbox(videoId: string): Promise<LetterboxRect | undefined> {
    const raw = await this.redis.hget(videoKeys(videoId).meta, 'letterbox');
    if (!raw) return undefined;
    try {
      return JSON.parse(raw) as LetterboxRect;
    } catch {
      return undefined;
    }
  }

  async get(videoId: string): Promise<VideoState | null> {
    const raw = await this.redis.hgetall(videoKeys(videoId).meta);
    if (Object.keys(raw).length === 0) return null;
    const num = (key: string): number | undefined => (raw[key] === undefined ? undefined : Number(raw[key]));
    const stageMs: Record<string, number> = {};
    for (const [key, value] of Object.entries(raw)) {
      if (key.startsWith('stageMs.')) stageMs[key.slice('stageMs.'.length)] = Number(value);
    }
    return {
      videoId,
      status: (raw.status as VideoStatus | undefined) ?? 'queued',
      outDir: raw.outDir,
      sourceWidth: num('sourceWidth'),
      sourceHeight: num('sourceHeight'),
      fps: num('fps'),
      sourceFps: num('sourceFps'),
      durationMs: num('durationMs'),
      expectedFrames: num('expectedFrames'),
      inputWidth: num('inputWidth'),
      inputHeight: num('inputHeight'),
      letterbox: raw.letterbox ? (JSON.parse(raw.letterbox) as LetterboxRect) : undefined,
      codec: raw.codec,
      live: raw.live === 'true' ? true : undefined,
      maxFramesInRedis: num('maxFramesInRedis'),
      droppedFrames: num('droppedFrames'),
      decodedFrames: num('decodedFrames') ?? 0,
      totalFrames: num('totalFrames'),
      segmentedFrames: num('segmentedFrames') ?? 0,
      sinkFrames: num('sinkFrames') ?? 0,
      checkpointFrames: num('checkpointFrames') ?? 0,
      error: raw.error,
      warnings: raw.warnings ? (JSON.parse(raw.warnings) as string[]) : [],
      submittedAt: num('submittedAt'),
      startedAt: num('startedAt'),
      finishedAt: num('finishedAt'),
      stageMs,
    };
  }
}

import { randomUUID } from 'node:crypto';
import type { RedisConnection } from '../../shared/redis.js';
import { ErrorCode, StreamsegError } from '../../shared/errors/index.js';
import type { FrameStore } from '../../shared/frame-store.js';
import type { LetterboxRect } from '../../shared/letterbox.js';
import type { Logger } from '../../shared/logger.js';
import { videoKeys } from '../../shared/redis-keys.js';
import { VideoStateStore } from '../../shared/video-state.js';
import { sceneEmbeddings } from './adapter-metrics.js';
import { meanEmbedding, type FrameEmbedder } from './embedder.js';

/** Redis keys of a scene's embedding, under the video's hash tag (deleted with the video; see redis-keys.ts). */
export function sceneEmbeddingKeys(videoId: string, scene: number) {
  const keys = videoKeys(videoId);
  return { embedding: keys.sceneEmbedding(scene), lock: keys.sceneEmbeddingLock(scene) };
}

/** The scene a frames job belongs to (a subset of the worker's LoRA feed context). */
export interface SceneRef {
  videoId: string;
  scene: number;
  sceneStartFrame: number;
  /** The job's frames; used when the scene's first frames are no longer in Redis. */
  frames: readonly { index: number }[];
  /** Size of the video's model inputs (the frames in Redis are RGB24 of this size). */
  input: { width: number; height: number };
}

export interface SceneEmbeddingOptions {
  /** Frames the embedding averages, from the scene's first frame on. @defaultValue 4 */
  frames?: number;
  /** Lifetime of a stored embedding, seconds (like every per-video key). @defaultValue 3600 */
  ttlSeconds?: number;
  /** A computing worker's lock expires after this (a dead worker cannot block the scene). @defaultValue 30000 */
  lockMs?: number;
  /** How often waiting workers look for the embedding. @defaultValue 20 */
  pollMs?: number;
  /** A waiting worker gives up waiting after this and computes the embedding itself. @defaultValue 60000 */
  waitMs?: number;
  /** Embed only the letterboxed content (from the video's meta), not the padding. @defaultValue true */
  cropLetterbox?: boolean;
  /** Scene embeddings remembered in this process. @defaultValue 1024 */
  localEntries?: number;
  /** Where the video's letterbox is read. @defaultValue a VideoStateStore on the same connection */
  states?: VideoStateStore;
  logger?: Logger;
}

export interface SceneEmbedding {
  embedding: Float32Array;
  /** `computed` here, read from `redis` (another worker computed it), or from this process (`local`). */
  source: 'computed' | 'redis' | 'local';
}

// Deletes the lock only when it still holds our token (it may have expired and been taken).
const RELEASE_LOCK = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

/**
 * One embedding per (video, scene) across all workers: the first worker to ask takes a lock
 * (SET NX PX), embeds the scene's first K frames (mean, then L2-normalised) and stores the
 * result with a TTL; the others wait for it and reuse it. A process also remembers the
 * embeddings it has seen, so the next batches of a scene cost no round trip.
 */
export class SceneEmbeddingService {
  private readonly options: Required<Omit<SceneEmbeddingOptions, 'logger' | 'states'>>;
  private readonly states: VideoStateStore;
  private readonly local = new Map<string, Promise<Float32Array>>();
  private readonly logger: Logger | undefined;

  constructor(
    private readonly redis: RedisConnection,
    private readonly frameStore: FrameStore,
    private readonly embedder: FrameEmbedder,
    options: SceneEmbeddingOptions = {},
  ) {
    this.logger = options.logger;
    this.states = options.states ?? new VideoStateStore(redis, options.ttlSeconds ?? 3600);
    this.options = {
      frames: options.frames ?? 4,
      ttlSeconds: options.ttlSeconds ?? 3600,
      lockMs: options.lockMs ?? 30_000,
      pollMs: options.pollMs ?? 20,
      waitMs: options.waitMs ?? 60_000,
      cropLetterbox: options.cropLetterbox ?? true,
      localEntries: options.localEntries ?? 1024,
    };
    if (!Number.isInteger(this.options.frames) || this.options.frames < 1) throw new RangeError('frames must be a positive integer');
    if (this.options.ttlSeconds < 1) throw new RangeError('ttlSeconds must be >= 1');
    if (this.options.lockMs < 100) throw new RangeError('lockMs must be >= 100');
  }

  async get(ref: SceneRef): Promise<SceneEmbedding> {
    const localKey = `${ref.videoId}\0${ref.scene}`;
    const known = this.local.get(localKey);
    if (known) {
      const embedding = await known;
      sceneEmbeddings.inc({ source: 'local' });
      return { embedding, source: 'local' };
    }
    let source: SceneEmbedding['source'] = 'redis';
    const pending = this.fetchOrCompute(ref).then((r) => {
      source = r.source;
      return r.embedding;
    });
    this.local.set(localKey, pending);
    pending.catch(() => this.local.delete(localKey));
    while (this.local.size > this.options.localEntries) this.local.delete(this.local.keys().next().value!);
    const embedding = await pending;
    sceneEmbeddings.inc({ source });
    return { embedding, source };
  }

  private async fetchOrCompute(ref: SceneRef): Promise<SceneEmbedding> {
    const keys = sceneEmbeddingKeys(ref.videoId, ref.scene);
    const deadline = Date.now() + this.options.waitMs;
    const token = randomUUID();
    for (;;) {
      const stored = await this.redis.getBuffer(keys.embedding);
      if (stored) return { embedding: decodeEmbedding(stored, this.embedder.size, keys.embedding), source: 'redis' };
      const locked = await this.redis.set(keys.lock, token, 'PX', this.options.lockMs, 'NX');
      if (locked === 'OK') {
        try {
          // another worker may have stored it between our GET and SET NX
          const late = await this.redis.getBuffer(keys.embedding);
          if (late) return { embedding: decodeEmbedding(late, this.embedder.size, keys.embedding), source: 'redis' };
          const embedding = await this.compute(ref);
          await this.redis.set(keys.embedding, encodeEmbedding(embedding), 'EX', this.options.ttlSeconds);
          return { embedding, source: 'computed' };
        } finally {
          await this.redis.eval(RELEASE_LOCK, 1, keys.lock, token).catch(() => undefined);
        }
      }
      if (Date.now() > deadline) {
        this.logger?.warn({ videoId: ref.videoId, scene: ref.scene }, 'waited too long for another worker to embed the scene; embedding it here');
        const embedding = await this.compute(ref);
        await this.redis.set(keys.embedding, encodeEmbedding(embedding), 'EX', this.options.ttlSeconds, 'NX');
        return { embedding, source: 'computed' };
      }
      await new Promise((resolve) => setTimeout(resolve, this.options.pollMs));
    }
  }

  private async compute(ref: SceneRef): Promise<Float32Array> {
    const k = this.options.frames;
    const first = Array.from({ length: k }, (_, i) => ref.sceneStartFrame + i);
    let frames = (await this.frameStore.getInputs(ref.videoId, first)).filter((f): f is Buffer => f !== null);
    if (frames.length === 0) {
      // The scene's first frames are gone (already written by the sink, or expired): use this job's.
      const own = ref.frames.slice(0, k).map((f) => f.index);
      frames = (await this.frameStore.getInputs(ref.videoId, own)).filter((f): f is Buffer => f !== null);
    }
    if (frames.length === 0) {
      throw new StreamsegError(ErrorCode.SCENE_EMBEDDING, `video ${ref.videoId} scene ${ref.scene}: none of its frames' model inputs are in Redis (expired?)`);
    }
    const crop = this.options.cropLetterbox ? await this.letterbox(ref.videoId, ref.input) : undefined;
    return meanEmbedding(await this.embedder.embedFrames(frames, ref.input, crop));
  }

  private async letterbox(videoId: string, input: { width: number; height: number }): Promise<LetterboxRect | undefined> {
    const rect = await this.states.getLetterbox(videoId);
    if (!rect) return undefined;
    const { width, height } = input;
    const valid =
      [rect.x, rect.y, rect.width, rect.height].every(Number.isInteger) &&
      rect.width >= 8 &&
      rect.height >= 8 &&
      rect.x + rect.width <= width &&
      rect.y + rect.height <= height;
    return valid ? rect : undefined;
  }
}

export function encodeEmbedding(embedding: Float32Array): Buffer {
  const out = Buffer.alloc(embedding.length * 4);
  for (let i = 0; i < embedding.length; i++) out.writeFloatLE(embedding[i]!, i * 4);
  return out;
}

export function decodeEmbedding(bytes: Buffer, size: number, key: string): Float32Array {
  if (bytes.length !== size * 4) {
    throw new StreamsegError(ErrorCode.SCENE_EMBEDDING, `${key} holds ${bytes.length} bytes, expected ${size * 4} (an embedder of another size wrote it?)`);
  }
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = bytes.readFloatLE(i * 4);
  return out;
}

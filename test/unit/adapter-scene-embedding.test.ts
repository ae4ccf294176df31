import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startEmbeddedRedis, type EmbeddedRedis } from '../../src/cli/embedded-redis.js';
import { FrameStore } from '../../src/shared/frame-store.js';
import type { LetterboxRect } from '../../src/shared/letterbox.js';
import { loadModelPackage } from '../../src/shared/model-manifest.js';
import { videoKeys } from '../../src/shared/redis-keys.js';
import { OnnxEmbedder, meanEmbedding, preprocessRgb, type FrameEmbedder } from '../../src/workers/adapters/embedder.js';
import { SceneEmbeddingService, sceneEmbeddingKeys } from '../../src/workers/adapters/scene-embedding.js';
import { writeFixturePackage } from '../fixtures/adapters/adapter-fixtures.js';

const W = 16;
const H = 16;

function solidFrame(r: number, g: number, b: number): Buffer {
  const f = Buffer.alloc(W * H * 3);
  for (let i = 0; i < W * H; i++) f.set([r, g, b], i * 3);
  return f;
}

/** Embeds a frame as its mean colour; counts runs; can be slowed down. */
class FakeEmbedder implements FrameEmbedder {
  readonly size = 3;
  runs = 0;
  crops: (LetterboxRect | undefined)[] = [];
  constructor(private readonly delayMs = 0) {}
  async embedFrames(frames: readonly Uint8Array[], _size: { width: number; height: number }, crop?: LetterboxRect): Promise<Float32Array[]> {
    this.runs++;
    this.crops.push(crop);
    await new Promise((r) => setTimeout(r, this.delayMs));
    return frames.map((f) => meanEmbedding([Float32Array.from([f[0]! + 1, f[1]! + 1, f[2]! + 1])]));
  }
}

describe('scene embedding', () => {
  let server: EmbeddedRedis;
  let redisA: Redis;
  let redisB: Redis;
  let dir: string;

  beforeAll(async () => {
    server = await startEmbeddedRedis();
    redisA = new Redis(server.url);
    redisB = new Redis(server.url);
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-scene-emb-'));
  });
  beforeEach(async () => {
    await redisA.flushall();
  });
  afterAll(async () => {
    redisA?.disconnect();
    redisB?.disconnect();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function putScene(videoId: string, start: number, count: number, rgb: [number, number, number]) {
    const store = new FrameStore(redisA, 60);
    for (let i = start; i < start + count; i++) await store.putFrame(videoId, i, Buffer.alloc(1), solidFrame(...rgb));
  }

  it('computes once per scene across two workers; the other reuses it from Redis', async () => {
    await putScene('vid1', 0, 8, [200, 10, 10]);
    await putScene('vid1', 8, 8, [10, 10, 200]);
    const e1 = new FakeEmbedder(50);
    const e2 = new FakeEmbedder(50);
    const w1 = new SceneEmbeddingService(redisA, new FrameStore(redisA, 60), e1, { frames: 4, pollMs: 5 });
    const w2 = new SceneEmbeddingService(redisB, new FrameStore(redisB, 60), e2, { frames: 4, pollMs: 5 });
    const ref0 = { videoId: 'vid1', scene: 0, sceneStartFrame: 0, input: { width: W, height: H }, frames: [{ index: 4 }] };
    const [a, b] = await Promise.all([w1.get(ref0), w2.get({ ...ref0, frames: [{ index: 0 }] })]);
    expect(e1.runs + e2.runs).toBe(1);
    expect([a.source, b.source].sort()).toEqual(['computed', 'redis']);
    expect(Array.from(a.embedding)).toEqual(Array.from(b.embedding));
    expect(a.embedding[0]).toBeGreaterThan(0.99);
    // later batches of the scene: no embedder run, no Redis round trip
    expect((await w1.get({ ...ref0, frames: [{ index: 6 }] })).source).toBe('local');
    expect(await redisA.ttl(sceneEmbeddingKeys('vid1', 0).embedding)).toBeGreaterThan(3000);
    expect(await redisA.exists(sceneEmbeddingKeys('vid1', 0).lock)).toBe(0);
    // another scene gets its own embedding
    const s1 = await w2.get({ videoId: 'vid1', scene: 1, sceneStartFrame: 8, input: { width: W, height: H }, frames: [{ index: 8 }] });
    expect(s1.source).toBe('computed');
    expect(s1.embedding[2]).toBeGreaterThan(0.99);
    expect(e1.runs + e2.runs).toBe(2);
  });

  it('uses the job frames when the scene start is gone, and crops to the letterbox', async () => {
    await putScene('vid2', 20, 4, [0, 255, 0]);
    await redisA.hset(videoKeys('vid2').meta, 'letterbox', JSON.stringify({ x: 0, y: 4, width: 16, height: 8 }));
    const e = new FakeEmbedder();
    const svc = new SceneEmbeddingService(redisA, new FrameStore(redisA, 60), e);
    const res = await svc.get({ videoId: 'vid2', scene: 3, sceneStartFrame: 10, input: { width: W, height: H }, frames: [{ index: 20 }, { index: 21 }] });
    expect(res.embedding[1]).toBeGreaterThan(0.99);
    expect(e.crops).toEqual([{ x: 0, y: 4, width: 16, height: 8 }]);
    await expect(svc.get({ videoId: 'vid2', scene: 4, sceneStartFrame: 99, input: { width: W, height: H }, frames: [{ index: 99 }] })).rejects.toMatchObject({
      code: 'E_SCENE_EMBEDDING',
    });
  });

  it('takes over when the computing worker died (its lock expires)', async () => {
    await putScene('vid3', 0, 2, [5, 5, 250]);
    await redisA.set(sceneEmbeddingKeys('vid3', 0).lock, 'dead-worker', 'PX', 300);
    const e = new FakeEmbedder();
    const svc = new SceneEmbeddingService(redisA, new FrameStore(redisA, 60), e, { pollMs: 10, lockMs: 1000 });
    const started = Date.now();
    const res = await svc.get({ videoId: 'vid3', scene: 0, sceneStartFrame: 0, input: { width: W, height: H }, frames: [{ index: 0 }] });
    expect(res.source).toBe('computed');
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(e.runs).toBe(1);
  });

  it('preprocesses like the model input and runs an ONNX embedder', async () => {
    const { data, dims } = preprocessRgb([solidFrame(255, 0, 51)], W, H, [0.5, 0.5, 0.5], [0.25, 0.25, 0.5], { x: 2, y: 0, width: 4, height: 2 });
    expect(dims).toEqual([1, 3, 2, 4]);
    expect(data[0]).toBeCloseTo(2, 6);
    expect(data[8]).toBeCloseTo(-2, 6);
    expect(data[16]).toBeCloseTo(-0.6, 6);
    expect(() => preprocessRgb([Buffer.alloc(5)], W, H, [0, 0, 0], [1, 1, 1])).toThrow(/expected 768/);

    const pkgDir = path.join(dir, 'pkg');
    await writeFixturePackage(pkgDir, { embeddingSize: 8, adapters: [], embedder: true });
    const embedder = await OnnxEmbedder.create(await loadModelPackage(pkgDir));
    const out = await embedder.embedFrames([solidFrame(10, 20, 30), solidFrame(200, 100, 0)], { width: W, height: H });
    expect(out).toHaveLength(2);
    for (const e of out) expect(Math.hypot(...e)).toBeCloseTo(1, 5);
    expect(Array.from(out[0]!)).not.toEqual(Array.from(out[1]!));
    await embedder.close();
    await embedder.close();
  });
});

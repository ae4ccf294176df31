import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startEmbeddedRedis, type EmbeddedRedis } from '../../src/cli/embedded-redis.js';
import { FrameStore } from '../../src/shared/frame-store.js';
import { loadModelPackage, type ModelPackage } from '../../src/shared/model-manifest.js';
import { AdapterLoraFeedProvider } from '../../src/workers/adapters/adapter-lora-feed.js';
import { AdapterRegistry } from '../../src/workers/adapters/adapter-registry.js';
import type { FrameEmbedder } from '../../src/workers/adapters/embedder.js';
import { MergedAdapterCache } from '../../src/workers/adapters/merged-adapter-cache.js';
import { denseDelta, relativeError } from '../../src/workers/adapters/merge.js';
import { SceneEmbeddingService } from '../../src/workers/adapters/scene-embedding.js';
import { TEST_TARGETS, writeFixturePackage } from '../fixtures/adapters/adapter-fixtures.js';

/** Embeds a frame as the normalised (R, G, B) of its first pixel. */
const colourEmbedder: FrameEmbedder = {
  size: 3,
  embedFrames: async (frames) =>
    frames.map((f) => {
      const v = Float32Array.from([f[0]!, f[1]!, f[2]!]);
      const n = Math.hypot(...v) || 1;
      return v.map((x) => x / n);
    }),
};

describe('AdapterLoraFeedProvider', () => {
  let server: EmbeddedRedis;
  let redis: Redis;
  let dir: string;
  let pkg: ModelPackage;

  beforeAll(async () => {
    server = await startEmbeddedRedis();
    redis = new Redis(server.url);
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-feed-'));
    await writeFixturePackage(path.join(dir, 'pkg'), {
      embeddingSize: 3,
      adapters: [
        { name: 'fog', seed: 1, centroid: [1, 0, 0] },
        { name: 'night', seed: 2, centroid: [0, 1, 0] },
        { name: 'rain', seed: 3, centroid: [0, 0, 1] },
      ],
    });
    pkg = await loadModelPackage(path.join(dir, 'pkg'));
  });
  beforeEach(async () => {
    await redis.flushall();
  });
  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function provider(retrieval = {}) {
    const store = new FrameStore(redis, 60);
    const registry = await AdapterRegistry.open({ pkg, redis });
    const embeddings = new SceneEmbeddingService(redis, store, colourEmbedder);
    return {
      store,
      registry,
      p: new AdapterLoraFeedProvider({ targets: TEST_TARGETS, registry, embeddings, cache: new MergedAdapterCache(TEST_TARGETS), retrieval }),
    };
  }

  async function putScene(store: FrameStore, videoId: string, start: number, rgb: number[]) {
    const frame = Buffer.alloc(16 * 16 * 3);
    for (let i = 0; i < 256; i++) frame.set(rgb, i * 3);
    for (let i = start; i < start + 4; i++) await store.putFrame(videoId, i, Buffer.alloc(1), frame);
  }

  it('feeds the distance-weighted merge of the nearest adapters, from the cache when the mix repeats', async () => {
    const { store, registry, p } = await provider({ topK: 2, weighting: 'softmax', temperature: 0.1, method: 'cat' });
    await putScene(store, 'v', 0, [200, 120, 0]); // between fog and night, nearer fog
    await putScene(store, 'v', 4, [0, 0, 255]); // rain
    await putScene(store, 'v', 8, [201, 120, 0]); // same mix as scene 0
    const s0 = await p.feedsFor({ videoId: 'v', scene: 0, sceneStartFrame: 0, input: { width: 16, height: 16 }, frames: [{ index: 0 }] });
    expect(s0.adapters.map((a) => a.name)).toEqual(['fog', 'night']);
    expect(s0.adapters[0]!.weight).toBeGreaterThan(s0.adapters[1]!.weight);
    expect(s0.adapters.reduce((s, a) => s + a.weight, 0)).toBeCloseTo(1, 9);
    expect(s0.cacheHit).toBe(false);
    expect(s0.details.embeddingSource).toBe('computed');
    // the fed tensors are exactly the weighted ΔW
    const target = TEST_TARGETS[1]!;
    const A = s0.feeds[target.inputA]!;
    const B = s0.feeds[target.inputB]!;
    expect(A.dims).toEqual([8, target.in]);
    const delta = new Float64Array(target.out * target.in);
    for (let o = 0; o < target.out; o++)
      for (let j = 0; j < 8; j++)
        for (let c = 0; c < target.in; c++)
          delta[o * target.in + c] = delta[o * target.in + c]! + (B.data as Float32Array)[o * 8 + j]! * (A.data as Float32Array)[j * target.in + c]!;
    const inputs = s0.adapters.map((a) => ({ adapter: registry.get(a.name)!.adapter, weight: a.weight }));
    expect(relativeError(delta, denseDelta(inputs, target))).toBeLessThan(1e-6);

    const s1 = await p.feedsFor({ videoId: 'v', scene: 1, sceneStartFrame: 4, input: { width: 16, height: 16 }, frames: [{ index: 4 }] });
    expect(s1.adapters[0]!.name).toBe('rain');
    const s2 = await p.feedsFor({ videoId: 'v', scene: 2, sceneStartFrame: 8, input: { width: 16, height: 16 }, frames: [{ index: 8 }] });
    expect(s2.adapters).toEqual(s0.adapters);
    expect(s2.cacheHit).toBe(true);
    expect(s2.feeds).toBe(s0.feeds);
    // the next batch of scene 0 in this worker: embedding from memory, merge from the cache
    const again = await p.feedsFor({ videoId: 'v', scene: 0, sceneStartFrame: 0, input: { width: 16, height: 16 }, frames: [{ index: 3 }] });
    expect(again).toMatchObject({ cacheHit: true, details: { embeddingSource: 'local' } });
  });

  it('falls back to base feeds beyond the distance threshold, and honours per-job overrides', async () => {
    const { store, p } = await provider({ maxDistance: 0.05 });
    await putScene(store, 'w', 0, [100, 100, 100]);
    const base = await p.feedsFor({ videoId: 'w', scene: 0, sceneStartFrame: 0, input: { width: 16, height: 16 }, frames: [{ index: 0 }] });
    expect(base).toMatchObject({ adapters: [], cacheHit: null, details: { fallback: 'base' } });
    expect(base.feeds['head.proj.lora_A']!.dims).toEqual([1, 20]);
    expect(Array.from(base.feeds['head.proj.lora_B']!.data as Float32Array).every((x) => x === 0)).toBe(true);
    const nearest = await p.feedsFor({
      videoId: 'w',
      scene: 0,
      sceneStartFrame: 0,
      input: { width: 16, height: 16 },
      frames: [{ index: 0 }],
      retrieval: { beyondThreshold: 'nearest' },
    });
    expect(nearest.adapters).toHaveLength(1);
    expect(nearest.adapters[0]!.weight).toBe(1);
    const linear = await p.feedsFor({
      videoId: 'w',
      scene: 0,
      sceneStartFrame: 0,
      input: { width: 16, height: 16 },
      frames: [{ index: 0 }],
      retrieval: { maxDistance: 2, method: 'linear', topK: 3, weighting: 'uniform' },
    });
    expect(linear.adapters.map((a) => a.name)).toEqual(['fog', 'night', 'rain']);
    expect(linear.details.method).toBe('linear');
    expect(linear.feeds['enc.attn0.qkv.lora_A']!.dims).toEqual([4, 16]);
    await expect(
      p.feedsFor({ videoId: 'w', scene: 0, sceneStartFrame: 0, input: { width: 16, height: 16 }, frames: [{ index: 0 }], retrieval: { topK: 0 } }),
    ).rejects.toThrow(/topK/);
  });
});

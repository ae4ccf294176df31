import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FrameStore } from '../../src/shared/frame-store.js';
import { metricsRegistry } from '../../src/shared/metrics.js';
import { loadModelPackage, type ModelPackage } from '../../src/shared/model-manifest.js';
import { createAdapterLoraFeedProvider, type AdapterLoraFeedProvider } from '../../src/workers/adapters/adapter-lora-feed.js';
import { OnnxEmbedder, meanEmbedding } from '../../src/workers/adapters/embedder.js';
import { createLoraFeedsForPackage } from '../../src/workers/adapters/lora-feeds-for-package.js';
import { createLogger } from '../../src/shared/logger.js';
import { rng, writeFixturePackage } from '../fixtures/adapters/adapter-fixtures.js';
import { startRedisServer, type TestRedisServer } from '../helpers/redis-server.js';

const SIZE = 16;
const MODEL_INPUT = { width: SIZE, height: SIZE };
/** Condition looks for the fixture embedder (channel means and contrast). */
const LOOKS: Record<string, { rgb: [number, number, number]; noise: number }> = {
  fog: { rgb: [200, 200, 205], noise: 8 },
  night: { rgb: [20, 22, 40], noise: 10 },
  rain: { rgb: [90, 100, 130], noise: 60 },
};

function frame(look: { rgb: [number, number, number]; noise: number }, seed: number): Buffer {
  const random = rng(seed);
  const f = Buffer.alloc(SIZE * SIZE * 3);
  for (let i = 0; i < SIZE * SIZE; i++) {
    for (let c = 0; c < 3; c++) f[i * 3 + c] = Math.max(0, Math.min(255, Math.round(look.rgb[c]! + (random() * 2 - 1) * look.noise)));
  }
  return f;
}

async function embedderRuns(): Promise<number> {
  const m = await metricsRegistry.getSingleMetric('streamseg_embedder_runs_total')!.get();
  return m.values.reduce((s, v) => s + v.value, 0);
}

describe('per-scene adapters on a real Redis', () => {
  let server: TestRedisServer;
  let dir: string;
  let pkg: ModelPackage;
  const connections: Redis[] = [];
  const providers: AdapterLoraFeedProvider[] = [];

  beforeAll(async () => {
    server = await startRedisServer();
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-adapters-it-'));
    const pkgDir = path.join(dir, 'pkg');
    const names = Object.keys(LOOKS);
    await writeFixturePackage(pkgDir, {
      embeddingSize: 8,
      embedder: true,
      inputSize: SIZE,
      adapters: names.map((name, i) => ({ name, seed: i + 1, centroid: new Array(8).fill(0) })),
    });
    // centroids: the fixture embedder's mean embedding of each condition's frames
    const embedder = await OnnxEmbedder.create(await loadModelPackage(pkgDir));
    const index = { embedding: { size: 8, metric: 'cosine' }, adapters: [] as object[] };
    for (const name of names) {
      const frames = Array.from({ length: 16 }, (_, s) => frame(LOOKS[name]!, 1000 + s));
      index.adapters.push({ name, path: name, condition: name, centroids: [Array.from(meanEmbedding(await embedder.embedFrames(frames, MODEL_INPUT)))] });
    }
    await embedder.close();
    await writeFile(path.join(pkgDir, 'adapters', 'index.json'), JSON.stringify(index));
    pkg = await loadModelPackage(pkgDir);

    // the producer's side: a video of three scenes (fog, night, fog again) in Redis
    const producer = new Redis(server.url);
    connections.push(producer);
    const store = new FrameStore(producer, 300);
    const scenes = ['fog', 'night', 'fog'];
    for (let s = 0; s < scenes.length; s++) {
      for (let i = 0; i < 8; i++) await store.putFrame('video1', s * 8 + i, Buffer.alloc(1), frame(LOOKS[scenes[s]!]!, s * 100 + i));
    }
    // two workers: own connections, own providers (own caches, own embedder sessions)
    for (let w = 0; w < 2; w++) {
      const redis = new Redis(server.url, { maxRetriesPerRequest: null });
      connections.push(redis);
      providers.push(
        await createAdapterLoraFeedProvider({
          pkg,
          redis,
          frameStore: new FrameStore(redis, 300),
          retrieval: { topK: 2, temperature: 0.05 },
          sceneEmbedding: { frames: 4 },
        }),
      );
    }
  });

  afterAll(async () => {
    for (const p of providers) await p.close();
    for (const c of connections) c.disconnect();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('two workers share one embedding per scene, and scenes of different conditions get different mixes', async () => {
    const before = await embedderRuns();
    const batches = [0, 1, 2].flatMap((scene) =>
      [0, 4].map((offset) => ({ scene, frames: [0, 1, 2, 3].map((i) => ({ index: scene * 8 + offset + i, timestampMs: 0 })) })),
    );
    // scene after scene (as the producer emits them), every batch of a scene goes to both workers at once
    const results: (Awaited<ReturnType<AdapterLoraFeedProvider['feedsFor']>> & { w: number; scene: number })[] = [];
    for (const scene of [0, 1, 2]) {
      const ofScene = batches.filter((b) => b.scene === scene);
      results.push(
        ...(await Promise.all(
          ofScene.flatMap((b) =>
            providers.map((p, w) =>
              p.feedsFor({ videoId: 'video1', scene, sceneStartFrame: scene * 8, input: MODEL_INPUT, frames: b.frames }).then((r) => ({ ...r, w, scene })),
            ),
          ),
        )),
      );
    }
    expect((await embedderRuns()) - before).toBe(3); // one per scene, not per frame, batch or worker
    const computed = results.filter((r) => r.details.embeddingSource === 'computed');
    expect(computed.map((r) => r.scene).sort()).toEqual([0, 1, 2]);

    const mixOf = (scene: number) => results.filter((r) => r.scene === scene).map((r) => JSON.stringify(r.adapters));
    for (const scene of [0, 1, 2]) expect(new Set(mixOf(scene)).size).toBe(1); // all workers agree
    const fog = results.find((r) => r.scene === 0)!.adapters;
    const night = results.find((r) => r.scene === 1)!.adapters;
    expect(fog[0]!.name).toBe('fog');
    expect(night[0]!.name).toBe('night');
    expect(mixOf(0)[0]).not.toBe(mixOf(1)[0]);
    expect(mixOf(2)[0]).toBe(mixOf(0)[0]); // the fog scene again: same mix …
    // … and, in each worker, its merge from the cache
    for (const w of [0, 1]) {
      const scene2 = results.filter((r) => r.scene === 2 && r.w === w);
      expect(scene2.every((r) => r.cacheHit === true)).toBe(true);
    }
  });

  it('createLoraFeedsForPackage: adapters when the package has them, the base model otherwise', async () => {
    const logger = createLogger('silent');
    const config = { executionProvider: 'cpu' as const, intraOpThreads: 1, frameTtlSeconds: 300 };
    const handle = await createLoraFeedsForPackage({ pkg, config, redisUrl: server.url, logger, retrieval: { topK: 1 } });
    expect(handle.kind).toBe('adapters');
    const choice = await handle.provider.feedsFor({
      videoId: 'video1',
      scene: 1,
      sceneStartFrame: 8,
      input: MODEL_INPUT,
      frames: [{ index: 8, timestampMs: 0 }],
    });
    expect(choice.adapters).toEqual([{ name: 'night', weight: 1 }]);
    await handle.close();
    await handle.close();
    const bare = { ...pkg, manifest: { ...pkg.manifest, embedder: undefined, adapters: undefined } };
    const base = await createLoraFeedsForPackage({ pkg: bare, config, redisUrl: server.url, logger });
    expect(base.kind).toBe('base');
    expect(
      (await base.provider.feedsFor({ videoId: 'video1', scene: 0, sceneStartFrame: 0, input: MODEL_INPUT, frames: [{ index: 0, timestampMs: 0 }] })).adapters,
    ).toEqual([]);
    await base.close();
  });
});

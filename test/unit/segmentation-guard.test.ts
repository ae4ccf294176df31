import ort from 'onnxruntime-node';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startEmbeddedRedis, type EmbeddedRedis } from '../../src/cli/embedded-redis.js';
import { FrameStore } from '../../src/shared/frame-store.js';
import { createLogger } from '../../src/shared/logger.js';
import { loadModelPackage, type ModelManifest } from '../../src/shared/model-manifest.js';
import { VideoStateStore } from '../../src/shared/video-state.js';
import type { LoraFeedChoice, LoraFeedProvider } from '../../src/workers/segmentation/lora-feed.js';
import type { SegmentRequest, SegmentationOutput } from '../../src/workers/segmentation/onnx-session.repository.js';
import { SceneGuardStore } from '../../src/workers/segmentation/scene-guard.store.js';
import { SegmentationService, type SegmentationSession } from '../../src/workers/segmentation/segmentation.service.js';
import { TEST_MODEL_DIR } from '../fixtures/test-model.js';

const W = 8;
const H = 8;

/** Answers each run with a confidence chosen by which LoRA feeds it got: the only fake (ORT). */
class ScriptedSession implements SegmentationSession {
  runs: { adapters: boolean; confidence: boolean }[] = [];
  constructor(
    private readonly adapterFeed: ort.Tensor,
    private readonly sure: { adapters: number; base: number },
  ) {}
  async segment(request: SegmentRequest): Promise<SegmentationOutput> {
    const adapters = Object.values(request.feeds).includes(this.adapterFeed);
    this.runs.push({ adapters, confidence: request.confidence === true });
    const masks = request.frames.map(() => Buffer.alloc(W * H, adapters ? 1 : 2));
    const confidence = request.confidence ? new Float32Array(request.frames.length).fill(adapters ? this.sure.adapters : this.sure.base) : undefined;
    return { masks, inferenceMs: 1, ...(confidence ? { confidence } : {}) };
  }
}

describe('confidence guard in the segmentation service', () => {
  let server: EmbeddedRedis;
  let redis: Redis;
  let manifest: ModelManifest;

  beforeAll(async () => {
    server = await startEmbeddedRedis();
    redis = new Redis(server.url);
    manifest = (await loadModelPackage(TEST_MODEL_DIR)).manifest;
  });
  beforeEach(async () => {
    await redis.flushall();
  });
  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  async function setup(sure: { adapters: number; base: number }, margin: number | undefined) {
    const adapterFeed = new ort.Tensor('float32', new Float32Array(1), [1, 1]);
    const baseFeed = new ort.Tensor('float32', new Float32Array(1), [1, 1]);
    const choice: LoraFeedChoice = {
      feeds: { a: adapterFeed },
      adapters: [{ name: 'snow', weight: 1 }],
      cacheHit: false,
      ...(margin !== undefined ? { guard: { margin, baseFeeds: { a: baseFeed } } } : {}),
    };
    const loraFeeds: LoraFeedProvider = { feedsFor: async () => choice };
    const frameStore = new FrameStore(redis, 60);
    for (let i = 0; i < 16; i++) await frameStore.putFrame('v1', i, Buffer.alloc(3), Buffer.alloc(W * H * 3, i));
    const session = new ScriptedSession(adapterFeed, sure);
    const guards = new SceneGuardStore(redis, 60);
    const service = new SegmentationService({
      session,
      frameStore,
      states: new VideoStateStore(redis, 60),
      loraFeeds,
      guards,
      manifest,
      workerId: 'test',
      logger: createLogger('silent'),
    });
    const job = (first: number) => ({
      data: {
        videoId: 'v1',
        scene: 0,
        sceneStartFrame: 0,
        input: { width: W, height: H },
        frames: Array.from({ length: 8 }, (_, i) => ({ index: first + i, timestampMs: 0 })),
      },
      updateProgress: async () => undefined,
    });
    return { service, session, frameStore, guards, job };
  }

  async function records(frameStore: FrameStore, indices: number[]) {
    const out = [];
    for (const i of indices) out.push(JSON.parse((await redis.get(`ss:{v1}:res:${i}`))!) as { adapters: unknown[]; guard?: string });
    return { out, masks: await Promise.all(indices.map((i) => redis.getBuffer(`ss:{v1}:mask:${i}`))) };
  }

  it('falls back to the base model for the whole scene when the adapters make the network less sure', async () => {
    const { service, session, frameStore, job } = await setup({ adapters: 0.6, base: 0.8 }, 0);
    await service.segment(job(0));
    await service.segment(job(8));
    const { out, masks } = await records(frameStore, [0, 7, 8, 15]);
    expect(out.every((r) => r.adapters.length === 0 && r.guard === 'base')).toBe(true);
    expect(masks.every((m) => m![0] === 2)).toBe(true);
    // judged once (two runs with confidence), then the second batch runs the base alone
    expect(session.runs).toEqual([
      { adapters: true, confidence: true },
      { adapters: false, confidence: true },
      { adapters: false, confidence: false },
    ]);
  });

  it('keeps the adapters when they make the network surer by at least the margin', async () => {
    const { service, frameStore, job } = await setup({ adapters: 0.9, base: 0.7 }, 0.1);
    await service.segment(job(0));
    await service.segment(job(8));
    const { out, masks } = await records(frameStore, [0, 15]);
    expect(out.map((r) => r.guard)).toEqual(['kept', 'kept']);
    expect(out[0]!.adapters).toEqual([{ name: 'snow', weight: 1 }]);
    expect(masks.every((m) => m![0] === 1)).toBe(true);
  });

  it('lets the first verdict stored for a scene hold for every worker', async () => {
    const { service, frameStore, guards, job } = await setup({ adapters: 0.9, base: 0.1 }, 0);
    await guards.settle('v1', 0, 'base'); // another worker judged the scene first
    await service.segment(job(0));
    const { out } = await records(frameStore, [0]);
    expect(out[0]!.guard).toBe('base');
  });

  it('runs no guard when the video does not ask for one', async () => {
    const { service, session, frameStore, job } = await setup({ adapters: 0.1, base: 0.9 }, undefined);
    await service.segment(job(0));
    const { out } = await records(frameStore, [0]);
    expect(out[0]!.guard).toBeUndefined();
    expect(session.runs).toEqual([{ adapters: true, confidence: false }]);
  });
});

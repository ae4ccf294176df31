import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FrameStore } from '../../src/shared/frame-store.js';
import { createLogger } from '../../src/shared/logger.js';
import { VideoStateStore } from '../../src/shared/video-state.js';
import { FrameStreamRepository } from '../../src/workers/sink/frame-stream.repository.js';
import { OverlayRepository } from '../../src/workers/sink/overlay.repository.js';
import { SinkService, type SinkJobHandle } from '../../src/workers/sink/sink.service.js';
import { VideoEncoderRepository } from '../../src/workers/sink/video-encoder.repository.js';
import { startRedisServer, type TestRedisServer } from '../helpers/redis-server.js';
import { paintSource, probeFacts } from '../fixtures/synthetic-frames.js';
import { TEST_CLASSES, TEST_PALETTE } from '../fixtures/test-model.js';

const logger = createLogger('silent');
const MODEL_SIZE = 32;

describe('sink when the video fails elsewhere', () => {
  let server: TestRedisServer;
  let redis: Redis;
  let dir: string;

  beforeAll(async () => {
    server = await startRedisServer();
    redis = new Redis(server.url);
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-sink-fail-'));
  });
  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  function sinkService(states: VideoStateStore, frameStore: FrameStore): SinkService {
    return new SinkService({
      frameStore,
      states,
      stream: new FrameStreamRepository(redis, 1000, 3600),
      overlay: new OverlayRepository(TEST_CLASSES.map((c) => TEST_PALETTE[c]), 0.5),
      createEncoder: (options) => new VideoEncoderRepository(options),
      openBlockingConnection: () => new Redis(server.url, { maxRetriesPerRequest: null }),
      classNames: TEST_CLASSES,
      settings: { waitSeconds: 0.2, statusCheckMs: 50 },
      logger,
    });
  }

  it('stops mid-video, removes partial outputs and fails with the producer reason', async () => {
    const videoId = 'fails-mid-way';
    const outDir = path.join(dir, 'out');
    const states = new VideoStateStore(redis, 3600);
    const frameStore = new FrameStore(redis, 3600);
    const [width, height] = [40, 30];
    await states.init(videoId, { outDir, submittedAt: Date.now() });
    await states.setProbe(videoId, probeFacts(width, height, 10, 50, MODEL_SIZE));
    for (let i = 0; i < 3; i++) {
      await frameStore.putFrame(videoId, i, paintSource(width, height, () => 'road'), Buffer.alloc(MODEL_SIZE * MODEL_SIZE * 3));
      const record = { index: i, timestampMs: i * 100, scene: 0, adapters: [], cacheHit: null, inferenceMs: 1, workerId: 'test' };
      await frameStore.putResults(videoId, [{ mask: Buffer.alloc(MODEL_SIZE * MODEL_SIZE, 1), record }]);
    }
    const progress: unknown[] = [];
    const job: SinkJobHandle = { data: { videoId, outDir }, attemptsMade: 0, opts: { attempts: 3 }, updateProgress: async (p) => void progress.push(p) };
    const running = sinkService(states, frameStore).assemble(job).catch((e: unknown) => e);

    // Let the sink write the three frames, then fail the video as the producer would.
    for (let tries = 0; (await states.get(videoId))!.sinkFrames < 3; tries++) {
      expect(tries).toBeLessThan(300);
      await new Promise((r) => setTimeout(r, 20));
    }
    await states.markFailed(videoId, 'E_INPUT_DECODE: the file is truncated');
    const error = await running;
    expect(error).toMatchObject({ code: 'E_VIDEO_FAILED' });
    expect((error as Error).message).toContain('the file is truncated');
    expect(await readdir(outDir)).toEqual([]);
    // The producer's reason stays the video's error.
    expect((await states.get(videoId))!.error).toBe('E_INPUT_DECODE: the file is truncated');
    expect(progress).toContainEqual({ sinkFrames: 3, totalFrames: 50 });
  });

  it('refuses to resume a video an earlier attempt had started writing', async () => {
    const videoId = 'resumed';
    const states = new VideoStateStore(redis, 3600);
    const frameStore = new FrameStore(redis, 3600);
    await states.init(videoId, { outDir: path.join(dir, 'resumed'), submittedAt: Date.now() });
    await states.setProbe(videoId, probeFacts(16, 16, 10, 20, MODEL_SIZE));
    await states.setSinkFrames(videoId, 7);
    const job: SinkJobHandle = { data: { videoId, outDir: path.join(dir, 'resumed') }, attemptsMade: 0, opts: { attempts: 3 }, updateProgress: async () => undefined };
    await expect(sinkService(states, frameStore).assemble(job)).rejects.toMatchObject({ code: 'E_SINK_RESUME' });
    const state = await states.get(videoId);
    expect(state!.status).toBe('failed');
    expect(state!.error).toMatch(/^E_SINK_RESUME: an earlier sink attempt wrote 7 frame/);
  });
});

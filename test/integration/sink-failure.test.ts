import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FrameStore } from '../../src/shared/frame-store.js';
import { createLogger } from '../../src/shared/logger.js';
import { VideoStateStore } from '../../src/shared/video-state.js';
import { FrameStreamRepository } from '../../src/workers/sink/frame-stream.repository.js';
import { OverlayRepository } from '../../src/workers/sink/overlay.repository.js';
import type { MaskLine } from '../../src/workers/sink/mask-writer.js';
import { SinkCheckpointStore } from '../../src/workers/sink/sink-checkpoint.store.js';
import { SinkService, type SinkJobHandle, type SinkSettings } from '../../src/workers/sink/sink.service.js';
import { probeVideo } from '../helpers/media.js';
import { videoKeys } from '../../src/shared/redis-keys.js';
import { VideoEncoderRepository } from '../../src/workers/sink/video-encoder.repository.js';
import { startRedisServer, type TestRedisServer } from '../helpers/redis-server.js';
import { paintSource, probeFacts } from '../fixtures/synthetic-frames.js';
import { TEST_CLASSES, TEST_PALETTE } from '../fixtures/test-model.js';

const logger = createLogger('silent');
const MODEL_SIZE = 32;

describe('sink failures and takeover', () => {
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

  function sinkService(states: VideoStateStore, frameStore: FrameStore, settings: SinkSettings = {}, outputRoot?: string): SinkService {
    return new SinkService({
      frameStore,
      states,
      stream: new FrameStreamRepository(redis, 1000, 3600),
      checkpoints: new SinkCheckpointStore(redis, 3600),
      outputRoot,
      overlay: new OverlayRepository(
        TEST_CLASSES.map((c) => TEST_PALETTE[c]),
        0.5,
      ),
      createEncoder: (options) => new VideoEncoderRepository(options),
      openBlockingConnection: () => new Redis(server.url, { maxRetriesPerRequest: null }),
      classNames: TEST_CLASSES,
      settings: { waitSeconds: 0.2, statusCheckMs: 50, ...settings },
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
      await frameStore.putFrame(
        videoId,
        i,
        paintSource(width, height, () => 'road'),
        Buffer.alloc(MODEL_SIZE * MODEL_SIZE * 3),
      );
      const record = { index: i, timestampMs: i * 100, scene: 0, adapters: [], cacheHit: null, inferenceMs: 1, workerId: 'test' };
      await frameStore.putResults(videoId, [{ mask: Buffer.alloc(MODEL_SIZE * MODEL_SIZE, 1), record }]);
    }
    const progress: unknown[] = [];
    const job: SinkJobHandle = { data: { videoId, outDir }, attemptsMade: 0, opts: { attempts: 3 }, updateProgress: async (p) => void progress.push(p) };
    const running = sinkService(states, frameStore)
      .assemble(job)
      .catch((e: unknown) => e);

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

  it('fails with E_SOURCE_UNREADABLE, saying what to do, when it cannot read the file it decodes source frames from', async () => {
    const videoId = 'unreadable-source';
    const outDir = path.join(dir, 'unreadable');
    const states = new VideoStateStore(redis, 3600);
    const frameStore = new FrameStore(redis, 3600);
    const [width, height] = [40, 30];
    await states.init(videoId, { outDir, submittedAt: Date.now() });
    await states.setProbe(videoId, probeFacts(width, height, 10, 2, MODEL_SIZE));
    const record = { index: 0, timestampMs: 0, scene: 0, adapters: [], cacheHit: null, inferenceMs: 1, workerId: 'test' };
    await frameStore.putResults(videoId, [{ mask: Buffer.alloc(MODEL_SIZE * MODEL_SIZE, 1), record }]);
    const missing = path.join(dir, 'moved-away.mp4');
    const sourceDecode = { path: missing, width, height, fps: 10 };
    const job: SinkJobHandle = { data: { videoId, outDir, sourceDecode }, attemptsMade: 0, opts: { attempts: 1 }, updateProgress: async () => undefined };
    const error = await sinkService(states, frameStore)
      .assemble(job)
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'E_SOURCE_UNREADABLE' });
    expect((error as Error).message).toContain(missing);
    expect((error as Error).message).toContain('STREAMSEG_SOURCE_FRAMES=redis');
    expect((await states.get(videoId))!.error).toMatch(/^E_SOURCE_UNREADABLE: .*moved-away\.mp4/);
  });

  async function putResult(frameStore: FrameStore, videoId: string, i: number, width: number, height: number): Promise<void> {
    await frameStore.putFrame(
      videoId,
      i,
      paintSource(width, height, () => (i % 2 ? 'road' : 'sky')),
      Buffer.alloc(MODEL_SIZE * MODEL_SIZE * 3),
    );
    const record = { index: i, timestampMs: i * 100, scene: 0, adapters: [], cacheHit: null, inferenceMs: 1, workerId: 'test' };
    await frameStore.putResults(videoId, [{ mask: Buffer.alloc(MODEL_SIZE * MODEL_SIZE, i % 2), record }]);
  }

  it('a second sink takes a stopped video over from the last checkpoint: every frame once in MP4, masks and stream', async () => {
    const videoId = 'taken-over';
    const outDir = path.join(dir, 'takeover');
    const states = new VideoStateStore(redis, 3600);
    const frameStore = new FrameStore(redis, 3600);
    const [width, height, frames] = [32, 24, 10];
    await states.init(videoId, { outDir, submittedAt: Date.now() });
    await states.setProbe(videoId, probeFacts(width, height, 10, frames, MODEL_SIZE));
    for (let i = 0; i < 6; i++) await putResult(frameStore, videoId, i, width, height);
    const job: SinkJobHandle = { data: { videoId, outDir }, attemptsMade: 0, opts: { attempts: 3 }, updateProgress: async () => undefined };

    // First sink: segments of 4 frames; it writes frames 0..5 (one segment checkpointed) and is stopped.
    const first = new AbortController();
    const running = sinkService(states, frameStore, { segmentFrames: 4 })
      .assemble(job, first.signal)
      .catch((e: unknown) => e);
    await expect.poll(async () => (await states.get(videoId))!.sinkFrames, { timeout: 20_000 }).toBe(6);
    first.abort(new Error('sink shutting down'));
    await running;
    const checkpoint = await new SinkCheckpointStore(redis, 3600).get(videoId);
    expect(checkpoint).toMatchObject({ frames: 4, segments: 1 });
    // Frames are freed only once checkpointed: 0..3 gone, 4..5 kept for the next owner.
    expect(await redis.exists(videoKeys(videoId).source(3))).toBe(0);
    expect(await redis.exists(videoKeys(videoId).source(4))).toBe(1);
    // A dead writer may have appended past the checkpoint: the next owner truncates it.
    await writeFile(path.join(outDir, 'masks.ndjson.partial'), '{"index":4,"garbage":true}\n', { flag: 'a' });

    for (let i = 6; i < frames; i++) await putResult(frameStore, videoId, i, width, height);
    await states.markDecoded(videoId, frames);
    await expect(sinkService(states, frameStore, { segmentFrames: 4 }).assemble({ ...job, attemptsMade: 0 })).resolves.toMatchObject({ frames });

    const lines = (await readFile(path.join(outDir, 'masks.ndjson'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as MaskLine);
    expect(lines.map((l) => l.index)).toEqual(Array.from({ length: frames }, (_, i) => i));
    expect(lines.map((l) => Object.keys(l.masks))).toEqual(Array.from({ length: frames }, (_, i) => [i % 2 ? 'road' : 'sky']));
    expect(await probeVideo(path.join(outDir, 'annotated.mp4'))).toMatchObject({ width, height, frames });
    const entries = await redis.xrange(videoKeys(videoId).stream, '-', '+');
    expect(entries.map(([, f]) => (JSON.parse(f[1]!) as { index: number }).index)).toEqual(Array.from({ length: frames }, (_, i) => i));
    expect((await readdir(outDir)).sort()).toEqual(['annotated.mp4', 'masks.ndjson', 'report.json']);
    expect((await states.get(videoId))!.status).toBe('done');
  });

  it('a sink that lost the video to another owner stops at its next checkpoint without failing the video or touching its files', async () => {
    const videoId = 'fenced';
    const outDir = path.join(dir, 'fenced');
    const states = new VideoStateStore(redis, 3600);
    const frameStore = new FrameStore(redis, 3600);
    const checkpoints = new SinkCheckpointStore(redis, 3600);
    const [width, height] = [32, 24];
    await states.init(videoId, { outDir, submittedAt: Date.now() });
    await states.setProbe(videoId, probeFacts(width, height, 10, 12, MODEL_SIZE));
    for (let i = 0; i < 2; i++) await putResult(frameStore, videoId, i, width, height);
    const job: SinkJobHandle = { data: { videoId, outDir }, attemptsMade: 0, opts: { attempts: 3 }, updateProgress: async () => undefined };
    const running = sinkService(states, frameStore, { segmentFrames: 4 })
      .assemble(job)
      .catch((e: unknown) => e);
    await expect.poll(async () => (await states.get(videoId))!.sinkFrames, { timeout: 20_000 }).toBe(2);
    // Another sink claims the video (this one's lock expired while it was stalled).
    await checkpoints.claim(videoId, 'another-sink');
    for (let i = 2; i < 4; i++) await putResult(frameStore, videoId, i, width, height);
    const error = await running;
    expect(error).toMatchObject({ code: 'E_SINK_OWNER_LOST' });
    expect(await checkpoints.get(videoId)).toBeNull();
    const state = await states.get(videoId);
    expect(state!.status).not.toBe('failed');
    // Frames stay for the new owner; its files are not removed.
    expect(await redis.exists(videoKeys(videoId).source(0))).toBe(1);
    expect(await readdir(outDir)).toContain('masks.ndjson.partial');
  });

  it('refuses an output directory outside the output root, writing nothing', async () => {
    const videoId = 'escapes';
    const states = new VideoStateStore(redis, 3600);
    const outDir = path.join(dir, 'root', '..', 'elsewhere');
    await states.init(videoId, { outDir, submittedAt: Date.now() });
    const job: SinkJobHandle = { data: { videoId, outDir }, attemptsMade: 0, opts: { attempts: 3 }, updateProgress: async () => undefined };
    const error = await sinkService(states, new FrameStore(redis, 3600), {}, path.join(dir, 'root'))
      .assemble(job)
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'E_OUTPUT_DIR' });
    expect((await states.get(videoId))!.error).toMatch(/^E_OUTPUT_DIR: output directory .*elsewhere is outside the output root/);
    expect(await readdir(dir)).not.toContain('elsewhere');
  });
});

import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type StreamsegConfig } from '../../src/shared/config.js';
import { FrameStore, type FrameResult } from '../../src/shared/frame-store.js';
import type { AssembleVideoJob, SegmentFramesJob } from '../../src/shared/job-schemas.js';
import { createLogger } from '../../src/shared/logger.js';
import type { ModelPackage } from '../../src/shared/model-manifest.js';
import { JobName, QUEUE_PREFIX, QueueName } from '../../src/shared/queues.js';
import { videoKeys } from '../../src/shared/redis-keys.js';
import { VideoStateStore, type VideoState } from '../../src/shared/video-state.js';
import { startSegmentationWorker, type SegmentationWorkerHandle } from '../../src/workers/segmentation/segmentation.worker.js';
import { decode, decompress } from '../../src/workers/sink/coco-rle.js';
import type { MaskLine } from '../../src/workers/sink/mask-writer.js';
import type { VideoReport } from '../../src/workers/sink/report-builder.js';
import { startSink, type SinkHandle } from '../../src/workers/sink/sink.worker.js';
import { startRedisServer, type TestRedisServer } from '../helpers/redis-server.js';
import { probeVideo } from '../helpers/media.js';
import { expectedSourceMask, letterboxInput, paintSource, probeFacts, type Painter } from '../fixtures/synthetic-frames.js';
import { TEST_CLASSES, makeTestModel } from '../fixtures/test-model.js';

const logger = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
const MODEL_SIZE = 64;
const WIDTH = 96;
const HEIGHT = 54;
const FPS = 10;
const FRAMES = 20;
const CUT = 12;

/** Scene 0: sky left, road right. Scene 1: vegetation above person, with a pole on the right. */
const painters: [Painter, Painter] = [
  (x) => (x < WIDTH / 2 ? 'sky' : 'road'),
  (x, y) => (x >= 80 && x < 84 ? 'pole' : y < HEIGHT / 2 ? 'vegetation' : 'person'),
];
const painterOf = (index: number) => painters[index < CUT ? 0 : 1];

async function waitForStatus(states: VideoStateStore, videoId: string, timeoutMs = 90_000): Promise<VideoState> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = await states.get(videoId);
    if (state && (state.status === 'done' || state.status === 'failed')) return state;
    if (Date.now() > deadline) throw new Error(`video ${videoId} still ${state?.status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('segmentation worker + sink on real Redis, ONNX Runtime and ffmpeg', () => {
  let server: TestRedisServer;
  let redis: Redis;
  let dir: string;
  let pkg: ModelPackage;
  let config: StreamsegConfig;
  let worker: SegmentationWorkerHandle;
  let sink: SinkHandle;
  let framesQueue: Queue;
  let sinkQueue: Queue;

  beforeAll(async () => {
    server = await startRedisServer();
    redis = new Redis(server.url);
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-worker-sink-'));
    pkg = await makeTestModel(path.join(dir, 'model'), MODEL_SIZE);
    config = loadConfig({ workerConcurrency: 2, intraOpThreads: 1, overlayAlpha: 0.5, outDir: dir }, {});
    worker = await startSegmentationWorker({ config, redisUrl: server.url, logger, modelPackage: pkg, workerId: 'test-worker' });
    sink = await startSink({ config, redisUrl: server.url, logger, modelPackage: pkg });
    framesQueue = new Queue(QueueName.Frames, { connection: redis, prefix: QUEUE_PREFIX });
    sinkQueue = new Queue(QueueName.Sink, { connection: redis, prefix: QUEUE_PREFIX });
  });

  afterAll(async () => {
    await Promise.allSettled([worker?.close(), sink?.close()]);
    await Promise.allSettled([framesQueue?.close(), sinkQueue?.close()]);
    redis?.disconnect();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('emits every frame once, in order, from out-of-order and duplicated jobs', async () => {
    const videoId = 'two-scenes';
    const outDir = path.join(dir, 'out');
    const states = new VideoStateStore(redis, 3600);
    const frameStore = new FrameStore(redis, 3600);
    const facts = probeFacts(WIDTH, HEIGHT, FPS, FRAMES, MODEL_SIZE);

    await states.init(videoId, { outDir, submittedAt: Date.now() });
    await states.setProbe(videoId, facts);
    await states.addScene(videoId, { index: 0, startFrame: 0 });
    await states.addScene(videoId, { index: 1, startFrame: CUT });
    for (let i = 0; i < FRAMES; i++) {
      const source = paintSource(WIDTH, HEIGHT, painterOf(i));
      await frameStore.putFrame(videoId, i, source, letterboxInput(source, WIDTH, HEIGHT, facts.letterbox, MODEL_SIZE));
    }
    const sinkJob: AssembleVideoJob = { videoId, outDir };
    await sinkQueue.add(JobName.AssembleVideo, sinkJob, { jobId: videoId });

    const batches: SegmentFramesJob[] = [];
    for (let start = 0; start < FRAMES; start += 4) {
      const scene = start < CUT ? 0 : 1;
      const frames = Array.from({ length: Math.min(4, (scene === 0 ? CUT : FRAMES) - start) }, (_, k) => ({
        index: start + k,
        timestampMs: ((start + k) * 1000) / FPS,
      }));
      // Scene 1 asks for a vocabulary subset: masks must still hold model class indices.
      batches.push({ videoId, scene, sceneStartFrame: scene === 0 ? 0 : CUT, frames, ...(scene === 1 ? { classes: ['person', 'pole', 'vegetation'] } : {}) });
    }
    // Last batch first, and one batch twice (jobs run at least once).
    for (const [k, batch] of [...batches.entries()].reverse()) await framesQueue.add(JobName.SegmentFrames, batch, { jobId: `${videoId}-${k}` });
    await framesQueue.add(JobName.SegmentFrames, batches[1]!, { jobId: `${videoId}-again` });
    await states.markDecoded(videoId, FRAMES);

    const state = await waitForStatus(states, videoId);
    expect(state.error).toBeUndefined();
    expect(state.status).toBe('done');
    expect(state.sinkFrames).toBe(FRAMES);
    expect(state.stageMs.segment).toBeGreaterThan(0);
    expect(state.stageMs.sink).toBeGreaterThan(0);

    // masks.ndjson: one line per frame, in order, masks equal to what the palette model must give.
    const lines = (await readFile(path.join(outDir, 'masks.ndjson'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as MaskLine);
    expect(lines.map((l) => l.index)).toEqual(Array.from({ length: FRAMES }, (_, i) => i));
    for (const line of lines) {
      expect(line.size).toEqual([HEIGHT, WIDTH]);
      expect(line.timestampMs).toBe((line.index * 1000) / FPS);
      expect(line.scene).toBe(line.index < CUT ? 0 : 1);
      expect(line.adapters).toEqual([]);
      expect(line.cacheHit).toBeNull();
      const expected = expectedSourceMask(painterOf(line.index), WIDTH, HEIGHT, facts.letterbox, MODEL_SIZE);
      const present = [...new Set(expected)].map((v) => TEST_CLASSES[v]!).sort();
      expect(Object.keys(line.masks).sort()).toEqual(present);
      for (const [name, rle] of Object.entries(line.masks)) {
        const value = TEST_CLASSES.indexOf(name as (typeof TEST_CLASSES)[number]);
        expect(decode(decompress(rle))).toEqual(expected.map((v) => (v === value ? 1 : 0)));
      }
    }
    // Halves are exact through letterbox and back: 48 columns of 54 rows each.
    expect(decode(decompress(lines[0]!.masks.sky!)).reduce((a, b) => a + b, 0)).toBe(48 * HEIGHT);

    const video = await probeVideo(path.join(outDir, 'annotated.mp4'));
    expect(video).toMatchObject({ codec: 'h264', width: WIDTH, height: HEIGHT, frames: FRAMES });
    expect(video.fps).toBeCloseTo(FPS, 3);

    const report = JSON.parse(await readFile(path.join(outDir, 'report.json'), 'utf8')) as VideoReport;
    expect(report).toMatchObject({
      videoId,
      source: { width: WIDTH, height: HEIGHT, fps: FPS, codec: 'rawvideo' },
      frames: FRAMES,
      scenes: [
        { index: 0, startFrame: 0, endFrame: CUT, frames: CUT, adapters: [] },
        { index: 1, startFrame: CUT, endFrame: FRAMES, frames: FRAMES - CUT, adapters: [] },
      ],
      warnings: [],
    });
    expect(report.timings.stageMs.segment).toBeGreaterThan(0);
    expect(report.timings.stageMs.sink).toBeGreaterThan(0);
    expect(report.timings.framesPerSecond).toBeGreaterThan(0);

    // The stream holds every record once, in order.
    const entries = await redis.xrange(videoKeys(videoId).stream, '-', '+');
    const records = entries.map(([, fields]) => JSON.parse(fields[fields.indexOf('record') + 1]!) as FrameResult);
    expect(records.map((r) => r.index)).toEqual(Array.from({ length: FRAMES }, (_, i) => i));
    expect(records.every((r) => r.workerId === 'test-worker' && r.inferenceMs > 0)).toBe(true);

    // Frame data is gone once written; no partial files are left.
    const keys = await redis.keys(`ss:{${videoId}}:*`);
    expect(keys.filter((k) => /:(src|in|mask|res):/.test(k))).toEqual([]);
    expect((await readdir(outDir)).sort()).toEqual(['annotated.mp4', 'masks.ndjson', 'report.json']);

    const job = await sinkQueue.getJob(videoId);
    expect(await job!.getState()).toBe('completed');
    expect(job!.progress).toEqual({ sinkFrames: FRAMES, totalFrames: FRAMES });
  });

  it('pads an odd frame size by one pixel (yuv420p) and fails a frames job naming unknown classes', async () => {
    const videoId = 'odd-size';
    const outDir = path.join(dir, 'odd');
    const [width, height, frames] = [33, 21, 5];
    const states = new VideoStateStore(redis, 3600);
    const frameStore = new FrameStore(redis, 3600);
    const facts = probeFacts(width, height, 25, frames, MODEL_SIZE);
    const paint: Painter = (x, y) => (y < 7 ? 'sky' : x < 11 ? 'building' : 'vehicle');
    await states.init(videoId, { outDir, submittedAt: Date.now() });
    await states.setProbe(videoId, facts);
    await states.addScene(videoId, { index: 0, startFrame: 0 });
    for (let i = 0; i < frames; i++) {
      const source = paintSource(width, height, paint);
      await frameStore.putFrame(videoId, i, source, letterboxInput(source, width, height, facts.letterbox, MODEL_SIZE));
    }
    await sinkQueue.add(JobName.AssembleVideo, { videoId, outDir }, { jobId: videoId });
    const refs = Array.from({ length: frames }, (_, i) => ({ index: i, timestampMs: i * 40 }));
    const bad = await framesQueue.add(
      JobName.SegmentFrames,
      { videoId, scene: 0, sceneStartFrame: 0, frames: refs, classes: ['sky', 'unicorn'] },
      { attempts: 3 },
    );
    await framesQueue.add(JobName.SegmentFrames, { videoId, scene: 0, sceneStartFrame: 0, frames: refs });
    await states.markDecoded(videoId, frames);

    const state = await waitForStatus(states, videoId);
    expect(state.status).toBe('done');
    const video = await probeVideo(path.join(outDir, 'annotated.mp4'));
    expect(video).toMatchObject({ codec: 'h264', width: width + 1, height: height + 1, frames, pixFmt: 'yuv420p' });

    // Unknown class: refused at once (no retries), with the code in the reason.
    const failed = await framesQueue.getJob(bad.id!);
    expect(await failed!.getState()).toBe('failed');
    expect(failed!.attemptsMade).toBe(1);
    expect(failed!.failedReason).toMatch(/^E_JOB_PAYLOAD: .*"unicorn" not in the model/);
  });
});

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Queue, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { FfmpegRepository } from '../../src/producers/ffmpeg.repository.js';
import { LetterboxResizer } from '../../src/producers/letterbox-resizer.js';
import { ProducerService, type DecodeProgress, type ProducerDependencies, type ProducerSettings } from '../../src/producers/producer.service.js';
import { startProducer } from '../../src/producers/producer.worker.js';
import { loadConfig } from '../../src/shared/config.js';
import { planModelInput } from '../../src/shared/model-input-plan.js';
import { FrameStore } from '../../src/shared/frame-store.js';
import { assembleVideoJobSchema, segmentFramesJobSchema, type DecodeVideoJob, type SegmentFramesJob } from '../../src/shared/job-schemas.js';
import { SourceFrameHandoffs, type SourceFrameHandoff } from '../../src/shared/source-frame-handoff.js';
import { SourceDecoderRepository } from '../../src/workers/sink/source-decoder.repository.js';
import { JobName, QUEUE_PREFIX, QueueName } from '../../src/shared/queues.js';
import { videoKeys } from '../../src/shared/redis-keys.js';
import { VideoStateStore } from '../../src/shared/video-state.js';
import { makeTestVideo } from '../helpers/media.js';
import { startRedisServer, type TestRedisServer } from '../helpers/redis-server.js';

// 20 frames of testsrc2, then a hard cut to 10 frames of mandelbrot, at 10 fps.
const SOURCE = { width: 320, height: 240, fps: 10, cutAt: 20, frames: 30 };
const MODEL_INPUT = { width: 160, height: 160 };
const TTL = 600;
const logger = pino({ level: 'silent' });

const settings: ProducerSettings = {
  fps: undefined,
  batchFrames: 8,
  sceneThreshold: 0.3,
  minSceneFrames: 4,
  highWaterFrames: 1000,
  highWaterBytes: 1024 ** 3,
  sourceFrames: 'redis',
  jobAttempts: 3,
};

let redisServer: TestRedisServer;
let redis: Redis;
let dir: string;
let videoFile: string;
let textFile: string;
let framesQueue: Queue;
let sinkQueue: Queue;
let videosQueue: Queue;
let states: VideoStateStore;
let frameStore: FrameStore;

function fakeJob(data: DecodeVideoJob, attemptsMade = 0) {
  const progress: DecodeProgress[] = [];
  return {
    progress,
    handle: { data, attemptsMade, opts: { attempts: 3 }, updateProgress: async (p: DecodeProgress) => void progress.push(p) },
  };
}

function serviceDependencies(overrides: Partial<ProducerSettings> = {}): ProducerDependencies {
  return {
    ffmpeg: new FfmpegRepository(),
    frameStore,
    states,
    queues: { frames: framesQueue, sink: sinkQueue },
    settings: { ...settings, ...overrides },
    modelInput: MODEL_INPUT,
    logger,
  };
}

function service(overrides: Partial<ProducerSettings> = {}) {
  return new ProducerService(serviceDependencies(overrides));
}

async function submit(videoId: string, file: string, extra: Partial<DecodeVideoJob['options']> = {}): Promise<DecodeVideoJob> {
  const data: DecodeVideoJob = {
    videoId,
    input: { kind: 'file', path: file },
    options: { outDir: path.join(dir, 'out', videoId), ...extra },
    submittedAt: Date.now(),
  };
  await states.init(videoId, { outDir: data.options.outDir, submittedAt: data.submittedAt });
  return data;
}

async function framesJobsOf(videoId: string): Promise<Job<SegmentFramesJob>[]> {
  const jobs = (await framesQueue.getJobs(['waiting', 'delayed', 'active', 'completed', 'failed'])) as Job<SegmentFramesJob>[];
  return jobs.filter((j) => j.data.videoId === videoId).sort((a, b) => a.data.frames[0]!.index - b.data.frames[0]!.index);
}

beforeAll(async () => {
  redisServer = await startRedisServer();
  redis = new Redis(redisServer.url, { maxRetriesPerRequest: null });
  dir = await mkdtemp(path.join(os.tmpdir(), 'streamseg-producer-'));
  videoFile = path.join(dir, 'two-scenes.mp4');
  await makeTestVideo(videoFile, {
    width: SOURCE.width,
    height: SOURCE.height,
    fps: SOURCE.fps,
    framesPerScene: [SOURCE.cutAt, SOURCE.frames - SOURCE.cutAt],
    video: ['libx264', '-pix_fmt', 'yuv420p'],
  });
  textFile = path.join(dir, 'notes.mp4');
  await writeFile(textFile, 'these are meeting notes, not a video\n'.repeat(50));
  const queue = (name: string) => new Queue(name, { connection: redis, prefix: QUEUE_PREFIX });
  framesQueue = queue(QueueName.Frames);
  sinkQueue = queue(QueueName.Sink);
  videosQueue = queue(QueueName.Videos);
  states = new VideoStateStore(redis, TTL);
  frameStore = new FrameStore(redis, TTL);
});

afterAll(async () => {
  await Promise.allSettled([framesQueue?.close(), sinkQueue?.close(), videosQueue?.close()]);
  redis?.disconnect();
  await redisServer?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('ProducerService on a real video and a real Redis', () => {
  beforeEach(async () => {
    await redis.flushall();
  });

  it('stores every frame with a TTL, enqueues scene-aligned batches, finds the cut at the exact frame', async () => {
    const data = await submit('vid1', videoFile, { classes: ['road', 'sky'] });
    const job = fakeJob(data);
    const summary = await service().decodeVideo(job.handle);
    expect(summary).toEqual({ videoId: 'vid1', totalFrames: 30, scenes: 2, framesJobs: 5, resumedFrom: 0 });

    // frames: source and letterboxed input, each with a TTL
    const keys = videoKeys('vid1');
    for (const index of [0, 19, 20, 29]) {
      const [source, input] = await redis.mgetBuffer(keys.source(index), keys.input(index));
      expect(source?.length).toBe(SOURCE.width * SOURCE.height * 3);
      expect(input?.length).toBe(MODEL_INPUT.width * MODEL_INPUT.height * 3);
      for (const key of [keys.source(index), keys.input(index)]) {
        const ttl = await redis.ttl(key);
        expect(ttl).toBeGreaterThan(0);
        expect(ttl).toBeLessThanOrEqual(TTL);
      }
    }
    expect(await redis.exists(keys.source(30))).toBe(0);
    // the letterbox bars of the input are black
    const input0 = (await frameStore.getInputs('vid1', [0]))[0]!;
    expect(input0.subarray(0, MODEL_INPUT.width * 3 * 20).every((b) => b === 0)).toBe(true);

    // frames jobs: batches of ≤ 8, never spanning the cut, deterministic ids
    const jobs = await framesJobsOf('vid1');
    expect(jobs.map((j) => j.id)).toEqual(['vid1-0', 'vid1-8', 'vid1-16', 'vid1-20', 'vid1-28']);
    expect(jobs.map((j) => j.name)).toEqual(Array(5).fill(JobName.SegmentFrames));
    expect(jobs.map((j) => [j.data.scene, j.data.sceneStartFrame, j.data.frames.map((f) => f.index)])).toEqual([
      [0, 0, [0, 1, 2, 3, 4, 5, 6, 7]],
      [0, 0, [8, 9, 10, 11, 12, 13, 14, 15]],
      [0, 0, [16, 17, 18, 19]],
      [1, 20, [20, 21, 22, 23, 24, 25, 26, 27]],
      [1, 20, [28, 29]],
    ]);
    for (const j of jobs) {
      expect(segmentFramesJobSchema.parse(j.data)).toEqual(j.data);
      expect(j.data.classes).toEqual(['road', 'sky']);
      for (const f of j.data.frames) expect(f.timestampMs).toBeCloseTo(f.index * 100, 6);
      expect(j.opts.attempts).toBe(3);
    }

    // one sink job, owned by the video id
    const sinkJobs = await sinkQueue.getJobs(['waiting', 'active', 'delayed']);
    expect(sinkJobs).toHaveLength(1);
    expect(sinkJobs[0]!.id).toBe('vid1');
    expect(sinkJobs[0]!.name).toBe(JobName.AssembleVideo);
    // With how annotated.mp4 is laid out: the source's start, and its audio (this video has none).
    expect(sinkJobs[0]!.data).toEqual({
      videoId: 'vid1',
      outDir: data.options.outDir,
      videoOffsetMs: 0,
      audio: { action: 'none', reason: 'the input has no audio stream' },
    });

    // video state
    const state = await states.get('vid1');
    expect(state).toMatchObject({
      status: 'decoded',
      decodedFrames: 30,
      totalFrames: 30,
      expectedFrames: 30,
      sourceWidth: 320,
      sourceHeight: 240,
      fps: 10,
      inputWidth: 160,
      inputHeight: 160,
      letterbox: { x: 0, y: 20, width: 160, height: 120 },
      codec: 'h264',
    });
    expect(state!.stageMs.decode).toBeGreaterThan(0);
    expect(await states.getScenes('vid1')).toEqual([
      { index: 0, startFrame: 0 },
      { index: 1, startFrame: SOURCE.cutAt },
    ]);
    expect(job.progress.at(-1)).toEqual({ decodedFrames: 30, expectedFrames: 30 });
  });

  it('resamples to a requested frame rate', async () => {
    const data = await submit('vid5fps', videoFile, { fps: 5 });
    const summary = await service().decodeVideo(fakeJob(data).handle);
    expect(summary.totalFrames).toBe(15);
    expect(await states.getScenes('vid5fps')).toEqual([
      { index: 0, startFrame: 0 },
      { index: 1, startFrame: 10 },
    ]);
    const jobs = await framesJobsOf('vid5fps');
    expect(jobs.flatMap((j) => j.data.frames.map((f) => f.timestampMs))).toEqual(Array.from({ length: 15 }, (_, i) => i * 200));
  });

  it('for a file the sink decodes itself, stores only the model input ffmpeg made, as the resizer would, and finds the same cut', async () => {
    const data = await submit('vidsinkdecode', videoFile);
    const summary = await service({ sourceFrames: 'sink' }).decodeVideo(fakeJob(data).handle);
    expect(summary).toMatchObject({ totalFrames: 30, scenes: 2 });
    expect(await states.getScenes('vidsinkdecode')).toEqual([
      { index: 0, startFrame: 0 },
      { index: 1, startFrame: SOURCE.cutAt },
    ]);
    const keys = videoKeys('vidsinkdecode');
    const probe = await new FfmpegRepository().probe({ kind: 'file', path: videoFile });
    const resizer = new LetterboxResizer(probe.width, probe.height, planModelInput(MODEL_INPUT, probe.width, probe.height));
    const sources: Buffer[] = [];
    for await (const frame of new FfmpegRepository().decodeFrames(
      { kind: 'file', path: videoFile },
      { fps: probe.fps, width: probe.width, height: probe.height },
    )) {
      sources.push(Buffer.from(frame.data));
    }
    for (const index of [0, 19, 20, 29]) {
      expect(await redis.exists(keys.source(index))).toBe(0);
      const input = (await frameStore.getInputs('vidsinkdecode', [index]))[0]!;
      const expected = await resizer.resize(sources[index]!);
      expect(input.length).toBe(expected.length);
      let within = 0;
      let difference = 0;
      for (let i = 0; i < input.length; i++) {
        const d = Math.abs(input[i]! - expected[i]!);
        difference += d;
        if (d <= 1) within++;
      }
      // Two lanczos implementations round testsrc2's sharp edges and text differently (92% of bytes
      // within one level here, 99.9% on street video); a frame shifted by one pixel differs by a mean 7 levels.
      expect(within / input.length).toBeGreaterThan(0.9);
      expect(difference / input.length).toBeLessThan(1);
      // the letterbox bars (20 rows above the 160x120 content) are black
      expect(input.subarray(0, MODEL_INPUT.width * 3 * 20).every((b) => b === 0)).toBe(true);
    }
  });

  it('with the sink in this process, hands it every source frame exactly as its own decode of the file makes them, from the one decode', async () => {
    const data = await submit('vidhandoff', videoFile);
    const handoffs = new SourceFrameHandoffs(64 * 1024 * 1024);
    const producer = new ProducerService({ ...serviceDependencies({ sourceFrames: 'sink' }), sourceHandoffs: handoffs });
    expect(await producer.decodeVideo(fakeJob(data).handle)).toMatchObject({ totalFrames: 30, scenes: 2 });
    const sinkJob = (await sinkQueue.getJobs(['waiting'])).find((job) => job.data.videoId === 'vidhandoff')!;
    const { sourceDecode } = assembleVideoJobSchema.parse(sinkJob.data);
    const own: Buffer[] = [];
    for await (const frame of new SourceDecoderRepository().decodeSourceFrames(sourceDecode!, 'yuv420p')) own.push(Buffer.from(frame));
    expect(own).toHaveLength(30);
    const handoff = handoffs.claim('vidhandoff')!;
    expect(handoffs.bytesHeld).toBe(30 * own[0]!.length);
    for (let index = 0; index < 30; index++) {
      const handed = handoff.take(index)!;
      expect(handed.equals(own[index]!)).toBe(true);
      handoff.giveBack(handed);
    }
    // The model inputs are those of the decode without the second output.
    const inputs = await frameStore.getInputs('vidhandoff', [0, 29]);
    await redis.flushall();
    const plain = await submit('vidplain', videoFile);
    await service({ sourceFrames: 'sink' }).decodeVideo(fakeJob(plain).handle);
    expect(await frameStore.getInputs('vidplain', [0, 29])).toEqual(inputs);
  });

  it('with no sink of this process taking the frames, gives the handoff up once its budget is spent and decodes on', async () => {
    const data = await submit('vidnosink', videoFile);
    const frameBytes = SOURCE.width * SOURCE.height * 1.5;
    const handoffs = new SourceFrameHandoffs(10 * frameBytes);
    const opened = vi.spyOn(handoffs, 'open');
    const producer = new ProducerService({ ...serviceDependencies({ sourceFrames: 'sink' }), sourceHandoffs: handoffs });
    expect(await producer.decodeVideo(fakeJob(data).handle)).toMatchObject({ totalFrames: 30, scenes: 2 });
    const handoff = opened.mock.results[0]!.value as SourceFrameHandoff;
    expect(handoff.frameBytes).toBe(frameBytes);
    expect(handoff.take(0)).toBeUndefined();
    expect(handoffs.bytesHeld).toBe(0);
    expect(handoffs.claim('vidnosink')).toBeUndefined();
    expect(await framesJobsOf('vidnosink')).not.toHaveLength(0);
  });

  it('enqueues nothing twice when the decode is retried', async () => {
    const data = await submit('vidretry', videoFile);
    await service().decodeVideo(fakeJob(data).handle);
    const before = (await framesJobsOf('vidretry')).map((j) => j.id);
    await service().decodeVideo(fakeJob(data, 1).handle);
    expect((await framesJobsOf('vidretry')).map((j) => j.id)).toEqual(before);
    expect(await sinkQueue.getJobCounts('waiting')).toMatchObject({ waiting: 1 });
    expect((await states.get('vidretry'))?.totalFrames).toBe(30);
  });

  it('resumes after the frames the sink has already written', async () => {
    const data = await submit('vidresume', videoFile);
    await states.setSinkFrames('vidresume', 12);
    const summary = await service().decodeVideo(fakeJob(data, 1).handle);
    expect(summary).toMatchObject({ totalFrames: 30, scenes: 2, resumedFrom: 12 });
    expect(await redis.exists(videoKeys('vidresume').source(11))).toBe(0);
    expect(await redis.exists(videoKeys('vidresume').source(12))).toBe(1);
    const jobs = await framesJobsOf('vidresume');
    expect(jobs.map((j) => j.data.frames[0]!.index)).toEqual([12, 20, 28]);
    expect(jobs.map((j) => j.data.scene)).toEqual([0, 1, 1]);
  });

  it('pauses while the sink is behind and goes on when its checkpoint catches up', async () => {
    const data = await submit('vidslow', videoFile);
    const run = service({ highWaterFrames: 5 }).decodeVideo(fakeJob(data).handle);
    const srcKeys = async () => (await redis.keys(`${videoKeys('vidslow').pattern.slice(0, -1)}src:*`)).length;
    await expect.poll(srcKeys, { timeout: 10_000 }).toBe(5);
    await new Promise((r) => setTimeout(r, 300));
    expect(await srcKeys()).toBe(5);
    // the partial batch was enqueued before pausing, or the sink would wait forever for it
    expect((await framesJobsOf('vidslow')).flatMap((j) => j.data.frames.map((f) => f.index))).toEqual([0, 1, 2, 3, 4]);
    // the producer tells the sink how many frames it lets Redis hold
    expect((await states.get('vidslow'))?.maxFramesInRedis).toBe(5);
    // written but not checkpointed: still in Redis, so the producer keeps waiting
    await states.setSinkFrames('vidslow', 5);
    await new Promise((r) => setTimeout(r, 300));
    expect((await states.get('vidslow'))?.decodedFrames).toBe(5);
    // the sink checkpoints and frees frames 0..4
    for (let i = 0; i < 5; i++) await frameStore.deleteFrame('vidslow', i);
    await states.setCheckpointFrames('vidslow', 5);
    await expect.poll(srcKeys, { timeout: 10_000 }).toBe(5); // the next five
    await states.setCheckpointFrames('vidslow', 30);
    await expect(run).resolves.toMatchObject({ totalFrames: 30 });
  });

  it('stops waiting when the video fails elsewhere, keeping that reason', async () => {
    const data = await submit('vidfail', videoFile);
    const run = service({ highWaterFrames: 3 }).decodeVideo(fakeJob(data).handle);
    await expect.poll(async () => (await states.get('vidfail'))?.decodedFrames, { timeout: 10_000 }).toBe(3);
    await states.markFailed('vidfail', 'E_SINK: disk full');
    await expect(run).rejects.toMatchObject({ code: 'E_VIDEO_FAILED' });
    expect((await states.get('vidfail'))?.error).toBe('E_SINK: disk full');
  });

  it('fails a text file with E_INPUT_NOT_VIDEO and a message naming it', async () => {
    const data = await submit('vidtext', textFile);
    const error = await service()
      .decodeVideo(fakeJob(data).handle)
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'E_INPUT_NOT_VIDEO' });
    expect((error as Error).message).toContain(textFile);
    expect((error as Error).message).toMatch(/not a video/);
    const state = await states.get('vidtext');
    expect(state?.status).toBe('failed');
    expect(state?.error).toMatch(/^E_INPUT_NOT_VIDEO: .*notes\.mp4/);
    expect(await sinkQueue.getJobCounts('waiting')).toMatchObject({ waiting: 0 });
  });

  it('fails a .txt file (which ffprobe reads as ANSI art) with E_INPUT_NOT_VIDEO', async () => {
    const txt = path.join(dir, 'notes.txt');
    await writeFile(txt, 'these are meeting notes, not a video\n'.repeat(50));
    const data = await submit('vidtxt', txt);
    await expect(service().decodeVideo(fakeJob(data).handle)).rejects.toMatchObject({
      code: 'E_INPUT_NOT_VIDEO',
      message: expect.stringContaining('notes.txt'),
    });
  });

  it('fails a missing file with E_INPUT_NOT_FOUND', async () => {
    const data = await submit('vidmissing', path.join(dir, 'nope.mp4'));
    await expect(service().decodeVideo(fakeJob(data).handle)).rejects.toMatchObject({ code: 'E_INPUT_NOT_FOUND' });
  });
});

describe('startProducer (BullMQ worker)', () => {
  it('decodes queued videos and fails input errors without retrying', async () => {
    await redis.flushall();
    const config = loadConfig({ frameTtlSeconds: TTL }, {});
    const producer = await startProducer({ config, redisUrl: redisServer.url, logger, modelInput: MODEL_INPUT });
    try {
      const good = await submit('vidw', videoFile);
      const bad = await submit('vidwbad', textFile);
      const opts = { attempts: 3, backoff: { type: 'fixed', delay: 10 } };
      await videosQueue.add(JobName.DecodeVideo, good, { jobId: 'vidw', ...opts });
      await videosQueue.add(JobName.DecodeVideo, bad, { jobId: 'vidwbad', ...opts });

      await expect.poll(async () => (await videosQueue.getJob('vidw'))?.finishedOn, { timeout: 30_000 }).toBeTruthy();
      const done = (await videosQueue.getJob('vidw'))!;
      expect(await done.getState()).toBe('completed');
      expect(done.returnvalue).toMatchObject({ totalFrames: 30, scenes: 2 });
      expect(done.progress).toEqual({ decodedFrames: 30, expectedFrames: 30 });

      await expect.poll(async () => (await videosQueue.getJob('vidwbad'))?.finishedOn, { timeout: 30_000 }).toBeTruthy();
      const failed = (await videosQueue.getJob('vidwbad'))!;
      expect(await failed.getState()).toBe('failed');
      expect(failed.attemptsMade).toBe(1);
      expect(failed.failedReason).toMatch(/^E_INPUT_NOT_VIDEO: /);
      expect((await states.get('vidwbad'))?.status).toBe('failed');
    } finally {
      await producer.close();
      await producer.close(); // idempotent
    }
  });

  it('hands a video back to the queue on close, without using an attempt', async () => {
    await redis.flushall();
    const config = loadConfig({ frameTtlSeconds: TTL, highWaterFrames: '4' }, {});
    const producer = await startProducer({ config, redisUrl: redisServer.url, logger, modelInput: MODEL_INPUT });
    const data = await submit('vidclose', videoFile);
    await videosQueue.add(JobName.DecodeVideo, data, { jobId: 'vidclose', attempts: 3 });
    // no sink runs: the producer pauses at 4 frames in flight
    await expect.poll(async () => (await states.get('vidclose'))?.decodedFrames, { timeout: 30_000 }).toBe(4);
    await producer.close();
    const job = (await videosQueue.getJob('vidclose'))!;
    expect(await job.getState()).toBe('delayed');
    expect(job.attemptsMade).toBe(0);
    expect((await states.get('vidclose'))?.status).toBe('decoding');
  });
});

import { readdir } from 'node:fs/promises';
import type { Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SegmentFramesJob } from '../../src/shared/job-schemas.js';
import { SinkCheckpointStore } from '../../src/workers/sink/sink-checkpoint.store.js';
import { type FaultStack, startFaultStack } from './helpers/fault-stack.js';
import { ffmpegProcessesOn, finalState, indices, keysWithoutTtl, maskContent, readOutputs, waitUntil, type VideoOutputs } from './helpers/pipeline.js';

// SIGKILL each role mid-work; the video must come out exactly as an undisturbed run made it.
const FRAMES = 96;
const SEGMENT_FRAMES = 8;
const HIGH_WATER = 16;

describe('crash recovery: SIGKILL a worker, the sink, the producer mid-video', () => {
  let stack: FaultStack;
  let reference: VideoOutputs;

  /** Frames jobs of a video, each frame index listed as many times as it was enqueued. */
  async function enqueuedFrames(videoId: string): Promise<number[]> {
    const jobs = (await stack.client.queues.frames.getJobs(['waiting', 'active', 'delayed', 'completed', 'failed'])) as Job<SegmentFramesJob>[];
    return jobs
      .filter((j) => j.data.videoId === videoId)
      .flatMap((j) => j.data.frames.map((f) => f.index))
      .sort((a, b) => a - b);
  }

  async function expectSameAsReference(videoId: string): Promise<VideoOutputs> {
    const state = await finalState(stack.client, videoId);
    expect(state.error).toBeUndefined();
    expect(state.status).toBe('done');
    const outputs = await readOutputs(stack.outDir(videoId));
    expect(outputs.lines.map((l) => l.index)).toEqual(indices(FRAMES));
    expect(maskContent(outputs.lines)).toEqual(maskContent(reference.lines));
    expect(outputs.video).toMatchObject({ codec: 'h264', width: reference.video.width, height: reference.video.height, frames: FRAMES });
    expect(outputs.report.frames).toBe(FRAMES);
    expect(outputs.report.scenes.map((s) => [s.startFrame, s.endFrame])).toEqual(reference.report.scenes.map((s) => [s.startFrame, s.endFrame]));
    // Consumers of the stream see every frame once.
    const entries = await stack.data.xrange(`ss:{${videoId}}:frames`, '-', '+');
    expect(entries.map(([, f]) => (JSON.parse(f[1]!) as { index: number }).index)).toEqual(indices(FRAMES));
    expect((await readdir(stack.outDir(videoId))).sort()).toEqual(['annotated.mp4', 'masks.ndjson', 'report.json']);
    expect(await keysWithoutTtl(stack.data, `ss:{${videoId}}*`)).toEqual([]);
    // The killed role's ffmpeg (decoder: EPIPE; encoder: EOF on stdin) does not outlive it.
    await waitUntil('no ffmpeg left on the test files', async () => ((await ffmpegProcessesOn(stack.dir)).length === 0 ? true : undefined), 20_000);
    return outputs;
  }

  beforeAll(async () => {
    stack = await startFaultStack({
      prefix: 'crash',
      video: { frames: FRAMES },
      env: {
        STREAMSEG_SINK_SEGMENT_FRAMES: String(SEGMENT_FRAMES),
        STREAMSEG_HIGH_WATER_FRAMES: String(HIGH_WATER),
        STREAMSEG_BATCH_FRAMES: '8',
      },
    });
    await stack.submit('reference');
    const state = await finalState(stack.client, 'reference');
    expect(state.error).toBeUndefined();
    reference = await readOutputs(stack.outDir('reference'));
    expect(reference.lines.map((l) => l.index)).toEqual(indices(FRAMES));
    expect(reference.video.frames).toBe(FRAMES);
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('a worker killed mid-batch: its job is recovered as stalled and run again; every frame once, masks as undisturbed', async () => {
    const [worker] = stack.running('worker');
    await stack.submit('worker-killed');
    // Catch the worker inside a job: freeze it, check it holds an active job of the video, kill it.
    const killed = await waitUntil(
      'the worker to be caught mid-batch',
      async () => {
        if ((await stack.client.queues.frames.getActiveCount()) === 0) return undefined;
        worker!.kill('SIGSTOP');
        const active = (await stack.client.queues.frames.getJobs(['active'])).filter((j) => (j.data as SegmentFramesJob).videoId === 'worker-killed');
        if (active.length === 0) {
          worker!.kill('SIGCONT');
          return undefined;
        }
        worker!.kill('SIGKILL');
        return active.map((j) => j.id!);
      },
      60_000,
      5,
    );
    await worker!.exited;
    await stack.startRole('worker');

    await expectSameAsReference('worker-killed');
    for (const id of killed) {
      const job = (await stack.client.queues.frames.getJob(id))!;
      expect(await job.getState()).toBe('completed');
      // Recovered by the stalled-job check (not by a retry after a failure).
      expect(job.stalledCounter).toBeGreaterThanOrEqual(1);
      expect(job.attemptsMade).toBe(1);
    }
  });

  it('the sink killed mid-video: another sink takes it over from the last checkpoint; MP4 complete, masks without gap or duplicate', async () => {
    const [sink] = stack.running('sink');
    const [worker] = stack.running('worker');
    const checkpoints = new SinkCheckpointStore(stack.data, 600);
    await stack.submit('sink-killed');
    // Kill once at least one segment is checkpointed; the worker is frozen meanwhile so the
    // video cannot finish before the kill (it resumes before its 2 s lock could expire).
    await waitUntil('a sink checkpoint', async () => ((await checkpoints.get('sink-killed'))?.frames ?? 0) >= SEGMENT_FRAMES || undefined, 60_000, 5);
    worker!.kill('SIGSTOP');
    const written = (await stack.client.states.get('sink-killed'))!;
    sink!.kill('SIGKILL');
    await sink!.exited;
    worker!.kill('SIGCONT');
    expect(written.status).not.toBe('done');
    expect(written.sinkFrames).toBeLessThan(FRAMES);

    const takeover = await stack.startRole('sink');
    await expectSameAsReference('sink-killed');
    expect(takeover.log).toMatch(/"videoId":"sink-killed".*"msg":"taking the video over from the last checkpoint"/);
  });

  it('the producer killed mid-decode: the next producer resumes after the last enqueued frame, nothing enqueued twice', async () => {
    const [producer] = stack.running('producer');
    const [sink] = stack.running('sink');
    // With the sink frozen the producer stops at the high-water mark: a known point mid-decode.
    sink!.kill('SIGSTOP');
    await stack.submit('producer-killed');
    const paused = await waitUntil('the producer to pause at the high-water mark', async () => {
      const state = await stack.client.states.get('producer-killed');
      return state?.decodedFrames === HIGH_WATER ? state : undefined;
    });
    expect(paused.status).toBe('decoding');
    producer!.kill('SIGKILL');
    await producer!.exited;
    await stack.startRole('producer');
    sink!.kill('SIGCONT');

    await expectSameAsReference('producer-killed');
    expect(await enqueuedFrames('producer-killed')).toEqual(indices(FRAMES));
    const decode = (await stack.client.queues.videos.getJob('producer-killed'))!;
    expect(decode.returnvalue).toMatchObject({ totalFrames: FRAMES, resumedFrom: HIGH_WATER });
    expect(decode.stalledCounter).toBe(1);
  });
});

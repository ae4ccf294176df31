import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PipelineClient } from '../../src/cli/pipeline-client.js';
import type { SegmentFramesJob } from '../../src/shared/job-schemas.js';
import { SinkCheckpointStore } from '../../src/workers/sink/sink-checkpoint.store.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { makeTestVideo } from '../helpers/media.js';
import { connectClient, finalState, indices, readOutputs, waitUntil } from './helpers/pipeline.js';
import { RedisProcess } from './helpers/redis-process.js';
import { RoleProcess, faultEnv, startRoles } from './helpers/roles.js';

const FRAMES = 64;
const HIGH_WATER = 16;
const GRACE_MS = 8000;

/**
 * SIGTERM on each role while it works: it exits 0 (the CLI exits 1 with E_SHUTDOWN_GRACE when
 * closing outlasts STREAMSEG_SHUTDOWN_GRACE_MS), having finished or handed back its work, and
 * the video still completes with every frame once.
 */
describe('SIGTERM on every role: finish or hand back the current work, exit 0 within the grace period', () => {
  let redis: RedisProcess;
  let dir: string;
  let input: string;
  let env: NodeJS.ProcessEnv;
  let client: PipelineClient;
  let data: Redis;
  const roles: RoleProcess[] = [];

  const outDir = (videoId: string) => path.join(dir, 'out', videoId);
  const running = (role: RoleProcess['role']) => roles.filter((r) => r.role === role && r.child.exitCode === null && r.child.signalCode === null);
  const start = async (role: RoleProcess['role']) => {
    const [started] = await startRoles([role], env);
    roles.push(started!);
    return started!;
  };
  const submit = (videoId: string) => client.submitter.submit(input, { videoId, outDir: outDir(videoId) });

  async function expectComplete(videoId: string): Promise<void> {
    const state = await finalState(client, videoId);
    expect(state.error).toBeUndefined();
    expect(state.status).toBe('done');
    const outputs = await readOutputs(outDir(videoId));
    expect(outputs.lines.map((l) => l.index)).toEqual(indices(FRAMES));
    expect(outputs.video.frames).toBe(FRAMES);
  }

  beforeAll(async () => {
    redis = await RedisProcess.start();
    data = redis.client();
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-faults-sigterm-'));
    input = path.join(dir, 'clip.mp4');
    await makeTestVideo(input, { width: 96, height: 54, fps: 10, framesPerScene: [FRAMES / 2, FRAMES / 2], video: ['libx264', '-pix_fmt', 'yuv420p'] });
    env = faultEnv(redis.url, path.join(dir, 'out'), {
      STREAMSEG_SINK_SEGMENT_FRAMES: '8',
      STREAMSEG_HIGH_WATER_FRAMES: String(HIGH_WATER),
      STREAMSEG_SHUTDOWN_GRACE_MS: String(GRACE_MS),
    });
    roles.push(...(await startRoles(['producer', 'worker', 'sink'], env)));
    client = await connectClient(redis.url);
  });

  afterAll(async () => {
    await Promise.allSettled(roles.map((r) => r.stop()));
    await client?.close();
    data?.disconnect();
    await redis?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('producer: hands the video back (delayed, no attempt used); the next producer resumes it', async () => {
    const [producer] = running('producer');
    const [sink] = running('sink');
    sink!.kill('SIGSTOP');
    await submit('term-producer');
    await waitUntil('the producer paused mid-decode', async () => ((await client.states.get('term-producer'))?.decodedFrames === HIGH_WATER ? true : undefined));
    producer!.kill('SIGTERM');
    expect(await producer!.exited).toEqual({ code: 0, signal: null });
    expect(producer!.log).toMatch(/"msg":"producer stopped"/);
    const job = (await client.queues.videos.getJob('term-producer'))!;
    expect(await job.getState()).toBe('delayed');
    expect(job.attemptsMade).toBe(0);

    await start('producer');
    sink!.kill('SIGCONT');
    await expectComplete('term-producer');
  });

  it('sink: hands the video back at its checkpoint; the next sink resumes it', async () => {
    const [sink] = running('sink');
    const [worker] = running('worker');
    const checkpoints = new SinkCheckpointStore(data, 600);
    await submit('term-sink');
    await waitUntil('a sink checkpoint', async () => (((await checkpoints.get('term-sink'))?.frames ?? 0) >= 8 ? true : undefined), 60_000, 5);
    worker!.kill('SIGSTOP');
    sink!.kill('SIGTERM');
    expect(await sink!.exited).toEqual({ code: 0, signal: null });
    worker!.kill('SIGCONT');
    const job = (await client.queues.sink.getJob('term-sink'))!;
    expect(await job.getState()).toBe('delayed');
    expect(job.attemptsMade).toBe(0);
    expect((await client.states.get('term-sink'))!.status).not.toBe('failed');

    await start('sink');
    await expectComplete('term-sink');
  });

  it('worker: finishes the batch it is running, then exits', async () => {
    const [worker] = running('worker');
    await submit('term-worker');
    const busy = await waitUntil(
      'the worker mid-batch',
      async () => {
        worker!.kill('SIGSTOP');
        const active = (await client.queues.frames.getJobs(['active'])).filter((j) => (j.data as SegmentFramesJob).videoId === 'term-worker');
        if (active.length > 0) {
          worker!.kill('SIGTERM');
          worker!.kill('SIGCONT');
          return active as Job<SegmentFramesJob>[];
        }
        worker!.kill('SIGCONT');
        return undefined;
      },
      60_000,
      5,
    );
    expect(await worker!.exited).toEqual({ code: 0, signal: null });
    for (const job of busy) {
      const after = (await client.queues.frames.getJob(job.id!))!;
      expect(await after.getState()).toBe('completed');
      expect(after.stalledCounter).toBe(0);
    }
    await start('worker');
    await expectComplete('term-worker');
  });

  it('a role that cannot close within STREAMSEG_SHUTDOWN_GRACE_MS exits 1 with a line saying so', async () => {
    // closeOnSignals with a close() that never ends, as a role stuck on a hung dependency would be.
    const script = `import { closeOnSignals } from './src/cli/exit.ts'; closeOnSignals(() => new Promise(() => {}), 300); process.stdout.write('ready\\n'); setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(1);
    expect(stderr).toMatch(/E_SHUTDOWN_GRACE: still busy after 300 ms \(STREAMSEG_SHUTDOWN_GRACE_MS\)/);
  });
});

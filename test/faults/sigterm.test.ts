import { spawn } from 'node:child_process';
import type { Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SegmentFramesJob } from '../../src/shared/job-schemas.js';
import { SinkCheckpointStore } from '../../src/workers/sink/sink-checkpoint.store.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { type FaultStack, startFaultStack } from './helpers/fault-stack.js';
import { finalState, indices, readOutputs, waitUntil } from './helpers/pipeline.js';

const FRAMES = 64;
const HIGH_WATER = 16;
const GRACE_MS = 8000;

/**
 * SIGTERM on each role while it works: it exits 0 (the CLI exits 1 with E_SHUTDOWN_GRACE when
 * closing outlasts STREAMSEG_SHUTDOWN_GRACE_MS), having finished or handed back its work, and
 * the video still completes with every frame once.
 */
describe('SIGTERM on every role: finish or hand back the current work, exit 0 within the grace period', () => {
  let stack: FaultStack;

  async function expectComplete(videoId: string): Promise<void> {
    const state = await finalState(stack.client, videoId);
    expect(state.error).toBeUndefined();
    expect(state.status).toBe('done');
    const outputs = await readOutputs(stack.outDir(videoId));
    expect(outputs.lines.map((l) => l.index)).toEqual(indices(FRAMES));
    expect(outputs.video.frames).toBe(FRAMES);
  }

  beforeAll(async () => {
    stack = await startFaultStack({
      prefix: 'sigterm',
      video: { frames: FRAMES },
      env: {
        STREAMSEG_SINK_SEGMENT_FRAMES: '8',
        STREAMSEG_HIGH_WATER_FRAMES: String(HIGH_WATER),
        STREAMSEG_SHUTDOWN_GRACE_MS: String(GRACE_MS),
      },
    });
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('producer: hands the video back (delayed, no attempt used); the next producer resumes it', async () => {
    const [producer] = stack.running('producer');
    const [sink] = stack.running('sink');
    sink!.kill('SIGSTOP');
    await stack.submit('term-producer');
    await waitUntil('the producer paused mid-decode', async () =>
      (await stack.client.states.get('term-producer'))?.decodedFrames === HIGH_WATER ? true : undefined,
    );
    producer!.kill('SIGTERM');
    expect(await producer!.exited).toEqual({ code: 0, signal: null });
    expect(producer!.log).toMatch(/"msg":"producer stopped"/);
    const job = (await stack.client.queues.videos.getJob('term-producer'))!;
    expect(await job.getState()).toBe('delayed');
    expect(job.attemptsMade).toBe(0);

    await stack.startRole('producer');
    sink!.kill('SIGCONT');
    await expectComplete('term-producer');
  });

  it('sink: hands the video back at its checkpoint; the next sink resumes it', async () => {
    const [sink] = stack.running('sink');
    const [worker] = stack.running('worker');
    const checkpoints = new SinkCheckpointStore(stack.data, 600);
    await stack.submit('term-sink');
    await waitUntil('a sink checkpoint', async () => (((await checkpoints.get('term-sink'))?.frames ?? 0) >= 8 ? true : undefined), 60_000, 5);
    worker!.kill('SIGSTOP');
    sink!.kill('SIGTERM');
    expect(await sink!.exited).toEqual({ code: 0, signal: null });
    worker!.kill('SIGCONT');
    const job = (await stack.client.queues.sink.getJob('term-sink'))!;
    expect(await job.getState()).toBe('delayed');
    expect(job.attemptsMade).toBe(0);
    expect((await stack.client.states.get('term-sink'))!.status).not.toBe('failed');

    await stack.startRole('sink');
    await expectComplete('term-sink');
  });

  it('worker: finishes the batch it is running, then exits', async () => {
    const [worker] = stack.running('worker');
    await stack.submit('term-worker');
    const busy = await waitUntil(
      'the worker mid-batch',
      async () => {
        worker!.kill('SIGSTOP');
        const active = (await stack.client.queues.frames.getJobs(['active'])).filter((j) => (j.data as SegmentFramesJob).videoId === 'term-worker');
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
      const after = (await stack.client.queues.frames.getJob(job.id!))!;
      expect(await after.getState()).toBe('completed');
      expect(after.stalledCounter).toBe(0);
    }
    await stack.startRole('worker');
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

import type { Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SegmentFramesJob } from '../../src/shared/job-schemas.js';
import { runCli } from '../helpers/cli.js';
import { type FaultStack, startFaultStack } from './helpers/fault-stack.js';
import { finalState, indices, keysWithoutTtl, readOutputs } from './helpers/pipeline.js';

const VIDEOS = 10;
const FRAMES = 40;
/** Bounds the run must stay under; override to try other machines or settings. */
const MAX_RSS_MB = Number(process.env.STREAMSEG_FAULTS_MAX_RSS_MB ?? 1024);
const MAX_REDIS_MB = Number(process.env.STREAMSEG_FAULTS_MAX_REDIS_MB ?? 64);

describe(`load: ${VIDEOS} videos at once on one machine`, () => {
  let stack: FaultStack;

  beforeAll(async () => {
    stack = await startFaultStack({
      prefix: 'load',
      video: { frames: FRAMES },
      env: { STREAMSEG_HIGH_WATER_FRAMES: '32', STREAMSEG_SINK_SEGMENT_FRAMES: '16' },
    });
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('every video completes, a duplicate submission is processed once, memory stays under the bounds', async () => {
    const ids = Array.from({ length: VIDEOS }, (_, k) => `load-${k}`);
    const cliEnv = { REDIS_URL: stack.redis.url, STREAMSEG_OUT: stack.outRoot };
    // Nine from this process at once, the tenth submitted twice at the same moment by two CLIs.
    const [first, second] = await Promise.all([
      runCli(['submit', stack.input, '--id', ids[9]!], cliEnv),
      runCli(['submit', stack.input, '--id', ids[9]!], cliEnv),
      ...ids.slice(0, 9).map((videoId) => stack.submit(videoId)),
    ] as const);
    expect([first.code, second.code]).toEqual([0, 0]);
    expect([first.stdout, second.stdout]).toEqual([`${ids[9]}\n`, `${ids[9]}\n`]);

    for (const videoId of ids) {
      const state = await finalState(stack.client, videoId);
      expect(state.error).toBeUndefined();
      expect(state.status).toBe('done');
      const outputs = await readOutputs(stack.outDir(videoId));
      expect(outputs.lines.map((l) => l.index)).toEqual(indices(FRAMES));
      expect(outputs.video.frames).toBe(FRAMES);
    }

    // The duplicate: one decode job, each frame enqueued and streamed once; a third submission is refused.
    const frames = ((await stack.client.queues.frames.getJobs(['completed', 'failed', 'waiting', 'active'])) as Job<SegmentFramesJob>[])
      .filter((j) => j.data.videoId === ids[9])
      .flatMap((j) => j.data.frames.map((f) => f.index))
      .sort((a, b) => a - b);
    expect(frames).toEqual(indices(FRAMES));
    const streamed = await stack.data.xrange(`ss:{${ids[9]}}:frames`, '-', '+');
    expect(streamed).toHaveLength(FRAMES);
    const third = await runCli(['submit', stack.input, '--id', ids[9]!], cliEnv);
    expect(third.code).toBe(0);
    expect(third.stderr).toContain(`video ${ids[9]} was already submitted; not queued again`);
    expect(await stack.client.queues.videos.getJobCounts('waiting', 'active', 'delayed')).toEqual({ waiting: 0, active: 0, delayed: 0 });

    const rss = await Promise.all(stack.roles.map(async (r) => ({ role: r.role, pid: r.pid, peakMb: (await r.peakRssBytes()) / 2 ** 20 })));
    const info = await stack.data.info('memory');
    const redisPeakMb = Number(/used_memory_peak:(\d+)/.exec(info)?.[1]) / 2 ** 20;
    console.log(
      [
        `load: ${VIDEOS} videos x ${FRAMES} frames, bounds ${MAX_RSS_MB} MiB RSS per process, ${MAX_REDIS_MB} MiB Redis used_memory`,
        ...rss.map((r) => `  ${r.role.padEnd(8)} pid ${r.pid}: peak RSS ${r.peakMb.toFixed(1)} MiB`),
        `  redis-server: used_memory_peak ${redisPeakMb.toFixed(1)} MiB`,
      ].join('\n'),
    );
    for (const r of rss) {
      expect(r.peakMb).toBeGreaterThan(0);
      expect(r.peakMb).toBeLessThan(MAX_RSS_MB);
    }
    expect(redisPeakMb).toBeLessThan(MAX_REDIS_MB);
    expect(await keysWithoutTtl(stack.data, 'ss:{*')).toEqual([]);
  });
});

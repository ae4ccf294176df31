import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PipelineClient } from '../../src/cli/pipeline-client.js';
import type { SegmentFramesJob } from '../../src/shared/job-schemas.js';
import { runCli } from '../helpers/cli.js';
import { makeTestVideo } from '../helpers/media.js';
import { connectClient, finalState, indices, keysWithoutTtl, readOutputs } from './helpers/pipeline.js';
import { RedisProcess } from './helpers/redis-process.js';
import { RoleProcess, faultEnv, startRoles } from './helpers/roles.js';

const VIDEOS = 10;
const FRAMES = 40;
/** Bounds the run must stay under; override to try other machines or settings. */
const MAX_RSS_MB = Number(process.env.STREAMSEG_FAULTS_MAX_RSS_MB ?? 1024);
const MAX_REDIS_MB = Number(process.env.STREAMSEG_FAULTS_MAX_REDIS_MB ?? 64);

describe(`load: ${VIDEOS} videos at once on one machine`, () => {
  let redis: RedisProcess;
  let dir: string;
  let input: string;
  let client: PipelineClient;
  let data: Redis;
  let roles: RoleProcess[] = [];

  const outDir = (videoId: string) => path.join(dir, 'out', videoId);

  beforeAll(async () => {
    redis = await RedisProcess.start();
    data = redis.client();
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-faults-load-'));
    input = path.join(dir, 'clip.mp4');
    await makeTestVideo(input, { width: 96, height: 54, fps: 10, framesPerScene: [FRAMES / 2, FRAMES / 2], video: ['libx264', '-pix_fmt', 'yuv420p'] });
    const env = faultEnv(redis.url, path.join(dir, 'out'), { STREAMSEG_HIGH_WATER_FRAMES: '32', STREAMSEG_SINK_SEGMENT_FRAMES: '16' });
    roles = await startRoles(['producer', 'worker', 'sink'], env);
    client = await connectClient(redis.url);
  });

  afterAll(async () => {
    await Promise.allSettled(roles.map((r) => r.stop()));
    await client?.close();
    data?.disconnect();
    await redis?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('every video completes, a duplicate submission is processed once, memory stays under the bounds', async () => {
    const ids = Array.from({ length: VIDEOS }, (_, k) => `load-${k}`);
    const cliEnv = { REDIS_URL: redis.url, STREAMSEG_OUT: path.join(dir, 'out') };
    // Nine from this process at once, the tenth submitted twice at the same moment by two CLIs.
    const [first, second] = await Promise.all([
      runCli(['submit', input, '--id', ids[9]!], cliEnv),
      runCli(['submit', input, '--id', ids[9]!], cliEnv),
      ...ids.slice(0, 9).map((videoId) => client.submitter.submit(input, { videoId, outDir: outDir(videoId) })),
    ] as const);
    expect([first.code, second.code]).toEqual([0, 0]);
    expect([first.stdout, second.stdout]).toEqual([`${ids[9]}\n`, `${ids[9]}\n`]);

    for (const videoId of ids) {
      const state = await finalState(client, videoId);
      expect(state.error).toBeUndefined();
      expect(state.status).toBe('done');
      const outputs = await readOutputs(outDir(videoId));
      expect(outputs.lines.map((l) => l.index)).toEqual(indices(FRAMES));
      expect(outputs.video.frames).toBe(FRAMES);
    }

    // The duplicate: one decode job, each frame enqueued and streamed once; a third submission is refused.
    const frames = ((await client.queues.frames.getJobs(['completed', 'failed', 'waiting', 'active'])) as Job<SegmentFramesJob>[])
      .filter((j) => j.data.videoId === ids[9])
      .flatMap((j) => j.data.frames.map((f) => f.index))
      .sort((a, b) => a - b);
    expect(frames).toEqual(indices(FRAMES));
    const streamed = await data.xrange(`ss:{${ids[9]}}:frames`, '-', '+');
    expect(streamed).toHaveLength(FRAMES);
    const third = await runCli(['submit', input, '--id', ids[9]!], cliEnv);
    expect(third.code).toBe(0);
    expect(third.stderr).toContain(`video ${ids[9]} was already submitted; not queued again`);
    expect(await client.queues.videos.getJobCounts('waiting', 'active', 'delayed')).toEqual({ waiting: 0, active: 0, delayed: 0 });

    const rss = await Promise.all(roles.map(async (r) => ({ role: r.role, pid: r.pid, peakMb: (await r.peakRssBytes()) / 2 ** 20 })));
    const info = await data.info('memory');
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
    expect(await keysWithoutTtl(data, 'ss:{*')).toEqual([]);
  });
});

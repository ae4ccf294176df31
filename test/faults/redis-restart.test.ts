import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PipelineClient } from '../../src/cli/pipeline-client.js';
import { makeTestVideo } from '../helpers/media.js';
import { connectClient, finalState, indices, maskContent, readOutputs, waitUntil } from './helpers/pipeline.js';
import { RedisProcess } from './helpers/redis-process.js';
import { RoleProcess, faultEnv, startRoles } from './helpers/roles.js';

const FRAMES = 80;

describe('redis-server restarted mid-video (AOF on, appendfsync everysec)', () => {
  let redis: RedisProcess;
  let dir: string;
  let input: string;
  let client: PipelineClient;
  let data: Redis;
  let roles: RoleProcess[] = [];

  const outDir = (videoId: string) => path.join(dir, 'out', videoId);

  beforeAll(async () => {
    redis = await RedisProcess.start({ appendOnly: true });
    data = redis.client();
    data.on('error', () => undefined);
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-faults-redis-'));
    input = path.join(dir, 'clip.mp4');
    await makeTestVideo(input, { width: 96, height: 54, fps: 10, framesPerScene: [FRAMES / 2, FRAMES / 2], video: ['libx264', '-pix_fmt', 'yuv420p'] });
    const env = faultEnv(redis.url, path.join(dir, 'out'), { STREAMSEG_SINK_SEGMENT_FRAMES: '16', STREAMSEG_HIGH_WATER_FRAMES: '24' });
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

  it('every process reconnects and the video completes with nothing lost', async () => {
    await client.submitter.submit(input, { videoId: 'before', outDir: outDir('before') });
    expect((await finalState(client, 'before')).status).toBe('done');
    const reference = await readOutputs(outDir('before'));

    await client.submitter.submit(input, { videoId: 'across', outDir: outDir('across') });
    await waitUntil('the sink to be mid-video', async () => {
      const state = await client.states.get('across');
      return state && state.sinkFrames >= 16 && state.sinkFrames < FRAMES ? state : undefined;
    }, 60_000, 5);
    await redis.restart();

    const state = await finalState(client, 'across');
    expect(state.error).toBeUndefined();
    expect(state.status).toBe('done');
    const outputs = await readOutputs(outDir('across'));
    expect(outputs.lines.map((l) => l.index)).toEqual(indices(FRAMES));
    expect(maskContent(outputs.lines)).toEqual(maskContent(reference.lines));
    expect(outputs.video.frames).toBe(FRAMES);
    const entries = await data.xrange('ss:{across}:frames', '-', '+');
    expect(entries.map(([, f]) => (JSON.parse(f[1]!) as { index: number }).index)).toEqual(indices(FRAMES));

    // Every role is still up and connected: a video submitted after the restart goes through.
    expect(roles.every((r) => r.child.exitCode === null)).toBe(true);
    await client.submitter.submit(input, { videoId: 'after', outDir: outDir('after') });
    expect((await finalState(client, 'after')).status).toBe('done');
    expect((await readOutputs(outDir('after'))).lines).toHaveLength(FRAMES);
  });
});

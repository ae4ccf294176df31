import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PipelineClient } from '../../src/shared/pipeline-client.js';
import { startRoles, type RunningRoles } from '../../src/cli/roles.js';
import { loadConfig, type StreamsegConfig } from '../../src/shared/config.js';
import { createLogger } from '../../src/shared/logger.js';
import { videoKeys } from '../../src/shared/redis-keys.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { makeTestVideo } from '../helpers/media.js';
import { startRedisServer, type TestRedisServer } from '../helpers/redis-server.js';
import { TEST_MODEL, eventually } from './stack.js';

const FRAMES = 120;
const CHILD = path.join(REPO_ROOT, 'test/api/frames-consumer.child.ts');

function startConsumer(
  redisUrl: string,
  videoId: string,
  outFile: string,
  env: NodeJS.ProcessEnv = {},
): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, redisUrl, videoId, outFile], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

describe('StreamsegClient.frames(id): consumer group over the frame stream', () => {
  let server: TestRedisServer;
  let redis: Redis;
  let roles: RunningRoles;
  let client: PipelineClient;
  let config: StreamsegConfig;
  let dir: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    server = await startRedisServer();
    redis = new Redis(server.url);
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-frames-'));
    config = loadConfig(
      { outDir: path.join(dir, 'out'), modelDir: TEST_MODEL, intraOpThreads: 1, sinkSegmentFrames: 8, highWaterFrames: 16, logLevel: 'silent' },
      {},
    );
    roles = await startRoles(['producer', 'worker', 'sink'], { config, redisUrl: server.url, logger: createLogger('silent') });
    client = await PipelineClient.connect(config, server.url);
  });

  afterAll(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    await client?.close();
    await roles?.close();
    redis?.disconnect();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('gets every frame record exactly once in total when killed and restarted mid-video', async () => {
    const video = path.join(dir, 'long.mp4');
    await makeTestVideo(video, { width: 64, height: 48, fps: 10, framesPerScene: [60, 60], video: ['libx264', '-pix_fmt', 'yuv420p'] });
    const videoId = await client.submitter.submit(video, { outDir: path.join(config.outDir, 'frames-test') });
    const out = path.join(dir, 'consumed.txt');
    const stream = videoKeys(videoId).stream;

    // Some records exist before the consumer starts, so its first read takes more than it handles.
    await eventually(async () => ((await redis.xlen(stream)) >= 10 ? true : undefined), '10 records on the stream');
    // Hold the video mid-way (the producer stops at its high-water mark) until the consumer is killed.
    await client.queues.frames.pause();
    const first = startConsumer(server.url, videoId, out, { STOP_AT: '5' });
    children.push(first.child);
    await eventually(
      async () => (first.output().includes('STOPPED') ? true : first.child.exitCode !== null ? Promise.reject(new Error(first.output())) : undefined),
      'the consumer to handle 5 records',
    );
    expect((await client.states.get(videoId))?.status).not.toBe('done');
    first.child.kill('SIGKILL');
    await first.exited;
    await client.queues.frames.resume();

    // Received but never handled: pending for consumer-1 in the group.
    const pending = (await redis.xpending(stream, 'test-app')) as [number, string | null, string | null, [string, string][] | null];
    expect(pending[0]).toBeGreaterThan(0);

    const second = startConsumer(server.url, videoId, out);
    children.push(second.child);
    expect(await second.exited).toBe(0);
    expect(second.output()).toContain('END');

    const lines = (await readFile(out, 'utf8')).trim().split('\n');
    const indices = lines.map((l) => Number(l.split(' ')[1]));
    expect(indices.slice(0, 5)).toEqual([0, 1, 2, 3, 4]);
    expect([...indices].sort((a, b) => a - b)).toEqual(Array.from({ length: FRAMES }, (_, i) => i));
    // The restarted consumer began with the records it had received and not handled.
    expect(lines[5]).toBe('R 5');
    expect(lines.filter((l) => l.startsWith('R')).length).toBe(pending[0]);
    expect(((await redis.xpending(stream, 'test-app')) as [number])[0]).toBe(0);
    expect((await client.states.get(videoId))?.status).toBe('done');
  });
});

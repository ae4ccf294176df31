import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FrameResult } from '../../src/shared/frame-store.js';
import { QueueName } from '../../src/shared/queues.js';
import { videoKeys } from '../../src/shared/redis-keys.js';
import type { VideoState } from '../../src/shared/video-state.js';
import type { MaskLine } from '../../src/workers/sink/mask-writer.js';
import { runCli, spawnCli, stopProcess } from '../helpers/cli.js';
import { makeTestVideo } from '../helpers/media.js';
import { decodeFrameMasks, readOutputs } from '../helpers/outputs.js';
import { startRedisServer, type TestRedisServer } from '../helpers/redis-server.js';

/**
 * The cluster as the README describes it, on one machine: a shared Redis, then
 * `streamseg producer`, two `streamseg worker` and one `streamseg sink` as separate
 * processes, and `streamseg submit`. Its outputs must match `streamseg run` of the same file.
 */

const WIDTH = 192;
const HEIGHT = 144;
const CUT = 14;
const FRAMES = 30;

interface RoleProcess {
  role: string;
  child: ChildProcess;
  /** Resolves with how the process ended; never rejects. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
}

function startRole(role: 'producer' | 'worker' | 'sink', env: NodeJS.ProcessEnv): RoleProcess {
  const child = spawnCli([role], env);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-20_000)));
  child.stdout!.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return { role, child, exited, stderr: () => stderr };
}

async function cli(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  const result = await runCli(args, env);
  if (result.code !== 0) throw new Error(`streamseg ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return result.stdout;
}

/** The per-frame content both paths must agree on; adapters, cache hits and timings may differ. */
function content(line: MaskLine): Pick<MaskLine, 'index' | 'scene' | 'masks'> {
  return { index: line.index, scene: line.scene, masks: line.masks };
}

describe('cluster: producer, two workers and a sink as separate processes, fed by submit', () => {
  let server: TestRedisServer;
  let redis: Redis;
  let dir: string;
  let input: string;
  let env: NodeJS.ProcessEnv;
  let roles: RoleProcess[] = [];

  beforeAll(async () => {
    server = await startRedisServer();
    redis = new Redis(server.url);
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-cluster-'));
    input = path.join(dir, 'clip.mp4');
    await makeTestVideo(input, {
      width: WIDTH,
      height: HEIGHT,
      fps: 10,
      framesPerScene: [CUT, FRAMES - CUT],
      video: ['libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p'],
    });
    env = {
      REDIS_URL: server.url,
      STREAMSEG_MODEL: 'test/fixtures/test-model',
      // Small frames jobs (15 of them) so both workers get a share; one ORT thread each on a small machine.
      STREAMSEG_BATCH_FRAMES: '2',
      STREAMSEG_INTRA_OP_THREADS: '1',
      LOG_LEVEL: 'warn',
      STREAMSEG_OUT: dir,
    };
    roles = [startRole('producer', env), startRole('worker', env), startRole('worker', env), startRole('sink', env)];
  });

  afterAll(async () => {
    // Only reached with live roles when a test failed: do not leave them running.
    await Promise.allSettled(roles.map((r) => stopProcess(r.child, 5000)));
    redis?.disconnect();
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('submit → status → outputs identical, frame for frame, to `streamseg run`, with both workers used', async () => {
    // Every role has registered on its queue (model loaded, ORT sessions up) before the video comes.
    const wanted: Record<string, number> = { [QueueName.Videos]: 1, [QueueName.Frames]: 2, [QueueName.Sink]: 1 };
    for (;;) {
      const dead = roles.find((r) => r.child.exitCode !== null);
      if (dead) throw new Error(`${dead.role} exited ${dead.child.exitCode}: ${dead.stderr()}`);
      const rows = JSON.parse(await cli(['status', '--json'], env)) as { queue: string; workers: number }[];
      if (rows.every((row) => row.workers >= (wanted[row.queue] ?? 0)) && rows.length === 3) break;
      await new Promise((r) => setTimeout(r, 250));
    }

    const outDir = path.join(dir, 'cluster-out');
    const submitted = await cli(['submit', input, '--out', outDir], env);
    const videoId = submitted.trim();
    expect(submitted).toMatch(/^v[0-9a-z]+\n$/);

    let state: VideoState;
    for (;;) {
      state = JSON.parse(await cli(['status', videoId, '--json'], env)) as VideoState;
      if (state.status === 'failed') throw new Error(`video failed: ${state.error}`);
      if (state.status === 'done') break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(state).toMatchObject({ videoId, decodedFrames: FRAMES, sinkFrames: FRAMES, outDir });

    const cluster = await readOutputs(outDir);
    expect(cluster.report.frames).toBe(FRAMES);
    expect(cluster.report.scenes.map((s) => s.startFrame)).toEqual([0, CUT]);
    expect(cluster.masks.map((m) => m.index)).toEqual([...Array(FRAMES).keys()]);
    for (const line of cluster.masks) decodeFrameMasks(line, HEIGHT, WIDTH);

    // The same file through `streamseg run` (its own redis-server, all roles in one process).
    const runOut = path.join(dir, 'run-out');
    const single = await runCli(['run', input, '--out', runOut], { ...env, REDIS_URL: undefined, LOG_LEVEL: undefined });
    expect(single.code, single.stderr).toBe(0);
    const local = await readOutputs(runOut);
    expect(cluster.masks.map(content)).toEqual(local.masks.map(content));
    expect(cluster.report.scenes.map((s) => [s.startFrame, s.endFrame])).toEqual(local.report.scenes.map((s) => [s.startFrame, s.endFrame]));

    // Both workers segmented frames: the video's Redis Stream keeps every frame record, and
    // each record names its worker (hostname:pid of the worker process).
    const entries = await redis.xrange(videoKeys(videoId).stream, '-', '+');
    const records = entries.map(([, fields]) => JSON.parse(fields[fields.indexOf('record') + 1]!) as FrameResult);
    expect(records.map((r) => r.index)).toEqual([...Array(FRAMES).keys()]);
    const workerIds = new Set(records.map((r) => r.workerId));
    const workers = roles.filter((r) => r.role === 'worker').map((r) => `${os.hostname()}:${r.child.pid}`);
    expect([...workerIds].sort()).toEqual([...workers].sort());
  });

  it('SIGTERM closes every role cleanly: exit code 0', async () => {
    for (const role of roles) expect(role.child.exitCode, `${role.role} exited early: ${role.stderr()}`).toBeNull();
    for (const role of roles) role.child.kill('SIGTERM');
    const ends = await Promise.all(roles.map((r) => r.exited));
    expect(ends.map((end, i) => ({ role: roles[i]!.role, ...end, ...(end.code === 0 ? {} : { stderr: roles[i]!.stderr() }) }))).toEqual(
      roles.map((r) => ({ role: r.role, code: 0, signal: null })),
    );
  });
});

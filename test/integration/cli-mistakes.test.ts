import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRoles, type RunningRoles } from '../../src/cli/roles.js';
import { loadConfig } from '../../src/shared/config.js';
import { createLogger } from '../../src/shared/logger.js';
import { VideoStateStore } from '../../src/shared/video-state.js';
import type { VideoReport } from '../../src/workers/sink/report-builder.js';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { makeTestVideo } from '../helpers/media.js';
import { startRedisServer, type TestRedisServer } from '../helpers/redis-server.js';

/**
 * A new user's mistakes and a cluster's failures, through the real CLI (a subprocess from
 * source): each ends with one clear line on stderr, a non-zero exit (a hang would run into the test's timeout; no wall-clock limits here, machines are noisy).
 */

const TEST_MODEL = 'test/fixtures/test-model';
const CLASSES = 'sky, road, sidewalk, building, vegetation, vehicle, person, pole';
const H264 = ['libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p'];
/** Nothing listens on port 1. */
const DEAD_REDIS = 'redis://127.0.0.1:1';
const TOKEN = 'a-test-token-of-24-chars';

const lines = (text: string): string[] => text.split('\n').filter((line) => line.length > 0);

let dir: string;
let video24: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ss-mistakes-'));
  // 24 fps: `--fps 10` must not make the report say the source is 10 fps.
  video24 = path.join(dir, 'clip24.mp4');
  await makeTestVideo(video24, { width: 96, height: 64, fps: 24, framesPerScene: [12, 12], video: H264 });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('streamseg run: mistakes caught before anything is queued', () => {
  it("--classes with a class the model lacks: one line naming it and the model's classes, exit 1", async () => {
    const result = await runCli(['run', video24, '--out', path.join(dir, 'out-classes'), '--classes', 'road,cars'], {
      REDIS_URL: undefined,
      STREAMSEG_MODEL: TEST_MODEL,
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`streamseg: E_CONFIG: --classes: "cars" is not in the model (its classes: ${CLASSES})\n`);
  });

  it('a TMPDIR too long for a Unix socket path: the decoders read their pipes instead and the run completes', async () => {
    const longTmp = path.join(dir, 't'.repeat(110));
    await mkdir(longTmp, { recursive: true });
    const outDir = path.join(dir, 'out-tmpdir');
    const result = await runCli(['run', video24, '--out', outDir, '--no-progress'], { REDIS_URL: undefined, STREAMSEG_MODEL: TEST_MODEL, TMPDIR: longTmp });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const report = JSON.parse(await readFile(path.join(outDir, 'report.json'), 'utf8')) as VideoReport;
    expect(report.frames).toBeGreaterThan(0);
  });

  it('two bad environment variables: one line each', async () => {
    const result = await runCli(['run', video24], { REDIS_URL: undefined, STREAMSEG_FPS: 'fast', STREAMSEG_BATCH_FRAMES: '0' });
    expect(result.code).toBe(1);
    const said = lines(result.stderr);
    expect(said).toHaveLength(2);
    expect(said[0]).toMatch(/^streamseg: E_CONFIG: STREAMSEG_FPS="fast": /);
    expect(said[1]).toMatch(/^streamseg: E_CONFIG: STREAMSEG_BATCH_FRAMES="0": /);
  });
});

describe('with Redis unreachable', () => {
  it.each([
    ['status', ['status']],
    ['submit', ['submit', 'clip.mp4']],
    ['watch', ['watch', 'v1']],
    ['serve', ['serve', '--port', '0']],
  ])('%s prints one line naming the URL and what to do, and exits 1 (an endless reconnect would run into the test timeout)', async (_name, args) => {
    const result = await runCli(args, { REDIS_URL: DEAD_REDIS, STREAMSEG_API_TOKENS: TOKEN });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `streamseg: E_REDIS: cannot reach Redis at ${DEAD_REDIS} (connection refused): check REDIS_URL and that redis-server is running there\n`,
    );
  });
});

describe('streamseg serve', () => {
  it('without STREAMSEG_API_TOKENS says so before it starts Redis or any role', async () => {
    const result = await runCli(['serve', '--roles', 'all', '--port', '0'], { REDIS_URL: undefined, STREAMSEG_API_TOKENS: undefined });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^streamseg: E_CONFIG: STREAMSEG_API_TOKENS is empty: [^\n]+\n$/);
  });

  // serve --roles all printing its own redis-server's URL (with the password) and `status`
  // working with it: test/faults/security-embedded-redis.test.ts.

  it('--help does not claim REDIS_URL is needed with --roles', async () => {
    const result = await runCli(['serve', '--help']);
    expect(result.stdout).toMatch(/REDIS_URL unless --roles starts its own redis-server/);
  });
});

describe('failures in a cluster (shared Redis, roles in this process)', () => {
  let redis: TestRedisServer;
  let roles: RunningRoles;
  let client: Redis;

  beforeAll(async () => {
    redis = await startRedisServer();
    const config = loadConfig({ modelDir: TEST_MODEL, outDir: dir }, { REDIS_URL: redis.url, STREAMSEG_JOB_ATTEMPTS: '2' });
    roles = await startRoles(['producer', 'worker', 'sink'], { config, redisUrl: redis.url, logger: createLogger('silent') });
    client = new Redis(redis.url);
  });

  afterAll(async () => {
    client?.disconnect();
    await roles?.close();
    await redis?.stop();
  });

  it('submit --watch of a video whose frames jobs all fail ends non-zero with their reason', async () => {
    // This client has no model package (STREAMSEG_MODEL points nowhere), so only the workers can refuse.
    const result = await runCli(['submit', video24, '--classes', 'road,cars', '--watch'], {
      REDIS_URL: redis.url,
      STREAMSEG_OUT: dir,
      STREAMSEG_MODEL: path.join(dir, 'no-model-here'),
    });
    expect(result.code).toBe(1);
    expect(lines(result.stderr).at(-1)).toMatch(/^streamseg: E_JOB_PAYLOAD: .*"cars" not in the model/);
    // The video is recorded failed: `status` says so and exits 1, `watch` ends at once.
    const videoId = result.stdout.trim();
    const status = await runCli(['status', videoId], { REDIS_URL: redis.url });
    expect(status.code).toBe(1);
    expect(status.stdout).toMatch(new RegExp(`^${videoId} failed \\(E_JOB_PAYLOAD: `));
    const watch = await runCli(['watch', videoId], { REDIS_URL: redis.url });
    expect(watch.code).toBe(1);
  });

  it('a failed video stays failed when a slower role ends its stage afterwards; status exits 1 and watch ends', async () => {
    const states = new VideoStateStore(client, 3600);
    const videoId = 'vfailedfirst';
    await states.init(videoId, { outDir: dir, submittedAt: Date.now() });
    await states.setProbe(videoId, {
      sourceWidth: 96,
      sourceHeight: 64,
      fps: 24,
      durationMs: 1000,
      expectedFrames: 24,
      inputWidth: 64,
      inputHeight: 64,
      letterbox: { x: 0, y: 0, width: 64, height: 64 },
      codec: 'h264',
    });
    // The sink fails (E_OUTPUT_DIR), then the producer finishes decoding and then a sink marks done.
    await states.markFailed(videoId, 'E_OUTPUT_DIR: /elsewhere is not under STREAMSEG_OUT');
    await states.markDecoded(videoId, 24);
    await states.markDone(videoId);
    expect(await states.get(videoId)).toMatchObject({ status: 'failed', error: 'E_OUTPUT_DIR: /elsewhere is not under STREAMSEG_OUT', totalFrames: 24 });

    const status = await runCli(['status', videoId], { REDIS_URL: redis.url });
    expect(status.code).toBe(1);
    expect(status.stdout).toMatch(/^vfailedfirst failed \(E_OUTPUT_DIR: /);
    const watch = await runCli(['watch', videoId], { REDIS_URL: redis.url });
    expect(watch.code).toBe(1);
    expect(lines(watch.stderr).at(-1)).toBe('streamseg: E_OUTPUT_DIR: /elsewhere is not under STREAMSEG_OUT');
  });

  it("report.json and status keep the source's frame rate and the output's (--fps 10 of a 24 fps source) apart", async () => {
    const outDir = path.join(dir, 'fps10');
    const result = await runCli(['submit', video24, '--fps', '10', '--out', outDir, '--watch'], {
      REDIS_URL: redis.url,
      STREAMSEG_OUT: dir,
      STREAMSEG_MODEL: TEST_MODEL,
    });
    expect(result.code).toBe(0);
    const report = JSON.parse(await readFile(path.join(outDir, 'report.json'), 'utf8')) as VideoReport;
    expect(report.source.fps).toBe(24);
    expect(report.output.fps).toBe(10);
    const status = await runCli(['status', result.stdout.trim()], { REDIS_URL: redis.url });
    expect(status.stdout).toContain('  fps     24 source, 10 output\n');
  });
});

describe('Ctrl-C and the embedded Redis, in a terminal', () => {
  it('run prints its redis-server URL at start; Ctrl-C prints one line, the server outlives the roles, exit 0', async () => {
    const long = path.join(dir, 'long.mp4');
    // Long enough that the run is still working when the Ctrl-C comes on a loaded CI machine, where
    // the `status` below alone can take seconds; the run is interrupted long before it ends.
    await makeTestVideo(long, { width: 160, height: 120, fps: 24, framesPerScene: [1500, 1500], video: H264 });
    const main = path.join(REPO_ROOT, 'src/cli/main.ts');
    // `exec`: `script` runs the command through $SHELL -c (/bin/sh where SHELL is unset). dash does
    // not exec a quoted command itself; left waiting in the foreground group, it dies of the same
    // Ctrl-C and `script` reports its 130 instead of streamseg's exit (a CI failure). SHELL is
    // pinned to /bin/sh below so that this case is the one tested.
    const command = `exec ${[process.execPath, '--import', 'tsx', main, 'run', long, '--out', path.join(dir, 'out-long'), '--no-progress']
      .map((a) => `'${a}'`)
      .join(' ')}`;
    // util-linux `script` runs the command on a pseudo-terminal: stderr is a TTY, and a Ctrl-C
    // (0x03) written to the terminal makes its line discipline send SIGINT to the whole
    // foreground process group, redis-server's too unless it has a group of its own.
    const terminal = spawn('script', ['-qfec', command, '/dev/null'], {
      cwd: REPO_ROOT,
      env: { ...process.env, REDIS_URL: undefined, LOG_LEVEL: undefined, STREAMSEG_MODEL: TEST_MODEL, SHELL: '/bin/sh' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let screen = '';
    const exited = new Promise<number | null>((resolve) => terminal.once('exit', (code) => resolve(code)));
    const announced = new Promise<string>((resolve) => {
      terminal.stdout.on('data', (d: Buffer) => {
        screen += d.toString();
        const url =
          /own redis-server at (redis:\/\/:[0-9a-f]{48}@127\.0\.0\.1:\d+) while this runs; in another terminal: REDIS_URL=\1 npx streamseg status\r?\n/.exec(
            screen,
          )?.[1];
        if (url) resolve(url);
      });
    });
    terminal.stderr.resume();
    const url = await announced;
    // While the run works, another terminal can read its Redis.
    const status = await runCli(['status'], { REDIS_URL: url });
    expect(status.code).toBe(0);
    await new Promise((r) => setTimeout(r, 1500));
    terminal.stdin.write('\x03');
    const code = await exited;
    terminal.stdin.end();
    const said = screen
      .split(/\r?\n/)
      .map((line) => line.replace(/^\^C/, ''))
      .filter((line) => line.length > 0);
    expect(said).toEqual([
      `streamseg: own redis-server at ${url} while this runs; in another terminal: REDIS_URL=${url} npx streamseg status`,
      'streamseg: SIGINT, shutting down',
    ]);
    expect(code).toBe(0);
  });
});

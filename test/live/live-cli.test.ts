import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../src/shared/free-port.js';
import { videoKeys } from '../../src/shared/redis-keys.js';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { startRedisServer, type TestRedisServer } from '../helpers/redis-server.js';
import { startUdpSender, until, type TestSender } from './live-sources.js';

const MAIN = path.join(REPO_ROOT, 'src/cli/main.ts');

interface LiveReport {
  live: { frameIndices: number; emittedFrames: number; droppedFrames: number };
}

/** The CLI on live sources: `streamseg run -` (stdin) and `streamseg stop <id>`. */
describe('live streams through the CLI', () => {
  let dir: string;
  let server: TestRedisServer;
  let redis: Redis;
  const senders: TestSender[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-live-cli-'));
    server = await startRedisServer();
    redis = new Redis(server.url);
  });

  afterAll(async () => {
    await Promise.allSettled(senders.map((s) => s.kill()));
    redis?.disconnect();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const env = (extra: NodeJS.ProcessEnv = {}) => ({
    ...process.env,
    STREAMSEG_MODEL: 'test/fixtures/test-model',
    STREAMSEG_OUT: dir,
    STREAMSEG_INTRA_OP_THREADS: '1',
    LOG_LEVEL: 'error',
    REDIS_URL: '',
    ...extra,
  });

  it('run -: an MPEG-TS stream on stdin is a live source read at its own rate, ended by EOF', async () => {
    const out = path.join(dir, 'stdin');
    // 3 s of testsrc2 at 10 fps written as fast as ffmpeg can: the producer reads it at native rate.
    const source = spawn(
      'ffmpeg',
      [
        '-hide_banner',
        '-loglevel',
        'error',
        '-f',
        'lavfi',
        '-i',
        'testsrc2=size=160x120:rate=10',
        '-t',
        '3',
        '-c:v',
        'libx264',
        '-preset',
        'ultrafast',
        '-f',
        'mpegts',
        'pipe:1',
      ],
      {
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    );
    const cli = spawn(process.execPath, ['--import', 'tsx', MAIN, 'run', '-', '--out', out, '--no-progress'], {
      cwd: REPO_ROOT,
      env: env(),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    source.stdout.pipe(cli.stdin);
    let stdout = '';
    let stderr = '';
    cli.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    cli.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => cli.once('close', resolve));
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout.split('\n')[0]).toBe(path.join(out, 'live', 'index.m3u8'));
    const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as LiveReport;
    expect(report.live.frameIndices).toBe(30);
    expect(report.live.emittedFrames + report.live.droppedFrames).toBe(30);
    expect(report.live.emittedFrames).toBeGreaterThan(0);
    expect(await readFile(path.join(out, 'live', 'index.m3u8'), 'utf8')).toContain('#EXT-X-ENDLIST');
  });

  it('Ctrl-C (SIGINT) on a live run stops the video gracefully: playlist closed, report written, exit 0', async () => {
    const port = await findFreePort();
    const url = `udp://127.0.0.1:${port}`;
    const out = path.join(dir, 'sigint');
    const cli = spawn(process.execPath, ['--import', 'tsx', MAIN, 'run', url, '--out', out, '--no-progress'], {
      cwd: REPO_ROOT,
      env: env(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    cli.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    cli.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const closed = new Promise<number | null>((resolve) => cli.once('close', resolve));
    const sender = startUdpSender(url, { size: '160x120' });
    senders.push(sender);
    const playlist = path.join(out, 'live', 'index.m3u8');
    await until('a first HLS segment', async () => (await readFile(playlist, 'utf8').catch(() => '')).includes('.ts'));
    cli.kill('SIGINT');
    expect(await closed, stderr).toBe(0);
    await sender.kill();
    expect(stdout.split('\n')[0], stderr).toBe(playlist);
    expect(await readFile(playlist, 'utf8')).toContain('#EXT-X-ENDLIST');
    const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as LiveReport;
    expect(report.live.emittedFrames).toBeGreaterThan(0);
  });

  it('streamseg stop <id> ends a live run gracefully (outputs finished, exit 0)', async () => {
    const port = await findFreePort();
    const url = `udp://127.0.0.1:${port}`;
    const out = path.join(dir, 'stopped');
    const cli = spawn(process.execPath, ['--import', 'tsx', MAIN, 'run', url, '--out', out, '--no-progress'], {
      cwd: REPO_ROOT,
      env: env({ REDIS_URL: server.url }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    cli.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    cli.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const closed = new Promise<number | null>((resolve) => cli.once('close', resolve));
    const sender = startUdpSender(url, { size: '160x120' });
    senders.push(sender);
    const videoId = await until('the live video id on stderr', async () => /live video (\S+);/.exec(stderr)?.[1]);
    await until('frame records', async () => (await redis.xlen(videoKeys(videoId).stream)) >= 10);
    const stop = await runCli(['stop', videoId], { REDIS_URL: server.url, STREAMSEG_OUT: dir });
    expect(stop.stderr).toBe('');
    expect(stop.stdout.trim()).toBe(`${videoId} done`);
    expect(await closed).toBe(0);
    await sender.kill();
    expect(stdout.split('\n')[0]).toBe(path.join(out, 'live', 'index.m3u8'));
    const report = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as LiveReport;
    expect(report.live.emittedFrames).toBeGreaterThanOrEqual(10);
    // Stopping it again says what it is.
    const again = await runCli(['stop', videoId], { REDIS_URL: server.url });
    expect(again.stdout.trim()).toBe(`${videoId} done`);
  });
});

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort } from '../../src/shared/free-port.js';
import { runCli, spawnCli, stopProcess } from '../helpers/cli.js';
import { makeTestVideo } from '../helpers/media.js';
import { startRedisServer, type TestRedisServer } from '../helpers/redis-server.js';
import { TEST_MODEL, TOKEN, eventually } from './stack.js';

describe('streamseg serve, watch and status through the CLI', () => {
  let server: TestRedisServer;
  let dir: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    server = await startRedisServer();
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-serve-'));
    env = { REDIS_URL: server.url, STREAMSEG_MODEL: TEST_MODEL, STREAMSEG_OUT: path.join(dir, 'out'), STREAMSEG_INTRA_OP_THREADS: '1', LOG_LEVEL: 'warn' };
  });

  afterAll(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses to serve without API tokens', async () => {
    const result = await runCli(['serve', '--port', '0'], { ...env, STREAMSEG_API_TOKENS: '' });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('E_CONFIG');
    expect(result.stderr).toContain('STREAMSEG_API_TOKENS');
  });

  it('serves the API with the roles in-process; watch follows a video to done; status lists queues and workers', async () => {
    const port = await findFreePort();
    const serve = spawnCli(['serve', '--port', String(port), '--host', '127.0.0.1', '--roles', 'all'], { ...env, STREAMSEG_API_TOKENS: TOKEN });
    let stderr = '';
    serve.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      await eventually(
        async () => (stderr.includes('streamseg API on') ? true : serve.exitCode !== null ? Promise.reject(new Error(stderr)) : undefined),
        'serve to listen',
        150_000,
      );
      const base = `http://127.0.0.1:${port}`;
      expect((await fetch(`${base}/healthz`)).status).toBe(200);

      const video = path.join(dir, 'clip.mp4');
      await makeTestVideo(video, { width: 64, height: 48, fps: 10, framesPerScene: [8, 8], video: ['libx264', '-pix_fmt', 'yuv420p'] });
      const form = new FormData();
      form.append('file', new Blob([await readFile(video)]), 'clip.mp4');
      const submitted = (await (await fetch(`${base}/v1/videos`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: form })).json()) as {
        id: string;
      };

      const watch = await runCli(['watch', submitted.id], env);
      expect(watch.code, watch.stderr).toBe(0);
      expect(watch.stdout).toContain(`${submitted.id} done`);
      expect(watch.stderr).toContain('sink');

      const status = await runCli(['status'], env);
      expect(status.code, status.stderr).toBe(0);
      for (const queue of ['videos', 'frames', 'sink']) expect(status.stdout).toContain(queue);
      expect(status.stdout).toContain('addr');
      const unknown = await runCli(['watch', 'vnosuchvideo'], env);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toContain('E_VIDEO_UNKNOWN');
    } finally {
      await stopProcess(serve);
    }
    expect(serve.exitCode).toBe(0);
  }, 300_000);
});

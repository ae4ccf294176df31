import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VideoView } from '../../src/api/services/video-view.js';
import { findFreePort as freePort } from '../../src/shared/free-port.js';
import os from 'node:os';
import { PipelineClient } from '../../src/shared/pipeline-client.js';
import { runCli } from '../helpers/cli.js';
import { makeTestVideo } from '../helpers/media.js';
import { auth, eventually, startApiStack, TEST_MODEL, type ApiStack } from '../api/stack.js';

/**
 * Issue 18, finding 4 (dead live sources): a live source that never connects fails fast with
 * E_LIVE_CONNECT (no retries), and live videos run in their own pool, so one waiting for its
 * source never holds the slot files are decoded in. Real API, producer, worker, sink, redis-server.
 */
describe('live sources: connect timeout and their own pool (issue 18)', () => {
  let stack: ApiStack;
  let clip: string;
  const postJson = (body: unknown) =>
    fetch(`${stack.url}/v1/videos`, { method: 'POST', headers: auth({ 'content-type': 'application/json' }), body: JSON.stringify(body) });
  const view = async (id: string) => (await (await fetch(`${stack.url}/v1/videos/${id}`, { headers: auth() })).json()) as VideoView;
  const finished = (id: string, timeoutMs = 60_000) =>
    eventually(
      async () => {
        const v = await view(id);
        return v.status === 'done' || v.status === 'failed' ? v : undefined;
      },
      `video ${id} to finish`,
      timeoutMs,
    );

  beforeAll(async () => {
    // One file slot and one live slot, as a small deployment would run; a 2 s connect timeout.
    stack = await startApiStack({ urlAllow: '127.0.0.2', producerConcurrency: 1, producerLiveConcurrency: 1, liveConnectTimeoutMs: 2000, jobAttempts: 3 });
    clip = path.join(stack.dir, 'clip.mp4');
    await makeTestVideo(clip, { width: 64, height: 48, fps: 10, framesPerScene: [4, 4], video: ['libx264', '-pix_fmt', 'yuv420p'] });
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('rtsp and udp sources that never deliver video fail within seconds with E_LIVE_CONNECT, without retries', async () => {
    for (const url of ['rtsp://127.0.0.2:9/stream', `udp://127.0.0.2:${await freePort()}`]) {
      const started = Date.now();
      const response = await postJson({ url });
      expect(response.status, url).toBe(201);
      const { id } = (await response.json()) as { id: string };
      const final = await finished(id, 30_000);
      const took = Date.now() - started;
      expect(final.status, url).toBe('failed');
      expect(final.error, url).toMatch(
        /^E_LIVE_CONNECT: .*: no video from the live source within 2 s \(.*\); check its address, port and credentials, or raise STREAMSEG_LIVE_CONNECT_TIMEOUT_MS$/,
      );
      // Before: 60 s per attempt, 3 attempts.
      expect(took, url).toBeLessThan(15_000);
      const attempts = Number(await stack.redis.hget(`streamseg:videos:${id}`, 'atm'));
      expect(attempts, url).toBeLessThanOrEqual(1);
    }
  });

  it('an API live source is checked against the destination policy again when the producer opens it', async () => {
    // As if the name had resolved to a public address at submission and to loopback now.
    const client = await PipelineClient.connect(stack.config, stack.redisUrl);
    try {
      const id = await client.submitter.submit(
        { kind: 'url', url: 'rtsp://127.0.0.1:9/rebound', restricted: true },
        { outDir: path.join(stack.dir, 'rebound') },
      );
      const final = await finished(id, 30_000);
      expect(final.status).toBe('failed');
      expect(final.error).toMatch(/^E_INPUT_URL_DESTINATION: rtsp:\/\/127\.0\.0\.1:9\/rebound: 127\.0\.0\.1 is in the loopback range/);
    } finally {
      await client.close();
    }
  });

  it('a live video waiting for its publisher does not hold the file slot: an upload is decoded meanwhile', async () => {
    const port = await freePort();
    const listening = await postJson({ url: `rtsp://127.0.0.2:${port}/cam`, live: { listen: true } });
    expect(listening.status).toBe(201);
    const liveId = ((await listening.json()) as { id: string }).id;
    const active = async () => stack.redis.lrange('streamseg:videos:active', 0, -1);
    await eventually(async () => ((await active()).includes(liveId) ? true : undefined), 'the producer to take the live video');
    // A second live video waits for the live pool, without taking the file slot either.
    const second = await postJson({ url: `rtsp://127.0.0.2:${await freePort()}/cam2`, live: { listen: true } });
    const secondId = ((await second.json()) as { id: string }).id;

    const form = new FormData();
    form.append('file', new Blob([new Uint8Array(await readFile(clip))]), 'clip.mp4');
    form.append('adapters', 'false');
    const upload = await fetch(`${stack.url}/v1/videos`, { method: 'POST', headers: auth(), body: form });
    expect(upload.status).toBe(201);
    const fileId = ((await upload.json()) as { id: string }).id;
    // Before: the listener held the only producer slot until STREAMSEG_LIVE_END_AFTER_SECONDS (60 s).
    const file = await finished(fileId, 40_000);
    expect(file.error).toBeNull();
    expect(file.status).toBe('done');
    expect((await view(liveId)).status).not.toMatch(/done|failed/);
    expect(await active()).toContain(liveId);
    expect(await active()).not.toContain(secondId);

    for (const id of [liveId, secondId]) {
      expect((await fetch(`${stack.url}/v1/videos/${id}`, { method: 'DELETE', headers: auth() })).status).toBe(200);
    }
  });
});

describe('credentials in source URLs are never shown; failed videos are not deduplicated (issue 18)', () => {
  let stack: ApiStack;
  const SECRET = 's3cret-pass';

  beforeAll(async () => {
    stack = await startApiStack({ urlAllow: '127.0.0.2', liveConnectTimeoutMs: 1000 });
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('the API (video, list, bull-board job data) and `streamseg status` show rtsp://***@host, never the password', async () => {
    const response = await fetch(`${stack.url}/v1/videos`, {
      method: 'POST',
      headers: auth({ 'content-type': 'application/json' }),
      body: JSON.stringify({ url: `rtsp://camuser:${SECRET}@127.0.0.2:9/stream` }),
    });
    expect(response.status).toBe(201);
    const { id } = (await response.json()) as { id: string };
    const final = await eventually(
      async () => {
        const v = (await (await fetch(`${stack.url}/v1/videos/${id}`, { headers: auth() })).json()) as VideoView;
        return v.status === 'failed' ? v : undefined;
      },
      'the video to fail',
      30_000,
    );
    expect(final.error).toMatch(/^E_LIVE_CONNECT: rtsp:\/\/\*\*\*@127\.0\.0\.2:9\/stream: no video/);
    const bodies = [
      await (await fetch(`${stack.url}/v1/videos/${id}`, { headers: auth() })).text(),
      await (await fetch(`${stack.url}/v1/videos`, { headers: auth() })).text(),
      await (await fetch(`${stack.url}/admin/queues/api/queues?activeQueue=videos&status=failed&page=1&jobsPerPage=50`, { headers: auth() })).text(),
      await (await fetch(`${stack.url}/admin/queues/api/queues/videos/${id}`, { headers: auth() })).text(),
    ];
    expect(bodies[2]).toContain('rtsp://***@127.0.0.2:9/stream');
    for (const body of bodies) expect(body).not.toContain(SECRET);
    const status = await runCli(['status', id], { REDIS_URL: stack.redisUrl });
    expect(status.stdout + status.stderr).toContain('rtsp://***@127.0.0.2:9/stream');
    expect(status.stdout + status.stderr).not.toContain(SECRET);
  });

  it('6. resubmitting what failed creates a new video (URL and upload); a running or well-finished one is still reused', async () => {
    const post = (body: unknown) =>
      fetch(`${stack.url}/v1/videos`, { method: 'POST', headers: auth({ 'content-type': 'application/json' }), body: JSON.stringify(body) });
    const failedOf = (id: string) =>
      eventually(
        async () => {
          const v = (await (await fetch(`${stack.url}/v1/videos/${id}`, { headers: auth() })).json()) as VideoView;
          return v.status === 'failed' ? v : undefined;
        },
        `video ${id} to fail`,
        30_000,
      );
    const url = 'rtsp://127.0.0.2:9/dedup';
    const first = (await (await post({ url })).json()) as { id: string; deduplicated: boolean };
    const again = await post({ url });
    expect(again.status).toBe(200);
    expect(((await again.json()) as { id: string }).id).toBe(first.id);
    await failedOf(first.id);
    const retry = await post({ url });
    expect(retry.status).toBe(201);
    const retried = (await retry.json()) as { id: string; deduplicated: boolean };
    expect(retried.deduplicated).toBe(false);
    expect(retried.id).not.toBe(first.id);

    const garbage = () => {
      const form = new FormData();
      form.append('file', new Blob([new Uint8Array(4096).fill(7)]), 'clip.mp4');
      return fetch(`${stack.url}/v1/videos`, { method: 'POST', headers: auth(), body: form });
    };
    const upload = (await (await garbage()).json()) as { id: string };
    expect((await failedOf(upload.id)).error).toMatch(/^E_INPUT/);
    const reupload = await garbage();
    expect(reupload.status).toBe(201);
    expect(((await reupload.json()) as { id: string }).id).not.toBe(upload.id);
  });

  it('`streamseg run rtsp://user:pass@…` at LOG_LEVEL=debug: no log line nor the error shows the password', async () => {
    const result = await runCli(['run', `rtsp://camuser:${SECRET}@127.0.0.1:9/stream`, '--out', path.join(os.tmpdir(), `ss-never-written-${process.pid}`)], {
      REDIS_URL: undefined,
      STREAMSEG_MODEL: TEST_MODEL,
      STREAMSEG_LIVE_CONNECT_TIMEOUT_MS: '1000',
      LOG_LEVEL: 'debug',
    });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('rtsp://***@127.0.0.1:9/stream');
    expect(result.stderr).toMatch(/E_LIVE_CONNECT/);
    expect(result.stdout + result.stderr).not.toContain(SECRET);
  }, 90_000);
});

describe('streamseg run of a dead live source (issue 18)', () => {
  it('`streamseg run udp://127.0.0.1:9` ends within seconds with one E_LIVE_CONNECT line', async () => {
    const started = Date.now();
    const result = await runCli(['run', 'udp://127.0.0.1:9', '--out', path.join(os.tmpdir(), `ss-never-written-${process.pid}`)], {
      REDIS_URL: undefined,
      STREAMSEG_MODEL: TEST_MODEL,
      LOG_LEVEL: 'silent',
    });
    const took = Date.now() - started;
    expect(result.code, result.stderr).not.toBe(0);
    expect(result.stderr).toMatch(/E_LIVE_CONNECT: udp:\/\/127\.0\.0\.1:9: no video from the live source within 10 s/);
    // Before: still running after 100 s. 10 s timeout plus start-up on a loaded machine.
    expect(took).toBeLessThan(40_000);
  }, 90_000);
});

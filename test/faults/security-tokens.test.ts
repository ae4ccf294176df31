import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { makeTestVideo } from '../helpers/media.js';
import { startApiStack, type ApiStack } from '../api/stack.js';

/**
 * Issue 18, findings 4 and 5 (scoped tokens, per-token limits): tokens with `read`, `submit` and
 * `admin` scopes against a real API, producer, worker and sink on a real redis-server.
 */
const READ = 'read-token-0123456789abcdef';
const SUBMIT_A = 'submit-a-token-0123456789ab';
const SUBMIT_B = 'submit-b-token-0123456789ab';
const ADMIN = 'admin-token-0123456789abcdef';
const LEGACY = 'legacy-token-0123456789abcde';

describe('scoped tokens and per-token limits (issue 18)', () => {
  let stack: ApiStack;
  let clip: string;
  const as = (token: string, extra: Record<string, string> = {}) => ({ authorization: `Bearer ${token}`, ...extra });
  const postUrl = (token: string, body: Record<string, unknown>) =>
    fetch(`${stack.url}/v1/videos`, { method: 'POST', headers: as(token, { 'content-type': 'application/json' }), body: JSON.stringify(body) });
  const upload = async (token: string, fields: Record<string, string> = {}) => {
    const form = new FormData();
    form.append('file', new Blob([new Uint8Array(await (await import('node:fs/promises')).readFile(clip))]), 'clip.mp4');
    for (const [k, v] of Object.entries(fields)) form.append(k, v);
    return fetch(`${stack.url}/v1/videos`, { method: 'POST', headers: as(token), body: form });
  };
  const errorOf = async (response: Response) => ((await response.json()) as { error: { code: string; message: string } }).error;

  beforeAll(async () => {
    stack = await startApiStack({
      apiTokens: `${READ}:read,${SUBMIT_A}:submit,${SUBMIT_B}:submit,${ADMIN}:admin,${LEGACY}`,
      urlAllow: '127.0.0.2',
      tokenMaxVideos: 2,
      tokenSubmissionsPerMinute: 6,
      dedupSeconds: 0,
    });
    clip = path.join(stack.dir, 'clip.mp4');
    await makeTestVideo(clip, { width: 64, height: 48, fps: 10, framesPerScene: [4, 4], video: ['libx264', '-pix_fmt', 'yuv420p'] });
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('5. read may read but not submit or write adapters; submit may not write adapters nor cancel others; admin may', async () => {
    // read: status, lists, adapters list, queues.
    for (const p of ['/v1/videos', '/v1/queues', '/v1/adapters', '/metrics']) {
      expect((await fetch(`${stack.url}${p}`, { headers: as(READ) })).status, p).toBe(200);
    }
    const refused = await postUrl(READ, { url: 'rtsp://127.0.0.2:9/cam' });
    expect(refused.status).toBe(403);
    expect(await errorOf(refused)).toEqual({
      code: 'E_FORBIDDEN',
      message: 'this token has scope "read"; POST /v1/videos needs "submit" (an STREAMSEG_API_TOKENS entry <token>:submit)',
    });
    expect((await fetch(`${stack.url}/admin/queues`, { headers: as(SUBMIT_A) })).status).toBe(403);
    for (const token of [READ, SUBMIT_A]) {
      const adapter = await fetch(`${stack.url}/v1/adapters/anything`, { method: 'DELETE', headers: as(token) });
      expect(adapter.status).toBe(403);
      expect((await errorOf(adapter)).message).toMatch(/needs "admin"/);
      const restore = await fetch(`${stack.url}/v1/adapters/anything/restore`, { method: 'POST', headers: as(token) });
      expect(restore.status).toBe(403);
    }

    // A's video: B (submit) may neither stop nor cancel it, read neither; A may; admin may cancel any.
    const a1 = await upload(SUBMIT_A, { adapters: 'false' });
    expect(a1.status).toBe(201);
    const { id } = (await a1.json()) as { id: string };
    for (const token of [SUBMIT_B, READ]) {
      const cancel = await fetch(`${stack.url}/v1/videos/${id}`, { method: 'DELETE', headers: as(token) });
      expect(cancel.status).toBe(403);
    }
    const byB = await fetch(`${stack.url}/v1/videos/${id}`, { method: 'DELETE', headers: as(SUBMIT_B) });
    expect((await errorOf(byB)).message).toBe(`video ${id} was not submitted with this token: to cancel another token's video, use a token with scope "admin"`);
    expect((await fetch(`${stack.url}/v1/videos/${id}`, { method: 'DELETE', headers: as(SUBMIT_A) })).status).toBe(200);

    const a2 = (await (await upload(SUBMIT_A, { adapters: 'false', fps: '5' })).json()) as { id: string };
    expect((await fetch(`${stack.url}/v1/videos/${a2.id}`, { method: 'DELETE', headers: as(ADMIN) })).status).toBe(200);
    // An unscoped entry keeps today's meaning: every right.
    const a3 = (await (await upload(SUBMIT_A, { adapters: 'false', fps: '4' })).json()) as { id: string };
    expect((await fetch(`${stack.url}/v1/videos/${a3.id}`, { method: 'DELETE', headers: as(LEGACY) })).status).toBe(200);
    expect((await fetch(`${stack.url}/admin/queues`, { headers: as(LEGACY) })).status).toBe(200);
  });

  it('4. per token: at most STREAMSEG_TOKEN_MAX_VIDEOS running, STREAMSEG_TOKEN_SUBMISSIONS_PER_MINUTE a minute (429, Retry-After)', async () => {
    // Two live videos that never connect hold B's two places (127.0.0.2:9 refuses; they end by the connect timeout).
    const first = await postUrl(SUBMIT_B, { url: 'rtsp://127.0.0.2:9/one' });
    const second = await postUrl(SUBMIT_B, { url: 'rtsp://127.0.0.2:9/two' });
    expect([first.status, second.status]).toEqual([201, 201]);
    const third = await postUrl(SUBMIT_B, { url: 'rtsp://127.0.0.2:9/three' });
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await errorOf(third)).toMatchObject({
      code: 'E_TOO_MANY_VIDEOS',
      message: expect.stringMatching(/already has 2 videos running \(STREAMSEG_TOKEN_MAX_VIDEOS\)/),
    });
    // Another token is not held back by B.
    const other = await postUrl(ADMIN, { url: 'rtsp://127.0.0.2:9/admins' });
    expect(other.status).toBe(201);
    // Cancelling one frees a place.
    const { id } = (await first.json()) as { id: string };
    expect((await fetch(`${stack.url}/v1/videos/${id}`, { method: 'DELETE', headers: as(SUBMIT_B) })).status).toBe(200);
    const fourth = await postUrl(SUBMIT_B, { url: 'rtsp://127.0.0.2:9/four' });
    expect(fourth.status).toBe(201);
    // B has made 4 submissions; refused ones count too, and the 7th within a minute is refused whatever it is.
    for (const name of ['five', 'six']) expect((await errorOf(await postUrl(SUBMIT_B, { url: `rtsp://127.0.0.2:9/${name}` }))).code).toBe('E_TOO_MANY_VIDEOS');
    const limited = await postUrl(SUBMIT_B, { url: 'rtsp://127.0.0.2:9/seven' });
    expect(limited.status).toBe(429);
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(await errorOf(limited)).toMatchObject({
      code: 'E_RATE_LIMITED',
      message: expect.stringMatching(/6 submissions in the last minute \(STREAMSEG_TOKEN_SUBMISSIONS_PER_MINUTE\); try again in \d+ s/),
    });
    // A's rate is its own.
    expect((await postUrl(SUBMIT_A, { url: 'http://127.0.0.2:9/a.mp4', fps: '0x10' })).status).toBe(400);
  });

  it('5. a bad STREAMSEG_API_TOKENS entry stops serve at start-up with one E_CONFIG line that does not repeat the token', async () => {
    const result = await runCli(['serve', '--port', '0'], { REDIS_URL: stack.redisUrl, STREAMSEG_API_TOKENS: `${ADMIN}:root,short:read` });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('E_CONFIG');
    expect(result.stderr).toContain('unknown scope "root" (write <token>:read, <token>:submit or <token>:admin; a token alone means admin)');
    expect(result.stderr).toContain('each token must have at least 16 characters');
    expect(result.stderr).not.toContain(ADMIN);
  });
});

import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VideoView } from '../../src/api/services/video-view.js';
import { makeTestVideo } from '../helpers/media.js';
import { auth, eventually, startApiStack, type ApiStack } from '../api/stack.js';

/**
 * Issue 18: an attacker holding a valid token, probing `serve` on loopback. Each test pins one
 * finding at the HTTP level. The stack allows 127.0.0.2 only (STREAMSEG_URL_ALLOW), so the rest
 * of 127/8, Redis included, is what the default policy refuses.
 */
describe('security inside the perimeter (issue 18)', () => {
  let stack: ApiStack;
  let clip: string;

  const postJson = (body: unknown) => fetch(`${stack.url}/v1/videos`, { method: 'POST', headers: auth({ 'content-type': 'application/json' }), body: JSON.stringify(body) });
  const errorOf = async (response: Response) => ((await response.json()) as { error: { code: string; message: string } }).error;
  const videoCount = async () => ((await (await fetch(`${stack.url}/v1/videos?limit=500`, { headers: auth() })).json()) as { videos: unknown[] }).videos.length;
  const finalView = (id: string) =>
    eventually(async () => {
      const view = (await (await fetch(`${stack.url}/v1/videos/${id}`, { headers: auth() })).json()) as VideoView;
      return view.status === 'done' || view.status === 'failed' ? view : undefined;
    }, `video ${id} to finish`);

  beforeAll(async () => {
    stack = await startApiStack({ urlAllow: '127.0.0.2' });
    clip = path.join(stack.dir, 'clip.mp4');
    await makeTestVideo(clip, { width: 96, height: 64, fps: 10, framesPerScene: [6, 6], video: ['libx264', '-pix_fmt', 'yuv420p', '-movflags', '+faststart'] });
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('1. a URL submission never becomes a local file read, nor a file-existence oracle (JSON and multipart)', async () => {
    const secretDir = path.join(stack.dir, 'private');
    await mkdir(secretDir, { recursive: true });
    await copyFile(clip, path.join(secretDir, 'file.mp4'));
    const before = await videoCount();
    const up = '../'.repeat(12);
    for (const target of ['file.mp4', 'missing.mp4']) {
      const url = ` http://x/${up}${secretDir.slice(1)}/${target}`;
      const json = await postJson({ url });
      expect(json.status, url).toBe(400);
      const jsonError = await errorOf(json);
      expect(jsonError.code).toBe('E_INPUT_URL_INVALID');
      expect(jsonError.message).toMatch(/control character or whitespace \(U\+0020 at position 0\)/);
      const form = new FormData();
      form.append('url', url);
      const multipart = await fetch(`${stack.url}/v1/videos`, { method: 'POST', headers: auth(), body: form });
      expect(multipart.status).toBe(400);
      expect((await errorOf(multipart)).code).toBe('E_INPUT_URL_INVALID');
    }
    // A path without a scheme is not a URL either.
    const bare = await postJson({ url: path.join(secretDir, 'file.mp4') });
    expect(bare.status).toBe(400);
    expect((await errorOf(bare)).code).toBe('E_INPUT_URL_INVALID');
    expect(await videoCount()).toBe(before);
  });

  it('2. SSRF: loopback, link-local, private, multicast and odd spellings are refused; control characters too', async () => {
    const redisPort = new URL(stack.redisUrl).port;
    const before = await videoCount();
    const refused: [string, RegExp][] = [
      [`http://127.0.0.1:${redisPort}/`, /127\.0\.0\.1 is in the loopback range/],
      ['http://169.254.169.254/latest/meta-data/', /169\.254\.169\.254 is in the linkLocal range/],
      ['http://0x7f000001:9/', /127\.0\.0\.1 is in the loopback range/],
      ['http://[::1]:9/', /::1 is in the loopback range/],
      ['rtsp://localhost:9/stream', /localhost \(127\.0\.0\.1\) is in the loopback range/],
      ['rtsp://2130706433:9/stream', /2130706433 \(127\.0\.0\.1\) is in the loopback range/],
      ['udp://239.1.2.3:5000', /239\.1\.2\.3 is in the multicast range/],
      ['http://10.1.2.3/a.mp4', /10\.1\.2\.3 is in the private range/],
      ['http://[::ffff:127.0.0.1]:9/', /is in the loopback range/],
    ];
    for (const [url, message] of refused) {
      const response = await postJson({ url });
      expect(response.status, url).toBe(400);
      const error = await errorOf(response);
      expect(error.code, url).toBe('E_INPUT_URL_DESTINATION');
      expect(error.message, url).toMatch(message);
      expect(error.message).toMatch(/STREAMSEG_URL_ALLOW/);
    }
    // Where a live video restreams to is a destination too.
    const restream = await postJson({ url: 'rtsp://127.0.0.2:9/cam', live: { restreamUrl: `udp://127.0.0.1:${redisPort}` } });
    expect(restream.status).toBe(400);
    expect(await errorOf(restream)).toMatchObject({ code: 'E_INPUT_URL_DESTINATION', message: expect.stringMatching(/^live\.restreamUrl: 127\.0\.0\.1 is in the loopback range/) });
    for (const url of ['rtsp://127.0.0.2/\r\nSET key value\r\nX', 'http://127.0.0.2/a\tb.mp4', 'http://127.0.0.2/a\u0000.mp4', 'http://127.0.0.2/a\u2028.mp4', 'http://127.0.0.2/a.mp4 ']) {
      const response = await postJson({ url });
      expect(response.status, JSON.stringify(url)).toBe(400);
      expect((await errorOf(response)).code).toBe('E_INPUT_URL_INVALID');
    }
    expect(await videoCount()).toBe(before);
    expect(await stack.redis.exists('key')).toBe(0);
  });

  it('2. an allowed host is served, and a redirect from it to a refused address is checked again and not followed', async () => {
    const hits = { allowed: [] as string[], loopback: [] as string[] };
    const handler = (name: keyof typeof hits) => (request: http.IncomingMessage, response: http.ServerResponse) => {
      hits[name].push(request.url ?? '');
      if (request.url === '/clip.mp4') {
        response.writeHead(200, { 'content-type': 'video/mp4' });
        createReadStream(clip).pipe(response);
      } else if (request.url === '/redirect') {
        response.writeHead(302, { location: `http://127.0.0.1:${loopbackPort}/clip.mp4` }).end();
      } else response.writeHead(404).end();
    };
    const allowed = http.createServer(handler('allowed'));
    const loopback = http.createServer(handler('loopback'));
    await new Promise<void>((resolve) => allowed.listen(0, '127.0.0.2', resolve));
    await new Promise<void>((resolve) => loopback.listen(0, '127.0.0.1', resolve));
    const allowedPort = (allowed.address() as { port: number }).port;
    const loopbackPort = (loopback.address() as { port: number }).port;
    try {
      const ok = await postJson({ url: `http://127.0.0.2:${allowedPort}/clip.mp4`, adapters: false });
      expect(ok.status).toBe(201);
      const okView = await finalView(((await ok.json()) as { id: string }).id);
      expect(okView.error).toBeNull();
      expect(okView.status).toBe('done');

      const redirected = await postJson({ url: `http://127.0.0.2:${allowedPort}/redirect`, adapters: false });
      expect(redirected.status).toBe(201);
      const view = await finalView(((await redirected.json()) as { id: string }).id);
      expect(view.status).toBe('failed');
      expect(view.error).toMatch(/E_INPUT_URL_DESTINATION: http:\/\/127\.0\.0\.2:\d+\/redirect: 127\.0\.0\.1 is in the loopback range/);
      expect(hits.allowed).toContain('/redirect');
      expect(hits.loopback).toEqual([]);
      const report = await readFile(path.join(stack.config.outDir, okView.id, 'report.json'), 'utf8');
      expect(report.length).toBeGreaterThan(0);
    } finally {
      allowed.close();
      loopback.close();
    }
  });
});

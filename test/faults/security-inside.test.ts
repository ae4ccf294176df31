import { copyFile, mkdir, readFile, symlink } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { createApiServer, type ApiServer } from '../../src/api/server.js';
import { createLogger } from '../../src/shared/logger.js';
import { loadModelPackage } from '../../src/shared/model-manifest.js';
import { encodeSafetensors } from '../../src/shared/adapters/safetensors.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VideoView } from '../../src/api/services/video-view.js';
import { makeTestVideo } from '../helpers/media.js';
import { auth, eventually, startApiStack, TOKEN, type ApiStack } from '../api/stack.js';
import { startRedisServer, type TestRedisServer } from '../helpers/redis-server.js';
import { loadConfig } from '../../src/shared/config.js';
import os from 'node:os';

/**
 * Issue 18: an attacker holding a valid token, probing `serve` on loopback. Each test pins one
 * finding at the HTTP level. The stack allows 127.0.0.2 only (STREAMSEG_URL_ALLOW), so the rest
 * of 127/8, Redis included, is what the default policy refuses.
 */
describe('security inside the perimeter (issue 18)', () => {
  let stack: ApiStack;
  let clip: string;

  const postJson = (body: unknown) =>
    fetch(`${stack.url}/v1/videos`, { method: 'POST', headers: auth({ 'content-type': 'application/json' }), body: JSON.stringify(body) });
  const errorOf = async (response: Response) => ((await response.json()) as { error: { code: string; message: string } }).error;
  const videoCount = async () => ((await (await fetch(`${stack.url}/v1/videos?limit=500`, { headers: auth() })).json()) as { videos: unknown[] }).videos.length;
  const finalView = (id: string) =>
    eventually(async () => {
      const view = (await (await fetch(`${stack.url}/v1/videos/${id}`, { headers: auth() })).json()) as VideoView;
      return view.status === 'done' || view.status === 'failed' ? view : undefined;
    }, `video ${id} to finish`);

  beforeAll(async () => {
    stack = await startApiStack({ urlAllow: '127.0.0.2', httpHeadersTimeoutMs: 1000, httpIdleTimeoutMs: 3000 });
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
    expect(await errorOf(restream)).toMatchObject({
      code: 'E_INPUT_URL_DESTINATION',
      message: expect.stringMatching(/^live\.restreamUrl: 127\.0\.0\.1 is in the loopback range/),
    });
    for (const url of [
      'rtsp://127.0.0.2/\r\nSET key value\r\nX',
      'http://127.0.0.2/a\tb.mp4',
      'http://127.0.0.2/a\u0000.mp4',
      'http://127.0.0.2/a\u2028.mp4',
      'http://127.0.0.2/a.mp4 ',
    ]) {
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
  it('3. options are strict and checked against the model at submission: 400 naming the bad value', async () => {
    const before = await videoCount();
    const longName = 'x'.repeat(10_000);
    for (const [classes, named] of [
      ['ROAD', 'ROAD'],
      [['__proto__'], '__proto__'],
      [Array.from({ length: 1000 }, (_, i) => `c${i}`), 'c0'],
      [[longName], 'xxxx'],
    ] as const) {
      const response = await postJson({ url: 'http://127.0.0.2:9/a.mp4', classes });
      expect(response.status, String(named)).toBe(400);
      expect((await errorOf(response)).message).toContain(named);
    }
    for (const fps of [[5], true, '0x10', '1e1', '']) {
      const response = await postJson({ url: 'http://127.0.0.2:9/a.mp4', fps });
      expect(response.status, JSON.stringify(fps)).toBe(400);
      expect((await errorOf(response)).message).toMatch(/^invalid options: fps/);
    }
    const form = new FormData();
    form.append('url', 'http://127.0.0.2:9/a.mp4');
    form.append('classes', 'a,'.repeat(2_500_000));
    const huge = await fetch(`${stack.url}/v1/videos`, { method: 'POST', headers: auth(), body: form });
    expect(huge.status).toBe(400);
    expect((await errorOf(huge)).message).toMatch(/field "classes" is longer than 64 KiB/);
    expect(await videoCount()).toBe(before);
  });

  it('6. a symlink in an output folder is not followed out of it', async () => {
    const id = 'vsymlink0000';
    const dir = path.join(stack.config.outDir, id);
    await mkdir(dir, { recursive: true });
    await symlink('/etc/hostname', path.join(dir, 'annotated.mp4'));
    await symlink('/etc/hostname', path.join(dir, 'report.json'));
    for (const file of ['annotated.mp4', 'report.json']) {
      const response = await fetch(`${stack.url}/v1/videos/${id}/${file}`, { headers: auth() });
      expect(response.status, file).toBe(404);
      expect((await errorOf(response)).code).toBe('E_NOT_FOUND');
    }
  });

  it('6. unauthenticated oddities answer 4xx, never 500: /web/constructor, /web/__proto__, a malformed token cookie', async () => {
    for (const p of ['/web/constructor', '/web/__proto__', '/web/hasOwnProperty']) {
      const response = await fetch(`${stack.url}${p}`);
      expect(response.status, p).toBe(404);
    }
    const cookie = await fetch(`${stack.url}/v1/videos`, { headers: { cookie: 'streamseg_token=%E0%A4%A' } });
    expect(cookie.status).toBe(401);
  });

  it('6. slow headers and a stalled body are cut off (header and idle timeouts)', async () => {
    const { hostname, port } = new URL(stack.url);
    const closedAfter = (payload: string) =>
      new Promise<number>((resolve, reject) => {
        const started = Date.now();
        const socket = net.connect(Number(port), hostname, () => socket.write(payload));
        socket.on('error', () => undefined);
        socket.on('close', () => resolve(Date.now() - started));
        setTimeout(() => reject(new Error('the server kept a slow connection open for 15 s')), 15_000).unref();
      });
    const [slowHeaders, slowBody] = await Promise.all([
      closedAfter('GET /healthz HTTP/1.1\r\nHost: x\r\n'),
      closedAfter(
        `POST /v1/videos HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"url":`,
      ),
    ]);
    expect(slowHeaders).toBeLessThan(8000);
    expect(slowBody).toBeLessThan(8000);
  });
});

describe('5. package adapters are read-only; run-time adapters bounded (issue 18)', () => {
  let redisServer: TestRedisServer;
  let api: ApiServer;
  let base: string;
  const dir = path.join(REPO_ROOT, 'models/default/adapters');
  const headers = { authorization: `Bearer ${TOKEN}` };
  let fogCentroid: number[];

  const adapterForm = async (name: string, extra: Record<string, string> = {}, weights?: Buffer) => {
    const form = new FormData();
    form.append('name', name);
    form.append('centroid', fogCentroid.join(','));
    for (const [k, v] of Object.entries(extra)) form.append(k, v);
    form.append('config', new Blob([await readFile(path.join(dir, 'fog/adapter_config.json'))]), 'adapter_config.json');
    form.append(
      'weights',
      new Blob([new Uint8Array(weights ?? (await readFile(path.join(dir, 'fog/adapter_model.safetensors'))))]),
      'adapter_model.safetensors',
    );
    return form;
  };
  const listed = async () => ((await (await fetch(`${base}/v1/adapters`, { headers })).json()) as { adapters: { name: string; source: string }[] }).adapters;

  beforeAll(async () => {
    redisServer = await startRedisServer();
    const modelDir = path.join(REPO_ROOT, 'models/default');
    const config = loadConfig({ apiTokens: TOKEN, modelDir, outDir: path.join(os.tmpdir(), 'ss-adapters-out'), logLevel: 'silent', metricsPublishMs: 0 }, {});
    api = await createApiServer({ config, redisUrl: redisServer.url, logger: createLogger('silent'), modelPackage: await loadModelPackage(modelDir) });
    base = await api.listen(0, '127.0.0.1');
    const index = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8')) as { adapters: { name: string; centroids: number[][] }[] };
    fogCentroid = index.adapters.find((a) => a.name === 'fog')!.centroids[0]!;
  });

  afterAll(async () => {
    await api?.close();
    await redisServer?.stop();
  });

  it('refuses to shadow or delete a package adapter (409), shadows only with shadow=true, and restores', async () => {
    const shadow = await fetch(`${base}/v1/adapters`, { method: 'POST', headers, body: await adapterForm('fog') });
    expect(shadow.status).toBe(409);
    expect(((await shadow.json()) as { error: { code: string } }).error.code).toBe('E_ADAPTER_READ_ONLY');
    for (const name of ['fog', 'dusk']) {
      const removed = await fetch(`${base}/v1/adapters/${name}`, { method: 'DELETE', headers });
      expect(removed.status, name).toBe(409);
    }
    expect((await listed()).map((a) => [a.name, a.source])).toEqual([
      ['dusk', 'package'],
      ['fog', 'package'],
      ['night', 'package'],
      ['rain', 'package'],
      ['snow', 'package'],
    ]);

    const explicit = await fetch(`${base}/v1/adapters`, { method: 'POST', headers, body: await adapterForm('fog', { shadow: 'true' }) });
    expect(explicit.status).toBe(201);
    expect(await explicit.json()).toMatchObject({ name: 'fog', shadows: true });
    expect((await listed()).find((a) => a.name === 'fog')?.source).toBe('runtime');
    const restored = await fetch(`${base}/v1/adapters/fog/restore`, { method: 'POST', headers });
    expect(await restored.json()).toEqual({ name: 'fog', restored: true });
    expect((await listed()).find((a) => a.name === 'fog')?.source).toBe('package');

    // DELETE of a shadow removes the shadow only.
    await fetch(`${base}/v1/adapters`, { method: 'POST', headers, body: await adapterForm('fog', { shadow: 'true' }) });
    expect((await fetch(`${base}/v1/adapters/fog`, { method: 'DELETE', headers })).status).toBe(200);
    expect((await listed()).find((a) => a.name === 'fog')?.source).toBe('package');
  });

  it('refuses weights of ±1e38 and centroids of zero or 1e308 (400 E_ADAPTER_VALUES)', async () => {
    const original = await readFile(path.join(dir, 'fog/adapter_model.safetensors'));
    const headerLength = Number(original.readBigUInt64LE(0));
    const header = JSON.parse(original.subarray(8, 8 + headerLength).toString('utf8')) as Record<
      string,
      { dtype: string; shape: number[]; data_offsets: [number, number] }
    >;
    const tensors: Parameters<typeof encodeSafetensors>[0] = {};
    for (const [name, spec] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      const bytes = original.subarray(8 + headerLength + spec.data_offsets[0], 8 + headerLength + spec.data_offsets[1]);
      const data = new Float32Array(spec.shape.reduce((a, b) => a * b, 1)).fill(1e38);
      expect(spec.dtype === 'F32' || spec.dtype === 'F16' || spec.dtype === 'BF16').toBe(true);
      expect(bytes.length).toBeGreaterThan(0);
      tensors[name] = { shape: spec.shape, data };
    }
    const huge = await fetch(`${base}/v1/adapters`, {
      method: 'POST',
      headers,
      body: await adapterForm('huge', {}, encodeSafetensors(tensors, { format: 'pt' })),
    });
    expect(huge.status).toBe(400);
    expect((await huge.json()) as { error: { code: string; message: string } }).toMatchObject({
      error: { code: 'E_ADAPTER_VALUES', message: expect.stringMatching(/outside ±1000/) },
    });
    for (const centroid of [fogCentroid.map(() => 0), fogCentroid.map(() => 1e308)]) {
      const form = await adapterForm('odd');
      form.set('centroid', centroid.join(','));
      const response = await fetch(`${base}/v1/adapters`, { method: 'POST', headers, body: form });
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('E_ADAPTER_VALUES');
    }
    expect((await listed()).map((a) => a.name)).not.toContain('huge');
  });
});

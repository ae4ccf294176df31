import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiServer } from '../../src/api/server.js';
import type { VideoView } from '../../src/api/services/video-view.js';
import { createLogger } from '../../src/shared/logger.js';
import type { FrameResult } from '../../src/shared/frame-store.js';
import { QUEUE_PREFIX, QueueName } from '../../src/shared/queues.js';
import { liveKeys } from '../../src/shared/redis-keys.js';
import { cancelledKey } from '../../src/shared/redis-keys.js';
import { VideoStateStore } from '../../src/shared/video-state.js';
import { makeTestVideo } from '../helpers/media.js';
import { auth, eventually, readSse, startApiStack, TOKEN, type ApiStack } from './stack.js';

const FRAMES = 24;

async function upload(stack: ApiStack, file: string, fields: Record<string, string> = {}): Promise<Response> {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  form.append('file', new Blob([await readFile(file)], { type: 'video/mp4' }), path.basename(file));
  return fetch(`${stack.url}/v1/videos`, { method: 'POST', headers: auth(), body: form });
}

describe('HTTP API against real Redis, workers, ONNX Runtime and ffmpeg', () => {
  let stack: ApiStack;
  let video: string;
  let longVideo: string;
  let doneId: string;
  let frameEvents: { id: string; record: FrameResult }[] = [];

  beforeAll(async () => {
    // The dedup test submits loopback URLs, which the destination policy refuses unless allowed.
    stack = await startApiStack({ urlAllow: '127.0.0.1' });
    video = path.join(stack.dir, 'two-scenes.mp4');
    longVideo = path.join(stack.dir, 'long.mp4');
    await makeTestVideo(video, { width: 96, height: 64, fps: 10, framesPerScene: [12, 12], video: ['libx264', '-pix_fmt', 'yuv420p'] });
    await makeTestVideo(longVideo, { width: 96, height: 64, fps: 10, framesPerScene: [60, 60], video: ['libx264', '-pix_fmt', 'yuv420p'] });
  });

  afterAll(async () => {
    await stack?.stop();
  });

  it('answers 401 without a valid token, except on /healthz and /readyz', async () => {
    for (const p of ['/v1/videos', '/metrics', '/admin/queues', '/v1/openapi.json', '/v1/adapters', '/v1/queues']) {
      const none = await fetch(`${stack.url}${p}`);
      expect(none.status, p).toBe(401);
      expect(((await none.json()) as { error: { code: string } }).error.code).toBe('E_UNAUTHORIZED');
      const wrong = await fetch(`${stack.url}${p}`, { headers: { authorization: `Bearer ${TOKEN}x` } });
      expect(wrong.status, p).toBe(401);
      await wrong.body?.cancel();
    }
    const post = await fetch(`${stack.url}/v1/videos`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ url: 'https://example.com/a.mp4' }),
    });
    expect(post.status).toBe(401);
    // The page's cookie works for reads, and for writes only from the same origin.
    const cookie = { cookie: `streamseg_token=${TOKEN}` };
    expect((await fetch(`${stack.url}/v1/queues`, { headers: cookie })).status).toBe(200);
    const crossSite = await fetch(`${stack.url}/v1/videos/vnope`, { method: 'DELETE', headers: { ...cookie, origin: 'https://evil.example' } });
    expect(crossSite.status).toBe(401);
    expect((await fetch(`${stack.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${stack.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ok: true, redis: 'ready' });
    expect((await fetch(`${stack.url}/admin/queues`, { headers: auth() })).status).toBe(200);
  });

  it('uploads a video and follows its events to completion', async () => {
    const response = await upload(stack, video);
    expect(response.status).toBe(201);
    const body = (await response.json()) as { id: string; deduplicated: boolean; video: VideoView };
    expect(body.deduplicated).toBe(false);
    expect(response.headers.get('location')).toBe(`/v1/videos/${body.id}`);
    doneId = body.id;

    const events = await readSse(await fetch(`${stack.url}/v1/videos/${doneId}/events`, { headers: auth() }));
    expect(events[0]!.event).toBe('progress');
    const last = events[events.length - 1]!;
    expect(last.event).toBe('done');
    const final = JSON.parse(last.data) as VideoView;
    expect(final.status).toBe('done');
    expect(final.totalFrames).toBe(FRAMES);
    for (const stage of ['decode', 'segment', 'sink'] as const) expect(final.stages[stage]).toEqual({ done: FRAMES, total: FRAMES, fraction: 1 });
    frameEvents = events.filter((e) => e.event === 'frame').map((e) => ({ id: e.id!, record: JSON.parse(e.data) as FrameResult }));
    expect(frameEvents.map((f) => f.record.index)).toEqual(Array.from({ length: FRAMES }, (_, i) => i));
    expect(frameEvents.every((f) => /^\d+-\d+$/.test(f.id))).toBe(true);
    expect(new Set(frameEvents.map((f) => f.record.scene)).size).toBe(2);

    const status = (await (await fetch(`${stack.url}/v1/videos/${doneId}`, { headers: auth() })).json()) as VideoView;
    expect(status.status).toBe('done');
    const list = (await (await fetch(`${stack.url}/v1/videos`, { headers: auth() })).json()) as { videos: VideoView[] };
    expect(list.videos.map((v) => v.id)).toContain(doneId);
  });

  it('resumes the event stream after Last-Event-ID', async () => {
    const resumeAfter = frameEvents[9]!;
    const events = await readSse(await fetch(`${stack.url}/v1/videos/${doneId}/events`, { headers: auth({ 'last-event-id': resumeAfter.id }) }));
    const indices = events.filter((e) => e.event === 'frame').map((e) => (JSON.parse(e.data) as FrameResult).index);
    expect(indices).toEqual(Array.from({ length: FRAMES - 10 }, (_, i) => i + 10));
    expect((await fetch(`${stack.url}/v1/videos/${doneId}/events`, { headers: auth({ 'last-event-id': 'nope' }) })).status).toBe(400);
  });

  it('gives the same id to the same submission within the dedup window', async () => {
    const again = await upload(stack, video);
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ id: doneId, deduplicated: true });
    // JSON URL submissions too; a bad scheme is refused.
    const submitUrl = (url: string, extra: object = {}) =>
      fetch(`${stack.url}/v1/videos`, { method: 'POST', headers: auth({ 'content-type': 'application/json' }), body: JSON.stringify({ url, ...extra }) });
    const first = (await (await submitUrl('http://127.0.0.1:9/missing.mp4', { fps: 5, adapters: false })).json()) as { id: string };
    const second = (await (await submitUrl('http://127.0.0.1:9/missing.mp4', { fps: 5, adapters: false })).json()) as { id: string; deduplicated: boolean };
    expect(second).toMatchObject({ id: first.id, deduplicated: true });
    const other = (await (await submitUrl('http://127.0.0.1:9/missing.mp4', { fps: 4, adapters: false })).json()) as { id: string };
    expect(other.id).not.toBe(first.id);
    const bad = await submitUrl('file:///etc/passwd');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('E_INPUT_URL_SCHEME');
    const badOption = await submitUrl('https://example.com/a.mp4', { merge: 'average' });
    expect(badOption.status).toBe(400);
  });

  it('refuses an upload over STREAMSEG_UPLOAD_MAX_BYTES with 413 and keeps nothing of it', async () => {
    const small = await createApiServer({
      config: { ...stack.config, uploadMaxBytes: 4096 },
      redisUrl: stack.redisUrl,
      logger: createLogger('silent'),
      modelPackage: null,
    });
    try {
      const url = await small.listen(0, '127.0.0.1');
      const form = new FormData();
      form.append('file', new Blob([await readFile(longVideo)]), 'long.mp4');
      const response = await fetch(`${url}/v1/videos`, { method: 'POST', headers: auth(), body: form });
      expect(response.status).toBe(413);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('E_UPLOAD_TOO_LARGE');
      const uploads = await readdir(path.join(stack.config.outDir, 'uploads'));
      expect(uploads.filter((f) => f.startsWith('.incoming-'))).toEqual([]);
    } finally {
      await small.close();
    }
  });

  it('serves annotated.mp4 with range requests, masks.ndjson and report.json', async () => {
    const file = await readFile(path.join(stack.config.outDir, doneId, 'annotated.mp4'));
    const mp4 = `${stack.url}/v1/videos/${doneId}/annotated.mp4`;
    const whole = await fetch(mp4, { headers: auth() });
    expect(whole.status).toBe(200);
    expect(whole.headers.get('accept-ranges')).toBe('bytes');
    expect(Buffer.from(await whole.arrayBuffer()).equals(file)).toBe(true);

    const part = await fetch(mp4, { headers: auth({ range: 'bytes=100-1099' }) });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 100-1099/${file.length}`);
    expect(part.headers.get('content-type')).toBe('video/mp4');
    expect(Buffer.from(await part.arrayBuffer()).equals(file.subarray(100, 1100))).toBe(true);

    const tail = await fetch(mp4, { headers: auth({ range: 'bytes=-10' }) });
    expect(tail.status).toBe(206);
    expect(Buffer.from(await tail.arrayBuffer()).equals(file.subarray(file.length - 10))).toBe(true);
    const outside = await fetch(mp4, { headers: auth({ range: `bytes=${file.length}-` }) });
    expect(outside.status).toBe(416);
    expect(outside.headers.get('content-range')).toBe(`bytes */${file.length}`);

    const masks = await (await fetch(`${stack.url}/v1/videos/${doneId}/masks.ndjson`, { headers: auth() })).text();
    expect(masks.trim().split('\n')).toHaveLength(FRAMES);
    const report = (await (await fetch(`${stack.url}/v1/videos/${doneId}/report.json`, { headers: auth() })).json()) as {
      frames: number;
      scenes: { startFrame: number }[];
    };
    expect(report.frames).toBe(FRAMES);
    expect(report.scenes.map((s) => s.startFrame)).toEqual([0, 12]);
    expect((await fetch(`${stack.url}/v1/videos/vnosuchvideo/report.json`, { headers: auth() })).status).toBe(404);
  });

  it('cancels a running video: the producer stops, its jobs and keys are gone', async () => {
    // Frames wait in their queue: the producer fills up to its high-water mark and pauses there,
    // so the video is certainly running when the cancel arrives.
    const frames = new Queue(QueueName.Frames, { connection: stack.redis, prefix: QUEUE_PREFIX });
    await frames.pause();
    try {
      const submitted = (await (await upload(stack, longVideo)).json()) as { id: string };
      const id = submitted.id;
      await eventually(async () => {
        const view = (await (await fetch(`${stack.url}/v1/videos/${id}`, { headers: auth() })).json()) as VideoView;
        return view.status === 'decoding' && view.stages.decode.done >= 8 ? view : undefined;
      }, 'decoding to start');
      expect((await stack.redis.keys(`ss:{${id}}:*`)).length).toBeGreaterThan(0);
      expect(await frames.getJobCountByTypes('waiting')).toBeGreaterThan(0);

      const cancel = await fetch(`${stack.url}/v1/videos/${id}`, { method: 'DELETE', headers: auth() });
      expect(cancel.status).toBe(200);
      const result = (await cancel.json()) as { previousStatus: string; removedJobs: number; removedKeys: number; stillActive: string[] };
      expect(result.previousStatus).toBe('decoding');
      expect(result.stillActive).toEqual([]);
      expect(result.removedJobs).toBeGreaterThan(2);
      expect(result.removedKeys).toBeGreaterThan(0);

      expect(await stack.redis.keys(`ss:{${id}}:*`)).toEqual([]);
      const jobKeys = (await stack.redis.keys(`${QUEUE_PREFIX}:*`)).filter((k) => k.includes(id));
      expect(jobKeys).toEqual([]);
      expect(await stack.redis.exists(cancelledKey(id))).toBe(1);
      const view = (await (await fetch(`${stack.url}/v1/videos/${id}`, { headers: auth() })).json()) as VideoView;
      expect(view.status).toBe('cancelled');
      // The cancelled upload's bytes are gone too, and the same upload now starts a new video.
      const again = (await (await upload(stack, longVideo)).json()) as { id: string; deduplicated: boolean };
      expect(again.deduplicated).toBe(false);
      expect(again.id).not.toBe(id);
      expect((await fetch(`${stack.url}/v1/videos/${again.id}`, { method: 'DELETE', headers: auth() })).status).toBe(200);
      expect((await fetch(`${stack.url}/v1/videos/${id}`, { method: 'DELETE', headers: auth() })).status).toBe(404);
    } finally {
      await frames.resume();
      await frames.close();
    }
  });

  it('serves HLS of the annotated stream while the video is produced', async () => {
    const frames = new Queue(QueueName.Frames, { connection: stack.redis, prefix: QUEUE_PREFIX });
    try {
      const { id } = (await (await upload(stack, longVideo, { fps: '8' })).json()) as { id: string };
      // Hold the video mid-way once the sink has closed a few segments (8 frames each here).
      await eventually(async () => {
        const view = (await (await fetch(`${stack.url}/v1/videos/${id}`, { headers: auth() })).json()) as VideoView;
        return view.stages.sink.done >= 24 ? view : undefined;
      }, 'the sink to write 24 frames');
      await frames.pause();
      const view = (await (await fetch(`${stack.url}/v1/videos/${id}`, { headers: auth() })).json()) as VideoView;
      expect(view.status).not.toBe('done');
      expect(view.outputs.hls).toBe(`/v1/videos/${id}/hls/index.m3u8`);

      const playlist = await eventually(async () => {
        const text = await (await fetch(`${stack.url}${view.outputs.hls}`, { headers: auth() })).text();
        return (text.match(/^seg-\d{6}\.ts$/gm) ?? []).length >= 2 ? text : undefined;
      }, 'two HLS segments');
      expect(playlist.startsWith('#EXTM3U\n')).toBe(true);
      expect(playlist).toContain('#EXT-X-PLAYLIST-TYPE:EVENT');
      expect(playlist).not.toContain('#EXT-X-ENDLIST');
      expect(playlist).toContain('#EXTINF:1.000,');

      const segment = await fetch(`${stack.url}/v1/videos/${id}/hls/seg-000001.ts`, { headers: auth() });
      expect(segment.status).toBe(200);
      expect(segment.headers.get('content-type')).toBe('video/mp2t');
      const ts = Buffer.from(await segment.arrayBuffer());
      // MPEG-TS: 188-byte packets, each starting with the sync byte 0x47.
      expect(ts.length % 188).toBe(0);
      expect(ts[0]).toBe(0x47);
      expect(ts[188]).toBe(0x47);
      expect((await fetch(`${stack.url}/v1/videos/${id}/hls/seg-999999.ts`, { headers: auth() })).status).toBe(404);
      expect((await fetch(`${stack.url}/v1/videos/${id}`, { method: 'DELETE', headers: auth() })).status).toBe(200);
    } finally {
      await frames.resume();
      await frames.close();
    }
  });

  it("serves a live source's rolling HLS as the sink writes it", async () => {
    // A live video as the live sink leaves it: state flagged live, playlist and segments under live/.
    const id = 'vlivehls';
    const outDir = path.join(stack.config.outDir, id);
    const states = new VideoStateStore(stack.redis, 600);
    await states.init(id, { outDir, submittedAt: Date.now() });
    await stack.redis.hset(`ss:{${id}}:meta`, 'live', 'true', 'status', 'decoding');
    await mkdir(path.join(outDir, 'live'), { recursive: true });
    const playlist = '#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:4\n#EXTINF:1.000000,\nindex4.ts\n';
    await writeFile(path.join(outDir, 'live', 'index.m3u8'), playlist);
    await writeFile(path.join(outDir, 'live', 'index4.ts'), Buffer.alloc(188 * 3, 0x47));

    const view = (await (await fetch(`${stack.url}/v1/videos/${id}`, { headers: auth() })).json()) as VideoView;
    expect(view.live).toBe(true);
    expect(view.outputs.hls).toBe(`/v1/videos/${id}/hls/index.m3u8`);
    const list = await fetch(`${stack.url}${view.outputs.hls}`, { headers: auth() });
    expect(list.headers.get('content-type')).toBe('application/vnd.apple.mpegurl');
    expect(await list.text()).toBe(playlist);
    const segment = await fetch(`${stack.url}/v1/videos/${id}/hls/index4.ts`, { headers: auth() });
    expect(segment.headers.get('content-type')).toBe('video/mp2t');
    expect((await segment.arrayBuffer()).byteLength).toBe(188 * 3);
    expect((await fetch(`${stack.url}/v1/videos/${id}/hls/..%2Freport.json`, { headers: auth() })).status).toBe(404);
    // Stop ends a live video gracefully (the flag its producer watches); a file video has none.
    expect((await fetch(`${stack.url}/v1/videos/${id}/stop`, { method: 'POST', headers: auth() })).status).toBe(202);
    expect(await stack.redis.exists(liveKeys(id).stop)).toBe(1);
    const notLive = await fetch(`${stack.url}/v1/videos/${doneId}/stop`, { method: 'POST', headers: auth() });
    expect(notLive.status).toBe(409);
    expect(((await notLive.json()) as { error: { code: string } }).error.code).toBe('E_NOT_LIVE');
    await stack.redis.del(`ss:{${id}}:meta`, liveKeys(id).stop);
  });

  it('exposes Prometheus metrics of every process and of the queues', async () => {
    // Another process's snapshot, as MetricsPublisher writes it: it is summed in.
    await stack.redis.set(
      'ss:metrics:other-host-1',
      JSON.stringify([
        {
          name: 'streamseg_frames_total',
          help: 'Frames handled, by pipeline stage',
          type: 'counter',
          aggregator: 'sum',
          values: [{ value: 1000, labels: { stage: 'decode' } }],
        },
      ]),
      'EX',
      60,
    );
    const response = await fetch(`${stack.url}/metrics`, { headers: auth() });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const text = await response.text();
    const value = (series: string): number => {
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      if (!line) throw new Error(`no series ${series} in /metrics`);
      return Number(line.slice(series.length + 1));
    };
    expect(value('streamseg_frames_total{stage="decode"}')).toBeGreaterThanOrEqual(1000 + FRAMES);
    expect(value('streamseg_frames_total{stage="segment"}')).toBeGreaterThanOrEqual(FRAMES);
    expect(value('streamseg_frames_total{stage="sink"}')).toBeGreaterThanOrEqual(FRAMES);
    expect(value('streamseg_inference_seconds_count')).toBeGreaterThan(0);
    expect(value('streamseg_video_end_to_end_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(value('streamseg_queue_jobs{queue="videos",state="completed"}')).toBeGreaterThanOrEqual(1);
    expect(value('streamseg_queue_workers{queue="frames"}')).toBeGreaterThanOrEqual(1);
    expect(value('streamseg_frames_dropped_total{reason="cancelled"}')).toBeGreaterThan(0);
    expect(value('streamseg_adapter_cache_hit_ratio')).toBeGreaterThanOrEqual(0);
    expect(text).toContain('streamseg_frames_per_second');
    // Failures by reason: the unreachable URLs submitted above fail in the producer.
    const failures = await eventually(async () => {
      const body = await (await fetch(`${stack.url}/metrics`, { headers: auth() })).text();
      return body.split('\n').find((l) => l.startsWith('streamseg_job_failures_total{queue="videos",code="'));
    }, 'a decode failure in /metrics');
    expect(Number(failures.split(' ').pop())).toBeGreaterThan(0);
    expect(text).toContain('streamseg_stage_seconds_bucket');
  });

  it('serves its OpenAPI document, the queues, the adapters and the web page', async () => {
    const doc = (await (await fetch(`${stack.url}/v1/openapi.json`, { headers: auth() })).json()) as { openapi: string; paths: Record<string, object> };
    expect(doc.openapi).toMatch(/^3\./);
    for (const p of ['/v1/videos', '/v1/videos/{id}', '/v1/videos/{id}/events', '/v1/videos/{id}/annotated.mp4', '/v1/adapters', '/metrics', '/healthz']) {
      expect(Object.keys(doc.paths), p).toContain(p);
    }
    const queues = (await (await fetch(`${stack.url}/v1/queues`, { headers: auth() })).json()) as { queues: { name: string; workers: unknown[] }[] };
    expect(queues.queues.map((q) => q.name).sort()).toEqual(['frames', 'sink', 'videos']);
    expect(queues.queues.every((q) => q.workers.length >= 1)).toBe(true);
    const adapters = await fetch(`${stack.url}/v1/adapters`, { headers: auth() });
    expect(adapters.status).toBe(200);
    expect((await fetch(`${stack.url}/v1/adapters/none`, { method: 'DELETE', headers: auth() })).status).toBe(404);
    const page = await fetch(`${stack.url}/web/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<script type="module" src="/web/app.js">');
    expect((await fetch(`${stack.url}/web/vendor/hls.min.js`)).status).toBe(200);
  });
});

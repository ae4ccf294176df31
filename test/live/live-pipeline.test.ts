import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PipelineClient } from '../../src/shared/pipeline-client.js';
import { startProducer, type ProducerHandle } from '../../src/producers/producer.worker.js';
import { loadConfig, type StreamsegConfig } from '../../src/shared/config.js';
import { findFreePort as freePort } from '../../src/shared/free-port.js';
import { LiveFrameLog } from '../../src/shared/live-frame-log.js';
import { createLogger } from '../../src/shared/logger.js';
import { framesDropped, liveLatencySeconds, liveReconnects } from '../../src/shared/metrics.js';
import { loadModelPackage, type ModelPackage } from '../../src/shared/model-manifest.js';
import { videoKeys } from '../../src/shared/redis-keys.js';
import type { LiveOptions } from '../../src/shared/job-schemas.js';
import type { VideoState } from '../../src/shared/video-state.js';
import { startSegmentationWorker, type SegmentationWorkerHandle } from '../../src/workers/segmentation/segmentation.worker.js';
import type { LiveFrameRecord } from '../../src/workers/sink/live-assembly.js';
import { startSink, type SinkHandle } from '../../src/workers/sink/sink.worker.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { startRedisServer, type TestRedisServer } from '../helpers/redis-server.js';
import { startRtspPublisher, startRtspServer, startUdpSender, until, type TestSender } from './live-sources.js';

const logger = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');
const LIST_SIZE = 2;

interface LiveReport {
  frames: number;
  live: {
    frameIndices: number;
    emittedFrames: number;
    droppedFrames: number;
    lostFrames: number;
    latencyMs: { p50: number | null; p95: number | null; samples: number };
  };
}

/**
 * Live sources on the loopback: real ffmpeg senders at real-time rate, the producer, one
 * segmentation worker (the 64x64 test model) and the sink in this process on a real Redis.
 * Nothing asserts on wall-clock time; timeouts only guard against hangs.
 */
describe('live streams', () => {
  let server: TestRedisServer;
  let redis: Redis;
  let dir: string;
  let config: StreamsegConfig;
  let pkg: ModelPackage;
  let producer: ProducerHandle;
  let worker: SegmentationWorkerHandle;
  let sink: SinkHandle;
  let client: PipelineClient;
  let liveLog: LiveFrameLog;
  const senders: TestSender[] = [];

  beforeAll(async () => {
    server = await startRedisServer();
    redis = new Redis(server.url);
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-live-'));
    pkg = await loadModelPackage(path.join(REPO_ROOT, 'test/fixtures/test-model'));
    config = loadConfig(
      {
        outDir: dir,
        intraOpThreads: 1,
        liveHlsListSize: LIST_SIZE,
        liveReconnectMinMs: 100,
        liveReconnectMaxMs: 500,
        // Stopped explicitly by each test: never ended for being idle.
        liveEndAfterSeconds: 0,
        metricsPublishMs: 0,
      },
      {},
    );
    const modelInput = { width: pkg.manifest.input.width, height: pkg.manifest.input.height };
    // Several live videos at once (one test's video ends while the next starts).
    producer = await startProducer({ config, redisUrl: server.url, logger, modelInput, concurrency: 4 });
    worker = await startSegmentationWorker({ config, redisUrl: server.url, logger, modelPackage: pkg });
    sink = await startSink({ config, redisUrl: server.url, logger, modelPackage: pkg, concurrency: 4 });
    client = await PipelineClient.connect(config, server.url);
    liveLog = new LiveFrameLog(redis, config.frameTtlSeconds);
  });

  afterAll(async () => {
    await Promise.allSettled(senders.map((s) => s.kill()));
    await Promise.allSettled([producer?.close(), worker?.close(), sink?.close(), client?.close()]);
    redis?.disconnect();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function submit(url: string, name: string, live?: LiveOptions): Promise<{ videoId: string; outDir: string }> {
    const outDir = path.join(dir, name);
    const videoId = await client.submitter.submit(url, { outDir, live });
    return { videoId, outDir };
  }

  async function records(videoId: string): Promise<LiveFrameRecord[]> {
    const entries = await redis.xrange(videoKeys(videoId).stream, '-', '+');
    return entries.map(([, fields]) => JSON.parse(fields[fields.indexOf('record') + 1]!) as LiveFrameRecord);
  }

  async function streamLength(videoId: string): Promise<number> {
    return redis.xlen(videoKeys(videoId).stream);
  }

  async function state(videoId: string): Promise<VideoState> {
    const s = await client.states.get(videoId);
    if (!s) throw new Error(`no state for ${videoId}`);
    return s;
  }

  /** `streamseg stop`: graceful end; resolves with the report once the sink has finished. */
  async function stopAndReport(videoId: string, outDir: string): Promise<LiveReport> {
    await liveLog.requestStop(videoId);
    const final = await until(`video ${videoId} done`, async () => {
      const s = await state(videoId);
      return s.status === 'done' || s.status === 'failed' ? s : undefined;
    });
    expect(final.error).toBeUndefined();
    expect(final.status).toBe('done');
    return JSON.parse(await readFile(path.join(outDir, 'report.json'), 'utf8')) as LiveReport;
  }

  function mediaSequence(playlist: string): number {
    return Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(playlist)?.[1] ?? -1);
  }

  it('RTSP (producer listening, publisher on TCP): frames flow with capture/output times, the HLS playlist rolls, stop finishes the outputs', async () => {
    const port = await freePort();
    const url = `rtsp://127.0.0.1:${port}/cam`;
    const { videoId, outDir } = await submit(url, 'rtsp-tcp', { listen: true });
    const sender = startRtspPublisher(url, { transport: 'tcp' });
    senders.push(sender);

    await until('20 frame records', async () => (await streamLength(videoId)) >= 20);
    const playlistFile = path.join(outDir, 'live', 'index.m3u8');
    // Segments roll: the media sequence moves on and old segments are deleted.
    const seq0 = await until('a playlist', async () => {
      const seq = mediaSequence(await readFile(playlistFile, 'utf8').catch(() => ''));
      return seq >= 0 ? seq : undefined;
    });
    const seq1 = await until('the playlist to roll twice', async () => {
      const seq = mediaSequence(await readFile(playlistFile, 'utf8'));
      return seq >= seq0 + 2 ? seq : undefined;
    });
    expect(seq1).toBeGreaterThanOrEqual(seq0 + 2);
    const segments = (await readdir(path.join(outDir, 'live'))).filter((f) => f.endsWith('.ts'));
    expect(segments.length).toBeLessThanOrEqual(LIST_SIZE + 2);
    expect((await state(videoId)).status).toBe('decoding');

    await sender.kill();
    const report = await stopAndReport(videoId, outDir);
    const recs = await records(videoId);
    expect(recs.length).toBe(report.live.emittedFrames);
    expect(recs.map((r) => r.index)).toEqual([...recs.map((r) => r.index)].sort((a, b) => a - b));
    for (const r of recs) {
      expect(r.captureTimeMs).toBeTypeOf('number');
      expect(r.outputTimeMs).toBeGreaterThanOrEqual(r.captureTimeMs!);
      expect(r.latencyMs).toBe(r.outputTimeMs - r.captureTimeMs!);
      expect(r.droppedBefore).toBeGreaterThanOrEqual(0);
    }
    // Every index is accounted for: emitted, or dropped before an emitted one / at the end.
    const dropped = recs.reduce((sum, r) => sum + r.droppedBefore, 0);
    expect(report.live.emittedFrames + report.live.droppedFrames).toBe(report.live.frameIndices);
    expect(dropped).toBeLessThanOrEqual(report.live.droppedFrames);
    expect(report.live.latencyMs.samples).toBe(recs.length);
    const playlist = await readFile(playlistFile, 'utf8');
    expect(playlist).toContain('#EXT-X-ENDLIST');
    expect(playlist).toMatch(/#EXT-X-TARGETDURATION:1\b/);
    const masks = (await readFile(path.join(outDir, 'masks.ndjson'), 'utf8')).trim().split('\n');
    expect(masks.length).toBe(recs.length);
    const latency = await liveLatencySeconds.get();
    const count = latency.values.find((v) => (v as { metricName?: string }).metricName === 'streamseg_live_latency_seconds_count')?.value ?? 0;
    expect(count).toBeGreaterThanOrEqual(recs.length);
  });

  it('RTSP publisher on UDP transport, and the annotated stream re-streamed to a UDP receiver', async () => {
    const port = await freePort();
    const url = `rtsp://127.0.0.1:${port}/cam`;
    const restreamPort = await freePort();
    // The receiver: ffmpeg decoding 5 frames of what the sink re-streams, then exiting 0.
    const receiver = spawn(
      'ffmpeg',
      ['-hide_banner', '-loglevel', 'error', '-i', `udp://127.0.0.1:${restreamPort}?timeout=30000000`, '-frames:v', '5', '-f', 'null', '-'],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    const received = new Promise<number | null>((resolve) => receiver.once('exit', resolve));
    const { videoId, outDir } = await submit(url, 'rtsp-udp', { listen: true, restreamUrl: `udp://127.0.0.1:${restreamPort}?pkt_size=1316` });
    const sender = startRtspPublisher(url, { transport: 'udp' });
    senders.push(sender);
    await until('15 frame records', async () => (await streamLength(videoId)) >= 15);
    expect(await received).toBe(0);
    await sender.kill();
    const report = await stopAndReport(videoId, outDir);
    expect(report.live.emittedFrames).toBeGreaterThanOrEqual(15);
  });

  it('RTSP client: the producer pulls from a real RTSP server, reconnects when the server goes away and comes back', async () => {
    const port = await freePort();
    const reconnectsBefore = (await liveReconnects.get()).values[0]?.value ?? 0;
    let server = await startRtspServer(port);
    senders.push(server);
    // No `listen`: the producer is the RTSP client (DESCRIBE, SETUP, PLAY against the server).
    const { videoId, outDir } = await submit(`rtsp://127.0.0.1:${port}/cam`, 'rtsp-client');
    await until('10 frame records', async () => (await streamLength(videoId)) >= 10);
    await server.kill();
    await until('a reconnect', async () => ((await liveReconnects.get()).values[0]?.value ?? 0) > reconnectsBefore, 90_000);
    const atRestart = await streamLength(videoId);
    expect((await state(videoId)).status).toBe('decoding');
    server = await startRtspServer(port);
    senders.push(server);
    await until('frames after the server came back', async () => (await streamLength(videoId)) >= atRestart + 10, 90_000);
    await server.kill();
    const report = await stopAndReport(videoId, outDir);
    const recs = await records(videoId);
    expect(report.live.emittedFrames).toBe(recs.length);
    expect(recs.length).toBeGreaterThanOrEqual(atRestart + 10);
    expect(recs.map((r) => r.index)).toEqual([...recs.map((r) => r.index)].sort((a, b) => a - b));
    const masks = (await readFile(path.join(outDir, 'masks.ndjson'), 'utf8')).trim().split('\n');
    expect(masks.length).toBe(recs.length);
  });

  it('UDP MPEG-TS: the job survives the sender being killed and restarted (reconnect), frames resume', async () => {
    const port = await freePort();
    const url = `udp://127.0.0.1:${port}`;
    const reconnectsBefore = (await liveReconnects.get()).values[0]?.value ?? 0;
    const { videoId, outDir } = await submit(url, 'udp');
    let sender = startUdpSender(url);
    senders.push(sender);
    await until('10 frame records', async () => (await streamLength(videoId)) >= 10);
    await sender.kill();
    // The source is gone: ffmpeg's read times out, the producer reopens it (backoff), the video stays open.
    await until('a reconnect', async () => ((await liveReconnects.get()).values[0]?.value ?? 0) > reconnectsBefore, 90_000);
    const atRestart = await streamLength(videoId);
    expect((await state(videoId)).status).toBe('decoding');
    sender = startUdpSender(url);
    senders.push(sender);
    await until('frames after the restart', async () => (await streamLength(videoId)) >= atRestart + 10, 90_000);
    expect((await state(videoId)).status).toBe('decoding');
    await sender.kill();
    const report = await stopAndReport(videoId, outDir);
    expect(report.live.emittedFrames).toBeGreaterThanOrEqual(atRestart + 10);
  });

  it('HLS input: a live playlist served over loopback HTTP is read from its live edge, frames flow', async () => {
    const hlsDir = path.join(dir, 'hls-source');
    await mkdir(hlsDir, { recursive: true });
    // A live HLS source: ffmpeg writes a rolling playlist at real-time rate; a tiny HTTP server serves it.
    // prettier-ignore
    const writer = spawn('ffmpeg', [
      '-hide_banner', '-loglevel', 'error', '-nostdin', '-re', '-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=10',
      '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '10', '-pix_fmt', 'yuv420p',
      '-f', 'hls', '-hls_time', '1', '-hls_list_size', '4', '-hls_flags', 'delete_segments', path.join(hlsDir, 'cam.m3u8'),
    ], { stdio: 'ignore' });
    senders.push({ kill: async () => void writer.kill('SIGKILL') });
    const http = createServer((req, res) => {
      const name = path.basename(req.url ?? '');
      readFile(path.join(hlsDir, name)).then(
        (body) => res.writeHead(200, { 'content-type': name.endsWith('.m3u8') ? 'application/vnd.apple.mpegurl' : 'video/mp2t' }).end(body),
        () => res.writeHead(404).end(),
      );
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = http.address() as AddressInfo;
      await until('the source playlist', async () => (await readFile(path.join(hlsDir, 'cam.m3u8'), 'utf8').catch(() => '')).includes('.ts'));
      const { videoId, outDir } = await submit(`http://127.0.0.1:${port}/cam.m3u8`, 'hls-input');
      await until('10 frame records', async () => (await streamLength(videoId)) >= 10);
      expect((await state(videoId)).live).toBe(true);
      writer.kill('SIGKILL');
      const report = await stopAndReport(videoId, outDir);
      expect(report.live.emittedFrames).toBeGreaterThanOrEqual(10);
    } finally {
      writer.kill('SIGKILL');
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    }
  });

  it('HLS input with an ENDLIST (a finished playlist): the video ends by itself when the playlist does', async () => {
    const hlsDir = path.join(dir, 'hls-vod');
    await mkdir(hlsDir, { recursive: true });
    await new Promise<void>((resolve, reject) => {
      // prettier-ignore
      const writer = spawn('ffmpeg', [
        '-hide_banner', '-loglevel', 'error', '-nostdin', '-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=10', '-t', '3',
        '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '10', '-pix_fmt', 'yuv420p',
        '-f', 'hls', '-hls_time', '1', '-hls_playlist_type', 'vod', path.join(hlsDir, 'vod.m3u8'),
      ], { stdio: 'ignore' });
      writer.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exited ${code}`))));
    });
    const http = createServer((req, res) => {
      readFile(path.join(hlsDir, path.basename(req.url ?? ''))).then(
        (body) => res.writeHead(200).end(body),
        () => res.writeHead(404).end(),
      );
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = http.address() as AddressInfo;
      const { videoId, outDir } = await submit(`http://127.0.0.1:${port}/vod.m3u8`, 'hls-vod');
      const final = await until('the video to end with its playlist', async () => {
        const s = await state(videoId);
        return s.status === 'done' || s.status === 'failed' ? s : undefined;
      });
      expect(final.status).toBe('done');
      const report = JSON.parse(await readFile(path.join(outDir, 'report.json'), 'utf8')) as LiveReport;
      expect(report.live.frameIndices).toBe(30);
      expect(report.live.emittedFrames + report.live.droppedFrames).toBe(30);
    } finally {
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
    }
  });

  it('stopping a live video whose source never delivered video fails it with E_LIVE_NO_VIDEO (no retry, nothing written)', async () => {
    const port = await freePort();
    const { videoId } = await submit(`rtsp://127.0.0.1:${port}/nobody`, 'never', { listen: true });
    await until('the decode job to start', async () => (await client.queues.videos.getJob(videoId))?.processedOn !== undefined);
    await liveLog.requestStop(videoId);
    const final = await until('the video to fail', async () => {
      const s = await state(videoId);
      return s.status === 'failed' ? s : undefined;
    });
    expect(final.error).toMatch(/^E_LIVE_NO_VIDEO: /);
    const job = await until('the decode job to fail for good', async () => {
      const j = await client.queues.videos.getJob(videoId);
      return j && (await j.isFailed()) ? j : undefined;
    });
    expect(job.attemptsMade).toBe(1);
    expect(job.failedReason).toMatch(/E_LIVE_NO_VIDEO/);
  });

  it('a stalled worker makes the producer drop frames (drop-oldest), counted in metrics, the video state and the records; the sink never waits for them', async () => {
    const droppedBefore = await droppedTotal('drop-oldest');
    const port = await freePort();
    const url = `rtsp://127.0.0.1:${port}/cam`;
    const { videoId, outDir } = await submit(url, 'drops', { listen: true });
    const sender = startRtspPublisher(url, { transport: 'tcp' });
    senders.push(sender);
    await until('5 frame records', async () => (await streamLength(videoId)) >= 5);
    // The worker falls behind on purpose: it takes no job while the camera keeps sending.
    await worker.worker.pause();
    await until('drops in the video state', async () => ((await state(videoId)).droppedFrames ?? 0) >= 10);
    // The frames queue stays bounded by STREAMSEG_LIVE_MAX_IN_FLIGHT instead of growing.
    expect(await client.queues.frames.getWaitingCount()).toBeLessThanOrEqual(config.liveMaxInFlight);
    worker.worker.resume();
    const atResume = await streamLength(videoId);
    await until('frames after the worker resumed', async () => (await streamLength(videoId)) >= atResume + 10);
    await sender.kill();
    const report = await stopAndReport(videoId, outDir);
    const recs = await records(videoId);
    const gaps = recs.filter((r) => r.droppedBefore > 0);
    expect(gaps.length).toBeGreaterThan(0);
    expect(recs.reduce((sum, r) => sum + r.droppedBefore, 0)).toBeGreaterThanOrEqual(10);
    expect(report.live.droppedFrames).toBeGreaterThanOrEqual(10);
    expect(report.live.emittedFrames + report.live.droppedFrames).toBe(report.live.frameIndices);
    expect((await droppedTotal('drop-oldest')) - droppedBefore).toBe(report.live.droppedFrames - report.live.lostFrames);
  });

  it('a producer handing the live video over (SIGTERM) to another (keep-latest policy): indices continue, the video stays open, drops are counted', async () => {
    const port = await freePort();
    const url = `udp://127.0.0.1:${port}`;
    const { videoId, outDir } = await submit(url, 'handover');
    const sender = startUdpSender(url);
    senders.push(sender);
    await until('10 frame records', async () => (await streamLength(videoId)) >= 10);
    await producer.close();
    const atHandover = await streamLength(videoId);
    const keepLatestBefore = await droppedTotal('keep-latest');
    const modelInput = { width: pkg.manifest.input.width, height: pkg.manifest.input.height };
    producer = await startProducer({ config: { ...config, liveDropPolicy: 'keep-latest' }, redisUrl: server.url, logger, modelInput, concurrency: 4 });
    await until('frames from the second producer', async () => (await streamLength(videoId)) >= atHandover + 10);
    expect((await state(videoId)).status).toBe('decoding');
    await worker.worker.pause();
    await until('keep-latest drops', async () => (await droppedTotal('keep-latest')) - keepLatestBefore >= 5);
    worker.worker.resume();
    const atResume = await streamLength(videoId);
    await until('frames after the worker resumed', async () => (await streamLength(videoId)) >= atResume + 5);
    await sender.kill();
    const report = await stopAndReport(videoId, outDir);
    const indices = (await records(videoId)).map((r) => r.index);
    expect(new Set(indices).size).toBe(indices.length);
    expect(indices).toEqual([...indices].sort((a, b) => a - b));
    expect(report.live.emittedFrames + report.live.droppedFrames).toBe(report.live.frameIndices);
    expect(report.live.droppedFrames).toBeGreaterThanOrEqual(5);
  });
});

async function droppedTotal(reason: string): Promise<number> {
  return (await framesDropped.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

/**
 * Live end-to-end latency next to the model's inference time (issue 8), in one run:
 *   (a) capture → output latency of every frame record (the producer's wall clock when it read
 *       the frame from the source, the sink's when it emitted it to the live outputs and the
 *       Redis Stream), p50 / p95 / max;
 *   (b) the inference time of the same frames (the worker's ONNX Runtime run, one frame per job
 *       in live mode), p50;
 *   (c) p95 / inference, and the target: p95 ≤ 3 × inference + 200 ms.
 *
 *   npm run bench:live -- [--size 320x240] [--fps 10] [--seconds 20] [--warmup 3] [--transport tcp|udp]
 *
 * The source is real: ffmpeg publishes testsrc2 at real-time rate (-re) over RTSP on the
 * loopback to the producer, which listens (as `streamseg run rtsp://… --listen`); producer,
 * segmentation worker and sink run in this process on a private redis-server, with the model
 * of STREAMSEG_MODEL (default models/default) and the live settings of the environment
 * (STREAMSEG_LIVE_DROP_POLICY, STREAMSEG_LIVE_MAX_IN_FLIGHT, ...). Records captured in the
 * first `--warmup` seconds (model and adapter warm-up) are left out of the figures.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { startEmbeddedRedis } from '../src/cli/embedded-redis.js';
import { PipelineClient } from '../src/shared/pipeline-client.js';
import { startRoles } from '../src/cli/roles.js';
import { waitForVideo } from '../src/cli/video-waiter.js';
import { loadConfig } from '../src/shared/config.js';
import { findFreePort } from '../src/shared/free-port.js';
import { LiveFrameLog } from '../src/shared/live-frame-log.js';
import { createLogger } from '../src/shared/logger.js';
import { videoKeys } from '../src/shared/redis-keys.js';
import type { LiveFrameRecord } from '../src/workers/sink/live-assembly.js';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '320x240' },
    fps: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '3' },
    transport: { type: 'string', default: 'tcp' },
  },
});
const fps = Number(values.fps);
const seconds = Number(values.seconds);
const warmupMs = Number(values.warmup) * 1000;
const transport = values.transport === 'udp' ? 'udp' : 'tcp';

const tmp = await mkdtemp(path.join(os.tmpdir(), 'streamseg-live-bench-'));
const config = loadConfig({ logLevel: process.env.LOG_LEVEL ?? 'warn', outDir: tmp, liveEndAfterSeconds: 0, metricsPublishMs: 0 });
const logger = createLogger(config.logLevel);
const redisServer = await startEmbeddedRedis({ appendOnly: false });
const roles = await startRoles(['producer', 'worker', 'sink'], { config, redisUrl: redisServer.url, logger });
const client = await PipelineClient.connect(config, redisServer.url);
const redis = new Redis(redisServer.url);
let sender: ChildProcess | undefined;
let stopped = false;

try {
  const port = await findFreePort();
  const url = `rtsp://127.0.0.1:${port}/bench`;
  const videoId = await client.submitter.submit(url, { outDir: path.join(tmp, 'out'), live: { listen: true } });
  // The publisher retries until the producer's listener is up, then streams for `seconds`.
  const publish = () => {
    if (stopped) return;
    // prettier-ignore
    sender = spawn('ffmpeg', [
      '-hide_banner', '-loglevel', 'error', '-nostdin',
      '-re', '-f', 'lavfi', '-i', `testsrc2=size=${values.size}:rate=${fps}`, '-t', String(seconds),
      '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', String(fps), '-pix_fmt', 'yuv420p',
      '-rtsp_transport', transport, '-f', 'rtsp', url,
    ], { stdio: 'ignore' });
    const started = Date.now();
    sender.once('exit', (code) => {
      if (code !== 0 && Date.now() - started < 2000) setTimeout(publish, 300);
      else stopped = true;
    });
  };
  publish();
  while (!stopped) await new Promise((resolve) => setTimeout(resolve, 200));
  // Let the last frames through, then stop the live video (graceful: outputs finished).
  await new Promise((resolve) => setTimeout(resolve, 1500));
  await new LiveFrameLog(redis, config.frameTtlSeconds).requestStop(videoId);
  const final = await waitForVideo(videoId, client.states, client.queues);

  const entries = await redis.xrange(videoKeys(videoId).stream, '-', '+');
  const records = entries.map(([, fields]) => JSON.parse(fields[fields.indexOf('record') + 1]!) as LiveFrameRecord);
  const firstCapture = Math.min(...records.map((r) => r.captureTimeMs ?? Infinity));
  const steady = records.filter((r) => r.captureTimeMs !== null && r.captureTimeMs - firstCapture >= warmupMs);
  const latency = steady.map((r) => r.latencyMs!).sort((a, b) => a - b);
  const inference = steady.map((r) => r.inferenceMs).sort((a, b) => a - b);
  const pct = (xs: number[], q: number) => xs[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? NaN;
  const p50 = pct(latency, 0.5);
  const p95 = pct(latency, 0.95);
  const inferP50 = pct(inference, 0.5);
  const budget = 3 * inferP50 + 200;
  const totalIndices = final.totalFrames ?? 0;
  const dropped = final.droppedFrames ?? 0;
  const f1 = (x: number) => x.toFixed(1);
  console.log(
    `live latency bench: model ${config.modelDir}, testsrc2 ${values.size} @ ${fps} fps, RTSP (${transport}) on loopback for ${seconds} s, policy ${config.liveDropPolicy}, max in flight ${config.liveMaxInFlight}, ${os.cpus().length} cores`,
  );
  console.log(
    `frames: captured ${totalIndices}, emitted ${records.length}, dropped ${dropped} (${f1((100 * dropped) / Math.max(1, totalIndices))}%); measured after ${warmupMs / 1000} s warm-up: ${steady.length} emitted, ${steady.reduce((n, r) => n + r.droppedBefore, 0)} dropped before them`,
  );
  console.log(`end-to-end latency (capture -> output), ms: p50 ${f1(p50)}  p95 ${f1(p95)}  max ${f1(latency.at(-1) ?? NaN)}`);
  console.log(`inference per frame (same run), ms: p50 ${f1(inferP50)}  p95 ${f1(pct(inference, 0.95))}`);
  // Where the time goes: the frames jobs are kept after completion (removeOnComplete), with
  // their added / processed / finished times (Redis clock = this machine's).
  const phases = { produce: [] as number[], queue: [] as number[], worker: [] as number[], sink: [] as number[] };
  for (const r of steady) {
    const job = await client.queues.frames.getJob(`${videoId}-${r.index}`);
    if (!job?.processedOn || !job.finishedOn) continue;
    phases.produce.push(job.timestamp - r.captureTimeMs!);
    phases.queue.push(job.processedOn - job.timestamp);
    phases.worker.push(job.finishedOn - job.processedOn);
    phases.sink.push(r.outputTimeMs - job.finishedOn);
  }
  const phaseLine = Object.entries(phases)
    .map(([name, xs]) => {
      xs.sort((a, b) => a - b);
      return `${name} ${f1(pct(xs, 0.5))}/${f1(pct(xs, 0.95))}`;
    })
    .join('  ');
  console.log(`phases p50/p95, ms (capture -> job added -> worker starts -> worker done -> sink emits): ${phaseLine}`);
  console.log(`ratio p95 latency / p50 inference: ${(p95 / inferP50).toFixed(2)}`);
  console.log(`target p95 <= 3 x inference + 200 ms = ${f1(budget)} ms: ${p95 <= budget ? 'met' : 'NOT met'}`);
  process.exitCode = p95 <= budget ? 0 : 1;
} finally {
  stopped = true;
  sender?.kill('SIGKILL');
  await client.close();
  redis.disconnect();
  await roles.close();
  await redisServer.stop();
  await rm(tmp, { recursive: true, force: true });
}

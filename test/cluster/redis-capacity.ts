/**
 * The figures of docs/SCALING.md, measured (not a test: run it by hand).
 *
 *   npx tsx test/cluster/redis-capacity.ts pipeline [frames]   # bytes and ops per frame of `streamseg run`
 *   npx tsx test/cluster/redis-capacity.ts shard [seconds]     # frames/s one redis-server sustains
 *   npx tsx test/cluster/redis-capacity.ts memory [frames]     # bytes resident in Redis per frame
 *
 * `pipeline`: for 360p, 720p and 1080p, a synthetic 25 fps clip goes through `streamseg run`
 * (STREAMSEG_MODEL or models/default) against a fresh redis-server; its INFO after the run gives
 * bytes received (total_net_input_bytes), commands (commandstats) and used_memory_peak, per frame.
 *
 * `memory`: for each size, `frames` frames stored as the pipeline stores them (source, model input
 * 224x128, mask, result record) through FrameStore; used_memory after minus before, per frame.
 *
 * `shard`: a load generator of streamseg's own per-frame commands, through the real stores
 * (FrameStore, VideoStateStore, FrameStreamRepository): 720p frames, model input 224x128 (the
 * shipped model's plan for 16:9), batches of 8, as many concurrent videos as `--videos`. It reports
 * frames/s and, since client and server share this machine's cores, redis-server's own CPU time per
 * frame (INFO cpu), which is what bounds one shard: frames/s per server core = 1 / that.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { startEmbeddedRedis } from '../../src/cli/embedded-redis.js';
import { FrameStore, type FrameResult } from '../../src/shared/frame-store.js';
import { videoKeys } from '../../src/shared/redis-keys.js';
import { VideoStateStore } from '../../src/shared/video-state.js';
import { FrameStreamRepository } from '../../src/workers/sink/frame-stream.repository.js';

const run = promisify(execFile);
const REPO = path.resolve(import.meta.dirname, '../..');
const SIZES = [
  { name: '360p', width: 640, height: 360 },
  { name: '720p', width: 1280, height: 720 },
  { name: '1080p', width: 1920, height: 1080 },
];

async function info(redis: Redis, section: string): Promise<Map<string, string>> {
  const text = String(await redis.info(section));
  const fields = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return fields;
}

/** commandstats as command → calls. */
async function commandCalls(redis: Redis): Promise<Map<string, number>> {
  const calls = new Map<string, number>();
  for (const [key, value] of await info(redis, 'commandstats')) calls.set(key.replace(/^cmdstat_/, ''), Number(/calls=(\d+)/.exec(value)?.[1] ?? 0));
  return calls;
}

async function pipeline(frames: number): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ss-capacity-'));
  try {
    for (const size of SIZES) {
      const clip = path.join(dir, `${size.name}.mp4`);
      // prettier-ignore
      await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=size=${size.width}x${size.height}:rate=25:duration=${frames / 25}`, '-c:v', 'libx264', '-pix_fmt', 'yuv420p', clip]);
      const server = await startEmbeddedRedis();
      const redis = new Redis(server.url);
      try {
        await redis.config('RESETSTAT');
        const started = Date.now();
        await new Promise<void>((resolve, reject) => {
          const child = spawn(process.execPath, [path.join(REPO, 'bin/streamseg.js'), 'run', clip, '--out', path.join(dir, size.name)], {
            env: { ...process.env, REDIS_URL: server.url, STREAMSEG_METRICS_PUBLISH_MS: '0' },
            stdio: ['ignore', 'ignore', 'inherit'],
          });
          child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`streamseg run exited ${code}`))));
        });
        const seconds = (Date.now() - started) / 1000;
        const stats = await info(redis, 'stats');
        const memory = await info(redis, 'memory');
        const calls = await commandCalls(redis);
        const total = [...calls.entries()].filter(([name]) => !['info', 'config|resetstat', 'config'].includes(name)).reduce((sum, [, n]) => sum + n, 0);
        const top = [...calls.entries()]
          .sort((a, b) => b[1] - a[1])
          .slice(0, 8)
          .map(([name, n]) => `${name} ${(n / frames).toFixed(2)}`)
          .join(', ');
        const inBytes = Number(stats.get('total_net_input_bytes'));
        const outBytes = Number(stats.get('total_net_output_bytes'));
        console.log(
          `${size.name} ${size.width}x${size.height}, ${frames} frames in ${seconds.toFixed(1)} s: ` +
            `to Redis ${(inBytes / frames / 1000).toFixed(1)} kB/frame, from Redis ${(outBytes / frames / 1000).toFixed(1)} kB/frame, ` +
            `raw RGB source ${((size.width * size.height * 3) / 1000).toFixed(1)} kB; ` +
            `used_memory_peak ${(Number(memory.get('used_memory_peak')) / 2 ** 20).toFixed(1)} MiB; ` +
            `commands ${(total / frames).toFixed(1)}/frame (${top})`,
        );
      } finally {
        redis.disconnect();
        await server.stop();
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function memory(frames: number): Promise<void> {
  const server = await startEmbeddedRedis();
  const redis = new Redis(server.url);
  try {
    const store = new FrameStore(redis, 600);
    for (const size of SIZES) {
      const before = Number((await info(redis, 'memory')).get('used_memory'));
      const source = Buffer.alloc(size.width * size.height * 3, 7);
      const input = Buffer.alloc(224 * 128 * 3, 9);
      const mask = Buffer.alloc(224 * 128, 1);
      for (let index = 0; index < frames; index++) {
        await store.putFrame(size.name, index, source, input);
        const record: FrameResult = { index, timestampMs: index * 40, scene: 0, adapters: [], cacheHit: null, inferenceMs: 10, workerId: 'load' };
        await store.putResults(size.name, [{ mask, record }]);
      }
      const after = Number((await info(redis, 'memory')).get('used_memory'));
      console.log(
        `${size.name} ${size.width}x${size.height}: ${((after - before) / frames / 1000).toFixed(1)} kB resident in Redis per frame ` +
          `(source ${((size.width * size.height * 3) / 1000).toFixed(1)} kB + input ${(input.length / 1000).toFixed(1)} kB + mask ${(mask.length / 1000).toFixed(1)} kB + record)`,
      );
      await store.deleteVideo(size.name);
    }
  } finally {
    redis.disconnect();
    await server.stop();
  }
}

/** One video's frames through the stores, as producer, worker and sink would call them. */
async function oneVideo(redis: Redis, videoId: string, until: number, frameCount: { n: number }): Promise<void> {
  const frames = new FrameStore(redis, 600);
  const states = new VideoStateStore(redis, 600);
  const stream = new FrameStreamRepository(redis, 100_000, 600);
  await states.init(videoId, { outDir: '/tmp/x', submittedAt: Date.now() });
  const source = Buffer.alloc(1280 * 720 * 3, 7);
  const input = Buffer.alloc(224 * 128 * 3, 9);
  const mask = Buffer.alloc(224 * 128, 1);
  for (let first = 0; Date.now() < until; first += 8) {
    const batch = Array.from({ length: 8 }, (_, i) => first + i);
    // producer
    for (const index of batch) await frames.putFrame(videoId, index, source, input);
    await states.setDecodedFrames(videoId, first + 8);
    // worker
    await frames.getInputs(videoId, batch);
    const record = (index: number): FrameResult => ({
      index,
      timestampMs: index * 40,
      scene: 0,
      adapters: [],
      cacheHit: null,
      inferenceMs: 10,
      workerId: 'load',
    });
    await frames.putResults(
      videoId,
      batch.map((index) => ({ mask, record: record(index) })),
    );
    await states.addSegmentedFrames(videoId, 8);
    // sink
    await redis.del(videoKeys(videoId).ready);
    for (const index of batch) {
      await frames.getResult(videoId, index);
      await frames.getSource(videoId, index);
      await stream.append(videoId, record(index));
    }
    await states.setSinkFrames(videoId, first + 8);
    await frames.deleteFrames(videoId, first, first + 8);
    frameCount.n += 8;
  }
}

async function shard(seconds: number, videos: number): Promise<void> {
  const server = await startEmbeddedRedis();
  const clients = Array.from({ length: Math.min(videos, 8) }, () => new Redis(server.url));
  const probe = new Redis(server.url);
  try {
    await probe.config('RESETSTAT');
    const cpuBefore = await info(probe, 'cpu');
    const count = { n: 0 };
    const started = Date.now();
    const until = started + seconds * 1000;
    await Promise.all(Array.from({ length: videos }, (_, i) => oneVideo(clients[i % clients.length]!, `load${i}`, until, count)));
    const wall = (Date.now() - started) / 1000;
    const cpuAfter = await info(probe, 'cpu');
    const cpu = (key: string) => Number(cpuAfter.get(key)) - Number(cpuBefore.get(key));
    const serverCpu = cpu('used_cpu_user') + cpu('used_cpu_sys');
    const calls = [...(await commandCalls(probe)).entries()].filter(([name]) => !name.startsWith('info') && !name.startsWith('config'));
    const ops = calls.reduce((sum, [, n]) => sum + n, 0);
    const stats = await info(probe, 'stats');
    console.log(
      `shard load, 720p frames (${videos} videos at once, ${clients.length} connections), ${wall.toFixed(1)} s: ${count.n} frames = ${(count.n / wall).toFixed(0)} frames/s; ` +
        `redis-server CPU ${serverCpu.toFixed(2)} s = ${((serverCpu / count.n) * 1e6).toFixed(0)} µs/frame (${(count.n / serverCpu).toFixed(0)} frames per server-CPU-second); ` +
        `${(ops / count.n).toFixed(1)} commands/frame; ${((Number(stats.get('total_net_input_bytes')) / count.n) * 1e-3).toFixed(1)} kB/frame in, ` +
        `${((Number(stats.get('total_net_input_bytes')) / wall) * 8e-9).toFixed(2)} Gbit/s in; load average ${os.loadavg()[0]!.toFixed(2)} on ${os.cpus().length} cores`,
    );
  } finally {
    for (const client of [...clients, probe]) client.disconnect();
    await server.stop();
  }
}

const [mode, arg, videosArg] = process.argv.slice(2);
if (mode === 'pipeline') await pipeline(Number(arg ?? 50));
else if (mode === 'memory') await memory(Number(arg ?? 50));
else if (mode === 'shard') await shard(Number(arg ?? 10), Number(videosArg ?? 16));
else {
  console.error('usage: npx tsx test/cluster/redis-capacity.ts pipeline [frames] | memory [frames] | shard [seconds] [videos]');
  process.exit(2);
}

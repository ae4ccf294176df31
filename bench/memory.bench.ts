/**
 * Memory stays bounded however long the video: decodes a 720p video of 1 and of 5 minutes
 * through separate producer, worker and sink processes on one redis-server and prints the
 * peak RSS of each process (VmHWM) and Redis' peak used_memory, side by side.
 *
 *   npm run bench:memory -- [--minutes 1,5] [--fps 5]
 *
 * The workers are the slow side without any artificial delay: at 720p the producer decodes
 * faster than one worker segments and the sink overlays and encodes, so it fills Redis up to
 * its high-water marks and then waits there (the `backpressure` column: seconds it waited). Memory that grew with the video would show as a ratio well above 1.
 * 5 fps (1500 frames for 5 minutes) keeps the whole run near 10 minutes on 2 cores; the
 * number of frames, not the frame rate, is what a leak would scale with.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { startEmbeddedRedis } from '../src/cli/embedded-redis.js';
import type { VideoReport } from '../src/workers/sink/report-builder.js';
import { runCli, spawnCli, stopProcess } from '../test/helpers/cli.js';

const run = promisify(execFile);
const { values } = parseArgs({ options: { minutes: { type: 'string', default: '1,5' }, fps: { type: 'string', default: '5' } } });
const minutesList = values.minutes.split(',').map(Number);
const fps = Number(values.fps);

async function peakRssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kib / 1024;
}

async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

type Series = Record<'producer' | 'worker' | 'sink' | 'redis', number>;

/**
 * Samples every role's RSS and Redis' used_memory every `everyMs` until stopped, so the run
 * can be split in halves: a leak keeps growing in the second half, a bounded pipeline does not.
 */
function sampleMemory(pids: Record<'producer' | 'worker' | 'sink', number>, redis: Redis, everyMs: number) {
  const samples: { at: number; values: Series }[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const [producer, worker, sink, info] = await Promise.all([rssMiB(pids.producer), rssMiB(pids.worker), rssMiB(pids.sink), redis.info('memory')]);
      const used = Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0) / 2 ** 20;
      samples.push({ at: Date.now(), values: { producer, worker, sink, redis: used } });
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    async stop(): Promise<{ first: Series; second: Series; samples: number }> {
      running = false;
      await loop;
      const start = samples[0]!.at;
      const middle = start + (samples[samples.length - 1]!.at - start) / 2;
      const max = (part: typeof samples): Series => {
        const out: Series = { producer: 0, worker: 0, sink: 0, redis: 0 };
        for (const { values } of part) for (const key of Object.keys(out) as (keyof Series)[]) out[key] = Math.max(out[key], values[key]);
        return out;
      };
      return { first: max(samples.filter((x) => x.at <= middle)), second: max(samples.filter((x) => x.at > middle)), samples: samples.length };
    },
  };
}

async function measure(minutes: number, dir: string) {
  const video = path.join(dir, `clip-${minutes}m.mp4`);
  // testsrc2 moves every frame, so the decoder and the scene detector do real work.
  // prettier-ignore
  await run('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=size=1280x720:rate=${fps}:duration=${minutes * 60}`,
    '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', video]);
  const redis = await startEmbeddedRedis();
  // STREAMSEG_OUT is the sinks' output root: every --out must lie under it.
  const env = { REDIS_URL: redis.url, LOG_LEVEL: 'warn', STREAMSEG_OUT: dir };
  const roles = ['producer', 'worker', 'sink'].map((role) => ({ role, child: spawnCli([role], env) }));
  for (const { child } of roles) child.stderr!.on('data', () => undefined);
  const started = Date.now();
  const outDir = path.join(dir, `out-${minutes}`);
  const client = new Redis(redis.url);
  const pids = Object.fromEntries(roles.map(({ role, child }) => [role, child.pid!])) as Record<'producer' | 'worker' | 'sink', number>;
  const sampler = sampleMemory(pids, client, 2000);
  try {
    const submitted = await runCli(['submit', video, '--out', outDir, '--watch'], env);
    const halves = await sampler.stop();
    if (submitted.code !== 0) throw new Error(`submit failed: ${submitted.stderr}`);
    const report = JSON.parse(await readFile(path.join(outDir, 'report.json'), 'utf8')) as VideoReport;
    if (report.frames !== minutes * 60 * fps) throw new Error(`${minutes} min: report.json has ${report.frames} frames, expected ${minutes * 60 * fps}`);
    const peaks = Object.fromEntries(await Promise.all(roles.map(async ({ role, child }) => [role, await peakRssMiB(child.pid!)] as const)));
    const info = await client.info('memory');
    const redisPeak = Number(/used_memory_peak:(\d+)/.exec(info)?.[1] ?? 0) / 2 ** 20;
    const backpressureS = (report.timings.stageMs.decodeBackpressure ?? 0) / 1000;
    return { minutes, frames: report.frames, seconds: (Date.now() - started) / 1000, backpressureS, peaks, redisPeak, halves };
  } finally {
    await sampler.stop().catch(() => undefined);
    client.disconnect();
    await Promise.all(roles.map(({ child }) => stopProcess(child)));
    await redis.stop();
    await rm(outDir, { recursive: true, force: true });
  }
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'streamseg-membench-'));
try {
  const rows = [];
  for (const minutes of minutesList) rows.push(await measure(minutes, dir));
  console.log('video      frames  wall s  backpressure s  producer MiB  worker MiB  sink MiB  redis used_memory_peak MiB');
  for (const r of rows) {
    console.log(
      `${`${r.minutes} min 720p`.padEnd(10)} ${String(r.frames).padStart(6)}  ${r.seconds.toFixed(0).padStart(6)}  ${r.backpressureS.toFixed(0).padStart(14)}  ` +
        `${r.peaks.producer!.toFixed(0).padStart(12)}  ${r.peaks.worker!.toFixed(0).padStart(10)}  ${r.peaks.sink!.toFixed(0).padStart(8)}  ${r.redisPeak.toFixed(0).padStart(10)}`,
    );
  }
  console.log('');
  console.log('largest sample (every 2 s) in the first / second half of each run, MiB (RSS; Redis used_memory):');
  for (const r of rows) {
    const pair = (key: keyof Series) => `${r.halves.first[key].toFixed(0)} / ${r.halves.second[key].toFixed(0)}`;
    console.log(
      `${`${r.minutes} min`.padEnd(10)} producer ${pair('producer')}, worker ${pair('worker')}, sink ${pair('sink')}, redis ${pair('redis')} (${r.halves.samples} samples)`,
    );
  }
  console.log('');
  if (rows.length >= 2) {
    const [a, b] = [rows[0]!, rows[rows.length - 1]!];
    const ratio = (key: 'producer' | 'worker' | 'sink') => (b.peaks[key]! / a.peaks[key]!).toFixed(2);
    console.log(
      `peak ratio ${b.minutes} min / ${a.minutes} min: producer ${ratio('producer')}, worker ${ratio('worker')}, sink ${ratio('sink')}, redis ${(b.redisPeak / a.redisPeak).toFixed(2)} (video ${(b.frames / a.frames).toFixed(1)}x longer)`,
    );
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}

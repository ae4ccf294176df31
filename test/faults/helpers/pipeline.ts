import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Job, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { PipelineClient } from '../../../src/shared/pipeline-client.js';
import { loadConfig } from '../../../src/shared/config.js';
import type { VideoState } from '../../../src/shared/video-state.js';
import type { MaskLine } from '../../../src/workers/sink/mask-writer.js';
import type { VideoReport } from '../../../src/workers/sink/report-builder.js';
import { probeVideo, type ProbedVideo } from '../../helpers/media.js';

const run = promisify(execFile);

/** A submitting client in the test process (what `streamseg submit` uses). */
export async function connectClient(redisUrl: string): Promise<PipelineClient> {
  const client = await PipelineClient.connect(loadConfig({ redisUrl, jobAttempts: 3 }, {}), redisUrl);
  // Reconnection attempts while a test restarts redis-server are expected, not news.
  client.redis.on('error', () => undefined);
  return client;
}

/** Polls until `check` returns a value (not undefined); throws with `what` after the timeout. */
export async function waitUntil<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 120_000, pollMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      // The test's own client fails fast while redis-server restarts: keep polling.
      lastError = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ''}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** Waits until the video is done or failed, and returns its state. */
export function finalState(client: PipelineClient, videoId: string, timeoutMs = 180_000): Promise<VideoState> {
  return waitUntil(
    `video ${videoId} to finish`,
    async () => {
      const state = await client.states.get(videoId);
      return state && (state.status === 'done' || state.status === 'failed') ? state : undefined;
    },
    timeoutMs,
    100,
  );
}

export interface VideoOutputs {
  lines: MaskLine[];
  video: ProbedVideo;
  report: VideoReport;
}

export async function readOutputs(outDir: string): Promise<VideoOutputs> {
  const text = await readFile(path.join(outDir, 'masks.ndjson'), 'utf8');
  return {
    lines: text
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as MaskLine),
    video: await probeVideo(path.join(outDir, 'annotated.mp4')),
    report: JSON.parse(await readFile(path.join(outDir, 'report.json'), 'utf8')) as VideoReport,
  };
}

/** What must equal between two runs of the same video: per frame its index, scene and masks. */
export function maskContent(lines: readonly MaskLine[]): { index: number; scene: number; masks: MaskLine['masks'] }[] {
  return lines.map((l) => ({ index: l.index, scene: l.scene, masks: l.masks }));
}

/** Every frame index 0..n-1 exactly once, in order. */
export function indices(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Keys of the video state namespace (`ss:*`) that have no TTL. BullMQ's own keys are cleaned by removeOnComplete/Fail. */
export async function keysWithoutTtl(redis: Redis, pattern = 'ss:*'): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) if ((await redis.ttl(key)) === -1) found.push(key);
  } while (cursor !== '0');
  return found;
}

/** ffmpeg/ffprobe processes whose command line mentions `needle` (orphans after a test). */
export async function ffmpegProcessesOn(needle: string): Promise<string[]> {
  const { stdout } = await run('ps', ['-eo', 'args']).catch(() => ({ stdout: '' }));
  return stdout.split('\n').filter((line) => /^(ffmpeg|ffprobe)\b/.test(line) && line.includes(needle));
}

/** Waits until the job has failed and returns it as stored then (failedReason, attemptsMade). */
export function failedJob(queue: Queue, id: string, timeoutMs = 60_000): Promise<Job> {
  return waitUntil(
    `job ${queue.name}/${id} to fail`,
    async () => {
      const job = await queue.getJob(id);
      // getJob is a snapshot: read it again once the state says failed.
      return job && (await job.isFailed()) ? ((await queue.getJob(id)) ?? undefined) : undefined;
    },
    timeoutMs,
  );
}

import { execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VideoView } from '../../src/api/services/video-view.js';
import { findFreePort } from '../../src/shared/free-port.js';
import { QueueName, queuePrefixFor } from '../../src/shared/queues.js';
import { createRedis, scanKeys, type RedisConnection } from '../../src/shared/redis.js';
import { cancelledKey, videoKeys } from '../../src/shared/redis-keys.js';
import { TEST_MODEL, TOKEN, auth, eventually } from '../api/stack.js';
import { spawnCli, stopProcess } from '../helpers/cli.js';
import { makeTestVideo, smallClipSpec } from '../helpers/media.js';
import { startRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster.js';

/**
 * `streamseg serve --roles all` (the CLI, as a subprocess) on a real Redis Cluster (3 masters +
 * 3 replicas on loopback) with REDIS_CLUSTER_NODES and no REDIS_URL: no own redis-server; a video
 * uploaded over HTTP comes out with every frame once in masks.ndjson; list, queues and /metrics
 * answer; DELETE of a running video removes its keys from the masters.
 */

const run = promisify(execFile);
const FRAMES = 24;

async function upload(base: string, file: string): Promise<{ id: string }> {
  const form = new FormData();
  form.append('file', new Blob([await readFile(file)], { type: 'video/mp4' }), path.basename(file));
  const response = await fetch(`${base}/v1/videos`, { method: 'POST', headers: auth(), body: form });
  expect(response.status).toBe(201);
  return (await response.json()) as { id: string };
}

async function view(base: string, id: string): Promise<VideoView> {
  const response = await fetch(`${base}/v1/videos/${id}`, { headers: auth() });
  expect(response.status).toBe(200);
  return (await response.json()) as VideoView;
}

/** Names of the processes whose parent is `pid`. */
async function childCommands(pid: number): Promise<string[]> {
  const { stdout } = await run('ps', ['-o', 'comm=', '--ppid', String(pid)]).catch(() => ({ stdout: '' }));
  return stdout.split('\n').filter(Boolean);
}

describe('streamseg serve and the HTTP API on a Redis Cluster', () => {
  let cluster: TestRedisCluster;
  let dir: string;
  let clip: string;
  let longClip: string;
  let data: RedisConnection;
  let serve: ChildProcess | undefined;
  let stderr = '';
  let base: string;
  const killServe = () => {
    if (serve && serve.exitCode === null && serve.signalCode === null) serve.kill('SIGKILL');
  };

  beforeAll(async () => {
    process.once('exit', killServe);
    cluster = await startRedisCluster();
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-cluster-api-'));
    clip = path.join(dir, 'clip.mp4');
    longClip = path.join(dir, 'long.mp4');
    await Promise.all([makeTestVideo(clip, smallClipSpec(FRAMES)), makeTestVideo(longClip, smallClipSpec(120))]);
    data = createRedis(cluster.address, { connectionName: 'test-cluster-api' });
    data.on('error', () => undefined);

    const port = await findFreePort();
    serve = spawnCli(['serve', '--port', String(port), '--host', '127.0.0.1', '--roles', 'all'], {
      REDIS_URL: '',
      REDIS_CLUSTER_NODES: cluster.clusterNodesEnv,
      STREAMSEG_API_TOKENS: TOKEN,
      STREAMSEG_MODEL: TEST_MODEL,
      STREAMSEG_OUT: path.join(dir, 'out'),
      STREAMSEG_INTRA_OP_THREADS: '1',
      STREAMSEG_SINK_SEGMENT_FRAMES: '8',
      STREAMSEG_HIGH_WATER_FRAMES: '16',
      STREAMSEG_METRICS_PUBLISH_MS: '500',
      LOG_LEVEL: 'warn',
    });
    serve.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    await eventually(
      async () => (stderr.includes('streamseg API on') ? true : serve!.exitCode !== null ? Promise.reject(new Error(stderr)) : undefined),
      'serve to listen',
      90_000,
    );
    base = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    if (serve) await stopProcess(serve);
    process.off('exit', killServe);
    data?.disconnect();
    await cluster?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('serves on the cluster without an own redis-server', async () => {
    expect(stderr).not.toMatch(/own redis-server/);
    expect(await childCommands(serve!.pid!)).not.toContain('redis-server');
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
  });

  it('segments an uploaded video: every frame once in masks.ndjson, keys on its slot’s master; list, queues and /metrics answer', async () => {
    const { id } = await upload(base, clip);
    const done = await eventually(
      async () => {
        const v = await view(base, id);
        if (v.status === 'failed') throw new Error(`video failed: ${JSON.stringify(v)}\n${stderr}`);
        return v.status === 'done' ? v : undefined;
      },
      'the video to be done',
      90_000,
    );
    expect(done.stages.sink.done).toBe(FRAMES);

    const masks = await fetch(`${base}/v1/videos/${id}/masks.ndjson`, { headers: auth() });
    expect(masks.status).toBe(200);
    const lines = (await masks.text()).trim().split('\n');
    expect(lines.map((l) => (JSON.parse(l) as { index: number }).index)).toEqual(Array.from({ length: FRAMES }, (_, i) => i));

    // The video's keys live on the master of its slot: the cluster carried the traffic.
    const keys = videoKeys(id);
    const master = await cluster.masterOfSlot(await cluster.keySlot(keys.meta));
    expect(await cluster.command(master, 'EXISTS', keys.meta)).toBe(1);
    expect(await cluster.command(master, 'XLEN', keys.stream)).toBe(FRAMES);

    const list = await fetch(`${base}/v1/videos`, { headers: auth() });
    expect(list.status).toBe(200);
    const listed = ((await list.json()) as { videos: VideoView[] }).videos;
    expect(listed.find((v) => v.id === id)?.status).toBe('done');

    const queues = await fetch(`${base}/v1/queues`, { headers: auth() });
    expect(queues.status).toBe(200);
    const counts = ((await queues.json()) as { queues: { name: string; workers: unknown[] }[] }).queues;
    expect(counts.map((q) => q.name).sort()).toEqual(['frames', 'sink', 'videos']);
    expect(counts.every((q) => q.workers.length >= 1)).toBe(true);

    const metrics = await fetch(`${base}/metrics`, { headers: auth() });
    expect(metrics.status).toBe(200);
    const text = await metrics.text();
    const sinkLine = text.split('\n').find((l) => l.startsWith('streamseg_frames_total{stage="sink"} '));
    expect(Number(sinkLine?.split(' ').pop())).toBeGreaterThanOrEqual(FRAMES);
  });

  it('DELETE cancels a running video: its keys are gone from every master', async () => {
    // Frames wait in their queue (the producer pauses at its high-water mark), so the video is
    // certainly running when the cancel arrives.
    const queueConnection = createRedis(cluster.address, { connectionName: 'test-cluster-api-queue' });
    queueConnection.on('error', () => undefined);
    const frames = new Queue(QueueName.Frames, { connection: queueConnection, prefix: queuePrefixFor(queueConnection) });
    await frames.pause();
    try {
      const { id } = await upload(base, longClip);
      await eventually(async () => {
        const v = await view(base, id);
        return v.status === 'decoding' && v.stages.decode.done >= 8 ? v : undefined;
      }, 'decoding to start');
      const keys = videoKeys(id);
      const master = await cluster.masterOfSlot(await cluster.keySlot(keys.meta));
      expect(await cluster.command(master, 'EXISTS', keys.meta)).toBe(1);
      expect((await scanKeys(data, keys.pattern)).length).toBeGreaterThan(0);

      const cancel = await fetch(`${base}/v1/videos/${id}`, { method: 'DELETE', headers: auth() });
      const result = (await cancel.json()) as { previousStatus: string; removedJobs: number; removedKeys: number; stillActive: string[] };
      expect(cancel.status, JSON.stringify(result)).toBe(200);
      expect(result.previousStatus).toBe('decoding');
      expect(result.stillActive).toEqual([]);
      expect(result.removedJobs).toBeGreaterThan(2);
      expect(result.removedKeys).toBeGreaterThan(0);

      expect(await scanKeys(data, keys.pattern)).toEqual([]);
      expect((await scanKeys(data, `${queuePrefixFor(data)}:*`)).filter((k) => k.includes(id))).toEqual([]);
      expect(await cluster.command(master, 'EXISTS', cancelledKey(id))).toBe(1);
      expect((await view(base, id)).status).toBe('cancelled');
    } finally {
      await frames.resume();
      await frames.close();
      queueConnection.disconnect();
    }
  });

  it('stops cleanly on SIGTERM', async () => {
    await stopProcess(serve!);
    expect(serve!.exitCode, stderr).toBe(0);
  });
});

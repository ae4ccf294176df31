import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/shared/config.js';
import type { FrameResult } from '../../src/shared/frame-store.js';
import { PipelineClient } from '../../src/shared/pipeline-client.js';
import { createRedis, type RedisConnection } from '../../src/shared/redis.js';
import { videoKeys } from '../../src/shared/redis-keys.js';
import { runCli } from '../helpers/cli.js';
import { makeTestVideo, smallClipSpec } from '../helpers/media.js';
import { startRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster.js';
import { finalState, indices, readOutputs, waitUntil } from '../faults/helpers/pipeline.js';
import { TEST_MODEL, faultEnv, startRoles, type RoleProcess } from '../faults/helpers/roles.js';

/**
 * The pipeline on a real Redis Cluster (3 masters + 3 replicas on loopback, cluster-node-timeout
 * 1 s): `streamseg run` with REDIS_CLUSTER_NODES, then producer, worker and sink processes
 * serving several videos at once, a resharding of a running video's slot (MOVED/ASK), and a
 * kill -9 of the master holding a running video's slot (its replica is promoted). Every video
 * must come out with each frame exactly once in masks.ndjson, annotated.mp4 and the Stream.
 */

const SHORT = 24;
const LONG = 120;

/** INFO field summed over the running nodes (commandstats, errorstats). */
async function sumInfo(cluster: TestRedisCluster, section: string, field: RegExp): Promise<number> {
  let total = 0;
  for (const node of cluster.nodes.filter((n) => cluster.isRunning(n.port))) {
    const info = String(await cluster.command(node.port, 'INFO', section).catch(() => ''));
    for (const line of info.split('\n')) {
      const match = field.exec(line);
      if (match) total += Number(match[1]);
    }
  }
  return total;
}

describe('the pipeline on a Redis Cluster', () => {
  let cluster: TestRedisCluster;
  let dir: string;
  let shortClip: string;
  let longClip: string;
  let data: RedisConnection;
  let client: PipelineClient;
  const roles: RoleProcess[] = [];

  const outDir = (id: string) => path.join(dir, 'out', id);

  /** masks.ndjson, annotated.mp4 and the Redis Stream each hold frames 0..frames-1 once. */
  async function expectEveryFrameOnce(id: string, frames: number): Promise<void> {
    const state = await finalState(client, id);
    expect(state.error).toBeUndefined();
    expect(state.status).toBe('done');
    const outputs = await readOutputs(outDir(id));
    expect(outputs.lines.map((l) => l.index)).toEqual(indices(frames));
    expect(outputs.video.frames).toBe(frames);
    const entries = await data.xrange(videoKeys(id).stream, '-', '+');
    expect(entries.map(([, fields]) => (JSON.parse(fields[1]!) as FrameResult).index)).toEqual(indices(frames));
  }

  /** Waits until the sink has written part of the video (not all of it). */
  function midVideo(id: string, frames: number) {
    return waitUntil(
      `video ${id} to be mid-way`,
      async () => {
        const state = await client.states.get(id);
        return state && state.sinkFrames >= 8 && state.sinkFrames < frames - 24 ? state : undefined;
      },
      120_000,
      5,
    );
  }

  beforeAll(async () => {
    cluster = await startRedisCluster({ nodeTimeoutMs: 1000 });
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-cluster-pipeline-'));
    shortClip = path.join(dir, 'short.mp4');
    longClip = path.join(dir, 'long.mp4');
    await makeTestVideo(shortClip, smallClipSpec(SHORT));
    await makeTestVideo(longClip, smallClipSpec(LONG));
    data = createRedis(cluster.address, { connectionName: 'test-cluster-data' });
    data.on('error', () => undefined);
  });

  afterAll(async () => {
    await Promise.allSettled(roles.map((r) => r.stop()));
    await client?.close();
    data?.disconnect();
    await cluster?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('streamseg run with REDIS_CLUSTER_NODES writes every frame, through the cluster', async () => {
    const setsBefore = await sumInfo(cluster, 'commandstats', /^cmdstat_set:calls=(\d+)/);
    const out = path.join(dir, 'run-out');
    const result = await runCli(['run', shortClip, '--out', out], {
      REDIS_URL: '',
      REDIS_CLUSTER_NODES: cluster.clusterNodesEnv,
      STREAMSEG_MODEL: TEST_MODEL,
      STREAMSEG_INTRA_OP_THREADS: '1',
      STREAMSEG_METRICS_PUBLISH_MS: '0',
    });
    expect(result.stderr).not.toMatch(/own redis-server/);
    expect(result.code, result.stderr).toBe(0);
    const lines = (await readFile(path.join(out, 'masks.ndjson'), 'utf8')).trim().split('\n');
    expect(lines.map((l) => (JSON.parse(l) as { index: number }).index)).toEqual(indices(SHORT));
    const { videoId } = JSON.parse(await readFile(path.join(out, 'report.json'), 'utf8')) as { videoId: string };
    // The video's frames went to the master of its slot: its Stream is there.
    const master = await cluster.masterOfSlot(await cluster.keySlot(videoKeys(videoId).stream));
    expect(await cluster.command(master, 'XLEN', videoKeys(videoId).stream)).toBe(SHORT);
    // Three SETs per frame at least (model input, mask, result); no source: the sink decoded the file itself.
    expect((await sumInfo(cluster, 'commandstats', /^cmdstat_set:calls=(\d+)/)) - setsBefore).toBeGreaterThanOrEqual(3 * SHORT);
  });

  it('producer, worker and sink processes carry several videos at once, spread over the shards', async () => {
    const env = faultEnv('', path.join(dir, 'out'), {
      REDIS_URL: '',
      REDIS_CLUSTER_NODES: cluster.clusterNodesEnv,
      STREAMSEG_SINK_SEGMENT_FRAMES: '8',
      STREAMSEG_HIGH_WATER_FRAMES: '16',
      STREAMSEG_PRODUCER_CONCURRENCY: '3',
    });
    roles.push(...(await startRoles(['producer', 'worker', 'sink'], env)));
    const config = loadConfig({ jobAttempts: 3 }, { REDIS_CLUSTER_NODES: cluster.clusterNodesEnv });
    client = await PipelineClient.connect(config, config.redisUrl!);
    client.redis.on('error', () => undefined);

    const ids = ['many-a', 'many-b', 'many-c', 'many-d'];
    for (const id of ids) await client.submitter.submit(shortClip, { videoId: id, outDir: outDir(id) });
    for (const id of ids) await expectEveryFrameOnce(id, SHORT);
    const masters = new Set(await Promise.all(ids.map(async (id) => cluster.masterOfSlot(await cluster.keySlot(videoKeys(id).meta)))));
    expect(masters.size).toBeGreaterThan(1);
  });

  it('survives a resharding of a running video’s slot (MOVED and ASK)', async () => {
    // An id whose slot is near the start of its master's range: `--cluster reshard` moves the
    // source's lowest slots first, so few slots move before (and including) the video's.
    const topology = await cluster.topology();
    let chosen: { id: string; slot: number; from: number; moved: number } | undefined;
    for (let i = 0; !chosen && i < 5000; i++) {
      const id = `reshard-${i}`;
      const slot = await cluster.keySlot(videoKeys(id).meta);
      const owner = topology.find((n) => n.master && n.slots.some(([a, b]) => slot >= a && slot <= b))!;
      const start = Math.min(...owner.slots.map(([a]) => a));
      if (slot - start < 40) chosen = { id, slot, from: owner.port, moved: slot - start + 1 };
    }
    expect(chosen).toBeDefined();
    const { id, slot, from, moved } = chosen!;
    const to = topology.find((n) => n.master && n.port !== from)!.port;
    const redirectsBefore = await sumInfo(cluster, 'errorstats', /^errorstat_(?:MOVED|ASK):count=(\d+)/);

    await client.submitter.submit(longClip, { videoId: id, outDir: outDir(id) });
    await midVideo(id, LONG);
    await cluster.reshard(from, to, moved);
    expect(await cluster.masterOfSlot(slot)).toBe(to);

    await expectEveryFrameOnce(id, LONG);
    expect(await sumInfo(cluster, 'errorstats', /^errorstat_(?:MOVED|ASK):count=(\d+)/)).toBeGreaterThan(redirectsBefore);
    expect(roles.every((r) => r.child.exitCode === null)).toBe(true);
  });

  it('survives kill -9 of the master holding a running video’s slot: the replica takes over, nothing lost or doubled', async () => {
    const id = 'failover-1';
    const slot = await cluster.keySlot(videoKeys(id).meta);
    const master = await cluster.masterOfSlot(slot);
    await client.submitter.submit(longClip, { videoId: id, outDir: outDir(id) });
    await midVideo(id, LONG);
    await cluster.kill(master);

    await expectEveryFrameOnce(id, LONG);
    const promoted = await cluster.masterOfSlot(slot);
    expect(promoted).not.toBe(master);
    expect(cluster.isRunning(promoted)).toBe(true);
    expect(roles.every((r) => r.child.exitCode === null)).toBe(true);
  });
});

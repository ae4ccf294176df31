import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DedupRepository } from '../../src/api/repositories/dedup.repository.js';
import { FrameStreamReader } from '../../src/api/repositories/frame-stream.reader.js';
import { TokenUsageRepository } from '../../src/api/repositories/token-usage.repository.js';
import { VideoIndexRepository } from '../../src/api/repositories/video-index.repository.js';
import { ClusterMetricsService } from '../../src/api/services/cluster-metrics.service.js';
import { StreamsegClient } from '../../src/client/streamseg-client.js';
import { listAdapters } from '../../src/shared/adapters/adapter-store.js';
import { loadConfig } from '../../src/shared/config.js';
import { FrameStore, type FrameResult } from '../../src/shared/frame-store.js';
import { LiveFrameLog } from '../../src/shared/live-frame-log.js';
import { MetricsPublisher } from '../../src/shared/metrics-publisher.js';
import { loadModelPackage, type ModelPackage } from '../../src/shared/model-manifest.js';
import { PipelineClient } from '../../src/shared/pipeline-client.js';
import { CLUSTER_QUEUE_PREFIX, QueueName, queuePrefixFor } from '../../src/shared/queues.js';
import { createRedis, isCluster, scanKeys, type Cluster, type RedisConnection } from '../../src/shared/redis.js';
import { VIDEO_INDEX_KEY, videoKeys } from '../../src/shared/redis-keys.js';
import { VideoStateStore } from '../../src/shared/video-state.js';
import { AdapterRegistry, addRuntimeAdapter, removeAdapter, restorePackageAdapter } from '../../src/workers/adapters/adapter-registry.js';
import { SceneGuardStore } from '../../src/workers/segmentation/scene-guard.store.js';
import { FrameStreamRepository } from '../../src/workers/sink/frame-stream.repository.js';
import { SinkCheckpointStore } from '../../src/workers/sink/sink-checkpoint.store.js';
import { writeFixtureAdapter, writeFixturePackage } from '../fixtures/adapters/adapter-fixtures.js';
import { startRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster.js';

/**
 * Every store's operations on a real Redis Cluster (3 masters + 3 replicas on loopback). A
 * multi-key command, MULTI or Lua script whose keys span two slots fails there with CROSSSLOT,
 * so each call below passing is the check that it stays within one slot.
 */

const TTL = 600;
const record = (index: number): FrameResult => ({ index, timestampMs: index * 40, scene: 0, adapters: [], cacheHit: null, inferenceMs: 1, workerId: 'test' });

describe('stores on a Redis Cluster', () => {
  let cluster: TestRedisCluster;
  let redis: RedisConnection;
  let blocking: RedisConnection;
  let dir: string;
  let pkg: ModelPackage;

  beforeAll(async () => {
    cluster = await startRedisCluster();
    redis = createRedis(cluster.address, { purpose: 'worker', connectionName: 'test-cluster-stores' });
    blocking = createRedis(cluster.address, { purpose: 'worker', connectionName: 'test-cluster-blocking' });
    dir = await mkdtemp(path.join(os.tmpdir(), 'ss-cluster-stores-'));
    await writeFixturePackage(path.join(dir, 'pkg'), { embeddingSize: 3, adapters: [{ name: 'fog', seed: 1, centroid: [1, 0, 0] }] });
    pkg = await loadModelPackage(path.join(dir, 'pkg'));
  });

  afterAll(async () => {
    redis?.disconnect();
    blocking?.disconnect();
    await cluster?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('connects through a Cluster and uses the hash-tagged BullMQ prefix', () => {
    expect(isCluster(redis)).toBe(true);
    expect(queuePrefixFor(redis)).toBe(CLUSTER_QUEUE_PREFIX);
  });

  it('refuses what spans two slots (so the checks below mean something)', async () => {
    await expect(redis.multi().set('ss:{a}:x', '1').set('ss:{b}:x', '1').exec()).rejects.toThrow();
    await expect(redis.mget('ss:{a}:x', 'ss:{b}:x')).rejects.toThrow(/CROSSSLOT/);
  });

  it('puts each video on the master its id hashes to', async () => {
    const ids = Array.from({ length: 12 }, (_, i) => `spread${i}`);
    const frames = new FrameStore(redis, TTL);
    for (const id of ids) await frames.putFrame(id, 0, Buffer.from('src'), Buffer.from('in'));
    const masters = new Set<number>();
    for (const id of ids) {
      const slot = await cluster.keySlot(videoKeys(id).source(0));
      // Every key of the video is in that one slot.
      for (const key of [videoKeys(id).meta, videoKeys(id).input(7), videoKeys(id).stream, videoKeys(id).sinkCheckpoint])
        expect(await cluster.keySlot(key)).toBe(slot);
      const port = await cluster.masterOfSlot(slot);
      expect(await cluster.command(port, 'EXISTS', videoKeys(id).source(0))).toBe(1);
      masters.add(port);
    }
    expect(masters.size).toBe(3);
    for (const id of ids) await frames.deleteVideo(id);
  });

  it('FrameStore, VideoStateStore, FrameStreamRepository and the stream reader', async () => {
    const frames = new FrameStore(redis, TTL);
    const states = new VideoStateStore(redis, TTL);
    const stream = new FrameStreamRepository(redis, 1000, TTL);
    await states.init('v1', { outDir: '/tmp/v1', submittedAt: Date.now() });
    expect(await redis.zscore(VIDEO_INDEX_KEY, 'v1')).not.toBeNull();
    await states.setProbe('v1', {
      sourceWidth: 64,
      sourceHeight: 48,
      fps: 10,
      durationMs: 200,
      expectedFrames: 2,
      inputWidth: 64,
      inputHeight: 48,
      letterbox: { x: 0, y: 0, width: 64, height: 48 },
      codec: 'h264',
    });
    await states.addScene('v1', { index: 0, startFrame: 0 });
    await states.setDecodedFrames('v1', 2);
    await states.addSegmentedFrames('v1', 2);
    await states.addStageTime('v1', 'decode', 5);
    await states.addWarning('v1', 'w');
    await frames.putFrame('v1', 0, Buffer.alloc(12, 1), Buffer.alloc(6, 2));
    await frames.putFrame('v1', 1, Buffer.alloc(12, 3), Buffer.alloc(6, 4));
    expect(await frames.getInputs('v1', [0, 1, 2])).toEqual([Buffer.alloc(6, 2), Buffer.alloc(6, 4), null]);
    await frames.putResults('v1', [
      { mask: Buffer.alloc(6, 0), record: record(0) },
      { mask: Buffer.alloc(6, 1), record: record(1) },
    ]);
    await frames.waitForResults('v1', 1, blocking);
    expect((await frames.getResult('v1', 1))?.record.index).toBe(1);
    expect(await frames.getSource('v1', 0)).toEqual(Buffer.alloc(12, 1));
    for (const index of [0, 1, 1, 0]) await stream.append('v1', record(index));
    const read = await new FrameStreamReader(blocking).readAfter('v1', '0', { count: 10, blockMs: 100 });
    expect(read.map((e) => e.record.index)).toEqual([0, 1]);
    await frames.deleteFrame('v1', 0);
    await frames.deleteFrames('v1', 1, 2);
    await states.setSinkFrames('v1', 2);
    await states.markDecoded('v1', 2);
    await states.markDone('v1');
    expect((await states.get('v1'))?.status).toBe('done');
    expect(await states.getScenes('v1')).toHaveLength(1);
    await states.markCancelled('v1');
    expect(await states.isCancelled('v1')).toBe(true);
    expect(await frames.deleteVideo('v1')).toBeGreaterThan(0);
    expect(await scanKeys(redis, videoKeys('v1').pattern)).toEqual([]);
  });

  it('LiveFrameLog, SinkCheckpointStore and SceneGuardStore', async () => {
    const live = new LiveFrameLog(redis, TTL);
    await live.recordCapture('l1', 0, 1000);
    await live.recordCapture('l1', 1, 1040);
    await live.markDropped('l1', [2, 3]);
    await live.countLost('l1', 1);
    expect(await live.droppedBetween('l1', 0, 10)).toEqual([2, 3]);
    expect(await live.captureTimes('l1', [0, 1, 5])).toEqual([1000, 1040, null]);
    await live.forgetBelow('l1', 3, [0, 1]);
    await live.setOutputs('l1', { restreamUrl: 'rtmp://example.invalid/x' });
    expect(await live.getOutputs('l1')).toEqual({ restreamUrl: 'rtmp://example.invalid/x' });
    await live.keepAlive('l1');
    await live.requestStop('l1');
    expect(await live.stopRequested('l1')).toBe(true);

    const checkpoints = new SinkCheckpointStore(redis, TTL);
    const claimed = await checkpoints.claim('c1', 'sink-a');
    expect(claimed.previousOwner).toBeNull();
    expect(await checkpoints.save('c1', 'sink-a', { ...claimed.checkpoint, frames: 16 })).toBe(true);
    expect((await checkpoints.claim('c1', 'sink-b')).previousOwner).toBe('sink-a');
    expect(await checkpoints.save('c1', 'sink-a', { ...claimed.checkpoint, frames: 32 })).toBe(false);
    expect(await checkpoints.owns('c1', 'sink-b')).toBe(true);
    expect((await checkpoints.get('c1'))?.frames).toBe(16);

    const guard = new SceneGuardStore(redis, TTL);
    expect(await guard.settle('g1', 0, 'kept')).toBe('kept');
    expect(await new SceneGuardStore(redis, TTL).settle('g1', 0, 'base')).toBe('kept');
  });

  it('dedup, video index, token usage and the metrics snapshots (global keys)', async () => {
    const dedup = new DedupRepository(redis, 60, TTL);
    expect(await dedup.claim('h1', 'd1')).toBeNull();
    expect(await dedup.claim('h1', 'd2')).toBe('d1');
    expect(await dedup.replace('h1', 'd1', 'd2')).toBe(true);
    await dedup.release('d2');
    expect(await dedup.claim('h1', 'd3')).toBeNull();

    const states = new VideoStateStore(redis, TTL);
    await states.init('i1', { outDir: '/tmp/i1', submittedAt: Date.now() });
    await states.init('i2', { outDir: '/tmp/i2', submittedAt: Date.now() + 1 });
    const index = new VideoIndexRepository(redis);
    expect((await index.newest(2))[0]).toBe('i2');
    await index.remove('i1', 'i2');

    const tokens = new TokenUsageRepository(redis, TTL);
    await tokens.setOwner('t-video', 'tok1');
    expect(await tokens.owner('t-video')).toBe('tok1');
    expect(await tokens.countSubmission('tok1', 2)).toBe(0);
    expect(await tokens.reserveActive('tok1', 'a', 1, async () => false)).toBe(true);
    expect(await tokens.reserveActive('tok1', 'b', 1, async () => false)).toBe(false);
    await tokens.releaseActive('tok1', 'a');

    // Two processes' snapshots land in different slots; the API still sums them.
    const registry = new Registry();
    const publishers = ['proc-a', 'proc-b'].map((id) => new MetricsPublisher({ redis, registry, instanceId: id, intervalMs: 60_000 }));
    for (const publisher of publishers) await publisher.publish();
    const queues = Object.values(QueueName).map((name) => new Queue(name, { connection: redis as Cluster, prefix: queuePrefixFor(redis) }));
    const service = new ClusterMetricsService(redis, queues, 'proc-self');
    expect(await service.render()).toContain('streamseg_queue_jobs');
    expect((await scanKeys(redis, 'ss:metrics:*')).sort()).toEqual(['ss:metrics:proc-a', 'ss:metrics:proc-b']);
    await Promise.all(queues.map((q) => q.close()));
  });

  it('the adapter registry: add, list, remove, restore, and the reload message', async () => {
    const subscriber = createRedis(cluster.address, { purpose: 'worker', connectionName: 'test-cluster-sub' });
    const registry = await AdapterRegistry.open({ pkg, redis, subscriber, refreshIntervalMs: 60_000 });
    try {
      const snow = await writeFixtureAdapter(path.join(dir, 'snow'), { seed: 5 });
      const added = await addRuntimeAdapter(redis, pkg, { dir: snow.dir, centroids: [[0, 0, 1]], condition: 'snow' });
      expect(added.replaced).toBe(false);
      expect((await listAdapters(redis, pkg)).adapters.map((a) => a.name).sort()).toEqual(['fog', 'snow']);
      expect(await removeAdapter(redis, pkg, 'fog')).toBe(true);
      expect(await restorePackageAdapter(redis, 'fog')).toBe(true);
      expect(await removeAdapter(redis, pkg, 'snow')).toBe(true);
      // The subscriber on the cluster hears every change: the registry reloads to the package's one adapter.
      await expect.poll(() => registry.entries().map((e) => e.name), { timeout: 10_000 }).toEqual(['fog']);
    } finally {
      await registry.close();
      subscriber.disconnect();
    }
  });

  it('the client: submit, queue jobs in the {streamseg} slot, cancel scan', async () => {
    const config = loadConfig({ redisUrl: undefined, jobAttempts: 1 }, { REDIS_CLUSTER_NODES: cluster.clusterNodesEnv });
    expect(config.redisUrl).toMatch(/^redis\+cluster:\/\//);
    const client = await PipelineClient.connect(config, config.redisUrl!);
    try {
      const id = await client.submitter.submit({ kind: 'url', url: 'https://example.invalid/x.mp4' }, { outDir: path.join(dir, 'out') });
      expect((await client.states.get(id))?.status).toBe('queued');
      const job = await client.queues.videos.getJob(id);
      expect(job?.id).toBe(id);
      const jobKeys = await scanKeys(client.redis, `${CLUSTER_QUEUE_PREFIX}:${QueueName.Videos}:${id}`);
      expect(jobKeys).toEqual([`${CLUSTER_QUEUE_PREFIX}:${QueueName.Videos}:${id}`]);
      await client.queues.videos.remove(id);
      await client.frames.deleteVideo(id);
    } finally {
      await client.close();
    }
    // The Node client, given the seed nodes.
    const node = await StreamsegClient.connect({ redisClusterNodes: cluster.clusterNodesEnv, outDir: path.join(dir, 'out') });
    try {
      const id = await node.submit('https://example.invalid/y.mp4');
      expect((await node.status(id))?.status).toBe('queued');
    } finally {
      await node.close();
    }
  });
});

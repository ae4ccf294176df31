import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis, type RedisConnection } from '../../src/shared/redis.js';
import { videoKeys } from '../../src/shared/redis-keys.js';
import type { FrameResult } from '../../src/shared/frame-store.js';
import { FrameStreamRepository } from '../../src/workers/sink/frame-stream.repository.js';
import { startRedisServer, type TestRedisServer } from '../helpers/redis-server.js';

const record = (index: number): FrameResult => ({ index, timestampMs: index * 40, scene: 0, adapters: [], cacheHit: null, inferenceMs: 1, workerId: 'test' });

describe('FrameStreamRepository on a real redis-server', () => {
  let server: TestRedisServer;
  let redis: RedisConnection;

  beforeAll(async () => {
    server = await startRedisServer();
    redis = createRedis(server.url);
  });

  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  it('publishes each frame once although an append is repeated (a command resent after a reconnect)', async () => {
    const stream = new FrameStreamRepository(redis, 1000, 60);
    for (const index of [0, 1, 1, 2, 0, 2, 3]) await stream.append('s1', record(index));
    const entries = await redis.xrange(videoKeys('s1').stream, '-', '+');
    expect(entries.map(([, fields]) => (JSON.parse(fields[1]!) as FrameResult).index)).toEqual([0, 1, 2, 3]);
    // Both keys expire with the video.
    for (const key of [videoKeys('s1').stream, videoKeys('s1').streamLast]) {
      const ttl = await redis.ttl(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(60);
    }
  });

  it('appends a run of records in one call, skipping those already published (a sink taking over mid-run)', async () => {
    const stream = new FrameStreamRepository(redis, 1000, 60);
    expect(await stream.appendAll('s2', [record(0), record(1), record(2)])).toBe(3);
    // A takeover re-appends from its checkpoint (frame 1): only 3 and 4 are new.
    expect(await stream.appendAll('s2', [record(1), record(2), record(3), record(4)])).toBe(2);
    expect(await stream.appendAll('s2', [])).toBe(0);
    const entries = await redis.xrange(videoKeys('s2').stream, '-', '+');
    expect(entries.map(([, fields]) => (JSON.parse(fields[1]!) as FrameResult).index)).toEqual([0, 1, 2, 3, 4]);
    expect(await redis.get(videoKeys('s2').streamLast)).toBe('4');
  });
});

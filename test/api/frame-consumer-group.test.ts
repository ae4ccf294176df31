import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FrameConsumer, type FrameDelivery } from '../../src/client/frame-consumer.js';
import type { FrameResult } from '../../src/shared/frame-store.js';
import { videoKeys } from '../../src/shared/redis-keys.js';
import { VideoStateStore } from '../../src/shared/video-state.js';
import { startRedisServer, type TestRedisServer } from '../helpers/redis-server.js';

const record = (index: number): FrameResult => ({ index, timestampMs: index * 100, scene: 0, adapters: [], cacheHit: null, inferenceMs: 1, workerId: 'w' });

/** FrameConsumer on a stream written by hand (what the sink writes), without the pipeline. */
describe('FrameConsumer: consumer groups over a frame stream', () => {
  let server: TestRedisServer;
  let redis: Redis;
  let states: VideoStateStore;

  beforeAll(async () => {
    server = await startRedisServer();
    redis = new Redis(server.url);
    states = new VideoStateStore(redis, 600);
  });

  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
  });

  async function finishedVideo(videoId: string, frames: number): Promise<void> {
    await states.init(videoId, { outDir: '/tmp/x', submittedAt: Date.now() });
    for (let i = 0; i < frames; i++) await redis.xadd(videoKeys(videoId).stream, '*', 'record', JSON.stringify(record(i)));
    await states.markDone(videoId);
  }

  async function take(consumer: FrameConsumer, n = Number.POSITIVE_INFINITY): Promise<FrameDelivery[]> {
    const got: FrameDelivery[] = [];
    for await (const delivery of consumer) {
      got.push(delivery);
      if (got.length >= n) break;
    }
    return got;
  }

  it('shares records between consumers of a group; another group gets them all again', async () => {
    await finishedVideo('vgroups', 10);
    const reader = redis.duplicate();
    try {
      const a = await take(new FrameConsumer('vgroups', reader, states, 600, { blockMs: 100, group: 'g1', consumer: 'a', count: 4 }), 4);
      const b = await take(new FrameConsumer('vgroups', reader, states, 600, { blockMs: 100, group: 'g1', consumer: 'b', count: 4 }));
      // a broke off after its 4th record without acknowledging it (autoAck acks on the next request).
      expect(a.map((d) => d.record.index)).toEqual([0, 1, 2, 3]);
      expect(b.map((d) => d.record.index)).toEqual([4, 5, 6, 7, 8, 9]);
      const again = await take(new FrameConsumer('vgroups', reader, states, 600, { blockMs: 100, group: 'g1', consumer: 'a' }));
      expect(again.map((d) => [d.record.index, d.redelivered])).toEqual([[3, true]]);
      const other = await take(new FrameConsumer('vgroups', reader, states, 600, { blockMs: 100, group: 'g2', consumer: 'a' }));
      expect(other.map((d) => d.record.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    } finally {
      reader.disconnect();
    }
  });

  it("takes over a dead consumer's unacknowledged records with claimIdleMs", async () => {
    await finishedVideo('vclaim', 6);
    const reader = redis.duplicate();
    try {
      const dead = await take(new FrameConsumer('vclaim', reader, states, 600, { blockMs: 100, group: 'g', consumer: 'dead', count: 6, autoAck: false }), 2);
      await dead[0]!.ack();
      const heir = await take(new FrameConsumer('vclaim', reader, states, 600, { blockMs: 100, group: 'g', consumer: 'heir', claimIdleMs: 0 }));
      expect(heir.map((d) => d.record.index)).toEqual([1, 2, 3, 4, 5]);
      expect(((await redis.xpending(videoKeys('vclaim').stream, 'g')) as [number])[0]).toBe(0);
    } finally {
      reader.disconnect();
    }
  });

  it('ends with E_VIDEO_GONE when the video is cancelled or expired', async () => {
    const reader = redis.duplicate();
    try {
      await expect(take(new FrameConsumer('vgone', reader, states, 600, { blockMs: 50 }))).rejects.toMatchObject({ code: 'E_VIDEO_GONE' });
      // The group was created on a fresh key: it got the video's TTL.
      expect(await redis.ttl(videoKeys('vgone').stream)).toBeGreaterThan(0);
    } finally {
      reader.disconnect();
    }
  });
});

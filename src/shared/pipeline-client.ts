import { Queue } from 'bullmq';
import type { StreamsegConfig } from './config.js';
import { FrameStore } from './frame-store.js';
import { QueueName, queuePrefixFor } from './queues.js';
import { createRedis, waitForRedisReady, type RedisConnection } from './redis.js';
import { VideoStateStore } from './video-state.js';
import { VideoSubmitter } from './video-submitter.js';

/** What a submitting or watching client needs: the queues and the shared video state. */
export class PipelineClient {
  readonly redis: RedisConnection;
  readonly states: VideoStateStore;
  readonly frames: FrameStore;
  readonly queues: { videos: Queue; frames: Queue; sink: Queue };
  readonly submitter: VideoSubmitter;
  private closing?: Promise<void>;

  /**
   * Connects and waits until Redis answers (see waitForRedisReady); a refused connection or an
   * unknown host fails at once with one line: the clients answer a user who is waiting.
   */
  static async connect(config: StreamsegConfig, redisUrl: string): Promise<PipelineClient> {
    const client = new PipelineClient(config, redisUrl);
    try {
      await waitForRedisReady(client.redis, redisUrl, 10_000, { failFast: true });
    } catch (error) {
      await client.close();
      throw error;
    }
    return client;
  }

  private constructor(config: StreamsegConfig, redisUrl: string) {
    this.redis = createRedis(redisUrl, { purpose: 'producer', connectionName: 'streamseg-client' });
    // Connection errors surface as failed commands (and as waitForRedisReady's one line); without
    // listeners, ioredis and every BullMQ queue would print each reconnect attempt's stack trace.
    this.redis.on('error', () => undefined);
    this.states = new VideoStateStore(this.redis, config.frameTtlSeconds);
    this.frames = new FrameStore(this.redis, config.frameTtlSeconds);
    const queue = (name: QueueName) => new Queue(name, { connection: this.redis, prefix: queuePrefixFor(this.redis) }).on('error', () => undefined);
    this.queues = { videos: queue(QueueName.Videos), frames: queue(QueueName.Frames), sink: queue(QueueName.Sink) };
    this.submitter = new VideoSubmitter(this.queues.videos, this.states, config.jobAttempts);
  }

  close(): Promise<void> {
    return (this.closing ??= (async () => {
      await Promise.allSettled(Object.values(this.queues).map((q) => q.close()));
      this.redis.disconnect();
    })());
  }
}

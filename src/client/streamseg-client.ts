import { PipelineClient } from '../shared/pipeline-client.js';
import { loadConfig, type StreamsegConfig } from '../shared/config.js';
import { ErrorCode, StreamsegError } from '../shared/errors/index.js';
import { createRedis, waitForRedisReady } from '../shared/redis.js';
import type { RetrievalOverrides } from '../shared/retrieval-options.js';
import type { VideoState } from '../shared/video-state.js';
import { newVideoId } from '../shared/video-submitter.js';
import path from 'node:path';
import { FrameConsumer, type FrameConsumerOptions, type FrameDelivery } from './frame-consumer.js';

export interface StreamsegClientOptions {
  /** The cluster's Redis. @defaultValue REDIS_URL */
  redisUrl?: string;
  /**
   * A Redis Cluster's seed nodes instead (`host:port,...`, see REDIS_CLUSTER_NODES in config.ts);
   * exclusive with `redisUrl`. @defaultValue REDIS_CLUSTER_NODES
   */
  redisClusterNodes?: string;
  /** Where outputs go, one folder per video (must be writable by the sinks). @defaultValue STREAMSEG_OUT */
  outDir?: string;
}

export interface ClientSubmitOptions {
  fps?: number;
  classes?: string[];
  retrieval?: RetrievalOverrides;
  /** @defaultValue `<outDir>/<video id>` */
  outDir?: string;
}

/**
 * streamseg from Node: submit videos, read their status, and consume their frame records
 * as they are produced.
 *
 * ```ts
 * import { StreamsegClient } from 'streamseg';
 * const client = await StreamsegClient.connect({ redisUrl: 'redis://localhost:6379' });
 * const id = await client.submit('/data/in/street.mp4');
 * for await (const frame of client.frames(id, { group: 'my-app' })) console.log(frame.record.index);
 * await client.close();
 * ```
 */
export class StreamsegClient {
  private readonly opened = new Set<{ disconnect(): void }>();
  private closing?: Promise<void>;

  private constructor(
    private readonly pipeline: PipelineClient,
    private readonly config: StreamsegConfig,
    private readonly redisUrl: string,
  ) {}

  static async connect(options: StreamsegClientOptions = {}): Promise<StreamsegClient> {
    const config = loadConfig({ redisUrl: options.redisUrl, redisClusterNodes: options.redisClusterNodes, outDir: options.outDir, logLevel: 'silent' });
    if (!config.redisUrl) {
      throw new StreamsegError(ErrorCode.CONFIG, 'no Redis URL: pass { redisUrl } or { redisClusterNodes }, or set REDIS_URL or REDIS_CLUSTER_NODES');
    }
    return new StreamsegClient(await PipelineClient.connect(config, config.redisUrl), config, config.redisUrl);
  }

  /** Queues a video (a path the producers can read, or an http/https/rtsp/udp URL); returns its id. */
  async submit(input: string, options: ClientSubmitOptions = {}): Promise<string> {
    const videoId = newVideoId();
    return this.pipeline.submitter.submit(input, {
      videoId,
      outDir: path.resolve(options.outDir ?? path.join(this.config.outDir, videoId)),
      fps: options.fps ?? this.config.fps,
      classes: options.classes,
      retrieval: options.retrieval,
    });
  }

  /** The video's status and progress per stage, or null when Redis does not know it (expired or never submitted). */
  status(videoId: string): Promise<VideoState | null> {
    return this.pipeline.states.get(videoId);
  }

  /**
   * The video's frame records in frame order, through a Redis consumer group: a consumer that
   * restarts (same group and consumer name) resumes where it left off, getting the records it
   * had not acknowledged first. See FrameConsumer for the delivery guarantee.
   */
  frames(videoId: string, options: FrameConsumerOptions = {}): AsyncIterable<FrameDelivery> {
    // The async generator below has its own `this`.
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const client = this;
    return {
      async *[Symbol.asyncIterator]() {
        const connection = createRedis(client.redisUrl, { purpose: 'worker', connectionName: 'streamseg-client-frames' });
        connection.on('error', () => undefined);
        client.opened.add(connection);
        try {
          await waitForRedisReady(connection, client.redisUrl);
          yield* new FrameConsumer(videoId, connection, client.pipeline.states, client.config.frameTtlSeconds, options);
        } finally {
          client.opened.delete(connection);
          connection.disconnect();
        }
      },
    };
  }

  /** Closes every connection (frame iterations in progress end with an error). Idempotent. */
  close(): Promise<void> {
    return (this.closing ??= (async () => {
      for (const connection of this.opened) connection.disconnect();
      await this.pipeline.close();
    })());
  }
}

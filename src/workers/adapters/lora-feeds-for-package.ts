import type { StreamsegConfig } from '../../shared/config.js';
import { FrameStore } from '../../shared/frame-store.js';
import type { Logger } from '../../shared/logger.js';
import type { ModelPackage } from '../../shared/model-manifest.js';
import { createRedis } from '../../shared/redis.js';
import type { RetrievalOverrides } from '../../shared/retrieval-options.js';
import { BaseModelLoraFeeds, type LoraFeedProvider } from '../segmentation/lora-feed.js';
import { createAdapterLoraFeedProvider, packageHasAdapters } from './adapter-lora-feed.js';

export interface LoraFeedsForPackageOptions {
  pkg: ModelPackage;
  config: Pick<StreamsegConfig, 'executionProvider' | 'intraOpThreads' | 'frameTtlSeconds'>;
  redisUrl: string;
  logger: Logger;
  /** Deployment-wide retrieval defaults (jobs may still override them). */
  retrieval?: RetrievalOverrides;
  /** Frames a scene embedding averages. @defaultValue 4 */
  embeddingFrames?: number;
  /** Byte budget of the merged-adapter cache. @defaultValue 64 MiB */
  cacheBytes?: number;
}

export interface LoraFeedsHandle {
  provider: LoraFeedProvider;
  /** `adapters` when the package ships an embedder and adapters, else `base`. */
  kind: 'adapters' | 'base';
  /** Closes the embedder session and the two Redis connections it opened; idempotent. */
  close(): Promise<void>;
}

/**
 * What a segmentation worker feeds: per-scene retrieved and merged adapters when the model
 * package has an embedder and an adapter index, the base model otherwise. Opens its own Redis
 * connections (one for data, one subscribed to adapter changes).
 */
export async function createLoraFeedsForPackage(options: LoraFeedsForPackageOptions): Promise<LoraFeedsHandle> {
  const { pkg, config, logger } = options;
  if (!packageHasAdapters(pkg)) {
    logger.info({ model: pkg.manifest.name }, 'model package has no embedder/adapters: feeding the base model');
    return { provider: new BaseModelLoraFeeds(pkg.manifest.lora.targets), kind: 'base', close: async () => undefined };
  }
  const redis = createRedis(options.redisUrl, { purpose: 'worker', connectionName: 'streamseg-worker-adapters' });
  const subscriber = createRedis(options.redisUrl, { purpose: 'worker', connectionName: 'streamseg-worker-adapters-sub' });
  for (const connection of [redis, subscriber]) connection.on('error', (error) => logger.warn({ err: error }, 'redis connection error (adapters)'));
  try {
    const provider = await createAdapterLoraFeedProvider({
      pkg,
      redis,
      subscriber,
      frameStore: new FrameStore(redis, config.frameTtlSeconds),
      embedder: { executionProvider: config.executionProvider, intraOpThreads: config.intraOpThreads },
      sceneEmbedding: { frames: options.embeddingFrames, ttlSeconds: config.frameTtlSeconds },
      cacheBytes: options.cacheBytes,
      retrieval: options.retrieval,
      logger,
    });
    let closing: Promise<void> | undefined;
    return {
      provider,
      kind: 'adapters',
      close: () =>
        (closing ??= (async () => {
          await provider.close().catch((error: unknown) => logger.warn({ err: error }, 'error while closing the adapter feed provider'));
          subscriber.disconnect();
          redis.disconnect();
        })()),
    };
  } catch (error) {
    subscriber.disconnect();
    redis.disconnect();
    throw error;
  }
}

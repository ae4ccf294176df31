import type { Logger } from '../shared/logger.js';
import { retrievalDefaultsFromConfig, type StreamsegConfig } from '../shared/config.js';
import { loadModelPackage } from '../shared/model-manifest.js';
import { metricsRegistry } from '../shared/metrics.js';
import { MetricsPublisher } from '../shared/metrics-publisher.js';
import { tunePipelineHeap } from '../shared/pipeline-heap.js';
import { SourceFrameHandoffs } from '../shared/source-frame-handoff.js';
import { createRedis } from '../shared/redis.js';
import { startProducer } from '../producers/producer.worker.js';
import { startSegmentationWorker } from '../workers/segmentation/segmentation.worker.js';
import { startSink } from '../workers/sink/sink.worker.js';
import { createLoraFeedsForPackage } from '../workers/adapters/lora-feeds-for-package.js';

export const ROLES = ['producer', 'worker', 'sink'] as const;
export type Role = (typeof ROLES)[number];

export interface RunningRoles {
  /** Closes every role in reverse start order; idempotent. */
  close(): Promise<void>;
}

/** Starts the given roles in this process against one Redis; the model package is loaded once. */
export async function startRoles(roles: readonly Role[], context: { config: StreamsegConfig; redisUrl: string; logger: Logger }): Promise<RunningRoles> {
  const { config, redisUrl, logger } = context;
  tunePipelineHeap();
  const modelPackage = await loadModelPackage(config.modelDir);
  // A producer and a sink in one process share the decode of a file (SourceFrameHandoff).
  const sharesDecode = roles.includes('producer') && roles.includes('sink') && config.sourceFrames === 'sink' && config.sourceHandoffBytes > 0;
  const sourceHandoffs = sharesDecode ? new SourceFrameHandoffs(config.sourceHandoffBytes) : undefined;
  const handoffs = sourceHandoffs ? { sourceHandoffs } : {};
  const started: { close(): Promise<void> }[] = [];
  try {
    for (const role of roles) {
      if (role === 'producer') {
        started.push(
          await startProducer({
            config,
            redisUrl,
            logger,
            modelInput: modelPackage.manifest.input,
            concurrency: config.producerConcurrency,
            ...handoffs,
          }),
        );
      } else if (role === 'worker') {
        // Closed after the worker (started in reverse): the worker may still ask for feeds while draining.
        const lora = await createLoraFeedsForPackage({
          pkg: modelPackage,
          config,
          redisUrl,
          logger: logger.child({ role }),
          retrieval: retrievalDefaultsFromConfig(config),
          embeddingFrames: config.embeddingFrames,
          cacheBytes: config.adapterCacheBytes,
        });
        started.push(lora);
        started.push(await startSegmentationWorker({ config, redisUrl, logger, modelPackage, loraFeeds: lora.provider }));
      } else {
        started.push(await startSink({ config, redisUrl, logger, modelPackage, ...handoffs }));
      }
    }
  } catch (error) {
    await Promise.allSettled(started.reverse().map((r) => r.close()));
    throw error;
  }
  if (config.metricsPublishMs > 0) {
    // Started last, closed first (with a final snapshot): the API's /metrics sums every process.
    const connection = createRedis(redisUrl, { purpose: 'worker', connectionName: 'streamseg-metrics' });
    connection.on('error', (error) => logger.debug({ err: error }, 'metrics connection error'));
    const publisher = new MetricsPublisher({ redis: connection, registry: metricsRegistry, intervalMs: config.metricsPublishMs }).start();
    started.push({
      close: async () => {
        await publisher.close();
        connection.disconnect();
      },
    });
  }
  let closing: Promise<void> | undefined;
  return {
    close: () =>
      (closing ??= (async () => {
        for (const role of [...started].reverse()) await role.close().catch((e: unknown) => logger.warn({ err: e }, 'close failed'));
      })()),
  };
}

import os from 'node:os';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { jobLockOptions, type StreamsegConfig } from '../../shared/config.js';
import { errorCodeOf, jobFailure } from '../../shared/errors/index.js';
import { FrameStore } from '../../shared/frame-store.js';
import type { Logger } from '../../shared/logger.js';
import { jobFailures } from '../../shared/metrics.js';
import type { ModelPackage } from '../../shared/model-manifest.js';
import { JobName, QueueName, assertHandlersComplete, queuePrefixFor } from '../../shared/queues.js';
import { createRedis } from '../../shared/redis.js';
import { VideoStateStore } from '../../shared/video-state.js';
import { BaseModelLoraFeeds, type LoraFeedProvider } from './lora-feed.js';
import { OnnxSessionRepository } from './onnx-session.repository.js';
import { SceneGuardStore } from './scene-guard.store.js';
import { SegmentationService, type SegmentSummary } from './segmentation.service.js';

export interface StartSegmentationWorkerOptions {
  config: StreamsegConfig;
  redisUrl: string;
  logger: Logger;
  modelPackage: ModelPackage;
  /** Chooses LoRA inputs per batch. @defaultValue the base model (zero adapters) */
  loraFeeds?: LoraFeedProvider;
  /** Recorded in every frame result. @defaultValue `<hostname>:<pid>` */
  workerId?: string;
}

export interface SegmentationWorkerHandle {
  /** Stops taking jobs, lets running batches finish, frees the session and connections. Idempotent. */
  close(): Promise<void>;
  /** The underlying BullMQ worker, for events and tests. */
  readonly worker: Worker;
  /** Execution provider the session actually runs on. */
  readonly provider: 'cpu' | 'cuda';
}

/**
 * Starts a segmentation worker: loads the model once (`config.inferenceThreads` ONNX Runtime
 * sessions on their own threads, shared by every job of this process) and consumes the frames queue with `config.workerConcurrency` jobs
 * at once. Throws ModelError when the model cannot be loaded or does not match its manifest.
 */
export async function startSegmentationWorker(options: StartSegmentationWorkerOptions): Promise<SegmentationWorkerHandle> {
  const { config, redisUrl, modelPackage } = options;
  const logger = options.logger.child({ role: 'worker' });
  assertHandlersComplete(QueueName.Frames, [JobName.SegmentFrames]);

  const session = await OnnxSessionRepository.load(modelPackage, {
    executionProvider: config.executionProvider,
    intraOpThreads: config.intraOpThreads,
    threads: config.inferenceThreads,
    logger,
  });
  const workerConnection = createRedis(redisUrl, { purpose: 'worker', connectionName: 'streamseg-worker' });
  const dataConnection = createRedis(redisUrl, { purpose: 'worker', connectionName: 'streamseg-worker-data' });
  for (const connection of [workerConnection, dataConnection]) {
    connection.on('error', (error) => logger.warn({ err: error }, 'redis connection error'));
  }
  const service = new SegmentationService({
    session,
    frameStore: new FrameStore(dataConnection, config.frameTtlSeconds),
    states: new VideoStateStore(dataConnection, config.frameTtlSeconds),
    loraFeeds: options.loraFeeds ?? new BaseModelLoraFeeds(modelPackage.manifest.lora.targets),
    guards: new SceneGuardStore(dataConnection, config.frameTtlSeconds),
    manifest: modelPackage.manifest,
    workerId: options.workerId ?? `${os.hostname()}:${process.pid}`,
    logger,
  });

  const processor = async (job: Job): Promise<SegmentSummary> => {
    if (job.name !== JobName.SegmentFrames) throw new UnrecoverableError(`queue ${QueueName.Frames} has no handler for job "${job.name}"`);
    try {
      return await service.segment(job);
    } catch (error) {
      jobFailures.inc({ queue: QueueName.Frames, code: errorCodeOf(error) });
      // Retried unless the catalogue says no attempt can fix it; the failed reason keeps the code.
      throw jobFailure(error);
    }
  };

  const worker = new Worker(QueueName.Frames, processor, {
    connection: workerConnection,
    prefix: queuePrefixFor(workerConnection),
    concurrency: config.workerConcurrency,
    // A worker killed mid-batch holds the job until its lock expires; the next stalled check
    // (by any worker) puts it back, and another worker runs it again (results are idempotent).
    ...jobLockOptions(config),
    autorun: false,
  });
  worker.on('error', (error) => logger.error({ err: error }, 'segmentation worker error'));
  worker.on('failed', (job, error) => logger.warn({ jobId: job?.id, attempts: job?.attemptsMade, reason: error.message }, 'frames job failed'));
  void worker.run().catch((error: unknown) => logger.error({ err: error }, 'segmentation worker stopped'));
  await worker.waitUntilReady();
  logger.info({ concurrency: config.workerConcurrency, provider: session.provider }, 'segmentation worker started');

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      // Fixed order: finish running batches (seconds at most), then free the model, then Redis.
      const results = await Promise.allSettled([worker.close()]);
      results.push(...(await Promise.allSettled([session.release()])));
      workerConnection.disconnect();
      dataConnection.disconnect();
      for (const result of results) {
        if (result.status === 'rejected') logger.warn({ err: result.reason }, 'error while closing segmentation worker');
      }
      logger.info('segmentation worker stopped');
    })());
  return { close, worker, provider: session.provider };
}

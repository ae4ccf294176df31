import path from 'node:path';
import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import { jobLockOptions, type StreamsegConfig } from '../../shared/config.js';
import { errorCodeOf, jobFailure } from '../../shared/errors/index.js';
import { FrameStore } from '../../shared/frame-store.js';
import type { Logger } from '../../shared/logger.js';
import type { SourceFrameHandoffs } from '../../shared/source-frame-handoff.js';
import { jobFailures } from '../../shared/metrics.js';
import type { ModelPackage } from '../../shared/model-manifest.js';
import { JobName, QueueName, assertHandlersComplete, queuePrefixFor } from '../../shared/queues.js';
import { createRedis } from '../../shared/redis.js';
import { VideoStateStore } from '../../shared/video-state.js';
import { FrameStreamRepository } from './frame-stream.repository.js';
import { OverlayRepository } from './overlay.repository.js';
import { concatSegments } from './segment-concat.repository.js';
import { SinkCheckpointStore } from './sink-checkpoint.store.js';
import { SinkService, type SinkSettings, type SinkSummary } from './sink.service.js';
import { SourceDecoderRepository } from './source-decoder.repository.js';
import { VideoEncoderRepository } from './video-encoder.repository.js';

export interface StartSinkOptions {
  config: StreamsegConfig;
  redisUrl: string;
  logger: Logger;
  /** Supplies the class names and palette of the masks. */
  modelPackage: ModelPackage;
  /**
   * Videos assembled at once by this process; each holds one ffmpeg encoder and one
   * blocking Redis connection while it runs. @defaultValue 2
   */
  concurrency?: number;
  /** @defaultValue `ffmpeg` from PATH */
  ffmpegPath?: string;
  /** Tuning for tests; the defaults suit production. */
  settings?: SinkSettings;
  /** Outputs are written only under this directory. @defaultValue `config.outDir` (STREAMSEG_OUT) */
  outputRoot?: string;
  /** Source frames the producer of this process hands over (SinkDependencies). @defaultValue none */
  sourceHandoffs?: SourceFrameHandoffs;
}

export interface SinkHandle {
  /** Stops taking videos, hands the ones in progress back, closes connections. Idempotent. */
  close(): Promise<void>;
  /** The underlying BullMQ worker, for events and tests. */
  readonly worker: Worker;
}

const SHUTDOWN = 'sink shutting down';
const REQUEUE_DELAY_MS = 1000;

/**
 * Starts the sink role: a BullMQ worker on the sink queue, one job per video (job id =
 * video id, so one owner). A video's job stays active for as long as the video is
 * processed; BullMQ renews its lock in the background, and a sink that dies loses the lock
 * after `lockDuration` so another sink can see the job stalled.
 *
 * `close()` interrupts videos in progress and hands them back to the queue (delayed, no
 * attempt used); whichever sink takes one resumes it from its last checkpoint. A sink killed
 * outright is recovered the same way once its lock expires (STREAMSEG_LOCK_DURATION_MS).
 */
export async function startSink(options: StartSinkOptions): Promise<SinkHandle> {
  const { config, redisUrl, modelPackage } = options;
  const logger = options.logger.child({ role: 'sink' });
  assertHandlersComplete(QueueName.Sink, [JobName.AssembleVideo]);

  const workerConnection = createRedis(redisUrl, { purpose: 'worker', connectionName: 'streamseg-sink' });
  const dataConnection = createRedis(redisUrl, { purpose: 'worker', connectionName: 'streamseg-sink-data' });
  for (const connection of [workerConnection, dataConnection]) {
    connection.on('error', (error) => logger.warn({ err: error }, 'redis connection error'));
  }
  const classes = modelPackage.manifest.classes;
  const service = new SinkService({
    frameStore: new FrameStore(dataConnection, config.frameTtlSeconds),
    states: new VideoStateStore(dataConnection, config.frameTtlSeconds),
    stream: new FrameStreamRepository(dataConnection, config.streamMaxLen, config.frameTtlSeconds),
    overlay: new OverlayRepository(
      classes.map((c) => c.color),
      config.overlayAlpha,
    ),
    checkpoints: new SinkCheckpointStore(dataConnection, config.frameTtlSeconds),
    sourceDecoder: new SourceDecoderRepository(options.ffmpegPath),
    ...(options.sourceHandoffs ? { sourceHandoffs: options.sourceHandoffs } : {}),
    createEncoder: (encoder) => new VideoEncoderRepository({ ...encoder, preset: config.encoderPreset, ffmpegPath: options.ffmpegPath }),
    joinSegments: (segments, output, media) => concatSegments(segments, output, options.ffmpegPath, media),
    outputRoot: path.resolve(options.outputRoot ?? config.outDir),
    openBlockingConnection: () => createRedis(redisUrl, { purpose: 'worker', connectionName: 'streamseg-sink-wait' }),
    classNames: classes.map((c) => c.name),
    settings: { segmentFrames: config.sinkSegmentFrames, ...options.settings },
    live: { hlsListSize: config.liveHlsListSize, frameTtlSeconds: config.frameTtlSeconds },
    logger,
  });

  const processor = async (job: Job, token?: string, signal?: AbortSignal): Promise<SinkSummary> => {
    if (job.name !== JobName.AssembleVideo) throw new UnrecoverableError(`queue ${QueueName.Sink} has no handler for job "${job.name}"`);
    try {
      return await service.assemble(job, signal);
    } catch (error) {
      if (signal?.aborted && signal.reason === SHUTDOWN) {
        // Back to the queue without using an attempt; the next sink resumes from the checkpoint.
        await job.moveToDelayed(Date.now() + REQUEUE_DELAY_MS, token);
        throw new DelayedError();
      }
      jobFailures.inc({ queue: QueueName.Sink, code: errorCodeOf(error) });
      throw jobFailure(error);
    }
  };

  const concurrency = options.concurrency ?? 2;
  const worker = new Worker(QueueName.Sink, processor, {
    connection: workerConnection,
    prefix: queuePrefixFor(workerConnection),
    concurrency,
    // A video keeps its job active for minutes; the lock is renewed every lockDuration/2. A sink
    // that dies loses it after lockDuration, and a stalled check hands the video to another sink.
    ...jobLockOptions(config),
    autorun: false,
  });
  worker.on('error', (error) => logger.error({ err: error }, 'sink worker error'));
  worker.on('failed', (job, error) => {
    if (error instanceof DelayedError || error.name === 'DelayedError') return;
    logger.warn({ jobId: job?.id, reason: error.message }, 'sink job failed');
  });
  void worker.run().catch((error: unknown) => logger.error({ err: error }, 'sink worker stopped'));
  await worker.waitUntilReady();
  logger.info({ concurrency }, 'sink started');

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      // Fixed order: interrupt videos, let their processors requeue or fail them, then drop connections.
      worker.cancelAllJobs(SHUTDOWN);
      const results = await Promise.allSettled([worker.close()]);
      workerConnection.disconnect();
      dataConnection.disconnect();
      for (const result of results) {
        if (result.status === 'rejected') logger.warn({ err: result.reason }, 'error while closing sink');
      }
      logger.info('sink stopped');
    })());
  return { close, worker };
}

import { DelayedError, Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { jobLockOptions, type StreamsegConfig } from '../shared/config.js';
import { ErrorCode, errorLine, jobFailure } from '../shared/errors/index.js';
import { FrameStore } from '../shared/frame-store.js';
import { videoIdSchema } from '../shared/job-schemas.js';
import type { SourceFrameHandoffs } from '../shared/source-frame-handoff.js';
import type { Logger } from '../shared/logger.js';
import { JobName, QueueName, assertHandlersComplete, queuePrefixFor } from '../shared/queues.js';
import { createRedis } from '../shared/redis.js';
import { VideoStateStore } from '../shared/video-state.js';
import { FfmpegRepository } from './ffmpeg.repository.js';
import { UrlDestinationPolicy } from '../shared/url-policy.js';
import { ProducerService, type DecodeSummary } from './producer.service.js';
import { LiveFrameLog } from '../shared/live-frame-log.js';
import { LiveFfmpegRepository } from './live-ffmpeg.repository.js';
import { LiveProducerService, type LiveSummary } from './live-producer.service.js';
import { isLiveJob } from './live-source.js';
import { LiveFilePools } from './live-file-pools.js';
import { redactText } from '../shared/redact-credentials.js';
import type { ModelInputSpec } from '../shared/model-input-plan.js';

export interface StartProducerOptions {
  config: StreamsegConfig;
  redisUrl: string;
  logger: Logger;
  /** Model input size (manifest `input.width/height`). */
  modelInput: ModelInputSpec;
  /**
   * File videos decoded at once by this process. Each runs one ffmpeg process; decoding is
   * usually far faster than segmentation, so one is plenty. @defaultValue 1
   */
  concurrency?: number;
  /** Live videos read at once, in their own pool. @defaultValue config.producerLiveConcurrency (2) */
  liveConcurrency?: number;
  /** Defaults to the ffmpeg/ffprobe on PATH. */
  ffmpeg?: FfmpegRepository;
  /** Where a file's source frames go to the sink of this process (see ProducerDependencies). @defaultValue none */
  sourceHandoffs?: SourceFrameHandoffs;
}

export interface ProducerHandle {
  /** Stops taking videos, hands the ones being decoded back to the queue, closes connections. Idempotent. */
  close(): Promise<void>;
  /** The underlying BullMQ worker, for events and tests. */
  readonly worker: Worker;
}

/** Reason passed to the abort signal of jobs interrupted by `close()`. */
const SHUTDOWN = 'producer shutting down';
/** An interrupted video waits this long before another producer (or this one, restarted) takes it. */
const REQUEUE_DELAY_MS = 1000;
/** A live video that finds the live pool full goes back to the queue for this long. */
const LIVE_POOL_FULL_DELAY_MS = 2000;
/** How often videos being decoded are checked for a cancel tombstone. */
const CANCEL_POLL_MS = 250;

/**
 * Starts the producer role: a BullMQ worker on the videos queue running `ProducerService`.
 * `close()` on SIGTERM hands videos in progress back (delayed, no attempt used) instead of
 * waiting for whole videos; the next producer resumes after the frames the sink has written.
 */
export async function startProducer(options: StartProducerOptions): Promise<ProducerHandle> {
  const { config, redisUrl, modelInput } = options;
  const logger = options.logger.child({ role: 'producer' });
  const handled = [JobName.DecodeVideo];
  assertHandlersComplete(QueueName.Videos, handled);

  // Workers block and must retry forever; the queues the producer adds to fail fast instead
  // of buffering frames jobs in memory while Redis is away.
  const workerConnection = createRedis(redisUrl, { purpose: 'worker', connectionName: 'streamseg-producer' });
  const queueConnection = createRedis(redisUrl, { purpose: 'producer', connectionName: 'streamseg-producer-queues' });
  for (const connection of [workerConnection, queueConnection]) {
    connection.on('error', (error) => logger.warn({ err: error }, 'redis connection error'));
  }
  const framesQueue = new Queue(QueueName.Frames, { connection: queueConnection, prefix: queuePrefixFor(queueConnection) });
  const sinkQueue = new Queue(QueueName.Sink, { connection: queueConnection, prefix: queuePrefixFor(queueConnection) });
  for (const queue of [framesQueue, sinkQueue]) {
    queue.on('error', (error) => logger.warn({ err: error, queue: queue.name }, 'queue error'));
  }

  const states = new VideoStateStore(queueConnection, config.frameTtlSeconds);
  // Videos being decoded here, watched for a cancel (DELETE /v1/videos/:id sets a tombstone).
  const watched = new Set<string>();
  const urlPolicy = new UrlDestinationPolicy(config.urlAllow);
  const service = new ProducerService({
    ffmpeg: options.ffmpeg ?? new FfmpegRepository({ urlPolicy }),
    frameStore: new FrameStore(queueConnection, config.frameTtlSeconds),
    states,
    queues: { frames: framesQueue, sink: sinkQueue },
    settings: config,
    modelInput,
    logger,
    ...(options.sourceHandoffs ? { sourceHandoffs: options.sourceHandoffs } : {}),
  });
  // Live videos (rtsp/udp/HLS URLs, or options.live): streamed as frames arrive, never paused.
  const liveService = new LiveProducerService({
    ffmpeg: new LiveFfmpegRepository(),
    frameStore: new FrameStore(queueConnection, config.frameTtlSeconds),
    states,
    liveLog: new LiveFrameLog(queueConnection, config.frameTtlSeconds),
    queues: { frames: framesQueue, sink: sinkQueue },
    settings: config,
    modelInput,
    logger,
    urlPolicy,
  });

  const pools = new LiveFilePools(options.concurrency ?? 1, options.liveConcurrency ?? config.producerLiveConcurrency ?? 2);
  const processor = async (job: Job<{ videoId?: string } | undefined>, token?: string, signal?: AbortSignal): Promise<DecodeSummary | LiveSummary> => {
    if (job.name !== JobName.DecodeVideo) throw new UnrecoverableError(`queue ${QueueName.Videos} has no handler for job "${job.name}"`);
    const watchId = job.id ?? '';
    if (await states.isCancelled(watchId)) throw new UnrecoverableError(`${ErrorCode.CANCELLED}: the video was cancelled before decoding started`);
    const live = isLiveJob(job.data);
    if (live && !pools.tryTakeLive()) {
      // The live pool is full: back to the queue (no attempt used) instead of holding a file slot.
      await job.moveToDelayed(Date.now() + LIVE_POOL_FULL_DELAY_MS, token);
      throw new DelayedError();
    }
    watched.add(watchId);
    let fileSlot = false;
    try {
      if (!live) {
        await pools.takeFile(signal);
        fileSlot = true;
      }
      return await (live ? liveService.run(job, signal) : service.decodeVideo(job, signal));
    } catch (error) {
      if (signal?.aborted && signal.reason === SHUTDOWN) {
        // Back to the queue without using an attempt; DelayedError tells BullMQ we moved it.
        await job.moveToDelayed(Date.now() + REQUEUE_DELAY_MS, token);
        throw new DelayedError();
      }
      if (signal?.aborted) {
        // Cancelled on purpose (Worker.cancelJob): final, and the video says why.
        const line = `${ErrorCode.CANCELLED}: decoding cancelled (${String(signal.reason)})`;
        const videoId = videoIdSchema.safeParse(job.data?.videoId);
        if (videoId.success) await states.markFailed(videoId.data, line).catch(() => undefined);
        throw new UnrecoverableError(line);
      }
      // The failed reason is what `streamseg status` and the CLI show: keep the error code in it, never a URL's credentials.
      const line = redactText(errorLine(error));
      throw jobFailure(error, line);
    } finally {
      watched.delete(watchId);
      if (live) pools.releaseLive();
      if (fileSlot) pools.releaseFile();
    }
  };

  const worker = new Worker(QueueName.Videos, processor, {
    connection: workerConnection,
    prefix: queuePrefixFor(workerConnection),
    // Both pools' slots; the processor keeps files and live videos each within their own.
    concurrency: pools.total,
    // A long video keeps its job active for minutes; the lock is renewed in the background, and
    // a producer that dies loses it after lockDuration: the next stalled check requeues the video.
    ...jobLockOptions(config),
    autorun: false,
  });
  worker.on('error', (error) => logger.error({ err: error }, 'producer worker error'));
  worker.on('failed', (job, error) => logger.warn({ jobId: job?.id, reason: redactText(error.message) }, 'decode job failed'));
  void worker.run().catch((error: unknown) => logger.error({ err: error }, 'producer worker stopped'));
  await worker.waitUntilReady();
  // A cancelled video aborts its job through the same signal as Worker.cancelJob (E_CANCELLED above).
  const cancelWatch = setInterval(() => {
    for (const id of watched) {
      states.isCancelled(id).then(
        (cancelled) => cancelled && worker.cancelJob(id, 'cancelled through the API'),
        (error: unknown) => logger.debug({ err: error }, 'cancel check failed'),
      );
    }
  }, CANCEL_POLL_MS);
  cancelWatch.unref();
  logger.info({ concurrency: pools.fileSlots, liveConcurrency: pools.liveSlots }, 'producer started');

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      // Fixed order: interrupt decodes, let their processors requeue them, then drop connections.
      clearInterval(cancelWatch);
      worker.cancelAllJobs(SHUTDOWN);
      const results = await Promise.allSettled([worker.close()]);
      results.push(...(await Promise.allSettled([framesQueue.close(), sinkQueue.close()])));
      workerConnection.disconnect();
      queueConnection.disconnect();
      for (const result of results) {
        if (result.status === 'rejected') logger.warn({ err: result.reason }, 'error while closing producer');
      }
      logger.info('producer stopped');
    })());
  return { close, worker };
}

import { ErrorCode, errorCodeOf, errorLine, isLastAttempt } from '../../shared/errors/index.js';
import { assembleVideoJobSchema, parseJob } from '../../shared/job-schemas.js';
import type { Logger } from '../../shared/logger.js';
import { assertUnderOutputRoot } from '../../shared/output-root.js';
import { QueueName } from '../../shared/queues.js';
import { VideoAssembly } from './video-assembly.js';
import { LiveAssembly } from './live-assembly.js';
import type { SinkDependencies, SinkJobHandle, SinkSettings, SinkSummary } from './sink-types.js';

export { OUTPUT_FILES } from '../../shared/output-layout.js';
export type { FrameEncoder, LiveSinkSettings, SinkDependencies, SinkJobHandle, SinkSettings, SinkSummary } from './sink-types.js';

/**
 * Assembles one video (one owner: the sink job id is the video id): takes the results in
 * frame order, overlays each on its source frame, encodes annotated.mp4 in checkpointed
 * segments, writes masks.ndjson, publishes each record on the video's Redis Stream, and writes
 * report.json at the end (see VideoAssembly). Every frame is emitted exactly once, in order,
 * whatever order and however many times the workers delivered it.
 *
 * A sink that dies or stops mid-video loses nothing: frames stay in Redis until checkpointed,
 * and the next attempt, on any sink sharing the output directory, resumes from the checkpoint.
 */
export class SinkService {
  private readonly tuning: Required<SinkSettings>;

  constructor(private readonly deps: SinkDependencies) {
    const settings = deps.settings ?? {};
    this.tuning = {
      lookahead: settings.lookahead ?? 16,
      sinkFramesEvery: settings.sinkFramesEvery ?? 4,
      waitSeconds: settings.waitSeconds ?? 1,
      statusCheckMs: settings.statusCheckMs ?? 1000,
      segmentFrames: settings.segmentFrames ?? 256,
    };
    if (!(this.tuning.lookahead >= 1)) throw new RangeError('lookahead must be at least 1');
    if (!(this.tuning.sinkFramesEvery >= 1)) throw new RangeError('sinkFramesEvery must be at least 1');
    if (!(this.tuning.waitSeconds > 0)) throw new RangeError('waitSeconds must be greater than 0');
    if (!(this.tuning.segmentFrames >= 1)) throw new RangeError('segmentFrames must be at least 1');
  }

  async assemble(job: SinkJobHandle, signal?: AbortSignal): Promise<SinkSummary> {
    const data = parseJob(assembleVideoJobSchema, QueueName.Sink, job.data);
    const { videoId } = data;
    const log = this.deps.logger.child({ videoId });
    let outDir: string;
    try {
      outDir = this.deps.outputRoot ? await assertUnderOutputRoot(data.outDir, this.deps.outputRoot) : data.outDir;
    } catch (error) {
      // Nothing was written (and nothing outside the root is ever touched, not even to clean up).
      throw (await this.failure(videoId, job, error, log, signal)).error;
    }
    // A live video (the producer says so with its probe facts) streams instead: LiveAssembly.
    const live = (await this.deps.states.get(videoId))?.live === true;
    const attempt = { videoId, data, outDir, job, log, signal };
    const run = live ? new LiveAssembly(this.deps, this.tuning, attempt) : new VideoAssembly(this.deps, this.tuning, attempt);
    try {
      return await run.execute();
    } catch (error) {
      const final = await this.failure(videoId, job, error, log, signal);
      await run.cleanUp(final.final);
      throw final.error;
    }
  }

  /**
   * Decides what a failure means for the video. A stop on shutdown, a lost lock or an attempt
   * that will be retried keeps the partial outputs: the next attempt resumes from the
   * checkpoint. The video is marked failed only when no attempt is left.
   */
  private async failure(videoId: string, job: SinkJobHandle, error: unknown, log: Logger, signal?: AbortSignal): Promise<{ error: unknown; final: boolean }> {
    const code = errorCodeOf(error);
    if (code === ErrorCode.VIDEO_FAILED || code === ErrorCode.VIDEO_GONE) {
      log.warn({ reason: errorLine(error) }, 'video failed elsewhere; sink stopped');
      return { error, final: true };
    }
    if (code === ErrorCode.SINK_OWNER_LOST) {
      log.warn({ reason: errorLine(error) }, 'video taken over by another sink');
      return { error, final: false };
    }
    if (signal?.aborted) {
      log.info({ reason: String(signal.reason) }, 'sink stopped; the video resumes from its last checkpoint');
      return { error, final: false };
    }
    const lastAttempt = isLastAttempt(error, job);
    log.warn({ err: error, lastAttempt }, 'sink failed');
    if (lastAttempt) {
      await this.deps.states.markFailed(videoId, errorLine(error)).catch((cause: unknown) => log.error({ err: cause }, 'cannot mark video failed'));
    }
    return { error, final: lastAttempt };
  }
}

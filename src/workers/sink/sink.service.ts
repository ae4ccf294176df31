import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { FrameError, StreamsegError, errorLine } from '../../shared/errors/index.js';
import type { FrameResult, FrameStore } from '../../shared/frame-store.js';
import { assembleVideoJobSchema, parseJob } from '../../shared/job-schemas.js';
import { MaskUnletterboxer } from '../../shared/letterbox.js';
import type { Logger } from '../../shared/logger.js';
import { framesProcessed, stageSeconds } from '../../shared/metrics.js';
import { QueueName } from '../../shared/queues.js';
import type { VideoProbeFacts, VideoState, VideoStateStore } from '../../shared/video-state.js';
import type { FrameStreamRepository } from './frame-stream.repository.js';
import { MaskWriter } from './mask-writer.js';
import type { OverlayRepository } from './overlay.repository.js';
import { ReorderBuffer } from './reorder-buffer.js';
import { SceneTracker, buildReport, type VideoReport } from './report-builder.js';

/** What the sink needs of an encoder (VideoEncoderRepository in production). */
export interface FrameEncoder {
  write(frame: Uint8Array): Promise<void>;
  finish(): Promise<void>;
  abort(): Promise<void>;
}

export interface SinkJobHandle {
  data: unknown;
  attemptsMade: number;
  opts: { attempts?: number };
  updateProgress(progress: number | object): Promise<void>;
}

export interface SinkSettings {
  /** Results fetched ahead of the next frame in one round of requests. @defaultValue 16 */
  lookahead?: number;
  /** `sinkFrames` (the producer's backpressure signal) is written at least this often. @defaultValue 4 */
  sinkFramesEvery?: number;
  /** Seconds one BLPOP waits for workers before the sink re-checks the video. @defaultValue 1 */
  waitSeconds?: number;
  /** How often the video's status is re-read while frames keep coming. @defaultValue 1000 */
  statusCheckMs?: number;
}

export interface SinkDependencies {
  frameStore: FrameStore;
  states: VideoStateStore;
  stream: FrameStreamRepository;
  overlay: OverlayRepository;
  createEncoder(options: { file: string; width: number; height: number; fps: number }): FrameEncoder;
  /** A dedicated connection per video: BLPOP holds its connection while it waits. */
  openBlockingConnection(): Redis;
  /** Mask value → class name (manifest.classes order). */
  classNames: readonly string[];
  settings?: SinkSettings;
  logger: Logger;
}

export interface SinkSummary {
  videoId: string;
  frames: number;
  scenes: number;
  outDir: string;
}

export const OUTPUT_FILES = { video: 'annotated.mp4', masks: 'masks.ndjson', report: 'report.json' } as const;

/** Codes after which another attempt cannot succeed. */
export const PERMANENT_SINK_CODES = new Set(['E_JOB_PAYLOAD', 'E_VIDEO_FAILED', 'E_VIDEO_GONE', 'E_SINK_INTERRUPTED', 'E_SINK_RESUME', 'E_FRAME_SIZE']);

type ProbedState = VideoState & VideoProbeFacts;

/**
 * Assembles one video (one owner: the sink job id is the video id): takes the results in
 * frame order, overlays each on its source frame, encodes annotated.mp4, writes masks.ndjson,
 * publishes each record on the video's Redis Stream, frees the frame's keys, and writes
 * report.json at the end. Every frame is emitted exactly once, in order, whatever order and
 * however many times the workers delivered it.
 *
 * Frames are deleted from Redis once written, so a sink that stops mid-video cannot be
 * resumed by another attempt: that ends the video with E_SINK_INTERRUPTED instead of a
 * silently truncated output.
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
    };
    if (!(this.tuning.lookahead >= 1)) throw new RangeError('lookahead must be at least 1');
    if (!(this.tuning.sinkFramesEvery >= 1)) throw new RangeError('sinkFramesEvery must be at least 1');
    if (!(this.tuning.waitSeconds > 0)) throw new RangeError('waitSeconds must be greater than 0');
  }

  async assemble(job: SinkJobHandle, signal?: AbortSignal): Promise<SinkSummary> {
    const data = parseJob(assembleVideoJobSchema, QueueName.Sink, job.data);
    const { videoId } = data;
    const log = this.deps.logger.child({ videoId });
    const run = new VideoAssembly(this.deps, this.tuning, videoId, data.outDir, job, log, signal);
    try {
      return await run.execute();
    } catch (error) {
      await run.cleanUp();
      throw await this.failure(videoId, job, error, run.framesWritten, log, signal);
    }
  }

  /**
   * Decides what a failure means for the video. Once frames are written (and deleted from
   * Redis) nothing can redo them: the video fails now. Before that, another attempt may
   * succeed, and the video is only marked failed when no attempt is left.
   */
  private async failure(videoId: string, job: SinkJobHandle, error: unknown, framesWritten: number, log: Logger, signal?: AbortSignal): Promise<unknown> {
    const code = error instanceof StreamsegError ? error.code : 'E_INTERNAL';
    if (code === 'E_VIDEO_FAILED' || code === 'E_VIDEO_GONE') {
      log.warn({ reason: errorLine(error) }, 'video failed elsewhere; sink stopped');
      return error;
    }
    let final = error;
    if (framesWritten > 0 && !PERMANENT_SINK_CODES.has(code)) {
      const why = signal?.aborted ? `sink stopped (${String(signal.reason)})` : errorLine(error);
      final = new StreamsegError(
        'E_SINK_INTERRUPTED',
        `${why} after writing ${framesWritten} frame(s); written frames are gone from Redis, so the outputs cannot be completed: submit the video again`,
        { cause: error },
      );
    }
    const finalCode = final instanceof StreamsegError ? final.code : code;
    const lastAttempt = PERMANENT_SINK_CODES.has(finalCode) || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    const shutdown = signal?.aborted === true && framesWritten === 0;
    log.warn({ err: final, lastAttempt, shutdown }, 'sink failed');
    if (lastAttempt && !shutdown) {
      await this.deps.states.markFailed(videoId, errorLine(final)).catch((cause: unknown) => log.error({ err: cause }, 'cannot mark video failed'));
    }
    return final;
  }
}

/** The state of one video being assembled; lives for one job attempt. */
class VideoAssembly {
  framesWritten = 0;
  private encoder?: FrameEncoder;
  private masks?: MaskWriter;
  private blocking?: Redis;
  private readonly files: { video: string; masks: string; report: string };
  private activeMs = 0;
  private sinkFramesReported = 0;
  private lastProgressAt = 0;
  private lastStatusAt = 0;

  constructor(
    private readonly deps: SinkDependencies,
    private readonly tuning: Required<SinkSettings>,
    private readonly videoId: string,
    private readonly outDir: string,
    private readonly job: SinkJobHandle,
    private readonly log: Logger,
    private readonly signal?: AbortSignal,
  ) {
    this.files = {
      video: path.join(outDir, OUTPUT_FILES.video),
      masks: path.join(outDir, OUTPUT_FILES.masks),
      report: path.join(outDir, OUTPUT_FILES.report),
    };
  }

  async execute(): Promise<SinkSummary> {
    const { frameStore, states, stream, overlay } = this.deps;
    const { lookahead, sinkFramesEvery, waitSeconds, statusCheckMs } = this.tuning;
    const video = await this.waitForProbe();
    if (video.sinkFrames > 0) {
      throw new StreamsegError(
        'E_SINK_RESUME',
        `an earlier sink attempt wrote ${video.sinkFrames} frame(s) of video ${this.videoId} and stopped; they are gone from Redis, so the outputs cannot be completed: submit the video again`,
      );
    }
    const { sourceWidth: width, sourceHeight: height, fps } = video;
    this.log.info({ width, height, fps, outDir: this.outDir }, 'assembling video');
    await mkdir(this.outDir, { recursive: true });

    const unletterbox = new MaskUnletterboxer(video.letterbox, video.inputWidth, width, height);
    const maskBytes = video.inputWidth * video.inputHeight;
    const sourceMask = new Uint8Array(width * height);
    const scratch = overlay.createScratch(width, height);
    const scenes = new SceneTracker();
    const buffer = new ReorderBuffer<{ mask: Buffer; record: FrameResult }>(0);
    this.masks = new MaskWriter(this.files.masks, this.deps.classNames);
    this.blocking = this.deps.openBlockingConnection();
    this.blocking.on('error', (error) => this.log.warn({ err: error }, 'sink blocking connection error'));

    let totalFrames = video.totalFrames;
    for (;;) {
      this.signal?.throwIfAborted();
      // Fetch what is missing of the next `lookahead` frames in one burst of requests; the
      // buffer keeps early arrivals so they are not fetched again.
      const wanted: number[] = [];
      for (let i = buffer.next; i < buffer.next + lookahead && (totalFrames === undefined || i < totalFrames); i++) {
        if (!buffer.has(i)) wanted.push(i);
      }
      const fetched = await Promise.all(wanted.map((i) => frameStore.getResult(this.videoId, i)));
      fetched.forEach((result, k) => {
        if (result) buffer.push(wanted[k]!, result);
      });

      let wrote = 0;
      for (const { index, item } of buffer.drain()) {
        const started = performance.now();
        if (item.mask.length !== maskBytes) {
          throw new FrameError('E_FRAME_SIZE', `mask of frame ${index} has ${item.mask.length} bytes, ${video.inputWidth}x${video.inputHeight} expected`);
        }
        const source = await frameStore.getSource(this.videoId, index);
        if (!source) {
          throw new FrameError('E_FRAME_MISSING', `source frame ${index} of video ${this.videoId} is gone from Redis (expired after STREAMSEG_FRAME_TTL_SECONDS?)`);
        }
        unletterbox.apply(item.mask, sourceMask);
        const annotated = await overlay.annotate(source, sourceMask, width, height, scratch);
        this.encoder ??= this.deps.createEncoder({ file: this.files.video, width, height, fps });
        await this.encoder.write(annotated);
        await this.masks.write(item.record, sourceMask, height, width);
        scenes.add(item.record);
        await stream.append(this.videoId, item.record);
        // Only now is the frame durably handed on: its Redis keys can go.
        await frameStore.deleteFrame(this.videoId, index);
        this.framesWritten++;
        wrote++;
        framesProcessed.inc({ stage: 'sink' });
        this.activeMs += performance.now() - started;
        if (this.framesWritten - this.sinkFramesReported >= sinkFramesEvery) await this.reportProgress(totalFrames ?? video.expectedFrames);
      }

      const now = Date.now();
      if (wrote > 0 && now - this.lastStatusAt < statusCheckMs) continue;
      // Idle (or due for a check): tell the producer how far we are before waiting, or a
      // producer paused at its high-water mark would wait for us while we wait for it.
      await this.reportProgress(totalFrames ?? video.expectedFrames);
      this.lastStatusAt = now;
      const state = await states.get(this.videoId);
      if (!state) throw new StreamsegError('E_VIDEO_GONE', `video ${this.videoId} vanished from Redis (deleted or expired); sink stopped`);
      if (state.status === 'failed') {
        throw new StreamsegError('E_VIDEO_FAILED', `video ${this.videoId} failed (${state.error ?? 'no reason'}); sink stopped`);
      }
      totalFrames = state.totalFrames;
      if (totalFrames !== undefined && buffer.next >= totalFrames) break;
      if (wrote === 0) await frameStore.waitForResults(this.videoId, waitSeconds, this.blocking);
    }
    return this.finish(totalFrames ?? this.framesWritten, scenes);
  }

  private async finish(totalFrames: number, scenes: SceneTracker): Promise<SinkSummary> {
    const { states } = this.deps;
    const warnings: string[] = [];
    const started = performance.now();
    if (this.encoder) {
      await this.encoder.finish();
    } else {
      warnings.push('the video has no frames: annotated.mp4 was not written');
    }
    await this.masks!.close();
    this.activeMs += performance.now() - started;
    await states.setSinkFrames(this.videoId, this.framesWritten);
    await states.addStageTime(this.videoId, 'sink', this.activeMs);
    stageSeconds.observe({ stage: 'sink' }, this.activeMs / 1000);

    const state = await states.get(this.videoId);
    if (!state) throw new StreamsegError('E_VIDEO_GONE', `video ${this.videoId} vanished from Redis before its report was written`);
    const report: VideoReport = buildReport({ state, frames: this.framesWritten, scenes: scenes.list, finishedAt: Date.now(), warnings });
    const partial = `${this.files.report}.partial`;
    await writeFile(partial, `${JSON.stringify(report, null, 2)}\n`);
    await rename(partial, this.files.report);
    await states.markDone(this.videoId);
    await this.job.updateProgress({ sinkFrames: this.framesWritten, totalFrames });
    this.closeBlocking();
    this.log.info(
      { frames: this.framesWritten, scenes: report.scenes.length, wallMs: report.timings.wallMs, sinkMs: Math.round(this.activeMs), fps: report.timings.framesPerSecond },
      'video assembled',
    );
    return { videoId: this.videoId, frames: this.framesWritten, scenes: report.scenes.length, outDir: this.outDir };
  }

  /** Removes partial outputs after a failure; never throws. */
  async cleanUp(): Promise<void> {
    this.closeBlocking();
    await Promise.allSettled([
      this.encoder?.abort(),
      this.masks?.abort(),
      rm(`${this.files.report}.partial`, { force: true }),
    ]);
  }

  private closeBlocking(): void {
    this.blocking?.disconnect();
    this.blocking = undefined;
  }

  private async reportProgress(totalFrames: number | undefined): Promise<void> {
    if (this.framesWritten !== this.sinkFramesReported) {
      await this.deps.states.setSinkFrames(this.videoId, this.framesWritten);
      this.sinkFramesReported = this.framesWritten;
    }
    const now = Date.now();
    if (now - this.lastProgressAt >= 500) {
      this.lastProgressAt = now;
      await this.job.updateProgress({ sinkFrames: this.framesWritten, totalFrames });
    }
  }

  /** The producer writes probe facts before any frame; until then there is nothing to size the outputs by. */
  private async waitForProbe(): Promise<ProbedState> {
    for (;;) {
      this.signal?.throwIfAborted();
      const state = await this.deps.states.get(this.videoId);
      if (!state) throw new StreamsegError('E_VIDEO_GONE', `video ${this.videoId} is not in Redis (never submitted, deleted or expired)`);
      if (state.status === 'failed') throw new StreamsegError('E_VIDEO_FAILED', `video ${this.videoId} failed (${state.error ?? 'no reason'}); nothing to assemble`);
      if (hasProbeFacts(state)) return state;
      await sleep(100, this.signal);
    }
  }
}

function hasProbeFacts(state: VideoState): state is ProbedState {
  return (
    state.sourceWidth !== undefined &&
    state.sourceHeight !== undefined &&
    state.fps !== undefined &&
    state.inputWidth !== undefined &&
    state.inputHeight !== undefined &&
    state.letterbox !== undefined
  );
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

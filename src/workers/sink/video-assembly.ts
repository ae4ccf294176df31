import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { access, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { RedisConnection } from '../../shared/redis.js';
import { ErrorCode, errorLine, FfmpegError, FrameError, StreamsegError } from '../../shared/errors/index.js';
import { assembleVideoJobSchema, parseJob } from '../../shared/job-schemas.js';
import { QueueName } from '../../shared/queues.js';
import type { FrameResult } from '../../shared/frame-store.js';
import { MaskUnletterboxer } from '../../shared/letterbox.js';
import type { Logger } from '../../shared/logger.js';
import { OUTPUT_FILES } from '../../shared/output-layout.js';
import { endToEndSeconds, framesProcessed, stageSeconds } from '../../shared/metrics.js';
import { MaskWriter } from './mask-writer.js';
import { ReorderBuffer } from './reorder-buffer.js';
import { evenSize } from './player-safe-format.js';
import { SceneTracker, buildReport, type OutputMediaReport, type VideoReport } from './report-builder.js';
import { concatSegments, type JoinMedia } from './segment-concat.repository.js';
import { SegmentFiles } from './segment-files.js';
import type { SinkCheckpoint } from './sink-checkpoint.store.js';
import { waitForProbeFacts } from './probe-facts.js';
import type { FrameEncoder, SinkDependencies, SinkJobHandle, SinkSettings, SinkSummary } from './sink-types.js';

/**
 * One attempt at assembling one video. Frames are taken in order from Redis, overlaid,
 * encoded into the open segment, their mask lines queued and their records published. Every
 * `segmentFrames` frames the segment is closed: the encoder's file is renamed into place, the
 * mask lines are appended and synced, the checkpoint (frames, segments, masks bytes, scenes) is
 * saved in Redis, and only then are the checkpointed frames deleted from Redis. An attempt
 * starts from the checkpoint, whoever made it: a sink killed mid-video costs the re-encoding
 * of at most one segment, never a frame. At the end the segments are joined (no re-encoding).
 */
export class VideoAssembly {
  /** Frames written in order so far (absolute: includes those of earlier attempts). */
  framesWritten = 0;
  private readonly owner = `${os.hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  private readonly files: { video: string; masks: string; report: string };
  private readonly segments: SegmentFiles;
  private checkpoint?: SinkCheckpoint;
  private encoder?: FrameEncoder;
  private framesInSegment = 0;
  private masks?: MaskWriter;
  private blocking?: RedisConnection;
  private activeMs = 0;
  private sinkFramesReported = 0;
  private lastProgressAt = 0;
  private lastStatusAt = 0;
  /** Source frame size, known once the probe facts are in. */
  private frameSize?: { width: number; height: number };

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
    this.segments = new SegmentFiles(outDir);
  }

  async execute(): Promise<SinkSummary> {
    const { frameStore, states, stream, overlay, checkpoints } = this.deps;
    const { lookahead, sinkFramesEvery, waitSeconds, statusCheckMs, segmentFrames } = this.tuning;
    const video = await waitForProbeFacts(this.deps.states, this.videoId, this.signal);
    if (video.status === 'done') {
      // A re-run of a job whose video was finished (killed between markDone and job completion).
      return { videoId: this.videoId, frames: video.sinkFrames, scenes: 0, outDir: this.outDir };
    }
    const { sourceWidth: width, sourceHeight: height, fps } = video;
    this.frameSize = { width, height };
    await mkdir(this.outDir, { recursive: true });

    const { checkpoint, previousOwner } = await checkpoints.claim(this.videoId, this.owner);
    this.checkpoint = checkpoint;
    this.framesWritten = checkpoint.frames;
    this.sinkFramesReported = Math.max(checkpoint.frames, video.sinkFrames);
    if (previousOwner) {
      this.log.warn({ previousOwner, resumeFrame: checkpoint.frames, segments: checkpoint.segments }, 'taking the video over from the last checkpoint');
    } else {
      this.log.info({ width, height, fps, outDir: this.outDir }, 'assembling video');
    }
    await this.segments.recover(checkpoint.segments);
    this.masks = await MaskWriter.open(this.files.masks, this.deps.classNames, checkpoint.masksBytes);
    const scenes = new SceneTracker(checkpoint.scenes);
    const buffer = new ReorderBuffer<{ mask: Buffer; record: FrameResult }>(checkpoint.frames);

    const unletterbox = new MaskUnletterboxer(video.letterbox, video.inputWidth, width, height);
    const maskBytes = video.inputWidth * video.inputHeight;
    const sourceMask = new Uint8Array(width * height);
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
          throw new FrameError(ErrorCode.FRAME_SIZE, `mask of frame ${index} has ${item.mask.length} bytes, ${video.inputWidth}x${video.inputHeight} expected`);
        }
        const source = await frameStore.getSource(this.videoId, index);
        if (!source) {
          throw new FrameError(
            ErrorCode.FRAME_MISSING,
            `source frame ${index} of video ${this.videoId} is gone from Redis (expired after STREAMSEG_FRAME_TTL_SECONDS?)`,
          );
        }
        unletterbox.apply(item.mask, sourceMask);
        const annotated = await overlay.annotate(source, sourceMask, width, height);
        this.encoder ??= this.deps.createEncoder({ file: this.segments.path(this.checkpoint.segments), width, height, fps });
        await this.encoder.write(annotated);
        this.masks.write(item.record, sourceMask, height, width, unletterbox.columnOffsets);
        scenes.add(item.record);
        // Records the previous owner already published are skipped by the append itself.
        await stream.append(this.videoId, item.record);
        this.framesWritten = index + 1;
        this.framesInSegment++;
        wrote++;
        framesProcessed.inc({ stage: 'sink' });
        this.activeMs += performance.now() - started;
        if (this.framesInSegment >= segmentFrames) await this.closeSegment(scenes);
        if (this.framesWritten - this.sinkFramesReported >= sinkFramesEvery) await this.reportProgress(totalFrames ?? video.expectedFrames);
      }

      const now = Date.now();
      if (wrote > 0 && now - this.lastStatusAt < statusCheckMs) continue;
      // Idle (or due for a check): tell the producer how far we are before waiting, or a
      // producer paused at its high-water mark would wait for us while we wait for it.
      await this.reportProgress(totalFrames ?? video.expectedFrames);
      this.lastStatusAt = now;
      const state = await states.get(this.videoId);
      if (!state) throw new StreamsegError(ErrorCode.VIDEO_GONE, `video ${this.videoId} vanished from Redis (deleted or expired); sink stopped`);
      if (state.status === 'failed') {
        throw new StreamsegError(ErrorCode.VIDEO_FAILED, `video ${this.videoId} failed (${state.error ?? 'no reason'}); sink stopped`);
      }
      totalFrames = state.totalFrames;
      if (totalFrames !== undefined && buffer.next >= totalFrames) break;
      if (wrote === 0) await frameStore.waitForResults(this.videoId, waitSeconds, this.blocking);
    }
    return this.finish(totalFrames ?? this.framesWritten, scenes);
  }

  /**
   * Makes the open segment durable: encoder file renamed into place, mask lines synced, the
   * checkpoint saved (only while this sink still owns the video), then the frames freed.
   */
  private async closeSegment(scenes: SceneTracker): Promise<void> {
    if (!this.encoder || !this.masks || !this.checkpoint) return;
    const started = performance.now();
    await this.assertOwner();
    await this.encoder.finish();
    this.encoder = undefined;
    const masksBytes = await this.masks.flush();
    const next: SinkCheckpoint = {
      frames: this.framesWritten,
      segments: this.checkpoint.segments + 1,
      masksBytes,
      scenes: scenes.list.map((s) => ({ ...s })),
      activeMs: 0,
    };
    this.activeMs += performance.now() - started;
    next.activeMs = this.checkpoint.activeMs + this.activeMs;
    if (!(await this.deps.checkpoints.save(this.videoId, this.owner, next))) throw this.ownerLost();
    await this.deps.frameStore.deleteFrames(this.videoId, this.checkpoint.frames, next.frames);
    this.activeMs = 0;
    this.checkpoint = next;
    this.framesInSegment = 0;
    this.log.debug({ frames: next.frames, segments: next.segments, masksBytes }, 'segment checkpointed');
  }

  private async finish(totalFrames: number, scenes: SceneTracker): Promise<SinkSummary> {
    const { states } = this.deps;
    const warnings: string[] = [];
    await this.closeSegment(scenes);
    const checkpoint = this.checkpoint!;
    const started = performance.now();
    await this.assertOwner();
    let media: OutputMediaReport | undefined;
    if (checkpoint.segments > 0) {
      media = await this.joinVideo(checkpoint.segments, warnings);
    } else {
      warnings.push('the video has no frames: annotated.mp4 was not written');
    }
    await this.masks!.close();
    const activeMs = checkpoint.activeMs + this.activeMs + (performance.now() - started);
    await states.setSinkFrames(this.videoId, this.framesWritten);
    await states.addStageTime(this.videoId, 'sink', activeMs);
    stageSeconds.observe({ stage: 'sink' }, activeMs / 1000);

    const state = await states.get(this.videoId);
    if (!state) throw new StreamsegError(ErrorCode.VIDEO_GONE, `video ${this.videoId} vanished from Redis before its report was written`);
    const report: VideoReport = buildReport({ state, frames: this.framesWritten, scenes: scenes.list, finishedAt: Date.now(), warnings, media });
    const partial = `${this.files.report}.partial`;
    await writeFile(partial, `${JSON.stringify(report, null, 2)}\n`);
    await rename(partial, this.files.report);
    await states.markDone(this.videoId);
    endToEndSeconds.observe(report.timings.wallMs / 1000);
    await this.job.updateProgress({ sinkFrames: this.framesWritten, totalFrames });
    await this.segments.remove();
    this.closeBlocking();
    this.log.info(
      {
        frames: this.framesWritten,
        scenes: report.scenes.length,
        segments: checkpoint.segments,
        wallMs: report.timings.wallMs,
        sinkMs: Math.round(activeMs),
        fps: report.timings.framesPerSecond,
      },
      'video assembled',
    );
    return { videoId: this.videoId, frames: this.framesWritten, scenes: report.scenes.length, outDir: this.outDir };
  }

  /**
   * Joins the segments into annotated.mp4, placed at the source's start and with its audio
   * when the producer planned it. Audio that cannot be kept (the input is not readable from
   * this sink, or ffmpeg refuses it) costs a warning, not the video: it is joined without.
   */
  private async joinVideo(segments: number, warnings: string[]): Promise<OutputMediaReport> {
    const job = parseJob(assembleVideoJobSchema, QueueName.Sink, this.job.data);
    const join = this.deps.joinSegments ?? ((list: readonly string[], output: string, media?: JoinMedia) => concatSegments(list, output, undefined, media));
    const list = this.segments.list(segments);
    const videoOffsetMs = job.videoOffsetMs ?? 0;
    const { width, height } = this.frameSize!;
    const even = evenSize(width, height);
    const video: NonNullable<OutputMediaReport['video']> = {
      width: even.width,
      height: even.height,
      pixelFormat: 'yuv420p',
      colorMatrix: 'bt709',
      padded: { right: even.padRight, bottom: even.padBottom },
      ...(even.padRight || even.padBottom
        ? {
            note: `the source is ${width}x${height}; yuv420p needs even sizes, so annotated.mp4 is ${even.width}x${even.height} with the last column/row repeated; masks stay ${width}x${height}`,
          }
        : {}),
      startMs: videoOffsetMs,
    };
    const plan = job.audio ?? { action: 'none', reason: 'the input has no audio stream' };
    if (plan.action === 'none') {
      await join(list, this.files.video, { videoOffsetMs });
      return { video, audio: plan };
    }
    const readable = await access(plan.path, fsConstants.R_OK).then(
      () => true,
      () => false,
    );
    if (readable) {
      try {
        await join(list, this.files.video, { videoOffsetMs, audio: plan });
        return { video, audio: { action: plan.action, codec: plan.codec } };
      } catch (error) {
        if (!(error instanceof FfmpegError)) throw error;
        warnings.push(`the source's audio could not be kept (${errorLine(error)}); annotated.mp4 is video-only`);
      }
    } else {
      warnings.push(`the source's audio could not be kept: ${plan.path} is not readable by this sink; annotated.mp4 is video-only`);
    }
    await join(list, this.files.video, { videoOffsetMs });
    return { video, audio: { action: 'none', reason: 'the source audio could not be read (see warnings)' } };
  }

  /**
   * Stops after a failure; never throws. `final` (the video will not be retried) removes the
   * partial outputs; otherwise they stay for the next attempt or the sink that takes over.
   */
  async cleanUp(final: boolean): Promise<void> {
    this.closeBlocking();
    await Promise.allSettled([this.encoder?.abort(), this.masks?.abort(final)]);
    if (!final) return;
    await Promise.allSettled([
      this.segments.remove(),
      rm(`${this.files.report}.partial`, { force: true }),
      rm(`${this.files.video}.partial`, { force: true }),
      rm(`${this.files.masks}.partial`, { force: true }),
    ]);
  }

  private async assertOwner(): Promise<void> {
    if (!(await this.deps.checkpoints.owns(this.videoId, this.owner))) throw this.ownerLost();
  }

  private ownerLost(): StreamsegError {
    return new StreamsegError(
      ErrorCode.SINK_OWNER_LOST,
      `another sink took video ${this.videoId} over (this one lost its job lock); this sink stops writing it`,
    );
  }

  private closeBlocking(): void {
    this.blocking?.disconnect();
    this.blocking = undefined;
  }

  private async reportProgress(totalFrames: number | undefined): Promise<void> {
    if (this.framesWritten > this.sinkFramesReported) {
      await this.deps.states.setSinkFrames(this.videoId, this.framesWritten);
      this.sinkFramesReported = this.framesWritten;
    }
    const now = Date.now();
    if (now - this.lastProgressAt >= 500) {
      this.lastProgressAt = now;
      await this.job.updateProgress({ sinkFrames: this.framesWritten, totalFrames });
    }
  }
}

import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { access, mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { RedisConnection } from '../../shared/redis.js';
import { ErrorCode, errorLine, FfmpegError, StreamsegError } from '../../shared/errors/index.js';
import type { FrameResult } from '../../shared/frame-store.js';
import { OUTPUT_FILES } from '../../shared/output-layout.js';
import { endToEndSeconds, framesProcessed, stageSeconds } from '../../shared/metrics.js';
import { MaskWriter } from './mask-writer.js';
import { ReorderBuffer } from './reorder-buffer.js';
import { evenSize } from './player-safe-format.js';
import { SceneTracker, buildReport, type OutputMediaReport } from './report-builder.js';
import { writeReportAndFinish } from './report-file.js';
import { concatSegments, type JoinMedia } from './segment-concat.repository.js';
import { SegmentFiles } from './segment-files.js';
import type { SinkCheckpoint } from './sink-checkpoint.store.js';
import { readRunningVideo, waitForProbeFacts, type ProbedState } from './probe-facts.js';
import { SourceMask } from './source-mask.js';
import { DecodedSourceFrames, HandedSourceFrames, RedisSourceFrames, type SourceFrames } from './source-frames.js';
import type { SourceDecode } from '../../shared/job-schemas.js';
import { SourceDecoderRepository } from './source-decoder.repository.js';
import { FrameBufferRing } from './frame-buffer-ring.js';
import { rawFrameBytes, sinkSourceFormat } from '../../shared/media/raw-pixel-format.js';
import type { AssemblyRun, FrameEncoder, SinkDependencies, SinkSettings, SinkSummary } from './sink-types.js';

/** A frame's result as the workers left it in Redis. */
type FrameResultItem = { mask: Buffer; record: FrameResult };

/**
 * One attempt at assembling one video. Frame results are taken in order from Redis, overlaid
 * on their source frames (from Redis, or from the sink's own decode of an input file: see
 * SourceFrames), encoded into the open segment, their mask lines queued and their records published. Every
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
  private sources?: SourceFrames;
  private annotated?: FrameBufferRing;
  private masks?: MaskWriter;
  private blocking?: RedisConnection;
  private activeMs = 0;
  private sinkFramesReported = 0;
  private lastProgressAt = 0;
  private lastStatusAt = 0;
  /** Source frame size and rate, known once the probe facts are in. */
  private format?: { width: number; height: number; fps: number };

  constructor(
    private readonly deps: SinkDependencies,
    private readonly tuning: Required<SinkSettings>,
    private readonly run: AssemblyRun,
  ) {
    this.files = {
      video: path.join(run.outDir, OUTPUT_FILES.video),
      masks: path.join(run.outDir, OUTPUT_FILES.masks),
      report: path.join(run.outDir, OUTPUT_FILES.report),
    };
    this.segments = new SegmentFiles(run.outDir);
  }

  async execute(): Promise<SinkSummary> {
    const { videoId, outDir, signal } = this.run;
    const { lookahead, sinkFramesEvery, waitSeconds, statusCheckMs } = this.tuning;
    const video = await waitForProbeFacts(this.deps.states, videoId, signal);
    const segmentFrames = segmentLength(this.tuning.segmentFrames, video.maxFramesInRedis);
    if (video.status === 'done') {
      // A re-run of a job whose video was finished (killed between markDone and job completion).
      return { videoId, frames: video.sinkFrames, scenes: 0, outDir };
    }
    const { scenes, buffer } = await this.resume(video);
    const mask = new SourceMask(video);
    const { sourceDecode } = this.run.data;
    this.sources = sourceDecode ? this.fileSourceFrames(sourceDecode) : new RedisSourceFrames(this.deps.frameStore, videoId);
    this.annotated = new FrameBufferRing(rawFrameBytes(video.sourceWidth, video.sourceHeight, this.sources.pixelFormat));
    this.blocking = this.deps.openBlockingConnection();
    this.blocking.on('error', (error) => this.run.log.warn({ err: error }, 'sink blocking connection error'));

    let totalFrames = video.totalFrames;
    for (;;) {
      signal?.throwIfAborted();
      await this.fetchAhead(buffer, Math.min(buffer.next + lookahead, totalFrames ?? Number.MAX_SAFE_INTEGER));
      const ready = [...buffer.drain()];
      let wrote = 0;
      while (wrote < ready.length) {
        // A run of ready frames is written with one read of their sources and one append of their
        // records: each Redis command was a syscall of its own in the profile. Runs end at segment boundaries.
        const run = ready.slice(wrote, wrote + segmentFrames - this.framesInSegment);
        await this.writeFrames(run, mask, scenes);
        wrote += run.length;
        if (this.framesInSegment >= segmentFrames) await this.closeSegment(scenes);
        if (this.framesWritten - this.sinkFramesReported >= sinkFramesEvery) await this.reportProgress(totalFrames ?? video.expectedFrames);
      }

      const now = Date.now();
      if (wrote > 0 && now - this.lastStatusAt < statusCheckMs) continue;
      // Idle (or due for a check): tell the producer how far we are before waiting, or a
      // producer paused at its high-water mark would wait for us while we wait for it.
      await this.reportProgress(totalFrames ?? video.expectedFrames);
      this.lastStatusAt = now;
      totalFrames = (await readRunningVideo(this.deps.states, videoId)).totalFrames;
      if (totalFrames !== undefined && buffer.next >= totalFrames) break;
      if (wrote === 0) await this.deps.frameStore.waitForResults(videoId, waitSeconds, this.blocking);
    }
    return this.finish(totalFrames ?? this.framesWritten, scenes);
  }

  /**
   * Claims the video and picks it up where its checkpoint says, whoever made it: segments on
   * disk, mask lines, scenes, and the next frame to write (all zero for a fresh video).
   */
  private async resume(video: ProbedState): Promise<{ scenes: SceneTracker; buffer: ReorderBuffer<FrameResultItem> }> {
    const { videoId, outDir, log } = this.run;
    const { sourceWidth: width, sourceHeight: height, fps } = video;
    this.format = { width, height, fps };
    await mkdir(outDir, { recursive: true });

    const { checkpoint, previousOwner } = await this.deps.checkpoints.claim(videoId, this.owner);
    this.checkpoint = checkpoint;
    this.framesWritten = checkpoint.frames;
    this.sinkFramesReported = Math.max(checkpoint.frames, video.sinkFrames);
    if (previousOwner) {
      log.warn({ previousOwner, resumeFrame: checkpoint.frames, segments: checkpoint.segments }, 'taking the video over from the last checkpoint');
    } else {
      log.info({ width, height, fps, outDir }, 'assembling video');
    }
    await this.segments.recover(checkpoint.segments);
    this.masks = await MaskWriter.open(this.files.masks, this.deps.classNames, checkpoint.masksBytes);
    return { scenes: new SceneTracker(checkpoint.scenes), buffer: new ReorderBuffer<FrameResultItem>(checkpoint.frames) };
  }

  /** A file's source frames: handed over by the producer of this process where it did, else decoded here. */
  private fileSourceFrames(decode: SourceDecode): SourceFrames {
    const { videoId, signal, log } = this.run;
    const pixelFormat = sinkSourceFormat(decode.width, decode.height);
    const ownDecode = () => new DecodedSourceFrames(this.deps.sourceDecoder ?? new SourceDecoderRepository(), decode, pixelFormat, signal);
    const handoff = this.deps.sourceHandoffs?.claim(videoId);
    if (!handoff) return ownDecode();
    log.debug('source frames handed over by the producer of this process');
    return new HandedSourceFrames(handoff, pixelFormat, ownDecode, (index) =>
      log.info({ frame: index }, 'source frames no longer handed over by the producer: decoding the input file from here'),
    );
  }

  /**
   * Fetches what is missing of the frames before `end` in one burst of requests; the buffer
   * keeps early arrivals so they are not fetched again.
   */
  private async fetchAhead(buffer: ReorderBuffer<FrameResultItem>, end: number): Promise<void> {
    const wanted = buffer.missing(end);
    const fetched = await this.deps.frameStore.getResults(this.run.videoId, wanted);
    fetched.forEach((result, k) => {
      if (result) buffer.push(wanted[k]!, result);
    });
  }

  /** Consecutive frames, overlaid on their source frames, into the open segment; their mask lines queued, their records published. */
  private async writeFrames(run: readonly { index: number; item: FrameResultItem }[], mask: SourceMask, scenes: SceneTracker): Promise<void> {
    const { videoId } = this.run;
    const { width, height, fps } = this.format!;
    const started = performance.now();
    const { pixelFormat } = this.sources!;
    await this.sources!.prefetch(run.map((frame) => frame.index));
    for (const { index, item } of run) {
      const source = await this.sources!.frame(index);
      const pixels = mask.project(index, item.mask);
      const out = await this.annotated!.acquire();
      if (pixelFormat === 'yuv420p') this.deps.overlay.annotateYuv420p(source, pixels, width, height, out.buffer);
      else await this.deps.overlay.annotate(source, pixels, width, height, out.buffer);
      this.encoder ??= this.deps.createEncoder({ file: this.segments.path(this.checkpoint!.segments), width, height, fps, pixelFormat });
      await this.encoder.write(out.buffer, out.release);
      this.masks!.write(item.record, pixels, height, width, mask.columnOffsets);
      scenes.add(item.record);
      this.framesWritten = index + 1;
      this.framesInSegment++;
      framesProcessed.inc({ stage: 'sink' });
    }
    // Records the previous owner already published are skipped by the append itself.
    await this.deps.stream.appendAll(
      videoId,
      run.map((frame) => frame.item.record),
    );
    this.activeMs += performance.now() - started;
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
    if (!(await this.deps.checkpoints.save(this.run.videoId, this.owner, next))) throw this.ownerLost();
    await this.deps.frameStore.deleteFrames(this.run.videoId, this.checkpoint.frames, next.frames);
    await this.deps.states.setCheckpointFrames(this.run.videoId, next.frames);
    this.activeMs = 0;
    this.checkpoint = next;
    this.framesInSegment = 0;
    this.run.log.debug({ frames: next.frames, segments: next.segments, masksBytes }, 'segment checkpointed');
  }

  private async finish(totalFrames: number, scenes: SceneTracker): Promise<SinkSummary> {
    const { videoId, outDir, job, log } = this.run;
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
    await this.sources?.close();
    const activeMs = checkpoint.activeMs + this.activeMs + (performance.now() - started);
    await states.setSinkFrames(videoId, this.framesWritten);
    await states.addStageTime(videoId, 'sink', activeMs);
    stageSeconds.observe({ stage: 'sink' }, activeMs / 1000);

    const report = await writeReportAndFinish(states, videoId, this.files.report, (state) =>
      buildReport({ state, frames: this.framesWritten, scenes: scenes.list, finishedAt: Date.now(), warnings, media }),
    );
    endToEndSeconds.observe(report.timings.wallMs / 1000);
    await job.updateProgress({ sinkFrames: this.framesWritten, totalFrames });
    await this.segments.remove();
    this.closeBlocking();
    log.info(
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
    return { videoId, frames: this.framesWritten, scenes: report.scenes.length, outDir };
  }

  /**
   * Joins the segments into annotated.mp4, placed at the source's start and with its audio
   * when the producer planned it. Audio that cannot be kept (the input is not readable from
   * this sink, or ffmpeg refuses it) costs a warning, not the video: it is joined without.
   */
  private async joinVideo(segments: number, warnings: string[]): Promise<OutputMediaReport> {
    const job = this.run.data;
    const join = this.deps.joinSegments ?? ((list: readonly string[], output: string, media?: JoinMedia) => concatSegments(list, output, undefined, media));
    const list = this.segments.list(segments);
    const videoOffsetMs = job.videoOffsetMs ?? 0;
    const { width, height } = this.format!;
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
    await Promise.allSettled([this.encoder?.abort(), this.masks?.abort(final), this.sources?.close()]);
    if (!final) return;
    await Promise.allSettled([
      this.segments.remove(),
      rm(`${this.files.report}.partial`, { force: true }),
      rm(`${this.files.video}.partial`, { force: true }),
      rm(`${this.files.masks}.partial`, { force: true }),
    ]);
  }

  private async assertOwner(): Promise<void> {
    if (!(await this.deps.checkpoints.owns(this.run.videoId, this.owner))) throw this.ownerLost();
  }

  private ownerLost(): StreamsegError {
    return new StreamsegError(
      ErrorCode.SINK_OWNER_LOST,
      `another sink took video ${this.run.videoId} over (this one lost its job lock); this sink stops writing it`,
    );
  }

  private closeBlocking(): void {
    this.blocking?.disconnect();
    this.blocking = undefined;
  }

  private async reportProgress(totalFrames: number | undefined): Promise<void> {
    if (this.framesWritten > this.sinkFramesReported) {
      await this.deps.states.setSinkFrames(this.run.videoId, this.framesWritten);
      this.sinkFramesReported = this.framesWritten;
    }
    const now = Date.now();
    if (now - this.lastProgressAt >= 500) {
      this.lastProgressAt = now;
      await this.run.job.updateProgress({ sinkFrames: this.framesWritten, totalFrames });
    }
  }
}

/**
 * Frames per segment: the setting, but at most half of what the producer lets Redis hold for
 * this video. Frames stay in Redis until their segment is checkpointed and the producer counts
 * them until then, so a segment longer than that would wait for frames the producer holds back.
 */
export function segmentLength(segmentFrames: number, maxFramesInRedis: number | undefined): number {
  if (maxFramesInRedis === undefined) return segmentFrames;
  return Math.max(1, Math.min(segmentFrames, Math.floor(maxFramesInRedis / 2)));
}

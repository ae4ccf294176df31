import path from 'node:path';
import type { StreamsegConfig } from '../shared/config.js';
import type { FrameStore } from '../shared/frame-store.js';
import { decodeVideoJobSchema, parseJob, type DecodeVideoJob, type FrameRef, type SourceDecode } from '../shared/job-schemas.js';
import type { Logger } from '../shared/logger.js';
import { framesProcessed, stageSeconds } from '../shared/metrics.js';
import { QueueName } from '../shared/queues.js';
import type { VideoStateStore } from '../shared/video-state.js';
import { BackpressureGate, allocatedBytes, maxFramesInRedis } from './backpressure-gate.js';
import type { FfmpegRepository, VideoProbe } from './ffmpeg.repository.js';
import { planModelInput, type ModelInputSpec } from '../shared/model-input-plan.js';
import { rawFrameBytes, sinkSourceFormat } from '../shared/media/raw-pixel-format.js';
import type { SourceFrameHandoff, SourceFrameHandoffs } from '../shared/source-frame-handoff.js';
import { addFramesJob, addSinkJob, framesJob, recordDecodeFailure, type DecodeJobHandle, type JobQueue } from './producer-jobs.js';
import { SceneCutDetector } from './scene-cut-detector.js';
import { ModelInputFrames } from './model-input-frames.js';
import { planOutputMedia } from './output-media-plan.js';
import { hdrNote } from './probe-validation.js';

/** The settings the producer reads; a full StreamsegConfig fits. */
export type ProducerSettings = Pick<
  StreamsegConfig,
  'fps' | 'batchFrames' | 'sceneThreshold' | 'minSceneFrames' | 'highWaterFrames' | 'highWaterBytes' | 'jobAttempts' | 'sourceFrames'
>;

export type { DecodeJobHandle, DecodeProgress, JobQueue } from './producer-jobs.js';

export interface ProducerDependencies {
  ffmpeg: FfmpegRepository;
  frameStore: FrameStore;
  states: VideoStateStore;
  queues: { frames: JobQueue; sink: JobQueue };
  settings: ProducerSettings;
  /** The manifest's input sizing: each video's frames are resized to `planModelInput` of it. */
  modelInput: ModelInputSpec;
  logger: Logger;
  /**
   * Set where the sink runs in this process: a file's source frames, decoded once with the model
   * input, are handed to it in memory instead of it decoding the file again. @defaultValue none
   */
  sourceHandoffs?: SourceFrameHandoffs;
}

export interface DecodeSummary {
  videoId: string;
  totalFrames: number;
  scenes: number;
  framesJobs: number;
  /** Frames below this index were enqueued (or written by the sink) by an earlier attempt and were skipped. */
  resumedFrom: number;
}

/** How often progress goes to the BullMQ job; the video state gets it at every batch. */
const PROGRESS_INTERVAL_MS = 250;

/**
 * Handles one decode-video job: probe, hand the video to a sink, then decode, letterbox,
 * store and enqueue frames in scene-aligned batches, pausing while the sink is behind.
 * Safe to run again for the same video (a retry): frames jobs have deterministic ids, scenes
 * are recorded idempotently, and frames the sink already wrote are not stored again.
 */
export class ProducerService {
  constructor(private readonly deps: ProducerDependencies) {}

  async decodeVideo(job: DecodeJobHandle, signal?: AbortSignal): Promise<DecodeSummary> {
    const data = parseJob(decodeVideoJobSchema, QueueName.Videos, job.data);
    const log = this.deps.logger.child({ videoId: data.videoId });
    const handed: { off?: SourceFrameHandoff } = {};
    try {
      const summary = await this.run(data, job, log, handed, signal);
      handed.off?.finishDecode();
      return summary;
    } catch (error) {
      // Its sink decodes the file itself from the first frame it lacks.
      handed.off?.abandon();
      await recordDecodeFailure({ states: this.deps.states, log }, data.videoId, job, error, 'decode', signal);
      throw error;
    }
  }

  private async run(
    data: DecodeVideoJob,
    job: DecodeJobHandle,
    log: Logger,
    handed: { off?: SourceFrameHandoff },
    signal?: AbortSignal,
  ): Promise<DecodeSummary> {
    const { ffmpeg, frameStore, states, queues, settings, modelInput } = this.deps;
    const { videoId } = data;
    const started = performance.now();
    const requestedFps = data.options.fps ?? settings.fps;
    const probe = await ffmpeg.probe(data.input, { fps: requestedFps });
    const fps = requestedFps ?? probe.fps;
    const expectedFrames = estimateFrames(probe, requestedFps);
    const plan = planModelInput(modelInput, probe.width, probe.height);
    // A file the sink decodes again itself: its source pixels never go to Redis.
    const sourceDecode: SourceDecode | undefined =
      settings.sourceFrames === 'sink' && data.input.kind === 'file'
        ? {
            path: path.resolve(data.input.path),
            streamIndex: probe.streamIndex,
            width: probe.width,
            height: probe.height,
            fps,
            ...(probe.hdr ? { hdr: probe.hdr } : {}),
            ...(probe.colour ? { colour: probe.colour } : {}),
          }
        : undefined;
    // Without the source in Redis, the producer needs only the model's input, which ffmpeg can
    // make itself. A sink in this process takes the source frames from this same decode: their
    // handoff is opened before the probe facts below, which that sink waits for before it looks.
    const inputs = new ModelInputFrames(plan, probe.width, probe.height, { sourceNeeded: sourceDecode === undefined });
    const sourceFormat = sinkSourceFormat(probe.width, probe.height);
    if (sourceDecode && inputs.decodeOptions.modelInput && this.deps.sourceHandoffs && (await ffmpeg.interleavesRawStreams())) {
      handed.off = this.deps.sourceHandoffs.open(videoId, rawFrameBytes(probe.width, probe.height, sourceFormat));
    }
    const limits = {
      highWaterFrames: settings.highWaterFrames,
      highWaterBytes: settings.highWaterBytes,
      // What a frame holds in Redis until the sink checkpoints it: source (unless the sink decodes
      // it), model input, mask, as the allocator rounds them.
      bytesPerFrame:
        (sourceDecode ? 0 : allocatedBytes(rawFrameBytes(probe.width, probe.height, 'rgb24'))) +
        allocatedBytes(rawFrameBytes(plan.width, plan.height, 'rgb24')) +
        allocatedBytes(plan.width * plan.height),
    };
    await states.setProbe(videoId, {
      sourceWidth: probe.width,
      sourceHeight: probe.height,
      fps,
      sourceFps: probe.fps,
      durationMs: probe.durationMs,
      expectedFrames,
      inputWidth: plan.width,
      inputHeight: plan.height,
      letterbox: plan.rect,
      codec: probe.codec,
      maxFramesInRedis: maxFramesInRedis(limits),
    });
    log.info({ ...probe, outputFps: fps, expectedFrames, attempt: job.attemptsMade + 1 }, 'decoding video');

    await addSinkJob(
      queues.sink,
      { videoId, outDir: data.options.outDir, ...planOutputMedia(data.input, probe, data.options.audio), ...(sourceDecode ? { sourceDecode } : {}) },
      settings.jobAttempts,
    );

    // An earlier attempt (a producer killed or stopped mid-decode) may have got far. Frames
    // below `decodedFrames` are stored and enqueued already (it is written right after each
    // frames job is added: the decode checkpoint), and frames the sink has written are gone
    // from Redis and must not come back: decoding resumes after both, without duplicates.
    // Earlier frames are still decoded (and skipped) so scene cuts are found exactly as before.
    const before = await states.get(videoId);
    const sinkFrames = before?.sinkFrames ?? 0;
    const resumedFrom = Math.max(sinkFrames, before?.decodedFrames ?? 0);
    if (resumedFrom > 0) log.info({ resumedFrom, sinkFrames }, 'resuming decode after the last enqueued frame');
    const gate = new BackpressureGate(states, videoId, limits, before?.checkpointFrames ?? 0);
    const detector = new SceneCutDetector({ threshold: settings.sceneThreshold, minSceneFrames: settings.minSceneFrames });

    let scene = -1;
    let sceneStartFrame = 0;
    let batch: FrameRef[] = [];
    // The batch's frames, stored together when the batch is handed over: one round trip per job, not per frame.
    let pixels: { index: number; source?: Buffer; input: Buffer }[] = [];
    let framesJobs = 0;
    let decodedFrames = 0;
    let waitedMs = 0;
    let lastProgress = 0;
    const flush = async () => {
      if (batch.length === 0) return;
      const frames = batch;
      batch = [];
      await frameStore.putFrames(videoId, pixels);
      pixels = [];
      await addFramesJob(
        queues.frames,
        framesJob(data, { index: scene, startFrame: sceneStartFrame }, frames, { width: plan.width, height: plan.height }),
        settings.jobAttempts,
        'file',
      );
      framesJobs++;
      await states.setDecodedFrames(videoId, frames[frames.length - 1]!.index + 1);
    };

    let decodeErrors: { errorLines: number; firstLine: string } | undefined;
    const onDecodeErrors = (report: { errorLines: number; firstLine: string }) => (decodeErrors = report);
    for await (const frame of ffmpeg.decodeFrames(data.input, {
      fps,
      width: probe.width,
      height: probe.height,
      streamIndex: probe.streamIndex,
      startMs: probe.startMs,
      hdr: probe.hdr,
      ...inputs.decodeOptions,
      ...(handed.off ? { sourceOutput: { pixelFormat: sourceFormat, colour: probe.colour } } : {}),
      signal,
      onDecodeErrors,
    })) {
      waitedMs += await gate.admit(frame.index, flush, signal);
      if (detector.next(inputs.cutImage(frame.data))) {
        await flush();
        scene++;
        sceneStartFrame = frame.index;
        await states.addScene(videoId, { index: scene, startFrame: frame.index });
        if (scene > 0) log.debug({ scene, startFrame: frame.index, distance: detector.lastDistance }, 'scene cut');
      }
      if (frame.index >= resumedFrom) {
        if (handed.off && frame.source && !(await handed.off.put(frame.index, frame.source, flush, signal))) {
          log.debug({ frame: frame.index }, 'no sink of this process takes the source frames: it decodes them itself');
          handed.off = undefined;
        }
        const input = await inputs.input(frame.data);
        // A copy: the decoder reuses frame.data for the next frame.
        pixels.push({ index: frame.index, source: sourceDecode ? undefined : Buffer.from(frame.data), input });
        batch.push({ index: frame.index, timestampMs: frame.timestampMs });
        if (batch.length >= settings.batchFrames) await flush();
      }
      decodedFrames = frame.index + 1;
      framesProcessed.inc({ stage: 'decode' });
      const now = performance.now();
      if (now - lastProgress >= PROGRESS_INTERVAL_MS) {
        lastProgress = now;
        await job.updateProgress({ decodedFrames, expectedFrames });
      }
    }
    await flush();
    if (probe.hdr) {
      const note = hdrNote(probe.hdr);
      log.info({ hdr: probe.hdr }, note);
      await states.addWarning(videoId, note);
    }
    // A corrupted or truncated file that still decodes: keep the frames that decoded and say
    // what happened in report.json (the video is not failed; see docs/RELIABILITY.md).
    for (const warning of decodeWarnings(decodeErrors, decodedFrames, expectedFrames)) {
      log.warn({ warning }, 'video partly damaged');
      await states.addWarning(videoId, warning);
    }
    await states.markDecoded(videoId, decodedFrames);
    await job.updateProgress({ decodedFrames, expectedFrames: decodedFrames });

    const activeMs = performance.now() - started - waitedMs;
    await states.addStageTime(videoId, 'decode', activeMs);
    if (waitedMs > 0) await states.addStageTime(videoId, 'decodeBackpressure', waitedMs);
    stageSeconds.observe({ stage: 'decode' }, activeMs / 1000);
    const summary = { videoId, totalFrames: decodedFrames, scenes: scene + 1, framesJobs, resumedFrom };
    log.info({ ...summary, decodeMs: Math.round(activeMs), waitedMs: Math.round(waitedMs) }, 'video decoded');
    return summary;
  }
}

/** Report lines for a video that decoded with errors or came out much shorter than its header said. */
export function decodeWarnings(errors: { errorLines: number; firstLine: string } | undefined, decodedFrames: number, expectedFrames: number): string[] {
  const warnings: string[] = [];
  if (errors) {
    warnings.push(
      `the decoder reported ${errors.errorLines} error line(s) (first: "${errors.firstLine.slice(0, 200)}"); damaged frames were concealed by ffmpeg, and missing ones are absent`,
    );
  }
  if (expectedFrames > 0 && decodedFrames < expectedFrames * 0.9) {
    warnings.push(`only ${decodedFrames} of the ${expectedFrames} frames the header announced could be decoded (truncated or damaged file)`);
  }
  return warnings;
}

/** Header frame count when keeping the source rate, else duration × requested rate. */
function estimateFrames(probe: VideoProbe, requestedFps: number | undefined): number {
  if (requestedFps === undefined || probe.durationMs === 0) return probe.frameCountEstimate;
  return Math.max(1, Math.round((probe.durationMs / 1000) * requestedFps));
}

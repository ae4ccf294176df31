import { ErrorCode, FrameError, StreamsegError } from '../../shared/errors/index.js';
import type { FrameResult, FrameStore } from '../../shared/frame-store.js';
import { parseJob, segmentFramesJobSchema, type SegmentFramesJob } from '../../shared/job-schemas.js';
import type { Logger } from '../../shared/logger.js';
import { framesProcessed, inferenceSeconds, stageSeconds } from '../../shared/metrics.js';
import type { ModelManifest } from '../../shared/model-manifest.js';
import { QueueName } from '../../shared/queues.js';
import type { VideoStateStore } from '../../shared/video-state.js';
import { ClassVocabulary } from './class-vocabulary.js';
import type { LoraFeedProvider } from './lora-feed.js';
import type { SegmentRequest, SegmentationOutput } from './onnx-session.repository.js';
import type { GuardVerdict, SceneGuardStore } from './scene-guard.store.js';

/** The part of the ONNX session the service needs (a fake in tests, ORT in production). */
export interface SegmentationSession {
  segment(request: SegmentRequest): Promise<SegmentationOutput>;
}

/** The part of a BullMQ job the service uses. */
export interface SegmentJobHandle {
  data: unknown;
  updateProgress(progress: number | object): Promise<void>;
}

export interface SegmentationDependencies {
  session: SegmentationSession;
  frameStore: FrameStore;
  states: VideoStateStore;
  loraFeeds: LoraFeedProvider;
  manifest: ModelManifest;
  /** Where the confidence guard's per-scene decisions are shared (needed when a video asks for the guard). */
  guards?: SceneGuardStore;
  /** Written into every frame record, so a result can be traced to the process that made it. */
  workerId: string;
  logger: Logger;
}

export interface SegmentSummary {
  videoId: string;
  scene: number;
  /** Frames segmented and stored by this run. */
  frames: number;
  /** Frames of the job the sink had already written (a re-run job): nothing left to do for them. */
  skipped: number;
  inferenceMs: number;
}

/**
 * Handles one segment-frames job: a batch of consecutive frames of one scene goes through
 * the network in one run, and a class-index mask plus a record per frame goes back to Redis
 * for the sink. Safe to run twice (jobs run at least once): results are overwritten with the
 * same values and the sink deduplicates.
 */
export class SegmentationService {
  private readonly vocabulary: ClassVocabulary;

  constructor(private readonly deps: SegmentationDependencies) {
    this.vocabulary = new ClassVocabulary(deps.manifest);
  }

  async segment(job: SegmentJobHandle): Promise<SegmentSummary> {
    const data = parseJob(segmentFramesJobSchema, QueueName.Frames, job.data);
    const started = performance.now();
    const { frameStore, states, loraFeeds, session, manifest, workerId } = this.deps;
    const vocabulary = this.vocabulary.forJob(data.classes);

    const { frames, inputs } = await this.fetchInputs(data);
    if (frames.length === 0) {
      await job.updateProgress(100);
      return { videoId: data.videoId, scene: data.scene, frames: 0, skipped: data.frames.length, inferenceMs: 0 };
    }
    const size = data.input ?? { width: manifest.input.width, height: manifest.input.height };
    const inputBytes = size.width * size.height * 3;
    inputs.forEach((input, slot) => {
      if (input.length !== inputBytes) {
        throw new FrameError(
          ErrorCode.FRAME_SIZE,
          `frame ${frames[slot]!.index} of video ${data.videoId} has ${input.length} input bytes; its job says ${size.width}x${size.height} RGB (${inputBytes})`,
        );
      }
    });
    await job.updateProgress(10);

    const lora = await loraFeeds.feedsFor({
      videoId: data.videoId,
      scene: data.scene,
      sceneStartFrame: data.sceneStartFrame,
      frames,
      input: size,
      retrieval: data.retrieval,
    });
    const classFeed = { [manifest.classEmbeddings.input]: vocabulary.embeddings };
    const request = { frames: inputs, size, classOf: vocabulary.modelClassOf };
    let adapters = lora.adapters;
    let cacheHit = lora.cacheHit;
    let guard: GuardVerdict | undefined;
    let output: SegmentationOutput | undefined;
    if (lora.guard && this.deps.guards) {
      guard = await this.deps.guards.get(data.videoId, data.scene);
      if (!guard) {
        // First batch of the scene seen anywhere: judge the adapters on it against the base.
        const merged = await session.segment({ ...request, feeds: { ...lora.feeds, ...classFeed }, confidence: true });
        const base = await session.segment({ ...request, feeds: { ...lora.guard.baseFeeds, ...classFeed }, confidence: true });
        const sure = (o: SegmentationOutput) => o.confidence!.reduce((a, b) => a + b, 0) / o.confidence!.length;
        const verdict: GuardVerdict = sure(merged) >= sure(base) + lora.guard.margin ? 'kept' : 'base';
        guard = await this.deps.guards.settle(data.videoId, data.scene, verdict);
        output = { masks: (guard === 'kept' ? merged : base).masks, inferenceMs: merged.inferenceMs + base.inferenceMs };
        this.deps.logger.debug(
          { videoId: data.videoId, scene: data.scene, merged: sure(merged), base: sure(base), guard },
          'confidence guard judged the scene',
        );
      }
      if (guard === 'base') {
        adapters = [];
        cacheHit = null;
      }
    }
    output ??= await session.segment({ ...request, feeds: { ...(guard === 'base' ? lora.guard!.baseFeeds : lora.feeds), ...classFeed } });
    const { masks, inferenceMs } = output;
    inferenceSeconds.observe(inferenceMs / 1000);
    await job.updateProgress(80);

    // Batched inference has no per-frame time: each frame carries its share of the run.
    const perFrameMs = inferenceMs / frames.length;
    const results = frames.map((frame, i) => {
      const record: FrameResult = {
        index: frame.index,
        timestampMs: frame.timestampMs,
        scene: data.scene,
        adapters,
        cacheHit,
        ...(guard ? { guard } : {}),
        inferenceMs: perFrameMs,
        workerId,
      };
      return { mask: masks[i]!, record };
    });
    await frameStore.putResults(data.videoId, results);

    const elapsedMs = performance.now() - started;
    await states.addSegmentedFrames(data.videoId, frames.length);
    await states.addStageTime(data.videoId, 'segment', elapsedMs);
    framesProcessed.inc({ stage: 'segment' }, frames.length);
    stageSeconds.observe({ stage: 'segment' }, elapsedMs / 1000);
    await job.updateProgress(100);
    this.deps.logger.debug(
      { videoId: data.videoId, scene: data.scene, first: frames[0]!.index, frames: frames.length, inferenceMs: Math.round(inferenceMs) },
      'frames segmented',
    );
    return { videoId: data.videoId, scene: data.scene, frames: frames.length, skipped: data.frames.length - frames.length, inferenceMs };
  }

  /**
   * The job's frames whose inputs are still needed. A frame whose input is gone is fine when
   * the sink has already written it (this job is a re-run of one that finished its work);
   * otherwise it is an error worth a retry (the producer may be re-storing it) and, in the
   * end, a failed job naming the frames.
   */
  private async fetchInputs(data: SegmentFramesJob): Promise<{ frames: SegmentFramesJob['frames']; inputs: Buffer[] }> {
    const inputs = await this.deps.frameStore.getInputs(
      data.videoId,
      data.frames.map((f) => f.index),
    );
    const missing = data.frames.filter((_, i) => !inputs[i]);
    if (missing.length === 0) return { frames: data.frames, inputs: inputs as Buffer[] };
    const state = await this.deps.states.get(data.videoId);
    if (!state) throw new StreamsegError(ErrorCode.VIDEO_GONE, `video ${data.videoId} is no longer in Redis (deleted or expired)`);
    if (state.status === 'failed') {
      throw new StreamsegError(ErrorCode.VIDEO_FAILED, `video ${data.videoId} failed elsewhere (${state.error ?? 'no reason'}); frames not segmented`);
    }
    const lost = missing.filter((f) => f.index >= state.sinkFrames);
    if (lost.length > 0) {
      throw new FrameError(
        ErrorCode.FRAME_MISSING,
        `video ${data.videoId}: input of frame(s) ${lost.map((f) => f.index).join(', ')} missing from Redis (expired after STREAMSEG_FRAME_TTL_SECONDS, or deleted)`,
      );
    }
    const keep = data.frames.map((f, i) => (inputs[i] ? i : -1)).filter((i) => i >= 0);
    return { frames: keep.map((i) => data.frames[i]!), inputs: keep.map((i) => inputs[i]!) };
  }
}

import type { StreamsegConfig } from '../shared/config.js';
import { ErrorCode, FfmpegError, StreamsegError } from '../shared/errors/index.js';
import type { FrameStore } from '../shared/frame-store.js';
import { decodeVideoJobSchema, parseJob, type DecodeVideoJob } from '../shared/job-schemas.js';
import type { LiveFrameLog } from '../shared/live-frame-log.js';
import type { Logger } from '../shared/logger.js';
import { framesDropped, framesProcessed, liveReconnects, stageSeconds } from '../shared/metrics.js';
import { QueueName } from '../shared/queues.js';
import type { VideoStateStore } from '../shared/video-state.js';
import type { RgbImage } from './frame-histogram.js';
import { LetterboxResizer } from './letterbox-resizer.js';
import { planModelInput, type ModelInputSpec } from '../shared/model-input-plan.js';
import type { LiveConnection, LiveFfmpegRepository, LiveGeometry } from './live-ffmpeg.repository.js';
import { LiveDropPolicy } from './live-drop-policy.js';
import { redactText, redactUrl } from '../shared/redact-credentials.js';
import type { UrlDestinationPolicy } from '../shared/url-policy.js';
import { liveSourceKind } from './live-source.js';
import { addFramesJob, addSinkJob, framesJob, recordDecodeFailure, type DecodeJobHandle, type JobQueue } from './producer-jobs.js';
import { SceneCutDetector } from './scene-cut-detector.js';

/** The settings the live producer reads; a full StreamsegConfig fits. */
export type LiveProducerSettings = Pick<
  StreamsegConfig,
  | 'fps'
  | 'sceneThreshold'
  | 'minSceneFrames'
  | 'jobAttempts'
  | 'liveDropPolicy'
  | 'liveDropEvery'
  | 'liveMaxInFlight'
  | 'liveReconnectMinMs'
  | 'liveReconnectMaxMs'
  | 'liveEndAfterSeconds'
> &
  Partial<Pick<StreamsegConfig, 'liveConnectTimeoutMs'>>;

/** The frames queue as the live producer uses it: drop-oldest takes waiting jobs back. */
export interface LiveJobQueue extends JobQueue {
  /** 1 when the job was removed, 0 when it is running (locked) or gone. */
  remove(jobId: string): Promise<number>;
}

export interface LiveProducerDependencies {
  ffmpeg: LiveFfmpegRepository;
  frameStore: FrameStore;
  states: VideoStateStore;
  liveLog: LiveFrameLog;
  queues: { frames: LiveJobQueue; sink: JobQueue };
  settings: LiveProducerSettings;
  modelInput: ModelInputSpec;
  logger: Logger;
  /** How often the stop request, the idle timer and the sink's progress are checked. @defaultValue 250 */
  tickMs?: number;
  /**
   * Where URLs submitted through the API (`input.restricted`) may lead: checked again before every
   * (re)connection, as the name may resolve elsewhere by then. Unset: not checked here.
   */
  urlPolicy?: UrlDestinationPolicy;
}

export interface LiveSummary {
  videoId: string;
  /** Frame indices used (enqueued or dropped). */
  frames: number;
  dropped: number;
  reconnects: number;
  /** Why the video ended. */
  ended: 'stopped' | 'source-ended' | 'idle';
}

/** How often a live video's long-lived keys get their TTL refreshed (far below any allowed TTL). */
const KEEP_ALIVE_MS = 5000;

/** One frame held back by keep-latest, with its own copy of the pixels. */
interface HeldFrame {
  index: number;
  capturedAtMs: number;
  source: Buffer;
  scene: number;
  sceneStartFrame: number;
}

/**
 * Handles the decode-video job of a live video: opens the source with ffmpeg and turns every
 * frame into one frames job as it arrives, never pausing the source. While the workers are
 * behind, frames are dropped by the live policy (STREAMSEG_LIVE_DROP_POLICY) and the dropped
 * indices are recorded for the sink, which emits the gap instead of waiting. When the source
 * drops, it is reopened with exponential backoff; the video stays open until `streamseg stop`
 * (graceful: the sink finishes the outputs), a cancel (the abort signal), or the source ends
 * (end of stream where `endOnEof`, or no frame for STREAMSEG_LIVE_END_AFTER_SECONDS).
 */
export class LiveProducerService {
  private readonly tickMs: number;

  constructor(private readonly deps: LiveProducerDependencies) {
    this.tickMs = deps.tickMs ?? 250;
    if (!(deps.settings.liveReconnectMinMs <= deps.settings.liveReconnectMaxMs)) {
      throw new RangeError('liveReconnectMinMs must not exceed liveReconnectMaxMs');
    }
  }

  async run(job: DecodeJobHandle, signal?: AbortSignal): Promise<LiveSummary> {
    const data = parseJob(decodeVideoJobSchema, QueueName.Videos, job.data);
    if (data.input.kind !== 'url') {
      throw new StreamsegError(
        ErrorCode.LIVE_INPUT,
        `video ${data.videoId}: a live video needs a URL input (stdin is relayed over loopback http by \`streamseg run -\`)`,
      );
    }
    const log = this.deps.logger.child({ videoId: data.videoId, live: true, source: redactUrl(data.input.url) });
    try {
      return await new LiveRun(this.deps, this.tickMs, data, data.input.url, job, log, signal).execute();
    } catch (error) {
      // As for files: the video is failed only when nothing will retry it; a stop is no failure.
      // Stopped, or never connected, before any video (E_LIVE_NO_VIDEO, E_LIVE_CONNECT) is final
      // by the catalogue: the video says why, and the queue does not retry.
      await recordDecodeFailure({ states: this.deps.states, log }, data.videoId, job, error, 'live video', signal);
      throw error;
    }
  }
}

/** One attempt at one live video (state that lives as long as the job). */
class LiveRun {
  private readonly videoId: string;
  private readonly policy: LiveDropPolicy;
  private readonly requestedFps: number | undefined;
  /** A clean end of stream ends the video (stdin, HLS) instead of a reconnect. */
  private readonly endsAtEof: boolean;
  private geometry?: LiveGeometry;
  private resizer?: LetterboxResizer;
  private detector: SceneCutDetector;
  private image?: RgbImage;
  private nextIndex = 0;
  private scene = -1;
  private sceneStartFrame = 0;
  private sinkFrames = 0;
  /** Enqueued frames not yet known to be emitted, oldest first. */
  private queued: number[] = [];
  private held?: HeldFrame;
  private dropped = 0;
  private reconnects = 0;
  private stopReason?: LiveSummary['ended'];
  private lastFrameAt = Date.now();
  private activeMs = 0;
  private lastProgressAt = 0;
  private keptAliveAt = Date.now();
  /** No frame for longer than STREAMSEG_LIVE_END_AFTER_SECONDS (checked by the ticker). */
  private idle = false;
  /** The URL as messages and logs show it: credentials replaced (rtsp://user:***@host). */
  private readonly shown: string;
  private readonly startedAt = Date.now();
  /** Never delivered video within STREAMSEG_LIVE_CONNECT_TIMEOUT_MS (checked by the ticker). */
  private connectTimedOut = false;
  /** The connect timeout applies to sources the producer dials or awaits on the network, not to a listener or a relay. */
  private readonly connectTimeoutMs: number | undefined;

  constructor(
    private readonly deps: LiveProducerDependencies,
    private readonly tickMs: number,
    private readonly data: DecodeVideoJob,
    private readonly url: string,
    private readonly job: DecodeJobHandle,
    private readonly log: Logger,
    private readonly signal?: AbortSignal,
  ) {
    this.videoId = data.videoId;
    const { settings } = deps;
    this.policy = new LiveDropPolicy({ policy: settings.liveDropPolicy, maxInFlight: settings.liveMaxInFlight, every: settings.liveDropEvery });
    this.requestedFps = data.options.fps ?? settings.fps;
    // An HLS playlist that reaches its ENDLIST ends cleanly; reopening it would replay its last segment.
    this.endsAtEof = data.options.live?.endOnEof ?? liveSourceKind(url) === 'hls';
    this.shown = redactUrl(url);
    const kind = liveSourceKind(url);
    const dialed = (kind === 'rtsp' && !data.options.live?.listen) || kind === 'udp' || kind === 'hls';
    this.connectTimeoutMs = dialed ? (settings.liveConnectTimeoutMs ?? 10_000) : undefined;
    this.detector = new SceneCutDetector({ threshold: settings.sceneThreshold, minSceneFrames: settings.minSceneFrames });
  }

  async execute(): Promise<LiveSummary> {
    const { states, settings } = this.deps;
    const before = await states.get(this.videoId);
    if (before?.status === 'done') return this.summary('stopped');
    if (before?.status === 'failed') {
      throw new StreamsegError(ErrorCode.VIDEO_FAILED, `video ${this.videoId} failed (${before.error ?? 'no reason'}); not reopening its live source`);
    }
    // A producer that stopped mid-stream (shutdown, crash) hands over: indices continue after the
    // last one used, and the geometry stays that of the first connection (the sink is sized by it).
    this.nextIndex = Math.max(before?.decodedFrames ?? 0, before?.sinkFrames ?? 0);
    this.sinkFrames = before?.sinkFrames ?? 0;
    if (before?.live && before.sourceWidth && before.sourceHeight && before.fps) {
      this.adoptGeometry({ width: before.sourceWidth, height: before.sourceHeight, fps: before.fps, codec: before.codec ?? 'unknown' });
      this.scene = (await states.getScenes(this.videoId)).at(-1)?.index ?? -1;
      this.log.info({ resumeFrom: this.nextIndex }, 'resuming live video');
    }
    const ticker = setInterval(() => void this.tick(), this.tickMs);
    let connection: LiveConnection | undefined;
    // A stop or an idle source must also end a connection that waits (a listener with no publisher).
    this.onTick = () => (this.stopReason || this.idle || this.connectTimedOut ? connection?.close() : undefined);
    try {
      let backoff = settings.liveReconnectMinMs;
      for (;;) {
        this.signal?.throwIfAborted();
        if (this.stopReason) break;
        await this.checkDestination();
        connection = this.deps.ffmpeg.open(this.url, {
          live: this.data.options.live,
          size: this.geometry ? { width: this.geometry.width, height: this.geometry.height } : undefined,
          fps: this.geometry ? this.geometry.fps : this.requestedFps,
        });
        const abort = () => void connection?.close();
        this.signal?.addEventListener('abort', abort, { once: true });
        let framesThisConnection = 0;
        try {
          const geometry = await connection.ready;
          if (!this.geometry) await this.start(geometry);
          for await (const frame of connection.frames(this.geometry!)) {
            await this.onFrame(frame, Date.now());
            framesThisConnection++;
            if (this.stopReason) break;
          }
        } catch (error) {
          this.signal?.throwIfAborted();
          if (!this.stopReason) this.log.warn({ reason: redactText(error instanceof Error ? error.message : String(error)) }, 'live source read failed');
        } finally {
          this.signal?.removeEventListener('abort', abort);
          await connection.close();
        }
        this.signal?.throwIfAborted();
        if (this.stopReason) break;
        const { code, lastLine } = await connection.exited;
        if (!this.geometry && this.connectTimeoutMs !== undefined && (this.connectTimedOut || Date.now() - this.startedAt >= this.connectTimeoutMs)) {
          throw this.connectFailure(lastLine);
        }
        if (framesThisConnection > 0) backoff = settings.liveReconnectMinMs;
        if (this.endsAtEof && framesThisConnection > 0 && code === 0) {
          this.stopReason = 'source-ended';
          break;
        }
        if (this.idleTooLong()) {
          if (!this.geometry) {
            throw new FfmpegError(
              `${this.shown}: the live source delivered no video within ${settings.liveEndAfterSeconds} s (${redactText(lastLine) || 'no message from ffmpeg'})`,
            );
          }
          this.stopReason = 'idle';
          break;
        }
        this.log.info({ code, lastLine: redactText(lastLine), frames: framesThisConnection, retryInMs: backoff }, 'live source dropped; reconnecting');
        await sleep(backoff, this.signal, () => this.stopReason !== undefined || this.connectTimedOut);
        backoff = Math.min(backoff * 2, settings.liveReconnectMaxMs);
        if (this.stopReason) break;
        if (this.connectTimedOut && !this.geometry) throw this.connectFailure(lastLine);
        this.reconnects++;
        liveReconnects.inc();
      }
      return await this.finish();
    } finally {
      clearInterval(ticker);
      await connection?.close();
    }
  }

  /** An API submission's source (and restream target) must still pass the destination policy: E_INPUT_URL_DESTINATION otherwise (final). */
  private async checkDestination(): Promise<void> {
    const policy = this.deps.urlPolicy;
    if (!policy || this.data.input.kind !== 'url' || !this.data.input.restricted) return;
    await policy.check(new URL(this.url), this.shown);
    const restreamUrl = this.data.options.live?.restreamUrl;
    if (restreamUrl) await policy.check(new URL(restreamUrl), 'live.restreamUrl');
  }

  /** E_LIVE_CONNECT: final (no retry), and says what ffmpeg last said. */
  private connectFailure(lastLine: string): StreamsegError {
    return new StreamsegError(
      ErrorCode.LIVE_CONNECT,
      `${this.shown}: no video from the live source within ${(this.connectTimeoutMs ?? 0) / 1000} s (${redactText(lastLine) || 'no message from ffmpeg'}); check its address, port and credentials, or raise STREAMSEG_LIVE_CONNECT_TIMEOUT_MS`,
    );
  }

  private onTick: () => unknown = () => undefined;
  private ticking = false;

  /** Periodic checks: stop requested, idle past the end limit. Never throws. */
  private async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      const now = Date.now();
      if (now - this.keptAliveAt >= KEEP_ALIVE_MS) {
        this.keptAliveAt = now;
        await this.deps.liveLog.keepAlive(this.videoId);
      }
      if (!this.stopReason && (await this.deps.liveLog.stopRequested(this.videoId))) {
        this.log.info('live video stop requested');
        this.stopReason = 'stopped';
      }
      if (!this.geometry && this.connectTimeoutMs !== undefined && now - this.startedAt >= this.connectTimeoutMs) this.connectTimedOut = true;
      if (!this.stopReason && this.idleTooLong()) {
        this.idle = true;
        if (this.geometry) this.stopReason = 'idle';
      }
      this.onTick();
    } catch (error) {
      this.log.debug({ err: error }, 'live tick failed');
    } finally {
      this.ticking = false;
    }
  }

  private idleTooLong(): boolean {
    const limit = this.deps.settings.liveEndAfterSeconds;
    return limit > 0 && Date.now() - this.lastFrameAt > limit * 1000;
  }

  private adoptGeometry(geometry: LiveGeometry): void {
    this.geometry = geometry;
    this.resizer = new LetterboxResizer(geometry.width, geometry.height, planModelInput(this.deps.modelInput, geometry.width, geometry.height));
    this.image = { data: new Uint8Array(0), width: geometry.width, height: geometry.height };
  }

  /** First connection: the video's facts, then its sink job (the sink sizes its outputs by them). */
  private async start(geometry: LiveGeometry): Promise<void> {
    this.adoptGeometry(geometry);
    const resizer = this.resizer!;
    const { states, queues } = this.deps;
    await states.setProbe(this.videoId, {
      sourceWidth: geometry.width,
      sourceHeight: geometry.height,
      fps: geometry.fps,
      sourceFps: geometry.fps,
      durationMs: 0,
      expectedFrames: 0,
      inputWidth: resizer.inputWidth,
      inputHeight: resizer.inputHeight,
      letterbox: resizer.rect,
      codec: geometry.codec,
      live: true,
    });
    const restreamUrl = this.data.options.live?.restreamUrl;
    await this.deps.liveLog.setOutputs(this.videoId, restreamUrl ? { restreamUrl } : {});
    this.log.info({ ...geometry, policy: this.policy.policy, maxInFlight: this.policy.maxInFlight }, 'live source open');
    await addSinkJob(queues.sink, { videoId: this.videoId, outDir: this.data.options.outDir }, this.deps.settings.jobAttempts);
  }

  private async onFrame(frame: Buffer, capturedAtMs: number): Promise<void> {
    const started = performance.now();
    this.lastFrameAt = capturedAtMs;
    const index = this.nextIndex++;
    framesProcessed.inc({ stage: 'decode' });
    this.image!.data = frame;
    if (this.detector.next(this.image!)) {
      this.scene++;
      this.sceneStartFrame = index;
      await this.deps.states.addScene(this.videoId, { index: this.scene, startFrame: index });
    }
    let inFlight = await this.inFlight();
    if (this.held && this.policy.mayRelease(inFlight)) {
      const held = this.held;
      this.held = undefined;
      await this.enqueue(held.index, held.source, held.capturedAtMs, held.scene, held.sceneStartFrame);
      inFlight++;
    }
    const decision = this.policy.decide(inFlight);
    if (decision === 'enqueue') {
      await this.enqueue(index, frame, capturedAtMs, this.scene, this.sceneStartFrame);
    } else if (decision === 'evict-oldest') {
      if (await this.evictOldest()) await this.enqueue(index, frame, capturedAtMs, this.scene, this.sceneStartFrame);
      else await this.drop([index]);
    } else if (decision === 'hold') {
      if (this.held) await this.drop([this.held.index]);
      this.held = { index, capturedAtMs, source: Buffer.from(frame), scene: this.scene, sceneStartFrame: this.sceneStartFrame };
    } else {
      await this.drop([index]);
    }
    await this.deps.states.setDecodedFrames(this.videoId, this.nextIndex);
    if (capturedAtMs - this.lastProgressAt >= 1000) {
      this.lastProgressAt = capturedAtMs;
      await this.job.updateProgress({ decodedFrames: this.nextIndex, expectedFrames: 0 });
    }
    this.activeMs += performance.now() - started;
  }

  /** Frames enqueued and not yet emitted by the sink (dropped ones are not in flight). */
  private async inFlight(): Promise<number> {
    const raw = await this.deps.states.get(this.videoId);
    if (!raw) throw new StreamsegError(ErrorCode.VIDEO_GONE, `video ${this.videoId} vanished from Redis (deleted or expired); live decoding stopped`);
    if (raw.status === 'failed')
      throw new StreamsegError(ErrorCode.VIDEO_FAILED, `video ${this.videoId} failed elsewhere (${raw.error ?? 'no reason'}); live decoding stopped`);
    this.sinkFrames = Math.max(this.sinkFrames, raw.sinkFrames);
    while (this.queued.length > 0 && this.queued[0]! < this.sinkFrames) this.queued.shift();
    return this.queued.length;
  }

  private async enqueue(index: number, source: Buffer, capturedAtMs: number, scene: number, sceneStartFrame: number): Promise<void> {
    const { frameStore, liveLog, queues } = this.deps;
    const input = await this.resizer!.resize(source);
    await Promise.all([frameStore.putFrame(this.videoId, index, source, input), liveLog.recordCapture(this.videoId, index, capturedAtMs)]);
    const job = framesJob(this.data, { index: Math.max(scene, 0), startFrame: sceneStartFrame }, [{ index, timestampMs: this.timestampOf(index) }], {
      width: this.resizer!.inputWidth,
      height: this.resizer!.inputHeight,
    });
    // One frame per job: a batch would hold the first frame back until the last one arrives.
    await addFramesJob(queues.frames, job, this.deps.settings.jobAttempts, 'live');
    this.queued.push(index);
  }

  /** drop-oldest: takes back the oldest frames job no worker has started; false when none could be. */
  private async evictOldest(): Promise<boolean> {
    for (let k = 0; k < this.queued.length; k++) {
      const index = this.queued[k]!;
      if ((await this.deps.queues.frames.remove(this.jobId(index))) === 1) {
        // A running job is locked (0), but a finished one is removed too: its result is stored
        // then (the frame is on its way to the sink), or already emitted and deleted by the sink
        // (which moves sinkFrames past it first). Either way the frame was not evicted.
        if (await this.deps.frameStore.getResult(this.videoId, index)) continue;
        const sinkFrames = (await this.deps.states.get(this.videoId))?.sinkFrames ?? 0;
        if (index < sinkFrames) continue;
        this.queued.splice(k, 1);
        await this.deps.frameStore.deleteFrame(this.videoId, index);
        await this.drop([index]);
        return true;
      }
    }
    return false;
  }

  private async drop(indices: number[]): Promise<void> {
    await this.deps.liveLog.markDropped(this.videoId, indices);
    this.dropped += indices.length;
    framesDropped.inc({ reason: this.policy.policy }, indices.length);
  }

  private async finish(): Promise<LiveSummary> {
    const { states } = this.deps;
    const ended = this.stopReason ?? 'source-ended';
    if (this.held) {
      // The last frame held back goes even over the limit: the stream ends with its latest frame.
      const held = this.held;
      this.held = undefined;
      await this.enqueue(held.index, held.source, held.capturedAtMs, held.scene, held.sceneStartFrame);
    }
    if (!this.geometry) {
      throw ended === 'stopped'
        ? new StreamsegError(ErrorCode.LIVE_NO_VIDEO, `${this.shown}: stopped before the live source delivered any video; nothing was written`)
        : new FfmpegError(`${this.shown}: the live source ended before delivering any video`);
    }
    await states.markDecoded(this.videoId, this.nextIndex);
    await states.addStageTime(this.videoId, 'decode', this.activeMs);
    stageSeconds.observe({ stage: 'decode' }, this.activeMs / 1000);
    const summary = this.summary(ended);
    this.log.info(summary, 'live video ended');
    return summary;
  }

  private summary(ended: LiveSummary['ended']): LiveSummary {
    return { videoId: this.videoId, frames: this.nextIndex, dropped: this.dropped, reconnects: this.reconnects, ended };
  }

  /** Frames are numbered at the output rate; a live timestamp is the index on that timeline. */
  private timestampOf(index: number): number {
    return (index * 1000) / (this.geometry?.fps ?? 25);
  }

  private jobId(index: number): string {
    return `${this.videoId}-${index}`;
  }
}

/** Waits `ms`, or less when aborted (throws) or when `done()` turns true (checked every 50 ms). */
function sleep(ms: number, signal: AbortSignal | undefined, done: () => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const timer = setInterval(
      () => {
        if (signal?.aborted) {
          clearInterval(timer);
          reject(signal.reason);
        } else if (done() || Date.now() - started >= ms) {
          clearInterval(timer);
          resolve();
        }
      },
      Math.min(50, ms),
    );
  });
}

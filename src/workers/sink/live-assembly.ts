import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { RedisConnection } from '../../shared/redis.js';
import { ErrorCode, FrameError, StreamsegError } from '../../shared/errors/index.js';
import type { FrameResult } from '../../shared/frame-store.js';
import { MaskUnletterboxer } from '../../shared/letterbox.js';
import { LiveFrameLog } from '../../shared/live-frame-log.js';
import type { Logger } from '../../shared/logger.js';
import { LIVE_OUTPUT_DIR, LIVE_PLAYLIST, OUTPUT_FILES } from '../../shared/output-layout.js';
import { framesDropped, framesProcessed, liveLatencySeconds, stageSeconds } from '../../shared/metrics.js';
import { LiveOutputRepository, type LiveOutput, type LiveOutputOptions } from './live-output.repository.js';
import { LiveMaskFile } from './live-mask-file.js';
import { ReorderBuffer } from './reorder-buffer.js';
import { SceneTracker, buildReport } from './report-builder.js';
import { waitForProbeFacts } from './probe-facts.js';
import type { LiveSinkSettings, SinkDependencies, SinkJobHandle, SinkSettings, SinkSummary } from './sink-types.js';

/** A frame record of a live video: the worker's record plus when and what around it. */
export interface LiveFrameRecord extends FrameResult {
  /** Wall clock (ms since the epoch) when the producer read the frame from the source. */
  captureTimeMs: number | null;
  /** Wall clock when the sink emitted it (live outputs written, record published). */
  outputTimeMs: number;
  /** outputTimeMs − captureTimeMs. */
  latencyMs: number | null;
  /** Frames dropped (workers behind, or lost) right before this one: the gap is explicit. */
  droppedBefore: number;
}

/** Latencies kept for the report's percentiles (the most recent ones). */
const LATENCY_SAMPLES = 10_000;

type Item = { kind: 'frame'; mask: Buffer; record: FrameResult } | { kind: 'dropped' } | { kind: 'lost' };

/**
 * One attempt at a live video's sink. Frames are released in index order as for files, but a
 * live video never waits for a frame that will not come: indices the producer dropped are
 * stepped over (their gap is counted into the next record's `droppedBefore`, and the previous
 * annotated frame is repeated in the outputs so they keep real time), and a frame missing for
 * `lostAfterMs` while later ones exist is given up as lost. Each frame goes to the live outputs
 * (rolling HLS, optional restream), masks.ndjson and the Redis Stream, with its capture and
 * output times; its data leaves Redis at once (a live frame is never replayed). The video ends
 * when the producer has marked it decoded (stopped, or the source ended): the playlist is closed
 * and report.json written.
 */
export class LiveAssembly {
  private readonly dir: string;
  private redis?: RedisConnection;
  private blocking?: RedisConnection;
  private output?: LiveOutput;
  private masks?: LiveMaskFile;
  private readonly latencies: number[] = [];
  private latencyCursor = 0;
  private emitted = 0;
  private lost = 0;
  private gaps = 0;
  private activeMs = 0;

  constructor(
    private readonly deps: SinkDependencies & { live?: LiveSinkSettings },
    private readonly tuning: Required<SinkSettings>,
    private readonly videoId: string,
    private readonly outDir: string,
    private readonly job: SinkJobHandle,
    private readonly log: Logger,
    private readonly signal?: AbortSignal,
  ) {
    this.dir = path.join(outDir, LIVE_OUTPUT_DIR);
  }

  async execute(): Promise<SinkSummary> {
    const { frameStore, states, stream, overlay } = this.deps;
    const { lookahead, waitSeconds, statusCheckMs } = this.tuning;
    const live = this.deps.live ?? {};
    const lostAfterMs = live.lostAfterMs ?? 10_000;
    this.redis = this.deps.openBlockingConnection();
    this.blocking = this.deps.openBlockingConnection();
    for (const connection of [this.redis, this.blocking]) connection.on('error', (error) => this.log.warn({ err: error }, 'sink live connection error'));
    // The sink only reads and forgets what the producer logged; the TTL applies to writes.
    const liveLog = new LiveFrameLog(this.redis, this.deps.live?.frameTtlSeconds ?? 3600);

    const video = await waitForProbeFacts(this.deps.states, this.videoId, this.signal);
    if (video.status === 'done') return { videoId: this.videoId, frames: video.sinkFrames, scenes: 0, outDir: this.outDir };
    const { sourceWidth: width, sourceHeight: height, fps } = video;
    await mkdir(this.dir, { recursive: true });
    const { restreamUrl } = await liveLog.getOutputs(this.videoId);
    const outputOptions: LiveOutputOptions = { dir: this.dir, width, height, fps, listSize: live.hlsListSize, restreamUrl };
    this.output = live.createOutput ? live.createOutput(outputOptions) : new LiveOutputRepository(outputOptions);
    const masksFile = path.join(this.outDir, OUTPUT_FILES.masks);
    // A sink taking a live video over appends to what the previous one wrote.
    this.masks = await LiveMaskFile.open(masksFile, this.deps.classNames, video.sinkFrames > 0);
    this.log.info({ width, height, fps, dir: this.dir, restreamUrl, from: video.sinkFrames }, 'assembling live video');

    const unletterbox = new MaskUnletterboxer(video.letterbox, video.inputWidth, width, height);
    const maskBytes = video.inputWidth * video.inputHeight;
    const sourceMask = new Uint8Array(width * height);
    const scenes = new SceneTracker();
    // A live frame that was passed is gone for good: a sink taking over starts where the last stopped.
    const buffer = new ReorderBuffer<Item>(video.sinkFrames);
    let totalFrames = video.totalFrames;
    let decodedFrames = video.decodedFrames;
    let lastAnnotated: Buffer | undefined;
    let gap = 0;
    let headSince = Date.now();
    let lastStatusAt = 0;
    let lastProgressAt = Date.now();

    for (;;) {
      this.signal?.throwIfAborted();
      const from = buffer.next;
      const to = Math.min(from + lookahead, totalFrames ?? Number.MAX_SAFE_INTEGER);
      const wanted: number[] = [];
      for (let i = from; i < to; i++) if (!buffer.has(i)) wanted.push(i);
      const [fetched, dropped] = await Promise.all([
        Promise.all(wanted.map((i) => frameStore.getResult(this.videoId, i))),
        liveLog.droppedBetween(this.videoId, from, to),
      ]);
      fetched.forEach((result, k) => {
        if (result) buffer.push(wanted[k]!, { kind: 'frame', ...result });
      });
      for (const index of dropped) buffer.push(index, { kind: 'dropped' });
      if (!buffer.has(from) && from < decodedFrames - 1 && Date.now() - headSince > lostAfterMs) {
        this.log.warn({ index: from, waitedMs: Date.now() - headSince }, 'live frame lost (never segmented); skipped');
        buffer.push(from, { kind: 'lost' });
      }

      const released: number[] = [];
      for (const { index, item } of buffer.drain()) {
        const started = performance.now();
        if (item.kind !== 'frame') {
          gap++;
          if (item.kind === 'lost') {
            this.lost++;
            framesDropped.inc({ reason: 'lost' });
            await liveLog.countLost(this.videoId, 1);
          }
          // The outputs keep real time: a dropped frame shows the previous annotated one again.
          if (lastAnnotated) await this.output.write(lastAnnotated);
          continue;
        }
        if (item.mask.length !== maskBytes) {
          throw new FrameError(ErrorCode.FRAME_SIZE, `mask of frame ${index} has ${item.mask.length} bytes, ${video.inputWidth}x${video.inputHeight} expected`);
        }
        const [source, [captureTimeMs = null]] = await Promise.all([frameStore.getSource(this.videoId, index), liveLog.captureTimes(this.videoId, [index])]);
        if (!source) {
          // Expired or deleted under us: a gap like any other, never a stall.
          gap++;
          this.lost++;
          framesDropped.inc({ reason: 'lost' });
          await liveLog.countLost(this.videoId, 1);
          continue;
        }
        unletterbox.apply(item.mask, sourceMask);
        const annotated = await overlay.annotate(source, sourceMask, width, height);
        await this.output.write(annotated);
        lastAnnotated = annotated;
        const outputTimeMs = Date.now();
        const latencyMs = captureTimeMs === null ? null : outputTimeMs - captureTimeMs;
        const record: LiveFrameRecord = { ...item.record, captureTimeMs, outputTimeMs, latencyMs, droppedBefore: gap };
        this.gaps += gap > 0 ? 1 : 0;
        gap = 0;
        await stream.append(this.videoId, record);
        this.masks.write(record, sourceMask, height, width, unletterbox.columnOffsets);
        scenes.add(record);
        if (latencyMs !== null) this.observeLatency(latencyMs);
        released.push(index);
        this.emitted++;
        framesProcessed.inc({ stage: 'sink' });
        this.activeMs += performance.now() - started;
      }

      const now = Date.now();
      if (buffer.next > from) {
        headSince = now;
        await states.setSinkFrames(this.videoId, buffer.next);
        await frameStore.deleteFrames(this.videoId, from, buffer.next);
        await liveLog.forgetBelow(this.videoId, buffer.next, released);
        if (now - lastProgressAt >= 1000) {
          lastProgressAt = now;
          await this.job.updateProgress({ sinkFrames: buffer.next, totalFrames: 0 });
        }
      }
      if (buffer.next > from && now - lastStatusAt < statusCheckMs) continue;
      lastStatusAt = now;
      const state = await states.get(this.videoId);
      if (!state) throw new StreamsegError(ErrorCode.VIDEO_GONE, `video ${this.videoId} vanished from Redis (deleted or expired); sink stopped`);
      if (state.status === 'failed')
        throw new StreamsegError(ErrorCode.VIDEO_FAILED, `video ${this.videoId} failed (${state.error ?? 'no reason'}); sink stopped`);
      totalFrames = state.totalFrames;
      decodedFrames = state.decodedFrames;
      if (totalFrames !== undefined && buffer.next >= totalFrames) break;
      if (buffer.next === from) await frameStore.waitForResults(this.videoId, waitSeconds, this.blocking);
    }
    return this.finish(buffer.next, scenes);
  }

  private observeLatency(ms: number): void {
    liveLatencySeconds.observe(ms / 1000);
    if (this.latencies.length < LATENCY_SAMPLES) this.latencies.push(ms);
    else this.latencies[this.latencyCursor++ % LATENCY_SAMPLES] = ms;
  }

  private async finish(frames: number, scenes: SceneTracker): Promise<SinkSummary> {
    const { states } = this.deps;
    const started = performance.now();
    await this.output!.finish();
    await this.masks!.close();
    await states.setSinkFrames(this.videoId, frames);
    const activeMs = this.activeMs + (performance.now() - started);
    await states.addStageTime(this.videoId, 'sink', activeMs);
    stageSeconds.observe({ stage: 'sink' }, activeMs / 1000);
    const state = await states.get(this.videoId);
    if (!state) throw new StreamsegError(ErrorCode.VIDEO_GONE, `video ${this.videoId} vanished from Redis before its report was written`);
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const pct = (q: number) => (sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
    const report = {
      ...buildReport({ state, frames: this.emitted, scenes: scenes.list, finishedAt: Date.now() }),
      live: {
        /** Frame indices used: emitted + dropped by the producer + lost. */
        frameIndices: frames,
        emittedFrames: this.emitted,
        droppedFrames: state.droppedFrames ?? 0,
        lostFrames: this.lost,
        gaps: this.gaps,
        latencyMs: { p50: pct(0.5), p95: pct(0.95), max: sorted.at(-1) ?? null, samples: sorted.length },
        playlist: path.join(LIVE_OUTPUT_DIR, LIVE_PLAYLIST),
      },
    };
    const file = path.join(this.outDir, OUTPUT_FILES.report);
    await writeFile(`${file}.partial`, `${JSON.stringify(report, null, 2)}\n`);
    await rename(`${file}.partial`, file);
    await states.markDone(this.videoId);
    this.closeConnections();
    this.log.info(
      { frames, emitted: this.emitted, dropped: report.live.droppedFrames, lost: this.lost, latencyMs: report.live.latencyMs },
      'live video finished',
    );
    return { videoId: this.videoId, frames: this.emitted, scenes: report.scenes.length, outDir: this.outDir };
  }

  /** Stops after a failure; never throws. Live outputs are not resumable: what was written stays. */
  async cleanUp(final: boolean): Promise<void> {
    void final;
    this.closeConnections();
    await Promise.allSettled([this.output?.abort(), this.masks?.abort()]);
  }

  private closeConnections(): void {
    this.redis?.disconnect();
    this.blocking?.disconnect();
    this.redis = undefined;
    this.blocking = undefined;
  }
}

import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { RedisConnection } from '../../shared/redis.js';
import type { FrameResult } from '../../shared/frame-store.js';
import { LiveFrameLog } from '../../shared/live-frame-log.js';
import { LIVE_OUTPUT_DIR, LIVE_PLAYLIST, OUTPUT_FILES } from '../../shared/output-layout.js';
import { framesDropped, framesProcessed, liveLatencySeconds, stageSeconds } from '../../shared/metrics.js';
import { LiveOutputRepository, type LiveOutput, type LiveOutputOptions } from './live-output.repository.js';
import { LiveMaskFile } from './live-mask-file.js';
import { ReorderBuffer } from './reorder-buffer.js';
import { SceneTracker, buildReport } from './report-builder.js';
import { readRunningVideo, waitForProbeFacts, type ProbedState } from './probe-facts.js';
import { writeReportAndFinish } from './report-file.js';
import { SourceMask } from './source-mask.js';
import type { AssemblyRun, LiveSinkSettings, SinkDependencies, SinkSettings, SinkSummary } from './sink-types.js';

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

/** What each released index is written with, for one attempt. */
interface FrameSteps {
  liveLog: LiveFrameLog;
  mask: SourceMask;
  scenes: SceneTracker;
}

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
  /** Indices stepped over since the last emitted frame (dropped, lost or gone). */
  private gap = 0;
  /** The last frame written to the outputs, shown again for each index stepped over. */
  private lastAnnotated?: Buffer;
  private lastProgressAt = 0;

  constructor(
    private readonly deps: SinkDependencies & { live?: LiveSinkSettings },
    private readonly tuning: Required<SinkSettings>,
    private readonly run: AssemblyRun,
  ) {
    this.dir = path.join(run.outDir, LIVE_OUTPUT_DIR);
  }

  async execute(): Promise<SinkSummary> {
    const { videoId, outDir, signal, log } = this.run;
    const { frameStore, states } = this.deps;
    const { lookahead, waitSeconds, statusCheckMs } = this.tuning;
    const lostAfterMs = this.deps.live?.lostAfterMs ?? 10_000;
    this.redis = this.deps.openBlockingConnection();
    this.blocking = this.deps.openBlockingConnection();
    for (const connection of [this.redis, this.blocking]) connection.on('error', (error) => log.warn({ err: error }, 'sink live connection error'));
    // The sink only reads and forgets what the producer logged; the TTL applies to writes.
    const liveLog = new LiveFrameLog(this.redis, this.deps.live?.frameTtlSeconds ?? 3600);

    const video = await waitForProbeFacts(states, videoId, signal);
    if (video.status === 'done') return { videoId, frames: video.sinkFrames, scenes: 0, outDir };
    await this.openOutputs(video, liveLog);
    const frames: FrameSteps = { liveLog, mask: new SourceMask(video), scenes: new SceneTracker() };
    // A live frame that was passed is gone for good: a sink taking over starts where the last stopped.
    const buffer = new ReorderBuffer<Item>(video.sinkFrames);
    let totalFrames = video.totalFrames;
    let decodedFrames = video.decodedFrames;
    let headSince = Date.now();
    let lastStatusAt = 0;
    this.lastProgressAt = Date.now();

    for (;;) {
      signal?.throwIfAborted();
      const from = buffer.next;
      const to = Math.min(from + lookahead, totalFrames ?? Number.MAX_SAFE_INTEGER);
      await this.fetchAhead(buffer, from, to, liveLog);
      if (!buffer.has(from) && from < decodedFrames - 1 && Date.now() - headSince > lostAfterMs) {
        log.warn({ index: from, waitedMs: Date.now() - headSince }, 'live frame lost (never segmented); skipped');
        buffer.push(from, { kind: 'lost' });
      }

      const released: number[] = [];
      for (const { index, item } of buffer.drain()) {
        if (await this.emit(index, item, frames)) released.push(index);
      }

      const now = Date.now();
      if (buffer.next > from) {
        headSince = now;
        await this.advance(from, buffer.next, released, liveLog, now);
      }
      if (buffer.next > from && now - lastStatusAt < statusCheckMs) continue;
      lastStatusAt = now;
      ({ totalFrames, decodedFrames } = await readRunningVideo(states, videoId));
      if (totalFrames !== undefined && buffer.next >= totalFrames) break;
      if (buffer.next === from) await frameStore.waitForResults(videoId, waitSeconds, this.blocking);
    }
    return this.finish(buffer.next, frames.scenes);
  }

  /**
   * Opens the live outputs (rolling HLS, the restream the source asked for) and masks.ndjson:
   * a sink taking a live video over appends to what the previous one wrote.
   */
  private async openOutputs(video: ProbedState, liveLog: LiveFrameLog): Promise<void> {
    const { videoId, outDir, log } = this.run;
    const live = this.deps.live ?? {};
    const { sourceWidth: width, sourceHeight: height, fps } = video;
    await mkdir(this.dir, { recursive: true });
    const { restreamUrl } = await liveLog.getOutputs(videoId);
    const outputOptions: LiveOutputOptions = { dir: this.dir, width, height, fps, listSize: live.hlsListSize, restreamUrl };
    this.output = live.createOutput ? live.createOutput(outputOptions) : new LiveOutputRepository(outputOptions);
    const masksFile = path.join(outDir, OUTPUT_FILES.masks);
    this.masks = await LiveMaskFile.open(masksFile, this.deps.classNames, video.sinkFrames > 0);
    log.info({ width, height, fps, dir: this.dir, restreamUrl, from: video.sinkFrames }, 'assembling live video');
  }

  /**
   * Fetches the results of [from, to) not held yet, and which of those indices the producer
   * dropped, in one burst of requests.
   */
  private async fetchAhead(buffer: ReorderBuffer<Item>, from: number, to: number, liveLog: LiveFrameLog): Promise<void> {
    const { videoId } = this.run;
    const wanted = buffer.missing(to);
    const [fetched, dropped] = await Promise.all([
      Promise.all(wanted.map((i) => this.deps.frameStore.getResult(videoId, i))),
      liveLog.droppedBetween(videoId, from, to),
    ]);
    fetched.forEach((result, k) => {
      if (result) buffer.push(wanted[k]!, { kind: 'frame', ...result });
    });
    for (const index of dropped) buffer.push(index, { kind: 'dropped' });
  }

  /**
   * One released index. A frame goes to the live outputs, the Redis Stream and masks.ndjson,
   * with its capture and output times; a dropped or lost index (or a frame whose source is gone)
   * is stepped over and counted into the next record's `droppedBefore`. Returns whether a frame
   * was emitted.
   */
  private async emit(index: number, item: Item, { liveLog, mask, scenes }: FrameSteps): Promise<boolean> {
    const { videoId } = this.run;
    const { width, height } = mask;
    const started = performance.now();
    if (item.kind !== 'frame') {
      this.gap++;
      if (item.kind === 'lost') await this.countLost(liveLog);
      // The outputs keep real time: a dropped frame shows the previous annotated one again.
      if (this.lastAnnotated) await this.output!.write(this.lastAnnotated);
      return false;
    }
    const pixels = mask.project(index, item.mask);
    const [source, [captureTimeMs = null]] = await Promise.all([this.deps.frameStore.getSource(videoId, index), liveLog.captureTimes(videoId, [index])]);
    if (!source) {
      // Expired or deleted under us: a gap like any other, never a stall.
      this.gap++;
      await this.countLost(liveLog);
      return false;
    }
    const annotated = await this.deps.overlay.annotate(source, pixels, width, height);
    await this.output!.write(annotated);
    this.lastAnnotated = annotated;
    const outputTimeMs = Date.now();
    const latencyMs = captureTimeMs === null ? null : outputTimeMs - captureTimeMs;
    const record: LiveFrameRecord = { ...item.record, captureTimeMs, outputTimeMs, latencyMs, droppedBefore: this.gap };
    this.gaps += this.gap > 0 ? 1 : 0;
    this.gap = 0;
    await this.deps.stream.append(videoId, record);
    this.masks!.write(record, pixels, height, width, mask.columnOffsets);
    scenes.add(record);
    if (latencyMs !== null) this.observeLatency(latencyMs);
    this.emitted++;
    framesProcessed.inc({ stage: 'sink' });
    this.activeMs += performance.now() - started;
    return true;
  }

  /**
   * The sink is past [from, next): says so (the producer's backpressure signal), and the frames'
   * data and log entries leave Redis at once, as a live frame is never replayed.
   */
  private async advance(from: number, next: number, released: readonly number[], liveLog: LiveFrameLog, now: number): Promise<void> {
    const { videoId, job } = this.run;
    await this.deps.states.setSinkFrames(videoId, next);
    await this.deps.frameStore.deleteFrames(videoId, from, next);
    await liveLog.forgetBelow(videoId, next, released);
    if (now - this.lastProgressAt >= 1000) {
      this.lastProgressAt = now;
      await job.updateProgress({ sinkFrames: next, totalFrames: 0 });
    }
  }

  private async countLost(liveLog: LiveFrameLog): Promise<void> {
    this.lost++;
    framesDropped.inc({ reason: 'lost' });
    await liveLog.countLost(this.run.videoId, 1);
  }

  private observeLatency(ms: number): void {
    liveLatencySeconds.observe(ms / 1000);
    if (this.latencies.length < LATENCY_SAMPLES) this.latencies.push(ms);
    else this.latencies[this.latencyCursor++ % LATENCY_SAMPLES] = ms;
  }

  private async finish(frames: number, scenes: SceneTracker): Promise<SinkSummary> {
    const { videoId, outDir, log } = this.run;
    const { states } = this.deps;
    const started = performance.now();
    await this.output!.finish();
    await this.masks!.close();
    await states.setSinkFrames(videoId, frames);
    const activeMs = this.activeMs + (performance.now() - started);
    await states.addStageTime(videoId, 'sink', activeMs);
    stageSeconds.observe({ stage: 'sink' }, activeMs / 1000);
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const pct = (q: number) => (sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
    const report = await writeReportAndFinish(states, videoId, path.join(outDir, OUTPUT_FILES.report), (state) => ({
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
    }));
    this.closeConnections();
    log.info({ frames, emitted: this.emitted, dropped: report.live.droppedFrames, lost: this.lost, latencyMs: report.live.latencyMs }, 'live video finished');
    return { videoId, frames: this.emitted, scenes: report.scenes.length, outDir };
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

import type { FrameResult } from '../../shared/frame-store.js';
import type { VideoState } from '../../shared/video-state.js';

export interface SceneReport {
  index: number;
  startFrame: number;
  /** Exclusive. */
  endFrame: number;
  frames: number;
  /** Adapters and weights the scene's frames were segmented with; empty = base model. */
  adapters: FrameResult['adapters'];
}

/** annotated.mp4 as written (videos, not live streams). */
export interface OutputMediaReport {
  /** Its video: always yuv420p and BT.709; an odd source size is padded by one pixel (masks stay at the source size). */
  video?: {
    width: number;
    height: number;
    pixelFormat: 'yuv420p';
    colorMatrix: 'bt709';
    /** Columns added on the right and rows at the bottom (copies of the last one), 0 or 1 each. */
    padded: { right: number; bottom: number };
    /** Says what was padded, when something was. */
    note?: string;
    /** Presentation time of the first frame, ms: the source's own start. */
    startMs: number;
  };
  /** Its audio: the source's, copied or transcoded to AAC; or none, and why. */
  audio?: { action: 'copy' | 'aac'; codec: string } | { action: 'none'; reason: string };
}

export interface VideoReport {
  videoId: string;
  /** The input as probed: its size, codec and own frame rate. */
  source: { width: number; height: number; fps: number; codec: string };
  /** What annotated.mp4 and masks.ndjson hold: the source rate, or the rate asked for (--fps). */
  output: { fps: number } & OutputMediaReport;
  frames: number;
  scenes: SceneReport[];
  timings: {
    /** Submission (or start of decoding) to the end of the sink. */
    wallMs: number;
    /** Active milliseconds per stage, summed over jobs and processes (stages overlap in time). */
    stageMs: { decode: number; segment: number; sink: number } & Record<string, number>;
    /** Frames / wall time. */
    framesPerSecond: number;
  };
  warnings: string[];
}

/**
 * Follows the scenes of the frames the sink writes, in order. Built from the records rather
 * than the producer's scene list, so the report describes exactly what was emitted.
 */
export class SceneTracker {
  private readonly scenes: SceneReport[];

  /** `scenes`: those of the frames already written (a sink resuming from a checkpoint). */
  constructor(scenes: readonly SceneReport[] = []) {
    this.scenes = scenes.map((s) => ({ ...s }));
  }

  add(record: FrameResult): void {
    const last = this.scenes[this.scenes.length - 1];
    if (last && last.index === record.scene && last.endFrame === record.index) {
      last.endFrame++;
      last.frames++;
      return;
    }
    this.scenes.push({ index: record.scene, startFrame: record.index, endFrame: record.index + 1, frames: 1, adapters: record.adapters });
  }

  get list(): readonly SceneReport[] {
    return this.scenes;
  }
}

/** report.json of a finished video. */
export function buildReport(input: {
  state: VideoState;
  frames: number;
  scenes: readonly SceneReport[];
  finishedAt: number;
  warnings?: readonly string[];
  media?: OutputMediaReport;
}): VideoReport {
  const { state, frames, finishedAt } = input;
  const began = state.submittedAt ?? state.startedAt ?? finishedAt;
  const wallMs = Math.max(0, finishedAt - began);
  const round = (ms: number) => Math.round(ms * 10) / 10;
  const stageMs: VideoReport['timings']['stageMs'] = { decode: 0, segment: 0, sink: 0 };
  for (const [stage, ms] of Object.entries(state.stageMs)) stageMs[stage] = round(ms);
  return {
    videoId: state.videoId,
    source: { width: state.sourceWidth ?? 0, height: state.sourceHeight ?? 0, fps: state.sourceFps ?? state.fps ?? 0, codec: state.codec ?? 'unknown' },
    output: { fps: state.fps ?? 0, ...input.media },
    frames,
    scenes: input.scenes.map((s) => ({ ...s })),
    timings: { wallMs: round(wallMs), stageMs, framesPerSecond: wallMs > 0 ? Math.round((frames / (wallMs / 1000)) * 100) / 100 : 0 },
    warnings: [...state.warnings, ...(input.warnings ?? [])],
  };
}

import { ErrorCode } from '../../shared/errors/index.js';
import { redactText } from '../../shared/redact-credentials.js';
import type { VideoState, VideoStatus } from '../../shared/video-state.js';

/** A stage's progress: frames done of the total (known once decoding ends, estimated before). */
export interface StageProgress {
  done: number;
  total: number | null;
  /** done / total in 0..1, null while the total is unknown. */
  fraction: number | null;
}

export type VideoApiStatus = VideoStatus | 'cancelled';

/** What the API shows of a video (GET /v1/videos/:id, list items, SSE progress events). */
export interface VideoView {
  id: string;
  status: VideoApiStatus;
  /** A live source (camera, network stream): no annotated.mp4; watch it through `outputs.hls`. */
  live: boolean;
  error: string | null;
  submittedAt: number | null;
  startedAt: number | null;
  finishedAt: number | null;
  source: { width: number; height: number; fps: number; durationMs: number; codec: string } | null;
  /** Exact once decoding has finished; until then the estimate from the container. */
  totalFrames: number | null;
  totalIsEstimate: boolean;
  stages: { decode: StageProgress; segment: StageProgress; sink: StageProgress };
  /** Active milliseconds per stage, summed over jobs. */
  stageMs: Record<string, number>;
  warnings: string[];
  /** Output URLs (relative to the API root); `hls` while the video is produced (always for a live source). */
  outputs: { annotated: string; masks: string; report: string; hls: string | null; events: string };
}

export function videoView(state: VideoState): VideoView {
  const exact = state.totalFrames;
  const total = exact ?? state.expectedFrames ?? null;
  const stage = (done: number): StageProgress => {
    const bounded = total === null ? done : Math.min(done, total);
    return { done: bounded, total, fraction: total ? Math.min(1, bounded / total) : total === 0 ? 1 : null };
  };
  const base = `/v1/videos/${encodeURIComponent(state.videoId)}`;
  return {
    id: state.videoId,
    status: state.status,
    live: state.live === true,
    error: state.error === undefined ? null : redactText(state.error),
    submittedAt: state.submittedAt ?? null,
    startedAt: state.startedAt ?? null,
    finishedAt: state.finishedAt ?? null,
    source:
      state.sourceWidth !== undefined && state.sourceHeight !== undefined
        ? {
            width: state.sourceWidth,
            height: state.sourceHeight,
            fps: state.sourceFps ?? state.fps ?? 0,
            durationMs: state.durationMs ?? 0,
            codec: state.codec ?? 'unknown',
          }
        : null,
    totalFrames: total,
    totalIsEstimate: exact === undefined,
    stages: { decode: stage(state.decodedFrames), segment: stage(state.segmentedFrames), sink: stage(state.sinkFrames) },
    stageMs: state.stageMs,
    warnings: state.warnings.map(redactText),
    outputs: {
      annotated: `${base}/annotated.mp4`,
      masks: `${base}/masks.ndjson`,
      report: `${base}/report.json`,
      hls: state.status === 'done' && !state.live ? null : `${base}/hls/index.m3u8`,
      events: `${base}/events`,
    },
  };
}

/** The view of a cancelled video whose keys are gone: only its tombstone remains. */
export function cancelledView(videoId: string, cancelledAt: number): VideoView {
  const none: StageProgress = { done: 0, total: null, fraction: null };
  const base = `/v1/videos/${encodeURIComponent(videoId)}`;
  return {
    id: videoId,
    status: 'cancelled',
    live: false,
    error: `${ErrorCode.CANCELLED}: cancelled through the API`,
    submittedAt: null,
    startedAt: null,
    finishedAt: cancelledAt || null,
    source: null,
    totalFrames: null,
    totalIsEstimate: true,
    stages: { decode: none, segment: none, sink: none },
    stageMs: {},
    warnings: [],
    outputs: { annotated: `${base}/annotated.mp4`, masks: `${base}/masks.ndjson`, report: `${base}/report.json`, hls: null, events: `${base}/events` },
  };
}

import type { RedisConnection } from '../../shared/redis.js';
import type { FrameStore } from '../../shared/frame-store.js';
import type { AssembleVideoJob, SourceDecode } from '../../shared/job-schemas.js';
import type { RawPixelFormat } from '../../shared/media/raw-pixel-format.js';
import type { Logger } from '../../shared/logger.js';
import type { VideoStateStore } from '../../shared/video-state.js';
import type { SourceFrameHandoffs } from '../../shared/source-frame-handoff.js';
import type { FrameStreamRepository } from './frame-stream.repository.js';
import type { LiveOutput, LiveOutputOptions } from './live-output.repository.js';
import type { OverlayRepository } from './overlay.repository.js';
import type { JoinMedia } from './segment-concat.repository.js';
import type { SinkCheckpointStore } from './sink-checkpoint.store.js';

/**
 * What the sink's parts share: the orchestrator (SinkService) and the two assemblies (VideoAssembly
 * for files, LiveAssembly for live sources) all import these, and none imports another's module
 * for them, so the sink's files import each other in one direction only.
 */

/** What the sink needs of an encoder (VideoEncoderRepository in production). */
export interface FrameEncoder {
  /**
   * Resolves once the encoder has room for the next frame. `onFlushed` is called once the frame's
   * bytes have left this process: until then the caller must not change them.
   */
  write(frame: Uint8Array, onFlushed?: () => void): Promise<void>;
  finish(): Promise<void>;
  abort(): Promise<void>;
}

/** Decodes a file's source frames in the sink (SourceDecoderRepository in production). */
export interface SourceFrameDecoder {
  decodeSourceFrames(decode: SourceDecode, pixelFormat: RawPixelFormat, signal?: AbortSignal): AsyncGenerator<Buffer, number, undefined>;
}

export interface SinkJobHandle {
  data: unknown;
  attemptsMade: number;
  opts: { attempts?: number };
  updateProgress(progress: number | object): Promise<void>;
}

/** One attempt at one video, as the orchestrator hands it to an assembly (file or live). */
export interface AssemblyRun {
  videoId: string;
  /** The sink job's data, parsed once by the orchestrator. */
  data: AssembleVideoJob;
  /** The video's output directory, already checked against the output root. */
  outDir: string;
  job: SinkJobHandle;
  /** The orchestrator's logger, bound to the video. */
  log: Logger;
  /** Aborted on shutdown: the attempt stops and the video resumes later. */
  signal?: AbortSignal;
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
  /** Frames per encoded segment, each closed with a checkpoint (STREAMSEG_SINK_SEGMENT_FRAMES). @defaultValue 256 */
  segmentFrames?: number;
}

export interface SinkDependencies {
  frameStore: FrameStore;
  states: VideoStateStore;
  stream: FrameStreamRepository;
  overlay: OverlayRepository;
  /** Where each video's outputs are durably written up to (shared by every sink). */
  checkpoints: SinkCheckpointStore;
  /** Decodes a file's source frames when the producer left them out of Redis. @defaultValue SourceDecoderRepository (ffmpeg from PATH) */
  sourceDecoder?: SourceFrameDecoder;
  /** Source frames the producer of this process hands over (`streamseg run`); unset: none. */
  sourceHandoffs?: SourceFrameHandoffs;
  /** Encodes one segment of annotated.mp4 (its `file` is a segment file) from frames in `pixelFormat`. */
  createEncoder(options: { file: string; width: number; height: number; fps: number; pixelFormat: RawPixelFormat }): FrameEncoder;
  /** Joins the closed segments (and the source's audio) into annotated.mp4. @defaultValue concatSegments (ffmpeg from PATH) */
  joinSegments?(segments: readonly string[], output: string, media?: JoinMedia): Promise<void>;
  /** Outputs are written only under this directory (STREAMSEG_OUT); unset: anywhere (tests). */
  outputRoot?: string;
  /** A dedicated connection per video: BLPOP holds its connection while it waits. */
  openBlockingConnection(): RedisConnection;
  /** Mask value → class name (manifest.classes order). */
  classNames: readonly string[];
  settings?: SinkSettings;
  /** Live videos' outputs (see LiveAssembly). @defaultValue LiveSinkSettings defaults */
  live?: LiveSinkSettings;
  logger: Logger;
}

export interface SinkSummary {
  videoId: string;
  frames: number;
  scenes: number;
  outDir: string;
}

/** Tuning of live videos in the sink; the defaults suit production. */
export interface LiveSinkSettings {
  /** Segments in the rolling playlist (STREAMSEG_LIVE_HLS_LIST_SIZE). @defaultValue 6 */
  hlsListSize?: number;
  /**
   * A frame neither emitted nor dropped this long after the sink started waiting for it, while
   * later frames exist, is given up as lost (a failed frames job): the stream never stalls on it.
   * @defaultValue 10000
   */
  lostAfterMs?: number;
  /** Lifetime of the live keys the sink writes (lost-frame counts), seconds (STREAMSEG_FRAME_TTL_SECONDS). @defaultValue 3600 */
  frameTtlSeconds?: number;
  /** Builds the live outputs. @defaultValue LiveOutputRepository (ffmpeg from PATH) */
  createOutput?(options: LiveOutputOptions): LiveOutput;
}

import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Queue } from 'bullmq';
import { ErrorCode, InputError } from './errors/index.js';
import { decodeVideoJobSchema, parseJob, type DecodeVideoJob, type LiveOptions, type VideoInput } from './job-schemas.js';
import { JobName } from './queues.js';
import type { VideoStateStore } from './video-state.js';
import type { RetrievalOverrides } from './retrieval-options.js';

/** Sortable by submission time, unique enough across processes. */
export function newVideoId(): string {
  return `v${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;
}

const ALLOWED_SCHEMES = ['http:', 'https:', 'rtsp:', 'udp:'];

/** Turns what a user typed (a path or a URL) into a validated video input. */
export async function resolveVideoInput(input: string): Promise<VideoInput> {
  // ffmpeg protocols may carry options before the colon (`subfile,,start,0,end,9,,:/etc/passwd`).
  const scheme = /^([a-z][a-z0-9+.-]*)(?:,[^:/]*)?:/i.exec(input)?.[1]?.toLowerCase();
  // One-letter "schemes" are Windows drive letters, not URLs.
  if (scheme && scheme.length > 1) {
    if (!ALLOWED_SCHEMES.includes(`${scheme}:`)) {
      throw new InputError(ErrorCode.INPUT_URL_SCHEME, `${scheme}: URLs are not accepted; give a local file path or an http, https, rtsp or udp URL`);
    }
    return { kind: 'url', url: input };
  }
  const absolute = path.resolve(input);
  const info = await stat(absolute).catch(() => null);
  if (!info) throw new InputError(ErrorCode.INPUT_NOT_FOUND, `${input}: no such file; check the path`);
  if (info.isDirectory()) {
    throw new InputError(ErrorCode.INPUT_DIRECTORY, `${input}: is a directory, not a video file; give one video file (one command per video)`);
  }
  if (!info.isFile()) {
    throw new InputError(ErrorCode.INPUT_NOT_FILE, `${input}: not a regular file; give a video file, or - to read a live stream from stdin`);
  }
  return { kind: 'file', path: absolute };
}

export interface SubmitOptions {
  outDir: string;
  fps?: number;
  classes?: string[];
  /** Adapter retrieval/merge overrides for this video. */
  retrieval?: RetrievalOverrides;
  /** Use this id instead of a random one (ids are checked like any other). */
  videoId?: string;
  /** Live source settings (rtsp/udp/HLS URLs are live without them). */
  live?: LiveOptions;
  /** false: annotated.mp4 without the input's audio. @defaultValue true */
  audio?: boolean;
}

/** Queues a video for decoding and records its initial state; returns the video id. */
export class VideoSubmitter {
  constructor(
    private readonly videos: Queue,
    private readonly states: VideoStateStore,
    private readonly attempts: number,
  ) {}

  /**
   * `input`: what a CLI user typed (a path or a URL, resolved here), or an input the caller has
   * already validated (the API: never a path taken from a request).
   */
  async submit(input: string | VideoInput, options: SubmitOptions): Promise<string> {
    const videoId = options.videoId ?? newVideoId();
    const data: DecodeVideoJob = parseJob(decodeVideoJobSchema, 'videos', {
      videoId,
      input: typeof input === 'string' ? await resolveVideoInput(input) : input,
      options: {
        outDir: path.resolve(options.outDir),
        fps: options.fps,
        classes: options.classes,
        retrieval: options.retrieval,
        live: options.live,
        audio: options.audio,
      },
      submittedAt: Date.now(),
    });
    await this.states.init(videoId, { outDir: data.options.outDir, submittedAt: data.submittedAt });
    await this.videos.add(JobName.DecodeVideo, data, {
      jobId: videoId,
      attempts: this.attempts,
      backoff: { type: 'exponential', delay: 1000 },
      removeOnComplete: { age: 24 * 3600, count: 1000 },
      removeOnFail: { age: 7 * 24 * 3600 },
    });
    return videoId;
  }
}

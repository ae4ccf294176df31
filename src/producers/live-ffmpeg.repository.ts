import type { ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { FfmpegError } from '../shared/errors/index.js';
import type { LiveOptions } from '../shared/job-schemas.js';
import { redactText, redactUrl } from '../shared/redact-credentials.js';
import { liveInputSpec } from './live-source.js';
import { readRawFrames } from '../shared/media/raw-frame-reader.js';
import { startMediaReader } from '../shared/media/media-process.js';

/** What ffmpeg reports about a live source once it has opened it and set up decoding. */
export interface LiveGeometry {
  width: number;
  height: number;
  /** Frames per second of the raw output (the source's nominal rate, or the requested one). */
  fps: number;
  /** Codec of the source's video stream, as ffmpeg names it. */
  codec: string;
}

export interface LiveOpenOptions {
  live?: LiveOptions;
  /** Scale every frame to this size (a reconnected source keeps the first connection's size). */
  size?: { width: number; height: number };
  /** Resample to this rate (fps filter); unset: frames pass through as the source sends them. */
  fps?: number;
}

export interface LiveFfmpegRepositoryOptions {
  /** @defaultValue `ffmpeg` from PATH */
  ffmpegPath?: string;
  /** Frame rate assumed when ffmpeg reports none. @defaultValue 25 */
  fallbackFps?: number;
}

/**
 * One open live source: ffmpeg reading it and writing raw RGB24 frames to a pipe. Nothing is
 * probed beforehand (a live source has no duration and may be readable only once, e.g. stdin):
 * size and rate come from ffmpeg's own description of its output, read from stderr before the
 * first frame is taken from the pipe.
 */
export class LiveConnection {
  /** Resolves with the geometry once ffmpeg has opened the source; rejects if it exits first. */
  readonly ready: Promise<LiveGeometry>;
  /** Resolves when ffmpeg has exited: its code (null when killed) and last stderr line. */
  readonly exited: Promise<{ code: number | null; lastLine: string }>;
  private readonly child: ChildProcessByStdio<null, Readable, Readable>;
  private lastLine = '';
  private killed = false;

  constructor(
    ffmpegPath: string,
    args: readonly string[],
    private readonly name: string,
    fallbackFps: number,
  ) {
    this.child = startMediaReader(ffmpegPath, args);
    // stdout stays paused until the geometry is known: frames wait in the pipe meanwhile.
    this.child.stdout.pause();
    let resolveReady!: (g: LiveGeometry) => void;
    let rejectReady!: (e: Error) => void;
    this.ready = new Promise((resolve, reject) => {
      resolveReady = resolve;
      rejectReady = reject;
    });
    this.ready.catch(() => undefined);
    let pending = '';
    let inOutput = false;
    let codec = 'unknown';
    let known = false;
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split(/\r?\n|\r/);
      pending = lines.pop() ?? '';
      if (pending.length > 8192) pending = pending.slice(-8192);
      for (const raw of lines) {
        const line = raw.trim();
        if (!line) continue;
        if (!line.startsWith('frame=')) this.lastLine = redactText(line);
        if (known) continue;
        if (line.startsWith('Output #0')) inOutput = true;
        const video = /Stream #0:\d+.*?: Video: ([\w-]+)/.exec(line);
        if (!video) continue;
        if (!inOutput) {
          codec = video[1]!;
          continue;
        }
        const size = /, (\d{1,5})x(\d{1,5})[ ,]/.exec(line);
        const fps = /, ([\d.]+) fps/.exec(line);
        if (!size) continue;
        known = true;
        const rate = fps ? Number(fps[1]) : NaN;
        // A rate ffmpeg cannot tell (or an absurd one) falls back: the outputs need a sane rate.
        resolveReady({ width: Number(size[1]), height: Number(size[2]), fps: rate > 0 && rate <= 240 ? rate : fallbackFps, codec });
      }
    });
    this.exited = new Promise((resolve) => {
      this.child.once('error', (error) => {
        this.lastLine = /ENOENT/.test(error.message) ? `${ffmpegPath} not found: install ffmpeg (apt-get install ffmpeg)` : error.message;
        resolve({ code: null, lastLine: this.lastLine });
      });
      this.child.once('close', (code) => resolve({ code, lastLine: this.lastLine }));
    });
    void this.exited.then(({ code, lastLine }) =>
      rejectReady(new FfmpegError(`${name}: the live source closed before delivering video (${lastLine || `exit code ${code}`})`)),
    );
  }

  /**
   * The frames, each valid until the next is requested (the buffer is reused). Ends when ffmpeg
   * exits (the source ended or dropped); a frame cut short by a kill ends the iteration quietly.
   */
  async *frames(geometry: LiveGeometry): AsyncGenerator<Buffer, void, undefined> {
    this.child.stdout.resume();
    try {
      yield* readRawFrames(this.child.stdout, geometry.width * geometry.height * 3, { name: this.name });
    } catch (error) {
      if (!this.killed) throw error;
    }
  }

  /** The last thing ffmpeg said (for logs and error messages). */
  get lastStderrLine(): string {
    return this.lastLine;
  }

  /** Kills ffmpeg (idempotent) and waits until it is gone. */
  async close(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.killed = true;
      this.child.kill('SIGKILL');
    }
    await this.exited;
  }
}

/**
 * Runs ffmpeg on live sources (RTSP as client or listener, UDP MPEG-TS, HLS, progressive HTTP,
 * stdin through a loopback relay): argument arrays only, a protocol whitelist fitting the scheme.
 */
export class LiveFfmpegRepository {
  private readonly ffmpegPath: string;
  private readonly fallbackFps: number;

  constructor(options: LiveFfmpegRepositoryOptions = {}) {
    this.ffmpegPath = options.ffmpegPath ?? 'ffmpeg';
    this.fallbackFps = options.fallbackFps ?? 25;
  }

  open(url: string, options: LiveOpenOptions = {}): LiveConnection {
    // The name goes into messages: never the credentials.
    return new LiveConnection(this.ffmpegPath, liveDecodeArgs(url, options), redactUrl(url), this.fallbackFps);
  }
}

/**
 * ffmpeg arguments: live input → raw RGB24 frames on stdout, as they arrive. HDR is not
 * tone-mapped here (unlike a file, see hdrToSdrFilter): a live source is not probed before
 * ffmpeg opens it, so its transfer is unknown when the filters are chosen.
 */
export function liveDecodeArgs(url: string, options: LiveOpenOptions = {}): string[] {
  const spec = liveInputSpec(url, options.live);
  const filters: string[] = [];
  if (options.size) filters.push(`scale=${options.size.width}:${options.size.height}`);
  if (options.fps) filters.push(`fps=${options.fps}`);
  // prettier-ignore
  return [
    // info level: the output stream's description (size, rate) is read from stderr.
    '-hide_banner', '-nostdin', '-nostats', '-loglevel', 'info',
    '-flags', 'low_delay',
    ...spec.inputArgs,
    '-i', spec.locator,
    '-map', '0:v:0', '-an', '-sn', '-dn',
    ...(filters.length > 0 ? ['-vf', filters.join(',')] : []),
    // A live frame is passed on when it arrives: no duplicates to fill a stall, none held back.
    ...(options.fps ? [] : ['-fps_mode', 'passthrough']),
    '-f', 'rawvideo', '-pix_fmt', 'rgb24',
    'pipe:1',
  ];
}

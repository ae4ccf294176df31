import { spawn, type ChildProcessByStdio } from 'node:child_process';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { FfmpegError, StreamsegError } from '../../shared/errors/index.js';

export interface LiveOutputOptions {
  /** Directory of the rolling playlist (`index.m3u8`) and its segments. */
  dir: string;
  width: number;
  height: number;
  fps: number;
  /** Segments kept in the playlist (older ones are deleted). @defaultValue 6 */
  listSize?: number;
  /** Also publish the annotated stream here: rtsp:// (to a server) or udp:// (MPEG-TS). */
  restreamUrl?: string;
  /** @defaultValue `ffmpeg` from PATH */
  ffmpegPath?: string;
}

/** What the live sink needs of its output (LiveOutputRepository in production). */
export interface LiveOutput {
  readonly playlist: string;
  write(frame: Uint8Array): Promise<void>;
  finish(): Promise<void>;
  abort(): Promise<void>;
}

export const LIVE_PLAYLIST = 'index.m3u8';
/** Segment length of the live playlist, seconds; keyframes are forced on this grid. */
const HLS_TIME = 1;

/**
 * ffmpeg arguments: raw RGB24 on stdin → H.264 (ultrafast, zerolatency, a keyframe every
 * second so every 1 s segment starts with one) → low-latency HLS with a rolling playlist, and
 * with `restreamUrl`, the same encoded stream to an RTSP server or a UDP address as well (tee
 * muxer: one encode; a restream target that fails is ignored, the HLS output goes on).
 */
export function liveOutputArgs(options: LiveOutputOptions): string[] {
  const playlist = path.join(options.dir, LIVE_PLAYLIST);
  const gop = String(Math.max(1, Math.round(options.fps * HLS_TIME)));
  const listSize = String(options.listSize ?? 6);
  const hlsFlags = 'delete_segments+independent_segments';
  const args = [
    '-hide_banner', '-loglevel', 'error', '-nostdin', '-y',
    '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${options.width}x${options.height}`, '-framerate', String(options.fps),
    '-i', 'pipe:0',
    '-map', '0:v', '-an',
    // yuv420p (what HLS players decode) needs even sizes: pad an odd edge by one pixel.
    '-vf', 'pad=ceil(iw/2)*2:ceil(ih/2)*2',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-pix_fmt', 'yuv420p',
    '-g', gop, '-keyint_min', gop, '-sc_threshold', '0', '-force_key_frames', `expr:gte(t,n_forced*${HLS_TIME})`,
    '-flush_packets', '1',
  ];
  if (!options.restreamUrl) {
    return [
      ...args,
      '-f', 'hls', '-hls_time', String(HLS_TIME), '-hls_list_size', listSize, '-hls_flags', hlsFlags,
      playlist,
    ];
  }
  for (const [what, value] of [['output directory', playlist], ['restream URL', options.restreamUrl]] as const) {
    // The tee muxer splits on these characters; such names are refused rather than half-escaped.
    if (/[|[\]\\']/.test(value)) throw new StreamsegError('E_LIVE_OUTPUT', `${what} ${value} holds one of | [ ] \\ ' which the live outputs cannot carry`);
  }
  const restream = /^rtsp:/i.test(options.restreamUrl)
    ? `[f=rtsp:rtsp_transport=tcp:onfail=ignore]${options.restreamUrl}`
    : `[f=mpegts:onfail=ignore]${options.restreamUrl}`;
  const hls = `[f=hls:hls_time=${HLS_TIME}:hls_list_size=${listSize}:hls_flags=${hlsFlags}]${playlist}`;
  return [...args, '-f', 'tee', `${hls}|${restream}`];
}

/**
 * One ffmpeg process serving a live video's outputs. `write` resolves when ffmpeg can take
 * more; `finish` closes stdin and waits (the playlist gets its ENDLIST); `abort` kills it.
 * Errors quote ffmpeg's last stderr line.
 */
export class LiveOutputRepository implements LiveOutput {
  readonly playlist: string;
  private readonly child: ChildProcessByStdio<Writable, null, Readable>;
  private readonly exited: Promise<void>;
  private readonly frameBytes: number;
  private lastStderrLine = '';
  private failure?: FfmpegError;
  private finished?: Promise<void>;
  private aborted = false;

  constructor(private readonly options: LiveOutputOptions) {
    this.playlist = path.join(options.dir, LIVE_PLAYLIST);
    this.frameBytes = options.width * options.height * 3;
    this.child = spawn(options.ffmpegPath ?? 'ffmpeg', liveOutputArgs(options), { stdio: ['pipe', 'ignore', 'pipe'] });
    let tail = '';
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (chunk: string) => {
      tail = (tail + chunk).slice(-4096);
      const lines = tail.split('\n').map((l) => l.trim()).filter(Boolean);
      this.lastStderrLine = lines[lines.length - 1] ?? this.lastStderrLine;
    });
    this.child.stdin.on('error', () => undefined);
    this.exited = new Promise((resolve) => {
      this.child.once('error', (error) => {
        this.failure = new FfmpegError(`cannot run ffmpeg (${error.message}): install it (apt-get install ffmpeg)`, { cause: error });
        resolve();
      });
      this.child.once('close', (code, signal) => {
        if (code !== 0 && !this.aborted) {
          this.failure ??= new FfmpegError(`ffmpeg writing the live outputs of ${options.dir} exited with ${code ?? signal}: ${this.lastStderrLine || 'no message'}`);
        }
        resolve();
      });
    });
  }

  async write(frame: Uint8Array): Promise<void> {
    if (this.failure) throw this.failure;
    if (frame.length !== this.frameBytes) {
      throw new RangeError(`frame has ${frame.length} bytes, ${this.options.width}x${this.options.height} RGB needs ${this.frameBytes}`);
    }
    if (this.child.stdin.write(frame)) return;
    await Promise.race([new Promise<void>((resolve) => this.child.stdin.once('drain', resolve)), this.exited]);
    if (this.failure) throw this.failure;
  }

  finish(): Promise<void> {
    return (this.finished ??= (async () => {
      this.child.stdin.end();
      await this.exited;
      if (this.failure) throw this.failure;
    })());
  }

  async abort(): Promise<void> {
    this.aborted = true;
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}

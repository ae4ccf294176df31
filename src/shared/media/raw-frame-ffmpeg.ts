import type { ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { FfmpegError } from '../errors/index.js';
import { startMediaWriter } from './media-process.js';
import { rawFrameBytes, type RawPixelFormat } from './raw-pixel-format.js';

export interface RawFrameFfmpegOptions {
  /** ffmpeg arguments, reading raw frames in `pixelFormat` from `pipe:0`. */
  args: string[];
  width: number;
  height: number;
  /** @defaultValue `rgb24` */
  pixelFormat?: RawPixelFormat;
  /** What this ffmpeg writes, for error messages ("encoding out/x.mp4"). */
  describe: string;
  /** @defaultValue `ffmpeg` from PATH */
  ffmpegPath?: string;
}

/**
 * One ffmpeg process fed raw frames on stdin: what the sink's encoders (annotated.mp4
 * segments, the live HLS output) and synth's video encoder share.
 * `write` resolves when ffmpeg can take more, so a slow encoder slows the sink instead of
 * growing its memory; `end` closes stdin and waits for a clean exit; `kill` stops it at once.
 * Errors quote ffmpeg's last stderr line.
 */
export class RawFrameFfmpeg {
  readonly frameBytes: number;
  private readonly child: ChildProcessByStdio<Writable, null, Readable>;
  private readonly exited: Promise<void>;
  private lastStderrLine = '';
  private failure?: FfmpegError;
  private killed = false;

  constructor(private readonly options: RawFrameFfmpegOptions) {
    this.frameBytes = rawFrameBytes(options.width, options.height, options.pixelFormat ?? 'rgb24');
    this.child = startMediaWriter(options.ffmpegPath ?? 'ffmpeg', options.args);
    let stderrTail = '';
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (chunk: string) => {
      // Keep only a tail: ffmpeg can be chatty, and only the last line explains a failure.
      stderrTail = (stderrTail + chunk).slice(-4096);
      const lines = stderrTail
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean);
      this.lastStderrLine = lines[lines.length - 1] ?? this.lastStderrLine;
    });
    // EPIPE after ffmpeg died is reported through the exit below, with its stderr.
    this.child.stdin.on('error', () => undefined);
    this.exited = new Promise((resolve) => {
      this.child.once('error', (error) => {
        this.failure = new FfmpegError(`cannot run ffmpeg (${error.message}): install it (apt-get install ffmpeg)`, { cause: error });
        resolve();
      });
      this.child.once('close', (code, signal) => {
        if (code !== 0 && !this.killed) {
          this.failure ??= new FfmpegError(`ffmpeg ${options.describe} exited with ${code ?? signal}: ${this.lastStderrLine || 'no message'}`);
        }
        resolve();
      });
    });
  }

  /**
   * Writes one frame; resolves once ffmpeg has room for the next. `onFlushed` is called
   * when the frame's bytes have been handed to the pipe (or the write failed): only then may
   * the caller reuse the buffer.
   */
  async write(frame: Uint8Array, onFlushed?: () => void): Promise<void> {
    if (this.failure) throw this.failure;
    if (frame.length !== this.frameBytes) {
      throw new RangeError(
        `frame has ${frame.length} bytes, ${this.options.width}x${this.options.height} ${this.options.pixelFormat ?? 'rgb24'} needs ${this.frameBytes}`,
      );
    }
    if (this.child.stdin.write(frame, onFlushed && (() => onFlushed()))) return;
    // Backpressure: wait for 'drain', or for ffmpeg to die (then 'drain' never comes).
    await Promise.race([new Promise<void>((resolve) => this.child.stdin.once('drain', resolve)), this.exited]);
    if (this.failure) throw this.failure;
  }

  /** Closes stdin and waits for ffmpeg; rejects with its failure, if any. */
  async end(): Promise<void> {
    this.child.stdin.end();
    await this.exited;
    if (this.failure) throw this.failure;
  }

  /** Kills ffmpeg (its exit is then not a failure) and waits for it; safe at any time. */
  async kill(): Promise<void> {
    this.killed = true;
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}

import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { rename, rm } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import { FfmpegError } from '../../shared/errors/index.js';

export interface VideoEncoderOptions {
  /** Final path; frames go to `<file>.partial` until `finish()` renames it. */
  file: string;
  width: number;
  height: number;
  fps: number;
  /** @defaultValue `ffmpeg` from PATH */
  ffmpegPath?: string;
}

/**
 * ffmpeg arguments for raw RGB24 on stdin → H.264 MP4. yuv420p (what every player decodes)
 * needs even sizes; an odd width or height keeps its exact size with yuv444p instead of
 * being scaled or cropped.
 */
export function encoderArgs(options: Pick<VideoEncoderOptions, 'width' | 'height' | 'fps'>, output: string): string[] {
  const even = options.width % 2 === 0 && options.height % 2 === 0;
  return [
    '-hide_banner', '-loglevel', 'error', '-nostdin', '-y',
    '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${options.width}x${options.height}`, '-framerate', String(options.fps),
    '-i', 'pipe:0',
    '-an',
    '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '20',
    '-pix_fmt', even ? 'yuv420p' : 'yuv444p',
    '-movflags', '+faststart',
    // The output name ends in .partial: name the container explicitly.
    '-f', 'mp4',
    output,
  ];
}

/**
 * One ffmpeg process encoding one video (the only place the sink runs ffmpeg). `write`
 * resolves when ffmpeg can take more, so a slow encoder slows the sink instead of growing
 * its memory; `finish` closes stdin, waits for a clean exit and renames the file into place;
 * `abort` kills ffmpeg and removes the partial file. Errors quote ffmpeg's last stderr line.
 */
export class VideoEncoderRepository {
  private readonly child: ChildProcessByStdio<Writable, null, Readable>;
  private readonly partial: string;
  private readonly exited: Promise<void>;
  private lastStderrLine = '';
  private failure?: FfmpegError;
  private finished?: Promise<void>;
  private aborted = false;
  readonly frameBytes: number;
  framesWritten = 0;

  constructor(private readonly options: VideoEncoderOptions) {
    this.frameBytes = options.width * options.height * 3;
    this.partial = `${options.file}.partial`;
    this.child = spawn(options.ffmpegPath ?? 'ffmpeg', encoderArgs(options, this.partial), { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderrTail = '';
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (chunk: string) => {
      // Keep only a tail: ffmpeg can be chatty, and only the last line explains a failure.
      stderrTail = (stderrTail + chunk).slice(-4096);
      const lines = stderrTail.split('\n').map((l) => l.trim()).filter(Boolean);
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
        if (code !== 0 && !this.aborted) {
          this.failure ??= new FfmpegError(
            `ffmpeg encoding ${options.file} exited with ${code ?? signal}: ${this.lastStderrLine || 'no message'}`,
          );
        }
        resolve();
      });
    });
  }

  /** Writes one RGB24 frame; resolves once ffmpeg has room for the next. */
  async write(frame: Uint8Array): Promise<void> {
    if (this.failure) throw this.failure;
    if (frame.length !== this.frameBytes) {
      throw new RangeError(`frame has ${frame.length} bytes, ${this.options.width}x${this.options.height} RGB needs ${this.frameBytes}`);
    }
    this.framesWritten++;
    if (this.child.stdin.write(frame)) return;
    // Backpressure: wait for 'drain', or for ffmpeg to die (then 'drain' never comes).
    await Promise.race([new Promise<void>((resolve) => this.child.stdin.once('drain', resolve)), this.exited]);
    if (this.failure) throw this.failure;
  }

  /** Ends the stream, waits for ffmpeg, moves the file into place. Idempotent. */
  finish(): Promise<void> {
    return (this.finished ??= (async () => {
      this.child.stdin.end();
      await this.exited;
      if (this.failure) {
        await rm(this.partial, { force: true });
        throw this.failure;
      }
      await rename(this.partial, this.options.file);
    })());
  }

  /** Kills ffmpeg and removes the partial file; safe at any time. */
  async abort(): Promise<void> {
    this.aborted = true;
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
    await rm(this.partial, { force: true });
  }
}

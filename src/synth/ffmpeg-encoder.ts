import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { FfmpegError } from '../shared/errors/index.js';

export interface EncoderOptions {
  out: string;
  width: number;
  height: number;
  fps: number;
  /** An ffmpeg video filter applied while encoding (e.g. an evaluation's unseen style). */
  filter?: string;
}

/**
 * Pipes raw RGB frames into `ffmpeg` (spawned with an argument array, never a shell)
 * and encodes H.264 yuv420p with a keyframe every second. `write` honours pipe
 * backpressure, so memory stays flat however long the video.
 */
export class RawVideoEncoder {
  private readonly child: ChildProcessByStdio<Writable, null, Readable>;
  private readonly done: Promise<void>;
  private stderrTail = '';
  private failure: Error | null = null;

  constructor(opts: EncoderOptions) {
    const gop = String(Math.max(1, Math.round(opts.fps)));
    const args = [
      '-hide_banner', '-loglevel', 'error', '-y',
      '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${opts.width}x${opts.height}`, '-r', String(opts.fps), '-i', '-',
      ...(opts.filter ? ['-vf', opts.filter] : []),
      '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-preset', 'veryfast', '-crf', '18', '-g', gop,
      '-movflags', '+faststart', opts.out,
    ];
    this.child = spawn('ffmpeg', args, { stdio: ['pipe', 'ignore', 'pipe'] });
    this.child.stderr.on('data', (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString()).slice(-2000);
    });
    // EPIPE on stdin follows an ffmpeg failure; the exit handler reports the real cause.
    this.child.stdin.on('error', () => undefined);
    this.done = new Promise<void>((resolve, reject) => {
      this.child.once('error', (error: NodeJS.ErrnoException) => {
        this.failure =
          error.code === 'ENOENT'
            ? new FfmpegError('ffmpeg not found on PATH: install it (apt-get install ffmpeg)', { cause: error })
            : new FfmpegError(`ffmpeg failed to start: ${error.message}`, { cause: error });
        reject(this.failure);
      });
      this.child.once('close', (code, signal) => {
        if (code === 0) return resolve();
        const last = this.stderrTail.trim().split('\n').pop() ?? '';
        this.failure = new FfmpegError(`ffmpeg exited with ${code ?? signal} while encoding: ${last}`);
        reject(this.failure);
      });
    });
    // Callers await finish(); this keeps an early failure from being an unhandled rejection.
    this.done.catch(() => undefined);
  }

  async write(rgb: Uint8Array): Promise<void> {
    if (this.failure) throw this.failure;
    const ok = this.child.stdin.write(rgb);
    if (!ok) {
      await new Promise<void>((resolve) => {
        const go = (): void => {
          this.child.removeListener('close', go);
          this.child.stdin.removeListener('drain', go);
          resolve();
        };
        this.child.stdin.once('drain', go);
        this.child.once('close', go);
      });
    }
    if (this.failure) throw this.failure;
  }

  async finish(): Promise<void> {
    this.child.stdin.end();
    await this.done;
  }

  /** Stops ffmpeg after a failure elsewhere; the partial output is left to the caller. */
  abort(): void {
    this.child.kill('SIGKILL');
  }
}

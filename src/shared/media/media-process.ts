import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { FrameSocket } from './frame-socket.js';
import { readRawFrames } from './raw-frame-reader.js';

/**
 * The one place streamseg starts ffmpeg and ffprobe processes (the file and live decoders,
 * the sink's encoders and segment join, the API's HLS remux, centroid extraction, synth).
 * Always an argument array, never a shell. Each caller passes the binary it was configured
 * with (`ffmpegPath`/`ffprobePath` options, `ffmpeg`/`ffprobe` from PATH by default).
 *
 * Why plain child processes and not fluent-ffmpeg (named in the design card): every process
 * here is a long-lived raw pipe (RGB24 frames in or out, with backpressure, kill on abort, the
 * last stderr line kept for the error) or a one-shot with arguments we already build and
 * test; fluent-ffmpeg's command builder and event layer would sit between us and the pipes
 * without removing any of that code.
 */

/** stdout and stderr piped (decoders, probes). */
export function startMediaReader(command: string, args: readonly string[], env?: NodeJS.ProcessEnv): ChildProcessByStdio<null, Readable, Readable> {
  return spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env } : {}) });
}

/** A decoder whose stdout is read as raw frames; stderr piped. */
export interface FrameReader {
  readonly child: ChildProcessByStdio<null, Readable | null, Readable>;
  /** Exact frames of `frameBytes`, each valid until the next is asked for; returns the count. */
  frames(frameBytes: number, name: string): AsyncGenerator<Buffer, number, undefined>;
  /** Stops reading; safe at any time (kill the child separately). */
  close(): void;
}

/**
 * Starts a decoder whose raw frames are read into reused memory through a FrameSocket. Where
 * no socket can be made (a TMPDIR too long for a socket path), through its stdout pipe as
 * before: the same frames, with a fresh buffer per read.
 */
export async function startFrameReader(command: string, args: readonly string[], env?: NodeJS.ProcessEnv): Promise<FrameReader> {
  const socket = await FrameSocket.open().catch(() => undefined);
  if (!socket) {
    const child = startMediaReader(command, args, env);
    return { child, frames: (frameBytes, name) => readRawFrames(child.stdout, frameBytes, { name }), close: () => child.stdout.destroy() };
  }
  const child = spawn(command, args, { stdio: ['ignore', socket.childEnd, 'pipe'], ...(env ? { env } : {}) });
  socket.releaseChildEnd();
  return { child, frames: (frameBytes, name) => socket.frames(frameBytes, name), close: () => socket.close() };
}

/** stdin and stderr piped (raw-frame encoders). */
export function startMediaWriter(command: string, args: readonly string[]): ChildProcessByStdio<Writable, null, Readable> {
  return spawn(command, args, { stdio: ['pipe', 'ignore', 'pipe'] });
}

/** stdout only (a remux streamed to a client); killed once its output is closed. */
export function startMediaStream(command: string, args: readonly string[]): ChildProcessByStdio<null, Readable, null> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'ignore'] });
  child.stdout.once('close', () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  return child;
}

/** The outcome of a process run to completion; never rejects (`spawnError` when it could not start). */
export interface MediaRun {
  code: number | null;
  stdout: string;
  /** The last 4 KiB of stderr. */
  stderr: string;
  /** Its last non-empty line (what explains a failure). */
  lastLine: string;
  spawnError?: Error;
}

/** Runs ffmpeg or ffprobe to completion (no stdin), keeping stdout and the tail of stderr. */
export function runMedia(command: string, args: readonly string[]): Promise<MediaRun> {
  return new Promise((resolve) => {
    const child = startMediaReader(command, args);
    const chunks: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-4096)));
    const done = (code: number | null, spawnError?: Error) => {
      const lastLine =
        stderr
          .split('\n')
          .map((l) => l.trim())
          .filter(Boolean)
          .pop() ?? '';
      resolve({ code, stdout: Buffer.concat(chunks).toString('utf8'), stderr, lastLine, ...(spawnError ? { spawnError } : {}) });
    };
    child.once('error', (error) => done(null, error));
    child.once('close', (code) => done(code));
  });
}

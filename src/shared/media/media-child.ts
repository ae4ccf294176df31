import type { ChildProcess } from 'node:child_process';
import { FfmpegError } from '../errors/index.js';

/**
 * What every long-running ffmpeg reader needs around its child process (the producer's file
 * decode and probe, the sink's own decode of a file's source): its exit, whether or not it
 * started, a clear error for a missing binary, and the ends of its stderr for messages.
 */

/** Resolves once the process is gone, whether it ran or failed to start. */
export function exitOf(child: ChildProcess): Promise<{ code: number | null; spawnError?: Error }> {
  return new Promise((resolve) => {
    child.once('error', (spawnError) => resolve({ code: null, spawnError }));
    child.once('close', (code) => resolve({ code }));
  });
}

export function missingBinary(command: string, error: Error): FfmpegError {
  const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
  return new FfmpegError(
    missing ? `${command} not found: install ffmpeg (apt-get install ffmpeg) or put it on PATH` : `cannot start ${command}: ${error.message}`,
    { cause: error },
  );
}

/**
 * The error for an ffmpeg build that lacks a filter streamseg uses (`No such filter: 'zscale'` on
 * its stderr): the input is fine, the machine's ffmpeg is not.
 */
export function missingFilter(command: string, filter: string): FfmpegError {
  return new FfmpegError(
    `${command} has no "${filter}" filter: streamseg needs an ffmpeg built with libzimg (zscale), which resizes frames and tone-maps HDR; ` +
      `Debian's and Ubuntu's ffmpeg packages have it (apt-get install ffmpeg)`,
  );
}

/** Keeps the last few KiB of a tool's stderr; its last non-empty line goes into error messages. */
export class StderrTail {
  private text = '';
  private first = '';
  /** Newlines seen on stderr (ffmpeg at -loglevel error prints one line per error). */
  lines = 0;

  constructor(child: ChildProcess) {
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      if (this.lines === 0) this.first = (this.first + chunk).slice(0, 4096);
      for (let i = chunk.indexOf('\n'); i >= 0; i = chunk.indexOf('\n', i + 1)) this.lines++;
      this.text = (this.text + chunk).slice(-4096);
    });
  }

  firstLine(): string {
    return (
      this.first
        .split('\n')
        .map((l) => l.trim())
        .find(Boolean) ?? ''
    );
  }

  /** The filter ffmpeg said it does not have (`No such filter: 'NAME'`), if it said so. */
  missingFilter(): string | undefined {
    return /No such filter: '([^']+)'/.exec(this.first + this.text)?.[1];
  }

  lastLine(): string {
    const lines = this.text
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
    return lines[lines.length - 1] ?? '';
  }
}

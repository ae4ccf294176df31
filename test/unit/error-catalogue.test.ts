import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { UnrecoverableError } from 'bullmq';
import { describe, expect, it } from 'vitest';
import {
  ERROR_CATALOGUE,
  ErrorCode,
  FfmpegError,
  InputError,
  JobPayloadError,
  StreamsegError,
  errorCodeOf,
  isErrorCode,
  isLastAttempt,
  isRetryable,
  jobFailure,
} from '../../src/shared/errors/index.js';
import { REPO_ROOT } from '../helpers/cli.js';

async function filesUnder(dir: string, ext: string): Promise<string[]> {
  const entries = await readdir(path.join(REPO_ROOT, dir), { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile() && e.name.endsWith(ext)).map((e) => path.relative(REPO_ROOT, path.join(e.parentPath, e.name)));
}

describe('error catalogue', () => {
  it('names every code as a typed constant and gives each a one-line message', () => {
    for (const [code, info] of Object.entries(ERROR_CATALOGUE)) {
      expect(code).toMatch(/^E_[A-Z0-9_]+$/);
      expect((ErrorCode as Record<string, string>)[code.slice(2)]).toBe(code);
      expect(info.message.length).toBeGreaterThan(0);
      expect(info.message).not.toContain('\n');
      expect(isErrorCode(code)).toBe(true);
    }
    expect(Object.keys(ErrorCode)).toHaveLength(Object.keys(ERROR_CATALOGUE).length);
    expect(isErrorCode('E_NO_SUCH_CODE')).toBe(false);
    expect(isErrorCode('toString')).toBe(false);
  });

  it('marks final every code one of the stages used to treat as permanent', () => {
    // The union of the producer's, segmentation worker's, sink's and live producer's old sets.
    // prettier-ignore
    const permanent = [
      'E_JOB_PAYLOAD', 'E_VIDEO_FAILED', 'E_VIDEO_GONE', 'E_MODEL_MISMATCH', 'E_MODEL_LOAD', 'E_FRAME_SIZE',
      'E_SINK_RESUME', 'E_OUTPUT_DIR', 'E_LIVE_NO_VIDEO', 'E_LIVE_CONNECT', 'E_CANCELLED',
      ...Object.keys(ERROR_CATALOGUE).filter((code) => code.startsWith('E_INPUT_')),
    ];
    for (const code of permanent) expect([code, ERROR_CATALOGUE[code as ErrorCode].retryable]).toEqual([code, false]);
    for (const code of [
      'E_INTERNAL',
      'E_FFMPEG',
      'E_FRAME_MISSING',
      'E_SINK_OWNER_LOST',
      'E_INFERENCE_THREAD',
      'E_SCENE_EMBEDDING',
      'E_MODEL_MANIFEST',
    ] as const) {
      expect([code, ERROR_CATALOGUE[code].retryable]).toEqual([code, true]);
    }
  });

  it('turns a failure into an UnrecoverableError or a retried Error, keeping the code in the line', () => {
    const input = new InputError(ErrorCode.INPUT_NOT_VIDEO, 'x.txt is text');
    const final = jobFailure(input);
    expect(final).toBeInstanceOf(UnrecoverableError);
    expect(final.message).toBe('E_INPUT_NOT_VIDEO: x.txt is text');
    expect(jobFailure(new JobPayloadError('frames', 'no videoId'))).toBeInstanceOf(UnrecoverableError);

    const ffmpeg = new FfmpegError('ffmpeg exited 1');
    const retried = jobFailure(ffmpeg, 'redacted line');
    expect(retried).not.toBeInstanceOf(UnrecoverableError);
    expect(retried.message).toBe('redacted line');
    expect(retried.cause).toBe(ffmpeg);

    const plain = new Error('socket closed');
    expect(errorCodeOf(plain)).toBe('E_INTERNAL');
    expect(isRetryable(plain)).toBe(true);
    expect(jobFailure(plain)).not.toBeInstanceOf(UnrecoverableError);
  });

  it('calls an attempt the last when the error is final or no attempt is left', () => {
    const gone = new StreamsegError(ErrorCode.VIDEO_GONE, 'gone');
    const ffmpeg = new FfmpegError('ffmpeg exited 1');
    expect(isLastAttempt(gone, { attemptsMade: 0, opts: { attempts: 3 } })).toBe(true);
    expect(isLastAttempt(ffmpeg, { attemptsMade: 0, opts: { attempts: 3 } })).toBe(false);
    expect(isLastAttempt(ffmpeg, { attemptsMade: 2, opts: { attempts: 3 } })).toBe(true);
    expect(isLastAttempt(ffmpeg, { attemptsMade: 0, opts: {} })).toBe(true);
  });

  it('holds every code src and the training scripts raise, and src writes none as a bare string', async () => {
    const known = new Set(Object.keys(ERROR_CATALOGUE));
    const unknown: string[] = [];
    const bare: string[] = [];
    const sources = [...(await filesUnder('src', '.ts')), ...(await filesUnder('training', '.py'))];
    for (const file of sources) {
      const text = await readFile(path.join(REPO_ROOT, file), 'utf8');
      for (const [code] of text.matchAll(/\bE_[A-Z0-9_]*[A-Z0-9]\b/g)) {
        if (code !== 'E_CODE' && !known.has(code)) unknown.push(`${file}: ${code}`);
      }
      // Owned elsewhere for now: src/eval (ScoreError) and the web page.
      if (!file.endsWith('.ts') || file.startsWith('src/shared/errors/') || file.startsWith('src/eval/') || file.startsWith('src/api/web/')) continue;
      text.split('\n').forEach((line, i) => {
        if (/^\s*(export )?type |^\s*\| |^\s*(\*|\/\*\*|\/\/)/.test(line)) return;
        if (/['"`]E_[A-Z0-9_]*[A-Z0-9]\b/.test(line)) bare.push(`${file}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(unknown).toEqual([]);
    expect(bare).toEqual([]);
  });
});

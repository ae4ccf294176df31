import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { ErrorCode, StreamsegError } from '../shared/errors/index.js';
import { IsoBmffBoxScanner, looksLikeIsoBmff } from './iso-bmff-boxes.js';
import { StdinRelay } from './stdin-relay.js';

/**
 * What `streamseg run -` reads. An MP4/MOV on stdin (`cat phone.mp4 | streamseg run -`) is a
 * finite file whose index (`moov`) is usually at the end, where a reader can only get by
 * seeking: it is spooled to a temporary file and processed as a file. A fragmented MP4 (`moof`
 * boxes: made to be streamed) and everything else (MPEG-TS, Matroska…) stays a live source,
 * relayed to the producer as it comes (StdinRelay).
 */
export type StdinSource = { kind: 'file'; path: string; close(): Promise<void> } | { kind: 'live'; url: string; close(): Promise<void> };

export interface StdinSourceOptions {
  /** Where the spool directory is made. @defaultValue os.tmpdir() (TMPDIR) */
  tmpDir?: string;
}

/** Bytes enough to tell an MP4/MOV from the rest. */
const SNIFF_BYTES = 12;

export async function openStdinSource(input: Readable, options: StdinSourceOptions = {}): Promise<StdinSource> {
  const head = await readHead(input, SNIFF_BYTES);
  if (!looksLikeIsoBmff(head)) {
    if (head.length > 0) input.unshift(head);
    return live(input);
  }
  const dir = await mkdtemp(path.join(options.tmpDir ?? os.tmpdir(), 'streamseg-stdin-'));
  const file = path.join(dir, 'stdin.mp4');
  const removeSpool = () => rm(dir, { recursive: true, force: true });
  try {
    const fragmented = await spool(input, head, file);
    if (!fragmented) return { kind: 'file', path: file, close: removeSpool };
    // Streamable after all: replay what was spooled, then the rest of stdin, as a live source.
    const replay = new PassThrough();
    replay.write(await readFile(file));
    await removeSpool();
    input.pipe(replay);
    return live(replay);
  } catch (error) {
    await removeSpool();
    throw error;
  }
}

async function live(input: Readable): Promise<StdinSource> {
  const relay = await StdinRelay.start(input);
  return { kind: 'live', url: relay.url, close: () => relay.close() };
}

/**
 * Copies stdin to `file` until its end; stops early, returning true, at the first `moof` box
 * (a fragmented MP4), leaving the rest of stdin unread.
 */
async function spool(input: Readable, head: Buffer, file: string): Promise<boolean> {
  const out = createWriteStream(file);
  const failed = new Promise<never>((_, reject) => out.once('error', (error) => reject(spoolError(file, error))));
  failed.catch(() => undefined);
  const scanner = new IsoBmffBoxScanner();
  try {
    for (let chunk: Buffer | null = head; chunk !== null; chunk = await nextChunk(input)) {
      if (scanner.push(chunk).includes('moof')) {
        await Promise.race([write(out, chunk), failed]);
        await Promise.race([close(out), failed]);
        return true;
      }
      await Promise.race([write(out, chunk), failed]);
    }
    await Promise.race([close(out), failed]);
    return false;
  } finally {
    out.destroy();
  }
}

function spoolError(file: string, error: NodeJS.ErrnoException): StreamsegError {
  const full = error.code === 'ENOSPC' ? ' (the disk is full)' : '';
  return new StreamsegError(
    ErrorCode.STDIN_SPOOL,
    `stdin: an MP4/MOV needs seeking, so it is copied to ${file} first, and that failed${full}: ${error.message}; give the file's path instead of piping it, or set TMPDIR to a disk with room`,
    { cause: error },
  );
}

function write(out: WriteStream, chunk: Buffer): Promise<void> {
  return new Promise((resolve) => (out.write(chunk) ? resolve() : out.once('drain', resolve)));
}

function close(out: WriteStream): Promise<void> {
  return new Promise((resolve) => out.end(resolve));
}

/** The next chunk of a paused stream; null at its end. */
function nextChunk(input: Readable): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const chunk = input.read() as Buffer | null;
      if (chunk !== null) return finish(chunk);
      if (input.readableEnded) return finish(null);
    };
    const onEnd = () => finish(null);
    const finish = (chunk: Buffer | null) => {
      input.off('readable', attempt);
      input.off('end', onEnd);
      input.off('error', reject);
      resolve(chunk);
    };
    input.on('readable', attempt);
    input.once('end', onEnd);
    input.once('error', reject);
    attempt();
  });
}

/** Reads at least `bytes` bytes (fewer only when the stream ends first). */
async function readHead(input: Readable, bytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  while (length < bytes) {
    const chunk = await nextChunk(input);
    if (chunk === null) break;
    chunks.push(chunk);
    length += chunk.length;
  }
  return Buffer.concat(chunks);
}

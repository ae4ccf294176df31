import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ErrorCode, InputError } from '../errors/index.js';

/** Bytes taken from the socket per read: a few reads per frame at 640x360 yuv420p. */
const STAGING_BYTES = 256 * 1024;

/**
 * A child process's stdout as raw frames in reused memory: the child writes into one end of a
 * connected Unix socket pair, and this end reads into one staging buffer of its own (net.Socket's
 * `onread`), copied into one frame buffer. A child's `stdio: 'pipe'` stream allocates a new
 * 64 KiB buffer for every read instead: for the sink's decode that was 345 KB of ArrayBuffers per
 * 640x360 frame, the largest share of the external memory whose growth set off the main thread's
 * full garbage collections in `streamseg run`. Node has no pipe(2), so the pair is made by
 * connecting to a listening socket in a private temporary directory, removed at once.
 */
export class FrameSocket {
  /** Unread bytes in `staging`, from the last read (the socket stays paused until they are used). */
  private unread = { start: 0, end: 0 };
  private ended = false;
  private failure?: Error;
  private wake?: () => void;

  private constructor(
    /** Hand this to the child as its stdout (`stdio[1]`), then call `releaseChildEnd`. */
    readonly childEnd: net.Socket,
    private readonly ours: net.Socket,
    private readonly staging: Buffer,
  ) {
    ours.on('end', () => this.finish());
    ours.on('close', () => this.finish());
    ours.on('error', (error) => this.finish(error));
  }

  /** Throws when no socket can be made: a TMPDIR too long for a socket path (~107 bytes), or not writable. */
  static async open(): Promise<FrameSocket> {
    return FrameSocket.connectPair();
  }

  private static async connectPair(): Promise<FrameSocket> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'streamseg-frames-'));
    const server = net.createServer();
    try {
      const address = path.join(dir, 'socket');
      await new Promise<void>((resolve, reject) => server.once('error', reject).listen(address, resolve));
      const accepted = once(server, 'connection') as Promise<[net.Socket]>;
      const staging = Buffer.allocUnsafe(STAGING_BYTES);
      // Nothing is written before the child starts, so `socket` is set before the first read.
      let socket: FrameSocket | undefined;
      const ours = net.connect({ path: address, onread: { buffer: staging, callback: (bytes) => socket!.received(bytes) } });
      const [[childEnd]] = await Promise.all([accepted, once(ours, 'connect')]).catch((error: unknown) => {
        ours.destroy();
        throw error;
      });
      ours.pause();
      socket = new FrameSocket(childEnd, ours, staging);
      return socket;
    } finally {
      server.close();
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Closes this process's copy of the child's end: after spawning, the child holds its own. */
  releaseChildEnd(): void {
    this.childEnd.destroy();
  }

  /** Stops reading and closes the socket; safe at any time. */
  close(): void {
    this.childEnd.destroy();
    this.ours.destroy();
  }

  /**
   * Exact frames of `frameBytes`, each valid until the next is asked for (as readRawFrames).
   * Returns the count; throws if the stream ends inside a frame.
   */
  async *frames(frameBytes: number, name = 'video'): AsyncGenerator<Buffer, number, undefined> {
    if (!Number.isInteger(frameBytes) || frameBytes <= 0) throw new RangeError(`frameBytes must be a positive integer, got ${frameBytes}`);
    const frame = Buffer.allocUnsafe(frameBytes);
    let filled = 0;
    let frames = 0;
    for (;;) {
      const { start, end } = this.unread;
      if (start < end) {
        const n = Math.min(frameBytes - filled, end - start);
        this.staging.copy(frame, filled, start, start + n);
        filled += n;
        this.unread = { start: start + n, end };
        if (filled === frameBytes) {
          frames++;
          filled = 0;
          yield frame;
        }
        continue;
      }
      if (this.failure) throw this.failure;
      if (this.ended) break;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        this.ours.resume();
      });
    }
    if (filled > 0) throw new InputError(ErrorCode.INPUT_DECODE, `${name}: decoder output ended inside frame ${frames} (${filled} of ${frameBytes} bytes)`);
    return frames;
  }

  /** onread: one read landed in `staging`; pause until `frames` has used it. */
  private received(bytes: number): false {
    this.unread = { start: 0, end: bytes };
    this.wakeReader();
    return false;
  }

  private finish(error?: Error): void {
    this.ended = true;
    this.failure ??= error;
    this.wakeReader();
  }

  private wakeReader(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

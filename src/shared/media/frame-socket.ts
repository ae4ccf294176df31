import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { readRawFrames } from './raw-frame-reader.js';

/** Bytes taken from the socket per read: a few reads per frame at 640x360 yuv420p. */
const STAGING_BYTES = 256 * 1024;

/**
 * A child process's stdout as raw frames in reused memory: the child writes into one end of a
 * connected Unix socket pair, and this end reads into one staging buffer of its own (net.Socket's
 * `onread`), cut into frames by readRawFrames. A child's `stdio: 'pipe'` stream allocates a new
 * 64 KiB buffer for every read instead: for the sink's decode that was 345 KB of ArrayBuffers per
 * 640x360 frame, the largest share of the external memory whose growth set off the main thread's
 * full garbage collections in `streamseg run`. Node has no pipe(2), so the pair is made by
 * connecting to a listening socket in a private temporary directory, removed at once.
 */
export class FrameSocket {
  /** Bytes of the last read in `staging` not yet handed out (the socket stays paused until they are used). */
  private unreadBytes = 0;
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
   * Exact frames of `frameBytes`, each valid until the next is asked for: readRawFrames over the
   * socket's reads. Returns the count; throws if the stream ends inside a frame.
   */
  frames(frameBytes: number, name = 'video'): AsyncGenerator<Buffer, number, undefined> {
    return readRawFrames(this.reads(), frameBytes, { name });
  }

  /** Each read, as a view of `staging` valid until the next is asked for (the socket stays paused until then). */
  private async *reads(): AsyncGenerator<Buffer, void, undefined> {
    for (;;) {
      if (this.unreadBytes > 0) {
        const bytes = this.unreadBytes;
        this.unreadBytes = 0;
        yield this.staging.subarray(0, bytes);
        continue;
      }
      if (this.failure) throw this.failure;
      if (this.ended) return;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        this.ours.resume();
      });
    }
  }

  /** onread: one read landed in `staging`; pause until `reads` has handed it out and been asked for more. */
  private received(bytes: number): false {
    this.unreadBytes = bytes;
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

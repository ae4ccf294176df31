import { constants as fsConstants } from 'node:fs';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCode, FrameError } from '../../shared/errors/index.js';
import type { FrameStore } from '../../shared/frame-store.js';
import type { SourceDecode } from '../../shared/job-schemas.js';
import type { RawPixelFormat } from '../../shared/media/raw-pixel-format.js';
import type { SourceFrameHandoff } from '../../shared/source-frame-handoff.js';
import type { SourceFrameDecoder } from './sink-types.js';

/**
 * Where the file sink gets each frame's source pixels, in frame order: from Redis, where the
 * producer stored them, from its own decode of the input file (STREAMSEG_SOURCE_FRAMES=sink),
 * or from the producer of the same process (SourceFrameHandoff). A frame returned is valid until
 * the next call.
 */
export interface SourceFrames {
  /** The layout of the frames handed out. */
  readonly pixelFormat: RawPixelFormat;
  /** Frames about to be asked for, in order: lets Redis serve them in one round trip. */
  prefetch(indices: readonly number[]): Promise<void>;
  frame(index: number): Promise<Uint8Array>;
  /** Stops a decoder; safe at any time. */
  close(): Promise<void>;
}

export class RedisSourceFrames implements SourceFrames {
  readonly pixelFormat = 'rgb24';
  private fetched = new Map<number, Buffer | null>();

  constructor(
    private readonly frameStore: FrameStore,
    private readonly videoId: string,
  ) {}

  async prefetch(indices: readonly number[]): Promise<void> {
    const values = await this.frameStore.getSources(this.videoId, indices);
    this.fetched = new Map(indices.map((index, k) => [index, values[k] ?? null]));
  }

  async frame(index: number): Promise<Uint8Array> {
    const source = this.fetched.get(index) ?? (await this.frameStore.getSource(this.videoId, index));
    this.fetched.delete(index);
    if (!source) {
      throw new FrameError(
        ErrorCode.FRAME_MISSING,
        `source frame ${index} of video ${this.videoId} is gone from Redis (expired after STREAMSEG_FRAME_TTL_SECONDS?)`,
      );
    }
    return source;
  }

  async close(): Promise<void> {
    this.fetched.clear();
  }
}

/**
 * Decodes the input file again, with the producer's exact decode, and hands out its frames in
 * order. Started at the first frame asked for (a sink taking a video over decodes and skips the
 * frames before its checkpoint).
 */
export class DecodedSourceFrames implements SourceFrames {
  private frames?: AsyncGenerator<Buffer, number, undefined>;
  private next = 0;

  constructor(
    private readonly decoder: SourceFrameDecoder,
    private readonly decode: SourceDecode,
    readonly pixelFormat: RawPixelFormat,
    private readonly signal?: AbortSignal,
  ) {}

  async prefetch(): Promise<void> {}

  async frame(index: number): Promise<Uint8Array> {
    if (index < this.next) throw new RangeError(`source frame ${index} asked for after frame ${this.next - 1}: frames are decoded in order`);
    this.frames ??= await this.open();
    for (;;) {
      const step = await this.frames.next().catch((error: unknown) => {
        throw this.unreadable(error instanceof Error ? error.message : String(error), error);
      });
      if (step.done) {
        throw new FrameError(
          ErrorCode.FRAME_MISSING,
          `source frame ${index} of ${this.decode.path}: the sink's decode ended after ${this.next} frames (the file changed since the producer decoded it?)`,
        );
      }
      if (this.next++ === index) return step.value;
    }
  }

  async close(): Promise<void> {
    await this.frames?.return(0);
    this.frames = undefined;
  }

  private async open(): Promise<AsyncGenerator<Buffer, number, undefined>> {
    const file = path.resolve(this.decode.path);
    await access(file, fsConstants.R_OK).catch((error: unknown) => {
      throw this.unreadable(`${file} is not readable here (${(error as NodeJS.ErrnoException).code ?? String(error)})`, error);
    });
    return this.decoder.decodeSourceFrames(this.decode, this.pixelFormat, this.signal);
  }

  private unreadable(reason: string, cause: unknown): FrameError {
    return new FrameError(
      ErrorCode.SOURCE_UNREADABLE,
      `the sink decodes this video's source frames from the input file itself and cannot: ${reason}. Give sinks read access to the producers' input files, or set STREAMSEG_SOURCE_FRAMES=redis on the producers`,
      { cause },
    );
  }
}

/**
 * The frames the producer of this process decoded and handed over (SourceFrameHandoff): no
 * second decode. From the first frame the handoff lacks (it was given up, or this sink resumed
 * a video before where the producer put frames), the sink's own decode (`ownDecode`) takes
 * over, so the frames are the same either way.
 */
export class HandedSourceFrames implements SourceFrames {
  private lent?: Buffer;
  private own?: SourceFrames;

  constructor(
    private readonly handoff: SourceFrameHandoff,
    readonly pixelFormat: RawPixelFormat,
    private readonly ownDecode: () => SourceFrames,
    /** Told the frame the sink's own decode took over at. */
    private readonly onOwnDecode: (index: number) => void = () => {},
  ) {}

  async prefetch(): Promise<void> {}

  async frame(index: number): Promise<Uint8Array> {
    this.giveBackLent();
    if (!this.own) {
      this.lent = this.handoff.take(index);
      if (this.lent) return this.lent;
      this.handoff.abandon();
      this.own = this.ownDecode();
      this.onOwnDecode(index);
    }
    return this.own.frame(index);
  }

  async close(): Promise<void> {
    this.giveBackLent();
    this.handoff.abandon();
    await this.own?.close();
  }

  private giveBackLent(): void {
    if (this.lent) this.handoff.giveBack(this.lent);
    this.lent = undefined;
  }
}

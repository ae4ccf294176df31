import { open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { ErrorCode, StreamsegError } from '../../shared/errors/index.js';
import type { FrameResult } from '../../shared/frame-store.js';
import { ClassRleEncoder } from './coco-rle.js';

/** One line of masks.ndjson. */
export interface MaskLine {
  index: number;
  timestampMs: number;
  scene: number;
  /** [height, width] of the source video (masks are at source size). */
  size: [number, number];
  adapters: FrameResult['adapters'];
  cacheHit: boolean | null;
  /** The confidence guard's decision for the scene, when the video asked for the guard. */
  guard?: FrameResult['guard'];
  /** Only classes present in the frame; COCO compressed RLE, as pycocotools writes it. */
  masks: Record<string, { size: [number, number]; counts: string }>;
}

/**
 * Builds the line of one frame from its record and its class-index mask at source size.
 * `encoder`: pass the one that encodes the video's other frames (its scratch is reused).
 */
export function maskLine(
  record: FrameResult,
  mask: Uint8Array,
  height: number,
  width: number,
  classNames: readonly string[],
  /** See ClassRleEncoder: equal neighbours mark repeated columns. */
  columnKeys?: ArrayLike<number>,
  encoder = new ClassRleEncoder(),
): MaskLine {
  const masks: MaskLine['masks'] = {};
  for (const [value, counts] of encoder.encodeStrings(mask, height, width, columnKeys)) {
    // A mask value outside the vocabulary cannot come from argmax; name it rather than drop it.
    masks[classNames[value] ?? `class_${value}`] = { size: [height, width], counts };
  }
  return {
    index: record.index,
    timestampMs: record.timestampMs,
    scene: record.scene,
    size: [height, width],
    adapters: record.adapters,
    cacheHit: record.cacheHit,
    ...(record.guard ? { guard: record.guard } : {}),
    masks,
  };
}

/**
 * masks.ndjson, one line per frame in frame order, written to `<file>.partial` and renamed on
 * `close()`, so a reader never sees a half-written file under the final name. Lines are kept in
 * memory until `flush()`, which appends them, syncs them to disk and returns the file's length:
 * the byte offset the sink checkpoints. A writer opened at a checkpoint truncates whatever a dead
 * writer appended after it, so no line is lost or written twice.
 */
export class MaskWriter {
  private readonly partial: string;
  private pending: string[] = [];
  private readonly encoder = new ClassRleEncoder();
  private bytes: number;
  private closed?: Promise<void>;

  private constructor(
    private readonly file: string,
    private readonly classNames: readonly string[],
    private readonly handle: FileHandle,
    bytes: number,
  ) {
    this.partial = `${file}.partial`;
    this.bytes = bytes;
  }

  /**
   * Opens `<file>.partial` at `resumeBytes` (0: a new file). A video whose masks were already
   * renamed into place (the writer died while finishing) is reopened from the final name.
   */
  static async open(file: string, classNames: readonly string[], resumeBytes = 0): Promise<MaskWriter> {
    const partial = `${file}.partial`;
    if (resumeBytes === 0) {
      await rm(file, { force: true });
      return new MaskWriter(file, classNames, await open(partial, 'w'), 0);
    }
    if (!(await stat(partial).catch(() => null)) && (await stat(file).catch(() => null))) await rename(file, partial);
    const size = (await stat(partial).catch(() => null))?.size ?? -1;
    if (size < resumeBytes) {
      throw new StreamsegError(
        ErrorCode.SINK_RESUME,
        `${partial} holds ${Math.max(size, 0)} bytes, the checkpoint ${resumeBytes}: sinks taking videos over must share the output directory (STREAMSEG_OUT)`,
      );
    }
    const handle = await open(partial, 'r+');
    await handle.truncate(resumeBytes);
    return new MaskWriter(file, classNames, handle, resumeBytes);
  }

  /** Bytes durably written (the offset of the next flushed line). */
  get length(): number {
    return this.bytes;
  }

  /** Queues one frame's line (written by the next `flush`); `columnKeys` as for ClassRleEncoder. */
  write(record: FrameResult, mask: Uint8Array, height: number, width: number, columnKeys?: ArrayLike<number>): void {
    this.pending.push(`${JSON.stringify(maskLine(record, mask, height, width, this.classNames, columnKeys, this.encoder))}\n`);
  }

  /** Appends the queued lines at the checkpointed length, syncs them, returns the new length. */
  async flush(): Promise<number> {
    if (this.pending.length === 0) return this.bytes;
    const data = Buffer.from(this.pending.join(''), 'utf8');
    let written = 0;
    while (written < data.length) {
      const { bytesWritten } = await this.handle.write(data, written, data.length - written, this.bytes + written);
      written += bytesWritten;
    }
    await this.handle.datasync();
    this.pending = [];
    this.bytes += data.length;
    return this.bytes;
  }

  /** Flushes, closes and renames into place. Idempotent. */
  close(): Promise<void> {
    return (this.closed ??= (async () => {
      await this.flush();
      await this.handle.close();
      await rename(this.partial, this.file);
    })());
  }

  /** Closes the file, keeping it for a sink that takes the video over; `remove` deletes it too. */
  async abort(remove = false): Promise<void> {
    this.pending = [];
    await this.handle.close().catch(() => undefined);
    if (remove) await rm(this.partial, { force: true });
  }
}

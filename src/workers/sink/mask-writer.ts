import { createWriteStream, type WriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import type { FrameResult } from '../../shared/frame-store.js';
import { encodeClasses, toString } from './coco-rle.js';

/** One line of masks.ndjson. */
export interface MaskLine {
  index: number;
  timestampMs: number;
  scene: number;
  /** [height, width] of the source video (masks are at source size). */
  size: [number, number];
  adapters: FrameResult['adapters'];
  cacheHit: boolean | null;
  /** Only classes present in the frame; COCO compressed RLE, as pycocotools writes it. */
  masks: Record<string, { size: [number, number]; counts: string }>;
}

/** Builds the line of one frame from its record and its class-index mask at source size. */
export function maskLine(record: FrameResult, mask: Uint8Array, height: number, width: number, classNames: readonly string[]): MaskLine {
  const masks: MaskLine['masks'] = {};
  for (const [value, rle] of encodeClasses(mask, height, width)) {
    // A mask value outside the vocabulary cannot come from argmax; name it rather than drop it.
    masks[classNames[value] ?? `class_${value}`] = { size: rle.size, counts: toString(rle.counts) };
  }
  return {
    index: record.index,
    timestampMs: record.timestampMs,
    scene: record.scene,
    size: [height, width],
    adapters: record.adapters,
    cacheHit: record.cacheHit,
    masks,
  };
}

/**
 * masks.ndjson, one line per frame in frame order. Written to `<file>.partial` and renamed
 * on `close()`, so a reader never sees a half-written file under the final name.
 */
export class MaskWriter {
  private readonly partial: string;
  private readonly stream: WriteStream;
  private error?: Error;
  private closed?: Promise<void>;
  lines = 0;

  constructor(
    private readonly file: string,
    private readonly classNames: readonly string[],
  ) {
    this.partial = `${file}.partial`;
    this.stream = createWriteStream(this.partial);
    this.stream.on('error', (error) => (this.error ??= error));
  }

  /** Appends one frame's line; resolves once the stream can take more (backpressure). */
  async write(record: FrameResult, mask: Uint8Array, height: number, width: number): Promise<void> {
    if (this.error) throw this.error;
    const line = `${JSON.stringify(maskLine(record, mask, height, width, this.classNames))}\n`;
    this.lines++;
    if (!this.stream.write(line)) {
      await new Promise<void>((resolve, reject) => {
        const onError = (error: Error) => reject(error);
        this.stream.once('error', onError);
        this.stream.once('drain', () => {
          this.stream.off('error', onError);
          resolve();
        });
      });
    }
  }

  /** Flushes, closes and renames into place. Idempotent. */
  close(): Promise<void> {
    return (this.closed ??= (async () => {
      await new Promise<void>((resolve, reject) => {
        if (this.error) return reject(this.error);
        this.stream.once('error', reject);
        this.stream.end(() => resolve());
      });
      await rename(this.partial, this.file);
    })());
  }

  /** Drops the partial file. */
  async abort(): Promise<void> {
    this.stream.destroy();
    await new Promise<void>((resolve) => (this.stream.closed ? resolve() : this.stream.once('close', () => resolve())));
    await rm(this.partial, { force: true });
  }
}

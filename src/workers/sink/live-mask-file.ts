import { createWriteStream, type WriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import type { FrameResult } from '../../shared/frame-store.js';
import { ClassRleEncoder } from './coco-rle.js';
import { maskLine } from './mask-writer.js';

/**
 * masks.ndjson of a live video: one line per emitted frame, appended to `<file>.partial` through
 * a write stream and renamed into place when the video ends. Unlike the file sink's MaskWriter
 * nothing is synced on the way (a live frame is never replayed, so there is no checkpoint to
 * make durable), which keeps fsync off the per-frame path. A sink taking a live video over
 * appends to what the previous one wrote.
 */
export class LiveMaskFile {
  private readonly partial: string;
  private readonly out: WriteStream;
  private readonly encoder = new ClassRleEncoder();
  private closed?: Promise<void>;

  private constructor(
    private readonly file: string,
    private readonly classNames: readonly string[],
    append: boolean,
  ) {
    this.partial = `${file}.partial`;
    this.out = createWriteStream(this.partial, { flags: append ? 'a' : 'w' });
    this.out.on('error', () => undefined);
  }

  /** `append`: keep what an earlier sink wrote for this video. */
  static async open(file: string, classNames: readonly string[], append: boolean): Promise<LiveMaskFile> {
    if (!append) await rm(file, { force: true });
    const keep = append && (await stat(`${file}.partial`).catch(() => null)) !== null;
    return new LiveMaskFile(file, classNames, keep);
  }

  write(record: FrameResult, mask: Uint8Array, height: number, width: number, columnKeys?: ArrayLike<number>): void {
    this.out.write(`${JSON.stringify(maskLine(record, mask, height, width, this.classNames, columnKeys, this.encoder))}\n`);
  }

  /** Ends the stream and renames the file into place. Idempotent. */
  close(): Promise<void> {
    return (this.closed ??= (async () => {
      await new Promise<void>((resolve, reject) => this.out.end((error?: Error | null) => (error ? reject(error) : resolve())));
      await rename(this.partial, this.file);
    })());
  }

  /** Stops writing; the partial file stays for a sink that takes the video over. */
  async abort(): Promise<void> {
    this.out.destroy();
  }
}

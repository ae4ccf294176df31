import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface ReceivedUpload {
  /** Where the bytes are now (a temporary name until `keep`). */
  file: string;
  sha256: string;
  bytes: number;
  /** Extension from the client's file name, sanitised (e.g. `.mp4`), or `.video`. */
  extension: string;
}

/**
 * Uploaded videos on disk, in a directory the producers can read (a shared volume in a
 * cluster). Bytes are hashed while they are written, for deduplication.
 */
export class UploadRepository {
  constructor(private readonly dir: string) {}

  /** Where uploads are kept (the retention sweep reads it). */
  get directory(): string {
    return this.dir;
  }

  async receive(stream: Readable, filename: string | undefined): Promise<ReceivedUpload> {
    await mkdir(this.dir, { recursive: true });
    const file = path.join(this.dir, `.incoming-${randomBytes(8).toString('hex')}`);
    const hash = createHash('sha256');
    let bytes = 0;
    const tap = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        bytes += chunk.length;
        done(null, chunk);
      },
    });
    try {
      await pipeline(stream, tap, createWriteStream(file));
    } catch (error) {
      await rm(file, { force: true });
      throw error;
    }
    const ext = path.extname(filename ?? '').toLowerCase();
    return { file, sha256: hash.digest('hex'), bytes, extension: /^\.[a-z0-9]{1,8}$/.test(ext) ? ext : '.video' };
  }

  /** Gives the upload its final name (the video id) and returns its path. */
  async keep(upload: ReceivedUpload, videoId: string): Promise<string> {
    const target = path.join(this.dir, `${videoId}${upload.extension}`);
    await rename(upload.file, target);
    return target;
  }

  async discard(file: string): Promise<void> {
    await rm(file, { force: true });
  }

  /** Whether `file` is an upload of this repository (so a cancel may delete it). */
  owns(file: string): boolean {
    return path.dirname(path.resolve(file)) === path.resolve(this.dir);
  }
}

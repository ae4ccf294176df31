import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { ErrorCode, StreamsegError } from '../../shared/errors/index.js';
import { SEGMENT_FILE, segmentFileName, segmentsDir } from '../../shared/output-layout.js';

/**
 * The closed segments of one video's annotated.mp4, in `<outDir>/.annotated.segments/`:
 * `seg-000000.mp4`, `seg-000001.mp4`… Each is encoded to `<name>.partial` and renamed into
 * place when complete, so a segment file under its final name is always whole.
 */
export class SegmentFiles {
  readonly dir: string;

  constructor(outDir: string) {
    this.dir = segmentsDir(outDir);
  }

  path(segment: number): string {
    return path.join(this.dir, segmentFileName(segment));
  }

  /**
   * Prepares the directory for a writer resuming after `segments` closed segments: leftovers of
   * a writer that died (partial files, a segment closed after the last checkpoint) are removed,
   * and every checkpointed segment must be there.
   */
  async recover(segments: number): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    for (const name of await readdir(this.dir)) {
      const match = SEGMENT_FILE.exec(name);
      if (!match || Number(match[1]) >= segments) await rm(path.join(this.dir, name), { force: true });
    }
    for (let k = 0; k < segments; k++) {
      const info = await stat(this.path(k)).catch(() => null);
      if (!info?.isFile() || info.size === 0) {
        throw new StreamsegError(
          ErrorCode.SINK_RESUME,
          `segment ${k} of the checkpointed output is missing from ${this.dir}: sinks taking videos over must share the output directory (STREAMSEG_OUT)`,
        );
      }
    }
  }

  list(segments: number): string[] {
    return Array.from({ length: segments }, (_, k) => this.path(k));
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

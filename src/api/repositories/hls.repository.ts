import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { FfmpegError } from '../../shared/errors/index.js';
import { startMediaStream, runMedia } from '../../shared/media/media-process.js';
import { SEGMENT_FILE, segmentFileName, segmentsDir } from '../../shared/output-layout.js';

export interface HlsSegment {
  index: number;
  file: string;
  durationSeconds: number;
  /** Start of the segment in the video, seconds (sum of the segments before it). */
  startSeconds: number;
}

/**
 * HLS of the annotated stream while it is produced, made from the segments the sink closes
 * (`<outDir>/.annotated.segments/seg-NNNNNN.mp4`, each whole under its final name): a live
 * (EVENT) playlist of the segments so far, each served as MPEG-TS remuxed by ffmpeg without
 * re-encoding and shifted to its place in the video. Nothing is written for it: the sink stays
 * as it is, and a finished video is played from annotated.mp4.
 */
export class HlsRepository {
  private readonly durations = new Map<string, number>();

  constructor(
    private readonly ffmpegPath = 'ffmpeg',
    private readonly ffprobePath = 'ffprobe',
  ) {}

  /** The consecutive whole segments written so far, from the first. */
  async segments(outDir: string): Promise<HlsSegment[]> {
    const dir = segmentsDir(outDir);
    const names = await readdir(dir).catch(() => [] as string[]);
    const indices = new Set(
      names
        .map((n) => SEGMENT_FILE.exec(n))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => Number(m[1])),
    );
    const out: HlsSegment[] = [];
    let start = 0;
    for (let index = 0; indices.has(index); index++) {
      const file = path.join(dir, segmentFileName(index));
      const durationSeconds = await this.duration(file).catch(() => null);
      if (durationSeconds === null) break;
      out.push({ index, file, durationSeconds, startSeconds: start });
      start += durationSeconds;
    }
    return out;
  }

  playlist(segments: readonly HlsSegment[], ended: boolean): string {
    const target = Math.max(1, ...segments.map((s) => Math.ceil(s.durationSeconds)));
    const lines = ['#EXTM3U', '#EXT-X-VERSION:3', `#EXT-X-TARGETDURATION:${target}`, '#EXT-X-MEDIA-SEQUENCE:0', '#EXT-X-PLAYLIST-TYPE:EVENT'];
    for (const s of segments) lines.push(`#EXTINF:${s.durationSeconds.toFixed(3)},`, `seg-${String(s.index).padStart(6, '0')}.ts`);
    if (ended) lines.push('#EXT-X-ENDLIST');
    return `${lines.join('\n')}\n`;
  }

  /** The segment as MPEG-TS (stream copy), its timestamps starting at `startSeconds`. */
  transportStream(segment: HlsSegment): Readable {
    // prettier-ignore
    const child = startMediaStream(this.ffmpegPath, [
      '-hide_banner', '-loglevel', 'error', '-nostdin', '-i', segment.file, '-c', 'copy', '-bsf:v', 'h264_mp4toannexb',
      '-output_ts_offset', segment.startSeconds.toFixed(3), '-f', 'mpegts', 'pipe:1',
    ]);
    child.once('error', (error) => child.stdout.destroy(new FfmpegError(`cannot run ffmpeg (${error.message})`, { cause: error })));
    return child.stdout;
  }

  private async duration(file: string): Promise<number> {
    const info = await stat(file);
    const key = `${file}:${info.size}:${info.mtimeMs}`;
    const known = this.durations.get(key);
    if (known !== undefined) return known;
    const probe = await runMedia(this.ffprobePath, ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', file]);
    if (probe.spawnError || probe.code !== 0)
      throw new FfmpegError(`ffprobe failed on ${file}: ${probe.spawnError?.message ?? probe.lastLine}`, { cause: probe.spawnError });
    const seconds = Number(probe.stdout.trim());
    if (!(seconds > 0)) throw new FfmpegError(`ffprobe found no duration in ${file}`);
    if (this.durations.size > 10_000) this.durations.clear();
    this.durations.set(key, seconds);
    return seconds;
  }
}

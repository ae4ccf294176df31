import { rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { FfmpegError } from '../../shared/errors/index.js';
import { runMedia } from '../../shared/media/media-process.js';

/** What goes into annotated.mp4 besides the segments' video. */
export interface JoinMedia {
  /** Where the first frame is placed, ms (the source's start; see assembleVideoJobSchema). @defaultValue 0 */
  videoOffsetMs?: number;
  /** An audio stream of another file, muxed beside the video: copied, or transcoded to AAC. */
  audio?: { path: string; streamIndex: number; action: 'copy' | 'aac' };
}

/**
 * Joins closed H.264 segments into one MP4 without re-encoding (ffmpeg concat demuxer,
 * `-c copy`), with the source's audio when asked: written to `<output>.partial`, renamed into
 * place once ffmpeg exits cleanly. Argument arrays only; the list file quotes every path as
 * the concat format requires.
 */
export async function concatSegments(segments: readonly string[], output: string, ffmpegPath = 'ffmpeg', media: JoinMedia = {}): Promise<void> {
  if (segments.length === 0) throw new RangeError('concatSegments needs at least one segment');
  const list = `${output}.segments.txt`;
  const partial = `${output}.partial`;
  await writeFile(list, `ffconcat version 1.0\n${segments.map((s) => `file '${s.replace(/'/g, "'\\''")}'\n`).join('')}`);
  const offset = media.videoOffsetMs ? ['-itsoffset', (media.videoOffsetMs / 1000).toFixed(6)] : [];
  const { audio } = media;
  // prettier-ignore
  const args = [
    '-hide_banner', '-loglevel', 'error', '-nostdin', '-y',
    '-f', 'concat', '-safe', '0', '-protocol_whitelist', 'file',
    ...offset, '-i', list,
    // `file:` plus an absolute path: a name starting with "-" or holding ":" is never an option or a protocol.
    ...(audio ? ['-protocol_whitelist', 'file', '-i', `file:${path.resolve(audio.path)}`] : []),
    '-map', '0:v:0', '-c:v', 'copy',
    ...(audio ? ['-map', `1:${audio.streamIndex}`, ...(audio.action === 'copy' ? ['-c:a', 'copy'] : ['-c:a', 'aac', '-b:a', '160k'])] : []),
    '-movflags', '+faststart', '-f', 'mp4',
    partial,
  ];
  try {
    const { code, lastLine, spawnError } = await runMedia(ffmpegPath, args);
    if (spawnError) throw new FfmpegError(`cannot run ffmpeg (${spawnError.message}): install it (apt-get install ffmpeg)`, { cause: spawnError });
    if (code !== 0) {
      throw new FfmpegError(
        `ffmpeg joining ${segments.length} segment(s)${audio ? ` and the audio of ${audio.path}` : ''} into ${output} exited with ${code}: ${lastLine || 'no message'}`,
      );
    }
    await rename(partial, output);
  } finally {
    await Promise.allSettled([rm(list, { force: true }), rm(partial, { force: true })]);
  }
}

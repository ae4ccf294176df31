import { spawn } from 'node:child_process';
import { rename, rm, writeFile } from 'node:fs/promises';
import { FfmpegError } from '../../shared/errors/index.js';

/**
 * Joins closed H.264 segments into one MP4 without re-encoding (ffmpeg concat demuxer,
 * `-c copy`): written to `<output>.partial`, renamed into place once ffmpeg exits cleanly.
 * Argument arrays only; the list file quotes every path as the concat format requires.
 */
export async function concatSegments(segments: readonly string[], output: string, ffmpegPath = 'ffmpeg'): Promise<void> {
  if (segments.length === 0) throw new RangeError('concatSegments needs at least one segment');
  const list = `${output}.segments.txt`;
  const partial = `${output}.partial`;
  await writeFile(list, `ffconcat version 1.0\n${segments.map((s) => `file '${s.replace(/'/g, "'\\''")}'\n`).join('')}`);
  const args = [
    '-hide_banner', '-loglevel', 'error', '-nostdin', '-y',
    '-f', 'concat', '-safe', '0', '-protocol_whitelist', 'file',
    '-i', list,
    '-c', 'copy', '-movflags', '+faststart', '-f', 'mp4',
    partial,
  ];
  try {
    const { code, stderr, spawnError } = await new Promise<{ code: number | null; stderr: string; spawnError?: Error }>((resolve) => {
      const child = spawn(ffmpegPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-4096)));
      child.once('error', (error) => resolve({ code: null, stderr, spawnError: error }));
      child.once('close', (exitCode) => resolve({ code: exitCode, stderr }));
    });
    if (spawnError) throw new FfmpegError(`cannot run ffmpeg (${spawnError.message}): install it (apt-get install ffmpeg)`, { cause: spawnError });
    if (code !== 0) {
      const last = stderr.split('\n').map((l) => l.trim()).filter(Boolean).pop();
      throw new FfmpegError(`ffmpeg joining ${segments.length} segment(s) into ${output} exited with ${code}: ${last ?? 'no message'}`);
    }
    await rename(partial, output);
  } finally {
    await Promise.allSettled([rm(list, { force: true }), rm(partial, { force: true })]);
  }
}

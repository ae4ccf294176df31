import path from 'node:path';
import { FfmpegError } from '../../shared/errors/index.js';
import type { SourceDecode } from '../../shared/job-schemas.js';
import { StderrTail, exitOf, missingBinary } from '../../shared/media/media-child.js';
import { startFrameReader } from '../../shared/media/media-process.js';
import { rawFrameBytes, type RawPixelFormat } from '../../shared/media/raw-pixel-format.js';
import { rawDecodeArgs } from '../../shared/media/raw-video-decode.js';
import type { SourceFrameDecoder } from './sink-types.js';

/**
 * ffmpeg decoding a local input file to raw frames with the producer's arguments
 * (rawDecodeArgs): the sink's own copy of the source frames. Returning early (or the signal)
 * kills ffmpeg; a failure quotes its last stderr line.
 */
export class SourceDecoderRepository implements SourceFrameDecoder {
  constructor(private readonly ffmpegPath = 'ffmpeg') {}

  async *decodeSourceFrames(decode: SourceDecode, pixelFormat: RawPixelFormat, signal?: AbortSignal): AsyncGenerator<Buffer, number, undefined> {
    const file = path.resolve(decode.path);
    const reader = await startFrameReader(this.ffmpegPath, rawDecodeArgs({ ...decode, pixelFormat, locator: `file:${file}`, protocols: 'file' }));
    const { child } = reader;
    const stderr = new StderrTail(child);
    const exited = exitOf(child);
    const kill = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    signal?.addEventListener('abort', kill, { once: true });
    try {
      const frames = yield* reader.frames(rawFrameBytes(decode.width, decode.height, pixelFormat), decode.path);
      const { code, spawnError } = await exited;
      if (spawnError) throw missingBinary(this.ffmpegPath, spawnError);
      if (code !== 0) throw new FfmpegError(`ffmpeg decoding ${decode.path} for the sink exited with ${code}: ${stderr.lastLine() || 'no message'}`);
      return frames;
    } finally {
      signal?.removeEventListener('abort', kill);
      kill();
      reader.close();
      await exited;
    }
  }
}

import { ErrorCode, InputError } from '../errors/index.js';

/**
 * Cuts a byte stream of raw video (ffmpeg `-f rawvideo`) into whole frames of exactly
 * `frameBytes` bytes. Pipe chunks (usually 64 KiB) never line up with frames, so bytes are
 * copied into one frame buffer that is reused: a yielded frame stays valid only until the
 * consumer asks for the next one (copy it to keep it). Not reading is the backpressure:
 * the stream pauses, the pipe fills, and ffmpeg blocks on its write.
 */
export async function* readRawFrames(
  stream: AsyncIterable<Buffer>,
  frameBytes: number,
  options: { reuseBuffer?: boolean; name?: string } = {},
): AsyncGenerator<Buffer, number, undefined> {
  if (!Number.isInteger(frameBytes) || frameBytes <= 0) throw new RangeError(`frameBytes must be a positive integer, got ${frameBytes}`);
  const reuse = options.reuseBuffer ?? true;
  let frame = Buffer.allocUnsafe(frameBytes);
  let filled = 0;
  let frames = 0;
  for await (const chunk of stream) {
    let offset = 0;
    while (offset < chunk.length) {
      const n = Math.min(frameBytes - filled, chunk.length - offset);
      chunk.copy(frame, filled, offset, offset + n);
      filled += n;
      offset += n;
      if (filled === frameBytes) {
        frames++;
        yield frame;
        filled = 0;
        if (!reuse) frame = Buffer.allocUnsafe(frameBytes);
      }
    }
  }
  if (filled > 0) {
    // Only a killed or crashed decoder leaves half a frame behind; rawvideo never does.
    throw new InputError(ErrorCode.INPUT_DECODE, `${options.name ?? 'video'}: decoder output ended inside frame ${frames} (${filled} of ${frameBytes} bytes)`);
  }
  return frames;
}

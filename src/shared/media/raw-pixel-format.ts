/**
 * The two layouts raw frames travel in between ffmpeg and streamseg. `rgb24`: what the producer
 * resizes for the model and what Redis carries. `yuv420p`: what the sink's own decode of a file
 * hands to the overlay and the encoder, because H.264 is yuv420p on both sides of it: no
 * YUV→RGB→YUV round trip in ffmpeg, half the bytes through the pipes, half the pixels to blend
 * (bench/README.md, "Cutting the per-frame overhead").
 */
export type RawPixelFormat = 'rgb24' | 'yuv420p';

/** Bytes of one frame: yuv420p is a full-size luma plane and two half-size chroma planes. */
export function rawFrameBytes(width: number, height: number, format: RawPixelFormat): number {
  return format === 'rgb24' ? width * height * 3 : width * height + 2 * Math.ceil(width / 2) * Math.ceil(height / 2);
}

/**
 * The format the sink decodes a file's source frames in: yuv420p when both sides are even,
 * rgb24 otherwise. Odd sizes keep RGB because the encoder pads them to even (playerSafeFilter)
 * and the overlay's chroma blocks would otherwise hang over the frame's edge.
 */
export function sinkSourceFormat(width: number, height: number): RawPixelFormat {
  return width % 2 === 0 && height % 2 === 0 ? 'yuv420p' : 'rgb24';
}

/**
 * How the sink's RGB frames become video that every player decodes the same way: H.264 in
 * 4:2:0 (`yuv420p`, the only chroma layout browsers play), which needs even sizes, and an
 * explicit BT.709 colour matrix written into the stream. Untagged video leaves the matrix to
 * the player's guess (BT.601 for some, BT.709 for HD in others), and the colours shift.
 */

/** The encoded size of a `width`×`height` frame, and the pixels added on the right and bottom edges to get it. */
export interface EvenSize {
  width: number;
  height: number;
  /** 0 or 1: columns added on the right (copies of the last column). */
  padRight: number;
  /** 0 or 1: rows added at the bottom (copies of the last row). */
  padBottom: number;
}

export function evenSize(width: number, height: number): EvenSize {
  const padRight = width % 2;
  const padBottom = height % 2;
  return { width: width + padRight, height: height + padBottom, padRight, padBottom };
}

/**
 * ffmpeg `-vf` for RGB24 frames of `width`×`height` → even-sized yuv420p, BT.709, limited range.
 * An odd edge is padded on the right or bottom (so pixel x,y stays where it was in the masks)
 * with a copy of the last column or row rather than black, so 4:2:0 chroma, which averages
 * each 2×2 block, does not darken the real edge pixels.
 */
export function playerSafeFilter(width: number, height: number): string {
  const even = evenSize(width, height);
  const pad =
    even.padRight || even.padBottom ? `pad=${even.width}:${even.height}:0:0,fillborders=right=${even.padRight}:bottom=${even.padBottom}:mode=smear,` : '';
  return `${pad}scale=out_color_matrix=bt709:out_range=tv,format=yuv420p`;
}

/** Output options that record the colour conversion `playerSafeFilter` made. */
export const BT709_TAGS: readonly string[] = ['-colorspace', 'bt709', '-color_primaries', 'bt709', '-color_trc', 'bt709', '-color_range', 'tv'];

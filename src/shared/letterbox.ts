/** Where the scaled source sits inside the model input (the rest is padding). */
export interface LetterboxRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Largest aspect-preserving fit of src into dst, centred, on whole pixels. */
export function computeLetterbox(srcWidth: number, srcHeight: number, dstWidth: number, dstHeight: number): LetterboxRect {
  const scale = Math.min(dstWidth / srcWidth, dstHeight / srcHeight);
  const width = Math.max(1, Math.min(dstWidth, Math.round(srcWidth * scale)));
  const height = Math.max(1, Math.min(dstHeight, Math.round(srcHeight * scale)));
  return { x: Math.floor((dstWidth - width) / 2), y: Math.floor((dstHeight - height) / 2), width, height };
}

/**
 * Maps a class-index mask at model size back to the source size: crop the letterbox
 * content, nearest-neighbour upscale. Hand-written because it is a per-frame hot path on
 * one byte per pixel, where a sharp round trip (decode, resize, encode) costs more than
 * the lookup itself. Lookup tables are built once per (rect, size) and reused.
 */
export class MaskUnletterboxer {
  /**
   * The model-mask column each output column copies: output columns with equal entries are
   * identical, which lets the RLE encoder read each distinct column once (see encodeClasses).
   */
  readonly columnOffsets: Int32Array;
  private readonly rowOffsets: Int32Array;

  constructor(
    private readonly rect: LetterboxRect,
    private readonly maskWidth: number,
    readonly srcWidth: number,
    readonly srcHeight: number,
  ) {
    this.columnOffsets = new Int32Array(srcWidth);
    for (let x = 0; x < srcWidth; x++) {
      this.columnOffsets[x] = rect.x + Math.min(rect.width - 1, Math.floor(((x + 0.5) * rect.width) / srcWidth));
    }
    this.rowOffsets = new Int32Array(srcHeight);
    for (let y = 0; y < srcHeight; y++) {
      this.rowOffsets[y] = (rect.y + Math.min(rect.height - 1, Math.floor(((y + 0.5) * rect.height) / srcHeight))) * maskWidth;
    }
  }

  apply(mask: Uint8Array, out: Uint8Array = new Uint8Array(this.srcWidth * this.srcHeight)): Uint8Array {
    const { columnOffsets, rowOffsets, srcWidth, srcHeight } = this;
    let o = 0;
    for (let y = 0; y < srcHeight; y++) {
      const row = rowOffsets[y]!;
      if (y > 0 && row === rowOffsets[y - 1]) {
        // Upscaling repeats each mask row over several output rows: copy the row just built
        // (a memcpy) instead of gathering it again; most rows of a 160px mask at 360p+ are copies.
        out.copyWithin(o, o - srcWidth, o);
        o += srcWidth;
        continue;
      }
      for (let x = 0; x < srcWidth; x++) out[o++] = mask[row + columnOffsets[x]!]!;
    }
    return out;
  }
}

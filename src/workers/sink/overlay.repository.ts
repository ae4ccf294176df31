import os from 'node:os';
import { rawFrameBytes } from '../../shared/media/raw-pixel-format.js';

const LITTLE_ENDIAN = os.endianness() === 'LE';

export type Rgb = readonly [number, number, number];

/** A colour's BT.709 limited-range Y, Cb, Cr (unrounded), as the encoder tags annotated.mp4. */
export function bt709Limited([r, g, b]: Rgb): [number, number, number] {
  return [
    16 + ((0.2126 * r + 0.7152 * g + 0.0722 * b) * 219) / 255,
    128 + ((-0.2126 / 1.8556) * r - (0.7152 / 1.8556) * g + 0.5 * b) * (224 / 255),
    128 + (0.5 * r - (0.7152 / 1.5748) * g - (0.0722 / 1.5748) * b) * (224 / 255),
  ];
}

/**
 * Tints each pixel of a source frame with its class colour at a fixed opacity:
 * out = round((src·(255−a) + colour·a) / 255) per channel, a = round(alpha·255).
 *
 * A plain typed-array blend with one lookup table per (class, channel), not sharp/libvips:
 * with one alpha for the whole frame the blend is three table reads per pixel, and
 * `bench/pipeline.bench.ts` measured sharp's composite (palette image built in JS, then
 * libvips composite + removeAlpha) at ~15 ms of CPU per 640x360 frame against ~1 ms for this
 * loop. On a 2-core machine that CPU was taken from ONNX Runtime, so the overlay was the
 * largest in-process cost of the sink.
 */
export class OverlayRepository {
  private readonly alpha: number;
  /** `table[(value·3 + channel)·256 + source]`: the blended byte for mask value × channel × source byte. */
  private readonly table: Uint8Array;
  /**
   * The same for yuv420p, one table per plane, `[(value << 8) | source]`: Y, then Cb, then Cr, the
   * class colour in BT.709 limited range.
   */
  private readonly yuvTables: [Uint8Array, Uint8Array, Uint8Array];

  /** `palette[i]` colours mask value i (manifest.classes order); `alpha` in 0..1. */
  constructor(palette: readonly Rgb[], alpha: number) {
    if (!(alpha >= 0 && alpha <= 1)) throw new RangeError('alpha must be between 0 and 1');
    if (palette.length === 0 || palette.length > 256) throw new RangeError('palette must have 1 to 256 colours');
    this.alpha = Math.round(alpha * 255);
    // Mask values beyond the palette are drawn black, as an all-zero palette entry always was.
    const a = this.alpha;
    this.table = new Uint8Array(256 * 3 * 256);
    this.yuvTables = [new Uint8Array(256 * 256), new Uint8Array(256 * 256), new Uint8Array(256 * 256)];
    for (let value = 0; value < 256; value++) {
      const color = palette[value] ?? [0, 0, 0];
      const yuv = bt709Limited(color);
      for (let channel = 0; channel < 3; channel++) {
        const row = (value * 3 + channel) * 256;
        for (let v = 0; v < 256; v++) {
          this.table[row + v] = Math.round((v * (255 - a) + color[channel]! * a) / 255);
          this.yuvTables[channel]![(value << 8) | v] = Math.round((v * (255 - a) + yuv[channel]! * a) / 255);
        }
      }
    }
  }

  /**
   * Source RGB24 (width×height) + class-index mask of the same size → annotated RGB24 in `out`:
   * by default a new buffer per call, as the encoder may still hold the previous frame in its
   * write queue; `out` may be `source` itself when nothing else reads that source afterwards.
   */
  async annotate(source: Uint8Array, mask: Uint8Array, width: number, height: number, out: Buffer = Buffer.allocUnsafe(width * height * 3)): Promise<Buffer> {
    const pixels = width * height;
    if (source.length !== pixels * 3) throw new RangeError(`source frame has ${source.length} bytes, ${width}x${height} RGB needs ${pixels * 3}`);
    if (mask.length !== pixels) throw new RangeError(`mask has ${mask.length} bytes, ${width}x${height} needs ${pixels}`);
    if (out.length !== pixels * 3) throw new RangeError(`output buffer has ${out.length} bytes, ${width}x${height} RGB needs ${pixels * 3}`);
    if (this.alpha === 0) {
      if (out !== source) out.set(source);
      return out;
    }
    const { table } = this;
    for (let p = 0, o = 0; p < pixels; p++, o += 3) {
      const row = mask[p]! * 768;
      out[o] = table[row + source[o]!]!;
      out[o + 1] = table[row + 256 + source[o + 1]!]!;
      out[o + 2] = table[row + 512 + source[o + 2]!]!;
    }
    return out;
  }

  /**
   * The same tint on a yuv420p frame (even width and height): luma per pixel; each chroma sample
   * takes the class of the top-left pixel of its 2×2 block, so a class edge inside a block tints
   * that block's colour with one class (luma still follows the edge to the pixel).
   */
  annotateYuv420p(source: Uint8Array, mask: Uint8Array, width: number, height: number, out: Buffer): Buffer {
    if (width % 2 !== 0 || height % 2 !== 0) throw new RangeError(`yuv420p overlay needs an even size, got ${width}x${height}`);
    const pixels = width * height;
    const frameBytes = rawFrameBytes(width, height, 'yuv420p');
    if (source.length !== frameBytes) throw new RangeError(`source frame has ${source.length} bytes, ${width}x${height} yuv420p needs ${frameBytes}`);
    if (mask.length !== pixels) throw new RangeError(`mask has ${mask.length} bytes, ${width}x${height} needs ${pixels}`);
    if (out.length !== frameBytes) throw new RangeError(`output buffer has ${out.length} bytes, ${width}x${height} yuv420p needs ${frameBytes}`);
    if (this.alpha === 0) {
      if (out !== source) out.set(source);
      return out;
    }
    if (width % 8 === 0 && [source, mask, out].every((bytes) => bytes.byteOffset % 4 === 0) && LITTLE_ENDIAN)
      this.tintYuvWords(source, mask, width, height, out);
    else this.tintYuvBytes(source, mask, width, height, out);
    return out;
  }

  private tintYuvBytes(source: Uint8Array, mask: Uint8Array, width: number, height: number, out: Uint8Array): void {
    const [y, cb, cr] = this.yuvTables;
    const pixels = width * height;
    for (let p = 0; p < pixels; p++) out[p] = y[(mask[p]! << 8) | source[p]!]!;
    const chromaWidth = width / 2;
    const chromaPlane = pixels / 4;
    for (let cy = 0, c = pixels; cy < height / 2; cy++) {
      const maskRow = 2 * cy * width;
      for (let cx = 0; cx < chromaWidth; cx++, c++) {
        const row = mask[maskRow + 2 * cx]! << 8;
        out[c] = cb[row | source[c]!]!;
        out[c + chromaPlane] = cr[row | source[c + chromaPlane]!]!;
      }
    }
  }

  /**
   * tintYuvBytes four bytes at a time: one 32-bit load of source and of mask and one store per
   * four pixels instead of four of each, 2.5x faster on a 640x360 frame (0.25 against 0.63 ms,
   * bench/README.md, eighth round). Needs width % 8 === 0 (chroma rows of whole words), 4-byte
   * aligned buffers and a little-endian machine: byte k of a word is pixel k.
   */
  private tintYuvWords(source: Uint8Array, mask: Uint8Array, width: number, height: number, out: Uint8Array): void {
    const [y, cb, cr] = this.yuvTables;
    const pixels = width * height;
    const words = (bytes: Uint8Array, count: number) => new Uint32Array(bytes.buffer, bytes.byteOffset, count);
    const src = words(source, (pixels * 3) / 8);
    const classes = words(mask, pixels / 4);
    const dst = words(out, (pixels * 3) / 8);
    for (let q = 0; q < pixels / 4; q++) {
      const s = src[q]!;
      const k = classes[q]!;
      dst[q] =
        y[((k & 0xff) << 8) | (s & 0xff)]! |
        (y[(k & 0xff00) | ((s >>> 8) & 0xff)]! << 8) |
        (y[((k >>> 8) & 0xff00) | ((s >>> 16) & 0xff)]! << 16) |
        (y[((k >>> 16) & 0xff00) | (s >>> 24)]! << 24);
    }
    // Each chroma word holds 4 samples of one row; sample j takes the class of mask pixel 2j of
    // the block's top row: bytes 0 and 2 of the two mask words over those 8 pixels.
    const maskWordsPerRow = width / 4;
    const crOffset = pixels / 16;
    for (let cy = 0, c = pixels / 4; cy < height / 2; cy++) {
      for (let m = 2 * cy * maskWordsPerRow, end = m + maskWordsPerRow; m < end; m += 2, c++) {
        const k0 = classes[m]!;
        const k1 = classes[m + 1]!;
        const c0 = (k0 & 0xff) << 8;
        const c1 = (k0 >>> 8) & 0xff00;
        const c2 = (k1 & 0xff) << 8;
        const c3 = (k1 >>> 8) & 0xff00;
        const u = src[c]!;
        const v = src[c + crOffset]!;
        dst[c] = cb[c0 | (u & 0xff)]! | (cb[c1 | ((u >>> 8) & 0xff)]! << 8) | (cb[c2 | ((u >>> 16) & 0xff)]! << 16) | (cb[c3 | (u >>> 24)]! << 24);
        dst[c + crOffset] = cr[c0 | (v & 0xff)]! | (cr[c1 | ((v >>> 8) & 0xff)]! << 8) | (cr[c2 | ((v >>> 16) & 0xff)]! << 16) | (cr[c3 | (v >>> 24)]! << 24);
      }
    }
  }
}

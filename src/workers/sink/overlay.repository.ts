import sharp from 'sharp';

// Configured once for the process: frames are never repeated, so libvips' operation cache
// only holds memory; and a corrupt buffer must fail loudly, not render garbage.
sharp.cache(false);
const SHARP_OPTIONS = { failOn: 'error' } as const;

export type Rgb = readonly [number, number, number];

/** Reused per video (frames of one video are overlaid one after another). */
export interface OverlayScratch {
  rgba: Buffer;
}

/**
 * Tints each pixel of a source frame with its class colour (the only place streamseg uses
 * sharp). The palette image is built in JS (a table lookup per pixel); the blend runs in
 * libvips on its own threads, so the event loop stays free for Redis and ffmpeg.
 */
export class OverlayRepository {
  private readonly palette: Uint8Array;
  private readonly alpha: number;

  /** `palette[i]` colours mask value i (manifest.classes order); `alpha` in 0..1. */
  constructor(palette: readonly Rgb[], alpha: number) {
    if (!(alpha >= 0 && alpha <= 1)) throw new RangeError('alpha must be between 0 and 1');
    if (palette.length === 0 || palette.length > 256) throw new RangeError('palette must have 1 to 256 colours');
    this.palette = new Uint8Array(256 * 3);
    palette.forEach((color, i) => this.palette.set(color, i * 3));
    this.alpha = Math.round(alpha * 255);
  }

  createScratch(width: number, height: number): OverlayScratch {
    return { rgba: Buffer.alloc(width * height * 4) };
  }

  /** Source RGB24 (width×height) + class-index mask of the same size → annotated RGB24. */
  async annotate(source: Uint8Array, mask: Uint8Array, width: number, height: number, scratch = this.createScratch(width, height)): Promise<Buffer> {
    const pixels = width * height;
    if (source.length !== pixels * 3) throw new RangeError(`source frame has ${source.length} bytes, ${width}x${height} RGB needs ${pixels * 3}`);
    if (mask.length !== pixels) throw new RangeError(`mask has ${mask.length} bytes, ${width}x${height} needs ${pixels}`);
    if (scratch.rgba.length !== pixels * 4) scratch.rgba = Buffer.alloc(pixels * 4);
    const { rgba } = scratch;
    const { palette, alpha } = this;
    for (let p = 0, o = 0; p < pixels; p++, o += 4) {
      const c = mask[p]! * 3;
      rgba[o] = palette[c]!;
      rgba[o + 1] = palette[c + 1]!;
      rgba[o + 2] = palette[c + 2]!;
      rgba[o + 3] = alpha;
    }
    if (alpha === 0) return Buffer.from(source);
    return sharp(source, { ...SHARP_OPTIONS, raw: { width, height, channels: 3 } })
      .composite([{ input: rgba, raw: { width, height, channels: 4 } }])
      .removeAlpha()
      .raw()
      .toBuffer();
  }
}

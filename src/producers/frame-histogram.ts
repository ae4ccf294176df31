/** A raw RGB24 image, row-major, no padding. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
  /** The part to look at: the picture inside a model input's letterbox bars. @defaultValue the whole image */
  region?: { x: number; y: number; width: number; height: number };
}

/** Points sampled per axis: 64 × 64 = 4096 samples keep the histogram stable and cheap at any size. */
const DEFAULT_GRID = 64;

/**
 * Per-channel colour histogram (R, G, B, `bins` each) of a grid of sample points, normalised
 * so each channel sums to 1. Soft binning (each sample split between its two nearest bin
 * centres) keeps a slow fade from jumping a whole bin at once, which plain binning would
 * report as a big change. Writes into `out` (length 3 × bins) to avoid allocating per frame.
 */
export function colorHistogram(image: RgbImage, bins: number, out: Float32Array = new Float32Array(3 * bins), grid = DEFAULT_GRID): Float32Array {
  out.fill(0);
  const { data, width } = image;
  const region = image.region ?? { x: 0, y: 0, width, height: image.height };
  const cols = Math.min(grid, region.width);
  const rows = Math.min(grid, region.height);
  const scale = bins / 256;
  for (let r = 0; r < rows; r++) {
    const y = region.y + Math.floor(((r + 0.5) * region.height) / rows);
    for (let c = 0; c < cols; c++) {
      const x = region.x + Math.floor(((c + 0.5) * region.width) / cols);
      const p = (y * width + x) * 3;
      for (let ch = 0; ch < 3; ch++) {
        const pos = data[p + ch]! * scale - 0.5;
        const lower = Math.floor(pos);
        const frac = pos - lower;
        const base = ch * bins;
        if (lower >= 0) out[base + lower]! += 1 - frac;
        else out[base]! += 1 - frac;
        if (lower + 1 < bins) out[base + lower + 1]! += frac;
        else out[base + bins - 1]! += frac;
      }
    }
  }
  const total = rows * cols;
  for (let i = 0; i < out.length; i++) out[i]! /= total;
  return out;
}

/** 1 − histogram intersection, averaged over the three channels: 0 = same colours, 1 = disjoint. */
export function histogramDistance(a: Float32Array, b: Float32Array): number {
  let overlap = 0;
  for (let i = 0; i < a.length; i++) overlap += Math.min(a[i]!, b[i]!);
  return Math.min(1, Math.max(0, 1 - overlap / 3));
}

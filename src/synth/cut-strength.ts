/**
 * How hard a cut between two frames looks to a histogram-based scene-cut detector:
 * 1 − intersection of soft-binned per-channel colour histograms (0 same, 1 disjoint).
 * Mirrors what the producer's detector measures, so the renderer can make sure
 * every scene boundary it writes is detectable.
 */
const BINS = 8;

export function colorHistogram(rgb: Uint8Array, width: number, height: number): Float32Array {
  const out = new Float32Array(3 * BINS);
  const grid = 64;
  const cols = Math.min(grid, width);
  const rows = Math.min(grid, height);
  const scale = BINS / 256;
  for (let r = 0; r < rows; r++) {
    const y = Math.floor(((r + 0.5) * height) / rows);
    for (let c = 0; c < cols; c++) {
      const p = (y * width + Math.floor(((c + 0.5) * width) / cols)) * 3;
      for (let ch = 0; ch < 3; ch++) {
        const pos = rgb[p + ch]! * scale - 0.5;
        const lower = Math.floor(pos);
        const frac = pos - lower;
        const base = ch * BINS;
        out[base + Math.max(0, lower)]! += 1 - frac;
        out[base + Math.min(BINS - 1, lower + 1)]! += frac;
      }
    }
  }
  for (let i = 0; i < out.length; i++) out[i]! /= rows * cols;
  return out;
}

export function histogramDistance(a: Float32Array, b: Float32Array): number {
  let overlap = 0;
  for (let i = 0; i < a.length; i++) overlap += Math.min(a[i]!, b[i]!);
  return Math.min(1, Math.max(0, 1 - overlap / 3));
}

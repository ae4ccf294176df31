/**
 * Integer-hash value noise for textures. Textures are sampled in world or surface
 * coordinates (not screen), so they move with the geometry instead of shimmering
 * when the camera moves.
 */

/** Hash of an integer lattice point to [0, 1). */
export function hash2(x: number, y: number, seed: number): number {
  let h = Math.imul(x | 0, 0x27d4eb2d) ^ Math.imul(y | 0, 0x165667b1) ^ seed;
  h = Math.imul(h ^ (h >>> 15), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return ((h ^ (h >>> 16)) >>> 0) / 4294967296;
}

/**
 * Lattice values for value noise: one fixed 256×256 table, with the seed choosing an
 * offset into it. A table read is several times cheaper than hashing four lattice
 * points per sample, and textures are the renderer's hottest path. The pattern
 * repeats every 256 lattice units, far beyond what one frame shows at any scale used.
 */
const LATTICE = 256;
const lattice = (() => {
  const t = new Float32Array(LATTICE * LATTICE);
  for (let y = 0; y < LATTICE; y++) for (let x = 0; x < LATTICE; x++) t[y * LATTICE + x] = hash2(x, y, 0x2545f491);
  return t;
})();

/** Smooth value noise in [0, 1). */
export function valueNoise(x: number, y: number, seed: number): number {
  const ox = seed & 0xff;
  const oy = (seed >>> 8) & 0xff;
  const xf = Math.floor(x);
  const yf = Math.floor(y);
  const fx = x - xf;
  const fy = y - yf;
  const sx = fx * fx * (3 - 2 * fx);
  const sy = fy * fy * (3 - 2 * fy);
  const x0 = (xf + ox) & 0xff;
  const x1 = (x0 + 1) & 0xff;
  const r0 = ((yf + oy) & 0xff) * LATTICE;
  const r1 = ((((yf + oy) & 0xff) + 1) & 0xff) * LATTICE;
  const a = lattice[r0 + x0]!;
  const b = lattice[r0 + x1]!;
  const c = lattice[r1 + x0]!;
  const d = lattice[r1 + x1]!;
  const top = a + (b - a) * sx;
  const bottom = c + (d - c) * sx;
  return top + (bottom - top) * sy;
}

/** Two-octave fractal noise in [0, 1). */
export function fbm2(x: number, y: number, seed: number): number {
  return valueNoise(x, y, seed) * 0.65 + valueNoise(x * 2.03 + 17.1, y * 2.03 - 5.3, seed ^ 0x5bd1e995) * 0.35;
}

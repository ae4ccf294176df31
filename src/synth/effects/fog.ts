import type { Rgb } from '../color.js';
import type { FrameBuffers } from '../frame-buffers.js';

/**
 * Atmospheric extinction toward a veil colour: transmittance exp(-density·depth) per
 * pixel (sky has zero inverse depth, so it becomes the veil), plus a uniform
 * `floor` of veil that also washes out the nearest surfaces.
 */
export function applyVeil(fb: FrameBuffers, density: number, veil: Rgb, floor: number): void {
  const { width, height, rgb, invDepth } = fb;
  const n = width * height;
  for (let i = 0; i < n; i++) {
    const id = invDepth[i]!;
    const t = id > 1e-5 ? Math.exp(-density / id) * (1 - floor) : 0;
    const k = i * 3;
    rgb[k] = veil[0] + (rgb[k]! - veil[0]) * t;
    rgb[k + 1] = veil[1] + (rgb[k + 1]! - veil[1]) * t;
    rgb[k + 2] = veil[2] + (rgb[k + 2]! - veil[2]) * t;
  }
}

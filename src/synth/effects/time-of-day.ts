import { C } from '../classes.js';
import { smoothstep } from '../color.js';
import type { FrameBuffers } from '../frame-buffers.js';
import type { LightState } from './light-state.js';

/** Night: dim blue moonlight, lights on. */
export function nightLight(s: number, state: LightState): void {
  const k = smoothstep(0, 1, s);
  state.ambient = [1 - k * 0.91, 1 - k * 0.88, 1 - k * 0.78];
  state.lightsOn = Math.max(state.lightsOn, k);
}

/** Dusk: warm, dimmer light with purple shadows; some lights come on. */
export function duskLight(s: number, state: LightState): void {
  state.ambient = [1 - s * 0.28, 1 - s * 0.52, 1 - s * 0.62];
  state.lightsOn = Math.max(state.lightsOn, 0.55 * smoothstep(0.3, 1, s));
}

/** Replaces the sky with a dark gradient (after lighting, which already dimmed it). */
export function nightSky(fb: FrameBuffers, s: number, horizonRow: number): void {
  forSky(fb, 0.85 * s, (_x, y, out) => {
    const e = Math.min(1, Math.max(0, (horizonRow - y) / (fb.height * 0.5)));
    // Light pollution keeps the horizon a little warmer and brighter than the zenith.
    out[0] = 0.01 * e + 0.09 * (1 - e);
    out[1] = 0.015 * e + 0.075 * (1 - e);
    out[2] = 0.045 * e + 0.1 * (1 - e);
  });
}

/** Orange horizon to purple zenith, with a glow where the sun has set. */
export function duskSky(fb: FrameBuffers, s: number, horizonRow: number, sunX: number): void {
  forSky(fb, 0.85 * s, (x, y, out) => {
    const e = Math.min(1, Math.max(0, (horizonRow - y) / (fb.height * 0.55)));
    const sun = Math.exp(-(((x - sunX) / fb.width) ** 2) * 8) * (1 - e) ** 2;
    out[0] = 0.9 * (0.98 * (1 - e) + 0.32 * e + 0.1 * sun);
    out[1] = 0.9 * (0.5 * (1 - e) + 0.2 * e + 0.25 * sun);
    out[2] = 0.9 * (0.22 * (1 - e) + 0.45 * e);
  });
}

/** Blends sky pixels toward color(x, y) by `alpha`. */
function forSky(fb: FrameBuffers, alpha: number, color: (x: number, y: number, out: Float64Array) => void): void {
  const { width, height, rgb, cls } = fb;
  const c = new Float64Array(3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (cls[i] !== C.sky) continue;
      color(x, y, c);
      const k = i * 3;
      rgb[k] = rgb[k]! + (c[0]! - rgb[k]!) * alpha;
      rgb[k + 1] = rgb[k + 1]! + (c[1]! - rgb[k + 1]!) * alpha;
      rgb[k + 2] = rgb[k + 2]! + (c[2]! - rgb[k + 2]!) * alpha;
    }
  }
}

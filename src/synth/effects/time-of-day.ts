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
  forSky(fb, (y, k) => {
    const e = Math.min(1, Math.max(0, (horizonRow - y) / (fb.height * 0.5)));
    // Light pollution keeps the horizon a little warmer and brighter.
    const top = [0.01, 0.015, 0.045];
    const low = [0.09, 0.075, 0.1];
    return [top[0]! * e + low[0]! * (1 - e), top[1]! * e + low[1]! * (1 - e), top[2]! * e + low[2]! * (1 - e), 0.85 * s * k];
  });
}

/** Orange horizon to purple zenith, with a glow where the sun has set. */
export function duskSky(fb: FrameBuffers, s: number, horizonRow: number, sunX: number): void {
  forSky(fb, (y, k, x) => {
    const e = Math.min(1, Math.max(0, (horizonRow - y) / (fb.height * 0.55)));
    const sun = Math.exp(-(((x - sunX) / fb.width) ** 2) * 8) * (1 - e) ** 2;
    const r = 0.98 * (1 - e) + 0.32 * e + 0.1 * sun;
    const g = 0.5 * (1 - e) + 0.2 * e + 0.25 * sun;
    const b = 0.22 * (1 - e) + 0.45 * e;
    return [r * 0.9, g * 0.9, b * 0.9, 0.85 * s * k];
  });
}

/** Blends sky pixels toward colour(y) by its alpha; the horizon row is where sky meets ground. */
function forSky(fb: FrameBuffers, color: (y: number, k: number, x: number) => [number, number, number, number]): void {
  const { width, height, rgb, cls } = fb;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      if (cls[i] !== C.sky) continue;
      const [r, g, b, a] = color(y, 1, x);
      const k = i * 3;
      rgb[k] = rgb[k]! + (r - rgb[k]!) * a;
      rgb[k + 1] = rgb[k + 1]! + (g - rgb[k + 1]!) * a;
      rgb[k + 2] = rgb[k + 2]! + (b - rgb[k + 2]!) * a;
    }
  }
}

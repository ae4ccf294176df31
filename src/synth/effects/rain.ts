import { C } from '../classes.js';
import type { FrameBuffers } from '../frame-buffers.js';
import { Rng } from '../rng.js';
import { luminance, type LightState } from './light-state.js';
import { pixelUnit, unitArea } from './pixel-unit.js';

/** Wet surfaces are darker; the sky turns to low grey overcast. */
export function rainSurface(fb: FrameBuffers, s: number): void {
  const { width, height, rgb, cls } = fb;
  const overcast = [0.55, 0.58, 0.62];
  for (let i = 0; i < width * height; i++) {
    const c = cls[i];
    const k = i * 3;
    if (c === C.sky) {
      const n = 0.9 + 0.1 * luminance(rgb[k]!, rgb[k + 1]!, rgb[k + 2]!);
      rgb[k] = rgb[k]! + (overcast[0]! * n - rgb[k]!) * s;
      rgb[k + 1] = rgb[k + 1]! + (overcast[1]! * n - rgb[k + 1]!) * s;
      rgb[k + 2] = rgb[k + 2]! + (overcast[2]! * n - rgb[k + 2]!) * s;
      continue;
    }
    const wet = c === C.road || c === C.sidewalk ? 1 - 0.45 * s : 1 - 0.15 * s;
    rgb[k] = rgb[k]! * wet;
    rgb[k + 1] = rgb[k + 1]! * wet;
    rgb[k + 2] = rgb[k + 2]! * wet;
  }
}

/**
 * Mirror reflections in wet ground: each road/sidewalk pixel reflects the column
 * above the point where the wet surface meets whatever stands on it, fading with
 * distance from that contact line.
 */
export function rainReflections(fb: FrameBuffers, s: number): void {
  const { width, height, rgb, cls } = fb;
  const column = new Float32Array(height * 3);
  const strength = 0.55 * s;
  const fade = height * 0.18;
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++) {
      const k = (y * width + x) * 3;
      column[y * 3] = rgb[k]!;
      column[y * 3 + 1] = rgb[k + 1]!;
      column[y * 3 + 2] = rgb[k + 2]!;
    }
    let contact = -1;
    for (let y = 0; y < height; y++) {
      const c = cls[y * width + x];
      if (c !== C.road && c !== C.sidewalk) {
        contact = y;
        continue;
      }
      if (contact < 0) continue;
      const my = 2 * contact - y;
      if (my < 0) continue;
      const a = strength * Math.exp(-(y - contact) / fade);
      const k = (y * width + x) * 3;
      rgb[k] = rgb[k]! + (column[my * 3]! - rgb[k]!) * a;
      rgb[k + 1] = rgb[k + 1]! + (column[my * 3 + 1]! - rgb[k + 1]!) * a;
      rgb[k + 2] = rgb[k + 2]! + (column[my * 3 + 2]! - rgb[k + 2]!) * a;
    }
  }
}

/**
 * Falling rain: short bright slanted streaks, a new random set every frame (real rain
 * never repeats), sparse enough that frame-to-frame histograms stay close. Lengths,
 * widths and density are in model-input pixels (`pixelUnit`), so a render at any size
 * shows the same rain once scaled to the model's input; the streak width is drawn with
 * exact horizontal coverage, so sub-pixel widths stay anti-aliased.
 */
export function rainStreaks(fb: FrameBuffers, s: number, state: LightState, sceneSeed: number, t: number): void {
  const { width, height, rgb } = fb;
  const wind = new Rng(sceneSeed ^ 0x7a1).range(-0.35, 0.35);
  const rng = new Rng((sceneSeed ^ 0x3c6ef372) + t * 7919);
  const unit = pixelUnit(width, height);
  const count = Math.round(s * unitArea(width, height) * 0.006);
  const lum = Math.max(0.35, luminance(...state.ambient));
  const bright = 0.85 * lum + 0.1;
  const half = (0.9 * unit) / 2;
  for (let j = 0; j < count; j++) {
    const x0 = rng.range(-10 * unit, width + 10 * unit);
    const y0 = rng.range(-10 * unit, height);
    const len = rng.range(5, 16) * unit;
    const alpha = rng.range(0.12, 0.3) * (0.6 + 0.4 * s);
    const ya = Math.max(0, Math.ceil(y0));
    const yb = Math.min(height, Math.ceil(y0 + len));
    for (let y = ya; y < yb; y++) {
      const cx = x0 + wind * (y + 0.5 - y0);
      const l = cx - half;
      const r = cx + half;
      const xa = Math.max(0, Math.floor(l));
      const xb = Math.min(width - 1, Math.floor(r));
      for (let x = xa; x <= xb; x++) {
        const cover = Math.min(x + 1, r) - Math.max(x, l);
        if (cover > 0) blend(rgb, width, x, y, bright, alpha * cover);
      }
    }
  }
}

function blend(rgb: Float32Array, width: number, x: number, y: number, v: number, a: number): void {
  const k = (y * width + x) * 3;
  rgb[k] = rgb[k]! + (v - rgb[k]!) * a;
  rgb[k + 1] = rgb[k + 1]! + (v * 1.02 - rgb[k + 1]!) * a;
  rgb[k + 2] = rgb[k + 2]! + (v * 1.06 - rgb[k + 2]!) * a;
}

/** Rain washes colour out and adds a cold cast. */
export function rainGrade(fb: FrameBuffers, s: number): void {
  const { rgb } = fb;
  const d = 0.55 * s;
  for (let k = 0; k < rgb.length; k += 3) {
    const l = luminance(rgb[k]!, rgb[k + 1]!, rgb[k + 2]!);
    rgb[k] = (rgb[k]! + (l - rgb[k]!) * d) * (1 - 0.08 * s);
    rgb[k + 1] = (rgb[k + 1]! + (l - rgb[k + 1]!) * d) * (1 - 0.03 * s);
    rgb[k + 2] = (rgb[k + 2]! + (l - rgb[k + 2]!) * d) * (1 + 0.06 * s);
  }
}

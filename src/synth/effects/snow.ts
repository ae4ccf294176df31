import { C } from '../classes.js';
import type { FrameBuffers } from '../frame-buffers.js';
import { Rng } from '../rng.js';
import { luminance, type LightState } from './light-state.js';
import { pixelUnit, unitArea } from './pixel-unit.js';

const SNOW = [0.93, 0.95, 1.0] as const;

/** Snow cover on surfaces that catch it (ground, roofs, crowns) and a pale overcast sky. */
export function snowSurface(fb: FrameBuffers, s: number): void {
  const { width, height, rgb, cls, snow } = fb;
  const cover = Math.min(1, 0.35 + 0.75 * s);
  for (let i = 0; i < width * height; i++) {
    const k = i * 3;
    const a = cls[i] === C.sky ? 0.85 * s : snow[i]! * cover;
    const tone = cls[i] === C.sky ? 0.86 : 1;
    rgb[k] = rgb[k]! + (SNOW[0] * tone - rgb[k]!) * a;
    rgb[k + 1] = rgb[k + 1]! + (SNOW[1] * tone - rgb[k + 1]!) * a;
    rgb[k + 2] = rgb[k + 2]! + (SNOW[2] * tone - rgb[k + 2]!) * a;
  }
}

/**
 * Falling flakes: a fixed population per scene that drifts down and sideways with
 * time, so consecutive frames show the same flakes slightly moved (no flicker).
 * Nearer flakes are bigger and faster. Sizes, speeds and density are in model-input
 * pixels (`pixelUnit`); a flake smaller than a pixel is drawn at pixel size with its
 * alpha cut by the area ratio, so it keeps its weight at any render size.
 */
export function snowFlakes(fb: FrameBuffers, s: number, state: LightState, sceneSeed: number, t: number): void {
  const { width, height, rgb } = fb;
  const rng = new Rng(sceneSeed ^ 0x2f1a);
  const unit = pixelUnit(width, height);
  const count = Math.round(s * unitArea(width, height) * 0.012);
  const margin = 3 * unit;
  const bright = Math.max(0.3, luminance(...state.ambient)) * 0.95 + 0.05;
  for (let j = 0; j < count; j++) {
    const near = rng.next() ** 3;
    const rTrue = (0.5 + near * 1.8) * unit;
    const r = Math.max(rTrue, 0.75);
    const areaK = (rTrue / r) ** 2;
    const speed = (0.8 + near * 3) * unit;
    const x0 = rng.range(0, width);
    const y0 = rng.range(0, height);
    const phase = rng.range(0, Math.PI * 2);
    const span = height + 2 * margin;
    const y = ((((y0 + speed * t) % span) + span) % span) - margin;
    const x = (((x0 + Math.sin(t * 0.05 + phase) * 4 * unit + t * 0.3 * unit) % width) + width) % width;
    const alpha = (0.55 + 0.4 * near) * areaK;
    const xa = Math.floor(x - r - 1),
      xb = Math.ceil(x + r + 1);
    const ya = Math.floor(y - r - 1),
      yb = Math.ceil(y + r + 1);
    for (let py = Math.max(0, ya); py <= Math.min(height - 1, yb); py++) {
      for (let px = Math.max(0, xa); px <= Math.min(width - 1, xb); px++) {
        const d = Math.hypot(px + 0.5 - x, py + 0.5 - y) / r;
        if (d >= 1.3) continue;
        const a = alpha * Math.min(1, 1.3 - d);
        const k = (py * width + px) * 3;
        rgb[k] = rgb[k]! + (bright * SNOW[0] - rgb[k]!) * a;
        rgb[k + 1] = rgb[k + 1]! + (bright * SNOW[1] - rgb[k + 1]!) * a;
        rgb[k + 2] = rgb[k + 2]! + (bright * SNOW[2] - rgb[k + 2]!) * a;
      }
    }
  }
}

/** Snow light is flat and bright: lift and compress toward a cool white. */
export function snowGrade(fb: FrameBuffers, s: number, state: LightState): void {
  const { rgb } = fb;
  const a = 0.16 * s;
  const lift = Math.max(0.25, luminance(...state.ambient));
  for (let k = 0; k < rgb.length; k += 3) {
    rgb[k] = (rgb[k]! + (0.78 * lift - rgb[k]!) * a) * (1 - 0.05 * s);
    rgb[k + 1] = rgb[k + 1]! + (0.84 * lift - rgb[k + 1]!) * a;
    rgb[k + 2] = (rgb[k + 2]! + (0.95 * lift - rgb[k + 2]!) * a) * (1 + 0.05 * s);
  }
}

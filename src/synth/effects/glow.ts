import type { FrameBuffers } from '../frame-buffers.js';
import type { LightState } from './light-state.js';
import { pixelUnit } from './pixel-unit.js';

/** Halos around light sources (lamps, head- and tail-lights), additive, when lights are on. */
export function applyGlows(fb: FrameBuffers, state: LightState): void {
  if (state.lightsOn <= 0) return;
  const { width, height, rgb } = fb;
  const unit = pixelUnit(width, height);
  for (const light of fb.lights) {
    if (light.kind !== 'glow') continue;
    // Capped so a light right in front of the camera cannot wash out the frame. The
    // radius comes from the projected lamp size (already proportional to the frame) with
    // floors in model-input pixels, see pixelUnit.
    const r = Math.min(light.radius * 1.6 * state.glowScale, 14 * unit);
    const amp = 0.7 * state.lightsOn;
    const x0 = Math.max(0, Math.floor(light.x - r * 2));
    const x1 = Math.min(width - 1, Math.ceil(light.x + r * 2));
    const y0 = Math.max(0, Math.floor(light.y - r * 2));
    const y1 = Math.min(height - 1, Math.ceil(light.y + r * 2));
    const inv = 1 / (r * r);
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        const dx = x + 0.5 - light.x;
        const dy = y + 0.5 - light.y;
        const g = amp * Math.exp(-(dx * dx + dy * dy) * inv * 1.5);
        if (g < 0.004) continue;
        const k = (y * width + x) * 3;
        rgb[k] = rgb[k]! + light.color[0] * g;
        rgb[k + 1] = rgb[k + 1]! + light.color[1] * g;
        rgb[k + 2] = rgb[k + 2]! + light.color[2] * g;
      }
    }
  }
}

import { C } from '../classes.js';
import type { FrameBuffers } from '../frame-buffers.js';
import type { LightState } from './light-state.js';

const LAMP_POOL = [1.0, 0.8, 0.5] as const;

/**
 * Relights albedo: ambient light, pools of light under street lamps, then emission
 * (lit windows, lamp heads, car lights) scaled by how far the lights are on.
 */
export function applyLighting(fb: FrameBuffers, state: LightState): void {
  const { width, height, rgb, emit, cls } = fb;
  const n = width * height;
  const [ar, ag, ab] = state.ambient;
  const pool = state.lightsOn > 0 ? poolField(fb) : null;
  const on = state.lightsOn;
  for (let i = 0; i < n; i++) {
    const k = i * 3;
    const p = pool && cls[i] !== C.sky ? pool[i]! * on : 0;
    rgb[k] = rgb[k]! * (ar + p * LAMP_POOL[0]) + emit[k]! * on;
    rgb[k + 1] = rgb[k + 1]! * (ag + p * LAMP_POOL[1]) + emit[k + 1]! * on;
    rgb[k + 2] = rgb[k + 2]! * (ab + p * LAMP_POOL[2]) + emit[k + 2]! * on;
  }
}

/** Light falling from street lamps: a flattened disc on the ground below each lamp. */
function poolField(fb: FrameBuffers): Float32Array {
  const { width, height } = fb;
  const field = new Float32Array(width * height);
  for (const light of fb.lights) {
    if (light.kind !== 'pool') continue;
    const rx = light.radius;
    const ry = light.radius * 0.45;
    const x0 = Math.max(0, Math.floor(light.x - rx));
    const x1 = Math.min(width - 1, Math.ceil(light.x + rx));
    const y0 = Math.max(0, Math.floor(light.y - ry * 2.5));
    const y1 = Math.min(height - 1, Math.ceil(light.y + ry));
    for (let y = y0; y <= y1; y++) {
      // Above the ground contact the light reaches up the pole and nearby objects, weaker.
      const dy = y < light.y ? (light.y - y) / (ry * 2.5) : (y - light.y) / ry;
      for (let x = x0; x <= x1; x++) {
        const dx = (x - light.x) / rx;
        const d2 = dx * dx + dy * dy;
        if (d2 < 1) field[y * width + x] = field[y * width + x]! + 0.9 * (1 - d2) * (1 - d2);
      }
    }
  }
  return field;
}

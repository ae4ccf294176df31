import type { FrameBuffers } from '../frame-buffers.js';
import { hash2 } from '../noise.js';

/**
 * Low-light sensor noise: luminance-correlated grain, new every frame. Fine-grained
 * and zero-mean, so frame histograms barely move between frames.
 */
export function sensorNoise(fb: FrameBuffers, sigma: number, seed: number, t: number): void {
  const { rgb } = fb;
  const n = fb.width * fb.height;
  const s = (seed ^ Math.imul(t + 1, 0x9e3779b1)) | 0;
  for (let i = 0; i < n; i++) {
    // Sum of two uniforms: triangular, close enough to Gaussian for grain.
    const g = (hash2(i, 1, s) + hash2(i, 2, s) - 1) * sigma * 2.4;
    const c = (hash2(i, 3, s) - 0.5) * sigma * 0.8;
    const k = i * 3;
    rgb[k] = rgb[k]! + g + c;
    rgb[k + 1] = rgb[k + 1]! + g;
    rgb[k + 2] = rgb[k + 2]! + g - c;
  }
}

/** Per-scene camera exposure and white balance, so no two scenes share exact tones. */
export function exposure(fb: FrameBuffers, gain: readonly [number, number, number]): void {
  const { rgb } = fb;
  for (let k = 0; k < rgb.length; k += 3) {
    rgb[k] = rgb[k]! * gain[0];
    rgb[k + 1] = rgb[k + 1]! * gain[1];
    rgb[k + 2] = rgb[k + 2]! * gain[2];
  }
}

/** Quantises to 8-bit RGB with a soft shoulder so bright lights roll off instead of clipping flat. */
export function toRgb8(fb: FrameBuffers, out: Uint8Array = new Uint8Array(fb.width * fb.height * 3)): Uint8Array {
  const { rgb } = fb;
  for (let k = 0; k < rgb.length; k++) {
    let v = rgb[k]!;
    if (v > 0.8) v = 0.8 + 0.2 * (1 - Math.exp(-(v - 0.8) / 0.2));
    out[k] = v <= 0 ? 0 : v >= 1 ? 255 : Math.round(v * 255);
  }
  return out;
}

import type { FrameBuffers } from '../frame-buffers.js';
import { hash2 } from '../noise.js';
import { pixelUnit } from './pixel-unit.js';

/**
 * Low-light sensor noise: luminance-correlated grain, new every frame, zero-mean, so
 * frame histograms barely move between frames. The grain is constant over square cells
 * of one `pixelUnit` (nearest sampling of hash noise on a cell grid): after the scaling
 * to the model input each cell is about one model-input pixel, so the grain keeps its
 * amplitude at any render size instead of averaging away (1-pixel grain at 1280x720
 * would shrink ~5.7x in std once downscaled to 224x128).
 */
export function sensorNoise(fb: FrameBuffers, sigma: number, seed: number, t: number): void {
  const { rgb, width, height } = fb;
  const s = (seed ^ Math.imul(t + 1, 0x9e3779b1)) | 0;
  const cell = Math.max(1, pixelUnit(width, height));
  const cols = Math.ceil(width / cell);
  const cellOfX = new Int32Array(width);
  for (let x = 0; x < width; x++) cellOfX[x] = Math.min(cols - 1, Math.floor(x / cell));
  const gRow = new Float32Array(cols);
  const cRow = new Float32Array(cols);
  let row = -1;
  for (let y = 0; y < height; y++) {
    const cy = Math.floor(y / cell);
    if (cy !== row) {
      row = cy;
      for (let cx = 0; cx < cols; cx++) {
        const id = cy * cols + cx;
        // Sum of two uniforms: triangular, close enough to Gaussian for grain.
        gRow[cx] = (hash2(id, 1, s) + hash2(id, 2, s) - 1) * sigma * 2.4;
        cRow[cx] = (hash2(id, 3, s) - 0.5) * sigma * 0.8;
      }
    }
    for (let x = 0; x < width; x++) {
      const g = gRow[cellOfX[x]!]!;
      const c = cRow[cellOfX[x]!]!;
      const k = (y * width + x) * 3;
      rgb[k] = rgb[k]! + g + c;
      rgb[k + 1] = rgb[k + 1]! + g;
      rgb[k + 2] = rgb[k + 2]! + g - c;
    }
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

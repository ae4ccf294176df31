import type { Canvas, Light } from './canvas.js';
import { CLASS_COUNT } from './classes.js';

/**
 * One frame at output resolution, before condition effects: colour and emission
 * (box-filtered from the supersampled canvas, which is the antialiasing), the class
 * mask, inverse depth (0 for sky) and the snow-catch factor.
 */
export interface FrameBuffers {
  width: number;
  height: number;
  rgb: Float32Array;
  emit: Float32Array;
  cls: Uint8Array;
  invDepth: Float32Array;
  snow: Float32Array;
  lights: Light[];
}

/**
 * Averages ss×ss blocks. The mask takes each block's majority class; ties go to the
 * higher class index, which the class order makes the thinner, rarer structure, so
 * poles and persons are not eroded away.
 */
export function downsample(canvas: Canvas): FrameBuffers {
  const ss = canvas.ss;
  const width = canvas.width / ss;
  const height = canvas.height / ss;
  const n = width * height;
  const out: FrameBuffers = {
    width,
    height,
    rgb: new Float32Array(n * 3),
    emit: new Float32Array(n * 3),
    cls: new Uint8Array(n),
    invDepth: new Float32Array(n),
    snow: new Float32Array(n),
    lights: canvas.lights,
  };
  const { color, emit, depth, snow, cls } = canvas;
  const counts = new Uint8Array(CLASS_COUNT);
  const inv = 1 / (ss * ss);
  const cw = canvas.width;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let r = 0,
        g = 0,
        b = 0,
        er = 0,
        eg = 0,
        eb = 0,
        id = 0,
        sn = 0;
      let best = 0;
      let bestCount = 0;
      let uniform = true;
      const first = cls[y * ss * cw + x * ss]!;
      for (let dy = 0; dy < ss; dy++) {
        let i = (y * ss + dy) * cw + x * ss;
        for (let dx = 0; dx < ss; dx++, i++) {
          const k = i * 3;
          r += color[k]!;
          g += color[k + 1]!;
          b += color[k + 2]!;
          er += emit[k]!;
          eg += emit[k + 1]!;
          eb += emit[k + 2]!;
          id += 1 / depth[i]!;
          sn += snow[i]!;
          if (cls[i] !== first) uniform = false;
        }
      }
      if (uniform) best = first;
      else {
        counts.fill(0);
        for (let dy = 0; dy < ss; dy++) {
          const i = (y * ss + dy) * cw + x * ss;
          for (let dx = 0; dx < ss; dx++) counts[cls[i + dx]!]!++;
        }
        for (let c = 0; c < CLASS_COUNT; c++) {
          if (counts[c]! >= bestCount && counts[c]! > 0) {
            best = c;
            bestCount = counts[c]!;
          }
        }
      }
      const o = y * width + x;
      out.cls[o] = best;
      out.invDepth[o] = id * inv;
      out.snow[o] = sn * inv;
      out.rgb[o * 3] = r * inv;
      out.rgb[o * 3 + 1] = g * inv;
      out.rgb[o * 3 + 2] = b * inv;
      out.emit[o * 3] = er * inv;
      out.emit[o * 3 + 1] = eg * inv;
      out.emit[o * 3 + 2] = eb * inv;
    }
  }
  return out;
}

import type { Rgb } from './color.js';
import { pixelUnit } from './effects/pixel-unit.js';

/**
 * What a shader reports for one sample. The renderer keeps albedo, emission and a
 * snow-catch factor apart so conditions can relight the scene afterwards without
 * re-rendering geometry (the mask never depends on them).
 */
export interface Shade {
  r: number;
  g: number;
  b: number;
  /** Light the surface emits when lights are on (windows, lamps, car lights). */
  er: number;
  eg: number;
  eb: number;
  /** How much snow this surface holds, 0-1 (ground, roofs, crowns). */
  snow: number;
  /** Camera-space depth, metres. */
  depth: number;
}

/** Returns the class index hit at sample (px, py) and fills `s`, or -1 for no hit. */
export type Shader = (px: number, py: number, s: Shade) => number;

/** A light source's screen footprint, in output pixels, for glows at night. */
export interface Light {
  x: number;
  y: number;
  /** Glow radius, output pixels. */
  radius: number;
  color: Rgb;
  /** 'glow' is a halo around a bulb; 'pool' lights the ground below a lamp. */
  kind: 'glow' | 'pool';
  depth: number;
}

const pool = new Map<string, Canvas>();

/** Sky depth: far enough that fog saturates, finite so arithmetic stays clean. */
export const SKY_DEPTH = 1e6;

/**
 * Supersampled frame buffers. Drawing runs front to back: a sample, once written, is
 * never shaded again, so hidden surfaces cost nothing (no overdraw), and shapes that
 * return -1 let whatever is behind them show through.
 */
export class Canvas {
  readonly width: number;
  readonly height: number;
  readonly ss: number;
  /** Output pixels per model-input pixel (`pixelUnit`): the size unit of minimum widths and light radii. */
  readonly unit: number;
  readonly color: Float32Array;
  readonly emit: Float32Array;
  readonly cls: Uint8Array;
  readonly depth: Float32Array;
  readonly snow: Float32Array;
  /** 1 where a nearer surface has already been drawn. */
  readonly covered: Uint8Array;
  lights: Light[] = [];
  private readonly shade: Shade = { r: 0, g: 0, b: 0, er: 0, eg: 0, eb: 0, snow: 0, depth: SKY_DEPTH };

  constructor(outWidth: number, outHeight: number, ss: number) {
    this.ss = ss;
    this.unit = pixelUnit(outWidth, outHeight);
    this.width = outWidth * ss;
    this.height = outHeight * ss;
    const n = this.width * this.height;
    this.color = new Float32Array(n * 3);
    this.emit = new Float32Array(n * 3);
    this.cls = new Uint8Array(n);
    this.depth = new Float32Array(n).fill(SKY_DEPTH);
    this.snow = new Float32Array(n);
    this.covered = new Uint8Array(n);
  }

  /**
   * A cleared canvas of this size, reused across frames on this thread: the buffers
   * are megabytes, and allocating them per frame made the garbage collector a top
   * cost. Only `covered` needs clearing: every sample is written exactly once per frame
   * (the sky fills whatever nothing else covered).
   */
  static reuse(outWidth: number, outHeight: number, ss: number): Canvas {
    const key = `${outWidth}x${outHeight}x${ss}`;
    let canvas = pool.get(key);
    if (!canvas) {
      if (pool.size >= 4) pool.clear();
      canvas = new Canvas(outWidth, outHeight, ss);
      pool.set(key, canvas);
    }
    canvas.covered.fill(0);
    canvas.lights = [];
    return canvas;
  }

  /** Shades the still uncovered samples x0..x1-1 of row y. */
  fillSpan(y: number, x0: number, x1: number, shader: Shader): void {
    const s = this.shade;
    const py = y + 0.5;
    const lo = Math.max(0, x0);
    const hi = Math.min(this.width, x1);
    const row = y * this.width;
    for (let x = lo; x < hi; x++) {
      if (this.covered[row + x] === 1) continue;
      s.er = 0;
      s.eg = 0;
      s.eb = 0;
      s.snow = 0;
      const cls = shader(x + 0.5, py, s);
      if (cls < 0) continue;
      const i = row + x;
      this.covered[i] = 1;
      this.cls[i] = cls;
      this.depth[i] = s.depth;
      this.snow[i] = s.snow;
      const k = i * 3;
      this.color[k] = s.r;
      this.color[k + 1] = s.g;
      this.color[k + 2] = s.b;
      this.emit[k] = s.er;
      this.emit[k + 1] = s.eg;
      this.emit[k + 2] = s.eb;
    }
  }

  /** Shades every sample whose centre lies in the screen rectangle [x0,x1)×[y0,y1). */
  fillRect(x0: number, y0: number, x1: number, y1: number, shader: Shader): void {
    const ya = Math.max(0, Math.ceil(y0 - 0.5));
    const yb = Math.min(this.height, Math.ceil(y1 - 0.5));
    const xa = Math.ceil(x0 - 0.5);
    const xb = Math.ceil(x1 - 0.5);
    for (let y = ya; y < yb; y++) this.fillSpan(y, xa, xb, shader);
  }

  /** Shades every sample whose centre lies inside the convex polygon (flat [x,y,...]). */
  fillConvex(pts: readonly number[], shader: Shader): void {
    const n = pts.length / 2;
    if (n < 3) return;
    let minY = Infinity;
    let maxY = -Infinity;
    for (let i = 0; i < n; i++) {
      const y = pts[i * 2 + 1] ?? 0;
      if (y < minY) minY = y;
      if (y > maxY) maxY = y;
    }
    const ya = Math.max(0, Math.ceil(minY - 0.5));
    const yb = Math.min(this.height, Math.ceil(maxY - 0.5));
    for (let y = ya; y < yb; y++) {
      const py = y + 0.5;
      let left = Infinity;
      let right = -Infinity;
      for (let i = 0; i < n; i++) {
        const j = (i + 1) % n;
        const ax = pts[i * 2] ?? 0,
          ay = pts[i * 2 + 1] ?? 0;
        const bx = pts[j * 2] ?? 0,
          by = pts[j * 2 + 1] ?? 0;
        if ((ay <= py && by > py) || (by <= py && ay > py)) {
          const x = ax + ((py - ay) / (by - ay)) * (bx - ax);
          if (x < left) left = x;
          if (x > right) right = x;
        }
      }
      if (left > right) continue;
      this.fillSpan(y, Math.ceil(left - 0.5), Math.ceil(right - 0.5), shader);
    }
  }
}

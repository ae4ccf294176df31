import type { Camera } from '../camera.js';
import type { Canvas, Shade } from '../canvas.js';
import { C } from '../classes.js';
import { valueNoise } from '../noise.js';
import type { Bush, Tree } from '../scene-types.js';
import { drawBillboard } from './primitives.js';

/** A tree: tapering trunk under a crown of overlapping lumpy blobs (all `vegetation`). */
export function drawTree(canvas: Canvas, cam: Camera, tree: Tree): void {
  let u0 = -tree.trunkW;
  let u1 = tree.trunkW;
  let v1 = tree.trunkH;
  for (const b of tree.blobs) {
    u0 = Math.min(u0, b.u - b.r * 1.2);
    u1 = Math.max(u1, b.u + b.r * 1.2);
    v1 = Math.max(v1, b.v + b.r * 1.2);
  }
  drawBillboard(canvas, cam, tree.x, tree.z, u0, u1, 0, v1, (u, v, s) => {
    let best = -1;
    let top = 0;
    for (let i = 0; i < tree.blobs.length; i++) {
      const b = tree.blobs[i] as Tree['blobs'][number];
      const du = u - b.u;
      const dv = v - b.v;
      if (du > b.r * 1.15 || du < -b.r * 1.15 || dv > b.r * 1.15 || dv < -b.r * 1.15) continue;
      let d = Math.sqrt(du * du + dv * dv) / b.r;
      // Lumpy outline without atan2/noise per sample: a product of sines in blob space,
      // evaluated only near the rim (it moves the rim by at most ±13%).
      if (d > 0.76 && d < 1.04) d /= 0.9 + 0.13 * Math.sin((du * 5.3) / b.r + i) * Math.sin((dv * 4.1) / b.r + tree.seed);
      if (d < 1 && (best < 0 || dv / b.r > top)) {
        best = d;
        top = dv / b.r;
      }
    }
    if (best >= 0) {
      const grain = valueNoise(u * 5, v * 5, tree.seed + 1);
      const k = 0.65 + 0.35 * (top * 0.5 + 0.5) + 0.3 * (grain - 0.5);
      leaf(s, tree.leaf, k);
      s.snow = top > 0.2 && grain > 0.45 ? 0.8 : 0;
      return C.vegetation;
    }
    if (v < tree.trunkH + 0.6) {
      const halfW = (tree.trunkW / 2) * (1.15 - 0.3 * (v / tree.trunkH));
      if (Math.abs(u) < halfW) {
        leaf(s, tree.bark, 0.8 + 0.3 * (1 - Math.abs(u) / halfW));
        return C.vegetation;
      }
    }
    return -1;
  });
}

/** A hedge-like bush with a noisy rounded top. */
export function drawBush(canvas: Canvas, cam: Camera, bush: Bush): void {
  const half = bush.w / 2;
  drawBillboard(canvas, cam, bush.x, bush.z, -half, half, 0, bush.h * 1.3, (u, v, s) => {
    const x = u / half;
    const top = bush.h * (0.75 + 0.25 * Math.sqrt(Math.max(0, 1 - x * x))) * (0.85 + 0.3 * valueNoise(u * 3, 0, bush.seed));
    if (Math.abs(x) > 1 || v > top) return -1;
    const grain = valueNoise(u * 6, v * 6, bush.seed + 1);
    leaf(s, bush.color, 0.7 + 0.35 * (v / top) + 0.25 * (grain - 0.5));
    s.snow = v > top - 0.15 ? 0.9 : 0;
    return C.vegetation;
  });
}

function leaf(s: Shade, c: readonly [number, number, number], k: number): void {
  s.r = c[0] * k;
  s.g = c[1] * k;
  s.b = c[2] * k;
}

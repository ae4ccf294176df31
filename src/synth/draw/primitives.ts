import type { Camera } from '../camera.js';
import { NEAR } from '../camera.js';
import type { Canvas, Shade } from '../canvas.js';

/** Surface material over plane coordinates (a, b); returns a class index or -1. */
export type FaceMaterial = (a: number, b: number, s: Shade) => number;

/**
 * Draws an axis-aligned rectangle in the world. Each sample re-intersects its
 * camera ray with the plane, so textures are perspective-correct and depth is exact.
 * axis 'x': plane X=value, (a,b)=(Z,Y); 'z': plane Z=value, (a,b)=(X,Y);
 * 'y': plane Y=value, (a,b)=(X,Z).
 */
export function drawAxisQuad(
  canvas: Canvas,
  cam: Camera,
  axis: 'x' | 'y' | 'z',
  value: number,
  a0: number,
  a1: number,
  b0: number,
  b1: number,
  material: FaceMaterial,
): void {
  const world =
    axis === 'x'
      ? [value, b0, a0, value, b1, a0, value, b1, a1, value, b0, a1]
      : axis === 'z'
        ? [a0, b0, value, a0, b1, value, a1, b1, value, a1, b0, value]
        : [a0, value, b0, a1, value, b0, a1, value, b1, a0, value, b1];
  const screen = cam.projectPolygon(world);
  if (!screen) return;
  canvas.fillConvex(screen, (px, py, s) => {
    const dx = cam.dirX(px);
    const dz = cam.dirZ(px);
    const dy = cam.dirY(py);
    let t: number;
    let a: number;
    let b: number;
    if (axis === 'x') {
      t = (value - cam.x) / dx;
      a = cam.z + t * dz;
      b = cam.h + t * dy;
    } else if (axis === 'z') {
      t = (value - cam.z) / dz;
      a = cam.x + t * dx;
      b = cam.h + t * dy;
    } else {
      t = (value - cam.h) / dy;
      a = cam.x + t * dx;
      b = cam.z + t * dz;
    }
    if (!(t > 0)) return -1;
    s.depth = t;
    return material(a < a0 ? a0 : a > a1 ? a1 : a, b < b0 ? b0 : b > b1 ? b1 : b, s);
  });
}

/** A flat cut-out standing on the ground and facing the camera, in metres (u right, v up). */
export type BillboardShape = (u: number, v: number, s: Shade) => number;

/** Screen samples per metre for something standing at (X, Z), or 0 when behind the camera. */
export function billboardScale(cam: Camera, X: number, Z: number): number {
  const zc = cam.camZ(X, Z);
  return zc < NEAR + 0.3 ? 0 : cam.f / zc;
}

export interface BillboardFrame {
  /** Screen position of the ground anchor (samples). */
  sx: number;
  sy: number;
  /** Samples per metre. */
  k: number;
  depth: number;
}

/** Draws a billboard whose shape spans u∈[u0,u1], v∈[v0,v1]; returns its screen frame. */
export function drawBillboard(
  canvas: Canvas,
  cam: Camera,
  X: number,
  Z: number,
  u0: number,
  u1: number,
  v0: number,
  v1: number,
  shape: BillboardShape,
): BillboardFrame | null {
  const zc = cam.camZ(X, Z);
  if (zc < NEAR + 0.3) return null;
  const k = cam.f / zc;
  const sx = cam.cx + cam.camX(X, Z) * k;
  const sy = cam.cy + cam.h * k;
  canvas.fillRect(sx + u0 * k, sy - v1 * k, sx + u1 * k, sy - v0 * k, (px, py, s) => {
    s.depth = zc;
    return shape((px - sx) / k, (sy - py) / k, s);
  });
  return { sx, sy, k, depth: zc };
}

/** Writes a colour scaled by `k` into the shade. */
export function paint(s: Shade, c: readonly [number, number, number], k = 1): void {
  s.r = c[0] * k;
  s.g = c[1] * k;
  s.b = c[2] * k;
}

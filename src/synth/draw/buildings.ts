import type { Camera } from '../camera.js';
import type { Canvas, Shade } from '../canvas.js';
import { C } from '../classes.js';
import { hash2, valueNoise } from '../noise.js';
import type { Building, SceneLayout } from '../scene-types.js';
import { drawAxisQuad } from './primitives.js';

/** Warm light of an occupied room at night. */
const ROOM_LIGHT = [1.0, 0.78, 0.45] as const;

/** Street-side facades (with windows, shopfronts, cornices) and the faces towards the camera. */
export function drawBuildings(canvas: Canvas, cam: Camera, layout: SceneLayout): void {
  // Near to far (front-to-back canvas): nearer buildings' end faces hide farther facades.
  const order = [...layout.buildings].sort((a, b) => a.z0 - b.z0);
  for (const b of order) {
    if (b.z1 < cam.z - 5) continue;
    const lit = b.side === layout.palette.sunSide ? 1 : 0.78;
    if (cam.z < b.z0) {
      const xOut = b.x + b.side * b.depth;
      drawAxisQuad(canvas, cam, 'z', b.z0, Math.min(b.x, xOut), Math.max(b.x, xOut), 0, b.height, (X, Y, s) => facade(b, Math.abs(X - b.x), Y, lit * 0.82, s));
    }
    drawAxisQuad(canvas, cam, 'x', b.x, b.z0, b.z1, 0, b.height, (Z, Y, s) => facade(b, Z - b.z0, Y, lit, s));
  }
}

/** Facade material at (u along the wall, Y up), metres. */
function facade(b: Building, u: number, Y: number, light: number, s: Shade): number {
  const wallK = light * (0.9 + 0.18 * valueNoise(u * 0.9, Y * 0.9, b.seed));
  if (Y > b.height - 0.45 || u < 0.25) {
    paintK(s, b.trim, light * 0.95);
    s.snow = Y > b.height - 0.1 ? 1 : 0;
    return C.building;
  }
  const floor = Math.floor(Y / b.floorH);
  const fy = Y - floor * b.floorH;
  const bay = Math.floor(u / b.bayW);
  const fu = u - bay * b.bayW;
  if (floor === 0 && b.shop) {
    if (fy > b.floorH - 0.65 && fy < b.floorH - 0.2) {
      paintK(s, b.shop, light);
      return C.building;
    }
    if (fy > 0.25 && fy < b.floorH - 0.8 && fu > 0.2 && fu < b.bayW - 0.2) {
      glass(b, fy / b.floorH, light, s);
      if (hash2(bay, -1, b.seed) < 0.8) emitRoom(s, 0.9);
      return C.building;
    }
    paintK(s, b.wall, wallK * 0.85);
    return C.building;
  }
  const halfW = (b.winW * b.bayW) / 2;
  const winBottom = b.floorH * (0.5 - b.winH / 2) + 0.15;
  const winTop = winBottom + b.floorH * b.winH;
  const du = Math.abs(fu - b.bayW / 2);
  if (du < halfW && fy > winBottom && fy < winTop) {
    if (du > halfW - 0.09 || fy < winBottom + 0.09 || fy > winTop - 0.09) {
      paintK(s, b.trim, light);
    } else {
      glass(b, (fy - winBottom) / (winTop - winBottom), light, s);
      if (hash2(bay, floor, b.seed) < b.litFraction) emitRoom(s, 0.6 + 0.4 * hash2(floor, bay, b.seed + 1));
    }
    return C.building;
  }
  if (du < halfW + 0.1 && fy > winBottom - 0.16 && fy <= winBottom) {
    paintK(s, b.trim, light * 1.05);
    s.snow = 0.7;
    return C.building;
  }
  paintK(s, b.wall, wallK);
  return C.building;
}

function glass(b: Building, v: number, light: number, s: Shade): void {
  // Windows reflect the sky: brighter towards the top of each pane.
  const k = light * (0.8 + 0.5 * v);
  s.r = b.glass[0] * k;
  s.g = b.glass[1] * k;
  s.b = b.glass[2] * k;
}

function emitRoom(s: Shade, k: number): void {
  s.er = ROOM_LIGHT[0] * k;
  s.eg = ROOM_LIGHT[1] * k;
  s.eb = ROOM_LIGHT[2] * k;
}

function paintK(s: Shade, c: readonly [number, number, number], k: number): void {
  s.r = c[0] * k;
  s.g = c[1] * k;
  s.b = c[2] * k;
}

/** Distant skyline (buildings or a tree line) on a plane across the end of the street. */
export function drawSkyline(canvas: Canvas, cam: Camera, layout: SceneLayout): void {
  const sky = layout.skyline;
  if (!sky) return;
  const blockW = sky.kind === 'building' ? 18 : 10;
  const span = blockW * sky.heights.length;
  const maxH = Math.max(...sky.heights) + 8;
  drawAxisQuad(canvas, cam, 'z', sky.z, -span / 2, span / 2, 0, maxH, (X, Y, s) => {
    const f = (X + span / 2) / blockW;
    const i = Math.min(sky.heights.length - 1, Math.max(0, Math.floor(f)));
    const h0 = sky.heights[i] ?? 0;
    if (sky.kind === 'building') {
      if (Y > h0) return -1;
      const win = Y % 3.4 < 1.6 && ((X % 2.5) + 2.5) % 2.5 < 1.2 ? 0.82 : 1;
      const k = (0.85 + 0.15 * hash2(i, 3, sky.seed)) * win;
      s.r = sky.color[0] * k;
      s.g = sky.color[1] * k;
      s.b = sky.color[2] * k;
      if (win < 1 && hash2(Math.floor(X / 2.5), Math.floor(Y / 3.4), sky.seed) < 0.35) {
        s.er = ROOM_LIGHT[0] * 0.7;
        s.eg = ROOM_LIGHT[1] * 0.7;
        s.eb = ROOM_LIGHT[2] * 0.7;
      }
      s.snow = Y > h0 - 0.5 ? 1 : 0;
      return C.building;
    }
    const top = h0 * (0.75 + 0.5 * valueNoise(X * 0.15, 0, sky.seed));
    if (Y > top) return -1;
    const k = 0.8 + 0.3 * valueNoise(X * 0.5, Y * 0.5, sky.seed + 1);
    s.r = sky.color[0] * k;
    s.g = sky.color[1] * k;
    s.b = sky.color[2] * k;
    s.snow = 0.4 * valueNoise(X, Y, sky.seed + 2);
    return C.vegetation;
  });
}
